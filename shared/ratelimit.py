"""Rate limiting: ``limits`` windows on the Redis every replica shares, with the IETF RateLimit fields.

Who is counted: the caller passes ``key`` (``client:{client_id}`` from the
token, or ``ip:{address}`` when anonymous) and the caller's ``tier``. A tier
(``settings.tiers[name]``) has a ``limit`` for every route and optional
per-route rates keyed ``"METHOD /path/{template}"``; a per-route rate *replaces*
the tier limit for that route and has its own counter, while every other route
of the tier shares one counter. An unknown tier falls back to ``default`` (and
is logged once).

Algorithm: ``settings.rate_limit.strategy``, either ``limits``' moving window or
its sliding-window counter, on ``limits``' Redis storage (redis-py
implementation, our own connection pool, so :meth:`RateLimiter.aclose` really
closes it). One request costs **one** Redis round trip: ``limits``' own Lua
scripts (acquire, then read the window) are written together with ``EVALSHA``,
instead of ``hit`` plus ``get_window_stats`` (two round trips). The counters
stay ``limits``' own keys, so ``limits``' strategies read the same numbers.
The round trip bypasses redis-py's pipeline and pool and its per-call timers
(see :meth:`RateLimiter._round_trip`): measured, that bookkeeping cost more
than the rest of the limiter.

Response fields, per draft-ietf-httpapi-ratelimit-headers-10 (Structured Field
lists of one item, the policy name as an sf-string)::

    RateLimit-Policy: "default";q=600;w=60
    RateLimit: "default";r=599;t=60

``q`` is the quota, ``w`` the window in seconds, ``r`` what remains, ``t`` the
seconds (rounded up) until the window next frees quota: on a 429 it equals
``Retry-After``. A per-route policy is named ``"{tier}:{METHOD} {route}"``.

Redis down (``settings.rate_limit.failure_policy``): ``open`` lets requests
through with only ``RateLimit-Policy``; ``closed`` answers 503
(:class:`~shared.errors.ServiceUnavailableError`, ``Retry-After``). Either way
each such request counts in ``finsync_ratelimit_storage_errors_total``, the
first failure logs one warning and the recovery one line, and for
``retry_interval`` seconds after a failure Redis is not tried again, so a dead
Redis costs no connect timeout per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import limits
import redis.asyncio as aioredis
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from shared.errors import RateLimitedError, ServiceUnavailableError
from shared.settings import TierConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from limits.aio.storage.redis.redispy import RedispyBridge
    from prometheus_client import CollectorRegistry
    from redis.asyncio.connection import Connection

    from shared.settings import Settings

__all__ = ("KEY_PREFIX", "RateDecision", "RateLimiter", "RatePolicy", "sf_string")

logger = logging.getLogger("finsync.ratelimit")

KEY_PREFIX = "finsync:ratelimit"
RESOLVED_CACHE_SIZE = 10_000
"""(caller, tier, route) -> (policy, Redis keys) entries kept; a full cache starts over."""
"""Prefix of every rate-limit key in Redis."""

POLICY_FIELD = b"ratelimit-policy"
_Call = tuple[Any, tuple[float | int, ...]]
"""One of ``limits``' Lua scripts (``.sha``, ``.script``) and its arguments after the keys."""
RATELIMIT_FIELD = b"ratelimit"


