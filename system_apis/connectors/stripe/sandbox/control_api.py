"""The ``/sandbox`` control routes: faults, counters, reset, clock, idempotency keys, webhooks, seed. Sandbox only.

Stripe has nothing like them. They take no authentication, so a test can steer
the sandbox without going through the API it is testing; never expose a
sandbox beyond loopback. Bodies are JSON; errors use Stripe's error shape.

- ``PUT /sandbox/faults`` (a :class:`~.faults.FaultConfig`) and ``GET /sandbox/faults``;
- ``GET /sandbox/counters``: what happened since start or reset;
- ``POST /sandbox/reset``: fresh seed, no keys, no events, faults off, counters zero, clock and webhooks as at start;
- ``GET /sandbox/clock``, ``POST /sandbox/clock/advance`` ``{"seconds": n}``: the sandbox's time;
- ``GET /sandbox/idempotency``, ``POST /sandbox/idempotency/expire`` ``{"older_than": s}`` (omitted: every key);
- ``GET``/``POST /sandbox/webhooks/endpoints`` (``{"url", "secret"?, "enabled_events"?, "description"?}``,
  answered with the secret), ``DELETE /sandbox/webhooks/endpoints/{id}``;
- ``GET``/``PUT /sandbox/webhooks/timings`` (a :class:`~.config.WebhookTimings`);
- ``GET /sandbox/webhooks/deliveries[?event=evt_…]``: every attempt, and how many deliveries are pending;
- ``GET /sandbox/seed``: the seeded customers, products and prices with their ERP codes.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath
from msgspec import Meta

from system_apis.connectors.stripe.sandbox.config import WebhookTimings
from system_apis.connectors.stripe.sandbox.errors import InvalidRequestError
from system_apis.connectors.stripe.sandbox.faults import FaultConfig
from system_apis.connectors.stripe.sandbox.objects import Customer, Price, Product, WebhookEndpoint
from system_apis.connectors.stripe.sandbox.responses import json_response
from system_apis.connectors.stripe.sandbox.state import sandbox_of
from system_apis.connectors.stripe.sandbox.store import new_id

__all__ = ("Advance", "EndpointCreate", "Expire", "control_router")

_T = TypeVar("_T")


class Advance(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Body of ``POST /sandbox/clock/advance``."""

    seconds: Annotated[int, Meta(ge=0, le=400 * 86400)]
    """How far to move the sandbox's clock forward."""


