"""Loads into a planning source: accepted at once (202), run in the background, watched by id.

A load is checked and mapped before it is accepted (a refused load writes
nothing), then run by a task of the process that accepted it:

1. it waits for the source's Redis lock, since one model takes one import at a
   time and two loads would overwrite each other's file (``queued``);
2. the connector uploads its file in chunks (``uploading``), starts the import
   and polls it (``importing``);
3. it ends ``complete`` with the platform's row counts and every failed row, or
   ``failed`` with the reason.

The record lives in Redis, so any replica answers ``GET …/loads/{id}``. While a
load runs, its process renews a lease every :data:`HEARTBEAT` seconds; a load
whose lease lapsed before it ended (its process stopped) reads as
``interrupted``. Records are kept :data:`RETENTION` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from shared.canonical import Load, LoadStatus
from shared.errors import FinsyncError, UnknownMemberError, Violation

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.lock import Lock

    from shared.canonical import LoadCreate
    from system_apis.connectors.anaplan.connector import AnaplanConnector, MappedLoad

__all__ = ("HEARTBEAT", "LEASE", "RETENTION", "LoadRunner", "LoadStore")

logger = logging.getLogger("finsync.planning")

RETENTION = 7 * 86400
"""Seconds a load's record is kept (7 days)."""
LEASE = 30
"""Seconds a running load's lease (and its hold on the source's lock) lasts unless renewed."""
HEARTBEAT = 10.0
"""Seconds between two renewals of the lease."""
PREFIX = "finsync:system:planning:"


def _now() -> datetime:
    return datetime.now(UTC)