def sf_string(value: str) -> str:
    """``value`` as a Structured Field string (RFC 8941 §3.3.3): quoted, escaped, printable ASCII only."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if " " <= c <= "~" else "?" for c in escaped) + '"'


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """One quota: a name, a ``limits`` rate, and what it counts (the whole tier or one route)."""

    name: str
    """Policy name in the RateLimit fields: the tier, or ``"{tier}:{METHOD} {route}"``."""
    item: limits.RateLimitItem
    """The parsed rate, such as ``600/minute``."""
    scope: str
    """What the counter covers: ``*`` (every route of the tier) or ``"METHOD /route"``."""
    name_field: bytes
    """The name as an sf-string, ready for a field value."""
    policy_field: bytes
    """The whole ``RateLimit-Policy`` value, such as ``"default";q=600;w=60``."""

    @classmethod
    def build(cls, name: str, rate: str, scope: str) -> RatePolicy:
        """Parse ``rate`` (``limits`` notation) into a policy named ``name``."""
        item = limits.parse(rate)
        name_field = sf_string(name).encode()
        policy_field = b"%s;q=%d;w=%d" % (name_field, item.amount, item.get_expiry())
        return cls(name=name, item=item, scope=scope, name_field=name_field, policy_field=policy_field)

    @property
    def quota(self) -> int:
        """Requests allowed per window (``q``)."""
        return self.item.amount

    @property
    def window(self) -> int:
        """Window length in seconds (``w``)."""
        return self.item.get_expiry()


@dataclass(slots=True)
class RateDecision:
    """The outcome of counting one request."""

    allowed: bool
    """The request may proceed."""
    policy: str
    """Name of the policy that counted it."""
    limit: int
    """Quota of that policy (``q``)."""
    window: int
    """Its window in seconds (``w``)."""
    remaining: int | None
    """Quota left after this request (``r``); ``None`` when Redis could not be asked."""
    reset_after: int | None
    """Seconds until the window frees quota (``t``); ``None`` when Redis could not be asked."""
    headers: list[tuple[bytes, bytes]]
    """``RateLimit-Policy`` and ``RateLimit``, lower-case, ready for an ASGI ``http.response.start``."""
    degraded: bool = False
    """Redis was unreachable and the failure policy ``open`` let the request through."""

    def field_dict(self) -> dict[str, str]:
        """The same fields as a ``{name: value}`` dict, for a problem answer's headers."""
        names = {POLICY_FIELD: "RateLimit-Policy", RATELIMIT_FIELD: "RateLimit"}
        return {names[name]: value.decode("ascii") for name, value in self.headers}


@dataclass(slots=True)
class _Caller:
    """What is known of one caller on one route: its policy, its Redis keys and, once sent, its commands."""

    policy: RatePolicy
    keys: Sequence[str]
    calls: list[_Call]
    """The scripts and their arguments, for a strategy whose arguments never change (sliding window)."""
    packed: list[bytes] | None = None
    """``calls`` packed for the wire, after the first request."""


@dataclass(frozen=True, slots=True)
class _Tier:
    default: RatePolicy
    routes: dict[str, RatePolicy]


