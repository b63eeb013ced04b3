"""App factories for the throughput benchmarks, served by granian with ``--factory``.

Every factory builds its own ``GET /v1/ping`` handler answering ``{"status": "ok"}``,
so the apps differ only in what wraps that route:

- ``bare_app``: a plain ``Litestar`` app, nothing else;
- ``kernel_app``: ``shared.service.create_service`` with default settings but auth
  and rate limiting off (problem details, request id, observability middleware with
  access log and metrics, health, OpenAPI): the kernel's own cost;
- ``plugins_app``: a plain app with Litestar's own Prometheus middleware and
  structlog plugin, the alternative the kernel's lean middleware replaced;
- ``auth_app``: ``create_service`` with bearer tokens required (scope ``flows:read``)
  and rate limiting on, from ``FINSYNC_*`` settings (``bench_auth`` sets the JWKS
  file, the issuer and a tier limit that never trips);
- ``bare_redis_app``: a plain ``Litestar`` app whose route makes the same Redis
  round trip as the rate limiter (the same two ``limits`` Lua scripts, by
  ``EVALSHA``, written at once on a raw redis-py connection), and nothing else;
- ``kernel_redis_app`` / ``kernel_redis_quiet_app``: the same raw round trip on the
  kernel with auth and rate limiting off, with and without the access log and
  metrics (``bench_auth --ablation``: where the authenticated route's time goes);
- ``layer_lower_app`` / ``layer_upper_app``: a lower layer and a layer above it whose
  route calls the lower route over HTTP (``create_service(below=...)``) and answers
  its JSON, auth and rate limits on; ``layer_lower_open_app`` / ``layer_upper_open_app``:
  the same with both off. The upper layer sends a static bearer token
  (``BENCH_BELOW_TOKEN``) to the layer below instead of fetching one with client
  credentials, since no authorization server runs in the benchmark.

Every factory but ``bare_app`` and ``plugins_app`` needs ``FINSYNC_REDIS_URL`` (the
benchmark starts a Redis and sets it); the upper layers need ``FINSYNC_SYSTEM_URL``.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx
import limits
import msgspec
import redis.asyncio as aioredis
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler

from shared.auth import SCOPES
from shared.auth.middleware import requires
from shared.http_client import LayerClient
from shared.service import LayerBelow, create_service
from shared.settings import AuthSettings, RateLimitSettings, Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio.connection import Connection

__all__ = (
    "BELOW_SCOPE",
    "BENCH_RATE",
    "PING_BODY",
    "PING_PATH",
    "PING_SCOPE",
    "auth_app",
    "bare_app",
    "bare_redis_app",
    "kernel_app",
    "kernel_redis_app",
    "kernel_redis_quiet_app",
    "layer_lower_app",
    "layer_lower_open_app",
    "layer_upper_app",
    "layer_upper_open_app",
    "plugins_app",
)

PING_PATH = "/v1/ping"
PING_BODY = b'{"status":"ok"}'
PING_SCOPE = "flows:read"
"""The scope the protected ping routes (``auth_app``, ``layer_upper_app``) require."""
BELOW_SCOPE = "erp:read"
"""The scope the lower layer's ping route requires."""
BENCH_RATE = "100000000/minute"
"""The tier limit of the benchmarks with rate limiting on: counted, never reached."""
BELOW_TOKEN_ENV = "BENCH_BELOW_TOKEN"
"""Bearer token the upper layer sends to the layer below; unset: none."""
assert PING_SCOPE in SCOPES
assert BELOW_SCOPE in SCOPES


def _ping_handler(**route: Any) -> HTTPRouteHandler:
    """A fresh ping handler: a route handler instance belongs to one app only."""

    @get(PING_PATH, sync_to_thread=False, **route)
    def ping() -> dict[str, str]:
        """Answer with a constant JSON object."""
        return {"status": "ok"}

    return ping


