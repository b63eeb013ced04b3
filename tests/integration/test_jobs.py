"""The process layer's jobs against a real Redis: queue, workers, retries, dead letters, claims, locks, cron.

Every test works under its own key prefix (queue) or names (locks, ticks), so
tests never see each other's keys in the session Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from process_apis.jobs import (
    Job,
    JobQueue,
    Scheduler,
    SliceBusyError,
    Worker,
    acquire_slices,
    backoff_delay,
    next_fire,
    parse_cron,
    release_slices_of,
    slice_key,
    slice_lock,
    tick_lock,
)
from shared.errors import ConflictError
from shared.redis import open_redis

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    import redis.asyncio as aioredis

    from process_apis.jobs import Handler

pytestmark = pytest.mark.slow


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``condition`` (sync or async) holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if await result if isawaitable(result) else result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class DeadLetters:
    """A stand-in for the ledger's dead letters; ``failing`` makes storing raise."""

    def __init__(self) -> None:
        self.items: list[tuple[Job, str]] = []
        self.calls = 0
        self.failing = False

    async def __call__(self, job: Job, reason: str) -> None:
        self.calls += 1
        if self.failing:
            raise RuntimeError("ledger unavailable")
        self.items.append((job, reason))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def queue(redis: aioredis.Redis) -> AsyncIterator[JobQueue]:
    prefix = f"test:jobs:{uuid.uuid4().hex[:12]}"
    yield JobQueue(redis, prefix=prefix)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def dead() -> DeadLetters:
    return DeadLetters()


def worker(
    queue: JobQueue, handlers: Mapping[str, Handler], dead: DeadLetters, consumer: str = "w1", **options: Any
) -> Worker:
    """A worker with test timings: short backoff, block and poll; no claims unless asked."""
    settings: dict[str, Any] = {
        "concurrency": 4,
        "attempts": 3,
        "backoff": 0.05,
        "backoff_max": 0.2,
        "claim_after": 10.0,
        "block": 0.1,
        "poll_interval": 0.05,
        "stop_timeout": 2.0,
    }
    settings.update(options)
    return Worker(queue, handlers, consumer=consumer, dead_letter=dead, **settings)


def recorder(ran: list[Job], delay: float = 0.0) -> Handler:
    async def handle(job: Job) -> None:
        if delay:
            await asyncio.sleep(delay)
        ran.append(job)

    return handle


async def consumers(queue: JobQueue) -> set[str]:
    info = await queue.redis.xinfo_consumers(queue.stream, queue.group)
    return {entry["name"].decode() for entry in info}


# --- queue and worker --------------------------------------------------------------------------------


async def test_job_runs_once_and_is_acked(queue: JobQueue, dead: DeadLetters) -> None:
    ran: list[Job] = []
    async with worker(queue, {"echo": recorder(ran)}, dead) as w:
        job_id = await queue.enqueue("echo", {"n": 1})
        await until(lambda: len(ran) == 1)
        await until(lambda: w.stats.completed == 1)
        assert await w.pending() == 0
        assert await queue.depth() == 0  # acknowledged entries are deleted too
        await asyncio.sleep(0.3)
    assert [(job.id, job.kind, job.payload, job.attempt) for job in ran] == [(job_id, "echo", {"n": 1}, 0)]
    assert ran[0].enqueued_at == pytest.approx(time.time(), abs=5)
    assert dead.calls == 0
    assert "w1" not in await consumers(queue)  # a clean stop leaves the group


async def test_jobs_enqueued_before_any_worker_run(queue: JobQueue, dead: DeadLetters) -> None:
    ran: list[Job] = []
    await queue.enqueue("echo", {"n": 1})  # the stream exists, the group does not yet
    async with worker(queue, {"echo": recorder(ran)}, dead):
        await until(lambda: len(ran) == 1)


