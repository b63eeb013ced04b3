"""The durable job queue: one Redis stream, read through one consumer group.

Keys, all under one prefix (``finsync:process:jobs`` by default):

============================  ============================================================
``{prefix}:stream``           jobs waiting or running; consumer group ``workers``
``{prefix}:retry``            failed jobs waiting for their retry: a sorted set scored by
                              due time (epoch seconds, by Redis's clock), member = the
                              encoded job with its next attempt number
``{prefix}:dedupe:{job_id}``  marks a job id as enqueued (``SET NX EX``), for callers that
                              name their jobs by business identity
============================  ============================================================

Delivery is at least once. An entry is acknowledged only once its handler
returned, its retry is scheduled, or its dead letter is stored; an entry whose
consumer died stays pending until a live worker claims it.

Acknowledged entries are also deleted (``XACK`` and ``XDEL`` in one
``MULTI``). The stream is a queue, not a log: without the delete every job
ever run would stay in Redis, which runs with ``noeviction`` and would end up
refusing writes. Trimming with ``MAXLEN`` instead could drop entries that are
still pending. With the delete, ``XLEN`` is the true backlog (waiting plus
running jobs), the figure a queue-depth metric wants.

Every change that touches two structures is one Lua script (enqueue with its
dedupe marker; schedule a retry and acknowledge; move due retries back into
the stream), so a crash between two commands can neither lose nor duplicate a
job. Retry due times are taken from Redis's ``TIME`` inside the scripts, so
replicas with skewed clocks agree on when a retry is due.

In a Redis Cluster, put the prefix in a hash tag (``{finsync:process:jobs}``)
so that the keys of one queue share a slot, as the scripts require.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import msgspec
from redis.exceptions import ResponseError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ("DEFAULT_PREFIX", "GROUP", "Delivery", "Job", "JobQueue")

logger = logging.getLogger("finsync.jobs")

DEFAULT_PREFIX: Final = "finsync:process:jobs"
"""Key prefix of the process layer's queue."""
GROUP: Final = "workers"
"""The one consumer group every worker joins."""
_FIELD: Final = "job"
_FIELD_BYTES: Final = _FIELD.encode()
_MALFORMED_KIND: Final = "malformed"


class Job(msgspec.Struct, frozen=True):
    """One unit of work, encoded as msgspec JSON into the ``job`` field of a stream entry.

    Frozen, so a handler cannot change what a retry will run. Unknown fields are
    ignored on decode, so a newer producer can add fields during a rolling deploy.
    """

    id: str
    """Identity of the work; the business identity when the caller gave one (``enqueue(job_id=...)``)."""
    kind: str
    """Selects the handler."""
    payload: dict[str, Any]
    """Handler input, JSON-encodable."""
    attempt: int
    """0 on the first try; a retry after a failure runs with ``attempt + 1``."""
    enqueued_at: float
    """Epoch seconds of the first enqueue; kept across retries, so the job's age is known."""


class Delivery(NamedTuple):
    """A stream entry handed to this consumer."""

    entry_id: str
    """Stream entry id, what ``XACK`` takes."""
    job: Job
    """The decoded job; a placeholder of kind ``malformed`` when the entry could not be decoded."""
    times_delivered: int
    """Deliveries of this entry so far, this one included (1 for a fresh read)."""
    malformed: str | None = None
    """Why the entry could not be decoded, or ``None``."""


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Job)

# KEYS[1] dedupe marker, KEYS[2] stream; ARGV[1] marker lifetime (s), ARGV[2] encoded job.
# One script, so a marker never exists without its entry (a crash between the two would lose the job
# for the marker's lifetime).
_ENQUEUE_ONCE: Final = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', 'job', ARGV[2])
end
return false
"""

# KEYS[1] retry set, KEYS[2] stream; ARGV[1] delay (s), ARGV[2] encoded next attempt, ARGV[3] group,
# ARGV[4] entry id. Schedules the retry and acknowledges the failed entry together.
_RETRY: Final = """
local now = redis.call('TIME')
local due = tonumber(now[1]) + tonumber(now[2]) / 1000000 + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], due, ARGV[2])
redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[2], ARGV[4])
return tostring(due)
"""

# KEYS[1] retry set, KEYS[2] stream; ARGV[1] most retries to move. Moves the due retries into the stream.
# Redis runs a script alone, so two promoters can never both see, and both add, the same retry.
_PROMOTE: Final = """
local now = redis.call('TIME')
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(now[1]) + tonumber(now[2]) / 1000000,
  'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', job)
  redis.call('ZREM', KEYS[1], job)
