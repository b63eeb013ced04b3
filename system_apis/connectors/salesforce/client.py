"""One session with a Salesforce org's REST API: one token, retries, a concurrency cap and the org's API quota.

The token comes from ``{login_url}/services/oauth2/token`` (client credentials,
or a JWT bearer assertion signed with the connected app's key) together with
the ``instance_url`` every call then goes to. Salesforce gives no
``expires_in``: a session simply stops working, so the client keeps its token
until a call is answered 401 (``INVALID_SESSION_ID``), then gets a new one and
makes that call again, once.

Failures, and what happens:

==========================================  ==========================================
what happened                               what the client does
==========================================  ==========================================
401 ``INVALID_SESSION_ID``                  new token, call again (once per call)
403 ``REQUEST_LIMIT_EXCEEDED``              retry with exponential backoff and full
                                            jitter, honouring ``Retry-After``: it is
                                            Salesforce's rate-limit answer, not a 429
5xx, no answer, connection failed           retry the same way
retries used up                             ``UpstreamUnavailableError`` (503) /
                                            ``UpstreamTimeoutError`` (504)
the org's usage at the budget               refused here, before the call:
(:mod:`~.quota`)                            ``UpstreamUnavailableError`` (503) with
                                            ``Retry-After``
other 4xx                                   ``UpstreamRejectedError`` (502) with
                                            Salesforce's ``errorCode`` and message
token refused (400 ``invalid_grant``...)    ``UpstreamRejectedError`` (502)
==========================================  ==========================================

Every call the connector makes is a read, so every call is safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import msgspec
from joserfc import jwt
from joserfc.jwk import RSAKey

from shared.errors import (
    SettingsError,
    UpstreamContractError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from system_apis.connectors.salesforce.quota import LIMIT_HEADER, Quota
from system_apis.connectors.salesforce.wire import PAGES, ApiError, OAuthError, QueryPage, TokenAnswer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from shared.settings import SalesforceSourceConfig

__all__ = ("ASSERTION_LIFETIME", "MAX_BACKOFF", "ClientCounters", "SalesforceClient")

logger = logging.getLogger("finsync.salesforce")

MAX_BACKOFF = 60.0
"""Longest wait between two tries, in seconds; a longer ``Retry-After`` is passed on to the caller instead."""
ASSERTION_LIFETIME = 120
"""Seconds a JWT bearer assertion is valid (Salesforce takes at most 3 minutes)."""
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SERVER_ERRORS = frozenset({500, 502, 503, 504})
_ERRORS = msgspec.json.Decoder(list[ApiError])
_RECORD = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)
"""Decodes one sObject; a JSON number with a fraction becomes a ``Decimal`` from its digits."""


class _Session(NamedTuple):
    access_token: str
    instance_url: str


@dataclass
class ClientCounters:
    """What happened on the wire since the client was made (for tests and metrics)."""

    calls: int = 0
    """REST calls sent (each try counts)."""
    token_fetches: int = 0
    """Tokens obtained: the first, and one per session that stopped working."""
    retries: int = 0
    """Tries made again after a transient failure."""
    rate_limited: int = 0
    """Answers ``403 REQUEST_LIMIT_EXCEEDED``."""
    server_errors: int = 0
    """Answers 5xx."""
    unanswered: int = 0
    """Tries that got no answer (timeout, connection refused or cut)."""


class SalesforceClient:
    """Calls one org as its integration user; safe to share between concurrent tasks."""

    def __init__(
        self, config: SalesforceSourceConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.login = config.login_url.rstrip("/")
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout),
            transport=transport
            or httpx.AsyncHTTPTransport(
                limits=httpx.Limits(
                    max_connections=config.concurrency, max_keepalive_connections=config.concurrency
                )
            ),
            follow_redirects=False,
            headers={"user-agent": "finsync-system", "accept": "application/json"},
        )
        self.quota = Quota(config.quota_reserve)
        """The org's API usage and the share this source may take."""
        self.counters = ClientCounters()
        """What happened on the wire."""
        self._slots = asyncio.Semaphore(config.concurrency)
        self._session: _Session | None = None
        self._session_lock = asyncio.Lock()
        self._jitter = random.Random()  # noqa: S311 - backoff jitter, not a secret

    # -- the session ---------------------------------------------------------------------------------

    async def session(self, refused: _Session | None = None) -> _Session:
        """The session's token and instance: obtained once, and again when ``refused`` (a 401) is the current one."""
        async with self._session_lock:
            if self._session is not None and self._session != refused:
                return self._session
            if refused is not None:
                logger.info(
                    "CRM session no longer valid; getting a new token", extra={"login_url": self.login}
                )
            self._session = await self._token()
            return self._session

    async def _token(self) -> _Session:
        if self.config.grant == "jwt_bearer":
            form = {"grant_type": JWT_BEARER, "assertion": self._assertion()}
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self._secret(),
            }
        url = f"{self.login}/services/oauth2/token"
        response = await self._send("POST", url, data=form)
        if response.status_code in (400, 401, 403):
            refusal = _oauth_error(response)
            raise UpstreamRejectedError(
                f"the CRM refused the connected app's {self.config.grant} token request: {refusal}",
                upstream_status=response.status_code,
            )
        _raise_for_status(response, "/services/oauth2/token")
        try:
            answer = msgspec.json.decode(response.content, type=TokenAnswer)
        except msgspec.DecodeError as exc:
            raise UpstreamContractError(f"the CRM's token answer is off contract: {exc}") from exc
        if not answer.instance_url.startswith(("https://", "http://")):
            raise UpstreamContractError("the CRM's token answer has no usable instance_url")
        self.counters.token_fetches += 1
        return _Session(answer.access_token, answer.instance_url.rstrip("/"))

    def _secret(self) -> str:
        secret = self.config.client_secret
        if secret is None and self.config.client_secret_file:
            secret = _read(self.config.client_secret_file, "consumer secret").strip()
        if not secret:
            raise SettingsError("the CRM source has no consumer secret (client_secret or client_secret_file)")
        return secret

    def _assertion(self) -> str:
        """A JWT bearer assertion: RS256, the consumer key as ``iss``, the user as ``sub``, the login URL as ``aud``."""
        if not self.config.private_key_file or not self.config.username:
            raise SettingsError("the CRM source's jwt_bearer grant needs username and private_key_file")
        try:
            key = RSAKey.import_key(_read(self.config.private_key_file, "private key").encode())
        except ValueError as exc:
            raise SettingsError(f"the CRM source's private key is not a PEM RSA key: {exc}") from exc
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.username,
            "aud": self.login,
            "exp": int(time.time()) + ASSERTION_LIFETIME,
        }
        return jwt.encode({"alg": "RS256"}, claims, key, algorithms=["RS256"])

    # -- calls ---------------------------------------------------------------------------------------

    async def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        """GET ``path`` of the REST API with the session's token: a 2xx or 404 answer, or an ``Upstream*`` error.

        ``path`` is under ``/services/data/vXX.X`` (``/query``), or a whole instance path such as a
        ``nextRecordsUrl``.
        """
        session = await self.session()
        response = await self._rest(session, path, params)
        if response.status_code == 401:
            session = await self.session(refused=session)
            response = await self._rest(session, path, params)
            if response.status_code == 401:
                raise UpstreamRejectedError(
                    f"the CRM refused a new session token: {_message(response)}", upstream_status=401
                )
        if response.status_code != 404:
            _raise_for_status(response, _path(path))
        return response

    async def query(self, soql: str) -> AsyncIterator[list[dict[str, Any]]]:
        """The batches of ``soql``'s records (numbers as ``Decimal``), following ``nextRecordsUrl`` until ``done``."""
        page = await self._page("/query", {"q": soql})
        yield page.records
        while not page.done:
            following = page.next_records_url
            if not following or not following.startswith("/services/data/"):
                raise UpstreamContractError("the CRM's query batch is not done and has no nextRecordsUrl")
            page = await self._page(following, None)
            yield page.records

    async def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every record of ``soql``."""
        return [record async for batch in self.query(soql) for record in batch]

    async def record(self, sobject: str, record_id: str, fields: str) -> dict[str, Any] | None:
        """``fields`` of one record (``GET /sobjects/{sobject}/{id}``); ``None`` when the org has no such record."""
        response = await self.get(f"/sobjects/{sobject}/{record_id}", {"fields": fields})
        if response.status_code == 404:
            return None
        try:
            return _RECORD.decode(response.content)
        except msgspec.DecodeError as exc:
            raise UpstreamContractError(f"the CRM answered a {sobject} off contract: {exc}") from exc

    async def _page(self, path: str, params: dict[str, str] | None) -> QueryPage:
        response = await self.get(path, params)
        if response.status_code == 404:
            _raise_for_status(response, _path(path))
        try:
            return PAGES.decode(response.content)
        except msgspec.DecodeError as exc:
            raise UpstreamContractError(f"the CRM answered a query batch off contract: {exc}") from exc

    async def _rest(self, session: _Session, path: str, params: dict[str, str] | None) -> httpx.Response:
        if path.startswith("/services/"):
            url = session.instance_url + path
        else:
            url = f"{session.instance_url}/services/data/v{self.config.api_version}{path}"
        headers = {"Authorization": f"Bearer {session.access_token}"}
        return await self._send("GET", url, params=params, headers=headers, counted=True)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        counted: bool = False,
    ) -> httpx.Response:
        """One call and its retries; ``counted`` calls (REST) count against the org's quota and pass its guard.

        Answers that are not worth another try come back as they are, as does the last one of a transient
        failure; a call that never got an answer raises.
        """
        attempt = 0
        while True:
            attempt += 1
            if counted:
                self.quota.acquire()
            unanswered: httpx.TransportError | None = None
            try:
                async with self._slots:
                    self.counters.calls += 1
                    response = await self.http.request(method, url, params=params, data=data, headers=headers)
                # Read before the place is given back, so the next call sees this answer's usage.
                self.quota.observe(response.headers.get(LIMIT_HEADER))
            except httpx.TransportError as exc:
                unanswered = exc
            finally:
                # Also when the caller gave up (cancelled): a place kept would count against the budget forever.
                if counted:
                    self.quota.release()
            if unanswered is not None:
                self.counters.unanswered += 1
                if attempt > self.config.retries:
                    raise _unanswered(unanswered, method, url) from unanswered
                await self._pause(attempt, None)
                continue
            if response.status_code in _SERVER_ERRORS:
                self.counters.server_errors += 1
            elif _rate_limited(response):
                self.counters.rate_limited += 1
            else:
                return response
            retry_after = _retry_after(response)
            if attempt > self.config.retries or (retry_after is not None and retry_after > MAX_BACKOFF):
                return response
            await self._pause(attempt, retry_after)

    async def _pause(self, attempt: int, retry_after: float | None) -> None:
        """Wait before try ``attempt + 1``: ``Retry-After`` when given, else full jitter over an exponential cap."""
        self.counters.retries += 1
        if retry_after is None:
            retry_after = self._jitter.uniform(0, min(MAX_BACKOFF, self.config.backoff * 2 ** (attempt - 1)))
        await asyncio.sleep(retry_after)

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read the CRM source's {what} file: {exc}") from exc


def _path(url: str) -> str:
    return httpx.URL(url).path


def _rate_limited(response: httpx.Response) -> bool:
    """Salesforce's rate-limit answer: 403 ``REQUEST_LIMIT_EXCEEDED`` (a 429 from a proxy counts too)."""
    if response.status_code == 429:
        return True
    return response.status_code == 403 and any(
        error.error_code == "REQUEST_LIMIT_EXCEEDED" for error in _errors(response)
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _errors(response: httpx.Response) -> list[ApiError]:
    try:
        return _ERRORS.decode(response.content)
    except msgspec.DecodeError:
        return []


def _message(response: httpx.Response) -> str:
    """Salesforce's own words: ``errorCode: message`` of each error of the array, else the start of the body."""
    errors = _errors(response)
    if errors:
        return "; ".join(f"{error.error_code}: {error.message}" for error in errors)
    return response.text[:200] or f"HTTP {response.status_code}"


def _oauth_error(response: httpx.Response) -> str:
    try:
        refusal = msgspec.json.decode(response.content, type=OAuthError)
    except msgspec.DecodeError:
        return response.text[:200] or f"HTTP {response.status_code}"
    return f"{refusal.error}: {refusal.error_description}"


def _unanswered(exc: httpx.TransportError, method: str, url: str) -> Exception:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(
            f"the CRM did not answer {method} {_path(url)} in time, after every retry"
        )
    return UpstreamUnavailableError(f"the CRM is unreachable: {type(exc).__name__}, after every retry")


def _raise_for_status(response: httpx.Response, path: str) -> None:
    status = response.status_code
    if status < 400:
        return
    errors = _errors(response)
    code = errors[0].error_code if errors else None
    if status in _SERVER_ERRORS or _rate_limited(response):
        retry_after = response.headers.get("Retry-After") or ("60" if _rate_limited(response) else None)
        raise UpstreamUnavailableError(
            f"the CRM answered {status} to {path} after every retry: {_message(response)}",
            headers={"Retry-After": retry_after} if retry_after else None,
            upstream_status=status,
            error_code=code,
        )
    raise UpstreamRejectedError(
        f"the CRM answered {status} to {path}: {_message(response)}", upstream_status=status, error_code=code
    )
