"""ISO 4217 minor units and the check that an amount fits its currency."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from shared import canonical as c
from shared.errors import InvalidAmountError, UnknownCurrencyError


def test_minor_units_of_well_known_currencies() -> None:
    expected = {
        "JPY": 0,
        "KRW": 0,
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "KWD": 3,
        "BHD": 3,
        "TND": 3,
        "CLF": 4,
        "UYW": 4,
    }
    assert {code: c.minor_units(code) for code in expected} == expected


def test_the_table_is_iso_shaped_and_has_no_withdrawn_or_unit_less_codes() -> None:
    assert len(c.MINOR_UNITS) > 150
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in c.MINOR_UNITS)
    assert set(c.MINOR_UNITS.values()) <= {0, 2, 3, 4}
    assert not {"HRK", "SLL", "ZWL", "VEF", "MRO", "XAU", "XDR", "XTS", "XXX"} & set(c.MINOR_UNITS)
    assert {"SLE", "VES", "VED", "ZWG", "XCG", "MRU", "STN"} <= set(c.MINOR_UNITS)
    with pytest.raises(TypeError):
        c.MINOR_UNITS["USD"] = 3  # type: ignore[index]


def test_the_table_agrees_with_the_system_iso_codes_list_where_there_is_one() -> None:
    """Debian's iso-codes names the codes (not their units); each of ours must be in it or newer than it."""
    listing = Path("/usr/share/iso-codes/json/iso_4217.json")
    if not listing.exists():
        pytest.skip("iso-codes is not installed")
    known = {entry["alpha_3"] for entry in json.loads(listing.read_text(encoding="utf-8"))["4217"]}
    newer = {"XAD", "XCG", "ZWG"}  # added to ISO 4217 in 2024-2025
    assert set(c.MINOR_UNITS) - known <= newer


@pytest.mark.parametrize("code", ["XYZ", "usd", "US", "XAU", "HRK", ""])
def test_unknown_currencies_are_refused(code: str) -> None:
    with pytest.raises(UnknownCurrencyError) as caught:
        c.minor_units(code)
    assert caught.value.violations[0].reason == "unknown-currency"
    with pytest.raises(UnknownCurrencyError):
        c.check_amount(Decimal("1.00"), code)


@pytest.mark.parametrize(
    ("amount", "places"),
    [
        ("1", 0),
        ("1.50", 1),
        ("100.00", 0),
        ("0.001", 3),
        ("-12.3400", 2),
        ("0E-10", 0),
        ("1E+3", 0),
        ("123456789012345678901234567890.000000000000000000001", 21),
    ],
)
def test_decimal_places_ignores_trailing_zeros_and_never_rounds(amount: str, places: int) -> None:
    assert c.decimal_places(Decimal(amount)) == places


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1.00", "USD"), ("1.5", "USD"), ("1", "JPY"), ("100.00", "JPY"), ("1.125", "KWD"), ("-3.10", "EUR")],
)
def test_amounts_within_the_minor_unit_pass(amount: str, currency: str) -> None:
    c.check_amount(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("amount", "currency", "places", "allowed"),
    [
        ("1.001", "USD", 3, 2),
        ("1.5", "JPY", 1, 0),
        ("0.0001", "KWD", 4, 3),
        ("1.00000000000000000000000000001", "EUR", 29, 2),
    ],
)
def test_too_many_decimals_are_refused(amount: str, currency: str, places: int, allowed: int) -> None:
    with pytest.raises(InvalidAmountError) as caught:
        c.check_amount(Decimal(amount), currency, line=3, field="debit")
    (violation,) = caught.value.violations
    assert violation.reason == "too-many-decimals"
    assert (violation.line, violation.field) == (3, "debit")
    assert f"has {places} decimals; {currency} allows {allowed}" in violation.message
    assert caught.value.code == "invalid-amount"


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_amounts_are_refused(amount: str) -> None:
    with pytest.raises(InvalidAmountError, match="not a finite number"):
        c.check_amount(Decimal(amount), "USD")
    with pytest.raises(ValueError, match="not a finite number"):
        c.decimal_places(Decimal(amount))


def test_minor_unit_is_the_smallest_step() -> None:
    assert c.minor_unit("USD") == Decimal("0.01")
    assert c.minor_unit("JPY") == Decimal("1")
    assert c.minor_unit("KWD") == Decimal("0.001")
