"""The rate limiter against a real Redis: counts, tiers, fields, replicas, Redis down, round trips."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import redis.asyncio as aioredis
from litestar import get, post
from prometheus_client import CollectorRegistry
from redis.asyncio.connection import AbstractConnection

from shared.errors import RateLimitedError, ServiceUnavailableError
from shared.ratelimit import RateLimiter, sf_string
from shared.redis import EmbeddedRedis
from shared.service import create_service
from shared.settings import Settings
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from litestar import Litestar

STRATEGIES = ["moving-window", "sliding-window-counter"]
DEAD_REDIS = "unix:///nonexistent/finsync-test/redis.sock"
METRIC = "finsync_ratelimit_storage_errors_total"


def settings_for(redis_url: str, **overrides: Any) -> Settings:
    raw: dict[str, Any] = {"redis_url": redis_url, "auth": {"enabled": False}}
    raw.update(overrides)
    return msgspec.convert(raw, Settings)


@asynccontextmanager
async def limiter(
    redis_url: str,
    *,
    tiers: dict[str, Any] | None = None,
    strategy: str = "sliding-window-counter",
    failure_policy: str = "open",
    registry: CollectorRegistry | None = None,
    service: str | None = None,
    url: str | None = None,
    retry_interval: float = 1.0,
) -> AsyncIterator[RateLimiter]:
    settings = settings_for(
        redis_url,
        tiers=tiers or {"default": {"limit": "3/minute"}},
        rate_limit={"strategy": strategy, "failure_policy": failure_policy},
    )
    rl = RateLimiter(
        settings,
        url or redis_url,
        registry,
        service=service or f"test-{uuid.uuid4().hex[:8]}",
        retry_interval=retry_interval,
    )
    try:
        yield rl
    finally:
        await rl.aclose()


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_limit_is_enforced_with_the_right_remaining_counts(redis_url: str, strategy: str) -> None:
    async with limiter(redis_url, strategy=strategy) as rl:
        remaining = []
        for _ in range(3):
            decision = await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
            assert decision.allowed
            remaining.append(decision.remaining)
        assert remaining == [2, 1, 0]
        with pytest.raises(RateLimitedError) as refused:
            await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
        assert 1 <= refused.value.retry_after <= 60
        # Another caller has its own counter.
        other = await rl.check(key="client:b", tier="default", method="GET", route="/v1/things")
        assert other.remaining == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_fields_have_the_draft_syntax(redis_url: str, strategy: str) -> None:
    async with limiter(redis_url, strategy=strategy) as rl:
        first = await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
        assert first.headers == [
            (b"ratelimit-policy", b'"default";q=3;w=60'),
            (b"ratelimit", b'"default";r=2;t=60'),
        ]
        assert (first.policy, first.limit, first.window, first.remaining, first.reset_after) == (
            "default",
            3,
            60,
            2,
            60,
        )
        await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
        await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
        with pytest.raises(RateLimitedError) as refused:
            await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
        headers = refused.value.headers
        assert headers["RateLimit-Policy"] == '"default";q=3;w=60'
        assert re.fullmatch(r'"default";r=0;t=(\d+)', headers["RateLimit"])
        assert headers["RateLimit"] == f'"default";r=0;t={refused.value.retry_after}'
        assert headers["Retry-After"] == str(refused.value.retry_after)


def test_policy_names_are_escaped_structured_field_strings() -> None:
    assert sf_string("default") == '"default"'
    assert sf_string('a"b\\c') == '"a\\"b\\\\c"'
    assert sf_string("caf\u00e9") == '"caf?"'


async def test_tiers_are_per_client(redis_url: str) -> None:
    tiers = {"default": {"limit": "2/minute"}, "gold": {"limit": "5/minute"}}
    async with limiter(redis_url, tiers=tiers) as rl:
        gold = [
            (await rl.check(key="client:g", tier="gold", method="GET", route="/v1/x")).remaining
            for _ in range(5)
        ]
        assert gold == [4, 3, 2, 1, 0]
        with pytest.raises(RateLimitedError):
            await rl.check(key="client:g", tier="gold", method="GET", route="/v1/x")
        plain = await rl.check(key="client:p", tier="default", method="GET", route="/v1/x")
        assert plain.headers[0] == (b"ratelimit-policy", b'"default";q=2;w=60')
        assert plain.remaining == 1


async def test_a_route_rate_replaces_the_tier_limit_with_its_own_counter(redis_url: str) -> None:
    tiers = {"default": {"limit": "10/minute", "routes": {"POST /v1/things": "1/minute"}}}
    async with limiter(redis_url, tiers=tiers) as rl:
        first = await rl.check(key="client:a", tier="default", method="POST", route="/v1/things")
        assert first.headers == [
            (b"ratelimit-policy", b'"default:POST /v1/things";q=1;w=60'),
            (b"ratelimit", b'"default:POST /v1/things";r=0;t=60'),
        ]
        with pytest.raises(RateLimitedError) as refused:
            await rl.check(key="client:a", tier="default", method="POST", route="/v1/things")
        assert refused.value.headers["RateLimit-Policy"] == '"default:POST /v1/things";q=1;w=60'
        # The rest of the tier's routes share the tier counter, untouched by the route's.
        assert (
            await rl.check(key="client:a", tier="default", method="GET", route="/v1/things")
        ).remaining == 9
        assert (
            await rl.check(key="client:a", tier="default", method="GET", route="/v1/other")
        ).remaining == 8


async def test_an_unknown_tier_uses_default_and_is_logged_once(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="finsync.ratelimit")
    async with limiter(redis_url) as rl:
        for _ in range(2):
            decision = await rl.check(key="client:a", tier="platinum", method="GET", route="/v1/x")
            assert decision.policy == "default"
    assert [r.getMessage() for r in caplog.records] == ["unknown rate-limit tier 'platinum'; using 'default'"]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_two_replicas_share_one_limit(redis_url: str, strategy: str) -> None:
    service = f"replicated-{uuid.uuid4().hex[:8]}"
    async with (
        limiter(redis_url, strategy=strategy, service=service) as one,
        limiter(redis_url, strategy=strategy, service=service) as two,
    ):
        outcomes = []
        for replica in (one, two, one, two, one):
            try:
                decision = await replica.check(key="client:a", tier="default", method="GET", route="/v1/x")
                outcomes.append(decision.remaining)
            except RateLimitedError:
                outcomes.append("429")
        assert outcomes == [2, 1, 0, "429", "429"]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_counters_are_limits_own(redis_url: str, strategy: str) -> None:
    """One pipelined round trip runs limits' own scripts on limits' own keys: limits reads the same counts."""
    async with limiter(redis_url, strategy=strategy) as rl:
        await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
        decision = await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
        policy = rl.policy_for("default", "GET", "/v1/x")
        stats = await rl.strategy.get_window_stats(policy.item, rl.service, "client:a", policy.scope)
        assert stats.remaining == decision.remaining == 1
        await rl.strategy.clear(policy.item, rl.service, "client:a", policy.scope)
        assert (await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")).remaining == 2


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every write of commands to a Redis socket: one per round trip, pipelined or not."""
    sent = [0]
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_check_costs_one_redis_round_trip(
    redis_url: str, strategy: str, round_trips: list[int]
) -> None:
    async with limiter(redis_url, strategy=strategy, tiers={"default": {"limit": "100/minute"}}) as rl:
        await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")  # connect, load scripts
        before = round_trips[0]
        for _ in range(10):
            await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
        assert round_trips[0] - before == 10


