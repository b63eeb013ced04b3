"""Where an incremental read of bookings stands, kept in Redis behind an opaque cursor.

A read walks the window ``[low, until]`` (see
:mod:`system_apis.connectors.salesforce.changes`); ``until`` is fixed when the
read starts, so a read always ends. Its last page carries a ``sync_cursor``:
the next read starts at ``until - lookback``, and skips the versions it finds
again that the previous read returned inside that lookback (``seen``). The
lookback covers a clock that differs between the org and finsync, and records
Salesforce stamps before their transaction commits.

As for the ERP's journal entries (:mod:`system_apis.erp.feed`), the state
lives in Redis behind a new token per page (:class:`~system_apis.cursors.CursorStore`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from system_apis.connectors.salesforce.changes import WalkPosition

__all__ = ("BookingFeed",)


class BookingFeed(msgspec.Struct, kw_only=True, frozen=True):
    """Where a read of one source's bookings stands."""

    feed: str
    """What is read: source, resource and filters; a cursor is refused for another feed."""
    low: datetime | None = None
    """Records stamped at or after this second (``None``: from the beginning)."""
    until: datetime | None = None
    """Fixed when the read starts: later changes wait for the next read."""
    position: WalkPosition = WalkPosition()
    """Where the walks over opportunities and line items stand."""
    seen: dict[str, datetime] = {}
    """Versions returned inside the lookback zone: opportunity ``Id -> modified_at``."""

    def sync(self, lookback: timedelta) -> BookingFeed:
        """The state of the next read, once this one has ended."""
        assert self.until is not None
        low = self.until - lookback
        return BookingFeed(
            feed=self.feed,
            low=low,
            seen={key: version for key, version in self.seen.items() if version >= low},
        )
