"""How a layer authenticates to the layer below: its own client-credentials token.

:class:`ClientCredentialsAuth` is an ``httpx.Auth``. It asks the token endpoint
for a token (``client_secret_post``), keeps it until shortly before it expires
(authlib's ``OAuth2Token`` does the expiry arithmetic), and sets it on each
call. When the call relays a partner's request, the token names that partner
(``on_behalf_of``; the server grants it to internal clients only), so the
layer below, and its audit, see the original caller. Background work started
by a partner (a queued run) names it with :func:`acting_for`. Tokens are cached
per original caller. A 401 from below drops the cached token and retries once.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import httpx
from authlib.oauth2.rfc6749 import OAuth2Token

from shared.errors import UpstreamRejectedError, UpstreamUnavailableError
from shared.observability.context import current_trace

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator

    from shared.auth import Principal

__all__ = ("ClientCredentialsAuth", "acting_for", "current_principal")

EXPIRY_LEEWAY = 30
"""Seconds before expiry at which a cached token is replaced."""


_ACTING_FOR: ContextVar[str | None] = ContextVar("finsync_acting_for", default=None)


@contextmanager
def acting_for(client_id: str | None) -> Iterator[None]:
    """Calls to the layer below made inside, outside any request, name ``client_id`` as the original caller."""
    reset = _ACTING_FOR.set(client_id)
    try:
        yield
    finally:
        _ACTING_FOR.reset(reset)


def current_principal() -> Principal | None:
    """The verified caller of the request being served, if any."""
    trace = current_trace()
    if trace is None or trace.scope is None:
        return None
    principal: Principal | None = trace.scope.get("auth")
    return principal


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens for calls to the layer below, fetched with client credentials."""

    def __init__(
        self, *, token_url: str, client_id: str, client_secret: str, audience: str, timeout: float = 5.0
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.timeout = timeout
        self._tokens: dict[str | None, OAuth2Token] = {}
        self._lock = asyncio.Lock()

    def _on_behalf_of(self) -> str | None:
        principal = current_principal()
        actor = principal.actor if principal is not None else _ACTING_FOR.get()
        return None if actor == self.client_id else actor

    async def token(self, on_behalf_of: str | None = None, *, renew: bool = False) -> str:
        """An access token for the layer below, fetched or reused."""
        cached = self._tokens.get(on_behalf_of)
        if cached is not None and not renew and not cached.is_expired(leeway=EXPIRY_LEEWAY):
            return str(cached["access_token"])
        async with self._lock:
            cached = self._tokens.get(on_behalf_of)
            if cached is not None and not renew and not cached.is_expired(leeway=EXPIRY_LEEWAY):
                return str(cached["access_token"])
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "resource": self.audience,
            }
            if on_behalf_of is not None:
                form["on_behalf_of"] = on_behalf_of
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as http:
                    response = await http.post(self.token_url, data=form)
            except httpx.HTTPError as exc:
                raise UpstreamUnavailableError(
                    f"the token endpoint is unreachable: {type(exc).__name__}"
                ) from exc
            if response.status_code != 200:
                raise UpstreamRejectedError(
                    f"the token endpoint refused this layer's client ({response.status_code})",
                    upstream_status=response.status_code,
                )
            token = OAuth2Token.from_dict(response.json())
            self._tokens[on_behalf_of] = token
            return str(token["access_token"])

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Set the bearer token; on a 401, renew it once and retry."""
        on_behalf_of = self._on_behalf_of()
        request.headers["Authorization"] = f"Bearer {await self.token(on_behalf_of)}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.token(on_behalf_of, renew=True)}"
            yield request
