"""Actuals: the balances the ERP reports, per legal entity, period, leaf account and cost centre.

What a :class:`Balance` carries, per DESIGN.md ("Actuals"):

- only posted moves count, never drafts;
- only leaf accounts appear; parents would count their children twice;
- revenue and expense accounts carry the period's movement; asset, liability
  and equity accounts carry the closing balance at the end of the period;
- the cost-centre split comes from analytic lines and is reconciled to the
  account's total: what no cost centre takes is its own row, with the empty cost
  centre :data:`UNALLOCATED`, so the rows of an account always add up to its
  total. :func:`split_by_cost_center` builds exactly that.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from shared.canonical.fields import Code, CostCenterOrUnallocated, PeriodCode
from shared.canonical.master import AccountType
from shared.canonical.money import Amount, CurrencyCode
from shared.canonical.records import Record

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("UNALLOCATED", "Balance", "BalanceKind", "balance_kind_for", "split_by_cost_center")

UNALLOCATED: Final = ""
"""The cost centre of the unallocated remainder: the part of an account's total that no cost centre takes."""


class BalanceKind(StrEnum):
    """What the amount of a balance measures."""

    MOVEMENT = "movement"
    """The net change over the period: profit-and-loss accounts."""
    CLOSING = "closing"
    """The balance at the end of the period, prior years included: balance-sheet accounts."""


def balance_kind_for(account_type: AccountType) -> BalanceKind:
    """Movement for revenue and expense accounts, closing balance for the others."""
    return BalanceKind.MOVEMENT if account_type.is_profit_and_loss else BalanceKind.CLOSING


class Balance(Record, kw_only=True, frozen=True):
    """Actuals of one leaf account in one period and one cost centre, from posted moves only."""

    entity: Code
    """Code of the legal entity."""
    period: PeriodCode
    """Code of the fiscal period."""
    account_code: Code
    """Code of the leaf account."""
    account_type: AccountType
    """Type of the account; it decides ``kind``."""
    cost_center: CostCenterOrUnallocated = UNALLOCATED
    """Cost centre code; ``""`` (:data:`UNALLOCATED`) for what no cost centre takes."""
    amount: Amount
    """Debit minus credit: positive for a debit balance or movement, negative for a credit one."""
    currency: CurrencyCode
    """Currency of ``amount``: the legal entity's currency."""
    kind: BalanceKind
    """``movement`` for profit-and-loss accounts, ``closing`` for balance-sheet accounts."""


def split_by_cost_center(total: Decimal, allocated: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Reconcile a cost-centre split to the account's total.

    Args:
        total: the account's amount (debit minus credit) for the period.
        allocated: the amount per cost-centre code, summed from analytic lines.

    Returns:
        ``allocated`` without its zero entries, plus ``{UNALLOCATED: total - sum}``
        when a remainder is left; the values always add up to ``total``. An
        account with no split and a zero total gives ``{UNALLOCATED: 0}``, so it
        still has a row.

    Raises:
        ValueError: ``allocated`` uses the empty code itself.
    """
    if UNALLOCATED in allocated:
        raise ValueError("the empty cost centre is the unallocated remainder; analytic lines cannot use it")
    split = {code: amount for code, amount in allocated.items() if amount}
    remainder = total - sum(split.values(), Decimal(0))
    if remainder or not split:
        split[UNALLOCATED] = remainder
    return split
