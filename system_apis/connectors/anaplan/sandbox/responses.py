"""The vendor's JSON shapes: the ``/2/0`` envelope with paging, the status envelope of errors, request bodies.

Every answer is JSON (or CSV or bytes where the vendor sends them), never HTML,
and carries ``X-Sandbox: anaplan`` so nobody mistakes the sandbox for Anaplan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response

from system_apis.connectors.anaplan.sandbox.errors import InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from litestar.types import Message, Scope

__all__ = (
    "DEFAULT_LIMIT",
    "SANDBOX_HEADER",
    "add_sandbox_header",
    "base_url",
    "envelope",
    "json_response",
    "page",
    "read_json",
    "status_error",
)

SANDBOX_HEADER = ("X-Sandbox", "anaplan")
"""Header on every answer: this is a sandbox shaped like Anaplan, not Anaplan."""
DEFAULT_LIMIT = 1000
"""Page size of a listing when the request gives no ``limit``."""
_HEADER_BYTES = (SANDBOX_HEADER[0].lower().encode(), SANDBOX_HEADER[1].encode())
_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder()


async def add_sandbox_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: add ``X-Sandbox`` to every response start, error answers and 404s included."""
    if message["type"] == "http.response.start":
        message["headers"] = [*message.get("headers", []), _HEADER_BYTES]


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """``body`` as JSON."""
    return Response(
        content=_encoder.encode(body),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def base_url(request: Request[Any, Any, Any]) -> str:
    """Scheme, host and port the client called, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def envelope(
    request: Request[Any, Any, Any],
    kind: str,
    payload: Mapping[str, Any],
    *,
    paging: Mapping[str, int] | None = None,
    status_code: int = 200,
) -> Response[bytes]:
    """A ``/2/0`` answer: ``meta`` (schema, and paging for listings), ``status``, then the payload."""
    meta: dict[str, Any] = {"schema": f"{base_url(request)}/2/0/objects/{kind}"}
    if paging is not None:
        meta["paging"] = dict(paging)
    body = {"meta": meta, "status": {"code": status_code, "message": "Success"}, **payload}
    return json_response(body, status_code)


def status_error(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response[bytes]:
    """An error in the vendor's shape: ``{"status": {"code": ..., "message": ...}}``."""
    return json_response({"status": {"code": status_code, "message": message}}, status_code, headers)


def _query_int(request: Request[Any, Any, Any], name: str, default: int, minimum: int) -> int:
    """An integer query parameter of at least ``minimum``, or ``default`` when absent; 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} is an integer, got {raw!r}") from None
    if value < minimum:
        raise InvalidRequestError(f"{name} is at least {minimum}, got {value}")
    return value


def page(request: Request[Any, Any, Any], items: Sequence[Any]) -> tuple[list[Any], dict[str, int]]:
    """The page of ``items`` that ``offset`` (default 0) and ``limit`` (default :data:`DEFAULT_LIMIT`) ask for.

    Raises:
        InvalidRequestError: ``offset`` or ``limit`` is not an integer, or out of range.
    """
    offset = _query_int(request, "offset", 0, 0)
    limit = _query_int(request, "limit", DEFAULT_LIMIT, 1)
    selected = list(items[offset : offset + limit])
    return selected, {"currentPageSize": len(selected), "totalSize": len(items), "offset": offset}


async def read_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The request's JSON object body.

    Raises:
        InvalidRequestError: the body is not JSON, or not an object.
    """
    try:
        body = _decoder.decode(await request.body())
    except msgspec.DecodeError as exc:
        raise InvalidRequestError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("the body is a JSON object")
    return body
