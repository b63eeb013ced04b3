"""``Idempotency-Key`` on effectful writes (draft-ietf-httpapi-idempotency-key-header).

An operation opts in with ``**idempotent()`` (or ``idempotent("optional")``), or
``**requires(scope, idempotency="required")`` when it also needs scopes (POST and
PATCH only); that attaches the middleware to the operation alone. It documents the header with
:data:`IdempotencyKeyRequired` or :data:`IdempotencyKeyOptional` as a handler
parameter, and the answers below with
``problem_responses(*IDEMPOTENCY_STATUSES)``::

    @post(
        "/v1/journal-entries",
        **requires("erp:write", idempotency="required"),
        responses=problem_responses(*IDEMPOTENCY_STATUSES),
        response_headers=[REPLAYED_RESPONSE_HEADER],
    )
    async def post_entry(data: JSONBody[Entry], idempotency_key: IdempotencyKeyRequired) -> Entry: ...

Answers, all errors as problem+json:

======================================================  ==========================================
the request                                             the answer
======================================================  ==========================================
no key where required                                   400 ``/problems/idempotency-key-missing``
key empty, over 255 characters or not printable ASCII   400 ``/problems/idempotency-key-invalid``
key seen before with another method, path or body       422 ``/problems/idempotency-key-reused``
key seen before, that request still running             409 ``/problems/idempotency-key-in-use``
                                                        with ``Retry-After: 1``
key seen before, that request answered                  its status, headers and body again, with
                                                        ``Idempotent-Replayed: true``
Redis unreachable                                       503 ``/problems/service-unavailable``
======================================================  ==========================================

The key is a Structured Field string (``Idempotency-Key: "8e03978e"``) as the
draft says; a bare value (``Idempotency-Key: 8e03978e``) is taken as sent.

Records live in Redis under ``finsync:idem:{service}:{client}:{key}``, so two
clients never share a key (``client`` is the token's client id, ``anonymous``
without one). The first request claims its key with ``SET NX EX
idempotency.in_flight_timeout`` (atomically returning any record already
there, in the same round trip); when it ends, its answer replaces the marker
for ``idempotency.retention`` seconds (24 h by default), unless the answer is a
408, a 429 or a 5xx: those release the key, so the retry runs again. A request
whose answer was fully produced is recorded even if the client went away before
reading it. A write costs two Redis round trips (claim, record); a replay or a
refusal costs one. Routes and methods that do not opt in cost one dict look-up.

The fingerprint compared on reuse is SHA-256 over the method, the path with its
query string, and the body. ``in_flight_timeout`` must exceed the slowest write:
a marker that expires while its request still runs lets a retry run again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, cast
from urllib.parse import quote

import msgspec
from litestar.datastructures import ResponseHeader
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.params import HeaderParameter
from redis.exceptions import NoScriptError, RedisError

from shared.errors import (
    IdempotencyKeyInUseError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyMissingError,
    IdempotencyKeyReusedError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

    from shared.settings import Settings

__all__ = (
    "HEADER",
    "IDEMPOTENCY_STATUSES",
    "KEY_PREFIX",
    "MAX_KEY_LENGTH",
    "REPLAYED_HEADER",
    "REPLAYED_RESPONSE_HEADER",
    "IdempotencyKeyOptional",
    "IdempotencyKeyRequired",
    "IdempotencyMiddleware",
    "idempotent",
    "parse_key",
)

logger = logging.getLogger("finsync.idempotency")

HEADER: Final = "Idempotency-Key"
"""The request header."""
REPLAYED_HEADER: Final = "Idempotent-Replayed"
"""Response header marking a replayed answer (value ``true``)."""
MAX_KEY_LENGTH: Final = 255
"""Longest accepted header value, in characters."""
KEY_PREFIX: Final = "finsync:idem"
"""Prefix of every idempotency record in Redis."""
IDEMPOTENCY_STATUSES: Final = (400, 409, 422)


def idempotent(mode: Literal["required", "optional"] = "required") -> dict[str, Any]:
    """Route-decorator arguments that make an operation honour ``Idempotency-Key``.

    The middleware is attached to the operation itself, so routes without keys
    pay nothing for it: ``@post(..., **idempotent())``. With scopes, use
    ``requires(..., idempotency="required")`` instead.
    """
    # "required": without a key the write gets a 400; "optional": a key is honoured when sent.
    return {"opt": {"idempotency": mode}, "middleware": [IdempotencyMiddleware()]}


"""Error statuses an idempotent operation documents: ``problem_responses(*IDEMPOTENCY_STATUSES)``."""

_KEY_DESCRIPTION = (
    "Unique key of this write, chosen by the client (IETF draft-ietf-httpapi-idempotency-key-header): "
    'a Structured Field string such as "8e03978e-40d5" or a bare value, at most 255 printable ASCII '
    "characters. A retry with the same key and the same request gets the first answer again, marked "
    "Idempotent-Replayed: true (kept 24 h). The same key with another request is refused with 422, "
    "and while the first request still runs, with 409. Keys are scoped per client."
)
_KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"

IdempotencyKeyRequired = Annotated[
    str,
    HeaderParameter(
        name=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=_KEY_PATTERN,
        description=_KEY_DESCRIPTION,
    ),
]
"""Handler parameter type that documents a required ``Idempotency-Key`` header in OpenAPI."""
IdempotencyKeyOptional = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        required=False,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=_KEY_PATTERN,
        description=_KEY_DESCRIPTION,
    ),
]
"""Handler parameter type that documents an optional ``Idempotency-Key`` header in OpenAPI."""
REPLAYED_RESPONSE_HEADER: Final = ResponseHeader(
    name=REPLAYED_HEADER,
    documentation_only=True,
    description="'true' when this answer is the stored answer of an earlier request with the same Idempotency-Key.",
)
"""``response_headers=[REPLAYED_RESPONSE_HEADER]`` documents the replay marker on the success answer."""

_WRITE_METHODS: Final = frozenset({"POST", "PATCH"})
_HEADER_NAME: Final = b"idempotency-key"
_NOT_STORED_STATUSES: Final = frozenset({408, 429})
_NOT_REPLAYED_HEADERS: Final = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"date",
        b"server",
        b"x-request-id",
        b"x-trace-id",
        b"ratelimit",
        b"ratelimit-policy",
        b"retry-after",
        b"idempotent-replayed",
    }
)
"""Response headers that belong to one delivery, not to the answer; the replay sets its own."""

# KEYS[1] record; ARGV[1] in-flight marker, ARGV[2] its lifetime. Claims the key, or returns what holds it.
_CLAIM = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    return false
end
return redis.call('get', KEYS[1])
"""
# KEYS[1] record; ARGV[1] our marker, ARGV[2] the answer, ARGV[3] retention. Only while we still hold the key.
_FINISH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""
# KEYS[1] record; ARGV[1] our marker. Frees the key for a retry, only while we still hold it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class _InFlight(msgspec.Struct, tag="i", array_like=True):
    """The key is held by a running request."""

    fingerprint: str
    token: str


