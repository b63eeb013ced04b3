"""The event path, opened with the process service: consumer, event worker, sweep schedule, metrics sampler.

On by default: every replica consumes the streams of :data:`shared.events.STREAMS`
(an idle stream costs one blocked read a second), because an event left on a
stream is back-pressure on the system layer's ingress. The sweep is scheduled
only when ``event_consumer.crm_sources`` or ``billing_sources`` name sources:
which sources have change feeds worth reading is the operator's choice. It must
open after :func:`process_apis.runtime.flows_runtime`, whose ledger it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from process_apis.events.consumer import StreamConsumer
from process_apis.events.handlers import EventHandlers, record_state
from process_apis.events.intake import EVENT_JOB, EventIntake
from process_apis.events.metrics import EventMetrics
from process_apis.events.processing import EVENT_JOBS, EventProcessor
from process_apis.events.sweep import SWEEP_JOB, CatchUpSweep
from process_apis.jobs import JobQueue, Scheduler, Worker
from shared.events import STREAMS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from litestar import Litestar

    from process_apis.ledger.database import Ledger
    from shared.settings import Settings

__all__ = ("SWEEP_SCHEDULE", "EventPath", "events_runtime")

SWEEP_SCHEDULE = "events-sweep"
"""The sweep's entry in the schedule (and its tick locks)."""


@dataclass(frozen=True, slots=True)
class EventPath:
    """The event path's parts, kept on ``app.state.events``."""

    handlers: EventHandlers
    """Subscribe flows here."""
    consumer: StreamConsumer
    """Reads the streams."""
    intake: EventIntake
    """Records and queues events, pushed or swept."""
    queue: JobQueue
    """The event job queue."""
    worker: Worker
    """Runs event and sweep jobs."""
    processor: EventProcessor
    """Runs handlers; stores dead letters; replays."""
    sweep: CatchUpSweep
    """The catch-up sweep."""
    metrics: EventMetrics
    """The event path's metrics."""

    async def sample(self) -> None:
        """Refresh the gauges now."""
        await self.metrics.sample(self.consumer.redis, self.consumer.streams, self.consumer.group, self.queue)


def _consumer_name() -> str:
    """This process's name in the groups: host, pid and a nonce (a restarted pid is a new consumer)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def _sample_every(path: EventPath, interval: float, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        await path.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


@asynccontextmanager
async def events_runtime(app: Litestar) -> AsyncIterator[None]:
    """Start consuming, the event worker, the sweep's schedule and the sampler; stop them in reverse order."""
    settings: Settings = app.state.settings
    config = settings.event_consumer
    ledger: Ledger = app.state.ledger
    redis = app.state.redis
    name = _consumer_name()
    metrics = EventMetrics(app.state.metrics.registry if app.state.metrics is not None else None)
    queue = JobQueue(redis, EVENT_JOBS)
    handlers = EventHandlers()
    handlers.subscribe(record_state(ledger.inbox))
    intake = EventIntake(ledger.inbox, queue, metrics)
    processor = EventProcessor(
        ledger, queue, redis, handlers, metrics, attempts=config.attempts, lock_timeout=config.claim_after
    )
    sweep = CatchUpSweep(app.state.below, redis, intake, config)
    worker = Worker(
        queue,
        {EVENT_JOB: processor.handle, SWEEP_JOB: sweep.handle},
        consumer=name,
        concurrency=config.concurrency,
        attempts=config.attempts,
        backoff=config.backoff,
        backoff_max=config.backoff_max,
        claim_after=config.claim_after,
        dead_letter=processor.dead_letter,
        poll_interval=min(1.0, config.backoff or 1.0),
    )
    consumer = StreamConsumer(
        redis,
        intake,
        ledger.store,
        metrics,
        consumer=name,
        group=config.group,
        streams=STREAMS,
        batch=config.batch,
        claim_after=config.claim_after,
    )

    async def tick(at: datetime) -> None:
        await queue.enqueue(SWEEP_JOB, {"at": at.isoformat()}, job_id=f"{SWEEP_JOB}:{at.isoformat()}")

    scheduler = Scheduler(redis, [(SWEEP_SCHEDULE, config.sweep_schedule, tick)] if sweep.configured else [])
    path = EventPath(
        handlers=handlers,
        consumer=consumer,
        intake=intake,
        queue=queue,
        worker=worker,
        processor=processor,
        sweep=sweep,
        metrics=metrics,
    )
    app.state.events = path
    stopping = asyncio.Event()
    await worker.start()
    try:
        await consumer.start()
        await scheduler.start()
        sampler = asyncio.create_task(
            _sample_every(path, config.metrics_interval, stopping), name="events-metrics"
        )
        try:
            yield
        finally:
            stopping.set()
            await sampler
            await scheduler.stop()
    finally:
        # Each waits for its blocked read (up to a second): stop them together.
        await asyncio.gather(consumer.stop(), worker.stop())
