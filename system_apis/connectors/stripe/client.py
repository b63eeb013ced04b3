"""Calls to one Stripe account: the secret key, the pinned API version, form bodies, and retries.

Every call carries ``Authorization: Bearer <secret key>`` (read from
``secret_key_file`` on first use, and again after Stripe refused it, so a
rotated key is picked up) and ``Stripe-Version`` (the source's
``api_version``), so an account upgrade never changes the shapes the mapping
reads. Bodies and query strings use Stripe's brackets (:func:`encode_form`).
At most ``concurrency`` calls are in flight at once; waits between tries hold
no slot.

Every ``POST`` carries an ``Idempotency-Key`` chosen by the caller from the
business operation (never per attempt), and every try of it sends the same key:
a retry after a lost answer is replayed by Stripe, not run again.

Failures, and what happens:

===========================================  ================================================
what happened                                what the client does
===========================================  ================================================
``Stripe-Should-Retry: true``                retry
``Stripe-Should-Retry: false``               never retry, whatever the status
no such header: 429, 5xx, 409                retry (409: the first request with the key
                                             still runs, as Stripe's own libraries do)
no answer, connection failed, timed out      retry (a ``POST`` replays under its key)
between two tries                            exponential backoff with full jitter, at most
                                             :data:`MAX_BACKOFF`; a longer ``Retry-After``
                                             wins, one over :data:`MAX_BACKOFF` stops
retries used up: 429, 5xx / no answer        ``UpstreamUnavailableError`` (503) /
                                             ``UpstreamTimeoutError`` (504)
409 (key in use) after every retry           ``IdempotencyKeyInUseError`` (409)
400 ``idempotency_error``                    ``ConflictError`` (409): the key was used with
                                             other parameters
402 ``card_error``                           ``SourceRejectedError`` (422) with the decline
404 ``resource_missing``                     ``NotFoundError`` (404)
401, 403                                     ``UpstreamRejectedError`` (502): the key
other 4xx                                    :class:`StripeRejectedError` (502) with Stripe's
                                             ``error``, for the connector to judge
===========================================  ================================================
"""

from __future__ import annotations

import asyncio
import logging
import random
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import msgspec

