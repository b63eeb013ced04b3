"""The catch-up sweep: changes read through the system layer's HTTP API, into the same intake as pushes.

Pushes can be lost: turned away under back-pressure, or in the last second
before a hard Redis kill. The sweep reads what changed at the sources, through
the system layer's own change feeds, on a schedule, and hands each change to
:class:`~process_apis.events.intake.EventIntake` like a pushed one. The inbox
de-duplicates by dedupe key, so a change both pushed and swept counts once.

- **CRM** (``GET /v1/crm/{source}/bookings``): the read goes on from the
  ``sync_cursor`` of the last sweep, which the system layer made to return every
  booking changed since, late commits included. Each booking becomes a
  ``crm.booking.changed`` event whose id and dedupe key are
  ``{source}:booking:{source_ref}:{modified_at}`` (UTC, as the event's JSON
  writes it: ``2026-03-31T17:45:00Z``): one key per version of the booking, the
  same as the outbound message of that version gets at the system layer.
- **Billing** (``GET /v1/billing/{source}/events``): the system layer answers
  the events a webhook would have pushed, with the same ids and dedupe keys,
  created since the newest one the last sweep saw, less ``sweep_overlap``.

Where each source's sweep stands is kept in Redis under
``finsync:process:events:sweep:{kind}:{source}``. A source swept for the first
time (or whose cursor the system layer no longer knows) is read from
``sweep_since`` ago. A sweep runs as a job of the event queue, fired by the
schedule on one replica per tick, so it gets the queue's retries; a lock per
source keeps two sweeps of one source from overlapping.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from redis.asyncio.lock import Lock

from shared import errors
from shared.events import BookingChange, EventType, SourceEvent
from shared.settings import duration_seconds

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from process_apis.clients.system import SystemClient
    from process_apis.events.intake import EventIntake
    from process_apis.jobs import Job
    from shared.canonical import Booking
    from shared.settings import EventConsumerSettings

__all__ = ("SWEEP_JOB", "CatchUpSweep", "booking_event")

logger = logging.getLogger("finsync.events.sweep")

SWEEP_JOB: Final = "events-sweep"
"""Job kind of one sweep of every configured source."""
SWEEP_PREFIX: Final = "finsync:process:events:sweep"
"""Prefix of the keys where each source's sweep stands."""


def _iso(at: datetime) -> str:
    """``at`` in UTC as the event's JSON writes it (``2026-03-31T17:45:00Z``), as the push's dedupe key has it."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def booking_event(booking: Booking, received_at: datetime) -> SourceEvent:
    """The ``crm.booking.changed`` event of one version of ``booking``, as the sweep found it."""
    key = f"{booking.source}:booking:{booking.source_ref}:{_iso(booking.modified_at)}"
    return SourceEvent(
        id=key,
        type=EventType.BOOKING_CHANGED,
        source=booking.source,
        kind="crm",
        dedupe_key=key,
        ordering_key=f"crm:{booking.source}:booking:{booking.source_ref}",
        occurred_at=booking.modified_at,
        received_at=received_at,
        via="sweep",
        booking=BookingChange(
            booking_ref=booking.source_ref,
            name=booking.name,
            customer_ref=booking.customer_ref,
            entity=booking.entity,
            status=booking.status,
            stage=booking.stage,
            close_date=booking.close_date,
            amount=booking.amount,
            currency=booking.currency,
            modified_at=booking.modified_at,
        ),
    )


class CatchUpSweep:
    """Sweeps the configured CRM and billing sources into the intake."""

    def __init__(
        self,
        system: SystemClient,
        redis: aioredis.Redis,
        intake: EventIntake,
        settings: EventConsumerSettings,
    ) -> None:
        """Read through ``system``, keep positions in ``redis``, hand changes to ``intake``."""
        self._system = system
        self._redis = redis
        self._intake = intake
        self._settings = settings

    @property
    def configured(self) -> bool:
        """Whether any source is to be swept."""
        return bool(self._settings.crm_sources or self._settings.billing_sources)

    def position_key(self, kind: str, source: str) -> str:
        """Where the sweep of ``source`` keeps its position."""
        return f"{SWEEP_PREFIX}:{kind}:{source}"

    async def handle(self, job: Job) -> None:
        """The sweep job: every configured source, each under its lock."""
        await self.run()

    async def run(self) -> dict[str, int]:
        """Sweep every configured source once; the new events found, by ``{kind}:{source}``.

        A source that fails is logged and the others are still swept; the job fails at the end, so the
        queue retries the sweep (the sources done already find nothing new).
        """
        found: dict[str, int] = {}
        failures: list[str] = []
        sweeps = [("crm", source, self.sweep_crm) for source in self._settings.crm_sources] + [
            ("billing", source, self.sweep_billing) for source in self._settings.billing_sources
        ]
        for kind, source, sweep in sweeps:
            lock = Lock(self._redis, f"{self.position_key(kind, source)}:lock", timeout=600, blocking=False)
            if not await lock.acquire():
                logger.info("sweep of %s %s is running elsewhere", kind, source)
                continue
            try:
                found[f"{kind}:{source}"] = await sweep(source)
            except errors.FinsyncError as exc:
                logger.warning("sweep of %s %s failed: %s", kind, source, exc)
                failures.append(f"{kind}:{source}: {exc}")
            finally:
                await lock.release()
        if failures:
            raise errors.UpstreamUnavailableError("; ".join(failures))
        return found

    def _start(self) -> datetime:
        return datetime.now(UTC) - timedelta(seconds=duration_seconds(self._settings.sweep_since))

    async def sweep_crm(self, source: str) -> int:
        """Read the bookings changed since the last sweep of ``source``; the new events."""
        key = self.position_key("crm", source)
        stored = await self._redis.get(key)
        kept = stored.decode() if isinstance(stored, bytes) else stored
        cursor, since = (kept, None) if kept else (None, self._start())
        new = 0
        while True:
            try:
                page = await self._system.booking_changes(source, cursor=cursor, modified_since=since)
            except errors.UpstreamRejectedError as exc:
                if cursor is None or cursor != kept:
                    raise
                # The system layer no longer knows the kept cursor (it expired): read again from the start.
                logger.warning(
                    "sync cursor of %s refused (%s); sweeping from %s ago",
                    source,
                    exc,
                    self._settings.sweep_since,
                )
                cursor, since, kept = None, self._start(), None
                continue
            received = datetime.now(UTC)
            for booking in page.items:
                new += await self._intake.accept(booking_event(booking, received))
            if page.next_cursor is not None:
                cursor = page.next_cursor
                continue
            if page.sync_cursor is not None:
                await self._redis.set(key, page.sync_cursor)
            return new

    async def sweep_billing(self, source: str) -> int:
        """Read the billing events created since the newest the last sweep of ``source`` saw; the new ones."""
        key = self.position_key("billing", source)
        stored = await self._redis.get(key)
        newest = (
            datetime.fromisoformat(stored.decode() if isinstance(stored, bytes) else stored)
            if stored
            else None
        )
        since = newest - timedelta(seconds=self._settings.sweep_overlap) if newest else self._start()
        cursor: str | None = None
        new = 0
        while True:
            page = await self._system.billing_events(source, created_since=since, cursor=cursor)
            for event in page.items:
                new += await self._intake.accept(event)
                if newest is None or event.occurred_at > newest:
                    newest = event.occurred_at
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        if newest is not None:
            await self._redis.set(key, _iso(newest))
        return new
