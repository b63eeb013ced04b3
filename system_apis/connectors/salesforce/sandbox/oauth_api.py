"""``POST /services/oauth2/token``: client credentials and JWT bearer, answered as Salesforce answers.

The same host serves the token endpoint (Salesforce's login host) and the
API (the instance). Token requests do not count against the API limit and
never get an injected fault.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, post

from system_apis.connectors.salesforce.sandbox.errors import OAuthError
from system_apis.connectors.salesforce.sandbox.responses import base_url, json_response, oauth_error_response
from system_apis.connectors.salesforce.sandbox.state import Sandbox, sandbox_of
from system_apis.connectors.salesforce.sandbox.tokens import (
    JWT_BEARER,
    check_client_credentials,
    check_jwt_assertion,
    signature,
)

__all__ = ("SALESFORCE_LOGIN_URLS", "oauth_router")

SALESFORCE_LOGIN_URLS = ("https://login.salesforce.com", "https://test.salesforce.com")
"""Audiences Salesforce accepts in JWT assertions besides the org's own login URL."""
_FORM = "application/x-www-form-urlencoded"


def _check_grant(sandbox: Sandbox, form: dict[str, str], authorization: str | None, here: str) -> str:
    """Which grant the request is, once its credentials or assertion are accepted.

    Raises:
        OAuthError: an unsupported grant, or credentials or an assertion Salesforce would refuse.
    """
    grant_type = form.get("grant_type", "")
    if grant_type == "client_credentials":
        check_client_credentials(sandbox.credentials, form, authorization)
        return "client_credentials"
    if grant_type == JWT_BEARER:
        audiences = {*SALESFORCE_LOGIN_URLS, (sandbox.config.login_url or here).rstrip("/")}
        check_jwt_assertion(sandbox.credentials, form.get("assertion", ""), audiences)
        return "jwt_bearer"
    raise OAuthError("unsupported_grant_type", "grant type not supported")


@post("/token", status_code=200)
async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """An access token for ``client_credentials`` or the JWT bearer grant; 400 with OAuth's error otherwise."""
    sandbox = sandbox_of(request)
    here = base_url(request)
    sandbox.seen_url = here
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == _FORM:
        form = {key: str(value) for key, value in (await request.form()).items()}
    try:
        grant = _check_grant(sandbox, form, request.headers.get("authorization"), here)
    except OAuthError as exc:
        sandbox.counters.token_failures += 1
        return oauth_error_response(exc)
    session = sandbox.sessions.open(grant)
    sandbox.counters.tokens_issued[grant] += 1
    login = (sandbox.config.login_url or here).rstrip("/")
    identity = f"{login}/id/{sandbox.organization_id}/{sandbox.user_id}"
    issued_at = str(session.issued_at)
    body = {
        "access_token": session.token,
        "signature": signature(sandbox.credentials.client_secret, identity, issued_at),
        "scope": "api",
        "instance_url": (sandbox.config.instance_url or here).rstrip("/"),
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }
    return json_response(
        body, headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"}
    )


def oauth_router() -> Router:
    """The ``/services/oauth2`` routes."""
    return Router(path="/services/oauth2", route_handlers=[token])
