"""Scheduled runs: cron entries fired once per fire time across all replicas.

Every replica runs a :class:`Scheduler` with the same entries. At each fire
time each replica calls :meth:`Scheduler.tick`, which takes the tick lock
``{name}:{fire time}`` (:func:`~process_apis.jobs.locks.tick_lock`); only the
replica that took it calls the entry's callback. The callback should only
enqueue a job (with a job id built from the entry name and the fire time), so
that the work itself runs under the queue's retries and dead letters.

A fire time missed while every replica was down is not made up here: the
flows' catch-up sweeps cover it. A replica that wakes late still fires the
ticks it missed, unless they are older than ``lock_ttl``: by then their lock
may have expired, so it could no longer tell whether another replica ran them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, NamedTuple, Self, TypeAlias

from redis.exceptions import RedisError

from process_apis.jobs.cron import CronExpression, parse_cron
from process_apis.jobs.locks import tick_lock

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    import redis.asyncio as aioredis

__all__ = ("ScheduleEntry", "Scheduler", "TickCallback")

logger = logging.getLogger("finsync.jobs.schedule")

TickCallback: TypeAlias = Callable[[datetime], Awaitable[None]]
"""Called with the fire time (UTC) by the one replica that won the tick."""

_LONGEST_SLEEP: Final = 60.0
"""Sleeps are cut into pieces no longer than this, so a wall-clock step is noticed."""


class ScheduleEntry(NamedTuple):
    """One scheduled run."""

    name: str
    """Unique name; part of the tick lock key."""
    cron: str
    """Five-field cron expression, UTC."""
    callback: TickCallback
    """What runs at each fire time; it should enqueue a job and return."""


class Scheduler:
    """Fires cron entries; only one replica runs each fire time. ``start()`` / ``stop()``, or ``async with``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        entries: Iterable[ScheduleEntry | tuple[str, str, TickCallback]],
        *,
        lock_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Parse the entries (a bad expression raises ``ValueError`` here, at start-up).

        Args:
            redis: Where the tick locks live.
            entries: ``(name, cron expression, callback)`` each.
            lock_ttl: Seconds a tick lock lives; longer than any clock skew between replicas.
            clock: Epoch seconds now; tests pass a fake one.
        """
        self.entries = tuple(ScheduleEntry(*entry) for entry in entries)
        """The scheduled runs."""
        names = [entry.name for entry in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule entry names must be unique: {names}")
        self._crons: dict[str, CronExpression] = {
            entry.name: parse_cron(entry.cron) for entry in self.entries
        }
        self._redis = redis
        self._lock_ttl = lock_ttl
        self._clock = clock
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def _now(self) -> datetime:
        """The clock's time, in UTC."""
        return datetime.fromtimestamp(self._clock(), UTC)

    async def tick(self, at: datetime) -> list[str]:
        """Fire every entry due at ``at`` (to the minute) whose tick lock this replica wins; their names."""
        at = at.astimezone(UTC).replace(second=0, microsecond=0)
        return [
            entry.name
            for entry in self.entries
            if self._crons[entry.name].matches(at) and await self._fire(entry, at)
        ]

    async def _fire(self, entry: ScheduleEntry, at: datetime) -> bool:
        """Run ``entry`` for ``at`` if this replica wins the tick; whether it did."""
        if not await tick_lock(self._redis, f"{entry.name}:{at:%Y-%m-%dT%H:%MZ}", self._lock_ttl):
            return False
        try:
            await entry.callback(at)
        except Exception:
            # The tick stays taken: another replica must not run it again. The callback only enqueues;
            # a failure here is lost to this tick and left to the catch-up sweep.
            logger.exception("scheduled run %s at %s failed", entry.name, at.isoformat())
        return True

    async def start(self) -> None:
        """Start firing entries."""
        if self._loop is not None:
            raise RuntimeError("scheduler already started")
        self._stopping.clear()
        self._loop = asyncio.create_task(self._run(), name="jobs-scheduler")

    async def stop(self) -> None:
        """Stop firing; a callback already running finishes first."""
        if self._loop is None:
            return
        self._stopping.set()
        await self._loop
        self._loop = None

    async def __aenter__(self) -> Self:
        """Start the scheduler."""
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the scheduler."""
        await self.stop()

    async def _run(self) -> None:
        """Sleep until the next fire time, fire what is due, and repeat until stopped."""
        now = self._now()
        due = {entry.name: self._crons[entry.name].next_after(now) for entry in self.entries}
        by_name = {entry.name: entry for entry in self.entries}
        while due and not self._stopping.is_set():
            at = min(due.values())
            wait = (at - self._now()).total_seconds()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(wait, _LONGEST_SLEEP))
                continue
            oldest = self._now() - timedelta(seconds=self._lock_ttl)
            for name in [name for name, when in due.items() if when == at]:
                if at >= oldest:
                    try:
                        await self._fire(by_name[name], at)
                    except RedisError as exc:
                        logger.warning(
                            "scheduled run %s at %s lost: Redis failed: %s", name, at.isoformat(), exc
                        )
                else:
                    logger.warning(
                        "scheduled run %s at %s skipped: too late to fire once", name, at.isoformat()
                    )
                due[name] = self._crons[name].next_after(max(at, oldest))
