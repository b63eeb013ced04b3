"""The order-to-cash state machine and its map: pure, so every arrival order is checked here by value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from process_apis.flows.order_to_cash import DealStep, InvoiceStep, deal_step, invoice_steps, load_map
from shared.canonical.billing import BillingInvoiceStatus
from shared.canonical.crm import BookingStatus
from shared.errors import SettingsError

ZERO, HALF, ALL = Decimal(0), Decimal("50.00"), Decimal("100.00")


@pytest.mark.parametrize(
    ("status", "invoiced", "step"),
    [
        (BookingStatus.WON, False, DealStep.INVOICE),
        (
            BookingStatus.WON,
            True,
            DealStep.INVOICE,
        ),  # again: the billing invoice's external_ref makes it once
        (BookingStatus.OPEN, False, DealStep.NONE),
        (BookingStatus.LOST, False, DealStep.NONE),
        (BookingStatus.OPEN, True, DealStep.REOPENED),
        (BookingStatus.LOST, True, DealStep.REOPENED),
    ],
)
def test_a_deal_is_invoiced_when_won_and_an_exception_when_unwon_after_invoicing(
    status: BookingStatus, invoiced: bool, step: DealStep
) -> None:
    assert deal_step(status, invoiced=invoiced) is step


@pytest.mark.parametrize(
    ("status", "paid", "remaining", "reported", "posted", "steps"),
    [
        (BillingInvoiceStatus.DRAFT, ZERO, ALL, False, False, []),
        (BillingInvoiceStatus.OPEN, ZERO, ALL, False, False, [InvoiceStep.POST_RECEIVABLE]),
        (
            BillingInvoiceStatus.PAID,
            ALL,
            ZERO,
            False,
            False,
            [InvoiceStep.POST_RECEIVABLE, InvoiceStep.POST_PAYMENT],
        ),
        (
            BillingInvoiceStatus.OPEN,
            HALF,
            HALF,
            False,
            False,
            [InvoiceStep.POST_RECEIVABLE, InvoiceStep.PARTIAL_PAYMENT],
        ),
        (
            BillingInvoiceStatus.OPEN,
            ZERO,
            ALL,
            True,
            False,
            [InvoiceStep.POST_RECEIVABLE, InvoiceStep.PARTIAL_PAYMENT],
        ),
        # A partial payment an event reported, but billing says paid now: the payment, not an exception.
        (
            BillingInvoiceStatus.PAID,
            ALL,
            ZERO,
            True,
            False,
            [InvoiceStep.POST_RECEIVABLE, InvoiceStep.POST_PAYMENT],
        ),
        (BillingInvoiceStatus.VOID, ZERO, ZERO, False, True, [InvoiceStep.REVERSE]),
        (BillingInvoiceStatus.VOID, ZERO, ZERO, False, False, [InvoiceStep.CANCEL]),
        (
            BillingInvoiceStatus.UNCOLLECTIBLE,
            ZERO,
            ALL,
            False,
            False,
            [InvoiceStep.POST_RECEIVABLE, InvoiceStep.UNCOLLECTIBLE],
        ),
    ],
)
def test_an_invoice_calls_for_the_steps_of_where_it_stands_now(
    status: BillingInvoiceStatus,
    paid: Decimal,
    remaining: Decimal,
    reported: bool,
    posted: bool,
    steps: list[InvoiceStep],
) -> None:
    assert (
        invoice_steps(status, paid=paid, remaining=remaining, reported_partial=reported, posted=posted)
        == steps
    )


def test_the_packaged_map_maps_the_crms_entities_and_refuses_the_unknown() -> None:
    mapping = load_map()
    assert mapping.version == "o2c/v1"
    assert mapping.entity("FS-US") == "FS-US"
    assert mapping.entity("FS-EU") == "FS-EU"
    assert mapping.entity("FS-XX") is None
    assert mapping.entity(None) is None
    assert mapping.receivable_account == "1.2.1"


def test_a_map_that_breaks_its_shape_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "v9.toml").write_text('version = "o2c/v9"\n[entities]\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid"):
        load_map("v9", tmp_path)
    with pytest.raises(SettingsError, match="no order-to-cash map"):
        load_map("v8", tmp_path)
