"""Webhook deliveries: signed as Stripe signs them, retried while they fail, duplicated or reordered on request.

Every event goes to every enabled endpoint that wants its type. A delivery is
a ``POST`` of the event's JSON (fixed when the event is created) with:

- ``Stripe-Signature: t=<unix>,v1=<hex>``, where ``<hex>`` is HMAC-SHA256 of
  ``"{t}.{body}"`` under the endpoint's secret (``whsec_…``), and ``t`` is the
  sandbox's clock at the attempt (so advancing the clock skews it);
- ``Content-Type: application/json; charset=utf-8`` and ``X-Sandbox: stripe``.

Any 2xx counts as delivered; redirects are not followed. Anything else (an
error status, a refused connection, a timeout) is retried after
``retry_base * retry_factor^n`` seconds until ``retry_horizon`` has passed
since the first attempt, then abandoned. An endpoint that is deleted or
disabled meanwhile gets no further attempts. ``pending_webhooks`` on the event
counts the endpoints that have not yet acknowledged it.

The faults ``webhook_duplicates`` (a delivered event is sent once more) and
``webhook_reorder_window`` (each new delivery first waits a random while)
reproduce what Stripe warns about: deliveries can repeat and arrive out of
order, so receivers dedupe on ``event.id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import hmac
import itertools
import logging
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from system_apis.connectors.stripe.sandbox.config import WebhookTimings
    from system_apis.connectors.stripe.sandbox.faults import Counters, Faults
    from system_apis.connectors.stripe.sandbox.objects import Event, WebhookEndpoint
    from system_apis.connectors.stripe.sandbox.store import Clock, Store

__all__ = ("MAX_CONCURRENT_ATTEMPTS", "USER_AGENT", "Delivery", "Dispatcher", "sign", "signature_header")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
"""The ``User-Agent`` of deliveries, as Stripe sends it."""
MAX_CONCURRENT_ATTEMPTS = 8
"""Attempts in flight at once."""
_DUPLICATE_AFTER = 0.05
"""Seconds between a delivery and its injected duplicate."""

logger = logging.getLogger("finsync.billing_sandbox")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Stripe-Signature`` value: ``t=<timestamp>,v1=<signature>``."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


@dataclass(kw_only=True, eq=False)
class Delivery:
    """One event on its way to one endpoint."""

    id: int
    """Its number, in order of creation."""
    event: Event
    """The event."""
    endpoint: WebhookEndpoint
    """Where it goes."""
    body: bytes = field(repr=False)
    """The exact bytes sent (and signed)."""
    duplicate: bool = False
    """An injected second copy of a delivered event."""
    attempts: int = 0
    """Attempts made."""
    first_attempt: float | None = None
    """Monotonic time of the first attempt."""
    state: str = "pending"
    """``pending``, ``delivered`` or ``abandoned``."""


class Dispatcher:
    """Schedules and makes delivery attempts in the app's event loop."""

    def __init__(
        self, *, store: Store, clock: Clock, faults: Faults, counters: Counters, timings: WebhookTimings
    ):
        """Nothing scheduled; :meth:`start` begins the loop."""
        self.store = store
        self.clock = clock
        self.faults = faults
        self.counters = counters
        self.timings = timings
        """Retry timings (the control API can replace them)."""
        self.attempts: list[dict[str, Any]] = []
        """Every attempt, in order: what ``GET /sandbox/webhooks/deliveries`` shows."""
        self.deliveries: list[Delivery] = []
        """Every delivery, duplicates included."""
        self._queue: list[tuple[float, int, Delivery]] = []
        self._ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._attempt_tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_ATTEMPTS)
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        """Begin delivering (inside the running event loop)."""
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="billing-sandbox-webhooks")

    async def close(self) -> None:
        """Stop delivering; pending deliveries are dropped."""
        tasks = [*self._attempt_tasks, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    def enqueue(self, event: Event, body: bytes, endpoints: list[WebhookEndpoint]) -> None:
        """Schedule ``event`` (already encoded as ``body``) for each of ``endpoints``."""
        for endpoint in endpoints:
            delivery = Delivery(id=next(self._ids), event=event, endpoint=endpoint, body=body)
            self.deliveries.append(delivery)
            self._schedule(delivery, self.faults.reorder_delay())

    def pending(self) -> int:
        """Deliveries not yet delivered nor abandoned."""
        return sum(1 for delivery in self.deliveries if delivery.state == "pending")

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay, delivery.id, delivery))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            while self._queue and self._queue[0][0] <= now:
                _, _, delivery = heapq.heappop(self._queue)
                task = asyncio.get_running_loop().create_task(self._attempt(delivery))
                self._attempt_tasks.add(task)
                task.add_done_callback(self._attempt_tasks.discard)
            self._wake.clear()
            timeout = self._queue[0][0] - now if self._queue else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _attempt(self, delivery: Delivery) -> None:
        endpoint = self.store.objects.get(delivery.endpoint.id)
        if endpoint is None or endpoint.deleted or delivery.endpoint.status != "enabled":
            delivery.state = "abandoned"
            return
        async with self._slots:
            await self._send(delivery)

    async def _send(self, delivery: Delivery) -> None:
        assert self._client is not None
        timestamp = self.clock.now()
        started = time.monotonic()
        delivery.first_attempt = delivery.first_attempt or started
        delivery.attempts += 1
        retry = delivery.attempts > 1
        self.counters.webhook_attempts += 1
        self.counters.webhook_retries += retry
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                delivery.endpoint.url,
                content=delivery.body,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": signature_header(delivery.endpoint.secret, timestamp, delivery.body),
                    "User-Agent": USER_AGENT,
                    "X-Sandbox": "stripe",
                },
                timeout=self.timings.timeout,
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        delivered = status is not None and 200 <= status < 300
        self.attempts.append(
            {
                "delivery": delivery.id,
                "event": delivery.event.id,
                "type": delivery.event.type,
                "endpoint": delivery.endpoint.id,
                "attempt": delivery.attempts,
                "retry": retry,
                "duplicate": delivery.duplicate,
                "timestamp": timestamp,
                "status": status,
                "error": error,
                "delivered": delivered,
            }
        )
        if delivered:
            self._delivered(delivery)
            return
        self.counters.webhook_failed_attempts += 1
        if delivery.duplicate:
            delivery.state = "abandoned"
            return
        wait = self.timings.retry_base * self.timings.retry_factor ** (delivery.attempts - 1)
        if time.monotonic() + wait - delivery.first_attempt > self.timings.retry_horizon:
            delivery.state = "abandoned"
            self.counters.webhook_abandoned += 1
            logger.warning(
                "billing sandbox: gave up delivering %s to %s after %d attempts",
                delivery.event.id,
                delivery.endpoint.url,
                delivery.attempts,
            )
            return
        self._schedule(delivery, wait)

    def _delivered(self, delivery: Delivery) -> None:
        self.counters.webhook_delivered += 1
        delivery.state = "delivered"
        if delivery.duplicate:
            return
        delivery.event.pending_webhooks = max(delivery.event.pending_webhooks - 1, 0)
        if self.faults.duplicate():
            copy = Delivery(
                id=next(self._ids),
                event=delivery.event,
                endpoint=delivery.endpoint,
                body=delivery.body,
                duplicate=True,
            )
            self.deliveries.append(copy)
            self._schedule(copy, _DUPLICATE_AFTER)
