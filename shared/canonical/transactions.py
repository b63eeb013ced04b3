"""Transactions: journal entries, receivable invoices, payable bills and the payments that settle them.

Each has a record (what a source holds, read back) and, where the API creates
it, a ``...Create`` payload. Amounts are :data:`~shared.canonical.money.Amount`
(``Decimal``) with their currency beside them. The line limits are in the schema
(``maxItems``) and in :mod:`shared.canonical.validation`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Final

from msgspec import Meta

from shared.canonical.fields import Code, Description, DocumentNumber, ExternalRef, PeriodCode, RecordId
from shared.canonical.money import Amount, CurrencyCode, Quantity
from shared.canonical.records import CanonicalStruct, CreatePayload, Record

__all__ = (
    "MAX_INVOICE_LINES",
    "MAX_JOURNAL_LINES",
    "MAX_UNIT_PRICE_DECIMALS",
    "Bill",
    "DocumentKind",
    "DocumentRef",
    "DocumentState",
    "EntryState",
    "Invoice",
    "InvoiceCreate",
    "InvoiceLine",
    "InvoiceLineCreate",
    "JournalEntry",
    "JournalEntryCreate",
    "JournalLine",
    "Payment",
    "PaymentCreate",
)

MAX_JOURNAL_LINES: Final = 1_000
"""Most lines one journal entry may have when created through finsync (an "oversized entry" beyond).

Why: Tryton validates and posts a move in one transaction, about 160 lines a
second, so a larger move holds its locks for many seconds; split it instead.
"""

MAX_INVOICE_LINES: Final = 1_000
"""Most lines one invoice may have when created through finsync."""

MAX_UNIT_PRICE_DECIMALS: Final = 4
"""Most decimals a unit price may have: Tryton's default price precision. Line amounts use the currency's."""


class EntryState(StrEnum):
    """Whether a journal entry is posted."""

    DRAFT = "draft"
    POSTED = "posted"


class DocumentState(StrEnum):
    """Life cycle of an invoice or bill."""

    DRAFT = "draft"
    POSTED = "posted"
    PAID = "paid"
    CANCELLED = "cancelled"


class DocumentKind(StrEnum):
    """What a payment settles: a receivable invoice or a payable bill."""

    INVOICE = "invoice"
    BILL = "bill"


class JournalLine(CanonicalStruct, kw_only=True, frozen=True):
    """One line of a journal entry: a debit or a credit to one account, in one currency."""

    account_code: Code
    """Code of the (leaf) account posted to."""
    debit: Amount
    """Debit amount, zero or positive; ``"0"`` when the line is a credit."""
    credit: Amount
    """Credit amount, zero or positive; ``"0"`` when the line is a debit."""
    currency: CurrencyCode
    """Currency of ``debit`` and ``credit``; an entry balances per currency."""
    cost_center: Code | None = None
    """Cost centre code; null when the line is not allocated."""
    description: Description | None = None
    """Line text."""
    party: Code | None = None
    """Code of the customer or supplier, for receivable and payable lines."""


class JournalEntry(Record, kw_only=True, frozen=True):
    """A journal entry (a Tryton move) as the ERP holds it."""

    entity: Code
    """Code of the legal entity."""
    posting_date: date
    """Accounting date; it decides the period."""
    period: PeriodCode | None = None
    """Code of the fiscal period it is posted in, when the source says."""
    journal: Code | None = None
    """Code of the journal, such as ``MISC``."""
    description: Description | None = None
    """Entry text."""
    state: EntryState
    """Draft or posted; only posted entries count in actuals."""
    lines: tuple[JournalLine, ...]
    """The lines, in the source's order."""
    reversal_of: RecordId | None = None
    """Id of the entry this one reverses; sources that never delete a posted entry reverse it instead."""


class JournalEntryCreate(CreatePayload, kw_only=True, frozen=True):
    """A journal entry to create and post; debits must equal credits in each currency."""

    entity: Code
    """Code of the legal entity to post in."""
    posting_date: date
    """Accounting date; its period must be open."""
    journal: Code | None = None
    """Code of the journal; null for the source's default."""
    description: Description | None = None
    """Entry text."""
    lines: Annotated[
        tuple[JournalLine, ...],
        Meta(
            min_length=1,
            max_length=MAX_JOURNAL_LINES,
            description=f"The lines; at most {MAX_JOURNAL_LINES:,} (an oversized entry is refused whole).",
        ),
    ]
    """The lines, at most :data:`MAX_JOURNAL_LINES`."""


class InvoiceLineCreate(CanonicalStruct, kw_only=True, frozen=True):
    """One line of an invoice to create; the source computes its amount and taxes."""

    description: Description
    """Line text."""
    quantity: Quantity
    """Quantity; not zero."""
    unit_price: Amount
    """Price of one unit, in the invoice's currency, zero or positive; at most 4 decimals."""
    product: Code | None = None
    """Product code, when the line sells a product."""
    account_code: Code | None = None
    """Revenue account code; null takes the product's account."""
    tax_codes: tuple[Code, ...] = ()
    """Codes of the taxes on the line."""
    cost_center: Code | None = None
    """Cost centre code."""


