"""The one way into the process layer for a source event, pushed or swept: record it, then queue its job.

A stream entry is acknowledged only after :meth:`EventIntake.accept` returned:
by then the event is in the ledger's inbox and its job is in the event queue,
so a crash at any point either leaves the entry pending (it is claimed and
accepted again, which changes nothing) or has done both.

An event the inbox already holds is queued again only while it is still
``received``: the consumer that recorded it may have died before queueing it.
The queue's own dedupe marker (job id = event id) makes that second enqueue a
no-op when the first one happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from process_apis.events.metrics import EventMetrics
    from process_apis.jobs import JobQueue
    from process_apis.ledger.inbox import EventInbox
    from shared.events import SourceEvent

__all__ = ("EVENT_JOB", "EventIntake")

EVENT_JOB: Final = "source-event"
"""Job kind of one event's handling; payload ``{"event_id": ...}`` (and ``"run_id"`` on a replay)."""
_MARKER_TTL: Final = 7 * 86400
"""Seconds an event's job id stays marked as queued: longer than every retry of it takes."""


class EventIntake:
    """Records events in the inbox and queues their jobs."""

    def __init__(self, inbox: EventInbox, queue: JobQueue, metrics: EventMetrics) -> None:
        """Record into ``inbox``, queue into ``queue``, count into ``metrics``."""
        self.inbox = inbox
        """The ledger's inbox."""
        self.queue = queue
        """The event job queue."""
        self._metrics = metrics

    async def accept(self, event: SourceEvent) -> bool:
        """Record ``event`` once and queue its handling; whether it was new (not a duplicate)."""
        record, new = await self.inbox.record(event, msgspec.to_builtins(event))
        if record.status == "received":
            await self.queue.enqueue(
                EVENT_JOB, {"event_id": record.id}, job_id=record.id, dedupe_ttl=_MARKER_TTL
            )
        self._metrics.accepted.labels(event.kind, event.via, "new" if new else "duplicate").inc()
        return new
