"""Stripe API v1 answers the connector reads, as msgspec Structs (Stripe's field names, API version basil).

Only the fields the connector uses are declared; Stripe adds fields without a
new API version, so the rest of each object is ignored. An expandable field
(``customer``, ``invoice``) is the object's id, or the object itself when the
call asked for it with ``expand[]``.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "Customer",
    "CustomerList",
    "CustomerSearch",
    "ErrorAnswer",
    "Event",
    "EventData",
    "EventList",
    "Invoice",
    "InvoiceItem",
    "InvoiceList",
    "InvoicePayment",
    "InvoicePaymentList",
    "InvoicePaymentTransitions",
    "InvoiceSearch",
    "Line",
    "LineList",
    "PaymentRef",
    "PriceDetails",
    "Pricing",
    "Product",
    "ProductList",
    "StatusTransitions",
    "StripeError",
)


class _Wire(msgspec.Struct, kw_only=True):
    """Base of Stripe's shapes: snake_case as sent, unknown fields ignored (Stripe adds fields freely).

    mypy reads each class's arguments on its own, so every subclass repeats ``kw_only=True``.
    """


class StripeError(_Wire, kw_only=True):
    """``error`` of an error answer."""

    type: str = "api_error"
    """``api_error``, ``card_error``, ``idempotency_error`` or ``invalid_request_error``."""
    message: str = ""
    """Stripe's words, for a person."""
    code: str | None = None
    """For errors a program reacts to (``resource_missing``, ``idempotency_key_in_use``)."""
    param: str | None = None
    """The parameter at fault."""
    decline_code: str | None = None
    """Why a card was declined (``insufficient_funds``)."""


class ErrorAnswer(_Wire, kw_only=True):
    """An error answer: ``{"error": {...}}``."""

    error: StripeError


class Customer(_Wire, kw_only=True):
    """A customer (``cus_…``); a deleted one has only ``id`` and ``deleted``."""

    id: str
    created: int = 0
    name: str | None = None
    email: str | None = None
    currency: str | None = None
    """Lower case; set by its first invoice."""
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    deleted: bool = False


class Product(_Wire, kw_only=True):
    """A product (``prod_…``): ``metadata[erp_product]`` holds the ERP's product code."""

    id: str
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class PriceDetails(_Wire, kw_only=True):
    """``pricing.price_details`` of a line made from a price."""

    price: str | None = None
    product: str | None = None


class Pricing(_Wire, kw_only=True):
    """``pricing`` of a line (basil): the price it came from, if any, and its unit amount in minor units."""

    price_details: PriceDetails | None = None
    unit_amount_decimal: str | None = None
    """Decimal string, in minor units (may carry fractions of a minor unit)."""


class Line(_Wire, kw_only=True):
    """One line of an invoice (``il_…``)."""

    id: str
    amount: int
    currency: str
    description: str | None = None
    quantity: int | None = None
    pricing: Pricing | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class InvoiceItem(_Wire, kw_only=True):
    """An invoice item (``ii_…``), as ``POST /v1/invoiceitems`` answers it."""

    id: str
    invoice: str | None = None


class LineList(_Wire, kw_only=True):
    """A list of lines, embedded in an invoice or from ``/v1/invoices/{id}/lines``."""

    data: list[Line]
    has_more: bool


class StatusTransitions(_Wire, kw_only=True):
    """When an invoice changed status (Unix seconds)."""

    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None


class Invoice(_Wire, kw_only=True):
    """An invoice (``in_…``)."""

    id: str
    customer: str | Customer
    status: str
    """``draft``, ``open``, ``paid``, ``uncollectible`` or ``void``."""
    currency: str
    created: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    attempt_count: int = 0
    number: str | None = None
    description: str | None = None
    due_date: int | None = None
    collection_method: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    status_transitions: StatusTransitions = msgspec.field(default_factory=StatusTransitions)
    lines: LineList = msgspec.field(default_factory=lambda: LineList(data=[], has_more=False))

    @property
    def customer_id(self) -> str:
        """The customer's id, whether or not it was expanded."""
        return self.customer if isinstance(self.customer, str) else self.customer.id


class PaymentRef(_Wire, kw_only=True):
    """``payment`` of an invoice payment: what moved the money."""

    type: str | None = None
    payment_intent: str | None = None


class InvoicePaymentTransitions(_Wire, kw_only=True):
    """When an invoice payment changed status."""

    paid_at: int | None = None
    canceled_at: int | None = None


class InvoicePayment(_Wire, kw_only=True):
    """An invoice payment (``inpay_…``, API version basil): the link of a payment to the invoice it pays."""

    id: str
    invoice: str | Invoice
    currency: str
    amount_paid: int | None = None
    amount_requested: int
    status: str
    """``paid``, ``open`` or ``canceled``."""
    created: int
    payment: PaymentRef = msgspec.field(default_factory=PaymentRef)
    status_transitions: InvoicePaymentTransitions = msgspec.field(default_factory=InvoicePaymentTransitions)

    @property
    def invoice_id(self) -> str:
        """The invoice's id, whether or not it was expanded."""
        return self.invoice if isinstance(self.invoice, str) else self.invoice.id


class CustomerList(_Wire, kw_only=True):
    """A page of ``/v1/customers``."""

    data: list[Customer]
    has_more: bool


class CustomerSearch(_Wire, kw_only=True):
    """A page of ``/v1/customers/search``."""

    data: list[Customer]
    has_more: bool
    next_page: str | None = None


class ProductList(_Wire, kw_only=True):
    """A page of ``/v1/products``."""

    data: list[Product]
    has_more: bool


class InvoiceList(_Wire, kw_only=True):
    """A page of ``/v1/invoices``."""

    data: list[Invoice]
    has_more: bool


class InvoiceSearch(_Wire, kw_only=True):
    """A page of ``/v1/invoices/search``."""

    data: list[Invoice]
    has_more: bool
    next_page: str | None = None


class InvoicePaymentList(_Wire, kw_only=True):
    """A page of ``/v1/invoice_payments``."""

    data: list[InvoicePayment]
    has_more: bool


class EventData(_Wire, kw_only=True):
    """``data`` of an event: the object as it was when the event happened (decoded later, by its type)."""

    object: msgspec.Raw
    """The object's JSON, kept raw: only the types finsync maps are decoded."""


class Event(_Wire, kw_only=True):
    """An event (``evt_…``), as ``/v1/events`` lists it and as a webhook delivers it."""

    id: str
    type: str
    """``invoice.paid``, ``customer.created``, ..."""
    created: int
    """When it happened (Unix seconds)."""
    data: EventData
    livemode: bool = False


class EventList(_Wire, kw_only=True):
    """A page of ``/v1/events``."""

    data: list[Event]
    has_more: bool
