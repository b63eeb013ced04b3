"""The experience layer's app: ``create_app`` is what ``finsync serve experience`` runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from experience_apis.clients.process import ProcessClient
from experience_apis.overview import get_overview
from experience_apis.workbench import list_budget_vs_actuals, list_freshness
from shared.service import LayerBelow, create_service
from shared.settings import load_settings

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar

    from shared.settings import Settings

__all__ = ("create_app",)


def create_app(
    settings: Settings | None = None, process_transport: httpx.AsyncBaseTransport | None = None
) -> Litestar:
    """Build experience_apis; settings are loaded from the environment only when none are passed.

    Args:
        settings: Decoded settings.
        process_transport: Transport to the process layer; real HTTP unless a test passes one.
    """
    return create_service(
        name="experience",
        title="finsync experience APIs",
        description="Planning workbenches and finance dashboards.",
        settings=settings or load_settings(),
        route_handlers=[get_overview, list_budget_vs_actuals, list_freshness],
        below=LayerBelow("process", ProcessClient, process_transport),
    )
