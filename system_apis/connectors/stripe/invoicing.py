"""Creating a billing invoice exactly once per business key, and completing one that a failed create left short.

Stripe has no unique constraint finsync could lean on, and it forgets an
``Idempotency-Key`` after 24 hours. So the business key (``external_ref``) is
written into the invoice itself (``metadata[finsync_ref]``), and a create
looks for it before it makes anything:

1. **Search** ``metadata['finsync_ref']:'<external_ref>'``: finds an invoice of
   any age, but Stripe indexes within a minute, so a very recent one may not
   show yet.
2. **List** the customer's invoices created in the last :data:`RECENT`
   seconds and read their metadata: lists are always current, and cover what
   search cannot see yet. (A plain list of all invoices would also do, at the
   cost of reading the whole account.)
3. **Create** the draft with ``Idempotency-Key: finsync:{source}:invoice:{external_ref}``.
   Inside Stripe's 24 hours this key alone makes a retry (after a lost answer,
   or racing another replica) replay the first answer instead of making a
   second invoice; the two look-ups cover the time after.

A create is several calls (the draft, then one invoice item per line, in
order), so it can stop half-way: a fault after the draft, or between two items.
Every item carries its line's index (``metadata[finsync_line]``) and its own
key (``…:invoice-line:{external_ref}:{index}``), and the draft says how many
lines it should have (``metadata[finsync_lines]``). A create repeated with the
same ``external_ref`` finds the draft, reads its lines, checks they are the
ones asked for, and adds only the missing ones. The draft is made with
``auto_advance=false`` so Stripe never finalizes a half-made draft by itself,
and finalizing through finsync refuses one (409).

The same ``external_ref`` with other content (customer, currency, entity,
deal, number of lines, a line's text, quantity, price or product) answers 409
and changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from shared.errors import (
    ConflictError,
    InvalidAmountError,
    InvalidEntryError,
    Violation,
)
from system_apis.connectors.stripe import wire
from system_apis.connectors.stripe.client import StripeRejectedError
from system_apis.connectors.stripe.mapping import (
    BOOKING,
    ENTITY,
    LINE,
    LINES,
    PRODUCT,
    REF,
    exponent,
    search_literal,
    to_minor,
)

if TYPE_CHECKING:
    from shared.canonical import BillingInvoice, BillingInvoiceCreate
    from system_apis.connectors.stripe.connector import StripeConnector
    from system_apis.connectors.stripe.mapping import Rules

__all__ = ("MAX_AMOUNT", "RECENT", "Created", "PlannedLine", "create_invoice", "plan_lines")

T = TypeVar("T")

RECENT: Final = 3600
"""Seconds back the customer's invoices are listed when search has not found the business key (Stripe's
search lags by under a minute; the margin covers clock skew)."""
MAX_AMOUNT: Final = 99_999_999
"""Largest line amount, in minor units, Stripe takes (eight digits: 999,999.99 USD)."""


@dataclass(frozen=True)
class Created(Generic[T]):
    """What a create answers: 201 when ``created``, 200 when it was already there, complete."""

    record: T
    """The record as the source holds it now."""
    created: bool
    """True when this call wrote anything (the invoice, or lines an earlier, failed call left out)."""


@dataclass(frozen=True)
class PlannedLine:
    """One line to write, in Stripe's terms."""

    index: int
    """Its place in the create (from 0), kept in ``metadata[finsync_line]``."""
    description: str
    """Line text."""
    quantity: int
    """Whole units."""
    unit_amount: int
    """Unit price in minor units."""
    product: str | None
    """ERP product code, kept in ``metadata[erp_product]``."""


