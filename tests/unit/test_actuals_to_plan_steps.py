"""The pure steps of actuals-to-plan: map, validate, aggregate, zero-fill and reconcile."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from process_apis.flows.actuals_to_plan.dimension_map import load_map
from process_apis.flows.actuals_to_plan.steps import (
    Problem,
    Tally,
    aggregate,
    map_actuals,
    reconcile,
    validate,
    zero_fill,
)
from shared.canonical import AccountType, Balance, BalanceKind, PlanningCell, PlanningDimension

if TYPE_CHECKING:
    from process_apis.flows.actuals_to_plan.dimension_map import DimensionMap

V1 = load_map("v1")
USD = {"FS-US": "USD"}
MEMBERS = {
    PlanningDimension.ENTITY: {"FS-US"},
    PlanningDimension.ACCOUNT: {"4.1.1", "5.2.2"},
    PlanningDimension.COST_CENTER: {"", "CC-100"},
    PlanningDimension.MONTH: {"2026-01", "2026-02"},
}


def balance(
    account: str, kind: AccountType, amount: str, *, centre: str = "", period: str = "2026-01"
) -> Balance:
    return Balance(
        id=f"erp:balance:FS-US/{period}/{account}/{centre}",
        source="erp",
        source_ref=f"FS-US/{period}/{account}/{centre}",
        modified_at=datetime(2026, 2, 1, tzinfo=UTC),
        mapping_version="tryton/v1",
        entity="FS-US",
        period=period,
        account_code=account,
        account_type=kind,
        cost_center=centre,
        amount=Decimal(amount),
        currency="USD",
        kind=BalanceKind.MOVEMENT if kind.is_profit_and_loss else BalanceKind.CLOSING,
    )


BOOKS = [
    balance("4.1.1", AccountType.REVENUE, "-1000.10"),
    balance("5.2.2", AccountType.EXPENSE, "600.05", centre="CC-100"),
    balance("5.2.2", AccountType.EXPENSE, "150.00"),
    balance("1.1.1", AccountType.ASSET, "250.05"),
]


def test_planned_amounts_take_the_planning_sign_and_balance_sheet_rows_stay_out() -> None:
    mapped = map_actuals(BOOKS, V1, MEMBERS)
    assert aggregate(mapped.rows) == {
        ("FS-US", "4.1.1", "", "2026-01"): Decimal("1000.10"),
        ("FS-US", "5.2.2", "CC-100", "2026-01"): Decimal("600.05"),
        ("FS-US", "5.2.2", "", "2026-01"): Decimal("150.00"),
    }
    assert mapped.unmapped == []


def test_a_value_without_a_member_is_kept_as_unmapped_and_still_expected() -> None:
    stray = balance("5.2.2", AccountType.EXPENSE, "42.00", centre="CC-999")
    mapped = map_actuals([*BOOKS, stray], V1, MEMBERS)
    (unmapped,) = mapped.unmapped
    assert (unmapped.dimension, unmapped.value, unmapped.amount) == (
        PlanningDimension.COST_CENTER,
        "CC-999",
        Decimal("42.00"),
    )
    assert unmapped.cell == ("FS-US", "5.2.2", "CC-999", "2026-01")  # what planning must end up holding
    assert all(cell[2] != "CC-999" for cell, _amount in mapped.rows)


def test_a_zero_amount_without_a_member_is_not_an_exception() -> None:
    quiet = balance("6.2.8", AccountType.EXPENSE, "0.00")
    mapped = map_actuals([*BOOKS, quiet], V1, MEMBERS)
    assert mapped.unmapped == []
    assert all(cell[1] != "6.2.8" for cell, _amount in mapped.rows)


def test_remaps_merge_cells_into_one_row_each() -> None:
    remapped = replace(V1, cost_centers={"CC-100": ""})
    cells = aggregate(map_actuals(BOOKS, remapped, MEMBERS).rows)
    assert cells[("FS-US", "5.2.2", "", "2026-01")] == Decimal("750.05")
    assert len(cells) == 2


def check(
    books: list[Balance],
    slices: set[tuple[str, str]],
    dimension_map: DimensionMap = V1,
    previous: dict[str, str | None] | None = None,
) -> list[Problem]:
    """Validate ``books`` tallied in batches of one balance (as they stream in)."""
    tally = Tally()
    for one in books:
        tally.add([one], USD, dimension_map.signs)
    return validate(tally, slices, USD, dimension_map, previous or {})


def test_aggregating_batch_by_batch_gives_the_cells_of_the_whole() -> None:
    remapped = replace(V1, cost_centers={"CC-100": ""})
    cells: dict[tuple[str, str, str, str], Decimal] = {}
    for one in BOOKS:
        aggregate(map_actuals([one], remapped, MEMBERS).rows, into=cells)
    assert cells == aggregate(map_actuals(BOOKS, remapped, MEMBERS).rows)


def test_a_balanced_period_passes_and_an_unbalanced_one_is_named() -> None:
    slices = {("FS-US", "2026-01")}
    assert check(BOOKS, slices) == []
    broken = [*BOOKS, balance("5.2.2", AccountType.EXPENSE, "0.01")]
    (problem,) = check(broken, slices)
    assert problem.reason == "unbalanced-period"
    assert "0.01" in problem.message


def test_the_balance_sheet_counts_its_change_since_the_previous_period() -> None:
    february = [
        balance("5.2.2", AccountType.EXPENSE, "10.00", period="2026-02"),
        balance("1.1.1", AccountType.ASSET, "240.05", period="2026-02"),  # 250.05 in January, 10.00 spent
    ]
    assert check([*BOOKS, *february], {("FS-US", "2026-02")}, previous={"2026-02": "2026-01"}) == []
    assert check([*BOOKS, *february[:1]], {("FS-US", "2026-02")}, previous={"2026-02": "2026-01"})


def test_amounts_in_another_currency_fail_the_slice() -> None:
    euro = msgspec.structs.replace(BOOKS[1], currency="EUR")
    problems = check([BOOKS[0], euro, *BOOKS[2:]], {("FS-US", "2026-01")})
    assert [p.reason for p in problems] == ["currency-mismatch"]


def test_a_profit_and_loss_type_without_a_sign_fails_the_slice() -> None:
    unsigned = replace(V1, signs={AccountType.REVENUE: -1})
    problems = check(BOOKS, {("FS-US", "2026-01")}, unsigned)
    assert [p.reason for p in problems] == ["no-sign-convention"]


def cell(account: str, centre: str, amount: str, period: str = "2026-01") -> PlanningCell:
    return PlanningCell(
        version="Actual",
        entity="FS-US",
        account_code=account,
        cost_center=centre,
        period=period,
        amount=Decimal(amount),
    )


def test_stale_cells_of_the_slice_get_a_zero_and_other_slices_are_left_alone() -> None:
    new = {("FS-US", "5.2.2", "", "2026-01"): Decimal("150.00")}
    existing = [
        cell("5.2.2", "CC-100", "600.05"),
        cell("5.2.2", "CC-100", "9.00", period="2026-02"),
        cell("4.1.1", "", "0"),
    ]
    assert zero_fill(new, existing, {("FS-US", "2026-01")}) == {
        ("FS-US", "5.2.2", "", "2026-01"): Decimal("150.00"),
        ("FS-US", "5.2.2", "CC-100", "2026-01"): Decimal(0),
    }


def test_reconciliation_compares_counts_and_totals_per_account_and_slice() -> None:
    expected = {
        ("FS-US", "4.1.1", "", "2026-01"): Decimal("1000.10"),
        ("FS-US", "5.2.2", "CC-100", "2026-01"): Decimal("600.05"),
        ("FS-US", "5.2.2", "", "2026-01"): Decimal("150.00"),
    }
    loaded = [
        cell("4.1.1", "", "1000.10"),
        cell("5.2.2", "CC-100", "600.05"),
        cell("5.2.2", "", "150.00"),
        cell("5.2.2", "CC-200", "0"),
    ]
    lines = reconcile(expected, loaded, {("FS-US", "2026-01")})
    assert all(line.matched for line in lines)
    assert [(line.account, line.erp_count, line.erp_total) for line in lines] == [
        (None, 3, Decimal("1750.15")),
        ("4.1.1", 1, Decimal("1000.10")),
        ("5.2.2", 2, Decimal("750.05")),
    ]
    short = reconcile(expected, loaded[:2], {("FS-US", "2026-01")})
    mismatched = [line for line in short if not line.matched]
    assert [(line.account, line.difference) for line in mismatched] == [
        (None, Decimal("-150.00")),
        ("5.2.2", Decimal("-150.00")),
    ]