async def test_two_workers_share_200_jobs_each_run_exactly_once(queue: JobQueue, dead: DeadLetters) -> None:
    runs: list[tuple[str, int]] = []

    def handler(name: str) -> Handler:
        async def handle(job: Job) -> None:
            await asyncio.sleep(0.002)
            runs.append((name, job.payload["n"]))

        return handle

    a = worker(queue, {"count": handler("a")}, dead, consumer="a", concurrency=8)
    b = worker(queue, {"count": handler("b")}, dead, consumer="b", concurrency=8)
    async with a, b:
        for n in range(200):
            await queue.enqueue("count", {"n": n})
        await until(lambda: len(runs) >= 200, timeout=15)
        await until(lambda: a.stats.completed + b.stats.completed == 200)
        await asyncio.sleep(0.2)
    assert Counter(n for _, n in runs) == Counter(range(200))
    assert {name for name, _ in runs} == {"a", "b"}
    assert await queue.pending() == 0
    assert await queue.depth() == 0


async def test_failing_job_is_retried_with_backoff_then_dead_lettered(
    queue: JobQueue, dead: DeadLetters
) -> None:
    events: list[tuple[str, int, float]] = []

    async def fail(job: Job) -> None:
        events.append(("run", job.attempt, time.monotonic()))
        raise RuntimeError(f"boom {job.attempt}")

    async def store(job: Job, reason: str) -> None:
        events.append(("dead", job.attempt, time.monotonic()))
        await dead(job, reason)

    w = Worker(
        queue,
        {"flaky": fail},
        consumer="w1",
        concurrency=2,
        attempts=3,
        backoff=0.1,
        backoff_max=0.15,
        claim_after=10,
        dead_letter=store,
        block=0.1,
        poll_interval=0.05,
    )
    async with w:
        job_id = await queue.enqueue("flaky", {"x": 1})
        await until(lambda: w.stats.dead_lettered == 1)
        assert await w.pending() == 0
        assert await w.retry_backlog() == 0
    assert [(kind, attempt) for kind, attempt, _ in events] == [
        ("run", 0),
        ("run", 1),
        ("run", 2),
        ("dead", 2),
    ]
    # Each wait is at most its backoff bound (0.1, then 0.15) plus a promoter poll and some slack.
    times = [at for _, _, at in events]
    assert times[1] - times[0] < 0.1 + 0.4
    assert times[2] - times[1] < 0.15 + 0.4
    ((job, reason),) = dead.items
    assert (job.id, job.kind, job.payload, job.attempt) == (job_id, "flaky", {"x": 1}, 2)
    assert reason == "RuntimeError: boom 2"
    assert w.stats.retried == 2


def test_backoff_is_full_jitter_under_an_exponential_bound() -> None:
    for attempt, ceiling in [(0, 2.0), (1, 4.0), (3, 16.0), (8, 300.0), (200, 300.0)]:
        samples = [backoff_delay(attempt, 2.0, 300.0) for _ in range(500)]
        assert all(0.0 <= sample <= ceiling for sample in samples)
        # Full jitter: spread over the whole interval, not bunched at its top.
        assert min(samples) < ceiling * 0.1
        assert max(samples) > ceiling * 0.9


async def test_dead_letter_failure_leaves_the_entry_pending_until_claimed(
    queue: JobQueue, dead: DeadLetters
) -> None:
    ran: list[Job] = []

    async def fail(job: Job) -> None:
        ran.append(job)
        raise ValueError("bad")

    dead.failing = True
    async with worker(queue, {"bad": fail}, dead, consumer="a", attempts=1) as a:
        await queue.enqueue("bad", {})
        await until(lambda: a.stats.dead_letter_failures == 1)
        await until(lambda: a.running == 0)
        assert await a.pending() == 1
        assert a.stats.dead_lettered == 0
    assert await queue.pending() == 1
    assert "a" in await consumers(queue)  # not retired: that would drop its pending entry

    # Once the ledger is back, a live worker claims the entry and stores the dead letter.
    dead.failing = False
    async with worker(queue, {"bad": fail}, dead, consumer="b", attempts=1, claim_after=0.5) as b:
        await until(lambda: b.stats.dead_lettered == 1)
        assert await b.pending() == 0
    assert [job.attempt for job in ran] == [0, 0]  # a claim is not a failed attempt
    ((job, reason),) = dead.items
    assert (job.attempt, reason) == (0, "ValueError: bad")