class _Answer(msgspec.Struct, tag="a", array_like=True):
    """The key's request was answered; this is what to replay."""

    fingerprint: str
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


_Record = _InFlight | _Answer


def parse_key(raw: bytes) -> str:
    """The idempotency key in an ``Idempotency-Key`` header value.

    A Structured Field string (``"abc"``, with ``\\"`` and ``\\\\`` escapes) is
    unquoted; any other value is the key as sent.

    Raises:
        IdempotencyKeyInvalidError: Empty, over :data:`MAX_KEY_LENGTH` characters, or not printable ASCII.
    """
    if len(raw) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalidError(
            f"the {HEADER} header has {len(raw)} characters; at most {MAX_KEY_LENGTH} are allowed"
        )
    text = raw.decode("latin-1").strip(" \t")
    if not text or any(not (" " <= char <= "~") for char in text):
        raise IdempotencyKeyInvalidError(f"the {HEADER} header must be 1 to 255 printable ASCII characters")
    if len(text) > 2 and text[0] == '"' and text[-1] == '"':
        unquoted = _sf_string_content(text[1:-1])
        if unquoted:
            return unquoted
    return text


def _sf_string_content(inner: str) -> str | None:
    """The value of an sf-string's content, or ``None`` when it is not valid sf-string content."""
    out: list[str] = []
    escaped = False
    for char in inner:
        if escaped:
            if char not in '"\\':
                return None
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


