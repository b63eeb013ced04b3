"""Stripe's objects in canonical terms, and canonical amounts back in Stripe's minor units (rules ``stripe/v1``).

Pure functions: no I/O. The rules:

- **Ids.** A record's ``id`` is ``{source}:{kind}:{stripe id}`` (``billing:invoice:in_1Q…``), its
  ``source_ref`` the Stripe id.
- **Money.** Stripe writes amounts as integers in the currency's minor unit. The exponent is the ISO 4217
  minor unit (USD 2, JPY 0, KWD 3), except where Stripe keeps another for backwards compatibility: ISK is
  two-decimal in Stripe's API (an amount of ``100`` is 1 króna) though ISO gives it none. Conversion is
  exact both ways (``Decimal.scaleb``); an amount finer than the currency's minor unit is refused (422),
  never rounded.
- **Business keys in metadata.** finsync writes, and reads back: ``finsync_ref`` (the create's
  ``external_ref``), ``opportunity_id`` (``booking_ref``, the CRM deal), ``legal_entity`` (the entity that
  bills) and ``finsync_lines`` (how many lines the invoice was created with) on invoices;
  ``finsync_line`` (the line's index) and ``erp_product`` on invoice items. Customers carry their ERP code
  in ``erp_party``, products in ``erp_product``, as the account's own setup does.
- **Entity.** ``legal_entity`` metadata, else the entity configured for the invoice's currency
  (``entity_by_currency``), else none.
- **Customers** are canonical customers by their ``erp_party``; one without it (made in Stripe by hand)
  keeps its Stripe id as its code, so it is still listed and never joins an ERP party by mistake.
- **Time.** Stripe has no "updated" time. ``modified_at`` is the latest of ``created`` and the
  ``status_transitions`` times, so it moves with every change of status; a change of metadata or of a
  draft's lines does not move it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

from shared.canonical import (
    BillingInvoice,
    BillingInvoiceLine,
    BillingInvoiceStatus,
    BillingPayment,
    BillingPaymentStatus,
    Customer,
)
from shared.canonical.currencies import minor_units
from shared.canonical.money import check_amount
from system_apis.connectors.stripe import wire

__all__ = (
    "STRIPE_EXPONENTS",
    "Rules",
    "customer_record",
    "exponent",
    "from_minor",
    "invoice_record",
    "line_record",
    "modified_at",
    "payment_record",
    "record_id",
    "search_literal",
    "stripe_id",
    "to_minor",
    "unix",
)

STRIPE_EXPONENTS: Final[Mapping[str, int]] = {"ISK": 2}
"""Currencies whose exponent in Stripe's API is not ISO 4217's minor unit (Stripe's "special cases")."""
PARTY: Final = "erp_party"
"""Customer metadata holding the ERP party code."""
PRODUCT: Final = "erp_product"
"""Product and invoice-item metadata holding the ERP product code."""
REF: Final = "finsync_ref"
"""Invoice metadata holding the business key (``external_ref``) it was created with."""
BOOKING: Final = "opportunity_id"
"""Invoice metadata holding the CRM deal it bills (``booking_ref``)."""
ENTITY: Final = "legal_entity"
"""Invoice metadata holding the code of the legal entity that bills."""
LINES: Final = "finsync_lines"
"""Invoice metadata holding how many lines finsync created it with (a shorter invoice is half-made)."""
LINE: Final = "finsync_line"
"""Invoice-item metadata holding the line's index (from 0) in the create it came from."""


@dataclass(frozen=True)
class Rules:
    """What the mapping needs to know about the source."""

    source: str
    """The configured source id, the first part of every record id."""
    version: str
    """``stripe/v1``: recorded on every record."""
    entity_by_currency: Mapping[str, str]
    """The entity that bills in each currency (upper-case ISO codes), for invoices without ``legal_entity``."""

    def entity(self, metadata: Mapping[str, str], currency: str) -> str | None:
        """The legal entity of an invoice: its ``legal_entity`` metadata, else its currency's entity."""
        return metadata.get(ENTITY) or self.entity_by_currency.get(currency.upper())


def record_id(source: str, kind: str, ref: str) -> str:
    """``{source}:{kind}:{stripe id}``."""
    return f"{source}:{kind}:{ref}"


def stripe_id(source: str, kind: str, value: str) -> str:
    """The Stripe id in a record id of ``kind`` from ``source``, or ``value`` itself when it is not one."""
    prefix = f"{source}:{kind}:"
    return value[len(prefix) :] if value.startswith(prefix) else value


def search_literal(value: str) -> str:
    """``value`` as a quoted string of Stripe's search language (``\\`` and ``'`` escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def exponent(currency: str) -> int:
    """Decimals of ``currency``'s minor unit as Stripe counts them (upper or lower case code).

    Raises:
        UnknownCurrencyError: not an active ISO 4217 code.
    """
    code = currency.upper()
    return STRIPE_EXPONENTS.get(code, minor_units(code))


def from_minor(amount: int | str, currency: str) -> Decimal:
    """An amount in Stripe's minor units (an integer, or a decimal string such as ``unit_amount_decimal``)
    as a ``Decimal`` in the currency's unit, exactly: ``12345`` USD is ``123.45``, ``500`` JPY is ``500``."""
    return Decimal(amount).scaleb(-exponent(currency))


def to_minor(amount: Decimal, currency: str, *, line: int | None = None, field: str = "amount") -> int:
    """``amount`` in Stripe's integer minor units, exactly.

    Raises:
        UnknownCurrencyError: not an active ISO 4217 code.
        InvalidAmountError: not finite, or finer than the currency's minor unit (``1.005`` USD, ``1.5`` JPY).
    """
    check_amount(amount, currency.upper(), line=line, field=field)
    return int(amount.scaleb(exponent(currency)))


def unix(seconds: int) -> datetime:
    """A Unix time as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def _day(seconds: int | None) -> date | None:
    return unix(seconds).date() if seconds is not None else None


def _at(seconds: int | None) -> datetime | None:
    return unix(seconds) if seconds is not None else None


def modified_at(invoice: wire.Invoice) -> datetime:
    """The latest of its creation and its status transitions (Stripe keeps no "updated" time)."""
    moments = invoice.status_transitions
    latest = max(
        time
        for time in (
            invoice.created,
            moments.finalized_at,
            moments.paid_at,
            moments.voided_at,
            moments.marked_uncollectible_at,
        )
        if time is not None
    )
    return unix(latest)


def customer_record(rules: Rules, customer: wire.Customer) -> Customer:
    """A Stripe customer as a canonical customer, coded by its ``erp_party`` (else by its Stripe id)."""
    return Customer(
        id=record_id(rules.source, "customer", customer.id),
        source=rules.source,
        source_ref=customer.id,
        modified_at=unix(customer.created),
        mapping_version=rules.version,
        code=customer.metadata.get(PARTY) or customer.id,
        name=customer.name or customer.email or customer.id,
        currency=customer.currency.upper() if customer.currency else None,
    )


def line_record(line: wire.Line, currency: str, products: Mapping[str, str]) -> BillingInvoiceLine:
    """One line; ``products`` maps Stripe product ids to ERP product codes."""
    pricing = line.pricing or wire.Pricing()
    details = pricing.price_details
    product = line.metadata.get(PRODUCT) or (products.get(details.product or "") if details else None)
    return BillingInvoiceLine(
        source_ref=line.id,
        description=line.description,
        product=product,
        quantity=Decimal(line.quantity if line.quantity is not None else 1),
        unit_price=from_minor(pricing.unit_amount_decimal, currency) if pricing.unit_amount_decimal else None,
        amount=from_minor(line.amount, currency),
    )


def invoice_record(
    rules: Rules, invoice: wire.Invoice, lines: list[wire.Line], products: Mapping[str, str]
) -> BillingInvoice:
    """A Stripe invoice with all its ``lines`` (its customer expanded, or not)."""
    currency = invoice.currency
    customer = invoice.customer if isinstance(invoice.customer, wire.Customer) else None
    moments = invoice.status_transitions
    return BillingInvoice(
        id=record_id(rules.source, "invoice", invoice.id),
        source=rules.source,
        source_ref=invoice.id,
        external_ref=invoice.metadata.get(REF),
        modified_at=modified_at(invoice),
        mapping_version=rules.version,
        entity=rules.entity(invoice.metadata, currency),
        customer=customer.metadata.get(PARTY) if customer is not None else None,
        customer_ref=invoice.customer_id,
        booking_ref=invoice.metadata.get(BOOKING),
        number=invoice.number,
        status=BillingInvoiceStatus(invoice.status),
        currency=currency.upper(),
        total=from_minor(invoice.total, currency),
        amount_due=from_minor(invoice.amount_due, currency),
        amount_paid=from_minor(invoice.amount_paid, currency),
        amount_remaining=from_minor(invoice.amount_remaining, currency),
        created_at=unix(invoice.created),
        due_date=_day(invoice.due_date),
        finalized_at=_at(moments.finalized_at),
        paid_at=_at(moments.paid_at),
        voided_at=_at(moments.voided_at),
        marked_uncollectible_at=_at(moments.marked_uncollectible_at),
        lines=tuple(line_record(line, currency, products) for line in lines),
        description=invoice.description,
    )


def payment_record(rules: Rules, payment: wire.InvoicePayment) -> BillingPayment:
    """An invoice payment; its invoice (expanded, with its customer) gives the customer, entity and deal.

    ``amount`` is what was paid; while a payment is open or canceled, what was asked for.
    """
    currency = payment.currency
    invoice = payment.invoice if isinstance(payment.invoice, wire.Invoice) else None
    customer = (
        invoice.customer if invoice is not None and isinstance(invoice.customer, wire.Customer) else None
    )
    moments = payment.status_transitions
    paid = payment.amount_paid if payment.status == "paid" else None
    latest = max(t for t in (payment.created, moments.paid_at, moments.canceled_at) if t is not None)
    return BillingPayment(
        id=record_id(rules.source, "payment", payment.id),
        source=rules.source,
        source_ref=payment.id,
        modified_at=unix(latest),
        mapping_version=rules.version,
        invoice_ref=payment.invoice_id,
        customer=customer.metadata.get(PARTY) if customer is not None else None,
        entity=rules.entity(invoice.metadata, currency) if invoice is not None else None,
        booking_ref=invoice.metadata.get(BOOKING) if invoice is not None else None,
        status=BillingPaymentStatus(payment.status),
        amount=from_minor(paid if paid is not None else payment.amount_requested, currency),
        currency=currency.upper(),
        paid_at=_at(moments.paid_at),
        created_at=unix(payment.created),
    )
