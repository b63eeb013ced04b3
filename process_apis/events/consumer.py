"""The stream consumer: reads the system layer's event streams through one consumer group.

Every replica joins group ``settings.event_consumer.group`` on each stream of
:data:`shared.events.STREAMS` under a consumer name of its own; Redis hands
each entry to one of them. An entry is acknowledged, and deleted (``XACK`` and
``XDEL`` in one ``MULTI``: the stream is a queue, and the system layer's
back-pressure reads its length), only after :meth:`EventIntake.accept` recorded
the event in the ledger and queued its job. Entries of a consumer that died
stay pending; every ``claim_after / 3`` seconds each consumer takes over those
idle longer than ``claim_after`` (``XAUTOCLAIM``) and accepts them again, which
the inbox makes harmless.

An entry that does not decode as the published schema cannot be retried into
shape: it goes to the ledger's dead letters with its raw fields (flow
``source-events``, kind ``malformed-event``) and is acknowledged.

The group is created at ``0`` the first time, so events appended before any
consumer ever ran are read too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final, Self, cast

import msgspec
from redis.exceptions import RedisError, ResponseError

from shared.canonical import decode
from shared.events import FIELD, STREAMS, SourceEvent

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    import redis.asyncio as aioredis

    from process_apis.events.intake import EventIntake
    from process_apis.events.metrics import EventMetrics
    from process_apis.ledger.store import LedgerStore

__all__ = ("EVENTS_FLOW", "MALFORMED_EVENT", "StreamConsumer")

logger = logging.getLogger("finsync.events.consumer")

EVENTS_FLOW: Final = "source-events"
"""The ledger's flow name for the event path (dead letters, exceptions, replay runs)."""
MALFORMED_EVENT: Final = "malformed-event"
"""Dead-letter kind of a stream entry that did not decode."""
_FIELD_BYTES: Final = FIELD.encode()
_REDIS_PAUSE: Final = 1.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StreamConsumer:
    """Consumes the event streams into the intake; ``await start()`` / ``await stop()``, or ``async with``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        intake: EventIntake,
        store: LedgerStore,
        metrics: EventMetrics,
        *,
        consumer: str,
        group: str = "process",
        streams: Mapping[str, str] = STREAMS,
        batch: int = 100,
        block: float = 1.0,
        claim_after: float = 60.0,
    ) -> None:
        """Configure the consumer (no I/O).

        Args:
            redis: The Redis the system layer appends to.
            intake: Where decoded events go.
            store: The ledger, for the dead letters of malformed entries.
            metrics: Counters of malformed entries.
            consumer: This process's name in the group.
            group: The group every replica joins.
            streams: The streams to read, by source kind.
            batch: Entries read at once.
            block: Longest wait of one read, in seconds.
            claim_after: Seconds an entry may stay pending before another consumer claims it.
        """
        self.redis = redis
        """The client every command goes through."""
        self.consumer = consumer
        """This process's name in the group."""
        self.group = group
        """The consumer group."""
        self.streams = dict(streams)
        """The streams read, by source kind."""
        self.claimed = 0
        """Entries taken over from consumers that stopped answering, since start."""
        self._intake = intake
        self._store = store
        self._metrics = metrics
        self._batch = batch
        self._block = block
        self._claim_after = claim_after
        self._cursors = dict.fromkeys(self.streams.values(), "0-0")
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    async def ensure_groups(self) -> None:
        """Create each stream's group unless it exists (and the stream, if the system layer has not yet)."""
        for stream in self.streams.values():
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def start(self) -> None:
        """Join the groups and start reading and claiming."""
        if self._loops:
            raise RuntimeError(f"consumer {self.consumer!r} already started")
        await self.ensure_groups()
        self._stopping.clear()
        self._loops = [
            asyncio.create_task(self._read_loop(), name=f"events-read-{self.consumer}"),
            asyncio.create_task(self._claim_loop(), name=f"events-claim-{self.consumer}"),
        ]

    async def stop(self) -> None:
        """Stop after the read in flight and the entries it returned; unacknowledged ones stay pending."""
        if not self._loops:
            return
        self._stopping.set()
        await asyncio.gather(*self._loops)
        self._loops = []
        with contextlib.suppress(RedisError):
            for stream in self.streams.values():
                await self._retire(stream)

    async def __aenter__(self) -> Self:
        """Start the consumer."""
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the consumer."""
        await self.stop()

    async def _retire(self, stream: str) -> None:
        """Leave the group unless entries are pending for this consumer (deleting it would drop them)."""
        mine = await self.redis.xpending_range(stream, self.group, "-", "+", 1, consumername=self.consumer)
        if not mine:
            await self.redis.xgroup_delconsumer(stream, self.group, self.consumer)

    async def _read_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.read_once()
            except RedisError as exc:
                logger.warning("%s: reading events failed: %s", self.consumer, exc)
                await self._pause(_REDIS_PAUSE)

    async def _claim_loop(self) -> None:
        while not await self._pause(self._claim_after / 3):
            try:
                await self.claim_once()
            except RedisError as exc:
                logger.warning("%s: claiming events failed: %s", self.consumer, exc)

    async def _pause(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def read_once(self) -> int:
        """One ``XREADGROUP >`` over every stream, each entry accepted and acknowledged; how many were read."""
        try:
            answer = await self._read()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_groups()  # a stream deleted under us (FLUSHALL): make it again and go on
            answer = await self._read()
        read = 0
        for stream, entries in cast("list[list[Any]]", answer or []):
            for entry_id, fields in entries:
                read += 1
                await self._handle(_text(stream), _text(entry_id), fields)
        return read

    async def _read(self) -> Any:
        return await self.redis.xreadgroup(
            self.group,
            self.consumer,
            dict.fromkeys(self.streams.values(), ">"),
            count=self._batch,
            block=max(1, int(self._block * 1000)),
        )

    async def claim_once(self) -> int:
        """Take over and accept the entries idle past ``claim_after`` on every stream; how many."""
        claimed = 0
        for stream in self.streams.values():
            answer = await self.redis.xautoclaim(
                stream,
                self.group,
                self.consumer,
                int(self._claim_after * 1000),
                start_id=self._cursors[stream],
                count=self._batch,
            )
            self._cursors[stream] = _text(answer[0])
            for entry_id, fields in cast("list[tuple[bytes, dict[bytes, bytes] | None]]", answer[1]):
                claimed += 1
                logger.info("%s: claimed event entry %s of %s", self.consumer, _text(entry_id), stream)
                await self._handle(stream, _text(entry_id), fields)
        self.claimed += claimed
        return claimed

    async def _handle(self, stream: str, entry_id: str, fields: dict[bytes, bytes] | None) -> None:
        """Accept one entry and acknowledge it; leave it pending when the ledger or the queue failed."""
        if fields is None:
            # Redis 6.2 still lists a pending entry deleted from the stream: nothing is left to accept.
            await self._ack(stream, entry_id)
            return
        raw = fields.get(_FIELD_BYTES)
        if raw is None:
            await self._bury(stream, entry_id, fields, f"entry has no {FIELD!r} field")
            return
        try:
            event = decode(raw, SourceEvent)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._bury(stream, entry_id, fields, str(exc))
            return
        try:
            await self._intake.accept(event)
        except Exception:
            logger.exception(
                "%s: event %s (%s) not accepted; left pending", self.consumer, event.id, entry_id
            )
            return
        await self._ack(stream, entry_id)

    async def _bury(self, stream: str, entry_id: str, fields: dict[bytes, bytes], reason: str) -> None:
        shown = {_text(key): value.decode(errors="replace") for key, value in fields.items()}
        try:
            await self._store.add_dead_letter(
                flow=EVENTS_FLOW,
                job_kind=MALFORMED_EVENT,
                job_id=f"{stream}:{entry_id}",
                payload={"stream": stream, "entry_id": entry_id, "fields": shown},
                reason=f"not a SourceEvent: {reason}",
                attempts=0,
            )
        except Exception:
            logger.exception(
                "%s: dead letter of malformed entry %s not stored; left pending", self.consumer, entry_id
            )
            return
        self._metrics.malformed.labels(stream).inc()
        logger.warning(
            "%s: malformed entry %s of %s dead-lettered: %s", self.consumer, entry_id, stream, reason
        )
        await self._ack(stream, entry_id)

    async def _ack(self, stream: str, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self.group, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
