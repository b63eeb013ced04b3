"""Everything one billing sandbox holds, in memory, in one object kept on ``app.state.sandbox``.

All state lives in the one worker process: it is lost on restart and
re-created, deterministically, from the seed (:meth:`Sandbox.reset` does the
same on demand). Every change goes through :meth:`Sandbox.saved` (which feeds
the search index) and :meth:`Sandbox.emit` (which records the event and hands
it to the webhook dispatcher).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from system_apis.connectors.stripe.sandbox.config import read_secret
from system_apis.connectors.stripe.sandbox.faults import Counters, Faults
from system_apis.connectors.stripe.sandbox.idempotency import IdempotencyStore
from system_apis.connectors.stripe.sandbox.objects import (
    Charge,
    Customer,
    Event,
    Invoice,
    PaymentIntent,
    Record,
    WebhookEndpoint,
)
from system_apis.connectors.stripe.sandbox.responses import encode
from system_apis.connectors.stripe.sandbox.seed import seed_store
from system_apis.connectors.stripe.sandbox.store import Clock, Store, new_id, seeded_id
from system_apis.connectors.stripe.sandbox.webhooks import Dispatcher

if TYPE_CHECKING:
    from litestar import Request

    from system_apis.connectors.stripe.sandbox.config import BillingSandboxConfig, WebhookEndpointConfig
    from system_apis.connectors.stripe.sandbox.routing import Call

__all__ = ("EVENT_RETENTION", "SEARCHABLE", "Sandbox", "sandbox_of")

EVENT_RETENTION = 30 * 86400
"""Seconds events stay listable (Stripe keeps events 30 days)."""
SEARCHABLE = (Customer, Invoice, PaymentIntent, Charge)
"""Kinds with a ``…/search`` endpoint."""


class Sandbox:
    """The seeded account, its idempotency keys, events and webhook deliveries, the faults and the counters."""

    def __init__(self, config: BillingSandboxConfig) -> None:
        """A fresh sandbox; the secret key and the start endpoints' secrets are read now.

        Raises:
            SettingsError: a secret file is missing, unreadable, empty, or holds a live key.
        """
        self.config = config
        """Its configuration."""
        self.secret_key = read_secret(config.secret_key_file, "sk_test_", "secret key")
        """The one key the API accepts."""
        self._start_endpoints: list[tuple[WebhookEndpointConfig, str]] = [
            (endpoint, read_secret(endpoint.secret_file, "whsec_", "webhook signing secret"))
            for endpoint in config.webhook_endpoints
        ]
        self._fresh()

    def _fresh(self) -> None:
        """Everything but the configuration, as at start; one definition for start and reset."""
        self.counters = Counters()
        """What happened since start or reset."""
        self.faults = Faults(self.counters)
        """Fault injection."""
        self.clock = Clock()
        """The sandbox's time."""
        self.store = Store()
        """Every object."""
        self.idempotency = IdempotencyStore(self.clock, self.counters)
        """Saved results by ``Idempotency-Key``."""
        self.webhooks = Dispatcher(
            store=self.store,
            clock=self.clock,
            faults=self.faults,
            counters=self.counters,
            timings=self.config.webhooks,
        )
        """Webhook deliveries."""
        seed_store(self.store, self.config.seed_variant, self.clock.now())
        for record in list(self.store.objects.values()):
            if isinstance(record, SEARCHABLE):
                self.store.index(record, record.render(self.store), 0.0)
        for endpoint, secret in self._start_endpoints:
            self.store.add(
                WebhookEndpoint(
                    id=seeded_id("we", endpoint.url),
                    created=self.clock.now(),
                    url=endpoint.url,
                    secret=secret,
                    enabled_events=list(endpoint.enabled_events),
                    description=endpoint.description,
                )
            )

    def start(self) -> None:
        """Begin delivering webhooks (inside the running event loop)."""
        self.webhooks.start()

    async def reset(self) -> None:
        """Back to the state at start: fresh seed, no keys, no events, faults off, counters zero, clock and
        webhook endpoints and timings as configured; pending deliveries are dropped."""
        await self.webhooks.close()
        self._fresh()
        self.webhooks.start()

    async def close(self) -> None:
        """Stop delivering (app shutdown)."""
        await self.webhooks.close()

    def render(self, record: Record) -> dict[str, Any]:
        """``record`` as the API shows it (``{"id", "object", "deleted": true}`` once deleted)."""
        return record.render_deleted() if record.deleted else record.render(self.store)

    def saved(self, record: Record) -> None:
        """``record`` was created or changed: search sees the change once the ``search_lag`` fault allows."""
        if isinstance(record, SEARCHABLE):
            self.store.index(record, record.render(self.store), self.faults.config.search_lag)

    def emit(
        self,
        event_type: str,
        record: Record,
        call: Call | None,
        *,
        previous: dict[str, Any] | None = None,
        snapshot: dict[str, Any] | None = None,
    ) -> Event:
        """Record an event about ``record`` (as it is now, or as ``snapshot``) and schedule its deliveries."""
        data: dict[str, Any] = {"object": snapshot if snapshot is not None else self.render(record)}
        if previous is not None:
            data["previous_attributes"] = previous
        endpoints = [
            endpoint for endpoint in self.store.newest_first(WebhookEndpoint) if endpoint.wants(event_type)
        ]
        event = self.store.add(
            Event(
                id=new_id("evt"),
                created=self.clock.now(),
                type=event_type,
                data=data,
                request_id=call.request_id if call else None,
                idempotency_key=call.idempotency_key if call else None,
                pending_webhooks=len(endpoints),
            )
        )
        self.counters.events += 1
        self.webhooks.enqueue(event, encode(event.render(self.store)), endpoints)
        return event

    def live_events(self) -> list[Event]:
        """Events of the last 30 days, newest first."""
        oldest = self.clock.now() - EVENT_RETENTION
        return [event for event in self.store.newest_first(Event) if event.created >= oldest]


def sandbox_of(request: Request[Any, Any, Any]) -> Sandbox:
    """The sandbox of the app serving ``request``."""
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox
