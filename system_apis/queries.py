"""Query values the system API's routes share: times, incremental-read cursors, and a page of a read.

Times are taken as strings with an RFC 3339 pattern and parsed here: as a
``datetime`` parameter, Litestar would also take a bare number as a Unix time,
and a value that only looks like a time (month 13) must be a 400, not a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from litestar.params import Parameter

from shared.errors import BadRequestError
from shared.ndjson import ndjson, wants_ndjson

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar import Request
    from litestar.response import Stream

__all__ = ("RFC3339", "FeedCursor", "ModifiedSince", "TimeQuery", "feed_answer", "parse_time")

RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
"""An RFC 3339 date-time with its offset."""
TimeQuery = Annotated[str | None, Parameter(pattern=RFC3339, description="RFC 3339, with its offset.")]
"""A time query value, parsed by :func:`parse_time`."""
ModifiedSince = Annotated[
    str | None,
    Parameter(
        pattern=RFC3339,
        description="Only records modified at or after this time (RFC 3339, with its offset).",
    ),
]
"""``modified_since``, parsed by :func:`parse_time`."""
FeedCursor = Annotated[
    str | None,
    Parameter(
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A `next_cursor` (next page) or a `sync_cursor` (what changed since that read).",
    ),
]
"""The cursor of an incremental read (:class:`~system_apis.cursors.CursorStore`)."""


def parse_time(value: str | None, name: str = "modified_since") -> datetime | None:
    """A time query value as an aware UTC datetime; 400 naming ``name`` when it only looks like one."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequestError(f"{name} {value!r} is not a valid RFC 3339 time", field=name) from None


class FeedPage(Protocol):
    """A page of an incremental read."""

    @property
    def items(self) -> Sequence[Any]: ...

    @property
    def next_cursor(self) -> str | None: ...

    @property
    def sync_cursor(self) -> str | None: ...


def feed_answer(request: Request[Any, Any, Any], page: FeedPage) -> Any:
    """``page`` as JSON, or, when the caller asked for NDJSON, its items one per line with the cursors in the
    ``Next-Cursor`` and ``Sync-Cursor`` headers."""
    if not wants_ndjson(request):
        return page
    cursors = {"Next-Cursor": page.next_cursor, "Sync-Cursor": page.sync_cursor}
    stream: Stream = ndjson(page.items, {key: value for key, value in cursors.items() if value})
    return stream
