"""Actuals: movement or closing balance by account type, and the reconciled cost-centre split."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared import canonical as c


@pytest.mark.parametrize(
    ("account_type", "kind", "normal"),
    [
        (c.AccountType.ASSET, c.BalanceKind.CLOSING, c.NormalBalance.DEBIT),
        (c.AccountType.LIABILITY, c.BalanceKind.CLOSING, c.NormalBalance.CREDIT),
        (c.AccountType.EQUITY, c.BalanceKind.CLOSING, c.NormalBalance.CREDIT),
        (c.AccountType.REVENUE, c.BalanceKind.MOVEMENT, c.NormalBalance.CREDIT),
        (c.AccountType.EXPENSE, c.BalanceKind.MOVEMENT, c.NormalBalance.DEBIT),
    ],
)
def test_kind_and_normal_balance_follow_the_account_type(
    account_type: c.AccountType, kind: c.BalanceKind, normal: c.NormalBalance
) -> None:
    assert c.balance_kind_for(account_type) is kind
    assert account_type.normal_balance is normal
    assert account_type.is_profit_and_loss is (kind is c.BalanceKind.MOVEMENT)


def test_the_unallocated_remainder_is_its_own_empty_cost_center() -> None:
    split = c.split_by_cost_center(Decimal("1000.00"), {"CC-1": Decimal("600.00"), "CC-2": Decimal("250.00")})
    assert split == {"CC-1": Decimal("600.00"), "CC-2": Decimal("250.00"), c.UNALLOCATED: Decimal("150.00")}
    assert sum(split.values()) == Decimal("1000.00")
    assert c.UNALLOCATED == ""


def test_a_fully_allocated_split_has_no_remainder_and_zero_rows_are_dropped() -> None:
    split = c.split_by_cost_center(Decimal("-90.00"), {"CC-1": Decimal("-90.00"), "CC-2": Decimal("0.00")})
    assert split == {"CC-1": Decimal("-90.00")}


def test_an_account_without_analytics_is_one_unallocated_row() -> None:
    assert c.split_by_cost_center(Decimal("42.00"), {}) == {c.UNALLOCATED: Decimal("42.00")}
    assert c.split_by_cost_center(Decimal(0), {}) == {c.UNALLOCATED: Decimal(0)}


def test_over_allocation_leaves_a_negative_remainder_so_the_rows_still_add_up() -> None:
    split = c.split_by_cost_center(Decimal("100.00"), {"CC-1": Decimal("130.00")})
    assert split[c.UNALLOCATED] == Decimal("-30.00")
    assert sum(split.values()) == Decimal("100.00")


def test_analytic_lines_cannot_claim_the_empty_cost_center() -> None:
    with pytest.raises(ValueError, match="unallocated"):
        c.split_by_cost_center(Decimal(1), {c.UNALLOCATED: Decimal(1)})