def plan_lines(payload: BillingInvoiceCreate, rules: Rules) -> list[PlannedLine]:
    """The lines in minor units, once the payload passes the checks Stripe would make later, or worse, not.

    Raises:
        UnknownCurrencyError: the currency is not an active ISO 4217 code.
        InvalidEntryError: the entity does not bill in this currency (``entity_by_currency``).
        InvalidAmountError: a unit price is negative, finer than the currency's minor unit, or a line's
            amount is over Stripe's largest.
    """
    exponent(payload.currency)
    billing_entity = rules.entity_by_currency.get(payload.currency)
    if billing_entity is not None and billing_entity != payload.entity:
        message = f"{payload.currency} invoices are billed by {billing_entity}, not {payload.entity}"
        raise InvalidEntryError(
            message, violations=[Violation(reason="entity-currency", field="entity", message=message)]
        )
    violations: list[Violation] = []
    planned: list[PlannedLine] = []
    for index, line in enumerate(payload.lines):
        if line.unit_price < 0:
            message = f"line {index}: unit_price {line.unit_price} is negative"
            violations.append(
                Violation(reason="negative-amount", line=index, field="unit_price", message=message)
            )
            continue
        try:
            unit = to_minor(line.unit_price, payload.currency, line=index, field="unit_price")
        except InvalidAmountError as refused:
            violations.extend(refused.violations)
            continue
        if unit * line.quantity > MAX_AMOUNT:
            message = (
                f"line {index}: {line.quantity} x {line.unit_price} is over the largest amount Stripe takes"
            )
            violations.append(
                Violation(reason="amount-too-large", line=index, field="quantity", message=message)
            )
            continue
        planned.append(PlannedLine(index, line.description, line.quantity, unit, line.product))
    if violations:
        raise InvalidAmountError("; ".join(v.message for v in violations), violations=violations)
    return planned


async def create_invoice(
    connector: StripeConnector, payload: BillingInvoiceCreate
) -> Created[BillingInvoice]:
    """Create the draft invoice and its lines (201), answer the one already made for ``external_ref`` (200),
    or complete one a failed create left short (201), as the module's docstring says.

    Raises:
        InvalidEntryError: unknown customer, another currency than the customer's, a bad amount (422).
        ConflictError: ``external_ref`` already names an invoice with other content (409).
    """
    planned = plan_lines(payload, connector.rules)
    async with connector.create_lock(payload.external_ref):
        customer = await connector.stripe_customer(payload.customer)
        if customer is None:
            message = f"billing source {connector.source!r} has no customer {payload.customer!r}"
            raise InvalidEntryError(
                message, violations=[Violation(reason="unknown-customer", field="customer", message=message)]
            )
        if customer.currency not in (None, payload.currency.lower()):
            message = f"customer {payload.customer} is billed in {customer.currency.upper()}, not {payload.currency}"
            raise InvalidEntryError(
                message, violations=[Violation(reason="currency-mismatch", field="currency", message=message)]
            )
        invoice, fresh = await _find_or_make(connector, payload, customer)
        _check_same(invoice, payload, customer)
        made = _made_lines(await connector.lines(invoice), planned, invoice.id)
        missing = [line for line in planned if line.index not in made]
        if missing and invoice.status != "draft":
            raise ConflictError(
                f"invoice {invoice.id} for external_ref {payload.external_ref!r} is {invoice.status} with "
                f"{len(made)} of its {len(planned)} lines; it can no longer be completed",
                source_ref=invoice.id,
            )
        for line in missing:
            await _add_line(connector, invoice, line, payload.external_ref)
        return Created(record=await connector.invoice(invoice.id), created=fresh or bool(missing))