class Expire(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Body of ``POST /sandbox/idempotency/expire``."""

    older_than: Annotated[int, Meta(ge=0)] | None = None
    """Prune keys at least this many seconds old; every finished key when omitted."""


class EndpointCreate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Body of ``POST /sandbox/webhooks/endpoints``."""

    url: str
    """Where events are POSTed."""
    secret: Annotated[str, Meta(pattern=r"^whsec_\S+$")] | None = None
    """Its signing secret; generated when omitted."""
    enabled_events: list[str] = msgspec.field(default_factory=lambda: ["*"])
    """Event types sent there; ``*`` is every type."""
    description: str | None = None
    """Shown on the endpoint object."""


def _decode(body: bytes, kind: type[_T]) -> _T:
    """``body`` (``{}`` when empty) as a ``kind``; 400 when it is not JSON or breaks the Struct's constraints."""
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidRequestError(str(exc)) from exc


@get("/faults")
async def get_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The fault configuration and the fault counters."""
    return json_response(sandbox_of(request).faults.view())


@put("/faults")
async def put_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Replace the fault configuration (fields left out are off) and reseed the draws; answers the config."""
    sandbox = sandbox_of(request)
    sandbox.faults.configure(_decode(await request.body(), FaultConfig))
    return json_response(msgspec.to_builtins(sandbox.faults.config))


@get("/counters")
async def get_counters(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Counts of what happened, the injected faults included."""
    sandbox = sandbox_of(request)
    return json_response(
        {**msgspec.to_builtins(sandbox.counters), "webhooks_pending": sandbox.webhooks.pending()}
    )


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Back to the state at start."""
    await sandbox_of(request).reset()
    return json_response({"reset": True})


@get("/clock")
async def get_clock(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The sandbox's now and how far it is ahead of the wall clock."""
    clock = sandbox_of(request).clock
    return json_response({"now": clock.now(), "offset": clock.offset})


@post("/clock/advance", status_code=200)
async def advance_clock(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Move the sandbox's clock forward (it never goes back): ages idempotency keys and events, skews the
    ``t=`` of webhook signatures."""
    clock = sandbox_of(request).clock
    clock.advance(_decode(await request.body(), Advance).seconds)
    return json_response({"now": clock.now(), "offset": clock.offset})


@get("/idempotency")
async def get_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every saved ``Idempotency-Key``: endpoint, age, saved status, whether its request still runs."""
    return json_response({"keys": sandbox_of(request).idempotency.view()})


@post("/idempotency/expire", status_code=200)
async def expire_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prune saved keys now, as Stripe may once they are 24 hours old."""
    older_than = _decode(await request.body(), Expire).older_than
    return json_response({"expired": sandbox_of(request).idempotency.expire(older_than)})


@get("/webhooks/endpoints")
async def list_endpoints(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every live endpoint, with its secret."""
    sandbox = sandbox_of(request)
    endpoints = sandbox.store.newest_first(WebhookEndpoint)
    return json_response({"endpoints": [{**sandbox.render(e), "secret": e.secret} for e in endpoints]})


@post("/webhooks/endpoints", status_code=200)
async def add_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Add an endpoint with a chosen (or generated) secret; answers it with the secret."""
    sandbox = sandbox_of(request)
    spec = _decode(await request.body(), EndpointCreate)
    endpoint = sandbox.store.add(
        WebhookEndpoint(
            id=new_id("we"),
            created=sandbox.clock.now(),
            url=spec.url,
            secret=spec.secret or f"whsec_{secrets.token_urlsafe(24)}",
            enabled_events=list(spec.enabled_events),
            description=spec.description,
        )
    )
    return json_response({**sandbox.render(endpoint), "secret": endpoint.secret})


@delete("/webhooks/endpoints/{endpoint:str}", status_code=200)
async def remove_endpoint(request: Request[Any, Any, Any], endpoint: FromPath[str]) -> Response[bytes]:
    """Delete an endpoint: its pending deliveries stop."""
    record = sandbox_of(request).store.get(WebhookEndpoint, endpoint)
    record.deleted = True
    return json_response(record.render_deleted())


@get("/webhooks/timings")
async def get_timings(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The retry timings in force."""
    return json_response(msgspec.to_builtins(sandbox_of(request).webhooks.timings))


@put("/webhooks/timings")
async def put_timings(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Replace the retry timings (fields left out take their defaults); applies to the next retry scheduled."""
    sandbox = sandbox_of(request)
    sandbox.webhooks.timings = _decode(await request.body(), WebhookTimings)
    return json_response(msgspec.to_builtins(sandbox.webhooks.timings))


@get("/webhooks/deliveries")
async def get_deliveries(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every delivery attempt in order (``?event=evt_…`` for one event's), and the deliveries still pending."""
    sandbox = sandbox_of(request)
    event = request.query_params.get("event")
    attempts = [a for a in sandbox.webhooks.attempts if event is None or a["event"] == event]
    return json_response({"attempts": attempts, "pending": sandbox.webhooks.pending()})


@get("/seed")
async def get_seed(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The seeded customers, products and prices with their ERP codes, for coherence checks."""
    store = sandbox_of(request).store
    return json_response(
        {
            "variant": sandbox_of(request).config.seed_variant,
            "customers": [
                {"id": c.id, "erp_party": c.metadata.get("erp_party"), "name": c.name, "currency": c.currency}
                for c in reversed(store.newest_first(Customer))
                if "erp_party" in c.metadata
            ],
            "products": [
                {"id": p.id, "erp_product": p.metadata.get("erp_product"), "name": p.name}
                for p in reversed(store.newest_first(Product))
                if "erp_product" in p.metadata
            ],
            "prices": [
                {"id": p.id, "lookup_key": p.lookup_key, "currency": p.currency, "unit_amount": p.unit_amount}
                for p in reversed(store.newest_first(Price))
                if p.lookup_key
            ],
        }
    )


def control_router() -> Router:
    """Every ``/sandbox`` route."""
    return Router(
        path="/sandbox",
        route_handlers=[
            get_faults,
            put_faults,
            get_counters,
            reset,
            get_clock,
            advance_clock,
            get_keys,
            expire_keys,
            list_endpoints,
            add_endpoint,
            remove_endpoint,
            get_timings,
            put_timings,
            get_deliveries,
            get_seed,
        ],
    )
