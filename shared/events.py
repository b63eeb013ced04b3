"""The published event contract: the canonical events the system layer puts on its streams.

Sources push changes (Stripe's signed webhooks, Salesforce's outbound
messages). The system layer verifies each push, turns it into a
:class:`SourceEvent` and appends it to a durable Redis stream *before* the
source gets its acknowledgement. The process layer consumes those streams
through a consumer group. The stream names, the event schema and the delivery
semantics below are a contract owned by the system layer; the schema is
generated into ``openapi/events.json`` and checked for drift.

Delivery semantics:

- **At least once.** A source retries what it did not see acknowledged, and a
  consumer may crash after its effect but before its ``XACK``. Consumers
  de-duplicate by :attr:`SourceEvent.dedupe_key` (the source's own event or
  notification id, unique per source).
- **Not in order.** Sources reorder their deliveries, and a consumer group
  hands any entry to any consumer. :attr:`SourceEvent.ordering_key` names the
  business object an event is about; work that depends on order locks it, or
  is a state machine that does not care about arrival order. ``occurred_at``
  says when the source changed the object.
- **Not everything.** A push can be lost (turned away under back-pressure, or
  in the last second before a hard Redis kill). The consumer's catch-up sweep,
  through the sources' own change feeds, is the durability guarantee.

Each stream entry has one field, :data:`FIELD`, holding the event as JSON.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final, Literal

from shared.canonical.billing import BillingInvoiceStatus
from shared.canonical.crm import BookingStatus
from shared.canonical.fields import Code, Name, SourceId, SourceRef, UtcDateTime
from shared.canonical.money import Amount, CurrencyCode
from shared.canonical.records import CanonicalStruct

__all__ = (
    "FIELD",
    "STREAMS",
    "BookingChange",
    "EventType",
    "InvoiceChange",
    "SourceEvent",
    "stream_of",
)

STREAMS: Final[dict[str, str]] = {
    "crm": "finsync:events:crm",
    "billing": "finsync:events:billing",
}
"""The stream of each source kind's events."""
FIELD: Final = "event"
"""The one field of a stream entry: the event as JSON."""


class EventType(StrEnum):
    """What happened, as ``{kind}.{object}.{change}``."""

    BOOKING_CHANGED = "crm.booking.changed"
    INVOICE_CREATED = "billing.invoice.created"
    INVOICE_UPDATED = "billing.invoice.updated"
    INVOICE_FINALIZED = "billing.invoice.finalized"
    INVOICE_PAID = "billing.invoice.paid"
    INVOICE_PAYMENT_FAILED = "billing.invoice.payment_failed"
    INVOICE_VOIDED = "billing.invoice.voided"
    INVOICE_MARKED_UNCOLLECTIBLE = "billing.invoice.marked_uncollectible"


class BookingChange(CanonicalStruct, kw_only=True, frozen=True):
    """A deal as the CRM pushed it: the fields its notification carries (no lines; read the booking for them)."""

    booking_ref: SourceRef
    """The CRM's id of the deal (the opportunity)."""
    name: Name | None = None
    """The deal's name."""
    customer_ref: SourceRef | None = None
    """The CRM's id of the account."""
    entity: Code | None = None
    """Code of the legal entity that sells, when the notification carries it."""
    status: BookingStatus
    """Open, won or lost."""
    stage: Name | None = None
    """The CRM's own stage name."""
    close_date: date | None = None
    """When the deal closed, or is expected to."""
    amount: Amount | None = None
    """The deal's amount, when the notification carries it."""
    currency: CurrencyCode | None = None
    """Currency of ``amount``."""
    modified_at: UtcDateTime
    """When the CRM last changed the deal."""


class InvoiceChange(CanonicalStruct, kw_only=True, frozen=True):
    """A billing invoice as the billing platform pushed it, amounts converted exactly from minor units."""

    invoice_ref: SourceRef
    """The platform's id of the invoice."""
    customer_ref: SourceRef
    """The platform's id of the customer."""
    booking_ref: SourceRef | None = None
    """The CRM deal it bills (its ``opportunity_id`` metadata), when it bills one."""
    business_ref: str | None = None
    """The business key it was created with through finsync (its ``finsync_ref`` metadata)."""
    entity: Code | None = None
    """Code of the legal entity that bills, when known."""
    number: Name | None = None
    """The number assigned at finalization; null while draft."""
    status: BillingInvoiceStatus
    """Draft, open, paid, void or uncollectible."""
    currency: CurrencyCode
    """Currency of every amount."""
    total: Amount
    """Total of the lines."""
    amount_due: Amount
    """What the customer owes in all."""
    amount_paid: Amount
    """What was paid."""
    amount_remaining: Amount
    """What is left to pay."""
    finalized_at: UtcDateTime | None = None
    """When it was finalized."""
    paid_at: UtcDateTime | None = None
    """When it was paid in full."""
    voided_at: UtcDateTime | None = None
    """When it was voided."""


class SourceEvent(CanonicalStruct, kw_only=True, frozen=True):
    """One change a source pushed (or the sweep found), as it travels on the stream."""

    id: str
    """finsync's id of the event: ``{source}:{the source's own event or notification id}``."""
    type: EventType
    """What happened."""
    source: SourceId
    """The configured source it came from."""
    kind: Literal["crm", "billing"]
    """The source's kind; the event's stream is ``STREAMS[kind]``."""
    dedupe_key: str
    """Equal for every delivery of one change: consumers apply each key once."""
    ordering_key: str
    """The business object it is about (``{kind}:{source}:{object}:{id}``): order-dependent work locks it."""
    occurred_at: UtcDateTime
    """When the source made the change."""
    received_at: UtcDateTime
    """When finsync accepted it."""
    via: Literal["push", "sweep"] = "push"
    """How finsync learnt of it: the source's push, or the catch-up sweep."""
    booking: BookingChange | None = None
    """The deal, for ``crm.*`` events."""
    invoice: InvoiceChange | None = None
    """The invoice, for ``billing.invoice.*`` events."""


def stream_of(event: SourceEvent) -> str:
    """The stream ``event`` belongs on."""
    return STREAMS[event.kind]