def _open(settings: Settings) -> Settings:
    """``settings`` with auth and rate limiting off."""
    return msgspec.structs.replace(
        settings, auth=AuthSettings(enabled=False), rate_limit=RateLimitSettings(enabled=False)
    )


def _secured() -> Settings:
    """Settings from ``FINSYNC_*``, checked to have auth (from a JWKS file) and rate limiting on."""
    settings = load_settings()
    if not (settings.auth.enabled and settings.auth.jwks_file and settings.rate_limit.enabled):
        raise RuntimeError("this app needs auth (FINSYNC_AUTH__JWKS_FILE) and rate limiting on")
    return settings


def bare_app() -> Litestar:
    """The baseline: the ping route on a plain Litestar app."""
    return Litestar(route_handlers=[_ping_handler()])


def kernel_app() -> Litestar:
    """The ping route on the kernel, without auth and rate limiting.

    Settings come from ``FINSYNC_*`` (defaults otherwise) with ``auth.enabled=false``
    and ``rate_limit.enabled=false``, so this measures the kernel itself: problem
    details, request id, trace context, access log and metrics. The auth and
    idempotency middlewares are still in the stack; they pass the call through.
    """
    return create_service(
        name="bench",
        title="bench",
        description="bench",
        settings=_open(load_settings()),
        route_handlers=[_ping_handler()],
    )


def auth_app() -> Litestar:
    """The ping route on the kernel with a bearer token (scope ``flows:read``) and rate limiting required.

    Settings come from ``FINSYNC_*``: ``auth.jwks_file`` and ``auth.issuer`` name the
    issuer whose tokens are accepted (audience ``finsync-bench``), ``FINSYNC_CONFIG``
    the tiers; metrics and the access log are at their defaults.
    """
    return create_service(
        name="bench",
        title="bench",
        description="bench",
        settings=_secured(),
        route_handlers=[_ping_handler(**requires(PING_SCOPE))],
    )


def _lua(name: str) -> str:
    return resources.files("limits").joinpath(f"resources/redis/lua_scripts/{name}.lua").read_text()


@dataclass
class _RawRedis:
    pool: aioredis.ConnectionPool
    packed: list[bytes]
    idle: list[Connection]


def _raw_round_trip(prefix: str) -> tuple[HTTPRouteHandler, Any]:
    """A ping handler making the rate limiter's Redis round trip with raw redis-py, and its lifespan.

    The same wire path as ``shared.ratelimit.RateLimiter``: ``EVALSHA`` of ``limits``'
    sliding-window scripts, acquire then read, on the same key layout and arguments
    with the ``BENCH_RATE`` limit, packed once and written to a raw redis-py
    connection taken from a free list (no socket timeout: nothing but the I/O),
    then both replies read (and not looked at).
    """
    url = os.environ["FINSYNC_REDIS_URL"]
    item = limits.parse(BENCH_RATE)
    current = f"{prefix}:{{" + item.key_for(prefix, "client:partner-1", "*") + "}"
    keys = (f"{current}/-1", current)
    expiry = item.get_expiry()
    raw: list[_RawRedis] = []

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        pool = aioredis.ConnectionPool.from_url(url, socket_timeout=None)
        client = aioredis.Redis(connection_pool=pool)
        try:
            acquire = await client.script_load(_lua("acquire_sliding_window"))
            window = await client.script_load(_lua("sliding_window"))
            packed = pool.make_connection().pack_commands(
                [
                    ("EVALSHA", acquire, 2, *keys, item.amount, expiry, 1),
                    ("EVALSHA", window, 2, *keys, expiry),
                ]
            )
            raw.append(_RawRedis(pool, packed, []))
            yield
        finally:
            for connection in raw[0].idle if raw else ():
                await connection.disconnect()
            await client.aclose()
            await pool.aclose()

    @get(PING_PATH)
    async def ping() -> dict[str, str]:
        """Make one Redis round trip, then answer with a constant JSON object."""
        redis = raw[0]
        connection = redis.idle.pop() if redis.idle else redis.pool.make_connection()
        await connection.send_packed_command(redis.packed, check_health=False)
        await connection.read_response()
        await connection.read_response()
        redis.idle.append(connection)
        return {"status": "ok"}

    return ping, lifespan


