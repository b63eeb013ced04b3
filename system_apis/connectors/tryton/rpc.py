"""A JSON-RPC session with one Tryton database, as the source's service user.

Why JSON-RPC rather than Tryton 8's REST API: JSON-RPC reaches every model
method the connector needs (``search_read`` with dotted fields, the trial balance
through ``account.account`` with a context, and the finsync module's
create-and-post methods, each one transaction), and the context travels with
each call, so one session serves every legal entity. The REST API needs a key per
user application and exposes fewer methods. Measured cost of a call: about 15 ms
with a session, against about 140 ms with Basic auth (STACK-NOTES), so the
session is opened once and reused.

Failures, and which are retried (only transient ones, and writes only when the
request never reached Tryton):

================================  ==========================  =================
what happened                     raised                      retried
================================  ==========================  =================
connection refused                ``UpstreamUnavailableError``  yes, reads and writes
no answer in ``timeout``          ``UpstreamTimeoutError``    reads only
HTTP 5xx, 429, 503                ``UpstreamUnavailableError``  reads only
HTTP 401 (session ended)          log in again, call again    once
``UserError`` / ``UserWarning``   :class:`TrytonUserError`    never
any other error                   ``UpstreamError``           never
================================  ==========================  =================
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from shared.errors import UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError
from system_apis.connectors.tryton import wire

if TYPE_CHECKING:
    from shared.settings import TrytonSourceConfig

__all__ = ("TrytonRPC", "TrytonUserError")

logger = logging.getLogger("finsync.tryton")

READ_ATTEMPTS = 3
"""Tries of a read that failed transiently (the first included)."""
BACKOFF = 0.2
"""Base of the exponential backoff between tries, in seconds; full jitter."""


@dataclass(frozen=True, slots=True)
class TrytonUserError(Exception):
    """Tryton refused a call under its own rules (``UserError`` or ``UserWarning``); nothing was written."""

    message: str
    """Tryton's message, such as "The move is not balanced"."""
    description: str = ""
    """Tryton's longer explanation, when it gives one."""

    def __str__(self) -> str:
        return f"{self.message} {self.description}".strip()


class TrytonRPC:
    """Calls one Tryton database over JSON-RPC, with a cached session and a cap on calls in flight."""

    def __init__(self, config: TrytonSourceConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self.url = f"{config.url.rstrip('/')}/{config.database}/rpc/"
        self._authorization: str | None = None
        self._login_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._ids = 0
        self._password = config.password
        if self._password is None and config.password_file:
            self._password = Path(config.password_file).read_text(encoding="utf-8").strip()

    async def call(self, method: str, *params: Any, result: Any = None, read: bool = True) -> Any:
        """Call ``method`` (such as ``model.account.move.search_read``) and return its result.

        Args:
            method: The JSON-RPC method.
            params: Its positional parameters; Tryton takes the context last.
            result: The type to decode ``result`` into (Structs with :mod:`.wire` fields, for the
                hot reads); ``None``: plain Python values (``Decimal``, ``date``...).
            read: The call changes nothing, so a transient failure may be retried.

        Raises:
            TrytonUserError: Tryton refused the call under its rules.
            UpstreamUnavailableError: Tryton cannot be reached, or is overloaded.
            UpstreamTimeoutError: No answer within the source's ``timeout``.
            UpstreamError: Tryton failed in some other way.
        """
        attempt = 1
        while True:
            try:
                return await self._call_with_session(method, params, result)
            except _Transient as failure:
                if attempt == READ_ATTEMPTS or (failure.sent and not read):
                    raise failure.error from None
            await asyncio.sleep(random.uniform(0, BACKOFF * 2 ** (attempt - 1)))  # noqa: S311 - jitter
            attempt += 1

    async def _call_with_session(self, method: str, params: tuple[Any, ...], result: Any) -> Any:
        authorization = self._authorization or await self._login()
        status, answer = await self._post(method, params, result, authorization)
        if status == 401:
            # The session ended (expired, or Tryton restarted): log in again, once.
            status, answer = await self._post(method, params, result, await self._login(authorization))
        if status != 200:
            retry_after = answer.headers.get("Retry-After")
            error = UpstreamUnavailableError(
                f"the ERP answered HTTP {status} to {method}",
                headers={"Retry-After": retry_after} if retry_after else None,
            )
            if status == 429 or status >= 500:
                raise _Transient(error, sent=True)
            raise UpstreamError(f"the ERP answered HTTP {status} to {method}")
        if answer.error is not None:
            raise _error(method, answer.error)
        return wire.plain(answer.result) if result is None else answer.result

    async def _post(
        self, method: str, params: tuple[Any, ...], result: Any, authorization: str | None
    ) -> tuple[int, Any]:
        """One HTTP exchange: (200, decoded answer) or (status, the response)."""
        self._ids += 1
        body = wire.encode({"id": self._ids, "method": method, "params": list(params)})
        # Answers over 1,400 bytes come gzipped (level 1). Asking for identity does not help: Tryton 8.2
        # then labels the plain body gzip all the same, which no client can decode.
        headers = {"Content-Type": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        async with self._slots:
            try:
                response = await self.client.post(
                    self.url, content=body, headers=headers, timeout=self.config.timeout
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = UpstreamUnavailableError(f"the ERP cannot be reached: {type(exc).__name__}")
                raise _Transient(error, sent=False) from None
            except httpx.TimeoutException:
                timeout = UpstreamTimeoutError(
                    f"the ERP did not answer {method} within {self.config.timeout} s"
                )
                raise _Transient(timeout, sent=True) from None
            except httpx.HTTPError as exc:
                error = UpstreamUnavailableError(f"the ERP connection failed: {type(exc).__name__}")
                raise _Transient(error, sent=True) from None
        if response.status_code != 200:
            return response.status_code, response
        try:
            return 200, wire.decoder(Any if result is None else result).decode(response.content)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"the ERP answered {method} with something unexpected: {exc}") from None

    async def _login(self, stale: str | None = None) -> str:
        """Open a session (once, whoever asks first); ``stale`` is the session a caller saw fail."""
        async with self._login_lock:
            if self._authorization is not None and self._authorization != stale:
                return self._authorization
            config = self.config
            password = self._password
            # Never retried: Tryton delays every failed login more, then answers 429.
            try:
                status, answer = await self._post(
                    "common.db.login", (config.login, {"password": password or ""}, "en"), Any, None
                )
            except _Transient as failure:
                raise failure.error from None
            if status != 200 or answer.error is not None or not isinstance(answer.result, list):
                self._authorization = None
                detail = f"HTTP {status}" if status != 200 else str(answer.error or answer.result)
                raise UpstreamUnavailableError(f"the ERP refused the service user {config.login!r}: {detail}")
            user_id, session = answer.result[0], answer.result[1]
            token = base64.b64encode(f"{config.login}:{user_id}:{session}".encode()).decode()
            self._authorization = f"Session {token}"
            return self._authorization


class _Transient(Exception):  # noqa: N818 - internal signal, never escapes this module
    """A failure that a retry may cure; ``sent``: the request may have reached Tryton."""

    def __init__(self, error: Exception, *, sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


def _error(method: str, error: Any) -> Exception:
    """The exception for an ``error`` member of a JSON-RPC answer."""
    if isinstance(error, list) and len(error) == 2 and error[0] in ("UserError", "UserWarning"):
        args = error[1] if isinstance(error[1], list) else [error[1]]
        if error[0] == "UserWarning":
            args = args[1:]  # (warning name, message, description)
        message = str(args[0]) if args else "refused"
        description = str(args[1]) if len(args) > 1 and args[1] else ""
        return TrytonUserError(message, description)
    if isinstance(error, list) and error and error[0] == "ConcurrencyException":
        return UpstreamUnavailableError(f"the ERP reported a concurrent change during {method}")
    # A server-side exception: its traceback stays out of our answers and logs.
    name = error[0] if isinstance(error, list) and error else "error"
    logger.warning("the ERP failed on %s: %s", method, str(name)[:200])
    return UpstreamError(f"the ERP failed on {method}")