async def test_retry_due_time_lives_in_redis_and_survives_a_worker_restart(
    queue: JobQueue, dead: DeadLetters, redis: aioredis.Redis
) -> None:
    async def fail(job: Job) -> None:
        raise RuntimeError("upstream timeout")

    # Worker A never promotes (its poll is longer than the test), so the retry must wait in Redis.
    a = worker(queue, {"sync": fail}, dead, consumer="a", backoff=0.3, backoff_max=0.3, poll_interval=30)
    before = time.time()
    async with a:
        job_id = await queue.enqueue("sync", {"slice": "acme:2024-06"})
        await until(lambda: a.stats.retried == 1)
    retries: Any = await redis.zrange(queue.retry_key, 0, -1, withscores=True)
    ((member, due),) = retries
    retry = msgspec.json.decode(member, type=Job)
    assert (retry.id, retry.attempt, retry.payload) == (job_id, 1, {"slice": "acme:2024-06"})
    assert before <= due <= time.time() + 0.3
    assert await queue.pending() == 0  # the failed entry was acknowledged with the retry scheduled

    ran: list[Job] = []
    async with worker(queue, {"sync": recorder(ran)}, dead, consumer="b") as b:
        await until(lambda: b.stats.completed == 1)
        assert await b.retry_backlog() == 0
    assert [(job.id, job.attempt) for job in ran] == [(job_id, 1)]
    assert time.time() >= due


async def test_promoting_retries_from_many_replicas_neither_loses_nor_duplicates(queue: JobQueue) -> None:
    await queue.ensure_group()
    for n in range(300):
        await queue.redis.xadd(queue.stream, {"job": msgspec.json.encode(Job(str(n), "k", {}, 0, 0.0))})
        (delivery,) = await queue.read("c", 1, 0.1)
        await queue.retry(delivery.entry_id, delivery.job, 0.0)
    assert await queue.retry_backlog() == 300
    moved = await asyncio.gather(*(queue.promote(7) for _ in range(60)))
    assert sum(moved) == 300
    assert await queue.retry_backlog() == 0
    entries: Any = await queue.redis.xrange(queue.stream)
    ids = [msgspec.json.decode(fields[b"job"], type=Job).id for _, fields in entries]
    assert sorted(ids, key=int) == [str(n) for n in range(300)]


async def test_a_dead_consumers_job_is_claimed_and_run_again(
    queue: JobQueue, dead: DeadLetters, redis: aioredis.Redis
) -> None:
    job_id = await queue.enqueue("echo", {"n": 7})
    await queue.ensure_group()
    # A consumer reads the job, then dies without acknowledging it.
    read = await redis.xreadgroup(queue.group, "dead", {queue.stream: ">"}, count=1)
    assert read
    read_at = time.monotonic()
    ran: list[Job] = []
    async with worker(queue, {"echo": recorder(ran)}, dead, claim_after=0.5) as w:
        await until(lambda: w.stats.completed == 1)
        claimed_at = time.monotonic()
        assert await w.pending() == 0
    assert claimed_at - read_at >= 0.5
    assert [(job.id, job.attempt) for job in ran] == [(job_id, 0)]
    assert w.stats.claimed == 1


async def test_a_long_job_is_not_claimed_while_its_worker_lives(queue: JobQueue, dead: DeadLetters) -> None:
    ran: list[Job] = []
    a = worker(queue, {"slow": recorder(ran, delay=1.6)}, dead, consumer="a", claim_after=0.5)
    b = worker(queue, {"slow": recorder(ran, delay=1.6)}, dead, consumer="b", claim_after=0.5)
    async with a, b:
        await queue.enqueue("slow", {})
        await until(lambda: a.stats.completed + b.stats.completed == 1)
        await asyncio.sleep(0.3)
    assert len(ran) == 1
    assert a.stats.claimed == b.stats.claimed == 0


