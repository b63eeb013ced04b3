"""The worker: runs jobs from the queue with bounded concurrency, retries, dead letters and claims.

One :class:`Worker` per process, each with a consumer name of its own (the
host name and pid, say); replicas scale by adding workers to the one group.

What happens to a delivered job:

==================================================  ==============================================
the handler                                         then
==================================================  ==============================================
returns                                             the entry is acknowledged (``XACK`` + ``XDEL``)
raises, or its ``kind`` has no handler, and         a retry with ``attempt + 1`` goes into the
``attempt + 1 < attempts``                          retry set, due after a full-jitter backoff, and
                                                    the entry is acknowledged, in one script
raises on the last attempt                          ``dead_letter(job, reason)`` is awaited, then
                                                    the entry is acknowledged; if ``dead_letter``
                                                    fails the entry stays pending
is still running when its worker dies               the entry stays pending; after ``claim_after``
                                                    seconds a live worker claims it and runs it
                                                    again with the same ``attempt``
==================================================  ==============================================

A crash is not a failed attempt: the claimed job runs with its ``attempt``
unchanged, because a crash says nothing about the job, and counting it would
let a deploy that restarts workers dead-letter healthy jobs. A job that kills
its worker every time is bounded instead by ``max_deliveries``, counted apart
from ``attempts`` (default 5): an entry delivered more often than that without
an acknowledgement goes to the dead letters without running again.

**Handlers must be idempotent.** Delivery is at least once: a job runs again
after its worker died, after an acknowledgement was lost, or when a handler
stalled past ``claim_after`` while another worker took it over. Handlers key
their effects by business identity, never by attempt. ``dead_letter`` may
likewise be called twice for one job (the ledger keys it by ``job.id`` and
``job.attempt``).

A running job's entry is kept fresh (``XCLAIM JUSTID`` every ``claim_after /
3`` seconds), so ``claim_after`` bounds how long a dead worker's jobs wait,
not how long a job may run.

Two loops run beside the reader: the promoter moves due retries into the
stream (every worker runs it; the script makes that safe), and the claimer
takes over entries of dead consumers and refreshes the running ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self, TypeAlias

from redis.exceptions import RedisError

from process_apis.jobs.queue import Job
from shared.errors import FinsyncError

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping
    from types import TracebackType

    from process_apis.jobs.queue import Delivery, JobQueue
    from shared.settings import WorkerSettings

__all__ = ("DeadLetter", "Handler", "UnknownJobKindError", "Worker", "WorkerStats", "backoff_delay")

logger = logging.getLogger("finsync.jobs.worker")

Handler: TypeAlias = Callable[[Job], Awaitable[None]]
"""Runs one job; raising fails the attempt."""
DeadLetter: TypeAlias = Callable[[Job, str], Awaitable[None]]
"""Stores a job that will not be tried again, with the reason; raising leaves its entry pending."""

_REDIS_PAUSE: Final = 1.0
"""Seconds a loop waits after Redis failed, so that an outage is not a busy loop."""
_PROMOTE_BATCH: Final = 100


class UnknownJobKindError(FinsyncError):
    """No handler is registered for the job's ``kind`` on this worker.

    A failure like any other, retried: during a rolling deploy an older worker may
    meet a kind that a newer one handles.
    """


def backoff_delay(attempt: int, backoff: float, backoff_max: float) -> float:
    """Seconds before the retry of a failed ``attempt``: full jitter, uniform in ``[0, min(backoff_max, backoff * 2**attempt)]``."""
    ceiling = min(backoff_max, backoff * 2.0 ** min(attempt, 64))
    return random.uniform(0.0, ceiling)  # noqa: S311 - jitter spreads retries; it guards no secret


@dataclass
class WorkerStats:
    """What one worker did since it started, for tests and metrics."""

    completed: int = 0
    """Jobs whose handler returned."""
    retried: int = 0
    """Failed attempts scheduled again."""
    dead_lettered: int = 0
    """Jobs handed to ``dead_letter`` and acknowledged."""
    dead_letter_failures: int = 0
    """Calls of ``dead_letter`` that raised; their entries stayed pending."""
    claimed: int = 0
    """Entries taken over from consumers that stopped answering."""


class Worker:
    """Runs jobs of one :class:`~process_apis.jobs.queue.JobQueue`; ``await start()`` / ``await stop()``, or ``async with``."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        consumer: str,
        concurrency: int = 4,
        attempts: int = 5,
        backoff: float = 2.0,
        backoff_max: float = 300.0,
        claim_after: float = 60.0,
        dead_letter: DeadLetter,
        max_deliveries: int = 5,
        block: float = 1.0,
        poll_interval: float = 1.0,
        stop_timeout: float = 30.0,
    ) -> None:
        """Configure the worker (no I/O).

        Args:
            queue: Where jobs come from.
            handlers: Handler per job ``kind``.
            consumer: This worker's name in the group; unique among live workers.
            concurrency: Jobs run at once.
            attempts: Tries of a job before it goes to ``dead_letter``.
            backoff: Base of the exponential backoff, in seconds.
            backoff_max: Longest wait before a retry, in seconds.
            claim_after: Seconds an entry may go without a sign of life before another worker claims it.
            dead_letter: Stores a job that failed its last attempt, with the reason.
            max_deliveries: Deliveries of one entry without an acknowledgement before it goes to the dead
                letters unrun (a job that crashes its worker). Counted apart from ``attempts``, so that
                with ``attempts=1`` a job whose worker died still runs again.
            block: Longest wait of one read, in seconds; ``stop()`` waits for the read in flight, as
                cancelling it could leave entries delivered to nobody until they are claimed.
            poll_interval: Seconds between moves of due retries into the stream.
            stop_timeout: Seconds ``stop()`` lets running jobs finish before cancelling them.
        """
        if concurrency < 1 or attempts < 1 or max_deliveries < 1:
            raise ValueError("concurrency, attempts and max_deliveries must be at least 1")
        if backoff < 0 or backoff_max <= 0 or claim_after <= 0 or block <= 0 or poll_interval <= 0:
            raise ValueError("backoff must be >= 0; backoff_max, claim_after, block and poll_interval > 0")
        self.queue = queue
        """Where jobs come from."""
        self.consumer = consumer
        """This worker's name in the consumer group."""
        self.stats = WorkerStats()
        """Counters since start."""
        self._handlers = dict(handlers)
        self._concurrency = concurrency
        self._attempts = attempts
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._claim_after = claim_after
        self._dead_letter = dead_letter
        self._max_deliveries = max_deliveries
        self._block = block
        self._poll_interval = poll_interval
        self._stop_timeout = stop_timeout
        self._running: dict[asyncio.Task[None], str] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._claim_cursor = "0-0"

    @classmethod
    def from_settings(
        cls,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        settings: WorkerSettings,
        *,
        consumer: str,
        dead_letter: DeadLetter,
    ) -> Self:
        """A worker configured by ``settings.worker``."""
        return cls(
            queue,
            handlers,
            consumer=consumer,
            concurrency=settings.concurrency,
            attempts=settings.attempts,
            backoff=settings.backoff,
            backoff_max=settings.backoff_max,
            claim_after=settings.claim_after,
            dead_letter=dead_letter,
        )

    @property
    def running(self) -> int:
        """Jobs running now."""
        return len(self._running)

    async def pending(self) -> int:
        """Entries delivered and not acknowledged, across the group."""
        return await self.queue.pending()

    async def retry_backlog(self) -> int:
        """Retries waiting for their due time."""
        return await self.queue.retry_backlog()

    async def start(self) -> None:
        """Join the group (creating it on first use) and start reading, promoting and claiming."""
        if self._loops:
            raise RuntimeError(f"worker {self.consumer!r} already started")
        await self.queue.ensure_group()
        self._stopping.clear()
        self._drained.clear()
        self._loops = [
            asyncio.create_task(self._read_loop(), name=f"jobs-read-{self.consumer}"),
            asyncio.create_task(
                self._every(self._poll_interval, self._promote, self._stopping),
                name=f"jobs-promote-{self.consumer}",
            ),
            # Keeps refreshing running entries while stop() drains them, so none is claimed meanwhile.
            asyncio.create_task(
                self._every(self._claim_after / 3, self._claim_and_refresh, self._drained),
                name=f"jobs-claim-{self.consumer}",
            ),
        ]

    async def stop(self) -> None:
        """Stop reading, let running jobs finish for up to ``stop_timeout`` seconds, then cancel the rest.

        A cancelled job is not acknowledged: its entry stays pending and is claimed by another worker.
        """
        if not self._loops:
            return
        self._stopping.set()
        self._slot_freed.set()
        reader, promoter, claimer = self._loops
        await asyncio.gather(reader, promoter)
        if self._running:
            _done, late = await asyncio.wait(set(self._running), timeout=self._stop_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                logger.warning("%s: cancelled %d unfinished jobs at stop", self.consumer, len(late))
        self._drained.set()
        await claimer
        self._loops = []
        try:
            await self.queue.retire(self.consumer)
        except RedisError as exc:
            logger.warning("%s: could not leave the group: %s", self.consumer, exc)

    async def __aenter__(self) -> Self:
        """Start the worker."""
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the worker."""
        await self.stop()

    def _free_slots(self) -> int:
        """Jobs this worker may still start."""
        return self._concurrency - len(self._running)

    async def _read_loop(self) -> None:
        """Read as many new entries as there are free slots, and start each."""
        while not self._stopping.is_set():
            free = self._free_slots()
            if free <= 0:
                # No await since the count: a job cannot finish between it and the clear.
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                deliveries = await self.queue.read(self.consumer, free, self._block)
            except RedisError as exc:
                logger.warning("%s: reading jobs failed: %s", self.consumer, exc)
                await self._pause(self._stopping, _REDIS_PAUSE)
                continue
            # Entries read are this consumer's even when stop() was called meanwhile: run them.
            for delivery in deliveries:
                self._spawn(delivery)

    async def _every(
        self, interval: float, step: Callable[[], Coroutine[Any, Any, None]], until: asyncio.Event
    ) -> None:
        """Run ``step`` every ``interval`` seconds until ``until`` is set; Redis failures are logged."""
        while not await self._pause(until, interval):
            try:
                await step()
            except RedisError as exc:
                logger.warning("%s: %s failed: %s", self.consumer, step.__name__, exc)

    @staticmethod
    async def _pause(event: asyncio.Event, seconds: float) -> bool:
        """Wait ``seconds`` or until ``event`` is set; whether it is set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        return event.is_set()

    async def _promote(self) -> None:
        """Move due retries into the stream, batch after batch while batches come back full."""
        while await self.queue.promote(_PROMOTE_BATCH) == _PROMOTE_BATCH:
            pass

    async def _claim_and_refresh(self) -> None:
        """Refresh the entries running here, then claim entries idle past ``claim_after``."""
        await self.queue.touch(self.consumer, list(self._running.values()))
        free = self._free_slots()
        if self._stopping.is_set() or free <= 0:
            return
        self._claim_cursor, deliveries = await self.queue.claim(
            self.consumer, self._claim_after, free, self._claim_cursor
        )
        running_here = set(self._running.values())
        for delivery in deliveries:
            if delivery.entry_id in running_here:
                continue  # still running here; the event loop was too busy to refresh it in time
            logger.info(
                "%s: claimed job %s (%s), delivered %d times",
                self.consumer,
                delivery.job.id,
                delivery.entry_id,
                delivery.times_delivered,
            )
            self.stats.claimed += 1
            self._spawn(delivery)

    def _spawn(self, delivery: Delivery) -> None:
        """Run one delivery in a task of its own."""
        task = asyncio.create_task(self._run(delivery), name=f"job-{delivery.job.id}")
        self._running[task] = delivery.entry_id
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Free the slot of a finished job."""
        self._running.pop(task, None)
        self._slot_freed.set()

    async def _run(self, delivery: Delivery) -> None:
        """Run one job, then acknowledge, retry or dead-letter it."""
        job = delivery.job
        if delivery.malformed is not None:
            await self._bury(delivery, delivery.malformed)
            return
        if delivery.times_delivered > self._max_deliveries:
            reason = f"delivered {delivery.times_delivered} times without an acknowledgement"
            await self._bury(delivery, reason)
            return
        handler = self._handlers.get(job.kind, self._unknown_kind)
        try:
            await handler(job)
        except Exception as exc:  # noqa: BLE001 - whatever a handler raises, the attempt failed
            await self._failed(delivery, f"{type(exc).__name__}: {exc}")
            return
        try:
            await self.queue.ack(delivery.entry_id)
        except RedisError as exc:
            logger.warning(
                "%s: job %s ran but its ack failed; it will run again: %s", self.consumer, job.id, exc
            )
            return
        self.stats.completed += 1

    @staticmethod
    async def _unknown_kind(job: Job) -> None:
        """The handler of kinds without one: fails, so the job goes through retries to the dead letters."""
        raise UnknownJobKindError(f"no handler for job kind {job.kind!r}")

    async def _failed(self, delivery: Delivery, reason: str) -> None:
        """Schedule the next attempt of a failed job, or dead-letter it after its last."""
        job = delivery.job
        if job.attempt + 1 >= self._attempts:
            await self._bury(delivery, reason)
            return
        delay = backoff_delay(job.attempt, self._backoff, self._backoff_max)
        try:
            await self.queue.retry(delivery.entry_id, job, delay)
        except RedisError as exc:
            logger.warning(
                "%s: job %s failed and its retry could not be scheduled: %s", self.consumer, job.id, exc
            )
            return
        self.stats.retried += 1
        logger.info(
            "%s: job %s attempt %d failed (%s); retry in %.2fs",
            self.consumer,
            job.id,
            job.attempt,
            reason,
            delay,
        )

    async def _bury(self, delivery: Delivery, reason: str) -> None:
        """Hand the job to ``dead_letter``, and acknowledge its entry only once that returned."""
        job = delivery.job
        try:
            await self._dead_letter(job, reason)
        except Exception:
            self.stats.dead_letter_failures += 1
            logger.exception("%s: storing dead letter of job %s failed; left pending", self.consumer, job.id)
            return
        try:
            await self.queue.ack(delivery.entry_id)
        except RedisError as exc:
            logger.warning("%s: dead letter of job %s stored, ack failed: %s", self.consumer, job.id, exc)
            return
        self.stats.dead_lettered += 1
        logger.warning("%s: job %s dead-lettered: %s", self.consumer, job.id, reason)
