"""Prometheus figures of the event path, on the process layer's ``/metrics``.

Gauges are sampled from Redis every ``metrics_interval`` seconds (a scrape
cannot wait on Redis): per stream its depth (``XLEN``; the consumer deletes
what it acknowledged, so this is the backlog), its pending entries
(``XPENDING``: read and not yet acknowledged) and the group's lag (``XINFO
GROUPS`` on Redis 7 or later; before it, the depth less the pending entries,
which is the same figure since acknowledged entries are deleted), and the event job
queue's depth and waiting retries. Counters count as things happen.

In multiprocess mode every worker samples the same Redis, so the gauges keep
the most recent sample (``mostrecent``) instead of one series per pid.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import redis.asyncio as aioredis

    from process_apis.jobs import JobQueue

__all__ = ("EventMetrics",)

logger = logging.getLogger("finsync.events.metrics")


def _gauge(name: str, documentation: str, labels: tuple[str, ...], registry: CollectorRegistry) -> Gauge:
    return Gauge(name, documentation, labels, registry=registry, multiprocess_mode="mostrecent")


class EventMetrics:
    """The event path's metrics, registered on one registry (a private one when metrics are off)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        """Register every metric on ``registry``."""
        registry = registry if registry is not None else CollectorRegistry()
        self.stream_length = _gauge(
            "finsync_event_stream_length",
            "Entries in an event stream (XLEN): its backlog.",
            ("stream",),
            registry,
        )
        self.stream_pending = _gauge(
            "finsync_event_stream_pending",
            "Entries of an event stream read by a consumer and not yet acknowledged (XPENDING).",
            ("stream",),
            registry,
        )
        self.stream_lag = _gauge(
            "finsync_event_stream_lag",
            "Entries of an event stream the consumer group has not read yet.",
            ("stream",),
            registry,
        )
        self.jobs_waiting = _gauge(
            "finsync_event_jobs_waiting",
            "Event jobs waiting or running (XLEN of the event job queue).",
            (),
            registry,
        )
        self.retries_waiting = _gauge(
            "finsync_event_retries_waiting", "Event jobs waiting for their retry's due time.", (), registry
        )
        self.accepted = Counter(
            "finsync_events_accepted",
            "Events recorded in the inbox, by kind, how they came (push, sweep) and outcome (new, duplicate).",
            ("kind", "via", "outcome"),
            registry=registry,
        )
        self.malformed = Counter(
            "finsync_events_malformed",
            "Stream entries that did not decode as the published schema (sent to the dead letters).",
            ("stream",),
            registry=registry,
        )
        self.processed = Counter(
            "finsync_events_processed",
            "Events whose handlers finished, by type.",
            ("type",),
            registry=registry,
        )
        self.retries = Counter(
            "finsync_events_retries",
            "Failed attempts of an event's handlers that are tried again.",
            (),
            registry=registry,
        )
        self.rejected = Counter(
            "finsync_events_rejected",
            "Events sent to the exception queue by a business failure, by reason.",
            ("reason",),
            registry=registry,
        )
        self.dead_letters = Counter(
            "finsync_events_dead_letters",
            "Events that failed every attempt (dead letters).",
            (),
            registry=registry,
        )

    async def sample(
        self, redis: aioredis.Redis, streams: Mapping[str, str], group: str, queue: JobQueue
    ) -> None:
        """Read the gauges' values from Redis; a failure is logged and leaves the last values."""
        try:
            for stream in streams.values():
                await self._sample_stream(redis, stream, group)
            self.jobs_waiting.set(await redis.xlen(queue.stream))
            self.retries_waiting.set(await queue.retry_backlog())
        except RedisError as exc:
            logger.warning("sampling the event metrics failed: %s", exc)

    async def _sample_stream(self, redis: aioredis.Redis, stream: str, group: str) -> None:
        length = await redis.xlen(stream)
        self.stream_length.labels(stream).set(length)
        try:
            groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
        except ResponseError:
            return  # no stream yet: nothing is pending
        for info in groups:
            name = info.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != group:
                continue
            pending = int(info.get("pending") or 0)
            self.stream_pending.labels(stream).set(pending)
            lag = info.get("lag")
            # Before Redis 7 there is no ``lag``; as acknowledged entries are deleted, the stream holds exactly
            # the pending entries and those not read yet, so the difference is the lag.
            self.stream_lag.labels(stream).set(int(lag) if lag is not None else max(length - pending, 0))