class _Lua:
    """A Lua script run by ``EVALSHA``, loaded again when Redis lost it (restart, ``SCRIPT FLUSH``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, redis: aioredis.Redis, key: str, *args: bytes | int) -> Any:
        try:
            return await redis.evalsha(self.sha, 1, key, *args)
        except NoScriptError:
            await redis.script_load(self.text)
            return await redis.evalsha(self.sha, 1, key, *args)


class _Capture:
    """Wraps ``send``: passes every message on and keeps a copy of the answer."""

    __slots__ = ("body", "complete", "headers", "send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.complete = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (bytes(name).lower(), bytes(value))
                for name, value in message.get("headers", ())
                if bytes(name).lower() not in _NOT_REPLAYED_HEADERS
            ]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            self.complete = not message.get("more_body", False)
        await self.send(message)


class IdempotencyMiddleware(ASGIMiddleware):
    """Honour ``Idempotency-Key`` on the POST and PATCH operations whose handler ``opt`` asks for it.

    Add it to the app's middleware *after* the auth middleware (so
    ``scope["auth"]`` is set). It takes everything else from the app state:
    ``settings`` (``idempotency.*``, ``http.max_body_size``), ``service`` and
    ``redis``.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        """Prepare the three Lua scripts (no I/O)."""
        self._claim = _Lua(_CLAIM)
        self._finish = _Lua(_FINISH)
        self._release = _Lua(_RELEASE)
        self._down_since: float | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the write once per key; refuse, or replay, the repeats."""
        if scope["method"] not in _WRITE_METHODS:  # type: ignore[typeddict-item]
            await next_app(scope, receive, send)
            return
        mode = scope["route_handler"].opt.get("idempotency")
        if not mode:
            await next_app(scope, receive, send)
            return
        raw = next((value for name, value in scope["headers"] if name == _HEADER_NAME), None)
        if raw is None:
            if mode == "optional":
                await next_app(scope, receive, send)
                return
            raise IdempotencyKeyMissingError(f"this operation needs an {HEADER} header")
        key = parse_key(raw)
        state = scope["app"].state
        settings: Settings = state.settings
        body = await _read_body(receive, settings.http.max_body_size)
        if body is None:  # the client went away before sending its body
            return
        fingerprint = _fingerprint(scope, body)
        principal = cast("dict[str, Any]", scope).get("auth")
        client = principal.client_id if principal is not None else "anonymous"
        record_key = f"{KEY_PREFIX}:{state.service}:{quote(client, safe='')}:{key}"
        redis: aioredis.Redis = state.redis
        marker = msgspec.msgpack.encode(_InFlight(fingerprint, secrets.token_hex(8)))
        try:
            held = await self._claim(redis, record_key, marker, settings.idempotency.in_flight_timeout)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            raise ServiceUnavailableError(
                "idempotency records are unavailable, so this write was not run; retry shortly", retry_after=1
            ) from exc
        self._recovered()
        if held is not None:
            await self._answer_repeat(msgspec.msgpack.decode(held, type=_Record), fingerprint, send)
            return
        await self._run_once(scope, body, receive, send, next_app, record_key, marker, fingerprint, settings)

    async def _answer_repeat(self, record: _Record, fingerprint: str, send: Send) -> None:
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                f"this {HEADER} was already used with a different request (method, path or body); "
                "use a new key for a new request"
            )
        if isinstance(record, _InFlight):
            raise IdempotencyKeyInUseError(
                f"the first request with this {HEADER} is still running; retry once it has finished",
                headers={"Retry-After": "1"},
            )
        headers = [
            *record.headers,
            (b"content-length", str(len(record.body)).encode()),
            (b"idempotent-replayed", b"true"),
        ]
        await send({"type": "http.response.start", "status": record.status, "headers": headers})
        await send({"type": "http.response.body", "body": record.body, "more_body": False})

    async def _run_once(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        record_key: str,
        marker: bytes,
        fingerprint: str,
        settings: Settings,
    ) -> None:
        body_sent = False

        async def receive_body() -> ReceiveMessage:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        capture = _Capture(send)
        try:
            await next_app(scope, receive_body, capture)
        finally:
            # A complete final answer is kept even when delivering it failed: that is the lost
            # response the client will retry. Anything else frees the key so the retry runs.
            redis: aioredis.Redis = scope["app"].state.redis
            try:
                if capture.complete and capture.status < 500 and capture.status not in _NOT_STORED_STATUSES:
                    answer = _Answer(fingerprint, capture.status, capture.headers, bytes(capture.body))
                    stored = await self._finish(
                        redis,
                        record_key,
                        marker,
                        msgspec.msgpack.encode(answer),
                        settings.idempotency.retention,
                    )
                    if not stored:
                        logger.warning(
                            "an idempotent write outlived idempotency.in_flight_timeout (%d s); "
                            "its answer was not recorded",
                            settings.idempotency.in_flight_timeout,
                        )
                else:
                    await self._release(redis, record_key, marker)
            except (RedisError, OSError) as exc:
                logger.warning(
                    "idempotency record not updated (%s: %s); the key stays held for up to %d s",
                    type(exc).__name__,
                    exc,
                    settings.idempotency.in_flight_timeout,
                )

    def _failed(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "idempotency records unreachable (%s: %s); writes with %s get 503 until Redis answers",
                type(exc).__name__,
                exc,
                HEADER,
            )

    def _recovered(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "idempotency records reachable again after %.1f s", time.monotonic() - self._down_since
            )
            self._down_since = None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` when the client disconnected first.

    Raises:
        PayloadTooLargeError: The body is over ``limit`` bytes.
    """
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks += cast("bytes", message.get("body", b""))
        if len(chunks) > limit:
            raise PayloadTooLargeError(f"the request body is over the configured limit of {limit} bytes")
        if not message.get("more_body", False):
            return bytes(chunks)


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())  # type: ignore[typeddict-item]
    digest.update(b" ")
    digest.update(scope["path"].encode())
    if scope["query_string"]:
        digest.update(b"?")
        digest.update(scope["query_string"])
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()
