"""The ``/token`` routes: authenticate with HTTP Basic, refresh, log out and validate, as Anaplan's auth host.

Anaplan serves these on ``auth.anaplan.com``; the sandbox serves them on the
same host as the API. They answer in the auth service's own shape
(``{"status": "SUCCESS" | "FAILURE_…", "statusMessage": …}``), not in the
``/2/0`` envelope, and no fault is ever injected here.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post

from system_apis.connectors.anaplan.sandbox.catalog import USER_ID
from system_apis.connectors.anaplan.sandbox.responses import base_url, json_response
from system_apis.connectors.anaplan.sandbox.state import sandbox_of
from system_apis.connectors.anaplan.sandbox.tokens import Token, basic_credentials, token_value

__all__ = ("token_router",)

_BAD_CREDENTIAL = {"status": "FAILURE_BAD_CREDENTIAL", "statusMessage": "Login failed"}
_BAD_TOKEN = {"status": "FAILURE_BAD_CREDENTIAL", "statusMessage": "Token is invalid or has expired"}


def _token_answer(request: Request[Any, Any, Any], token: Token, message: str) -> Response[bytes]:
    """201 with the new token, as authenticate and refresh answer."""
    body = {
        "meta": {"validationUrl": f"{base_url(request)}/token/validate"},
        "status": "SUCCESS",
        "statusMessage": message,
        "tokenInfo": token.info(),
    }
    return json_response(body, 201)


@post("/authenticate")
async def authenticate(request: Request[Any, Any, Any]) -> Response[bytes]:
    """HTTP Basic in, a new token out (201); 401 ``FAILURE_BAD_CREDENTIAL`` otherwise."""
    sandbox = sandbox_of(request)
    credentials = basic_credentials(request.headers.get("authorization"))
    token = sandbox.tokens.authenticate(*credentials) if credentials is not None else None
    if token is None:
        sandbox.counters.authentication_failures += 1
        return json_response(_BAD_CREDENTIAL, 401)
    sandbox.counters.authentications += 1
    return _token_answer(request, token, "Login successful")


@post("/refresh")
async def refresh(request: Request[Any, Any, Any]) -> Response[bytes]:
    """A new token in place of a live one (201); the old one stops working. 401 for an expired or unknown one."""
    sandbox = sandbox_of(request)
    token = sandbox.tokens.refresh(token_value(request.headers.get("authorization")))
    if token is None:
        return json_response(_BAD_TOKEN, 401)
    sandbox.counters.refreshes += 1
    return _token_answer(request, token, "Token refreshed")


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> Response[bytes]:
    """End a live token (204); 401 for an expired or unknown one."""
    sandbox = sandbox_of(request)
    if not sandbox.tokens.logout(token_value(request.headers.get("authorization"))):
        return json_response(_BAD_TOKEN, 401)
    sandbox.counters.logouts += 1
    return Response(content=b"", status_code=204)


@get("/validate")
async def validate(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Who a live token belongs to and when it expires (200); 401 otherwise."""
    token = sandbox_of(request).tokens.valid(token_value(request.headers.get("authorization")))
    if token is None:
        return json_response(_BAD_TOKEN, 401)
    body = {
        "status": "SUCCESS",
        "statusMessage": "Token validated",
        "userId": USER_ID,
        "expiresAt": int(token.expires_at * 1000),
    }
    return json_response(body)


def token_router() -> Router:
    """Every ``/token`` route."""
    return Router(path="/token", route_handlers=[authenticate, refresh, logout, validate])