async def test_scripts_redis_lost_are_loaded_again(redis_url: str) -> None:
    async with limiter(redis_url) as rl:
        await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
        client = aioredis.Redis.from_url(redis_url)
        try:
            await client.script_flush()
        finally:
            await client.aclose()
        assert (await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")).remaining == 1
        assert (await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")).remaining == 0


async def test_redis_down_open_lets_requests_through_counts_and_logs_once(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="finsync.ratelimit")
    registry = CollectorRegistry()
    async with limiter(
        redis_url, url=DEAD_REDIS, registry=registry, service="down-open", retry_interval=0
    ) as rl:
        for _ in range(20):
            decision = await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
            assert decision.allowed
            assert decision.degraded
            assert decision.remaining is None
            assert decision.headers == [(b"ratelimit-policy", b'"default";q=3;w=60')]
    assert registry.get_sample_value(METRIC, {"service": "down-open", "failure_policy": "open"}) == 20
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages
    assert messages[0].startswith("rate-limit storage unreachable (ConnectionError")
    assert messages[0].endswith("failing open until it answers")


async def test_redis_down_closed_refuses_with_503(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="finsync.ratelimit")
    registry = CollectorRegistry()
    async with limiter(
        redis_url, url=DEAD_REDIS, registry=registry, service="down-closed", failure_policy="closed"
    ) as rl:
        for _ in range(5):
            with pytest.raises(ServiceUnavailableError) as refused:
                await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
            assert refused.value.headers == {"Retry-After": "1"}
    assert registry.get_sample_value(METRIC, {"service": "down-closed", "failure_policy": "closed"}) == 5
    assert len(caplog.records) == 1


async def test_a_redis_that_never_answers_costs_one_timeout_then_fails_open(redis_url: str) -> None:
    """A Redis that accepts connections but never replies (hung, or a black-holing proxy)."""
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        settings = settings_for(redis_url, tiers={"default": {"limit": "3/minute"}})
        rl = RateLimiter(settings, f"redis://127.0.0.1:{port}", service="hung", timeout=0.2, retry_interval=5)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            decision = await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
            waited = loop.time() - started
            assert decision.degraded
            assert 0.2 <= waited < 0.6, waited
            # Within the retry interval the hung Redis is not tried again: no second wait.
            started = loop.time()
            assert (await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")).degraded
            assert loop.time() - started < 0.05
        finally:
            await rl.aclose()
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_recovery_is_logged_once_and_redis_rests_for_the_retry_interval(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="finsync.ratelimit")
    later = EmbeddedRedis(tmp_path)
    async with limiter(redis_url, url=later.url, retry_interval=0.5) as rl:
        assert (await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")).degraded
        assert later.start()
        try:
            # Within the retry interval Redis is not asked, though it is back.
            assert (await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")).degraded
            await asyncio.sleep(0.6)
            for expected in (2, 1):
                decision = await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
                assert not decision.degraded
                assert decision.remaining == expected
        finally:
            await rl.aclose()
            later.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[1].startswith("rate-limit storage reachable again after")
    assert messages[1].endswith("2 requests were let through unchecked meanwhile")


async def test_disabled_rate_limiting_asks_no_redis(redis_url: str, round_trips: list[int]) -> None:
    settings = settings_for(redis_url, rate_limit={"enabled": False})
    rl = RateLimiter(settings, DEAD_REDIS, service="off")
    try:
        decision = await rl.check(key="client:a", tier="default", method="GET", route="/v1/x")
    finally:
        await rl.aclose()
    assert decision.allowed
    assert decision.headers == []
    assert round_trips[0] == 0


# --- Through HTTP: the kernel's auth middleware limits anonymous callers by IP ------------------------


@get("/v1/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"pong": "yes"}


@post("/v1/pings", sync_to_thread=False, status_code=201)
def post_ping() -> dict[str, str]:
    return {"pong": "posted"}


def limited_app(settings: Settings, service: str = "limited") -> Litestar:
    """The kernel limits anonymous callers by IP, on the app's own Redis (``settings.redis_url``)."""
    return create_service(
        name=service,
        title="limited",
        description="test",
        settings=settings,
        route_handlers=[ping, post_ping],
    )


@pytest.fixture
def http_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        raw: dict[str, Any] = {
            "auth": {"enabled": False},
            "tiers": {"anonymous": {"limit": "2/minute", "routes": {"POST /v1/pings": "1/minute"}}},
        }
        raw.update(overrides)
        return make_settings(**raw)

    return build


async def test_answers_carry_the_fields_and_a_429_is_a_problem_with_retry_after(
    http_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = http_settings()
    async with in_process(limited_app(settings, service=f"limited-{uuid.uuid4().hex[:8]}")) as client:
        ok = await client.get("/v1/ping")
        assert ok.status_code == 200
        assert ok.headers["ratelimit-policy"] == '"anonymous";q=2;w=60'
        assert ok.headers["ratelimit"] == '"anonymous";r=1;t=60'
        assert (await client.get("/v1/ping")).headers["ratelimit"] == '"anonymous";r=0;t=60'
        refused = await client.get("/v1/ping")
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        body = refused.json()
        assert body["type"] == "/problems/rate-limited"
        assert body["status"] == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert refused.headers["ratelimit-policy"] == '"anonymous";q=2;w=60'
        assert refused.headers["ratelimit"] == f'"anonymous";r=0;t={retry_after}'
        assert body["trace_id"] == refused.headers["x-trace-id"]
        # The route's own policy, and its own counter.
        posted = await client.post("/v1/pings")
        assert posted.status_code == 201
        assert posted.headers["ratelimit-policy"] == '"anonymous:POST /v1/pings";q=1;w=60'
        assert (await client.post("/v1/pings")).status_code == 429


async def test_redis_down_over_http(http_settings: Callable[..., Settings], redis_url: str) -> None:
    open_app = limited_app(http_settings(redis_url=DEAD_REDIS))
    async with in_process(open_app) as client:
        ok = await client.get("/v1/ping")
        assert ok.status_code == 200
        assert ok.headers["ratelimit-policy"] == '"anonymous";q=2;w=60'
        assert "ratelimit" not in ok.headers
        metrics = (await client.get("/metrics")).text
        assert (
            'finsync_ratelimit_storage_errors_total{failure_policy="open",service="limited"} 1.0' in metrics
        )
    closed_app = limited_app(http_settings(redis_url=DEAD_REDIS, rate_limit={"failure_policy": "closed"}))
    async with in_process(closed_app) as client:
        refused = await client.get("/v1/ping")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        body = refused.json()
        assert body["type"] == "/problems/service-unavailable"
        assert "rate limiting is unavailable" in body["detail"]
        assert "nonexistent" not in refused.text
