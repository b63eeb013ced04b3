"""The REST API under ``/services/data``: versions, resources, limits, SOQL query with its batches, sObject GET.

Before any versioned handler runs, :func:`_guard`:

1. counts the request;
2. draws the injected faults: a faulted request answers at once and does nothing else (not even count
   against the API limit);
3. requires a live ``Authorization: Bearer <access token>``: 401 ``INVALID_SESSION_ID`` otherwise;
4. counts the request against the daily API limit: once it is used up, 403 ``REQUEST_LIMIT_EXCEEDED``;
5. checks the version in the path (``v66.0``): 404 ``NOT_FOUND`` for one the sandbox does not serve.

``GET /services/data`` (the versions) needs no token and does not count, as
at Salesforce. The API is read-only: records change through the control API.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get

from system_apis.connectors.salesforce.sandbox.config import API_VERSIONS
from system_apis.connectors.salesforce.sandbox.errors import (
    InvalidFieldError,
    InvalidSessionError,
    NotFoundError,
    RequestLimitExceededError,
    SalesforceError,
    ServerUnavailableError,
    UnknownExceptionError,
)
from system_apis.connectors.salesforce.sandbox.queries import batch_size, result_page
from system_apis.connectors.salesforce.sandbox.responses import (
    base_url,
    error_response,
    json_response,
    render,
)
from system_apis.connectors.salesforce.sandbox.schema import object_type
from system_apis.connectors.salesforce.sandbox.soql import execute, parse
from system_apis.connectors.salesforce.sandbox.state import Sandbox, sandbox_of
from system_apis.connectors.salesforce.sandbox.tokens import access_token_of

__all__ = ("rest_router", "versions")

_VERSIONS = {f"v{version}" for version, _ in API_VERSIONS}


def _injected(status: int) -> SalesforceError:
    """The error an injected fault answers with: 403 ``REQUEST_LIMIT_EXCEEDED``, 500 or 503."""
    if status == 403:
        return RequestLimitExceededError("TotalRequests Limit exceeded. (sandbox fault: rate_limit_exceeded)")
    if status == 503:
        return ServerUnavailableError("Server temporarily unavailable (sandbox fault: rate_5xx)")
    return UnknownExceptionError(
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "0000000000-00000 (sandbox fault: rate_5xx)"
    )


async def _guard(request: Request[Any, Any, Any]) -> Response[bytes] | None:
    """Count, fault, authenticate, count against the limit and check the version, in that order."""
    sandbox = sandbox_of(request)
    sandbox.counters.requests += 1
    fault = sandbox.faults.request_fault()
    if fault is not None:
        return error_response(_injected(fault))
    if sandbox.sessions.use(access_token_of(request.headers.get("authorization"))) is None:
        sandbox.counters.unauthorized += 1
        return error_response(InvalidSessionError("Session expired or invalid"))
    if not sandbox.usage.take():
        sandbox.counters.limit_exceeded += 1
        return error_response(RequestLimitExceededError("TotalRequests Limit exceeded."))
    sandbox.seen_url = base_url(request)
    if request.path_params.get("version") not in _VERSIONS:
        return error_response(NotFoundError("The requested resource does not exist"))
    return None


@get("/services/data")
async def versions() -> Response[bytes]:
    """The API versions served (no token needed, not counted)."""
    return json_response(
        [
            {"label": label, "url": f"/services/data/v{version}", "version": version}
            for version, label in API_VERSIONS
        ]
    )


@get("/{version:str}")
async def resources(version: str) -> Response[bytes]:
    """The resources of one version (those the sandbox serves)."""
    base = f"/services/data/{version}"
    return json_response(
        {"limits": f"{base}/limits", "query": f"{base}/query", "sobjects": f"{base}/sobjects"}
    )


@get("/{version:str}/limits")
async def limits(request: Request[Any, Any, Any], version: str) -> Response[bytes]:
    """``DailyApiRequests`` (``Max``, ``Remaining``), as the limits resource reports it."""
    del version
    usage = sandbox_of(request).usage
    return json_response(
        {"DailyApiRequests": {"Max": usage.limit, "Remaining": max(0, usage.limit - usage.used)}}
    )


def _first_batch(
    sandbox: Sandbox, request: Request[Any, Any, Any], version: str, soql: str
) -> dict[str, Any]:
    query = parse(soql)
    names = [field.name for field in query.fields]
    kind = query.kind.name
    rows = [render(record, kind, names, version) for record in execute(sandbox.org, query)]
    size = batch_size(request.headers.get("sforce-query-options"))
    locator = sandbox.locators.open(rows) if len(rows) > size else None
    return result_page(rows, 0, size, version, locator)


@get("/{version:str}/query")
async def query(request: Request[Any, Any, Any], version: str) -> Response[bytes]:
    """Run ``q``: the first batch, with ``nextRecordsUrl`` when there is more."""
    sandbox = sandbox_of(request)
    body = _first_batch(sandbox, request, version, request.query_params.get("q") or "")
    sandbox.counters.queries += 1
    return json_response(body)


@get("/{version:str}/query/{locator:str}")
async def query_more(request: Request[Any, Any, Any], version: str, locator: str) -> Response[bytes]:
    """The batch of an open query result at the position ``nextRecordsUrl`` names."""
    sandbox = sandbox_of(request)
    name, rows, position = sandbox.locators.rows(locator)
    size = batch_size(request.headers.get("sforce-query-options"))
    body = result_page(rows, position, size, version, name)
    sandbox.counters.query_more += 1
    return json_response(body)


@get("/{version:str}/sobjects/{sobject:str}/{record_id:str}")
async def get_record(
    request: Request[Any, Any, Any], version: str, sobject: str, record_id: str
) -> Response[bytes]:
    """One record with its ``attributes``: every field, or those named in ``fields=A,B``."""
    sandbox = sandbox_of(request)
    kind = object_type(sobject)
    if kind is None:
        raise NotFoundError("The requested resource does not exist")
    record = sandbox.org.get(kind.name, record_id)
    if record is None:
        # A value that is not an id reads, at Salesforce, as an external id field name.
        if len(record_id) not in (15, 18) or not record_id.isalnum():
            raise NotFoundError(
                f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        raise NotFoundError("The requested resource does not exist")
    wanted = request.query_params.get("fields")
    if wanted:
        names = []
        for given in (part.strip() for part in wanted.split(",")):
            field = kind.field(given)
            if field is None:
                raise InvalidFieldError(f"No such column '{given}' on sobject of type {kind.name}", (given,))
            names.append(field.name)
    else:
        names = [field.name for field in kind.fields]
    return json_response(render(record, kind.name, names, version))


def rest_router() -> Router:
    """The versioned ``/services/data/vXX.X`` routes, behind :func:`_guard`."""
    return Router(
        path="/services/data",
        before_request=_guard,
        route_handlers=[resources, limits, query, query_more, get_record],
    )
