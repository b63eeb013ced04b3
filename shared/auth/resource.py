"""Every service as an OAuth resource server: verify bearer tokens, fast.

A token is verified once with joserfc against the issuer's JWKS (``alg`` from an
allow-list, then ``iss``, ``aud``, ``exp`` and ``nbf`` with a small leeway) and
the result is cached until the token expires, so a busy client costs one
signature check per token, not per request. Revocation is an in-process
deny-list of ``jti`` that Redis pub/sub keeps fresh (contract in
:mod:`shared.auth`), so it costs no Redis round trip per request either.

The JWKS comes from a URL (cached; refetched when a token names an unknown
``kid``, at most once per ``jwks_refetch_interval``) or from a file. Any issuer
that publishes a JWKS works: Keycloak, Okta, Entra or the built-in server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from shared.auth import REVOKED_CHANNEL, REVOKED_SET, Principal
from shared.errors import AuthenticationError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from shared.settings import AuthSettings, ClientConfig

__all__ = ("JwksSource", "RevocationList", "TokenVerifier", "invalid_token")

logger = logging.getLogger("finsync.auth")

POLL_INTERVAL = 0.5
"""Seconds between two reads of the revocation feed; also the most a stop waits for it."""
CACHE_SIZE = 10_000
"""Verified tokens kept in memory; the cache is emptied of expired ones when full."""


def invalid_token(detail: str) -> AuthenticationError:
    """A 401 that tells the client, per RFC 6750, that its token is the problem."""
    return AuthenticationError(
        detail,
        headers={
            "WWW-Authenticate": f'Bearer realm="finsync", error="invalid_token", error_description="{detail}"'
        },
    )


class JwksSource:
    """The issuer's public keys, from a URL or a file."""

    def __init__(
        self, *, url: str | None, file: str | None, refetch_interval: float, timeout: float = 5.0
    ) -> None:
        self.url = url
        self.file = file
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    def _read(self, raw: bytes | str) -> KeySet:
        return KeySet.import_key_set(httpx.Response(200, content=raw).json())

    async def _load(self) -> KeySet:
        if self.file is not None:
            return self._read(await asyncio.to_thread(Path(self.file).read_bytes))
        assert self.url is not None
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.get(self.url)
            response.raise_for_status()
        return self._read(response.content)

    async def keys(self) -> KeySet | None:
        """The key set, loaded on first use; ``None`` while the issuer cannot be reached."""
        if self._keys is None:
            await self.refresh()
        return self._keys

    async def refresh(self) -> bool:
        """Reload the keys unless that happened less than ``refetch_interval`` ago; True when reloaded."""
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.refetch_interval and self._keys is not None:
                return False
            self._fetched_at = time.monotonic()
            try:
                self._keys = await self._load()
            except (httpx.HTTPError, OSError, ValueError, JoseError) as exc:
                logger.warning(
                    "cannot load the issuer's keys", extra={"jwks": self.url or self.file, "error": str(exc)}
                )
                return False
            return True


