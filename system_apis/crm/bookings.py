"""Incremental reads of bookings, one page at a time (see :mod:`system_apis.crm.feed` for the guarantees)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec

from system_apis.connectors.salesforce.changes import Changes, settled_until
from system_apis.crm.feed import BookingFeed
from system_apis.crm.schemas import BookingPage

if TYPE_CHECKING:
    from datetime import datetime

    from shared.canonical import BookingStatus
    from system_apis.connectors.salesforce.connector import SalesforceConnector
    from system_apis.cursors import CursorStore

__all__ = ("read_bookings",)


async def read_bookings(
    connector: SalesforceConnector,
    store: CursorStore[BookingFeed],
    *,
    status: BookingStatus | None,
    modified_since: datetime | None,
    cursor: str | None,
    limit: int,
) -> BookingPage:
    """One page of an incremental read of the bookings (of ``status`` only, when given).

    Without ``cursor`` a read starts at ``modified_since`` (or the beginning);
    with a ``next_cursor`` it goes on; with a ``sync_cursor`` a new read starts
    where the previous one ended, lookback included.
    """
    feed = f"{connector.source}/bookings/{status or '*'}"
    lookback = timedelta(seconds=connector.config.lookback)
    if cursor is None:
        state = BookingFeed(feed=feed, low=modified_since, until=settled_until())
    else:
        state = await store.load(cursor, feed)
        if state.until is None:
            state = msgspec.structs.replace(state, until=settled_until())
    assert state.until is not None
    seen = dict(state.seen)
    changes = Changes(
        connector,
        low=state.low,
        until=state.until,
        position=state.position,
        seen=seen,
        zone=state.until - lookback,
    )
    items = await changes.take(limit, status)
    following = msgspec.structs.replace(state, position=changes.position, seen=seen)
    if not changes.position.ended:
        return BookingPage(items=items, next_cursor=await store.save(following))
    return BookingPage(items=items, next_cursor=None, sync_cursor=await store.save(following.sync(lookback)))
