"""Running an event's handlers as a job of the event queue: retries, exceptions, dead letters, replays.

The event job queue is a :class:`~process_apis.jobs.JobQueue` of its own
(prefix :data:`EVENT_JOBS`), run by a :class:`~process_apis.jobs.Worker` with
the event settings, so events never wait behind a long actuals-to-plan run.
What happens to an event's job:

==================================  ================================================================
its handlers                        then
==================================  ================================================================
all return                          the inbox row becomes ``processed``
one raises ``EventRejectedError``   an exception (flow ``source-events``, the reason code, slice =
                                    ordering key) and the row becomes ``failed``; no retry
one raises anything else            the worker retries it with full-jitter backoff (the due time in
                                    its Redis sorted set); after ``attempts`` tries the dead letter
                                    goes to the ledger and the row becomes ``dead``
==================================  ================================================================

The handlers of one event run under a short lock on its ordering key, so two
events about one business object never run their handlers at once on two
replicas; a busy key is a transient failure, tried again shortly.

A job finds its event in the inbox by id and does nothing when the row is no
longer ``received``: a redelivered or claimed job of a processed event has no
effect. A replay (of a dead letter or of an exception) reopens the row, starts
a run in the ledger (flow ``source-events``, trigger ``replay``) that reports
the outcome, and queues a job with a new id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import msgspec
from redis.exceptions import LockError

from process_apis.events.consumer import EVENTS_FLOW
from process_apis.events.handlers import EventRejectedError
from process_apis.events.intake import EVENT_JOB
from shared.errors import FinsyncError
from shared.events import SourceEvent

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from process_apis.events.handlers import EventHandlers
    from process_apis.events.metrics import EventMetrics
    from process_apis.jobs import Job, JobQueue
    from process_apis.ledger.database import Ledger
    from process_apis.ledger.records import Run

__all__ = ("EVENT_JOBS", "EventBusyError", "EventProcessor")

logger = logging.getLogger("finsync.events.processing")

EVENT_JOBS: Final = "finsync:process:events:jobs"
"""Key prefix of the event job queue."""
LOCK_PREFIX: Final = "finsync:process:lock:event"
"""Prefix of the per-ordering-key locks."""


class EventBusyError(FinsyncError):
    """Another replica runs the handlers of an event about the same business object; tried again later."""


class EventProcessor:
    """The event queue's job handler and dead-letter store, and replays."""

    def __init__(
        self,
        ledger: Ledger,
        queue: JobQueue,
        redis: aioredis.Redis,
        handlers: EventHandlers,
        metrics: EventMetrics,
        *,
        attempts: int,
        lock_timeout: float = 60.0,
        lock_wait: float = 5.0,
    ) -> None:
        """Configure the processor (no I/O).

        Args:
            ledger: The inbox, exceptions, dead letters and runs.
            queue: The event job queue (replays go there).
            redis: Where the ordering-key locks live.
            handlers: What runs for each event type.
            metrics: Counters.
            attempts: The worker's attempts, to tell a retry from the last failure in the counters.
            lock_timeout: Seconds an ordering-key lock lives (longer than any handler runs).
            lock_wait: Seconds to wait for a busy ordering key before failing the attempt.
        """
        self._ledger = ledger
        self._queue = queue
        self._redis = redis
        self._handlers = handlers
        self._metrics = metrics
        self._attempts = attempts
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait

    async def handle(self, job: Job) -> None:
        """Run the handlers of the job's event once in effect."""
        event_id = str(job.payload["event_id"])
        run_id = job.payload.get("run_id")
        record = await self._ledger.inbox.get(event_id)
        if record is None:
            raise LookupError(f"event {event_id} is not in the inbox")
        if record.status != "received":
            await self._finish_run(run_id, record.status, record.last_error)
            return
        if run_id is not None:
            await self._ledger.store.update_run(str(run_id), status="running")
        event = msgspec.convert(record.payload, SourceEvent)
        lock = self._redis.lock(
            f"{LOCK_PREFIX}:{event.ordering_key}",
            timeout=self._lock_timeout,
            blocking_timeout=self._lock_wait,
        )
        if not await lock.acquire():
            await self._failed(job, event_id, f"ordering key {event.ordering_key} is busy")
            raise EventBusyError(f"ordering key {event.ordering_key} is busy")
        try:
            await self._run_handlers(job, event, run_id)
        finally:
            try:
                await lock.release()
            except LockError:
                logger.warning("lock of %s expired while its handlers ran", event.ordering_key)

    async def _run_handlers(self, job: Job, event: SourceEvent, run_id: object) -> None:
        try:
            for handler in self._handlers.handlers_for(event.type):
                await handler(event)
        except EventRejectedError as exc:
            await self._rejected(event, exc.reason_code, str(exc), run_id)
            return
        except Exception as exc:
            await self._failed(job, event.id, f"{type(exc).__name__}: {exc}")
            raise
        await self._ledger.inbox.attempted(event.id, None)
        await self._ledger.inbox.mark(event.id, "processed")
        self._metrics.processed.labels(str(event.type)).inc()
        if run_id is not None:
            await self._ledger.store.resolve_exceptions(EVENTS_FLOW, event.ordering_key)
            await self._finish_run(run_id, "processed", None)

    async def _rejected(self, event: SourceEvent, reason_code: str, message: str, run_id: object) -> None:
        await self._ledger.store.record_exception(
            flow=EVENTS_FLOW,
            reason_code=reason_code,
            slice_key=event.ordering_key,
            fingerprint=event.id,
            detail={"event_id": event.id, "type": str(event.type), "message": message},
            run_id=str(run_id) if run_id is not None else None,
        )
        await self._ledger.inbox.attempted(event.id, message)
        await self._ledger.inbox.mark(event.id, "failed", message)
        self._metrics.rejected.labels(reason_code).inc()
        await self._finish_run(run_id, "failed", message)

    async def _failed(self, job: Job, event_id: str, error: str) -> None:
        await self._ledger.inbox.attempted(event_id, error)
        if job.attempt + 1 < self._attempts:
            self._metrics.retries.inc()

    async def _finish_run(self, run_id: object, status: str, error: str | None) -> None:
        if run_id is None:
            return
        if status == "processed":
            await self._ledger.store.update_run(str(run_id), status="succeeded", result={"event": status})
        else:
            await self._ledger.store.update_run(
                str(run_id), status="failed", result={"event": status}, error=error or status
            )

    async def dead_letter(self, job: Job, reason: str) -> None:
        """Keep a job that failed every attempt in the ledger's dead letters; its event becomes ``dead``."""
        await self._ledger.store.add_dead_letter(
            flow=EVENTS_FLOW,
            job_kind=job.kind,
            job_id=job.id,
            payload=job.payload,
            reason=reason,
            attempts=job.attempt + 1,
        )
        self._metrics.dead_letters.inc()
        if job.kind != EVENT_JOB:
            return
        event_id = str(job.payload.get("event_id", ""))
        await self._ledger.inbox.mark(event_id, "dead", reason)
        await self._finish_run(job.payload.get("run_id"), "dead", reason)

    async def replay(self, event_id: str, *, actor: str, trace_id: str) -> Run:
        """Run the event's handlers again (its cause fixed): a new run reports how it went.

        Raises:
            LookupError: the event is not in the inbox.
        """
        if await self._ledger.inbox.get(event_id) is None:
            raise LookupError(f"event {event_id} is not in the inbox")
        run = await self._ledger.store.create_run(
            flow=EVENTS_FLOW,
            trigger="replay",
            actor=actor,
            trace_id=trace_id,
            params={"event_id": event_id},
            slice_keys=(),
        )
        await self._ledger.inbox.mark(event_id, "received")
        await self._queue.enqueue(
            EVENT_JOB, {"event_id": event_id, "run_id": run.id}, job_id=f"{event_id}:replay:{run.id}"
        )
        return run
