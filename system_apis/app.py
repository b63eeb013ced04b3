"""The system layer's app: ``create_app`` is what ``finsync serve system`` runs."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from litestar.openapi.spec import SecurityScheme

from shared.service import create_service
from shared.settings import load_settings
from system_apis.billing.controller import BillingController
from system_apis.billing.registry import BillingRegistry
from system_apis.billing.webhooks import STRIPE_SIGNATURE, BillingWebhookController
from system_apis.crm.controller import CrmController
from system_apis.crm.outbound import OutboundMessageController
from system_apis.crm.registry import CrmRegistry
from system_apis.erp.controller import ErpController
from system_apis.erp.registry import ErpRegistry
from system_apis.events.ingress import Ingress
from system_apis.events.metrics import IngressMetrics
from system_apis.planning.controller import PlanningController
from system_apis.planning.registry import PlanningRegistry
from system_apis.sources.controller import SourcesController
from system_apis.sources.health import SourceRegistry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

    from shared.settings import Settings

__all__ = ("create_app",)

PUSH_SCHEMES = {
    STRIPE_SIGNATURE: SecurityScheme(
        type="apiKey",
        name="Stripe-Signature",
        security_scheme_in="header",
        description='A webhook delivery\'s own signature: `t=<unix>,v1=<hex>`, HMAC-SHA256 of `"{t}.{raw body}"` '
        "under one of the billing source's webhook secrets (`whsec_…`), `t` within the source's tolerance "
        "(300 s). Not a bearer token: the push routes are public and authenticate the push itself.",
    )
}
"""How the push routes authenticate, besides OAuth: the outbound-message route by its secret path token (a
path parameter, which OpenAPI cannot name as a scheme; its description says so)."""

ERP_CONNECTIONS = httpx.Limits(max_connections=64, max_keepalive_connections=32)
"""Connections to the ERPs; each source also caps its own calls in flight (``concurrency``)."""


@asynccontextmanager
async def _sources(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # Probes are never retried: a source that fails its probe is reported down, as it is.
    async with (
        httpx.AsyncClient(follow_redirects=False) as probes,
        httpx.AsyncClient(follow_redirects=False, limits=ERP_CONNECTIONS) as erp,
    ):
        app.state.planning = PlanningRegistry(settings.sources, app.state.redis)
        app.state.erp = ErpRegistry(settings.sources, erp, app.state.redis)
        app.state.crm = CrmRegistry(settings.sources, app.state.redis)
        app.state.billing = BillingRegistry(settings.sources)
        app.state.ingress = Ingress(app.state.redis, settings.events, app.state.ingress_metrics)
        # A planning, CRM or billing source probes itself, with its session's token: a login per probe would
        # be refused, or count against the source's API quota. A generated ledger reaches nothing and says so.
        own_probes = {source: connector.probe for source, connector in app.state.planning.connectors.items()}
        own_probes.update({source: ledger.probe for source, ledger in app.state.erp.generated.items()})
        own_probes.update(app.state.crm.probes)
        own_probes.update(app.state.billing.probes)
        app.state.sources = SourceRegistry(settings.sources, probes, own_probes)
        try:
            yield
        finally:
            await app.state.planning.aclose()
            await app.state.crm.aclose()
            await app.state.billing.aclose()


def create_app(settings: Settings | None = None) -> Litestar:
    """Build system_apis; settings are loaded from the environment only when none are passed."""
    app = create_service(
        name="system",
        title="finsync system APIs",
        description="One connector per source system, behind the canonical finance model.",
        settings=settings or load_settings(),
        route_handlers=[
            SourcesController,
            ErpController,
            PlanningController,
            CrmController,
            BillingController,
            BillingWebhookController,
            OutboundMessageController,
        ],
        resources=[_sources],
        security_schemes=PUSH_SCHEMES,
    )
    app.state.ingress_metrics = IngressMetrics(app.state.metrics)
    return app