class InvoiceLine(CanonicalStruct, kw_only=True, frozen=True):
    """One line of an invoice or a bill, as the source holds it."""

    description: Description
    """Line text."""
    quantity: Quantity
    """Quantity."""
    unit_price: Amount
    """Price of one unit, in the document's currency."""
    amount: Amount
    """Line amount before tax, in the document's currency."""
    product: Code | None = None
    """Product code."""
    account_code: Code
    """Code of the revenue (invoice) or expense (bill) account."""
    tax_codes: tuple[Code, ...] = ()
    """Codes of the taxes on the line."""
    cost_center: Code | None = None
    """Cost centre code."""


class Invoice(Record, kw_only=True, frozen=True):
    """A receivable invoice to a customer."""

    entity: Code
    """Code of the legal entity that invoices."""
    customer: Code
    """Code of the customer."""
    number: DocumentNumber | None = None
    """The invoice number the source assigned; null while draft."""
    invoice_date: date | None = None
    """Invoice date; null while draft."""
    due_date: date | None = None
    """When payment is due."""
    currency: CurrencyCode
    """Currency of every amount on the invoice."""
    lines: tuple[InvoiceLine, ...]
    """The lines."""
    untaxed_amount: Amount
    """Total before tax."""
    tax_amount: Amount
    """Total tax."""
    total_amount: Amount
    """Total including tax."""
    amount_due: Amount
    """What remains to be paid."""
    state: DocumentState
    """Draft, posted, paid or cancelled."""
    description: Description | None = None
    """Invoice text."""


class Bill(Record, kw_only=True, frozen=True):
    """A payable bill (supplier invoice) from a supplier."""

    entity: Code
    """Code of the legal entity that is billed."""
    supplier: Code
    """Code of the supplier."""
    number: DocumentNumber | None = None
    """The number the source assigned; null while draft."""
    supplier_reference: DocumentNumber | None = None
    """The supplier's own invoice number."""
    bill_date: date | None = None
    """Date of the bill; null while draft."""
    due_date: date | None = None
    """When payment is due."""
    currency: CurrencyCode
    """Currency of every amount on the bill."""
    lines: tuple[InvoiceLine, ...]
    """The lines."""
    untaxed_amount: Amount
    """Total before tax."""
    tax_amount: Amount
    """Total tax."""
    total_amount: Amount
    """Total including tax."""
    amount_due: Amount
    """What remains to be paid."""
    state: DocumentState
    """Draft, posted, paid or cancelled."""
    description: Description | None = None
    """Bill text."""


class InvoiceCreate(CreatePayload, kw_only=True, frozen=True):
    """A receivable invoice to create and post."""

    entity: Code
    """Code of the legal entity that invoices."""
    customer: Code
    """Code of the customer."""
    invoice_date: date
    """Invoice date; its period must be open."""
    due_date: date | None = None
    """When payment is due, not before ``invoice_date``; null uses the customer's payment term."""
    currency: CurrencyCode
    """Currency of the invoice; an active ISO 4217 code."""
    lines: Annotated[
        tuple[InvoiceLineCreate, ...],
        Meta(
            min_length=1,
            max_length=MAX_INVOICE_LINES,
            description=f"The lines; at most {MAX_INVOICE_LINES:,}.",
        ),
    ]
    """The lines, at most :data:`MAX_INVOICE_LINES`."""
    description: Description | None = None
    """Invoice text."""


class DocumentRef(CanonicalStruct, kw_only=True, frozen=True):
    """Which invoice or bill a payment settles: by finsync id or by the external reference it was created with."""

    kind: DocumentKind
    """Invoice or bill."""
    id: RecordId | None = None
    """finsync's id of the document; give this or ``external_ref``."""
    external_ref: ExternalRef | None = None
    """The external reference the document was created with; give this or ``id``."""


class Payment(Record, kw_only=True, frozen=True):
    """A payment received for an invoice, or made for a bill."""

    entity: Code
    """Code of the legal entity."""
    settles: DocumentRef
    """The invoice or bill it settles."""
    party: Code | None = None
    """Code of the customer or supplier."""
    amount: Amount
    """Amount paid, positive."""
    currency: CurrencyCode
    """Currency of ``amount``."""
    payment_date: date
    """Date of the payment."""
    journal: Code | None = None
    """Code of the payment journal (bank or cash)."""
    description: Description | None = None
    """Payment text."""


class PaymentCreate(CreatePayload, kw_only=True, frozen=True):
    """A payment to record against an invoice (or a bill); it settles the document up to its amount."""

    entity: Code
    """Code of the legal entity."""
    settles: DocumentRef
    """The invoice or bill it settles, by ``id`` or ``external_ref`` (one of them)."""
    amount: Amount
    """Amount paid, positive, within the currency's minor unit."""
    currency: CurrencyCode
    """Currency of ``amount``; the document's currency."""
    payment_date: date
    """Date of the payment; its period must be open."""
    journal: Code | None = None
    """Code of the payment journal; null for the source's default."""
    description: Description | None = None
    """Payment text."""