async def _find_or_make(
    connector: StripeConnector, payload: BillingInvoiceCreate, customer: wire.Customer
) -> tuple[wire.Invoice, bool]:
    """The invoice ``external_ref`` names (by search, then by a list of the customer's recent invoices), or
    a new draft; and whether this call made it."""
    ref = payload.external_ref
    query = f"metadata[{search_literal(REF)}]:{search_literal(ref)}"
    hits = await connector.search("/v1/invoices/search", wire.InvoiceSearch, query, [])
    named = [hit for hit in hits if hit.metadata.get(REF) == ref]
    if named:
        oldest = min(named, key=lambda hit: (hit.created, hit.id))
        return await connector.stripe_invoice(oldest.id), False  # a search snapshot may be stale: read it
    recent, _ = await connector.page(
        "/v1/invoices",
        wire.InvoiceList,
        {"customer": customer.id, "created": {"gte": int(time.time()) - RECENT}, "expand": ["data.customer"]},
        None,
        None,
    )
    named = [invoice for invoice in recent if invoice.metadata.get(REF) == ref]
    if named:
        return min(named, key=lambda invoice: (invoice.created, invoice.id)), False
    params = {
        "customer": customer.id,
        "currency": payload.currency.lower(),
        "auto_advance": False,
        "pending_invoice_items_behavior": "exclude",
        "collection_method": "send_invoice" if payload.days_until_due else "charge_automatically",
        "days_until_due": payload.days_until_due,
        "description": payload.description,
        "metadata": {
            REF: ref,
            BOOKING: payload.booking_ref,
            ENTITY: payload.entity,
            LINES: str(len(payload.lines)),
        },
        "expand": ["customer"],
    }
    made, replayed = await connector.client.post(
        "/v1/invoices", wire.Invoice, params, idempotency_key=connector.key("invoice", ref)
    )
    if replayed:  # the saved answer shows the draft as it was then
        return await connector.stripe_invoice(made.id), False
    return made, True


def _check_same(invoice: wire.Invoice, payload: BillingInvoiceCreate, customer: wire.Customer) -> None:
    """Refuse (409) an ``external_ref`` that already names an invoice made for something else."""
    metadata = invoice.metadata
    differs = [
        name
        for name, same in (
            ("customer", invoice.customer_id == customer.id),
            ("currency", invoice.currency == payload.currency.lower()),
            ("entity", metadata.get(ENTITY) == payload.entity),
            ("booking_ref", metadata.get(BOOKING) == payload.booking_ref),
            ("lines", metadata.get(LINES) == str(len(payload.lines))),
        )
        if not same
    ]
    if differs:
        raise ConflictError(
            f"external_ref {payload.external_ref!r} already names invoice {invoice.id}, with another "
            f"{', '.join(differs)}",
            source_ref=invoice.id,
        )


def _made_lines(lines: list[wire.Line], planned: list[PlannedLine], invoice_id: str) -> dict[int, wire.Line]:
    """The lines already on the invoice, by index, each checked against the line asked for (409 if not)."""
    made: dict[int, wire.Line] = {}
    for line in lines:
        index = line.metadata.get(LINE, "")
        want = planned[int(index)] if index.isdigit() and int(index) < len(planned) else None
        unit = line.pricing.unit_amount_decimal if line.pricing else None
        same = (
            want is not None
            and int(index) not in made
            and (line.description or "") == want.description
            and line.quantity == want.quantity
            and unit is not None
            and Decimal(unit) == want.unit_amount
            and line.metadata.get(PRODUCT) == want.product
        )
        if not same:
            raise ConflictError(
                f"invoice {invoice_id} has a line ({line.id}) that is not line {index or '?'} of this create",
                source_ref=invoice_id,
            )
        made[int(index)] = line
    return made


async def _add_line(connector: StripeConnector, invoice: wire.Invoice, line: PlannedLine, ref: str) -> None:
    """Add one invoice item to the draft, under the key of its line."""
    params = {
        "customer": invoice.customer_id,
        "invoice": invoice.id,
        "currency": invoice.currency,
        "description": line.description or None,
        "quantity": line.quantity,
        "unit_amount_decimal": line.unit_amount,
        "metadata": {LINE: str(line.index), PRODUCT: line.product},
    }
    try:
        await connector.client.post(
            "/v1/invoiceitems",
            wire.InvoiceItem,
            params,
            idempotency_key=connector.key("invoice-line", f"{ref}:{line.index}"),
        )
    except StripeRejectedError as refused:
        if refused.error.code != "invoice_not_editable":
            raise
        raise ConflictError(
            f"invoice {invoice.id} was finalized before its line {line.index} was added: {refused.error.message}",
            source_ref=invoice.id,
        ) from refused
