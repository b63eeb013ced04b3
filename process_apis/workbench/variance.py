"""Budget against actuals, from planning cells: pure, so every rule is tested on its own.

Cells are added up per group (the ``group_by`` dimensions) and per currency, so
amounts of two currencies are never added together: rows of entities that keep
different currencies stay apart even when the rows are not grouped by entity.
Arithmetic runs with 100 significant digits, far beyond any amount a cell holds,
so sums are exact and never rounded by the default 28-digit context.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import TYPE_CHECKING

from process_apis.workbench.schemas import BudgetVsActualsRow, GroupKey

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from shared.canonical import PlanningCell

__all__ = ("budget_vs_actuals", "row_key", "variance_pct")

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
PRECISION = 100
"""Significant digits of the workbench's arithmetic."""


def _value(cell: PlanningCell, key: GroupKey) -> str:
    if key == "entity":
        return cell.entity
    if key == "period":
        return cell.period
    if key == "account":
        return cell.account_code
    return cell.cost_center


def variance_pct(variance: Decimal, budget: Decimal) -> Decimal | None:
    """``variance / |budget| * 100``, rounded half up to 2 places; None when the budget is zero."""
    if not budget:
        return None
    with localcontext() as context:
        context.prec = PRECISION
        pct = (variance * HUNDRED / abs(budget)).quantize(CENT, rounding=ROUND_HALF_UP)
    return pct if pct else pct.copy_abs()  # never "-0.00"


def budget_vs_actuals(
    actual: Iterable[PlanningCell],
    budget: Iterable[PlanningCell],
    currencies: Mapping[str, str],
    group_by: Sequence[GroupKey],
) -> list[BudgetVsActualsRow]:
    """One row per group and currency, sorted by the group keys in ``group_by``'s order, then the currency.

    Args:
        actual: The actuals version's cells.
        budget: The compared version's cells.
        currencies: Each entity's currency; every cell's entity must be in it.
        group_by: The dimensions each row totals.
    """
    totals: dict[tuple[tuple[str, ...], str], list[Decimal]] = {}
    with localcontext() as context:
        context.prec = PRECISION
        for side, cells in enumerate((actual, budget)):
            for cell in cells:
                key = (tuple(_value(cell, k) for k in group_by), currencies[cell.entity])
                totals.setdefault(key, [ZERO, ZERO])[side] += cell.amount
        rows = []
        for (values, currency), (actual_total, budget_total) in sorted(totals.items()):
            keys = dict(zip(group_by, values, strict=True))
            variance = actual_total - budget_total
            rows.append(
                BudgetVsActualsRow(
                    entity=keys.get("entity"),
                    period=keys.get("period"),
                    account=keys.get("account"),
                    cost_center=keys.get("cost_center"),
                    currency=currency,
                    actual=actual_total,
                    budget=budget_total,
                    variance=variance,
                    variance_pct=variance_pct(variance, budget_total),
                )
            )
    return rows


def row_key(row: BudgetVsActualsRow, group_by: Sequence[GroupKey]) -> str:
    """The row's sort key as one string (the cursor's), in the order :func:`budget_vs_actuals` sorts by."""
    values = {
        "entity": row.entity,
        "period": row.period,
        "account": row.account,
        "cost_center": row.cost_center,
    }
    return "\x00".join([*(values[key] or "" for key in group_by), row.currency])
