"""The flow, subscribed to the event path while the process service runs.

It opens after :func:`process_apis.events.runtime.events_runtime`, whose
handlers it subscribes to, and reads its map at start: a map that cannot be
read stops the start, not an event.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from process_apis.flows.order_to_cash.flow import OrderToCash
from process_apis.flows.order_to_cash.mapping import load_map

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

    from process_apis.events.runtime import EventPath
    from shared.settings import Settings

__all__ = ("order_to_cash_runtime",)


@asynccontextmanager
async def order_to_cash_runtime(app: Litestar) -> AsyncIterator[None]:
    """Build the flow (kept on ``app.state.order_to_cash``) and subscribe it, unless it is turned off."""
    settings: Settings = app.state.settings
    config = settings.order_to_cash
    mapping = load_map(config.map_version, Path(config.maps_dir) if config.maps_dir else None)
    flow = OrderToCash(app.state.below, app.state.ledger.store, config, mapping)
    app.state.order_to_cash = flow
    path: EventPath = app.state.events
    if not config.enabled:
        yield
        return
    flow.subscribe(path.handlers)
    try:
        yield
    finally:
        flow.unsubscribe(path.handlers)
