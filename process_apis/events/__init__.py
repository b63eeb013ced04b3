"""The process layer's half of the event path: the system layer's streams, consumed exactly once in effect.

- :mod:`~process_apis.events.consumer`: :class:`StreamConsumer` reads the
  published streams through one consumer group, claims the entries of dead
  consumers, and acknowledges an entry only once the intake took it.
- :mod:`~process_apis.events.intake`: :class:`EventIntake` records each event
  once in the ledger's inbox (by id and by dedupe key) and queues its job.
- :mod:`~process_apis.events.processing`: :class:`EventProcessor` runs the
  handlers as jobs of the event queue, with retries, exceptions, dead letters
  and replays.
- :mod:`~process_apis.events.handlers`: the registry flows subscribe to, and
  :func:`record_state`, the newest state per business object.
- :mod:`~process_apis.events.sweep`: :class:`CatchUpSweep`, the durability
  guarantee: changes read through the system layer's API into the same intake.
- :mod:`~process_apis.events.metrics` and :mod:`~process_apis.events.runtime`:
  what ``/metrics`` shows, and how it all starts with the service.
"""

from __future__ import annotations

from process_apis.events.consumer import EVENTS_FLOW, MALFORMED_EVENT, StreamConsumer
from process_apis.events.handlers import EventHandler, EventHandlers, EventRejectedError, record_state
from process_apis.events.intake import EVENT_JOB, EventIntake
from process_apis.events.metrics import EventMetrics
from process_apis.events.processing import EVENT_JOBS, EventBusyError, EventProcessor
from process_apis.events.runtime import EventPath, events_runtime
from process_apis.events.sweep import SWEEP_JOB, CatchUpSweep, booking_event

__all__ = (
    "EVENTS_FLOW",
    "EVENT_JOB",
    "EVENT_JOBS",
    "MALFORMED_EVENT",
    "SWEEP_JOB",
    "CatchUpSweep",
    "EventBusyError",
    "EventHandler",
    "EventHandlers",
    "EventIntake",
    "EventMetrics",
    "EventPath",
    "EventProcessor",
    "EventRejectedError",
    "StreamConsumer",
    "booking_event",
    "events_runtime",
    "record_state",
)
