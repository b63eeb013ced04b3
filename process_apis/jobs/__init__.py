"""Durable work across replicas: a Redis stream with one consumer group, retries, dead letters, locks, cron.

Every flow runs its work through this package: scheduled and on-demand runs,
and the handling of source events (:mod:`process_apis.events` runs a queue of
its own, prefix ``finsync:process:events:jobs``, so events never wait behind a
long run).

- :mod:`~process_apis.jobs.queue`: :class:`JobQueue` enqueues :class:`Job`\\ s
  (deduplicated by business identity) into ``{prefix}:stream``.
- :mod:`~process_apis.jobs.worker`: :class:`Worker` runs them at least once,
  with bounded concurrency, retries due from a Redis sorted set, dead letters,
  and claims of the jobs of dead workers. Handlers must be idempotent.
- :mod:`~process_apis.jobs.locks`: run locks per business slice, taken all or
  none, and tick locks for scheduled runs.
- :mod:`~process_apis.jobs.cron` and :mod:`~process_apis.jobs.schedule`: cron
  expressions, and a :class:`Scheduler` that fires each tick on one replica.
"""

from __future__ import annotations

from process_apis.jobs.cron import CronExpression, next_fire, parse_cron
from process_apis.jobs.locks import (
    Slice,
    SliceBusyError,
    SliceLocks,
    acquire_slices,
    release_slices_of,
    slice_key,
    slice_lock,
    tick_lock,
)
from process_apis.jobs.queue import Delivery, Job, JobQueue
from process_apis.jobs.schedule import ScheduleEntry, Scheduler, TickCallback
from process_apis.jobs.worker import (
    DeadLetter,
    Handler,
    UnknownJobKindError,
    Worker,
    WorkerStats,
    backoff_delay,
)

__all__ = (
    "CronExpression",
    "DeadLetter",
    "Delivery",
    "Handler",
    "Job",
    "JobQueue",
    "ScheduleEntry",
    "Scheduler",
    "Slice",
    "SliceBusyError",
    "SliceLocks",
    "TickCallback",
    "UnknownJobKindError",
    "Worker",
    "WorkerStats",
    "acquire_slices",
    "backoff_delay",
    "next_fire",
    "parse_cron",
    "release_slices_of",
    "slice_key",
    "slice_lock",
    "tick_lock",
)
