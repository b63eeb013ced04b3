"""Run locks over redis-py's :class:`~redis.asyncio.lock.Lock`: business slices, and scheduled ticks.

A **slice** is what one run of a flow owns: a (source, entity, period), such
as ``("erp-us", "acme-inc", "2024-06")``. A run takes the locks of all its
slices before it starts, without waiting, in one fixed (sorted) order: either
it holds them all, or it holds none and learns which slices are busy
(:class:`SliceBusyError`). Not waiting means two runs can never deadlock; the
fixed order means two runs over overlapping slices meet on the same first
contested key, so one of them wins outright rather than both failing halfway.

Keys: ``finsync:process:lock:{flow}:{source}:{entity}:{period}``, and
``finsync:process:lock:tick:{name}`` for ticks.

A lock lives ``timeout`` seconds unless extended: a run longer than that must
call :meth:`SliceLocks.extend` on the way, or another run may take its slices.
If a lock was lost anyway, ``extend`` raises
:class:`~redis.exceptions.LockNotOwnedError` and the run must stop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, NamedTuple, Self

from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from shared.errors import ConflictError

if TYPE_CHECKING:
    from types import TracebackType

    import redis.asyncio as aioredis

__all__ = (
    "LOCK_PREFIX",
    "Slice",
    "SliceBusyError",
    "SliceLocks",
    "acquire_slices",
    "release_slices_of",
    "slice_key",
    "slice_lock",
    "tick_lock",
)

logger = logging.getLogger("finsync.jobs.locks")

LOCK_PREFIX: Final = "finsync:process:lock"
"""Prefix of every run lock."""


class Slice(NamedTuple):
    """The business slice a run owns."""

    source: str
    """Source id, such as ``erp-us``."""
    entity: str
    """Legal entity."""
    period: str
    """Period or day, such as ``2024-06``."""


class SliceBusyError(ConflictError):
    """Another run holds at least one of the slices; this run holds none of them."""

    def __init__(self, keys: Iterable[str]) -> None:
        """Name the busy slices by their lock keys."""
        self.keys = tuple(keys)
        """Lock keys of the busy slices."""
        super().__init__(f"slices busy with another run: {', '.join(self.keys)}", busy=list(self.keys))


def slice_key(flow: str, source: str, entity: str, period: str) -> str:
    """Lock key of one slice of ``flow``."""
    return f"{LOCK_PREFIX}:{flow}:{source}:{entity}:{period}"


def slice_lock(
    redis: aioredis.Redis, flow: str, source: str, entity: str, period: str, timeout: float
) -> Lock:
    """The (not yet acquired) non-blocking lock of one slice, living ``timeout`` seconds once taken."""
    return Lock(redis, slice_key(flow, source, entity, period), timeout=timeout, blocking=False)


class SliceLocks:
    """The locks one run holds, in the order they were taken; ``async with`` releases them."""

    def __init__(self, locks: Iterable[Lock]) -> None:
        """Wrap locks already held."""
        self.locks = tuple(locks)
        """The held locks, in sorted key order."""

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys of the held locks."""
        return tuple(str(lock.name) for lock in self.locks)

    async def extend(self, additional_time: float, *, replace_ttl: bool = False) -> None:
        """Lengthen every lock by ``additional_time`` seconds (or set it to that, with ``replace_ttl``).

        Raises:
            redis.exceptions.LockNotOwnedError: A lock expired and was taken by another run.
        """
        for lock in self.locks:
            await lock.extend(additional_time, replace_ttl=replace_ttl)

    async def release_all(self) -> None:
        """Release every lock, in reverse order; one already expired is logged, not raised."""
        await _release(self.locks)

    async def __aenter__(self) -> Self:
        """The held locks."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Release every lock."""
        await self.release_all()


async def _release(locks: Iterable[Lock]) -> None:
    """Release ``locks`` in reverse order of taking."""
    for lock in reversed(tuple(locks)):
        try:
            await lock.release()
        except LockError as exc:
            # It expired: another run may have overlapped this one, which is worth knowing.
            logger.warning("lock %s was no longer held at release: %s", lock.name, exc)


async def _taken(redis: aioredis.Redis, keys: list[str]) -> list[str]:
    """Which of ``keys`` are held, found by looking rather than taking them.

    Taking them only to let go again could make a third run fail for nothing.
    """
    if not keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(key)
        found = await pipe.execute()
    return [key for key, exists in zip(keys, found, strict=True) if exists]


async def acquire_slices(
    redis: aioredis.Redis,
    flow: str,
    slices: Iterable[Slice | tuple[str, str, str]],
    timeout: float,
    *,
    owner: str | None = None,
) -> SliceLocks:
    """Take the locks of all ``slices`` of ``flow`` without waiting: all of them, or none.

    ``owner`` (a run id, say) is stored as each lock's value, so that the locks of an owner known to be
    dead can be freed with :func:`release_slices_of`; default: a random token per lock.

    Raises:
        SliceBusyError: Some slices are held by another run; it names every busy one, and this run
            holds none.
    """
    keys = sorted({slice_key(flow, *item) for item in slices})
    held: list[Lock] = []
    busy: list[str] = []
    try:
        for index, key in enumerate(keys):
            lock = Lock(redis, key, timeout=timeout, blocking=False)
            if not await lock.acquire(token=owner):
                busy = [key, *await _taken(redis, keys[index + 1 :])]
                break
            held.append(lock)
    except BaseException:
        await _release(held)
        raise
    if busy:
        await _release(held)
        raise SliceBusyError(busy)
    return SliceLocks(held)


_RELEASE_OWNED = """
local freed = 0
for _, key in ipairs(KEYS) do
    if redis.call('get', key) == ARGV[1] then
        freed = freed + redis.call('del', key)
    end
end
return freed
"""


async def release_slices_of(
    redis: aioredis.Redis, flow: str, slices: Iterable[Slice | tuple[str, str, str]], owner: str
) -> int:
    """Free the locks of ``slices`` still held by ``owner`` (taken with ``acquire_slices(owner=...)``), now.

    For an owner known to be dead (a run whose worker was killed): its locks would otherwise stay held until
    they expire. Locks another owner holds are left alone. Returns how many were freed.
    """
    keys = sorted({slice_key(flow, *item) for item in slices})
    if not keys:
        return 0
    freed = await redis.eval(_RELEASE_OWNED, len(keys), *keys, owner)
    return int(freed)


async def tick_lock(redis: aioredis.Redis, name: str, ttl: float) -> bool:
    """Claim a scheduled tick for this replica; True when it is this replica's to run.

    The lock is never released: it expires after ``ttl`` seconds, so a replica that reaches the
    same tick later (a slower clock, a late wake-up) still finds it taken. ``name`` includes the
    fire time, so the next tick has a key of its own.
    """
    lock = Lock(redis, f"{LOCK_PREFIX}:tick:{name}", timeout=ttl, blocking=False)
    return bool(await lock.acquire())
