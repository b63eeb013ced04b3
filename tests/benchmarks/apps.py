"""App factories for the throughput benchmarks, served by granian with ``--factory``.

Every factory builds its own ``GET /v1/ping`` handler returning ``{"status": "ok"}``,
so the apps differ only in what wraps that route:

- ``bare_app``: a plain ``Litestar`` app, nothing else;
- ``kernel_app``: ``shared.service.create_service`` with default settings (problem
  details, observability middleware with access log and metrics, health, OpenAPI);
- ``plugins_app``: a plain app with Litestar's own Prometheus middleware and
  structlog plugin, the alternative the kernel's lean middleware replaced.

``kernel_app`` needs ``FINSYNC_REDIS_URL`` (the benchmark starts a Redis and sets it).
"""

from __future__ import annotations

from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler

from shared.service import create_service
from shared.settings import load_settings

__all__ = ("PING_BODY", "PING_PATH", "bare_app", "kernel_app", "plugins_app")

PING_PATH = "/v1/ping"
PING_BODY = b'{"status":"ok"}'


def _ping_handler() -> HTTPRouteHandler:
    """A fresh ping handler: a route handler instance belongs to one app only."""

    @get(PING_PATH, sync_to_thread=False)
    def ping() -> dict[str, str]:
        """Answer with a constant JSON object."""
        return {"status": "ok"}

    return ping


def bare_app() -> Litestar:
    """The baseline: the ping route on a plain Litestar app."""
    return Litestar(route_handlers=[_ping_handler()])


def kernel_app() -> Litestar:
    """The ping route on the kernel, with settings from ``FINSYNC_*`` (defaults otherwise)."""
    return create_service(
        name="bench",
        title="bench",
        description="bench",
        settings=load_settings(),
        route_handlers=[_ping_handler()],
    )


def plugins_app() -> Litestar:
    """The ping route with Litestar's Prometheus middleware and structlog plugin, as they come."""
    from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
    from litestar.plugins.structlog import StructlogPlugin

    return Litestar(
        route_handlers=[_ping_handler(), PrometheusController],
        middleware=[PrometheusConfig(app_name="bench").middleware],
        plugins=[StructlogPlugin()],
    )
