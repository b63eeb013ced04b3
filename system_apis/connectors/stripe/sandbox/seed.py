"""The seeded account: the ERP's customers and products, their prices, and a year of invoices and payments.

Coherence with the ERP seed (:mod:`system_apis.connectors.tryton.seed`):

- one customer per ERP customer ``C-001`` … ``C-012``, with the ERP's name for
  the seed variant (the names are the first draw of ``random.Random(variant)``
  in the ERP seed, reproduced by :func:`erp_customer_names`) and the ERP code in
  ``metadata[erp_party]``; ``C-001``-``C-006`` are billed in USD (the ERP's
  FS-US), ``C-007``-``C-012`` in EUR (FS-EU);
- one product per ERP product (``metadata[erp_product]``, same name), each with
  a USD and a EUR one-time price whose ``lookup_key`` is ``{code}:{currency}``
  (``P-100:usd``).

History: each customer has one invoice per month of 2026 from January to
October (120 invoices, more than one page of 100), with one to three lines of
seeded products. Older months are paid (each paid invoice has its payment
intent, charge and invoice payment) except two void and two uncollectible
ones; the latest two months leave some open and one draft. ``C-009``-``C-012`` are invoiced
``send_invoice`` with 30 days to pay, the rest ``charge_automatically``.
Every timestamp lies at least 31 days before start, so the history is older
than Stripe's 30-day event retention and has no events. The seed is
deterministic: the same variant gives the same ids and content on every start
(only timestamps after start are clamped).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from decimal import Decimal
from typing import TYPE_CHECKING

from system_apis.connectors.seeded_customers import home_company
from system_apis.connectors.stripe.sandbox.objects import (
    Charge,
    Customer,
    Invoice,
    InvoiceItem,
    InvoicePayment,
    PaymentIntent,
    Price,
    Product,
)
from system_apis.connectors.stripe.sandbox.store import seeded_id
from system_apis.connectors.tryton.seed import CUSTOMERS, FISCAL_YEAR, PRODUCTS, SUPPLIERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from system_apis.connectors.stripe.sandbox.store import Store

__all__ = (
    "EUR_CUSTOMERS",
    "SEEDED_MONTHS",
    "SEND_INVOICE_CUSTOMERS",
    "UNCOLLECTIBLE",
    "UNIT_PRICES",
    "VOIDED",
    "erp_customer_names",
    "seed_store",
)

UNIT_PRICES: dict[str, dict[str, int]] = {
    "P-100": {"usd": 15_000, "eur": 14_000},
    "P-200": {"usd": 90_000, "eur": 85_000},
    "P-300": {"usd": 120_000, "eur": 110_000},
    "P-400": {"usd": 24_900, "eur": 22_900},
    "P-500": {"usd": 79_900, "eur": 74_900},
    "P-600": {"usd": 5_900, "eur": 5_500},
}
"""Unit amounts in minor units, by ERP product code and currency."""
EUR_CUSTOMERS = frozenset(
    code for code in (f"C-{n:03d}" for n in range(1, CUSTOMERS + 1)) if home_company(code).currency == "EUR"
)
"""ERP customers billed in EUR; the others are billed in USD."""
SEND_INVOICE_CUSTOMERS = frozenset(f"C-{n:03d}" for n in range(9, CUSTOMERS + 1))
"""ERP customers invoiced ``send_invoice`` (net 30); the others are charged automatically."""
SEEDED_MONTHS = range(1, 11)
"""Months of :data:`FISCAL_YEAR` with one invoice per customer."""
VOIDED = frozenset({(3, 4), (7, 9)})
"""(month, customer index) of the seeded invoices that were voided."""
UNCOLLECTIBLE = frozenset({(5, 2), (8, 11)})
"""(month, customer index) of the seeded invoices marked uncollectible."""
PAYMENT_METHOD = "pm_card_visa"
"""Every seeded customer's default payment method (Stripe's test card that always succeeds)."""
_RETENTION_MARGIN = 31 * 86400

# The ERP seed builds its party names from these words (system_apis/connectors/tryton/seed.py, _Seeder.masters).
_NAME_FIRST = (
    "Acme", "Blue", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz", "Riverside", "Summit", "Tidal",
)  # fmt: skip
_NAME_SECOND = (
    "Analytics", "Builders", "Components", "Dynamics", "Electric", "Foods", "Logistics", "Media",
    "Networks", "Partners", "Robotics", "Systems", "Textiles", "Ventures", "Works",
)  # fmt: skip
_NAME_SUFFIX = ("Ltd", "LLC", "Inc.", "GmbH", "S.A.", "B.V.")


def erp_customer_names(variant: int) -> list[str]:
    """The ERP seed's customer names for ``variant``, ``C-001`` first.

    The ERP seed draws every party name with the first call on its
    ``random.Random(variant)``: customers then suppliers, from the same word
    lists. This repeats that draw; if the ERP seed changes how it names
    parties, change this with it (the billing sandbox tests compare the two
    word lists).
    """
    names = random.Random(variant).sample(  # noqa: S311 - reproduces the ERP seed, not a secret
        [
            f"{first} {second} {suffix}"
            for first in _NAME_FIRST
            for second in _NAME_SECOND
            for suffix in _NAME_SUFFIX
        ],
        CUSTOMERS + SUPPLIERS,
    )
    return names[:CUSTOMERS]


def _timestamp(month: int, day: int, hour: int = 9) -> int:
    return int(dt.datetime(FISCAL_YEAR, month, day, hour, tzinfo=dt.UTC).timestamp())


def _prefix(code: str) -> str:
    return hashlib.sha256(f"invoice-prefix:{code}".encode()).hexdigest()[:8].upper()


def _email(name: str) -> str:
    local = "".join(char for char in name.lower().replace(" ", "-") if char.isalnum() or char == "-")
    return f"billing@{local.strip('-')}.example"


def seed_store(store: Store, variant: int, now: int) -> None:
    """Fill ``store`` with the seeded account for ERP seed ``variant``; nothing is dated later than
    ``now`` minus 31 days."""
    horizon = now - _RETENTION_MARGIN

    def at(timestamp: int) -> int:
        return min(timestamp, horizon)

    prices: dict[tuple[str, str], Price] = {}
    for spec in PRODUCTS:
        product = Product(
            id=seeded_id("prod", spec.code),
            created=at(_timestamp(1, 1, 8)),
            name=spec.name,
            metadata={"erp_product": spec.code, "erp_category": spec.category},
        )
        for currency, unit_amount in UNIT_PRICES[spec.code].items():
            price = Price(
                id=seeded_id("price", f"{spec.code}:{currency}"),
                created=product.created,
                product=product.id,
                currency=currency,
                unit_amount=unit_amount,
                lookup_key=f"{spec.code}:{currency}",
                nickname=f"{spec.name} ({currency.upper()})",
            )
            prices[spec.code, currency] = price
        product.default_price = prices[spec.code, "usd"].id
        store.add(product)
        for currency in UNIT_PRICES[spec.code]:
            store.add(prices[spec.code, currency])

    customers: list[Customer] = []
    for index, name in enumerate(erp_customer_names(variant)):
        code = f"C-{index + 1:03d}"
        customers.append(
            store.add(
                Customer(
                    id=seeded_id("cus", code),
                    created=at(_timestamp(1, 2, 8) + index * 60),
                    name=name,
                    email=_email(name),
                    currency="eur" if code in EUR_CUSTOMERS else "usd",
                    invoice_prefix=_prefix(code),
                    default_payment_method=PAYMENT_METHOD,
                    metadata={"erp_party": code},
                )
            )
        )

    rng = random.Random(f"billing-sandbox:{variant}")  # noqa: S311 - reproducible content, not secrets
    for month in SEEDED_MONTHS:
        for index, customer in enumerate(customers):
            _seed_invoice(store, rng, customer, month, index, prices, at)


def _seed_invoice(
    store: Store,
    rng: random.Random,
    customer: Customer,
    month: int,
    index: int,
    prices: dict[tuple[str, str], Price],
    at: Callable[[int], int],
) -> None:
    code = customer.metadata["erp_party"]
    currency = customer.currency or "usd"
    send_invoice = code in SEND_INVOICE_CUSTOMERS
    created = at(_timestamp(month, 1 + 2 * index))
    name = f"{code}:{FISCAL_YEAR}-{month:02d}"
    invoice = Invoice(
        id=seeded_id("in", name),
        created=created,
        customer=customer.id,
        currency=currency,
        collection_method="send_invoice" if send_invoice else "charge_automatically",
        days_until_due=30 if send_invoice else None,
        due_date=created + 30 * 86400 if send_invoice else None,
        description=f"Services and goods, {FISCAL_YEAR}-{month:02d}",
        metadata={"billing_period": f"{FISCAL_YEAR}-{month:02d}"},
        customer_name=customer.name,
        customer_email=customer.email,
    )
    store.add(invoice)
    for line, spec in enumerate(rng.sample(PRODUCTS, rng.randint(1, 3))):
        price = prices[spec.code, currency]
        quantity = rng.randint(1, 10)
        item = store.add(
            InvoiceItem(
                id=seeded_id("ii", f"{name}:{line}"),
                created=created,
                customer=customer.id,
                currency=currency,
                amount=price.unit_amount * quantity,
                quantity=quantity,
                unit_amount_decimal=Decimal(price.unit_amount),
                price=price.id,
                product=price.product,
                description=spec.name,
                invoice=invoice.id,
                period_start=created,
                period_end=created,
                line_id=seeded_id("il", f"{name}:{line}"),
            )
        )
        invoice.items.append(item.id)

    draw = rng.random()
    if month == SEEDED_MONTHS[-1] and index == 0:
        return  # one draft: the latest invoice of the first customer
    finalized = at(created + 3600)
    invoice.status, invoice.finalized_at, invoice.effective_at = "open", finalized, finalized
    invoice.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
    customer.next_invoice_sequence += 1
    latest = month >= SEEDED_MONTHS[-2]
    if latest and (send_invoice or draw < 0.4):
        return  # still open
    if (month, index) in VOIDED:
        invoice.status, invoice.voided_at = "void", at(finalized + 10 * 86400)
        return
    if (month, index) in UNCOLLECTIBLE:
        invoice.status, invoice.marked_uncollectible_at = "uncollectible", at(finalized + 45 * 86400)
        return
    paid_at = at(finalized + (rng.randint(5, 30) * 86400 if send_invoice else 0))
    amount = invoice.amount_due(store)
    payment = store.add(
        PaymentIntent(
            id=seeded_id("pi", name),
            created=paid_at,
            amount=amount,
            amount_received=amount,
            currency=currency,
            customer=customer.id,
            payment_method=PAYMENT_METHOD,
            status="succeeded",
            description="Payment for Invoice",
        )
    )
    charge = store.add(
        Charge(
            id=seeded_id("ch", name),
            created=paid_at,
            amount=amount,
            currency=currency,
            customer=customer.id,
            payment_intent=payment.id,
            payment_method=PAYMENT_METHOD,
            status="succeeded",
            description="Payment for Invoice",
        )
    )
    payment.latest_charge = charge.id
    link = store.add(
        InvoicePayment(
            id=seeded_id("inpay", name),
            created=paid_at,
            invoice=invoice.id,
            currency=currency,
            amount_requested=amount,
            amount_paid=amount,
            payment_intent=payment.id,
            status="paid",
            paid_at=paid_at,
        )
    )
    invoice.payments.append(link.id)
    invoice.status, invoice.paid_at, invoice.amount_paid = "paid", paid_at, amount
    invoice.attempt_count, invoice.attempted = 1, True
