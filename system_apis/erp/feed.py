"""Incremental reads of a changing table: the ``(modified_at, id)`` cursor, the lookback and its de-duplication.

A *read* walks the records whose ``write_date`` lies in ``[low, until]`` in
``(write_date, id)`` order, one page at a time. ``until`` is fixed when the read
starts, so a read always ends. When it ends, the answer carries a
``sync_cursor``: the next read starts at ``low = until - lookback``.

Why the lookback: Tryton stamps ``write_date`` with the *start* of the writing
transaction, so a transaction still open when a read passes commits rows
stamped in the past. Every such row is stamped within ``lookback`` (at least the
longest ERP transaction) before the next read's start, so the next read finds it.

Why the de-duplication: the lookback also finds again records the previous read
returned. The cursor remembers each ``(id, write_date)`` it returned inside the
lookback zone, and a record seen again with the same ``write_date`` is skipped.
A record that changed comes again, with its new version. So each change is
returned at least once, and no version twice.

The state behind a cursor can be large after a bulk load (every record written
within the lookback), so it lives in Redis under an opaque token, for
``CURSOR_TTL`` seconds; each page gets a new token and old tokens stay valid, so
a client may repeat a page it did not receive.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec

__all__ = ("FeedState",)


class FeedState(msgspec.Struct, kw_only=True, frozen=True):
    """Where a read of one feed stands."""

    feed: str
    """What is read: source, resource and filters; a cursor is refused for another feed."""
    low: datetime | None = None
    """Records written at or after this moment (``None``: from the beginning)."""
    until: datetime | None = None
    """Fixed when the read starts: records written later wait for the next read."""
    after: tuple[datetime, int] | None = None
    """``(write_date, id)`` of the last record returned in this read."""
    seen: dict[int, datetime] = {}
    """Versions returned inside the lookback zone: ``id -> write_date``."""
    drafts: dict[int, tuple[str, date]] = {}
    """Drafts returned (id -> entity code and posting date), checked for deletion when a read ends."""

    def sync(self, lookback: timedelta, drafts: dict[int, tuple[str, date]]) -> FeedState:
        """The state of the next read, once this one has ended; ``drafts``: those still there."""
        assert self.until is not None
        low = self.until - lookback
        return FeedState(
            feed=self.feed,
            low=low,
            seen={key: written for key, written in self.seen.items() if written >= low},
            drafts=drafts,
        )
