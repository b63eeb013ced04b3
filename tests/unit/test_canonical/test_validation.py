"""Business rules of the create payloads, and how their errors answer as problem+json."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient

from shared import canonical as c
from shared.errors import (
    FinsyncError,
    InvalidAmountError,
    InvalidEntryError,
    OversizedEntryError,
    UnbalancedJournalError,
    UnknownCurrencyError,
)
from shared.problems import STATUS_BY_ERROR, problem_page, problems_plugin
from tests.unit.test_canonical.samples import BALANCED_USD, entry, every_type, line


def test_a_balanced_entry_passes() -> None:
    c.validate_journal_entry(BALANCED_USD)


def test_a_balanced_multi_currency_entry_passes() -> None:
    c.validate_journal_entry(
        entry(
            line("1100", debit="100.00", currency="USD"),
            line("1100", debit="15000", currency="JPY"),
            line("4000", credit="60.00", currency="USD"),
            line("1200", debit="0.125", currency="KWD"),
            line("4000", credit="40", currency="USD"),
            line("4000", credit="15000", currency="JPY"),
            line("4000", credit="0.125", currency="KWD"),
        )
    )


def test_an_unbalanced_entry_names_its_currency_and_the_difference() -> None:
    unbalanced = entry(
        line("1100", debit="100.00", currency="USD"),
        line("4000", credit="100.00", currency="USD"),
        line("1100", debit="100.00", currency="EUR"),
        line("4000", credit="90.00", currency="EUR"),
    )
    with pytest.raises(UnbalancedJournalError) as caught:
        c.validate_journal_entry(unbalanced)
    error = caught.value
    (gap,) = error.imbalances
    assert (gap.currency, gap.debit, gap.credit, gap.difference, gap.lines) == (
        "EUR",
        Decimal("100.00"),
        Decimal("90.00"),
        Decimal("10.00"),
        (2, 3),
    )
    assert "EUR: debits 100.00, credits 90.00, difference 10.00" in error.detail
    assert [violation.reason for violation in error.violations] == ["unbalanced"]
    # Problem members are plain JSON values: money as strings.
    assert msgspec.json.decode(msgspec.json.encode(error.extra["imbalances"])) == [
        {"currency": "EUR", "debit": "100.00", "credit": "90.00", "difference": "10.00", "lines": [2, 3]}
    ]


def test_one_currency_does_not_balance_another() -> None:
    with pytest.raises(UnbalancedJournalError) as caught:
        c.validate_journal_entry(
            entry(line("1100", debit="10.00", currency="USD"), line("4000", credit="10.00", currency="EUR"))
        )
    assert [(gap.currency, gap.difference) for gap in caught.value.imbalances] == [
        ("USD", Decimal("10.00")),
        ("EUR", Decimal("-10.00")),
    ]


def test_every_offending_line_is_named_with_its_reason() -> None:
    bad = entry(
        line("1100", debit="-5.00"),
        line("1100", debit="5.00", credit="5.00"),
        line("1100"),
        line("1100", debit="1.001"),
        line("1100", debit="1.5", currency="JPY"),
        line("4000", credit="0.999"),
    )
    with pytest.raises(InvalidAmountError) as caught:
        c.validate_journal_entry(bad)
    found = [(violation.line, violation.field, violation.reason) for violation in caught.value.violations]
    assert found == [
        (0, "debit", "negative-amount"),
        (1, None, "debit-and-credit"),
        (2, None, "zero-line"),
        (3, "debit", "too-many-decimals"),
        (4, "debit", "too-many-decimals"),
        (5, "credit", "too-many-decimals"),
        (None, "lines", "unbalanced"),
        (None, "lines", "unbalanced"),
    ]
    messages = [violation.message for violation in caught.value.violations]
    assert messages[3] == "line 3: debit 1.001 has 3 decimals; USD allows 2"
    assert messages[4] == "line 4: debit 1.5 has 1 decimals; JPY allows 0"
    # The detail spells out the first few; the member lists them all.
    assert caught.value.detail.startswith("journal entry refused: line 0: debit -5.00 is negative; line 1:")
    assert caught.value.detail.endswith("; and 3 more")
    assert len(caught.value.extra["violations"]) == 8


def test_unknown_currency_on_each_line_is_reported_per_line() -> None:
    with pytest.raises(UnknownCurrencyError) as caught:
        c.validate_journal_entry(
            entry(line("1100", debit="1.00", currency="XYZ"), line("4000", credit="1.00", currency="XYZ"))
        )
    assert [(v.line, v.field, v.reason) for v in caught.value.violations] == [
        (0, "currency", "unknown-currency"),
        (1, "currency", "unknown-currency"),
    ]
    assert caught.value.violations[0].message == "line 0: 'XYZ' is not an active ISO 4217 currency code"


def test_the_first_applicable_error_class_wins_and_all_violations_travel_with_it() -> None:
    with pytest.raises(UnknownCurrencyError) as caught:
        c.validate_journal_entry(
            entry(line("1100", debit="-1.00", currency="XYZ"), line("4000", credit="1.00"))
        )
    assert {v.reason for v in caught.value.violations} == {
        "unknown-currency",
        "negative-amount",
        "unbalanced",
    }


def test_an_oversized_entry_is_refused_before_its_lines_are_read() -> None:
    lines = [line("1100", debit="1.00"), line("4000", credit="1.00")] * (c.MAX_JOURNAL_LINES // 2)
    c.validate_journal_entry(entry(*lines))
    with pytest.raises(OversizedEntryError) as caught:
        c.validate_journal_entry(entry(*lines, line("1100", debit="-1", currency="XYZ")))
    (violation,) = caught.value.violations
    assert violation.reason == "too-many-lines"
    assert caught.value.detail == "journal entry has 1,001 lines; at most 1,000 are accepted"
    assert c.MAX_JOURNAL_LINES == 1_000


def test_an_entry_without_lines_is_refused() -> None:
    with pytest.raises(InvalidEntryError) as caught:
        c.validate_journal_entry(entry())
    assert type(caught.value) is InvalidEntryError
    assert caught.value.violations[0].reason == "no-lines"


def test_non_finite_amounts_built_in_python_are_refused() -> None:
    with pytest.raises(InvalidAmountError) as caught:
        c.validate_journal_entry(entry(line("1100", debit="NaN"), line("4000", credit="1.00")))
    assert caught.value.violations[0].reason == "not-finite"


def test_sums_are_exact_even_beyond_the_default_decimal_precision() -> None:
    # 31 significant digits: the default context (28) would round both sides to the same total.
    with pytest.raises(UnbalancedJournalError) as caught:
        c.validate_journal_entry(
            entry(
                line("1100", debit="1000000000000000000000000000.01"),
                line("4000", credit="1000000000000000000000000000.00"),
            )
        )
    assert caught.value.imbalances[0].difference == Decimal("0.01")


def _invoice(**changes: object) -> c.InvoiceCreate:
    invoice = next(sample for sample in every_type() if isinstance(sample, c.InvoiceCreate))
    return msgspec.structs.replace(invoice, **changes)


def test_a_valid_invoice_passes() -> None:
    c.validate_invoice(_invoice())


def test_invoice_rules() -> None:
    good = _invoice().lines[0]
    lines = (
        msgspec.structs.replace(good, quantity=Decimal(0)),
        msgspec.structs.replace(good, unit_price=Decimal("-1")),
        msgspec.structs.replace(good, unit_price=Decimal("0.00001")),
    )
    with pytest.raises(InvalidAmountError) as caught:
        c.validate_invoice(_invoice(lines=lines, due_date=date(2026, 3, 1)))
    assert [(v.line, v.field, v.reason) for v in caught.value.violations] == [
        (None, "due_date", "due-before-invoice-date"),
        (0, "quantity", "zero-quantity"),
        (1, "unit_price", "negative-amount"),
        (2, "unit_price", "too-many-decimals"),
    ]
    with pytest.raises(UnknownCurrencyError):
        c.validate_invoice(_invoice(currency="ABC"))
    with pytest.raises(OversizedEntryError):
        c.validate_invoice(_invoice(lines=(good,) * (c.MAX_INVOICE_LINES + 1)))


def _payment(**changes: object) -> c.PaymentCreate:
    payment = next(sample for sample in every_type() if isinstance(sample, c.PaymentCreate))
    return msgspec.structs.replace(payment, **changes)


def test_payment_rules() -> None:
    c.validate_payment(_payment())
    c.validate_payment(_payment(currency="JPY", amount=Decimal("2250")))
    for amount, reason in (
        ("0.00", "not-positive"),
        ("-1.00", "not-positive"),
        ("1.001", "too-many-decimals"),
    ):
        with pytest.raises(InvalidAmountError) as caught:
            c.validate_payment(_payment(amount=Decimal(amount)))
        assert [v.reason for v in caught.value.violations] == [reason]
    with pytest.raises(InvalidAmountError, match="JPY allows 0"):
        c.validate_payment(_payment(currency="JPY", amount=Decimal("1.5")))
    with pytest.raises(UnknownCurrencyError):
        c.validate_payment(_payment(currency="EUX"))
    for settles in (
        c.DocumentRef(kind=c.DocumentKind.INVOICE),
        c.DocumentRef(kind=c.DocumentKind.INVOICE, id="erp-us:invoice:1", external_ref="crm:1"),
    ):
        with pytest.raises(InvalidEntryError) as refused:
            c.validate_payment(_payment(settles=settles))
        assert [v.reason for v in refused.value.violations] == ["ambiguous-reference"]


def test_party_rules() -> None:
    c.validate_party(c.CustomerCreate(external_ref="crm:1", name="Acme"))
    c.validate_party(c.SupplierCreate(external_ref="p:1", name="Acme", currency="EUR"))
    with pytest.raises(UnknownCurrencyError):
        c.validate_party(c.SupplierCreate(external_ref="p:1", name="Acme", currency="EUX"))


@get("/raise/{kind:str}", sync_to_thread=False)
def _raise(kind: FromPath[str]) -> None:
    if kind == "unbalanced":
        c.validate_journal_entry(
            entry(line("1100", debit="10.00", currency="EUR"), line("4000", credit="9.99", currency="EUR"))
        )
    c.validate_journal_entry(entry(line("1100", debit="1.001"), line("4000", credit="1.001")))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidEntryError, "invalid-entry"),
        (OversizedEntryError, "oversized-entry"),
        (UnknownCurrencyError, "unknown-currency"),
        (InvalidAmountError, "invalid-amount"),
        (UnbalancedJournalError, "unbalanced-journal"),
    ],
)
def test_each_error_is_a_422_with_its_own_problem_type_and_page(error: type[FinsyncError], code: str) -> None:
    assert error.code == code
    assert STATUS_BY_ERROR[error] == 422
    with TestClient(Litestar([problem_page], plugins=[problems_plugin()])) as client:
        page = client.get(f"/problems/{code}")
    assert page.status_code == 200
    assert f"/problems/{code}" in page.text
    assert error.title in page.text


def test_problem_bodies_carry_the_lines_and_money_as_strings() -> None:
    with TestClient(Litestar([_raise], plugins=[problems_plugin()])) as client:
        unbalanced = client.get("/raise/unbalanced")
        invalid = client.get("/raise/invalid")
    assert unbalanced.status_code == 422
    assert unbalanced.headers["content-type"].startswith("application/problem+json")
    body = unbalanced.json()
    assert body["type"] == "/problems/unbalanced-journal"
    assert body["title"] == "Unbalanced journal entry"
    assert body["imbalances"] == [
        {"currency": "EUR", "debit": "10.00", "credit": "9.99", "difference": "0.01", "lines": [0, 1]}
    ]
    assert body["violations"][0]["reason"] == "unbalanced"
    assert "difference 0.01" in body["detail"]
    body = invalid.json()
    assert invalid.status_code == 422
    assert body["type"] == "/problems/invalid-amount"
    assert [(v["line"], v["field"], v["reason"]) for v in body["violations"]] == [
        (0, "debit", "too-many-decimals"),
        (1, "credit", "too-many-decimals"),
    ]
    assert "imbalances" not in body