async def test_an_entry_delivered_too_often_goes_to_the_dead_letters_unrun(
    queue: JobQueue, dead: DeadLetters, redis: aioredis.Redis
) -> None:
    job_id = await queue.enqueue("echo", {})
    await queue.ensure_group()
    read: Any = await redis.xreadgroup(queue.group, "crashed-1", {queue.stream: ">"}, count=1)
    ((_, ((entry_id, _),)),) = read
    await redis.xclaim(queue.stream, queue.group, "crashed-2", 0, [entry_id])  # its second delivery
    ran: list[Job] = []
    async with worker(queue, {"echo": recorder(ran)}, dead, claim_after=0.3, max_deliveries=2) as w:
        await until(lambda: w.stats.dead_lettered == 1)
    assert ran == []
    ((job, reason),) = dead.items
    assert job.id == job_id
    assert reason == "delivered 3 times without an acknowledgement"


async def test_the_same_job_id_is_enqueued_and_run_once(
    queue: JobQueue, dead: DeadLetters, redis: aioredis.Redis
) -> None:
    job_id = "actuals-to-plan:erp-us:acme:2024-06"
    assert await queue.enqueue("sync", {"n": 1}, job_id=job_id) == job_id
    assert await queue.enqueue("sync", {"n": 2}, job_id=job_id) is None
    ran: list[Job] = []
    async with worker(queue, {"sync": recorder(ran)}, dead) as w:
        await until(lambda: w.stats.completed == 1)
        assert await queue.enqueue("sync", {"n": 3}, job_id=job_id) is None  # done, still within the ttl
        await asyncio.sleep(0.3)
    assert [(job.id, job.payload) for job in ran] == [(job_id, {"n": 1})]
    assert 86000 < await redis.ttl(queue.dedupe_key(job_id)) <= 86400
    assert await queue.enqueue("sync", {}, job_id="short", dedupe_ttl=5) == "short"
    assert 0 < await redis.ttl(queue.dedupe_key("short")) <= 5


async def test_an_unknown_kind_goes_through_retries_to_the_dead_letters(
    queue: JobQueue, dead: DeadLetters
) -> None:
    async with worker(queue, {"echo": recorder([])}, dead, attempts=2) as w:
        job_id = await queue.enqueue("no-such-kind", {"n": 1})
        await until(lambda: w.stats.dead_lettered == 1)
    ((job, reason),) = dead.items
    assert (job.id, job.kind, job.attempt) == (job_id, "no-such-kind", 1)
    assert reason == "UnknownJobKindError: no handler for job kind 'no-such-kind'"
    assert w.stats.retried == 1


async def test_an_undecodable_entry_goes_to_the_dead_letters_at_once(
    queue: JobQueue, dead: DeadLetters, redis: aioredis.Redis
) -> None:
    await queue.ensure_group()
    await redis.xadd(queue.stream, {"job": b"{not json"})
    await redis.xadd(queue.stream, {"other": b"x"})
    async with worker(queue, {}, dead) as w:
        await until(lambda: w.stats.dead_lettered == 2)
        assert await w.pending() == 0
    reasons = sorted(reason.split(":")[0] for _, reason in dead.items)
    assert reasons == ["entry has no 'job' field", "undecodable entry"]
    assert {job.kind for job, _ in dead.items} == {"malformed"}
    assert w.stats.retried == 0


async def test_stop_waits_for_running_jobs(queue: JobQueue, dead: DeadLetters) -> None:
    ran: list[Job] = []
    w = worker(queue, {"echo": recorder(ran, delay=0.3)}, dead)
    await w.start()
    await queue.enqueue("echo", {})
    await until(lambda: w.running == 1)
    await w.stop()
    assert len(ran) == 1
    assert await queue.pending() == 0


