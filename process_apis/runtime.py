"""The process layer's durable machinery, opened with the app: the ledger, the job worker, the schedule.

Every replica opens the same ledger (migrated once, under a lock), joins the
same consumer group of the job stream, and runs the same schedule, whose ticks
fire on one replica each. A run whose worker died is found again when its job is
claimed by another replica; runs left ``running`` with no heartbeat are also
swept to ``abandoned`` at start.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from process_apis.flows.actuals_to_plan.job import HEARTBEAT, JOB_KIND, ActualsToPlan, months
from process_apis.flows.actuals_to_plan.runner import FLOW, RunParams
from process_apis.jobs import JobQueue, Scheduler, Worker
from process_apis.ledger.database import open_ledger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

    from process_apis.jobs import Job
    from shared.settings import Settings

__all__ = ("flows_runtime",)

logger = logging.getLogger("finsync.process")


def _consumer() -> str:
    """This process's name in the consumer group: host, pid and a nonce (a restarted pid is a new consumer)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _scheduled_params(settings: Settings, at: datetime) -> RunParams:
    flow = settings.flows.actuals_to_plan
    year, month = at.year, at.month
    for _ in range(flow.months_back):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return RunParams(
        source=flow.source,
        planning=flow.planning,
        entities=tuple(flow.entities),
        period_from=f"{year:04d}-{month:02d}",
        period_to=f"{at.year:04d}-{at.month:02d}",
        map_version=flow.map_version,
    )


@asynccontextmanager
async def flows_runtime(app: Litestar) -> AsyncIterator[None]:
    """Open the ledger, start the worker and the schedule; stop them in reverse order."""
    settings: Settings = app.state.settings
    ledger = await open_ledger(settings)
    app.state.ledger = ledger
    consumer = _consumer()
    queue = JobQueue(app.state.redis)
    flow_settings = settings.flows.actuals_to_plan
    flow = ActualsToPlan(
        app.state.below,
        ledger.store,
        queue,
        app.state.redis,
        worker=consumer,
        maps=Path(flow_settings.maps_dir) if flow_settings.maps_dir else None,
    )
    flow.dimension_map(flow_settings.map_version)  # a map that cannot be read stops the start, not a run
    app.state.actuals_to_plan = flow

    async def dead_letter(job: Job, reason: str) -> None:
        await ledger.store.add_dead_letter(
            flow=FLOW if job.kind == JOB_KIND else job.kind,
            job_kind=job.kind,
            job_id=job.id,
            payload=job.payload,
            reason=reason,
            attempts=job.attempt + 1,
        )

    async def scheduled(at: datetime) -> None:
        params = _scheduled_params(settings, at.astimezone(UTC))
        run = await flow.start(params, actor="schedule", trace_id=secrets.token_hex(16), trigger="schedule")
        logger.info(
            "scheduled %s run %s over %s",
            FLOW,
            run.id,
            ",".join(months(params.period_from, params.period_to)),
        )

    # Silent for longer than a claim would take and than three missed heartbeats: a live replica's run is
    # never swept, however short ``claim_after`` is.
    silence = max(settings.worker.claim_after * 2, HEARTBEAT * 3)
    stale = await ledger.store.abandon_stale_runs(timedelta(seconds=silence))
    if stale:
        logger.warning("runs left running with no heartbeat were marked abandoned: %s", ", ".join(stale))
    worker = Worker.from_settings(
        queue, {JOB_KIND: flow.handle}, settings.worker, consumer=consumer, dead_letter=dead_letter
    )
    schedule = flow_settings.schedule
    scheduler = Scheduler(app.state.redis, [(FLOW, schedule, scheduled)] if schedule else [])
    app.state.scheduler = scheduler
    try:
        async with worker, scheduler:
            yield
    finally:
        await ledger.close()
