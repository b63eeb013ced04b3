"""Money: ``Decimal`` amounts, written in JSON as decimal strings, each beside its ISO 4217 currency.

Encoding is msgspec's own: a ``Decimal`` always goes out as a string (``"1250.00"``).
Decoding is stricter than msgspec's, which also takes JSON numbers for a
``Decimal``: :mod:`shared.canonical.codec` refuses anything but a string that
matches :data:`DECIMAL_PATTERN` wherever the model has a ``Decimal``, so a float
never becomes money. The same pattern is in the JSON schema and the OpenAPI spec.

Whether an amount fits its currency (no more decimals than the minor unit) is a
business rule, checked by :func:`check_amount`, not by decoding, so that reading
what a source already holds never fails.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Final

from msgspec import Meta

from shared.canonical.currencies import minor_units
from shared.errors import InvalidAmountError, Violation

__all__ = (
    "DECIMAL_PATTERN",
    "MAX_DECIMAL_LENGTH",
    "Amount",
    "CurrencyCode",
    "Quantity",
    "Rate",
    "check_amount",
    "decimal_places",
    "minor_unit",
)

DECIMAL_PATTERN: Final = r"^-?[0-9]+(\.[0-9]+)?$"
"""A decimal string as the API writes and reads it: optional minus, digits, optional fraction; no exponent."""

MAX_DECIMAL_LENGTH: Final = 40
"""Longest decimal string accepted, so a giant number cannot cost the decoder."""

# Schema for every Decimal field. msgspec's JSON schema reads "pattern" and "maxLength";
# Litestar's OpenAPI generator reads only the "extra" member of extra_json_schema, so both are given.
_DECIMAL_SCHEMA: Final[dict[str, Any]] = {
    "pattern": DECIMAL_PATTERN,
    "maxLength": MAX_DECIMAL_LENGTH,
    "extra": {"pattern": DECIMAL_PATTERN, "maxLength": MAX_DECIMAL_LENGTH},
}

Amount = Annotated[
    Decimal,
    Meta(
        description="Money as a decimal string, in the currency given beside it.",
        examples=["1250.00"],
        extra_json_schema=_DECIMAL_SCHEMA,
    ),
]
"""An amount of money; a JSON string such as ``"1250.00"``, never a JSON number."""

Quantity = Annotated[
    Decimal,
    Meta(
        description="A quantity as a decimal string.",
        examples=["3", "1.5"],
        extra_json_schema=_DECIMAL_SCHEMA,
    ),
]
"""A quantity of goods or time, such as an invoice line's; a decimal string."""

Rate = Annotated[
    Decimal,
    Meta(
        description="A rate as a decimal fraction string: 0.2 is 20%.",
        examples=["0.2"],
        extra_json_schema=_DECIMAL_SCHEMA,
    ),
]
"""A fraction, such as a tax rate (``"0.2"`` for 20%); a decimal string."""

CurrencyCode = Annotated[
    str,
    Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 alphabetic currency code.", examples=["USD"]),
]
"""An ISO 4217 code by shape; whether it is an active one is checked by :func:`check_amount`."""


def decimal_places(amount: Decimal) -> int:
    """How many decimals ``amount`` needs, ignoring trailing zeros: 1.50 needs 1, 100.00 needs 0.

    Exact for any size (no rounding to the decimal context). Non-finite values
    (NaN, infinity) raise ``ValueError``.
    """
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a finite number")
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, so not one of the NaN or infinity markers
    # The digits are 0-9, so as bytes their trailing zeros strip like NUL bytes.
    trailing_zeros = len(digits) - len(bytes(digits).rstrip(b"\x00"))
    if trailing_zeros == len(digits):
        return 0
    return max(-exponent - trailing_zeros, 0)


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``Decimal("0.01")`` for USD, ``Decimal("1")`` for JPY.

    Raises:
        UnknownCurrencyError: ``currency`` is not an active ISO 4217 code.
    """
    return Decimal(1).scaleb(-minor_units(currency))


def check_amount(amount: Decimal, currency: str, *, line: int | None = None, field: str = "amount") -> None:
    """Check that ``amount`` is a finite number with no more decimals than ``currency`` allows.

    ``1.001 USD`` and ``1.5 JPY`` fail; ``100.00 JPY`` passes, as its value fits
    the minor unit. ``line`` and ``field`` name the place in the error.

    Raises:
        UnknownCurrencyError: ``currency`` is not an active ISO 4217 code.
        InvalidAmountError: the amount is not finite or has too many decimals.
    """
    allowed = minor_units(currency)
    where = f"line {line}: " if line is not None else ""
    if not amount.is_finite():
        message = f"{where}{field} {amount} is not a finite number"
        raise InvalidAmountError(
            message, violations=[Violation(reason="not-finite", line=line, field=field, message=message)]
        )
    places = decimal_places(amount)
    if places > allowed:
        message = f"{where}{field} {amount} has {places} decimals; {currency} allows {allowed}"
        raise InvalidAmountError(
            message,
            violations=[Violation(reason="too-many-decimals", line=line, field=field, message=message)],
        )
