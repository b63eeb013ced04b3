"""The ``/sandbox`` control routes: faults, counters, token expiry, reset, cells and poll speed. Sandbox only.

Anaplan has nothing like them. They take no authentication, so a test can
steer the sandbox without going through the API it is testing; never expose a
sandbox beyond loopback.

- ``PUT /sandbox/faults`` (a :class:`~.faults.FaultConfig` as JSON) and ``GET /sandbox/faults``;
- ``GET /sandbox/counters``: what happened since start or reset;
- ``POST /sandbox/tokens/expire``: every token expires now;
- ``POST /sandbox/reset``: fresh seeded model, no tokens, no tasks, faults off, counters zero;
- ``GET /sandbox/cells?version=Budget``: a version's cells, without going through an export;
- ``PUT /sandbox/polling`` ``{"min_interval": s}`` and ``GET /sandbox/polling``: the minimum interval between
  two polls of one task, never below the one the sandbox started with.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, get, post, put
from msgspec import Meta

from system_apis.connectors.anaplan.sandbox.errors import InvalidRequestError, UnknownObjectError
from system_apis.connectors.anaplan.sandbox.faults import FaultConfig
from system_apis.connectors.anaplan.sandbox.responses import json_response
from system_apis.connectors.anaplan.sandbox.state import sandbox_of

__all__ = ("PollingConfig", "control_router")

_T = TypeVar("_T")


class PollingConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Body of ``PUT /sandbox/polling``."""

    min_interval: Annotated[float, Meta(ge=0, le=3600)]
    """Seconds between two answered polls of one task."""


def _decode(body: bytes, kind: type[_T]) -> _T:
    """``body`` as a ``kind``; 400 when it is not JSON or breaks the Struct's constraints."""
    try:
        return msgspec.json.decode(body, type=kind)
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
    return json_response(msgspec.to_builtins(sandbox_of(request).counters))


@post("/tokens/expire", status_code=200)
async def expire_tokens(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every token expires now."""
    return json_response({"expired": sandbox_of(request).tokens.expire_all()})


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Back to the state at start."""
    await sandbox_of(request).reset()
    return json_response({"reset": True})


@get("/cells")
async def get_cells(request: Request[Any, Any, Any]) -> Response[bytes]:
    """``{"cells": [{entity, account, cost_center, time, amount}]}`` of one version, in model order."""
    model = sandbox_of(request).model
    version = request.query_params.get("version")
    if not version:
        raise InvalidRequestError("version is required, e.g. ?version=Budget")
    if model.version(version) is None:
        raise UnknownObjectError(f"version {version} not found")
    cells = [
        {
            "entity": entity,
            "account": account,
            "cost_center": centre,
            "time": month,
            "amount": format(amount, "f"),
        }
        for entity, account, centre, month, amount in model.rows(version)
    ]
    return json_response({"cells": cells})


@get("/polling")
async def get_polling(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The current and the starting minimum poll interval."""
    sandbox = sandbox_of(request)
    return json_response(
        {"min_interval": sandbox.min_poll_interval, "floor": sandbox.config.min_poll_interval}
    )


@put("/polling")
async def put_polling(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Change the minimum poll interval (400 below the starting one: fast polling is a start-up choice)."""
    sandbox = sandbox_of(request)
    sandbox.set_min_poll_interval(_decode(await request.body(), PollingConfig).min_interval)
    return json_response(
        {"min_interval": sandbox.min_poll_interval, "floor": sandbox.config.min_poll_interval}
    )


def control_router() -> Router:
    """Every ``/sandbox`` route."""
    return Router(
        path="/sandbox",
        route_handlers=[
            get_faults,
            put_faults,
            get_counters,
            expire_tokens,
            reset,
            get_cells,
            get_polling,
            put_polling,
        ],
    )