end
return #due
"""

# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer. Removes the consumer only when nothing is pending
# for it: XGROUP DELCONSUMER drops a consumer's pending entries, which would lose their jobs.
_RETIRE: Final = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""


def _text(value: bytes | str) -> str:
    """A Redis answer as text (the client does not decode answers)."""
    return value.decode() if isinstance(value, bytes) else value


def _delivery(entry_id: bytes | str, fields: dict[bytes, bytes] | None, times_delivered: int) -> Delivery:
    """Decode one entry; an undecodable one becomes a placeholder job so that it reaches the dead letters."""
    entry = _text(entry_id)
    raw = (fields or {}).get(_FIELD_BYTES)
    if raw is None:
        problem = f"entry has no {_FIELD!r} field"
    else:
        try:
            return Delivery(entry, _DECODER.decode(raw), times_delivered)
        except msgspec.DecodeError as exc:
            problem = f"undecodable entry: {exc}"
    shown = {_text(k): v.decode(errors="replace") for k, v in (fields or {}).items()}
    placeholder = Job(f"{_MALFORMED_KIND}:{entry}", _MALFORMED_KIND, {"fields": shown}, 0, 0.0)
    return Delivery(entry, placeholder, times_delivered, problem)


class JobQueue:
    """Enqueue jobs, and the stream operations a :class:`~process_apis.jobs.worker.Worker` runs on.

    Holds no state beyond key names and registered scripts: any number of
    queues and workers, in any number of processes, may share one prefix.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        """Name the keys and register the scripts (no I/O)."""
        self.redis = redis
        """The client every command goes through."""
        self.prefix = prefix
        """Key prefix of this queue."""
        self.stream = f"{prefix}:stream"
        """The stream of waiting and running jobs."""
        self.retry_key = f"{prefix}:retry"
        """The sorted set of scheduled retries."""
        self.group = GROUP
        """The consumer group."""
        # redis-py's scripts run by EVALSHA and load themselves again after NOSCRIPT (restart, flush).
        self._enqueue_once = redis.register_script(_ENQUEUE_ONCE)
        self._retry = redis.register_script(_RETRY)
        self._promote = redis.register_script(_PROMOTE)
        self._retire = redis.register_script(_RETIRE)

    def dedupe_key(self, job_id: str) -> str:
        """The marker that ``job_id`` was enqueued."""
        return f"{self.prefix}:dedupe:{job_id}"

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group unless they exist.

        The group starts at ``0``, so jobs enqueued before any worker ever ran are delivered too.
        """
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(
        self, kind: str, payload: dict[str, Any], job_id: str | None = None, dedupe_ttl: int = 86400
    ) -> str | None:
        """Add a job; its id, or ``None`` when ``job_id`` was already enqueued within ``dedupe_ttl`` seconds.

        Args:
            kind: Selects the handler.
            payload: Handler input, JSON-encodable.
            job_id: Business identity of the work (``"actuals-to-plan:erp-us:acme:2024-06"``). With it, the
                job is enqueued at most once while its marker lives, whether it is waiting, running or
                done. Without it, a random id is used and nothing is deduplicated.
            dedupe_ttl: Lifetime of the marker, in seconds.
        """
        job = Job(job_id or uuid.uuid4().hex, kind, payload, 0, time.time())
        encoded = _ENCODER.encode(job)
        if job_id is None:
            await self.redis.xadd(self.stream, {_FIELD: encoded})
            return job.id
        added = await self._enqueue_once(
            keys=[self.dedupe_key(job_id), self.stream], args=[dedupe_ttl, encoded]
        )
        return job.id if added is not None else None

    async def read(self, consumer: str, count: int, block: float) -> list[Delivery]:
        """New entries for ``consumer`` (``XREADGROUP >``), waiting up to ``block`` seconds for the first."""
        try:
            answer = await self._read(consumer, count, block)
        except ResponseError as exc:
            # The stream was deleted under us (FLUSHALL, a manual DEL): make it again and go on.
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            answer = await self._read(consumer, count, block)
        return [
            _delivery(entry_id, fields, 1)
            for _stream, entries in cast("list[list[Any]]", answer or [])
            for entry_id, fields in entries
        ]

    async def _read(self, consumer: str, count: int, block: float) -> Any:
        """One ``XREADGROUP >`` with ``BLOCK`` in milliseconds."""
        return await self.redis.xreadgroup(
            self.group, consumer, {self.stream: ">"}, count=count, block=max(1, int(block * 1000))
        )

    async def claim(
        self, consumer: str, min_idle: float, count: int, cursor: str = "0-0"
    ) -> tuple[str, list[Delivery]]:
        """Take over entries pending longer than ``min_idle`` seconds (``XAUTOCLAIM``).

        Returns the cursor to pass next time (``"0-0"`` once the scan went round) and the
        claimed entries, each with its delivery count.
        """
        answer = await self.redis.xautoclaim(
            self.stream, self.group, consumer, int(min_idle * 1000), start_id=cursor, count=count
        )
        next_cursor, entries = (
            _text(answer[0]),
            cast("list[tuple[bytes, dict[bytes, bytes] | None]]", answer[1]),
        )
        if not entries:
            return next_cursor, []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _fields in entries:
                pipe.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
            counts = await pipe.execute()
        deliveries = []
        for (entry_id, fields), info in zip(entries, counts, strict=True):
            times = int(info[0]["times_delivered"]) if info else 1
            if fields is None:
                # Redis 6.2 still lists an entry deleted from the stream; there is nothing left to run.
                logger.warning("pending entry %s has no content; acknowledging it", _text(entry_id))
                await self.ack(_text(entry_id))
                continue
            deliveries.append(_delivery(entry_id, fields, times))
        return next_cursor, deliveries

    async def touch(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries this consumer still runs, so that no one claims them.

        ``XCLAIM ... JUSTID`` to the same consumer changes nothing but the idle time, and does not
        count as a delivery.
        """
        if entry_ids:
            ids: list[Any] = list(entry_ids)
            await self.redis.xclaim(self.stream, self.group, consumer, 0, ids, justid=True)

    async def ack(self, entry_id: str) -> None:
        """Acknowledge and delete a finished entry, together."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()

    async def retry(self, entry_id: str, job: Job, delay: float) -> float:
        """Schedule ``job`` again with ``attempt + 1`` in ``delay`` seconds and acknowledge its entry; the due time.

        The member is the encoded next attempt, so scheduling the same failure twice (two consumers
        ran one entry) keeps one retry.
        """
        following = msgspec.structs.replace(job, attempt=job.attempt + 1)
        due = await self._retry(
            keys=[self.retry_key, self.stream],
            args=[repr(max(0.0, delay)), _ENCODER.encode(following), self.group, entry_id],
        )
        return float(due)

    async def promote(self, limit: int = 100) -> int:
        """Move up to ``limit`` due retries into the stream, atomically; how many moved."""
        return int(await self._promote(keys=[self.retry_key, self.stream], args=[limit]))

    async def retire(self, consumer: str) -> bool:
        """Remove ``consumer`` from the group if nothing is pending for it; True when removed or absent."""
        return int(await self._retire(keys=[self.stream], args=[self.group, consumer])) >= 0

    async def pending(self) -> int:
        """Entries delivered and not yet acknowledged, across all consumers (``XPENDING`` summary)."""
        try:
            summary = await self.redis.xpending(self.stream, self.group)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return 0
            raise
        return int(summary["pending"])

    async def retry_backlog(self) -> int:
        """Retries waiting for their due time (``ZCARD``)."""
        return int(await self.redis.zcard(self.retry_key))

    async def depth(self) -> int:
        """Entries in the stream, waiting or running (``XLEN``): acknowledged entries are deleted."""
        return int(await self.redis.xlen(self.stream))