def bare_redis_app() -> Litestar:
    """The baseline of ``auth_app``: a plain app whose route makes the rate limiter's Redis round trip.

    See :func:`_raw_round_trip`. With redis-py's pipeline API instead, this
    baseline is about 10% slower (README, "Benchmarks").
    """
    ping, lifespan = _raw_round_trip("bench-bare")
    return Litestar(route_handlers=[ping], lifespan=[lifespan])


def kernel_redis_app() -> Litestar:
    """The same raw round trip on the kernel, auth and rate limiting off: what the kernel costs around that I/O."""
    ping, lifespan = _raw_round_trip("bench-kernel")
    return create_service(
        name="bench",
        title="bench",
        description="bench",
        settings=_open(load_settings()),
        route_handlers=[ping],
        resources=[lifespan],
    )


def kernel_redis_quiet_app() -> Litestar:
    """As ``kernel_redis_app`` with the access log and metrics off: what those two cost."""
    ping, lifespan = _raw_round_trip("bench-quiet")
    settings = _open(load_settings())
    settings = msgspec.structs.replace(
        settings,
        log=msgspec.structs.replace(settings.log, access=False),
        metrics=msgspec.structs.replace(settings.metrics, enabled=False),
    )
    return create_service(
        name="bench",
        title="bench",
        description="bench",
        settings=settings,
        route_handlers=[ping],
        resources=[lifespan],
    )


class _StaticBearer(httpx.AsyncBaseTransport):
    """HTTP to the layer below, with a fixed ``Authorization: Bearer`` (none when ``token`` is ``None``)."""

    def __init__(self, token: str | None) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._authorization = None if token is None else f"Bearer {token}"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._authorization is not None:
            request.headers["authorization"] = self._authorization
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _lower(settings: Settings) -> Litestar:
    return create_service(
        name="system",
        title="bench lower layer",
        description="bench",
        settings=settings,
        route_handlers=[_ping_handler(**requires(BELOW_SCOPE))],
    )


def _upper(settings: Settings, token: str | None) -> Litestar:
    @get(PING_PATH, **requires(PING_SCOPE))
    async def ping(state: State) -> dict[str, str]:
        """Answer what the layer below answers to the same route."""
        below: LayerClient = state.below
        return await below.get(PING_PATH, dict[str, str])

    return create_service(
        name="process",
        title="bench upper layer",
        description="bench",
        settings=settings,
        route_handlers=[ping],
        below=LayerBelow("system", LayerClient, transport=_StaticBearer(token)),
    )


def layer_lower_app() -> Litestar:
    """The lower layer (``system``, audience ``finsync-system``), auth and rate limiting on."""
    return _lower(_secured())


def layer_upper_app() -> Litestar:
    """The upper layer (``process``), auth and rate limiting on; sends ``BENCH_BELOW_TOKEN`` below."""
    return _upper(_secured(), os.environ[BELOW_TOKEN_ENV])


def layer_lower_open_app() -> Litestar:
    """The lower layer with auth and rate limiting off."""
    return _lower(_open(load_settings()))


def layer_upper_open_app() -> Litestar:
    """The upper layer with auth and rate limiting off; sends no token below."""
    return _upper(_open(load_settings()), None)


def plugins_app() -> Litestar:
    """The ping route with Litestar's Prometheus middleware and structlog plugin, as they come."""
    from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
    from litestar.plugins.structlog import StructlogPlugin

    return Litestar(
        route_handlers=[_ping_handler(), PrometheusController],
        middleware=[PrometheusConfig(app_name="bench").middleware],
        plugins=[StructlogPlugin()],
    )