async def test_stop_cancels_jobs_past_the_timeout_and_leaves_them_pending(
    queue: JobQueue, dead: DeadLetters
) -> None:
    w = worker(queue, {"stuck": recorder([], delay=30)}, dead, stop_timeout=0.2)
    await w.start()
    await queue.enqueue("stuck", {})
    await until(lambda: w.running == 1)
    started = time.monotonic()
    await w.stop()
    assert time.monotonic() - started < 1.5
    assert w.running == 0
    assert await queue.pending() == 1  # claimed by another worker later
    assert dead.calls == 0


# --- locks -------------------------------------------------------------------------------------------


async def test_overlapping_runs_second_gets_slice_busy_and_holds_nothing(redis: aioredis.Redis) -> None:
    flow = f"test-flow-{uuid.uuid4().hex[:8]}"

    def key(period: str) -> str:
        return slice_key(flow, "erp-us", "acme", period)

    first = await acquire_slices(
        redis, flow, [("erp-us", "acme", "2024-02"), ("erp-us", "acme", "2024-01")], 10
    )
    assert first.keys == (key("2024-01"), key("2024-02"))

    with pytest.raises(SliceBusyError) as busy:
        await acquire_slices(
            redis, flow, [("erp-us", "acme", p) for p in ("2024-03", "2024-02", "2024-01")], timeout=10
        )
    assert busy.value.keys == (key("2024-01"), key("2024-02"))
    assert isinstance(busy.value, ConflictError)
    assert not await redis.exists(key("2024-03"))

    # A run that took a free slice before meeting a busy one lets go of it.
    with pytest.raises(SliceBusyError) as busy:
        await acquire_slices(redis, flow, [("erp-us", "acme", "2023-12"), ("erp-us", "acme", "2024-02")], 10)
    assert busy.value.keys == (key("2024-02"),)
    assert not await redis.exists(key("2023-12"))

    # The first run still holds its slices, and can extend them.
    assert await redis.exists(key("2024-01"), key("2024-02")) == 2
    await first.extend(30, replace_ttl=True)
    assert await redis.pttl(key("2024-01")) > 10_000
    await first.release_all()
    assert await redis.exists(key("2024-01"), key("2024-02")) == 0

    async with await acquire_slices(
        redis, flow, [("erp-us", "acme", p) for p in ("2024-03", "2024-02", "2024-01")], timeout=10
    ) as second:
        assert await redis.exists(*second.keys) == 3
    assert await redis.exists(*second.keys) == 0


async def test_a_dead_owners_slices_are_freed_and_no_other_owners(redis: aioredis.Redis) -> None:
    flow = f"test-flow-{uuid.uuid4().hex[:8]}"
    dead = await acquire_slices(
        redis, flow, [("erp-us", "acme", "2024-01"), ("erp-us", "acme", "2024-02")], 60, owner="run-1"
    )
    live = await acquire_slices(redis, flow, [("erp-us", "acme", "2024-03")], 60, owner="run-2")
    slices = [("erp-us", "acme", p) for p in ("2024-01", "2024-02", "2024-03", "2024-04")]
    assert await release_slices_of(redis, flow, slices, owner="run-1") == 2
    assert await redis.exists(*dead.keys) == 0
    assert await redis.exists(*live.keys) == 1
    async with await acquire_slices(redis, flow, slices[:2], 60, owner="run-3"):
        assert await release_slices_of(redis, flow, slices, owner="run-1") == 0
        assert await redis.exists(*dead.keys) == 2
    await live.release_all()


async def test_slice_lock_is_redis_pys_lock_on_the_slice_key(redis: aioredis.Redis) -> None:
    flow = f"test-flow-{uuid.uuid4().hex[:8]}"
    lock = slice_lock(redis, flow, "erp-us", "acme", "2024-06", timeout=5)
    assert lock.name == f"finsync:process:lock:{flow}:erp-us:acme:2024-06"
    assert await lock.acquire()
    assert not await slice_lock(redis, flow, "erp-us", "acme", "2024-06", timeout=5).acquire()
    assert 0 < await redis.pttl(lock.name) <= 5000
    await lock.release()


