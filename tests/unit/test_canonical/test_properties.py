"""Property: any balanced entry passes validation, and one minor unit off anywhere makes it fail."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import canonical as c
from shared.errors import InvalidAmountError, UnbalancedJournalError
from tests.unit.test_canonical.samples import entry

CURRENCIES = ("USD", "EUR", "JPY", "KWD", "CLF")
ACCOUNTS = ("1100", "1200", "2000", "4000", "6100")
MAX_UNITS = 10**13  # minor units per line: up to 100 billion dollars


def _amount(units: int, currency: str) -> Decimal:
    """``units`` minor units of ``currency``, quantized to its minor unit (JPY 1, USD 0.01, KWD 0.001)."""
    return Decimal(units).scaleb(-c.minor_units(currency))


@st.composite
def _split(draw: st.DrawFn, total: int) -> list[int]:
    """``total`` cut into 1 to 8 positive parts."""
    if total == 1:
        return [1]
    cuts = draw(st.lists(st.integers(1, total - 1), max_size=min(7, total - 1), unique=True))
    bounds = [0, *sorted(cuts), total]
    return [high - low for low, high in itertools.pairwise(bounds)]


@st.composite
def balanced_entries(draw: st.DrawFn) -> c.JournalEntryCreate:
    """Random lines in a few random currencies, debits and credits equal per currency, in random order."""
    lines: list[c.JournalLine] = []
    for currency in draw(
        st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=len(CURRENCIES), unique=True)
    ):
        debits = draw(st.lists(st.integers(1, MAX_UNITS), min_size=1, max_size=8))
        credit_units = draw(_split(sum(debits)))
        for units, side in [
            *((units, "debit") for units in debits),
            *((units, "credit") for units in credit_units),
        ]:
            lines.append(
                c.JournalLine(
                    account_code=draw(st.sampled_from(ACCOUNTS)),
                    currency=currency,
                    cost_center=draw(st.none() | st.sampled_from(("CC-100", "CC-200"))),
                    debit=_amount(units if side == "debit" else 0, currency),
                    credit=_amount(units if side == "credit" else 0, currency),
                )
            )
    return entry(*draw(st.permutations(lines)))


@settings(max_examples=200, deadline=None)
@given(balanced_entries())
def test_any_balanced_entry_passes(journal: c.JournalEntryCreate) -> None:
    c.validate_journal_entry(journal)
    # And it survives the wire unchanged.
    assert c.decode(c.encode(journal), c.JournalEntryCreate) == journal


@settings(max_examples=200, deadline=None)
@given(balanced_entries(), st.data())
def test_one_minor_unit_more_on_any_line_unbalances_exactly_that_currency(
    journal: c.JournalEntryCreate, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(journal.lines) - 1), label="line")
    target = journal.lines[index]
    step = c.minor_unit(target.currency)
    side = "debit" if target.debit else "credit"
    lines = list(journal.lines)
    lines[index] = msgspec.structs.replace(target, **{side: getattr(target, side) + step})
    with pytest.raises(UnbalancedJournalError) as caught:
        c.validate_journal_entry(msgspec.structs.replace(journal, lines=tuple(lines)))
    (gap,) = caught.value.imbalances
    assert gap.currency == target.currency
    assert gap.difference == (step if side == "debit" else -step)
    assert index in gap.lines
    assert gap.lines == tuple(i for i, line in enumerate(journal.lines) if line.currency == target.currency)


@settings(max_examples=100, deadline=None)
@given(balanced_entries(), st.data())
def test_a_tenth_of_a_minor_unit_on_any_line_is_an_invalid_amount(
    journal: c.JournalEntryCreate, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(journal.lines) - 1), label="line")
    target = journal.lines[index]
    side = "debit" if target.debit else "credit"
    lines = list(journal.lines)
    lines[index] = msgspec.structs.replace(
        target, **{side: getattr(target, side) + c.minor_unit(target.currency) / 10}
    )
    with pytest.raises(InvalidAmountError) as caught:
        c.validate_journal_entry(msgspec.structs.replace(journal, lines=tuple(lines)))
    (first, *_) = caught.value.violations
    assert (first.line, first.field, first.reason) == (index, side, "too-many-decimals")