class RateLimiter:
    """Counts requests per caller in Redis, shared by every replica of a service.

    Create it once per app (at start-up, in the lifespan) and close it with
    :meth:`aclose`. Building it opens no connection.
    """

    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        registry: CollectorRegistry | None = None,
        *,
        service: str,
        timeout: float = 0.25,
        retry_interval: float = 1.0,
    ) -> None:
        """Parse every tier, and prepare the storage and the metric.

        Args:
            settings: The tiers (``settings.tiers``) and ``settings.rate_limit``.
            redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL of the shared Redis.
            registry: Where ``finsync_ratelimit_storage_errors_total`` is registered; ``None``: not recorded.
            service: This service's name; counters are per service, shared by its replicas.
            timeout: Seconds to connect to Redis, and to wait for an answer, before the failure policy applies.
            retry_interval: Seconds after a Redis failure during which Redis is not tried again.

        Raises:
            ValueError: A tier's rate cannot be parsed.
        """
        self.settings = settings.rate_limit
        self.service = service
        self.retry_interval = retry_interval
        self.timeout = timeout
        self._tiers = {name: _build_tier(name, tier) for name, tier in settings.tiers.items()}
        self._fallback = self._tiers.get("default") or _build_tier("default", TierConfig())
        self._unknown_tiers: set[str] = set()
        self._pool = aioredis.ConnectionPool.from_url(
            redis_url,
            socket_connect_timeout=timeout,
            socket_timeout=None,  # the whole round trip is bounded instead: see _round_trip
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis(connection_pool=self._pool)
        self.storage = RedisStorage(
            _storage_uri(redis_url),
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            connection_pool=self._pool,  # type: ignore[arg-type]  # limits types options as scalars
        )
        """``limits``' storage over the same pool: the key layout and Lua scripts."""
        self._bridge = cast("RedispyBridge", self.storage.bridge)
        self.moving_window = self.settings.strategy == "moving-window"
        self.strategy: MovingWindowRateLimiter | SlidingWindowCounterRateLimiter = (
            MovingWindowRateLimiter(self.storage)
            if self.moving_window
            else SlidingWindowCounterRateLimiter(self.storage)
        )
        """``limits``' strategy on the same counters, for reading (``get_window_stats``) and ``clear``."""
        self.storage_errors = (
            Counter(
                "finsync_ratelimit_storage_errors",
                "Requests whose rate limit could not be checked because Redis was unreachable.",
                ("service", "failure_policy"),
                registry=registry,
            ).labels(service, self.settings.failure_policy)
            if registry is not None
            else None
        )
        self._resolved: dict[tuple[str, str, str, str], _Caller] = {}
        self._packer = self._connect()
        """Never connected: packs commands with the pool's encoding."""
        self._idle: list[Connection] = []
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        """Requests in a Redis round trip, and when it must have ended."""
        self._expired: set[asyncio.Task[Any]] = set()
        """Requests :meth:`_watch` cancelled for being late."""
        self._watchdog: asyncio.Task[None] | None = None
        """Connections between requests; one in error is dropped, so concurrency bounds their number."""
        self._down_since: float | None = None
        self._down_until = 0.0
        self._affected = 0

    def policy_for(self, tier: str, method: str, route: str) -> RatePolicy:
        """The policy that counts ``method route`` for callers of ``tier``."""
        resolved = self._tiers.get(tier)
        if resolved is None:
            if tier not in self._unknown_tiers:
                self._unknown_tiers.add(tier)
                logger.warning("unknown rate-limit tier %r; using 'default'", tier)
            resolved = self._fallback
        if resolved.routes:
            return resolved.routes.get(f"{method} {route}", resolved.default)
        return resolved.default

    def key_for(self, policy: RatePolicy, key: str) -> str:
        """``limits``' key of the counter of ``key`` under ``policy`` (without the storage prefix)."""
        return policy.item.key_for(self.service, key, policy.scope)

    async def check(self, *, key: str, tier: str, method: str, route: str) -> RateDecision:
        """Count one request of ``key`` on ``method route``.

        Args:
            key: Who is counted: ``client:{client_id}``, or ``ip:{address}`` for anonymous callers.
            tier: The caller's tier name (``clients.<id>.tier``, or ``rate_limit.anonymous_tier``).
            method: HTTP method.
            route: The route's path template, such as ``/v1/sources/{source_id}``.

        Returns:
            The decision, with the RateLimit fields to add to the response.

        Raises:
            RateLimitedError: Over the limit; its ``headers`` carry the RateLimit fields and ``Retry-After``.
            ServiceUnavailableError: Redis is unreachable and the failure policy is ``closed``.
        """
        caller = self._resolved.get((key, tier, method, route))
        if caller is None:
            caller = self._resolve(key, tier, method, route)
        policy = caller.policy
        if not self.settings.enabled:
            return RateDecision(True, policy.name, policy.quota, policy.window, None, None, [])
        if self._down_since is not None and time.monotonic() < self._down_until:
            return self._unavailable(policy)
        calls, packed, now = self._commands(caller)
        try:
            acquired, window = await self._run(caller.keys, calls, packed)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return self._unavailable(policy)
        if self._down_since is not None:
            self._recovered()
        if self.moving_window:
            remaining, reset_in = _moving_window_stats(window, policy.item, now)
        else:
            remaining, reset_in = _sliding_window_stats(window, policy.item)
        allowed = acquired == 1
        if not allowed:
            remaining = 0
        # Whole seconds, rounded up; to the millisecond first, as Lua keeps timestamps to 14 digits.
        reset_after = (
            min(policy.window, max(0, math.ceil(round(reset_in, 3)))) if remaining < policy.quota else 0
        )
        if not allowed:
            reset_after = max(1, reset_after)  # t and Retry-After agree, and never say "now" on a 429
        headers = [
            (POLICY_FIELD, policy.policy_field),
            (RATELIMIT_FIELD, b"%s;r=%d;t=%d" % (policy.name_field, remaining, reset_after)),
        ]
        decision = RateDecision(
            allowed, policy.name, policy.quota, policy.window, remaining, reset_after, headers
        )
        if not allowed:
            raise RateLimitedError(
                f"over the rate limit of {policy.quota} requests per {policy.window} s ({policy.name}); "
                f"retry in {reset_after} s",
                retry_after=reset_after,
                headers=decision.field_dict(),
            )
        return decision

    async def aclose(self) -> None:
        """Close every connection to Redis."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        while self._idle:
            await self._idle.pop().disconnect()
        await self._redis.aclose()
        await self._pool.aclose()

    def _resolve(self, key: str, tier: str, method: str, route: str) -> _Caller:
        """The policy and the Redis keys of one caller on one route, remembered for the next call."""
        policy = self.policy_for(tier, method, route)
        counter = self.key_for(policy, key)
        bridge = self._bridge
        item = policy.item
        if self.moving_window:
            caller = _Caller(policy, (bridge.prefixed_key(counter),), [])
        else:
            current = bridge.prefixed_key(f"{{{counter}}}")
            keys = (f"{current}/-1", current)  # limits' layout: previous window, current window
            calls: list[_Call] = [
                (bridge.lua_acquire_sliding_window, (item.amount, item.get_expiry(), 1)),
                (bridge.lua_sliding_window, (item.get_expiry(),)),
            ]
            caller = _Caller(policy, keys, calls)
        if len(self._resolved) >= RESOLVED_CACHE_SIZE:
            self._resolved.clear()
        self._resolved[(key, tier, method, route)] = caller
        return caller

    def _commands(self, caller: _Caller) -> tuple[list[_Call], list[bytes], float]:
        """The scripts to run for ``caller``, packed, and the time they are computed for.

        The sliding window's arguments never change, so its commands are packed once
        per caller; the moving window's carry the current time.
        """
        if not self.moving_window:
            if caller.packed is None:
                caller.packed = self._pack(caller.keys, caller.calls)
            return caller.calls, caller.packed, 0.0
        item = caller.policy.item
        now = time.time()
        expiry = item.get_expiry()
        bridge = self._bridge
        calls: list[_Call] = [
            (bridge.lua_acquire_moving_window, (now, item.amount, expiry, 1)),
            (bridge.lua_moving_window, (now - expiry, item.amount)),
        ]
        return calls, self._pack(caller.keys, calls), now

    async def _run(self, keys: Sequence[str], calls: list[_Call], packed: list[bytes]) -> list[Any]:
        """Run ``calls`` (``packed``) in one round trip; load scripts Redis lost (restart, flush) and go on."""
        answers = await self._round_trip(packed, len(calls))
        done = _completed(answers)
        if done == len(calls):
            return answers
        # The first missing script did not run, nor did anything after it: load and resend those.
        pending = calls[done:]
        async with asyncio.timeout(self.timeout):
            for script, _args in pending:
                await self._redis.script_load(script.script)
        rest = await self._round_trip(self._pack(keys, pending), len(pending))
        if _completed(rest) < len(pending):
            raise NoScriptError("rate-limit scripts could not be loaded")
        return answers[:done] + rest

    async def _round_trip(self, packed: list[bytes], replies: int) -> list[Any]:
        """Write ``packed`` on an idle connection and read ``replies`` replies (error replies as values).

        This skips redis-py's pipeline and pool bookkeeping, and its socket timeout,
        which wraps every write in a task (``asyncio.wait_for``) and every read in a
        timer. A round trip is bounded instead by :meth:`_watch`, which cancels one
        that is past its deadline; it then ends in :class:`TimeoutError`, as under
        ``asyncio.timeout``, which costs 7 µs per request, a tenth of a whole
        request here (README, "Benchmarks"). A connection that fails is closed,
        never reused.
        """
        connection = self._idle.pop() if self._idle else self._connect()
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        task = asyncio.current_task()
        assert task is not None
        deadlines = self._deadlines
        deadlines[task] = time.monotonic() + self.timeout
        answers: list[Any] = []
        try:
            await connection.send_packed_command(packed, check_health=False)
            for _ in range(replies):
                try:
                    answers.append(await connection.read_response())
                except ResponseError as exc:
                    answers.append(exc)
        except BaseException as exc:
            await connection.disconnect()
            if isinstance(exc, asyncio.CancelledError) and task in self._expired:
                task.uncancel()
                raise TimeoutError(f"Redis did not answer within {self.timeout} s") from None
            raise
        finally:
            del deadlines[task]
            self._expired.discard(task)
        self._idle.append(connection)
        return answers

    async def _watch(self) -> None:
        """Cancel every round trip past its deadline; runs a few times per ``timeout``."""
        while True:
            await asyncio.sleep(self.timeout / 4)
            now = time.monotonic()
            for task, deadline in self._deadlines.items():
                if deadline < now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    def _pack(self, keys: Sequence[str], calls: Sequence[_Call]) -> list[bytes]:
        """``EVALSHA`` of each call on ``keys``, packed for the wire (RESP)."""
        return self._packer.pack_commands(
            ("EVALSHA", script.sha, len(keys), *keys, *args) for script, args in calls
        )

    def _connect(self) -> Connection:
        """A new (not yet connected) connection with the pool's settings; it connects on first send."""
        return cast("Connection", self._pool.make_connection())  # type: ignore[no-untyped-call]

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + self.retry_interval
        if self._down_since is None:
            self._down_since = now
            self._affected = 0
            logger.warning(
                "rate-limit storage unreachable (%s: %s); failing %s until it answers",
                type(exc).__name__,
                exc,
                self.settings.failure_policy,
            )

    def _recovered(self) -> None:
        assert self._down_since is not None
        logger.warning(
            "rate-limit storage reachable again after %.1f s; %d requests were %s meanwhile",
            time.monotonic() - self._down_since,
            self._affected,
            "let through unchecked" if self.settings.failure_policy == "open" else "refused",
        )
        self._down_since = None

    def _unavailable(self, policy: RatePolicy) -> RateDecision:
        self._affected += 1
        if self.storage_errors is not None:
            self.storage_errors.inc()
        if self.settings.failure_policy == "closed":
            raise ServiceUnavailableError(
                "rate limiting is unavailable, so requests are not admitted; retry shortly",
                retry_after=max(1, math.ceil(self.retry_interval)),
            )
        return RateDecision(
            True,
            policy.name,
            policy.quota,
            policy.window,
            None,
            None,
            [(POLICY_FIELD, policy.policy_field)],
            degraded=True,
        )


def _completed(answers: list[Any]) -> int:
    """How many answers, from the first, ran; raise an error reply other than a missing script."""
    for done, answer in enumerate(answers):
        if isinstance(answer, NoScriptError):
            return done
        if isinstance(answer, Exception):
            raise answer
    return len(answers)


def _build_tier(name: str, tier: TierConfig) -> _Tier:
    return _Tier(
        default=RatePolicy.build(name, tier.limit, "*"),
        routes={
            route: RatePolicy.build(f"{name}:{route}", rate, route) for route, rate in tier.routes.items()
        },
    )


def _storage_uri(redis_url: str) -> str:
    """``limits``' URI for a redis-py URL: ``unix://`` becomes ``async+redis+unix://``."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


def _moving_window_stats(window: Any, item: limits.RateLimitItem, now: float) -> tuple[int, float]:
    """As ``limits``' ``MovingWindowRateLimiter.get_window_stats``: (remaining, seconds until reset)."""
    oldest, count = (float(window[0]), int(window[1])) if window else (now, 0)
    return max(0, item.amount - count), oldest + item.get_expiry() - now


def _sliding_window_stats(window: Any, item: limits.RateLimitItem) -> tuple[int, float]:
    """As ``limits``' ``SlidingWindowCounterRateLimiter.get_window_stats``: (remaining, seconds until reset).

    The reset is when the weighted count next drops by one: the previous window's
    weight crossing a whole request, or the current window rolling over. (``limits``
    computes the latter as ``current_ttl % expiry``, which is 0 on a fresh window,
    whose TTL is exactly twice the expiry; ``current_ttl - expiry`` is the same
    without that wrap.)
    """
    expiry = item.get_expiry()
    previous_count = int(window[0] or 0) if window else 0
    previous_ttl = max(0.0, float(window[1] or 0)) / 1000 if window else 0.0
    current_count = int(window[2] or 0) if window else 0
    current_ttl = max(0.0, float(window[3] or 0)) / 1000 if window else 0.0
    weighted = previous_count * previous_ttl / expiry + current_count
    remaining = max(0, item.amount - math.floor(weighted))
    if not (previous_count or current_count):
        return remaining, 0.0
    previous_reset = previous_ttl % (expiry / previous_count) if previous_count else math.inf
    current_reset = (
        (current_ttl - expiry if current_ttl > expiry else current_ttl) if current_count else math.inf
    )
    return remaining, min(previous_reset, current_reset)
