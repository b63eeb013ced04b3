"""The ``/sandbox`` control routes: faults, counters, reset, sessions, limits, time, outbound messages and records.

Salesforce has nothing like them. They take no authentication, so a seed or
a test can steer the sandbox without going through the API it is testing;
never expose a sandbox beyond loopback. They do not count against the API
limit and never get an injected fault. Errors come in Salesforce's error
array, with Salesforce's DML error codes where a write is refused.

Record writes take Salesforce API field names and values as the REST API
would (``{"StageName": "Closed Won"}``), answer the record in the REST
API's shape, and each change to an opportunity queues an outbound
notification.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, Router, get, patch, post, put
from msgspec import Meta

from system_apis.connectors.salesforce.sandbox.errors import JsonParserError
from system_apis.connectors.salesforce.sandbox.faults import FaultConfig
from system_apis.connectors.salesforce.sandbox.org import Record
from system_apis.connectors.salesforce.sandbox.responses import json_response, read_json, render
from system_apis.connectors.salesforce.sandbox.schema import OBJECTS
from system_apis.connectors.salesforce.sandbox.state import Sandbox, sandbox_of

__all__ = ("LimitsUpdate", "TimeUpdate", "control_router")

_T = TypeVar("_T")


class LimitsUpdate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Body of ``PUT /sandbox/limits``; a field left out keeps its value."""

    used: Annotated[int, Meta(ge=0)] | None = None
    """API requests counted so far (set it to the limit to make the next request answer 403)."""
    max: Annotated[int, Meta(ge=0)] | None = None
    """The daily limit."""


class TimeUpdate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Body of ``PUT /sandbox/time``: a moment to jump to, or seconds to move forward (never back)."""

    now: dt.datetime | None = None
    """The moment (RFC 3339, with its offset)."""
    advance_seconds: Annotated[float, Meta(ge=0)] | None = None
    """How far to move forward."""


def _decode(body: bytes, kind: type[_T]) -> _T:
    """``body`` as a ``kind``; 400 ``JSON_PARSER_ERROR`` when it is not JSON or breaks the Struct."""
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise JsonParserError(str(exc)) from exc


async def _object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise JsonParserError("the body is a JSON object of API field names and values")
    return body


def _record(sandbox: Sandbox, kind: str, record: Record) -> dict[str, Any]:
    fields = [field.name for field in OBJECTS[kind].fields]
    return render(record, kind, fields, f"v{sandbox.latest_version}")


@get("/org")
async def get_org(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Ids, username, client id, file paths and record counts (no secret)."""
    return json_response(sandbox_of(request).info())


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


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Back to the state at start."""
    await sandbox_of(request).reset()
    return json_response({"reset": True})


@post("/sessions/expire", status_code=200)
async def expire_sessions(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every access token stops working now."""
    return json_response({"expired": sandbox_of(request).sessions.expire_all()})


def _limits(sandbox: Sandbox) -> dict[str, int]:
    return {"used": sandbox.usage.used, "max": sandbox.usage.limit}


@get("/limits")
async def get_limits(request: Request[Any, Any, Any]) -> Response[bytes]:
    """API requests used and allowed."""
    return json_response(_limits(sandbox_of(request)))


