"""The process layer's app: ``create_app`` is what ``finsync serve process`` runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from process_apis.clients.system import SystemClient
from process_apis.controls.controller import ControlsController
from process_apis.events.runtime import events_runtime
from process_apis.flows.actuals_to_plan.controller import ActualsToPlanController
from process_apis.flows.controller import FlowsController
from process_apis.flows.order_to_cash.runtime import order_to_cash_runtime
from process_apis.runtime import flows_runtime
from process_apis.status import get_system_health
from process_apis.workbench import WorkbenchController
from shared.service import LayerBelow, create_service
from shared.settings import load_settings

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar

    from shared.settings import Settings

__all__ = ("create_app",)


def create_app(
    settings: Settings | None = None, system_transport: httpx.AsyncBaseTransport | None = None
) -> Litestar:
    """Build process_apis; settings are loaded from the environment only when none are passed.

    Args:
        settings: Decoded settings.
        system_transport: Transport to the system layer; real HTTP unless a test passes one.
    """
    return create_service(
        name="process",
        title="finsync process APIs",
        description="Cross-system finance flows, with validation, idempotency, audit and reconciliation.",
        settings=settings or load_settings(),
        route_handlers=[
            FlowsController,
            ActualsToPlanController,
            ControlsController,
            WorkbenchController,
            get_system_health,
        ],
        below=LayerBelow("system", SystemClient, system_transport),
        # The event path uses the ledger that flows_runtime opens, so it opens after it; order to cash
        # subscribes to the event path, so it opens last.
        resources=[flows_runtime, events_runtime, order_to_cash_runtime],
    )