async def test_a_tick_lock_is_held_until_it_expires(redis: aioredis.Redis) -> None:
    name = f"test-tick-{uuid.uuid4().hex[:8]}"
    assert await tick_lock(redis, name, ttl=0.3)
    assert not await tick_lock(redis, name, ttl=0.3)
    await asyncio.sleep(0.4)
    assert await tick_lock(redis, name, ttl=0.3)


# --- schedule ----------------------------------------------------------------------------------------


async def test_two_schedulers_ticking_the_same_fire_time_run_the_callback_once(redis_url: str) -> None:
    name = f"test-sync-{uuid.uuid4().hex[:8]}"
    calls: list[datetime] = []

    async def enqueue(at: datetime) -> None:
        calls.append(at)

    replicas = [open_redis(redis_url), open_redis(redis_url)]
    try:
        first, second = (Scheduler(client, [(name, "*/15 * * * *", enqueue)]) for client in replicas)
        at = datetime(2024, 6, 1, 12, 15, tzinfo=UTC)
        assert sorted(await asyncio.gather(first.tick(at), second.tick(at))) == [[], [name]]
        assert calls == [at]
        # Later in the same minute, on either replica: already run.
        assert await second.tick(at + timedelta(seconds=40)) == []
        assert await first.tick(at + timedelta(seconds=1)) == []
        # Not a fire time: nothing runs, nothing is locked.
        assert await first.tick(at + timedelta(minutes=1)) == []
        # The next fire time runs once again.
        assert sorted(
            await asyncio.gather(
                first.tick(at + timedelta(minutes=15)), second.tick(at + timedelta(minutes=15))
            )
        ) == [[], [name]]
        assert calls == [at, at + timedelta(minutes=15)]
        ttl = await replicas[0].ttl(f"finsync:process:lock:tick:{name}:2024-06-01T12:15Z")
        assert 3500 < ttl <= 3600
    finally:
        for client in replicas:
            await client.aclose()


async def test_running_schedulers_fire_at_the_fire_time_on_one_replica(redis: aioredis.Redis) -> None:
    name = f"test-sync-{uuid.uuid4().hex[:8]}"
    calls: list[datetime] = []

    async def enqueue(at: datetime) -> None:
        calls.append(at)

    # A fake clock 0.2 s before 12:15, running at real speed.
    base = datetime(2024, 6, 1, 12, 14, 59, 800_000, tzinfo=UTC).timestamp()
    started = time.monotonic()

    def clock() -> float:
        return base + time.monotonic() - started

    first = Scheduler(redis, [(name, "*/15 * * * *", enqueue)], clock=clock)
    second = Scheduler(redis, [(name, "*/15 * * * *", enqueue)], clock=clock)
    async with first, second:
        await until(lambda: len(calls) == 1, timeout=3)
        await asyncio.sleep(0.3)
    assert calls == [datetime(2024, 6, 1, 12, 15, tzinfo=UTC)]


async def test_a_scheduler_rejects_bad_entries_at_start_up(redis: aioredis.Redis) -> None:
    async def noop(at: datetime) -> None:
        return None

    with pytest.raises(ValueError, match="fields"):
        Scheduler(redis, [("a", "* * * *", noop)])
    with pytest.raises(ValueError, match="unique"):
        Scheduler(redis, [("a", "@daily", noop), ("a", "@hourly", noop)])