@put("/limits")
async def put_limits(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Set the usage or the limit."""
    sandbox = sandbox_of(request)
    update = _decode(await request.body(), LimitsUpdate)
    if update.max is not None:
        sandbox.usage.limit = update.max
    if update.used is not None:
        sandbox.usage.used = update.used
    return json_response(_limits(sandbox))


def _time(sandbox: Sandbox) -> dict[str, Any]:
    clock = sandbox.org.clock
    return {"now": clock.now().isoformat().replace("+00:00", "Z"), "offset_seconds": round(clock.offset, 3)}


@get("/time")
async def get_time(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The org's clock, and how far it runs ahead of the wall clock."""
    return json_response(_time(sandbox_of(request)))


@put("/time")
async def put_time(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Move the org's clock forward (400 to move it back: stamps never go backwards)."""
    sandbox = sandbox_of(request)
    update = _decode(await request.body(), TimeUpdate)
    if update.now is not None and update.now.tzinfo is None:
        raise JsonParserError("now needs its UTC offset, e.g. 2026-12-01T00:00:00Z")
    try:
        if update.now is not None:
            sandbox.org.clock.set(update.now)
        if update.advance_seconds is not None:
            sandbox.org.clock.advance(update.advance_seconds)
    except ValueError as exc:
        raise JsonParserError(str(exc)) from exc
    return json_response(_time(sandbox))


@get("/outbound")
async def get_outbound(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The outbound message's settings, its ``ActionId`` and the notifications waiting."""
    return json_response(sandbox_of(request).outbound.view())


@patch("/outbound")
async def patch_outbound(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Change some outbound settings (``listener_url``, ``fields``, ``paused``, retry timings, ...)."""
    outbound = sandbox_of(request).outbound
    changes = await _object(request)
    try:
        outbound.update(changes)
    except msgspec.ValidationError as exc:
        raise JsonParserError(str(exc)) from exc
    return json_response(outbound.view())


@post("/outbound/retry", status_code=200)
async def retry_outbound(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every waiting notification is due now."""
    return json_response({"due": sandbox_of(request).outbound.retry_now()})


@get("/outbound/deliveries")
async def get_deliveries(request: Request[Any, Any, Any]) -> Response[bytes]:
    """``{"deliveries": [...]}``: every ``notifications`` call, oldest first, with its outcome."""
    return json_response({"deliveries": sandbox_of(request).outbound.deliveries()})


@post("/accounts", status_code=201)
async def create_account(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create an account from API field values (``Name`` required)."""
    sandbox = sandbox_of(request)
    record = sandbox.org.insert("Account", await _object(request))
    return json_response(_record(sandbox, "Account", record), 201)


@patch("/accounts/{record_id:str}")
async def update_account(request: Request[Any, Any, Any], record_id: str) -> Response[bytes]:
    """Change an account's fields."""
    sandbox = sandbox_of(request)
    record = sandbox.org.update("Account", record_id, await _object(request))
    return json_response(_record(sandbox, "Account", record))


@post("/opportunities", status_code=201)
async def create_opportunity(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create an opportunity, with its products in ``lines`` (``ProductCode``/``Product2Id``, ``Quantity``,
    optional ``UnitPrice``, ``Discount``, ``Description``, ``ServiceDate``); one outbound notification."""
    sandbox = sandbox_of(request)
    body = await _object(request)
    lines = body.pop("lines", None) or []
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise JsonParserError("lines is a list of line item objects")
    record = sandbox.org.create_opportunity(body, lines)
    answer = _record(sandbox, "Opportunity", record)
    answer["lines"] = [
        _record(sandbox, "OpportunityLineItem", line) for line in sandbox.org.line_items(record["Id"])
    ]
    return json_response(answer, 201)


@patch("/opportunities/{record_id:str}")
async def update_opportunity(request: Request[Any, Any, Any], record_id: str) -> Response[bytes]:
    """Change an opportunity (``{"StageName": "Closed Won"}`` wins it); one outbound notification."""
    sandbox = sandbox_of(request)
    record = sandbox.org.update_opportunity(record_id, await _object(request))
    return json_response(_record(sandbox, "Opportunity", record))


@post("/opportunities/{record_id:str}/line-items", status_code=201)
async def add_line_item(request: Request[Any, Any, Any], record_id: str) -> Response[bytes]:
    """Add a product to an opportunity; its ``Amount`` follows; one outbound notification."""
    sandbox = sandbox_of(request)
    line = sandbox.org.add_line_item(record_id, await _object(request))
    return json_response(_record(sandbox, "OpportunityLineItem", line), 201)


def control_router() -> Router:
    """Every ``/sandbox`` route."""
    return Router(
        path="/sandbox",
        route_handlers=[
            get_org,
            get_faults,
            put_faults,
            get_counters,
            reset,
            expire_sessions,
            get_limits,
            put_limits,
            get_time,
            put_time,
            get_outbound,
            patch_outbound,
            retry_outbound,
            get_deliveries,
            create_account,
            update_account,
            create_opportunity,
            update_opportunity,
            add_line_item,
        ],
    )
