"""The billing platform's records: its invoices, their lines, and the payments made on them.

Billing invoices are not the ERP's receivable invoices (:class:`~.transactions.Invoice`): they carry the
billing platform's own life cycle (draft, open, paid, void, uncollectible) and no accounts. Order-to-cash
posts a receivable to the ERP from a finalized billing invoice. Amounts are ``Decimal``, converted exactly
from the platform's integer minor units by the currency's exponent; customers are
:class:`~.master.Customer`, by the ERP party code they carry.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Final

from msgspec import Meta

from shared.canonical.fields import Code, Description, DocumentNumber, SourceRef, UtcDateTime
from shared.canonical.money import Amount, CurrencyCode, Quantity
from shared.canonical.records import CanonicalStruct, CreatePayload, Record

__all__ = (
    "MAX_BILLING_LINES",
    "BillingInvoice",
    "BillingInvoiceCreate",
    "BillingInvoiceLine",
    "BillingInvoiceLineCreate",
    "BillingInvoiceStatus",
    "BillingPayment",
    "BillingPaymentStatus",
)

MAX_BILLING_LINES: Final = 250
"""Most lines one billing invoice may be created with (Stripe's limit of invoice items per invoice)."""


class BillingInvoiceStatus(StrEnum):
    """A billing invoice's life cycle: draft, then open once finalized, then paid, void or uncollectible."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class BillingPaymentStatus(StrEnum):
    """Whether a payment on an invoice went through."""

    PAID = "paid"
    OPEN = "open"
    CANCELED = "canceled"


class BillingInvoiceLine(CanonicalStruct, kw_only=True, frozen=True):
    """One line of a billing invoice."""

    source_ref: SourceRef
    """The line's id in the billing platform."""
    description: Description | None = None
    """Line text."""
    product: Code | None = None
    """Product code (the ERP's), when the line sells a catalogued product."""
    quantity: Quantity
    """Quantity."""
    unit_price: Amount | None = None
    """Price of one unit, when the line has one."""
    amount: Amount
    """Line amount, in the invoice's currency."""


class BillingInvoice(Record, kw_only=True, frozen=True):
    """An invoice in the billing platform, with the platform's own status and its transition times."""

    entity: Code | None = None
    """Code of the legal entity that bills (the invoice's ``legal_entity`` metadata); null when not set."""
    customer: Code | None = None
    """The customer's business code (the ERP party code it carries); null when it carries none."""
    customer_ref: SourceRef
    """The billing platform's id of the customer."""
    booking_ref: SourceRef | None = None
    """The CRM deal the invoice bills (its ``opportunity_id`` metadata), when it bills one."""
    number: DocumentNumber | None = None
    """The number the platform assigned at finalization; null while draft."""
    status: BillingInvoiceStatus
    """Draft, open, paid, void or uncollectible."""
    currency: CurrencyCode
    """Currency of every amount on the invoice."""
    total: Amount
    """Total of the lines."""
    amount_due: Amount
    """What the customer owes in all."""
    amount_paid: Amount
    """What was paid."""
    amount_remaining: Amount
    """What is left to pay."""
    created_at: UtcDateTime
    """When the invoice was created."""
    due_date: date | None = None
    """When payment is due, for invoices sent to be paid later."""
    finalized_at: UtcDateTime | None = None
    """When it was finalized (draft to open)."""
    paid_at: UtcDateTime | None = None
    """When it was paid in full."""
    voided_at: UtcDateTime | None = None
    """When it was voided."""
    marked_uncollectible_at: UtcDateTime | None = None
    """When it was marked uncollectible."""
    lines: tuple[BillingInvoiceLine, ...] = ()
    """The lines, in invoice order."""
    description: Description | None = None
    """Invoice text."""


class BillingInvoiceLineCreate(CanonicalStruct, kw_only=True, frozen=True):
    """One line of a billing invoice to create."""

    description: Description
    """Line text."""
    quantity: Annotated[int, Meta(ge=1, le=1_000_000, description="Whole units, at least 1.")]
    """Whole units (billing platforms bill whole quantities)."""
    unit_price: Amount
    """Price of one unit in the invoice's currency, zero or positive, within the currency's minor unit."""
    product: Code | None = None
    """Product code (the ERP's), kept on the line."""


class BillingInvoiceCreate(CreatePayload, kw_only=True, frozen=True):
    """A draft billing invoice to create, with its lines.

    ``external_ref`` is the business identity (the CRM deal it bills, in practice): the connector stores it
    in the invoice's metadata and looks it up before creating, so a create repeated at any later time, even
    after the platform forgot the idempotency key, answers the invoice it made the first time.
    """

    customer: Code
    """The customer's business code (the ERP party code); the customer must exist in the platform."""
    entity: Code
    """Code of the legal entity that bills."""
    currency: CurrencyCode
    """Currency of the invoice; the customer's billing currency."""
    lines: Annotated[
        tuple[BillingInvoiceLineCreate, ...],
        Meta(
            min_length=1, max_length=MAX_BILLING_LINES, description=f"The lines; at most {MAX_BILLING_LINES}."
        ),
    ]
    """The lines."""
    booking_ref: SourceRef | None = None
    """The CRM deal it bills, stored in the invoice's metadata as ``opportunity_id``."""
    days_until_due: Annotated[int, Meta(ge=1, le=365)] | None = None
    """Send the invoice to be paid within this many days; null charges the customer's default method."""
    description: Description | None = None
    """Invoice text."""


class BillingPayment(Record, kw_only=True, frozen=True):
    """A payment applied to a billing invoice."""

    invoice_ref: SourceRef
    """The billing platform's id of the invoice it pays."""
    customer: Code | None = None
    """The customer's business code, when known."""
    entity: Code | None = None
    """Code of the legal entity of the invoice, when known."""
    booking_ref: SourceRef | None = None
    """The CRM deal of the invoice, when it bills one."""
    status: BillingPaymentStatus
    """Paid, open or canceled."""
    amount: Amount
    """Amount paid, in ``currency``."""
    currency: CurrencyCode
    """Currency of ``amount``."""
    paid_at: UtcDateTime | None = None
    """When the payment went through."""
    created_at: UtcDateTime
    """When the payment was created."""
