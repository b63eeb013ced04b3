"""One session with Anaplan's Integration API v2: one token, renewed before it expires, and retries.

Anaplan asks integrations to reuse one token for the whole session (a login per
call can fail), so the client logs in once, renews the token with
``/token/refresh`` when less than :data:`RENEW_MARGIN` of its life is left, and
logs in again only when the token was refused (401: it expired or was revoked).

Failures, and what happens:

================================  ==========================================
what happened                     what the client does
================================  ==========================================
401                               log in again, call again (once per call)
409 (model busy), 429, 5xx        retry with exponential backoff and full
                                  jitter, honouring ``Retry-After``
                                  (httpx-retries' transport)
no answer, connection failed      retry the same way
retries used up                   ``UpstreamUnavailableError`` (503) /
                                  ``UpstreamTimeoutError`` (504)
other 4xx                         ``UpstreamRejectedError`` with the
                                  platform's own message
================================  ==========================================

Every call the connector makes is safe to repeat, so every method is retried:
reads, chunk uploads (a chunk index is written again, not twice), ``complete``,
and starting a task. A retried task start whose first try did start an import
imports the same file into the same cells again: an import sets cells to the
file's values, it never adds to them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import msgspec
from httpx_retries import Retry, RetryTransport

from shared.errors import (
    SettingsError,
    UpstreamContractError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from system_apis.connectors.anaplan.wire import TokenAnswer

if TYPE_CHECKING:
    from shared.settings import AnaplanSourceConfig

__all__ = ("RENEW_MARGIN", "RETRY_STATUSES", "AnaplanClient")

logger = logging.getLogger("finsync.anaplan")

T = TypeVar("T")

RENEW_MARGIN = 0.2
"""Share of a token's life left when the client renews it (7 minutes of Anaplan's 35)."""
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
"""Answers worth another try: the model is busy, the caller is too fast, the platform failed."""
MAX_BACKOFF = 60.0
"""Longest wait between two tries, in seconds."""
CONNECTIONS = httpx.Limits(max_connections=8, max_keepalive_connections=4)
"""Connections to one planning platform: bulk calls, few at a time."""


class AnaplanClient:
    """Calls one Anaplan tenant as one user; safe to share between concurrent tasks."""

    def __init__(
        self, config: AnaplanSourceConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.http = _http_client(config, transport)
        self.api = config.url.rstrip("/") + "/2/0"
        self.auth = (config.auth_url or config.url).rstrip("/")
        self._token: str | None = None
        self._issued_at = 0.0
        self._expires_at = 0.0
        self._token_lock = asyncio.Lock()
        self.logins = 0
        """Logins so far (``/token/authenticate``): one per session, plus one per refused token."""
        self.renewals = 0
        """Token renewals so far (``/token/refresh``)."""

    # -- the token ---------------------------------------------------------------------------------

    def _basic(self) -> str:
        password = self.config.password
        if password is None and self.config.password_file:
            try:
                password = Path(self.config.password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(f"cannot read the planning password file: {exc}") from exc
        if not password:
            raise SettingsError("the planning source has no password (set password or password_file)")
        raw = f"{self.config.user}:{password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _token_call(self, path: str, authorization: str) -> httpx.Response:
        """One exchange with the authentication service, retried like any call."""
        return await self._send("POST", f"{self.auth}{path}", headers={"Authorization": authorization})

    def _keep(self, response: httpx.Response, path: str) -> str:
        info = _decode(response, TokenAnswer, path).token_info
        self._token = info.token_value
        self._issued_at = time.time()
        self._expires_at = info.expires_at / 1000
        return self._token

    async def token(self, refused: str | None = None) -> str:
        """The session's token: logged in once, renewed near its end, replaced when ``refused`` (a 401)."""
        async with self._token_lock:
            now = time.time()
            token = self._token
            if token is not None and token != refused:
                lifetime = max(self._expires_at - self._issued_at, 0.0)
                if now < self._expires_at - lifetime * RENEW_MARGIN:
                    return token
                if now < self._expires_at:
                    response = await self._token_call("/token/refresh", f"AnaplanAuthToken {token}")
                    if response.is_success:
                        self.renewals += 1
                        return self._keep(response, "/token/refresh")
            if token is not None and token == refused:
                logger.info("planning token refused; logging in again", extra={"source_url": self.auth})
            response = await self._token_call("/token/authenticate", self._basic())
            if response.status_code in (401, 403):
                raise UpstreamRejectedError(
                    "the planning platform refused the integration user's credentials",
                    upstream_status=response.status_code,
                )
            _raise_for_status(response, "/token/authenticate")
            self.logins += 1
            return self._keep(response, "/token/authenticate")

    # -- calls ---------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Call ``{url}/2/0{path}`` with the session's token; a 2xx answer, or an ``Upstream*`` error."""
        url = path if path.startswith("http") else f"{self.api}{path}"
        token = await self.token()
        response = await self._send(
            method, url, json=json, content=content, headers=headers, params=params, token=token
        )
        if response.status_code == 401:
            token = await self.token(refused=token)
            response = await self._send(
                method, url, json=json, content=content, headers=headers, params=params, token=token
            )
        _raise_for_status(response, path)
        return response

    async def get(self, path: str, type_: type[T], params: dict[str, Any] | None = None) -> T:
        """GET ``path`` and decode its JSON answer as ``type_``."""
        return _decode(await self.request("GET", path, params=params), type_, path)

    async def post(self, path: str, type_: type[T], body: Any) -> T:
        """POST ``body`` as JSON to ``path`` and decode the answer as ``type_``."""
        return _decode(await self.request("POST", path, json=body), type_, path)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """One call (its retries are the transport's); failures to answer become ``Upstream*`` errors."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"AnaplanAuthToken {token}"
        try:
            return await self.http.request(
                method, url, json=json, content=content, headers=all_headers, params=params
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"the planning platform did not answer {method} {_path(url)} in time, after every retry"
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(
                f"the planning platform is unreachable: {type(exc).__name__}, after every retry"
            ) from exc

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()


def _http_client(
    config: AnaplanSourceConfig, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    """The source's HTTP client: its timeout, and retries of what is worth another try, for every method."""
    retry = Retry(
        total=config.retries,
        backoff_factor=config.backoff,
        backoff_jitter=1.0,
        status_forcelist=RETRY_STATUSES,
        # Every call the connector makes is safe to repeat (see the module's docstring).
        allowed_methods=("GET", "POST", "PUT", "DELETE"),
        respect_retry_after_header=True,
        max_backoff_wait=MAX_BACKOFF,
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout),
        transport=RetryTransport(transport or httpx.AsyncHTTPTransport(limits=CONNECTIONS), retry=retry),
        follow_redirects=False,
        headers={"user-agent": "finsync-system"},
    )


def _path(url: str) -> str:
    return httpx.URL(url).path


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    """The vendor's own words: ``status.message`` of the envelope, or ``statusMessage``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
        if body.get("statusMessage"):
            return str(body["statusMessage"])
    return response.text[:200]


def _raise_for_status(response: httpx.Response, path: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status in RETRY_STATUSES:
        retry_after = response.headers.get("Retry-After")
        raise UpstreamUnavailableError(
            f"the planning platform answered {status} to {path} after every retry: {_message(response)}",
            headers={"Retry-After": retry_after} if retry_after else None,
            upstream_status=status,
        )
    raise UpstreamRejectedError(
        f"the planning platform answered {status} to {path}: {_message(response)}", upstream_status=status
    )


def _decode(response: httpx.Response, type_: type[T], path: str) -> T:
    try:
        return msgspec.json.decode(response.content, type=type_)
    except msgspec.DecodeError as exc:
        raise UpstreamContractError(f"the planning platform answered {path} off contract: {exc}") from exc
