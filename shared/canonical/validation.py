"""Business rules for what the API creates: checked after decoding, never while decoding.

Decoding checks shape only, so a record a source already holds always reads.
These functions check a create payload before anything is written, and refuse
it whole: they collect every violation, then raise one error that lists them
all in ``violations`` (line index, field, reason, message). The error's class,
and so its problem ``type``, is the first of these that applies; all answer 422:

1. :class:`~shared.errors.OversizedEntryError` (``/problems/oversized-entry``):
   ``too-many-lines``. Raised before any line is looked at.
2. :class:`~shared.errors.UnknownCurrencyError` (``/problems/unknown-currency``):
   ``unknown-currency``.
3. :class:`~shared.errors.InvalidAmountError` (``/problems/invalid-amount``):
   ``not-finite``, ``negative-amount``, ``debit-and-credit``, ``zero-line``,
   ``too-many-decimals``, ``not-positive``.
4. :class:`~shared.errors.UnbalancedJournalError` (``/problems/unbalanced-journal``):
   ``unbalanced``, one per currency, with the totals in ``imbalances``.
5. :class:`~shared.errors.InvalidEntryError` (``/problems/invalid-entry``):
   ``no-lines``, ``zero-quantity``, ``due-before-invoice-date``,
   ``ambiguous-reference``.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from shared.canonical.currencies import MINOR_UNITS
from shared.canonical.money import decimal_places
from shared.canonical.transactions import MAX_INVOICE_LINES, MAX_JOURNAL_LINES, MAX_UNIT_PRICE_DECIMALS
from shared.errors import (
    CurrencyImbalance,
    InvalidAmountError,
    InvalidEntryError,
    OversizedEntryError,
    UnbalancedJournalError,
    UnknownCurrencyError,
    Violation,
)

if TYPE_CHECKING:
    from shared.canonical.master import CustomerCreate, SupplierCreate
    from shared.canonical.transactions import InvoiceCreate, JournalEntryCreate, PaymentCreate

__all__ = (
    "validate_invoice",
    "validate_journal_entry",
    "validate_party",
    "validate_payment",
)

_ERROR_BY_REASON: Final[dict[str, type[InvalidEntryError]]] = {
    "too-many-lines": OversizedEntryError,
    "unknown-currency": UnknownCurrencyError,
    "not-finite": InvalidAmountError,
    "negative-amount": InvalidAmountError,
    "debit-and-credit": InvalidAmountError,
    "zero-line": InvalidAmountError,
    "too-many-decimals": InvalidAmountError,
    "not-positive": InvalidAmountError,
    "unbalanced": UnbalancedJournalError,
}

_PRECEDENCE: Final = (OversizedEntryError, UnknownCurrencyError, InvalidAmountError, UnbalancedJournalError)

_DETAIL_MESSAGES: Final = 5
"""How many violations the ``detail`` text spells out; ``violations`` always has them all."""

# Sums of up to 1,000 amounts of at most 40 characters are exact at this precision;
# the default context (28 digits) would round large ones and could hide an imbalance.
_EXACT: Final = decimal.Context(prec=200)


def validate_journal_entry(entry: JournalEntryCreate) -> None:
    """Check a journal entry before it is posted.

    Rules: at most :data:`MAX_JOURNAL_LINES` lines and at least one; each line
    in an active ISO 4217 currency, with finite, non-negative amounts within the
    currency's minor unit, a debit or a credit but not both, and not all zero;
    debits equal credits in each currency.

    Raises:
        OversizedEntryError, UnknownCurrencyError, InvalidAmountError,
        UnbalancedJournalError, InvalidEntryError: the module docstring says which.
    """
    _check_size(len(entry.lines), MAX_JOURNAL_LINES, "journal entry")
    violations: list[Violation] = []
    for index, line in enumerate(entry.lines):
        known = _check_currency(line.currency, violations, line=index)
        for field, amount in (("debit", line.debit), ("credit", line.credit)):
            if not amount.is_finite():
                violations.append(_finite(amount, index, field))
                continue
            if amount < 0:
                violations.append(
                    _violation("negative-amount", f"{field} {amount} is negative", line=index, field=field)
                )
            if known:
                _check_places(amount, line.currency, MINOR_UNITS[line.currency], violations, index, field)
        if line.debit.is_finite() and line.credit.is_finite():
            if line.debit and line.credit:
                violations.append(
                    _violation(
                        "debit-and-credit",
                        f"has both a debit ({line.debit}) and a credit ({line.credit}); split it in two lines",
                        line=index,
                    )
                )
            elif not line.debit and not line.credit:
                violations.append(_violation("zero-line", "debit and credit are both zero", line=index))
    imbalances = _imbalances(entry)
    violations.extend(
        _violation(
            "unbalanced",
            f"{gap.currency}: debits {gap.debit}, credits {gap.credit}, difference {gap.difference}",
            field="lines",
        )
        for gap in imbalances
    )
    _raise_if_any(violations, imbalances, "journal entry")


def validate_invoice(invoice: InvoiceCreate) -> None:
    """Check a receivable invoice before it is created.

    Rules: one to :data:`MAX_INVOICE_LINES` lines; an active currency; a due
    date not before the invoice date; on each line a finite, non-zero quantity
    and a finite, non-negative unit price of at most
    :data:`~shared.canonical.transactions.MAX_UNIT_PRICE_DECIMALS` decimals.

    Raises:
        OversizedEntryError, UnknownCurrencyError, InvalidAmountError,
        InvalidEntryError: the module docstring says which.
    """
    _check_size(len(invoice.lines), MAX_INVOICE_LINES, "invoice")
    violations: list[Violation] = []
    _check_currency(invoice.currency, violations)
    if invoice.due_date is not None and invoice.due_date < invoice.invoice_date:
        violations.append(
            _violation(
                "due-before-invoice-date",
                f"due date {invoice.due_date} is before the invoice date {invoice.invoice_date}",
                field="due_date",
            )
        )
    for index, line in enumerate(invoice.lines):
        if not line.quantity.is_finite():
            violations.append(_finite(line.quantity, index, "quantity"))
        elif not line.quantity:
            violations.append(_violation("zero-quantity", "quantity is zero", line=index, field="quantity"))
        price = line.unit_price
        if not price.is_finite():
            violations.append(_finite(price, index, "unit_price"))
            continue
        if price < 0:
            violations.append(
                _violation(
                    "negative-amount", f"unit_price {price} is negative", line=index, field="unit_price"
                )
            )
        _check_places(price, "a unit price", MAX_UNIT_PRICE_DECIMALS, violations, index, "unit_price")
    _raise_if_any(violations, (), "invoice")


def validate_payment(payment: PaymentCreate) -> None:
    """Check a payment before it is recorded.

    Rules: an active currency; a finite, positive amount within its minor unit;
    the settled document named by exactly one of ``id`` and ``external_ref``.

    Raises:
        UnknownCurrencyError, InvalidAmountError, InvalidEntryError: the module docstring says which.
    """
    violations: list[Violation] = []
    known = _check_currency(payment.currency, violations)
    amount = payment.amount
    if not amount.is_finite():
        violations.append(_finite(amount, None, "amount"))
    else:
        if amount <= 0:
            violations.append(_violation("not-positive", f"amount {amount} is not positive", field="amount"))
        if known:
            _check_places(amount, payment.currency, MINOR_UNITS[payment.currency], violations, None, "amount")
    if (payment.settles.id is None) == (payment.settles.external_ref is None):
        violations.append(
            _violation(
                "ambiguous-reference",
                "settles must name the document by exactly one of id and external_ref",
                field="settles",
            )
        )
    _raise_if_any(violations, (), "payment")


def validate_party(party: CustomerCreate | SupplierCreate) -> None:
    """Check a customer or supplier before it is created: its currency, when given, is active.

    Raises:
        UnknownCurrencyError: the currency is not an active ISO 4217 code.
    """
    violations: list[Violation] = []
    if party.currency is not None:
        _check_currency(party.currency, violations)
    _raise_if_any(violations, (), "party")


def _violation(reason: str, text: str, *, line: int | None = None, field: str | None = None) -> Violation:
    where = f"line {line}: " if line is not None else ""
    return Violation(reason=reason, message=f"{where}{text}", line=line, field=field)


def _finite(amount: Decimal, line: int | None, field: str) -> Violation:
    return _violation("not-finite", f"{field} {amount} is not a finite number", line=line, field=field)


def _check_size(count: int, limit: int, what: str) -> None:
    if count > limit:
        message = f"{what} has {count:,} lines; at most {limit:,} are accepted"
        raise OversizedEntryError(message, violations=[_violation("too-many-lines", message, field="lines")])
    if count == 0:
        message = f"{what} has no lines"
        raise InvalidEntryError(message, violations=[_violation("no-lines", message, field="lines")])


def _check_currency(currency: str, violations: list[Violation], *, line: int | None = None) -> bool:
    if currency in MINOR_UNITS:
        return True
    violations.append(
        _violation(
            "unknown-currency",
            f"{currency!r} is not an active ISO 4217 currency code",
            line=line,
            field="currency",
        )
    )
    return False


def _check_places(
    amount: Decimal, unit: str, allowed: int, violations: list[Violation], line: int | None, field: str
) -> None:
    places = decimal_places(amount)
    if places > allowed:
        violations.append(
            _violation(
                "too-many-decimals",
                f"{field} {amount} has {places} decimals; {unit} allows {allowed}",
                line=line,
                field=field,
            )
        )


def _imbalances(entry: JournalEntryCreate) -> list[CurrencyImbalance]:
    totals: dict[str, tuple[Decimal, Decimal, list[int]]] = {}
    with decimal.localcontext(_EXACT):
        for index, line in enumerate(entry.lines):
            if not (line.debit.is_finite() and line.credit.is_finite()):
                continue
            debit, credit, lines = totals.get(line.currency, (Decimal(0), Decimal(0), []))
            lines.append(index)
            totals[line.currency] = (debit + line.debit, credit + line.credit, lines)
        return [
            CurrencyImbalance(
                currency=currency, debit=debit, credit=credit, difference=debit - credit, lines=tuple(lines)
            )
            for currency, (debit, credit, lines) in totals.items()
            if debit != credit
        ]


def _raise_if_any(
    violations: Sequence[Violation], imbalances: Sequence[CurrencyImbalance], what: str
) -> None:
    if not violations:
        return
    classes = {_ERROR_BY_REASON.get(violation.reason, InvalidEntryError) for violation in violations}
    error = next((cls for cls in _PRECEDENCE if cls in classes), InvalidEntryError)
    shown = "; ".join(violation.message for violation in violations[:_DETAIL_MESSAGES])
    more = len(violations) - _DETAIL_MESSAGES
    detail = f"{what} refused: {shown}" + (f"; and {more} more" if more > 0 else "")
    raise error(detail, violations=violations, imbalances=imbalances)