from shared.errors import (
    ConflictError,
    IdempotencyKeyInUseError,
    NotFoundError,
    SettingsError,
    SourceRejectedError,
    UpstreamContractError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from system_apis.connectors.stripe.wire import ErrorAnswer, StripeError

if TYPE_CHECKING:
    from shared.settings import StripeSourceConfig

__all__ = ("MAX_BACKOFF", "Answer", "ClientCounters", "StripeClient", "StripeRejectedError", "encode_form")

logger = logging.getLogger("finsync.stripe")

T = TypeVar("T")

MAX_BACKOFF = 30.0
"""Longest wait between two tries, in seconds; a ``Retry-After`` beyond it ends the retries."""
CONNECTIONS = httpx.Limits(max_connections=32, max_keepalive_connections=16)
"""Connections to one account (``concurrency`` caps the calls in flight below this)."""
_FORM = "application/x-www-form-urlencoded"


class StripeRejectedError(UpstreamRejectedError):
    """Stripe refused the request (a 4xx other than those the client translates itself); ``error`` says why."""

    def __init__(self, detail: str, *, status: int, error: StripeError) -> None:
        super().__init__(detail, upstream_status=status, stripe_code=error.code)
        self.status = status
        """The HTTP status Stripe answered."""
        self.error = error
        """Stripe's ``error``: its type, code, message and parameter."""


@dataclass
class ClientCounters:
    """What the client did since it was made; tests read these."""

    requests: int = 0
    """HTTP exchanges attempted, every try counted."""
    retries: int = 0
    """Tries that repeated an earlier one."""
    should_retry_true: int = 0
    """Answers that carried ``Stripe-Should-Retry: true``."""
    should_retry_false: int = 0
    """Answers that carried ``Stripe-Should-Retry: false`` (never retried)."""
    replays: int = 0
    """Answers Stripe replayed from a saved ``Idempotency-Key`` (``Idempotent-Replayed: true``)."""


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: its body, and whether Stripe replayed it from the ``Idempotency-Key``."""

    body: bytes
    """The JSON body."""
    replayed: bool
    """True when Stripe answered from the key's saved result: this call changed nothing."""


def encode_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Stripe's bracket notation: ``{"metadata": {"k": "v"}}`` → ``metadata[k]=v``, a list of scalars →
    ``expand[]=a``, a list of objects → ``lines[0][amount]=5``; booleans are ``true``/``false``, decimals
    plain (never an exponent); ``None`` is left out."""
    pairs: list[tuple[str, str]] = []

    def walk(name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{name}[{key}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{name}[{index}]" if isinstance(item, Mapping) else f"{name}[]", item)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, Decimal):
            pairs.append((name, format(value, "f")))
        else:
            pairs.append((name, str(value)))

    for key, value in params.items():
        walk(key, value)
    return pairs


class StripeClient:
    """Calls one Stripe account with its secret key; safe to share between concurrent tasks."""

    def __init__(self, config: StripeSourceConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout),
            transport=transport or httpx.AsyncHTTPTransport(limits=CONNECTIONS),
            follow_redirects=False,
            headers={"user-agent": "finsync-system", "Stripe-Version": config.api_version},
        )
        self.counters = ClientCounters()
        """What the client did (requests, retries, ``Stripe-Should-Retry`` answers, replays)."""
        self._slots = asyncio.Semaphore(config.concurrency)
        self._key: str | None = config.secret_key

    # -- the key -------------------------------------------------------------------------------------

    def _secret(self) -> str:
        """The secret key: ``secret_key``, else the file's content, read on first use."""
        if self._key is None and self.config.secret_key_file:
            try:
                self._key = Path(self.config.secret_key_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(f"cannot read the billing secret key file: {exc}") from exc
        if not self._key:
            raise SettingsError("the billing source has no secret key (set secret_key or secret_key_file)")
        return self._key

    # -- calls ---------------------------------------------------------------------------------------

    async def get(self, path: str, type_: type[T], params: Mapping[str, Any] | None = None) -> T:
        """GET ``{url}{path}`` and decode its answer as ``type_``."""
        answer = await self.request("GET", path, params=params)
        return _decode(answer.body, type_, path)

    async def post(
        self, path: str, type_: type[T], params: Mapping[str, Any], *, idempotency_key: str
    ) -> tuple[T, bool]:
        """POST ``params`` form-encoded under ``idempotency_key``; the decoded answer, and whether Stripe
        replayed it (True: the effect was made by an earlier call with the same key)."""
        answer = await self.request("POST", path, params=params, idempotency_key=idempotency_key)
        return _decode(answer.body, type_, path), answer.replayed

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> Answer:
        """One call, retried as the module's docstring says; a 2xx :class:`Answer`, or a ``shared.errors``
        error. ``retry=False`` tries once (probes)."""
        if method == "POST" and idempotency_key is None:
            raise ValueError("every POST to Stripe carries an Idempotency-Key derived from its business key")
        pairs = encode_form(params or {})
        headers = {"Accept": "application/json"}
        query: list[tuple[str, str]] | None = pairs
        content: bytes | None = None
        if method == "POST":
            headers["Content-Type"] = _FORM
            headers["Idempotency-Key"] = idempotency_key or ""
            query, content = None, urllib.parse.urlencode(pairs).encode()
        tries = 1 + (self.config.retries if retry else 0)
        for attempt in range(tries):
            if attempt:
                self.counters.retries += 1
            last = attempt == tries - 1
            try:
                response = await self._send(method, path, headers, query, content)
            except httpx.TimeoutException as exc:
                if last:
                    raise UpstreamTimeoutError(
                        f"the billing platform did not answer {method} {path} in time, after {tries} tries"
                    ) from exc
                await asyncio.sleep(self._backoff(attempt, None))
                continue
            except httpx.TransportError as exc:
                if last:
                    raise UpstreamUnavailableError(
                        f"the billing platform is unreachable: {type(exc).__name__}, after {tries} tries"
                    ) from exc
                await asyncio.sleep(self._backoff(attempt, None))
                continue
            if response.is_success:
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                self.counters.replays += replayed
                return Answer(body=response.content, replayed=replayed)
            if response.status_code in (401, 403):
                self._key = self.config.secret_key  # re-read a key file next time: the key may have rotated
            retryable, wait = self._retryable(response), _retry_after(response)
            if last or not retryable or (wait is not None and wait > MAX_BACKOFF):
                _raise_for_status(response, method, path)
            logger.info(
                "billing platform answered %s to %s %s; retrying",
                response.status_code,
                method,
                path,
                extra={"attempt": attempt + 1},
            )
            await asyncio.sleep(self._backoff(attempt, wait))
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        query: list[tuple[str, str]] | None,
        content: bytes | None,
    ) -> httpx.Response:
        headers = {**headers, "Authorization": f"Bearer {self._secret()}"}
        async with self._slots:
            self.counters.requests += 1
            return await self.http.request(
                method,
                f"{self.base}{path}",
                headers=headers,
                params=urllib.parse.urlencode(query) if query else None,
                content=content,
            )

    def _retryable(self, response: httpx.Response) -> bool:
        """Stripe's ``Stripe-Should-Retry`` when it sent one; else 429, 409 and 5xx."""
        verdict = response.headers.get("Stripe-Should-Retry")
        if verdict == "true":
            self.counters.should_retry_true += 1
            return True
        if verdict == "false":
            self.counters.should_retry_false += 1
            return False
        return response.status_code in (409, 429) or response.status_code >= 500

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over ``backoff * 2**attempt`` (capped), or ``Retry-After`` when that is longer."""
        ceiling = min(MAX_BACKOFF, self.config.backoff * 2**attempt)
        wait = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        return max(wait, retry_after or 0.0)

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _error(response: httpx.Response) -> StripeError:
    """Stripe's ``error`` member, or one made from the raw text when the body is not Stripe's shape."""
    try:
        return msgspec.json.decode(response.content, type=ErrorAnswer).error
    except msgspec.DecodeError:
        return StripeError(message=response.text[:200] or f"HTTP {response.status_code}")


def _raise_for_status(response: httpx.Response, method: str, path: str) -> None:
    """Translate an answer that is not a 2xx, and will not be retried, into ``shared.errors``."""
    status = response.status_code
    error = _error(response)
    said = f"the billing platform answered {status} to {method} {path}: {error.message}"
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        raise UpstreamUnavailableError(
            said, headers={"Retry-After": retry_after} if retry_after else None, upstream_status=status
        )
    if status == 409:
        raise IdempotencyKeyInUseError(
            f"the billing platform is still running the first request of this operation: {error.message}",
            headers={"Retry-After": "1"},
        )
    if error.type == "idempotency_error":
        raise ConflictError(
            f"the billing platform saw this operation before with other parameters: {error.message}"
        )
    if status == 402 or error.type == "card_error":
        raise SourceRejectedError(
            f"the billing platform declined the payment: {error.message}",
            source_message=error.message,
            decline_code=error.decline_code or error.code,
        )
    if status in (401, 403):
        raise UpstreamRejectedError(
            f"the billing platform refused the secret key: {error.message}", upstream_status=status
        )
    if status == 404 and error.code == "resource_missing":
        raise NotFoundError(error.message)
    raise StripeRejectedError(said, status=status, error=error)


def _decode(body: bytes, type_: type[T], path: str) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise UpstreamContractError(f"the billing platform answered {path} off contract: {exc}") from exc
