"""Stripe events as canonical :class:`~shared.events.SourceEvent` objects (pure: no I/O).

The same function serves a webhook delivery and the catch-up read of
``/v1/events``, so both give one event the same ``id`` and ``dedupe_key``
(``{source}:{evt id}``): a consumer applies it once, whichever way it came.
Only ``invoice.*`` events of a type in :class:`~shared.events.EventType` become
events; the invoice in them is mapped by :func:`.mapping.invoice_record`, so
amounts are converted from minor units exactly as every other read converts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

import msgspec

from shared.events import EventType, InvoiceChange, SourceEvent
from system_apis.connectors.stripe import wire
from system_apis.connectors.stripe.mapping import invoice_record, unix

if TYPE_CHECKING:
    from datetime import datetime

    from system_apis.connectors.stripe.mapping import Rules

__all__ = ("EVENTS", "EVENT_TYPES", "event_type", "source_event")

EVENT_TYPES: Final = {
    event_type.value.removeprefix("billing."): event_type
    for event_type in EventType
    if event_type.value.startswith("billing.invoice.")
}
"""Stripe's event types that make events (``invoice.paid``), with the event type each makes."""
EVENTS: Final = msgspec.json.Decoder(wire.Event)
"""Decodes a webhook delivery's body."""
_INVOICE: Final = msgspec.json.Decoder(wire.Invoice)


def event_type(event: wire.Event) -> EventType | None:
    """The canonical type of a Stripe event, or ``None`` when finsync makes no event of it."""
    return EVENT_TYPES.get(event.type)


def source_event(
    rules: Rules, event: wire.Event, received_at: datetime, via: Literal["push", "sweep"] = "push"
) -> SourceEvent | None:
    """The canonical event of a Stripe event; ``None`` for a type finsync makes no event of.

    Raises:
        msgspec.ValidationError: the event's object is not an invoice Stripe's way.
        UnknownCurrencyError: the invoice's currency is not an ISO 4217 code.
    """
    kind = event_type(event)
    if kind is None:
        return None
    invoice = invoice_record(rules, _INVOICE.decode(event.data.object), [], {})
    source = rules.source
    return SourceEvent(
        id=f"{source}:{event.id}",
        type=kind,
        source=source,
        kind="billing",
        dedupe_key=f"{source}:{event.id}",
        ordering_key=f"billing:{source}:invoice:{invoice.source_ref}",
        occurred_at=unix(event.created),
        received_at=received_at,
        via=via,
        invoice=InvoiceChange(
            invoice_ref=invoice.source_ref,
            customer_ref=invoice.customer_ref,
            booking_ref=invoice.booking_ref,
            business_ref=invoice.external_ref,
            entity=invoice.entity,
            number=invoice.number,
            status=invoice.status,
            currency=invoice.currency,
            total=invoice.total,
            amount_due=invoice.amount_due,
            amount_paid=invoice.amount_paid,
            amount_remaining=invoice.amount_remaining,
            finalized_at=invoice.finalized_at,
            paid_at=invoice.paid_at,
            voided_at=invoice.voided_at,
        ),
    )
