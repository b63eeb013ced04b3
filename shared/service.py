"""The service factory: every layer's app is built here, the same way.

A layer passes its name, its routes, the layer it calls, and any resources it
opens for its lifetime. The factory
adds what every service shares: settings on ``app.state``, the Redis client,
problem details, health, metrics, the OpenAPI spec at ``/schema`` and the
observability middleware.
"""

from __future__ import annotations

import contextlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme
from litestar.routes import HTTPRoute

from shared.auth import SCOPES
from shared.auth.client import ClientCredentialsAuth
from shared.auth.middleware import AccessControl, AuthMiddleware
from shared.auth.resource import JwksSource, RevocationList, TokenVerifier
from shared.health import HealthController
from shared.http_client import LayerClient, create_http_client
from shared.observability.access import AccessLog
from shared.observability.logging import configure_logging
from shared.observability.metrics import HttpMetrics, metrics_endpoint
from shared.observability.middleware import ObservabilityMiddleware
from shared.problems import problem_page, problems_plugin
from shared.ratelimit import RateLimiter
from shared.redis import EmbeddedRedis, open_redis
from shared.request import FinsyncRequest
from shared.schema_plugins import StrictStructSchemaPlugin

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from contextlib import AbstractAsyncContextManager

    import httpx
    from litestar.types import ControllerRouterHandler

    from shared.settings import LayerName, Settings

__all__ = ("VERSION", "LayerBelow", "create_service", "redis_check")

VERSION = "0.1.0"


async def redis_check(state: Any) -> None:
    """Readiness: Redis answers PING."""
    await state.redis.ping()


@asynccontextmanager
async def _redis_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(Path(settings.data_dir))
        embedded.start()
        url = embedded.url
    app.state.redis = open_redis(url)
    app.state.redis_url = url
    try:
        yield
    finally:
        await app.state.redis.aclose()
        if embedded is not None:
            embedded.stop()


@dataclass(frozen=True)
class LayerBelow:
    """The layer a service calls, and the typed client it calls it with."""

    layer: LayerName
    """Which layer: its base URL comes from the settings."""
    client: type[LayerClient]
    """Typed client class, built over the one shared ``httpx.AsyncClient``."""
    transport: httpx.AsyncBaseTransport | None = None
    """Test seam: an ``ASGITransport`` to an in-process app; real HTTP when ``None``."""


def _below_auth(settings: Settings, layer: LayerName) -> ClientCredentialsAuth | None:
    auth = settings.auth
    if auth.client_id is None or auth.client_secret is None:
        return None
    return ClientCredentialsAuth(
        token_url=auth.token_url or f"{auth.issuer}/oauth/token",
        client_id=auth.client_id,
        client_secret=auth.client_secret,
        audience=f"finsync-{layer}",
        timeout=settings.client.timeout,
    )


@asynccontextmanager
async def _below_lifespan(app: Litestar, below: LayerBelow) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with create_http_client(
        settings.below_url(below.layer),
        service=app.state.service,
        timeout=settings.client.timeout,
        retries=settings.client.retries,
        backoff_factor=settings.client.backoff_factor,
        transport=below.transport,
        auth=_below_auth(settings, below.layer),
    ) as http:
        app.state.below = below.client(http)
        yield


def _access_control(name: str, settings: Settings, resource_server: bool) -> AccessControl:
    auth = settings.auth
    verifier = None
    if resource_server and auth.enabled:
        jwks = JwksSource(
            url=None if auth.jwks_file else (auth.jwks_url or f"{auth.issuer}/jwks.json"),
            file=auth.jwks_file,
            refetch_interval=auth.jwks_refetch_interval,
        )
        verifier = TokenVerifier(auth, auth.audience or f"finsync-{name}", jwks, None, settings.clients)
    return AccessControl(
        verifier=verifier,
        rate_limited=resource_server and settings.rate_limit.enabled,
        tiers={client_id: client.tier for client_id, client in settings.clients.items()},
        anonymous_tier=settings.rate_limit.anonymous_tier,
        public_metrics=auth.public_metrics,
    )


@asynccontextmanager
async def _access_lifespan(app: Litestar, access: AccessControl) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    revocations: RevocationList | None = None
    if access.verifier is not None:
        revocations = RevocationList(app.state.redis)
        await revocations.start()
        access.verifier.revocations = revocations
    limiter: RateLimiter | None = None
    if access.rate_limited:
        metrics: HttpMetrics | None = app.state.metrics
        limiter = RateLimiter(
            settings,
            app.state.redis_url,
            metrics.registry if metrics is not None else None,
            service=app.state.service,
        )
        access.limiter = limiter
    try:
        yield
    finally:
        access.limiter = None
        if limiter is not None:
            await limiter.aclose()
        if revocations is not None:
            await revocations.stop()


def _openapi(
    title: str, description: str, settings: Settings, schemes: Mapping[str, SecurityScheme]
) -> OpenAPIConfig:
    token_url = settings.auth.token_url or f"{settings.auth.issuer}/oauth/token"
    return OpenAPIConfig(
        title=title,
        version=VERSION,
        description=description,
        path="/schema",
        use_handler_docstrings=True,
        render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin()],
        components=Components(
            security_schemes={
                "oauth2": SecurityScheme(
                    type="oauth2",
                    description="OAuth 2.0 client credentials; JWT access tokens (RFC 9068) for this service's audience.",
                    flows=OAuthFlows(client_credentials=OAuthFlow(token_url=token_url, scopes=dict(SCOPES))),
                ),
                **schemes,
            }
        ),
    )


def create_service(
    *,
    name: str,
    title: str,
    description: str,
    settings: Settings,
    route_handlers: Sequence[ControllerRouterHandler],
    below: LayerBelow | None = None,
    resources: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    resource_server: bool = True,
    security_schemes: Mapping[str, SecurityScheme] | None = None,
) -> Litestar:
    """Build one layer's Litestar app.

    Args:
        name: Service name (``system``, ``process``, ``experience``); tags logs and metrics.
        title: OpenAPI title.
        description: OpenAPI description.
        settings: Decoded settings; nothing is read from the environment here.
        route_handlers: The layer's own controllers and handlers.
        below: The layer this one calls; its client is kept on ``app.state.below``.
        resources: Async context managers opened after Redis and the layer below, closed before them.
        resource_server: Require bearer tokens (per ``settings.auth``); False only for the
            authorization server itself, whose endpoints authenticate clients their own way.
        security_schemes: OpenAPI security schemes besides ``oauth2``, for public operations that
            authenticate their callers their own way (a webhook's signature).
    """
    metrics = HttpMetrics(name) if settings.metrics.enabled else None
    access_log = AccessLog(name) if settings.log.access and settings.log.level in ("DEBUG", "INFO") else None
    access = _access_control(name, settings, resource_server)
    handlers: list[ControllerRouterHandler] = [HealthController, problem_page, *route_handlers]
    if metrics is not None:
        handlers.append(metrics_endpoint)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        configure_logging(name, settings.log.level)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(_redis_lifespan(app))
            await stack.enter_async_context(_access_lifespan(app, access))
            if below is not None:
                await stack.enter_async_context(_below_lifespan(app, below))
            for resource in resources:
                await stack.enter_async_context(resource(app))
            try:
                yield
            finally:
                if access_log is not None:
                    access_log.flush()

    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        request_class=FinsyncRequest,
        plugins=[problems_plugin(), StrictStructSchemaPlugin()],
        openapi_config=_openapi(title, description, settings, security_schemes or {}),
        # Operations that take an Idempotency-Key carry their own middleware, inside this one,
        # so keys are scoped by the client that auth has verified and other routes pay nothing.
        middleware=[DefineMiddleware(AuthMiddleware, access=access)] if access.active else [],
        request_max_body_size=settings.http.max_body_size,
        logging_config=None,  # configure_logging owns the root logger: one JSON format
        debug=False,
    )
    app.state.service = name
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.readiness_checks = {"redis": redis_check}
    # Wrap the whole ASGI handler, as Litestar's own OpenTelemetry plugin does, so
    # routing answers (404, 405) are traced, counted and logged like any other.
    app.asgi_handler = ObservabilityMiddleware(
        app.asgi_handler,
        metrics=metrics,
        access_log=access_log,
        max_body_size=settings.http.max_body_size,
        allow={
            route.path_format: ", ".join(sorted(route.methods)).encode()
            for route in app.routes
            if isinstance(route, HTTPRoute)
        },
    )
    return app
