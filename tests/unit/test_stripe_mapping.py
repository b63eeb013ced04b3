"""The Stripe connector's pure parts: minor units both ways, Stripe's form brackets, and the mapping rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from shared.canonical import BillingInvoiceCreate, BillingInvoiceLineCreate, BillingInvoiceStatus
from shared.errors import InvalidAmountError, InvalidEntryError, UnknownCurrencyError
from system_apis.connectors.stripe import wire
from system_apis.connectors.stripe.client import encode_form
from system_apis.connectors.stripe.invoicing import plan_lines
from system_apis.connectors.stripe.mapping import (
    Rules,
    customer_record,
    from_minor,
    invoice_record,
    search_literal,
    stripe_id,
    to_minor,
)

RULES = Rules(source="billing", version="stripe/v1", entity_by_currency={"USD": "FS-US", "EUR": "FS-EU"})


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [
        (12345, "usd", "123.45"),
        (5, "eur", "0.05"),
        (-100, "usd", "-1.00"),
        (500, "jpy", "500"),
        (1234, "kwd", "1.234"),
        (100, "isk", "1.00"),  # Stripe keeps ISK two-decimal, though ISO 4217 gives it none
        (99_999_999, "usd", "999999.99"),
    ],
)
def test_minor_units_convert_exactly_both_ways(minor: int, currency: str, amount: str) -> None:
    assert from_minor(minor, currency) == Decimal(amount)
    assert str(from_minor(minor, currency)) == amount, "the currency's decimals are kept"
    assert to_minor(Decimal(amount), currency) == minor


def test_a_fractional_unit_amount_from_stripe_stays_exact() -> None:
    assert from_minor("1234.5", "usd") == Decimal("12.345")


@pytest.mark.parametrize(
    ("amount", "currency"), [("1.005", "USD"), ("1.5", "JPY"), ("0.001", "EUR"), ("1.5", "ISK")]
)
def test_an_amount_finer_than_the_minor_unit_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(InvalidAmountError, match="decimals"):
        to_minor(Decimal(amount), currency)


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrencyError):
        to_minor(Decimal(1), "XYZ")


def test_forms_use_stripes_brackets() -> None:
    assert encode_form(
        {
            "customer": "cus_1",
            "metadata": {"finsync_ref": "a b", "gone": None},
            "expand": ["customer", "data.lines"],
            "lines": [{"amount": 5}],
            "auto_advance": False,
            "unit_amount_decimal": Decimal("1E+2"),
            "created": {"gte": 10, "lt": None},
            "skipped": None,
        }
    ) == [
        ("customer", "cus_1"),
        ("metadata[finsync_ref]", "a b"),
        ("expand[]", "customer"),
        ("expand[]", "data.lines"),
        ("lines[0][amount]", "5"),
        ("auto_advance", "false"),
        ("unit_amount_decimal", "100"),
        ("created[gte]", "10"),
    ]


def test_search_literals_escape_quotes_and_backslashes() -> None:
    assert search_literal("it's") == "'it\\'s'"
    assert search_literal("a\\b") == "'a\\\\b'"


def test_record_ids_carry_the_source_and_kind() -> None:
    assert stripe_id("billing", "invoice", "billing:invoice:in_1") == "in_1"
    assert stripe_id("billing", "invoice", "in_1") == "in_1"
    assert stripe_id("billing", "invoice", "other:invoice:in_1") == "other:invoice:in_1"


INVOICE = {
    "id": "in_1",
    "customer": {"id": "cus_1", "created": 1, "metadata": {"erp_party": "C-007"}, "currency": "eur"},
    "status": "paid",
    "currency": "eur",
    "created": 1_767_000_000,
    "amount_due": 370369,
    "amount_paid": 370369,
    "amount_remaining": 0,
    "total": 370369,
    "number": "ABC-0001",
    "metadata": {"finsync_ref": "crm:1", "opportunity_id": "006X"},
    "status_transitions": {"finalized_at": 1_767_000_100, "paid_at": 1_767_000_200, "voided_at": None},
    "lines": {
        "data": [
            {
                "id": "il_1",
                "amount": 370368,
                "currency": "eur",
                "quantity": 3,
                "description": "Implementation",
                "pricing": {
                    "price_details": {"price": "price_1", "product": "prod_1"},
                    "unit_amount_decimal": "123456",
                },
            },
            {
                "id": "il_2",
                "amount": 1,
                "currency": "eur",
                "quantity": 1,
                "pricing": {"unit_amount_decimal": "1"},
            },
        ],
        "has_more": False,
    },
    "some_field_stripe_added_later": True,
}


def test_an_invoice_maps_to_the_canonical_record() -> None:
    invoice = msgspec.convert(INVOICE, wire.Invoice)
    record = invoice_record(RULES, invoice, invoice.lines.data, {"prod_1": "P-200"})
    assert record.id == "billing:invoice:in_1"
    assert (record.source_ref, record.external_ref, record.booking_ref) == ("in_1", "crm:1", "006X")
    assert (record.customer, record.customer_ref) == ("C-007", "cus_1")
    assert record.entity == "FS-EU", "no legal_entity metadata: the currency's entity"
    assert record.status is BillingInvoiceStatus.PAID
    assert (record.total, record.amount_remaining, record.currency) == (
        Decimal("3703.69"),
        Decimal("0.00"),
        "EUR",
    )
    assert record.modified_at == datetime.fromtimestamp(1_767_000_200, UTC), "the latest transition"
    assert [(line.product, line.unit_price, line.amount) for line in record.lines] == [
        ("P-200", Decimal("1234.56"), Decimal("3703.68")),
        (None, Decimal("0.01"), Decimal("0.01")),
    ]
    assert record.mapping_version == "stripe/v1"


def test_the_invoices_own_entity_wins_and_a_customer_without_a_party_keeps_its_id() -> None:
    invoice = msgspec.convert(
        {**INVOICE, "metadata": {"legal_entity": "FS-IE"}, "customer": "cus_2"}, wire.Invoice
    )
    record = invoice_record(RULES, invoice, [], {})
    assert (record.entity, record.customer, record.customer_ref) == ("FS-IE", None, "cus_2")
    customer = customer_record(RULES, wire.Customer(id="cus_2", created=5, email="a@b.example"))
    assert (customer.code, customer.name, customer.currency) == ("cus_2", "a@b.example", None)


def _create(currency: str, entity: str, *prices: str) -> BillingInvoiceCreate:
    return BillingInvoiceCreate(
        external_ref="crm:1",
        customer="C-001",
        entity=entity,
        currency=currency,
        lines=tuple(
            BillingInvoiceLineCreate(description="x", quantity=2, unit_price=Decimal(price))
            for price in prices
        ),
    )


def test_lines_are_planned_in_minor_units_or_refused_all_at_once() -> None:
    (line,) = plan_lines(_create("USD", "FS-US", "10.50"), RULES)
    assert (line.index, line.quantity, line.unit_amount) == (0, 2, 1050)
    with pytest.raises(InvalidAmountError) as refused:
        plan_lines(_create("USD", "FS-US", "1.001", "-1", "99999999"), RULES)
    assert [(v.line, v.reason) for v in refused.value.violations] == [
        (0, "too-many-decimals"),
        (1, "negative-amount"),
        (2, "amount-too-large"),
    ]
    with pytest.raises(InvalidEntryError, match="billed by FS-EU"):
        plan_lines(_create("EUR", "FS-US", "1"), RULES)