class RevocationList:
    """Revoked token ids, mirrored from Redis and kept fresh by pub/sub."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._revoked: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._loaded = asyncio.Event()

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    def add(self, jti: str, exp: float) -> None:
        """Remember a revocation until the token would have expired anyway."""
        self._revoked[jti] = exp

    async def start(self, wait: float = 2.0) -> None:
        """Follow the revocation feed in the background, waiting up to ``wait`` seconds for the first load.

        A Redis that is down does not stop start-up: the list fills in when it comes back.
        """
        self._task = asyncio.create_task(self._follow(), name="finsync-revocations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._loaded.wait(), wait)

    async def _load(self) -> None:
        now = time.time()
        entries = await self.redis.zrangebyscore(REVOKED_SET, now, "+inf", withscores=True)
        for jti, exp in cast("list[tuple[bytes | str, float]]", entries):
            self.add(jti.decode() if isinstance(jti, bytes) else str(jti), float(exp))

    async def _follow(self) -> None:
        """Subscribe, then load what was revoked before (in that order, so nothing falls between).

        While Redis is unreachable, revocations made meanwhile are learnt on reconnection.
        """
        delay = 0.5
        while not self._stopping:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REVOKED_CHANNEL)
                await self._load()
                self._loaded.set()
                delay = 0.5
                # Polled with a timeout rather than ``listen()``: redis-py's listener can swallow
                # a task cancellation, and a service must always be able to stop.
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_INTERVAL)
                    if message is None:
                        continue
                    data = message.get("data")
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    jti, _, exp = text.partition(" ")
                    self.add(jti, float(exp or time.time() + 86400))
                    self._prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost feed is re-established, never fatal
                logger.warning("revocation feed unavailable; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _prune(self) -> None:
        now = time.time()
        for jti in [jti for jti, exp in self._revoked.items() if exp < now]:
            del self._revoked[jti]

    async def stop(self) -> None:
        """Stop following the feed (within one poll interval)."""
        self._stopping = True
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=POLL_INTERVAL * 2)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal`, or refuses it with a 401."""

    def __init__(
        self,
        settings: AuthSettings,
        audience: str,
        jwks: JwksSource,
        revocations: RevocationList | None,
        clients: dict[str, ClientConfig],
    ) -> None:
        self.issuer = settings.issuer
        self.audience = audience
        self.algorithms = list(settings.algorithms)
        self.leeway = settings.leeway
        self.jwks = jwks
        self.revocations = revocations
        self.clients = clients
        self._cache: dict[str, tuple[float, str, Principal]] = {}

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthenticationError: the token is malformed, forged, expired, not yet valid,
                for another issuer or audience, signed with a refused algorithm, or revoked.
        """
        cached = self._cache.get(token)
        if cached is not None:
            exp, jti, principal = cached
            if time.time() < exp + self.leeway and (self.revocations is None or jti not in self.revocations):
                return principal
            del self._cache[token]
            raise invalid_token(
                "the token has been revoked" if jti in (self.revocations or ()) else "the token has expired"
            )
        exp, jti, principal = await self._verify(token)
        if self.revocations is not None and jti in self.revocations:
            raise invalid_token("the token has been revoked")
        if len(self._cache) >= CACHE_SIZE:
            now = time.time()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
        self._cache[token] = (exp, jti, principal)
        return principal

    async def _verify(self, token: str) -> tuple[float, str, Principal]:
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise invalid_token("the token is not a JWT") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise invalid_token(f"tokens signed with {alg!r} are not accepted")
        keys = await self.jwks.keys()
        kid = header.get("kid")
        if keys is not None and not _has_kid(keys, kid) and await self.jwks.refresh():
            keys = await self.jwks.keys()
        if keys is None:
            raise invalid_token("the issuer's keys cannot be loaded")
        if not _has_kid(keys, kid):
            raise invalid_token("the token names an unknown key")
        try:
            decoded = jwt.decode(token, keys, algorithms=self.algorithms)
            claims = decoded.claims
            jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise invalid_token(_describe(exc)) from exc
        client_id = str(claims.get("client_id") or claims.get("sub") or "")
        if not client_id:
            raise invalid_token("the token names no client")
        config = self.clients.get(client_id)
        internal = config.internal if config is not None else False
        scopes = frozenset(str(claims.get("scope", "")).split())
        obo = claims.get("obo") if internal else None
        principal = Principal(client_id=client_id, scopes=scopes, on_behalf_of=obo, internal=internal)
        # Some issuers (Entra ID) put no ``jti`` in access tokens; such tokens cannot be
        # revoked one by one, only by expiry or by rotating the issuer's keys.
        return float(claims["exp"]), str(claims.get("jti", "")), principal


def _has_kid(keys: KeySet, kid: object) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    descriptions = {
        "BadSignatureError": "the token's signature does not verify",
        "ExpiredTokenError": "the token has expired",
        "InvalidTokenError": "the token is not valid yet",
        "InvalidClaimError": f"the token's claims are wrong: {exc}",
        "MissingClaimError": f"the token lacks a claim: {exc}",
    }
    return descriptions.get(name, f"the token is invalid ({name})")