# --- cron --------------------------------------------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", utc(2024, 1, 1, 10, 7), utc(2024, 1, 1, 10, 15)),
        ("*/15 * * * *", utc(2024, 1, 1, 10, 15), utc(2024, 1, 1, 10, 30)),  # strictly after
        ("*/15 * * * *", utc(2024, 1, 1, 10, 59, 59), utc(2024, 1, 1, 11, 0)),
        ("* * * * *", utc(2024, 12, 31, 23, 59, 30), utc(2025, 1, 1, 0, 0)),
        ("0,30 * * * *", utc(2024, 1, 1, 10, 31), utc(2024, 1, 1, 11, 0)),
        ("10-12 * * * *", utc(2024, 1, 1, 10, 11), utc(2024, 1, 1, 10, 12)),
        ("10-12 * * * *", utc(2024, 1, 1, 10, 12), utc(2024, 1, 1, 11, 10)),
        ("5/20 * * * *", utc(2024, 1, 1, 10, 6), utc(2024, 1, 1, 10, 25)),
        ("0 9-17 * * *", utc(2024, 1, 1, 17, 0), utc(2024, 1, 2, 9, 0)),
        ("0 9-17/4 * * *", utc(2024, 1, 1, 9, 0), utc(2024, 1, 1, 13, 0)),
        ("0 6 1,15 * *", utc(2024, 1, 2), utc(2024, 1, 15, 6, 0)),
        ("0 0 1 jan,jul *", utc(2024, 1, 1), utc(2024, 7, 1)),
        ("0 0 1 */3 *", utc(2024, 2, 15), utc(2024, 4, 1)),
        ("0 0 31 * *", utc(2024, 1, 31), utc(2024, 3, 31)),  # February has no 31st
        ("0 0 29 2 *", utc(2024, 3, 1), utc(2028, 2, 29)),
        ("59 23 31 12 *", utc(2024, 12, 31, 23, 59), utc(2025, 12, 31, 23, 59)),
        ("5 4 * * sun", utc(2024, 1, 1), utc(2024, 1, 7, 4, 5)),  # 2024-01-01 is a Monday
        ("0 0 * * 7", utc(2024, 1, 1), utc(2024, 1, 7)),  # 7 is Sunday too
        ("0 0 * * 1-5", utc(2024, 1, 5, 12), utc(2024, 1, 8)),  # Friday noon to Monday
        ("0 0 * * MON-FRI", utc(2024, 1, 6), utc(2024, 1, 8)),
        ("0 0 13 * 5", utc(2024, 9, 1), utc(2024, 9, 6)),  # both restricted: the 13th or a Friday
        ("0 0 */10 * 1", utc(2024, 1, 1), utc(2024, 3, 11)),  # day starts with '*': the 1/11/21/31 and Monday
        ("0 12 * 6 1", utc(2024, 5, 1), utc(2024, 6, 3, 12)),
        ("@hourly", utc(2024, 1, 1, 10, 30), utc(2024, 1, 1, 11)),
        ("@daily", utc(2024, 1, 1, 10, 30), utc(2024, 1, 2)),
        ("@weekly", utc(2024, 1, 1), utc(2024, 1, 7)),
        ("@monthly", utc(2024, 1, 1), utc(2024, 2, 1)),
        ("@yearly", utc(2024, 1, 1), utc(2025, 1, 1)),
    ],
)
def test_next_fire(expr: str, after: datetime, expected: datetime) -> None:
    fire = next_fire(expr, after)
    assert fire == expected
    assert fire.tzinfo is UTC
    assert parse_cron(expr).matches(fire)


def test_next_fire_takes_any_timezone_and_answers_in_utc() -> None:
    after = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # 10:00 UTC
    assert next_fire("0 * * * *", after) == utc(2024, 1, 1, 11)
    with pytest.raises(ValueError, match="timezone"):
        next_fire("0 * * * *", datetime(2024, 1, 1))  # noqa: DTZ001 - naive on purpose


def test_matches_is_to_the_minute() -> None:
    cron = parse_cron("*/15 9 * * *")
    assert cron.matches(utc(2024, 1, 1, 9, 15, 59))
    assert not cron.matches(utc(2024, 1, 1, 9, 16))
    assert not cron.matches(utc(2024, 1, 1, 10, 15))


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "* * * *",
        "* * * * * *",
        "@reboot",
        "60 * * * *",
        "-1 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "*/x * * * *",
        "*/-5 * * * *",
        "5-1 * * * *",
        "1-2-3 * * * *",
        "1,,2 * * * *",
        "a * * * *",
        "* * * foo *",
        "* * * * funday",
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
    ],
)
def test_bad_cron_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        parse_cron(expr)
