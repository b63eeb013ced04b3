"""The vendor's shapes: records with ``attributes``, the error array, OAuth errors, and the headers every answer carries.

Every answer is JSON (the outbound messages are SOAP, in :mod:`~.outbound`),
never HTML, and carries ``X-Sandbox: salesforce`` so nobody mistakes the
sandbox for Salesforce, and ``Sforce-Limit-Info: api-usage=used/limit``.

Values are encoded as Salesforce encodes them: datetimes as
``2026-03-31T14:05:09.000+0000``, dates as ``2026-03-31``, numbers (money
included) as JSON numbers, written from ``Decimal`` without going through a
float.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response

from system_apis.connectors.salesforce.sandbox.errors import JsonParserError, OAuthError, SalesforceError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from litestar.types import Message, Scope

    from system_apis.connectors.salesforce.sandbox.org import Record

__all__ = (
    "LIMIT_HEADER",
    "SANDBOX_HEADER",
    "add_sandbox_headers",
    "base_url",
    "error_response",
    "errors_body",
    "json_response",
    "oauth_error_response",
    "read_json",
    "render",
    "wire_value",
)

SANDBOX_HEADER = ("X-Sandbox", "salesforce")
"""Header on every answer: this is a sandbox shaped like Salesforce, not Salesforce."""
LIMIT_HEADER = "Sforce-Limit-Info"
"""Header on every answer: the org's API usage against its daily limit."""
_SANDBOX_BYTES = (SANDBOX_HEADER[0].lower().encode(), SANDBOX_HEADER[1].encode())
_LIMIT_BYTES = LIMIT_HEADER.lower().encode()
_encoder = msgspec.json.Encoder(decimal_format="number")
_decoder = msgspec.json.Decoder(float_hook=Decimal)


async def add_sandbox_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: ``X-Sandbox`` and ``Sforce-Limit-Info`` on every response start, errors included."""
    if message["type"] == "http.response.start":
        usage = scope["app"].state.sandbox.usage.header()
        message["headers"] = [*message.get("headers", []), _SANDBOX_BYTES, (_LIMIT_BYTES, usage.encode())]


def wire_value(value: Any) -> Any:
    """A record's value as the REST API writes it (datetimes and dates as Salesforce formats them)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def render(record: Record, kind: str, fields: Iterable[str], version: str) -> dict[str, Any]:
    """A record as the REST API shows it: ``attributes`` (``type``, ``url``), then ``fields`` in that order."""
    body: dict[str, Any] = {
        "attributes": {"type": kind, "url": f"/services/data/{version}/sobjects/{kind}/{record['Id']}"}
    }
    for name in fields:
        body[name] = wire_value(record[name])
    return body


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """``body`` as JSON (``application/json;charset=UTF-8``, as Salesforce labels it)."""
    return Response(
        content=_encoder.encode(body),
        status_code=status_code,
        media_type="application/json;charset=UTF-8",
        headers=dict(headers or {}),
    )


def errors_body(error_code: str, message: str, fields: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Salesforce's error body: an array of ``{"message", "errorCode", "fields"}``."""
    return [{"message": message, "errorCode": error_code, "fields": list(fields)}]


def error_response(exc: SalesforceError) -> Response[bytes]:
    """A :class:`~.errors.SalesforceError` as the error array, with its status."""
    return json_response(errors_body(exc.error_code, exc.message, exc.fields), exc.status_code)


def oauth_error_response(exc: OAuthError) -> Response[bytes]:
    """A refused token request: ``{"error", "error_description"}``."""
    return json_response({"error": exc.error, "error_description": exc.description}, exc.status_code)


def base_url(request: Request[Any, Any, Any]) -> str:
    """Scheme, host and port the client called, without a trailing slash."""
    return str(request.base_url).rstrip("/")


async def read_json(request: Request[Any, Any, Any]) -> Any:
    """The request's JSON body, numbers as ``Decimal`` (money never passes through a float).

    Raises:
        JsonParserError: the body is not JSON.
    """
    try:
        return _decoder.decode(await request.body())
    except msgspec.DecodeError as exc:
        raise JsonParserError(f"the body is not valid JSON: {exc}") from exc