def new_load_id() -> str:
    """A load id that sorts by creation time: milliseconds in hex, then randomness."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


class LoadStore:
    """Load records in Redis, per source, newest first."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    @staticmethod
    def _key(source: str, load_id: str) -> str:
        return f"{PREFIX}{source}:load:{load_id}"

    @staticmethod
    def _index(source: str) -> str:
        return f"{PREFIX}{source}:loads"

    def lease_key(self, source: str, load_id: str) -> str:
        """Key that exists while the load's process is alive."""
        return self._key(source, load_id) + ":lease"

    async def save(self, load: Load) -> None:
        """Write the record and index it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(load.source, load.id), msgspec.json.encode(load), ex=RETENTION)
            pipe.zadd(self._index(load.source), {load.id: 0})
            await pipe.execute()

    async def renew(self, load: Load) -> None:
        """Prove the load's process alive for another :data:`LEASE` seconds."""
        await self.redis.set(self.lease_key(load.source, load.id), b"1", ex=LEASE)

    async def get(self, source: str, load_id: str) -> Load | None:
        """The load, or None; a running load whose lease lapsed is recorded ``interrupted`` first."""
        raw = await self.redis.get(self._key(source, load_id))
        if raw is None:
            return None
        return await self._alive(msgspec.json.decode(raw, type=Load))

    async def _alive(self, load: Load) -> Load:
        if load.status.finished or await self.redis.exists(self.lease_key(load.source, load.id)):
            return load
        interrupted = msgspec.structs.replace(
            load,
            status=LoadStatus.INTERRUPTED,
            detail="the process running this load stopped before it ended; check the cells, then load again",
            updated_at=_now(),
        )
        await self.save(interrupted)
        return interrupted

    async def page(self, source: str, limit: int, after: str | None) -> tuple[list[Load], str | None]:
        """Up to ``limit`` loads, newest first, older than the load ``after``; and the last id when more remain."""
        high = f"({after}" if after is not None else "+"
        found = await self.redis.zrevrangebylex(self._index(source), high, "-", start=0, num=limit + 1)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in found]
        raws = await self.redis.mget([self._key(source, load_id) for load_id in ids]) if ids else []
        gone = [load_id for load_id, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self.redis.zrem(self._index(source), *gone)
        loads = [await self._alive(msgspec.json.decode(raw, type=Load)) for raw in raws if raw is not None]
        more = len(ids) > limit
        loads = loads[:limit]
        return loads, (loads[-1].id if more and loads else None)


class LoadRunner:
    """Runs accepted loads as tasks of this process; one at a time per source, across replicas."""

    def __init__(self, store: LoadStore) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    async def accept(self, connector: AnaplanConnector, payload: LoadCreate, *, start: bool = True) -> Load:
        """Check and map the rows, record the load ``queued`` and start it (unless ``start`` is false: a dry run).

        Raises:
            UnknownMemberError: the version, or values of some rows, map to nothing in the model.
            DuplicateCellError: rows repeat a cell.
        """
        versions = {version.name for version in await connector.versions()}
        if payload.version not in versions:
            raise UnknownMemberError(
                f"the planning model has no version {payload.version!r} (it has {', '.join(sorted(versions))})",
                violations=[Violation(reason="unknown-version", message="no such version", field="version")],
            )
        mapped = await connector.map_rows(payload.rows)
        now = _now()
        load = Load(
            id=new_load_id(),
            source=connector.source,
            version=payload.version,
            status=LoadStatus.QUEUED,
            rows=len(payload.rows),
            mapping_version=connector.mapping.version,
            progress=0.0,
            task_id=None,
            counts=None,
            failures=(),
            detail=None,
            created_at=now,
            updated_at=now,
        )
        if not start:
            return load
        await self.store.renew(load)
        await self.store.save(load)
        task = asyncio.create_task(self._run(connector, load, mapped), name=f"planning-load-{load.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return load

    async def _run(self, connector: AnaplanConnector, load: Load, mapped: MappedLoad) -> None:
        current = load

        async def update(**changes: object) -> None:
            nonlocal current
            current = msgspec.structs.replace(current, updated_at=_now(), **changes)
            await self.store.save(current)

        lock = self.store.redis.lock(f"{PREFIX}{load.source}:lock", timeout=LEASE, sleep=0.2)
        heartbeat = asyncio.create_task(self._heartbeat(load, lock))
        try:
            await lock.acquire()
            await update(status=LoadStatus.UPLOADING)

            async def progress(value: float, task_id: str | None) -> None:
                status = LoadStatus.IMPORTING if task_id is not None else LoadStatus.UPLOADING
                if status != current.status or task_id != current.task_id or value - current.progress >= 0.01:
                    await update(status=status, progress=round(value, 4), task_id=task_id)

            outcome = await connector.load(load.version, mapped, progress)
            if outcome.cancelled:
                await update(
                    status=LoadStatus.FAILED,
                    task_id=outcome.task_id,
                    counts=outcome.counts,
                    detail="the import task was cancelled in the planning platform, which rolled it back",
                )
            else:
                await update(
                    status=LoadStatus.COMPLETE,
                    progress=1.0,
                    task_id=outcome.task_id,
                    counts=outcome.counts,
                    failures=outcome.failures,
                )
            logger.info(
                "planning load %s %s: %s",
                load.id,
                current.status.value,
                msgspec.json.encode(current.counts).decode() if current.counts else "-",
                extra={"source": load.source, "load": load.id},
            )
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await update(
                    status=LoadStatus.INTERRUPTED, detail="the system API stopped while the load ran"
                )
            raise
        except FinsyncError as exc:
            await update(status=LoadStatus.FAILED, detail=exc.detail)
        except Exception:
            logger.exception(
                "planning load %s failed", load.id, extra={"source": load.source, "load": load.id}
            )
            await update(status=LoadStatus.FAILED, detail="finsync failed inside; see the system API's log")
        finally:
            heartbeat.cancel()
            with contextlib.suppress(Exception):
                await lock.release()
            with contextlib.suppress(Exception):
                await self.store.redis.delete(self.store.lease_key(load.source, load.id))

    async def _heartbeat(self, load: Load, lock: Lock) -> None:
        """Renew the lease, and the source's lock once held, until cancelled."""
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):
                await self.store.renew(load)
                if await lock.owned():
                    await lock.reacquire()

    async def close(self) -> None:
        """Stop every running load (each is recorded ``interrupted``)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
