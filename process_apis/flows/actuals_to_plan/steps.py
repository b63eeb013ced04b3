"""The pure steps of actuals-to-plan: map, validate, aggregate, fill stale cells with zeros, reconcile.

They take and give plain values (no I/O), so the runner (which extracts, loads
and records) stays thin and every rule here is tested on its own.

- **Cells** are keyed ``(entity, account, cost centre, period)`` in the planning
  model's canonical codes, after the map's remaps.
- **Slices** are ``(entity, period)``: a run replaces whole slices, never adds to them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from shared.canonical import AccountType, PlanningDimension

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from process_apis.flows.actuals_to_plan.dimension_map import DimensionMap
    from shared.canonical import PlanningCell


class BalanceLike(Protocol):
    """What the steps read of a balance (a canonical ``Balance``, or the process layer's ``BalanceLine``);
    ``account_type`` is an ``AccountType`` or its value."""

    @property
    def entity(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def account_code(self) -> str: ...
    @property
    def account_type(self) -> str: ...
    @property
    def cost_center(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


__all__ = (
    "BalanceLike",
    "Cell",
    "Mapped",
    "Problem",
    "ReconLine",
    "Slice",
    "Tally",
    "Unmapped",
    "aggregate",
    "map_actuals",
    "reconcile",
    "validate",
    "zero_fill",
)

Cell = tuple[str, str, str, str]
"""``(entity, account, cost centre, period)`` in planning codes."""
Slice = tuple[str, str]
"""``(entity, period)``."""
ZERO = Decimal(0)
_PROFIT_AND_LOSS = frozenset(t for t in AccountType if t.is_profit_and_loss)


@dataclass(frozen=True)
class Unmapped:
    """An ERP amount whose mapped value has no planning member: an exception, never a dropped amount."""

    entity: str
    """The ERP entity."""
    period: str
    """The period."""
    dimension: PlanningDimension
    """The dimension without a member."""
    value: str
    """The mapped value that has no member."""
    amount: Decimal
    """The amount that could not be loaded (planning sign)."""
    source_ref: str
    """The ERP balance it comes from: entity, period, account and cost centre (the first, when several are)."""
    cell: Cell
    """The cell it would have gone to."""


@dataclass
class Mapped:
    """What the map step gives for a batch of balances: loadable amounts per cell, and what could not be mapped."""

    rows: list[tuple[Cell, Decimal]] = field(default_factory=list)
    """``(cell, amount in planning sign)`` for every loadable amount."""
    unmapped: list[Unmapped] = field(default_factory=list)
    """Amounts with no planning member."""


@dataclass(frozen=True)
class Problem:
    """A slice that fails validation; it is not loaded."""

    entity: str
    """The entity."""
    period: str
    """The period."""
    reason: str
    """``unbalanced-period``, ``currency-mismatch`` or ``no-sign-convention``."""
    message: str
    """What is wrong, for a person."""


@dataclass(frozen=True)
class ReconLine:
    """ERP against planning for one entity, period and account (``account`` None: the slice's total)."""

    entity: str
    period: str
    account: str | None
    erp_count: int
    erp_total: Decimal
    planning_count: int
    planning_total: Decimal

    @property
    def difference(self) -> Decimal:
        """Planning minus ERP."""
        return self.planning_total - self.erp_total

    @property
    def matched(self) -> bool:
        """Same number of non-zero cells and the same total, to the cent."""
        return self.erp_count == self.planning_count and self.erp_total == self.planning_total


_DIMENSIONS = (
    PlanningDimension.ENTITY,
    PlanningDimension.ACCOUNT,
    PlanningDimension.COST_CENTER,
    PlanningDimension.MONTH,
)


def map_actuals(
    balances: Iterable[BalanceLike],
    dimension_map: DimensionMap,
    members: Mapping[PlanningDimension, set[str]],
) -> Mapped:
    """Turn ERP balances of planned account types into planning cells; balance-sheet rows are skipped.

    ``members`` are the canonical values each planning dimension has (months as ``YYYY-MM``). A non-zero
    amount whose value has no member is :class:`Unmapped`; a zero one is simply not planned (the ERP lists
    every leaf account, most of which planning never carries).
    """
    mapped = Mapped()
    rows, signs = mapped.rows, dimension_map.signs
    entities, accounts, centres = dimension_map.entities, dimension_map.accounts, dimension_map.cost_centers
    known = [members.get(dimension, set()) for dimension in _DIMENSIONS]
    known_entities, known_accounts, known_centres, known_months = known
    for balance in balances:
        sign = signs.get(balance.account_type)
        if sign is None:
            continue
        amount = balance.amount if sign > 0 else -balance.amount
        entity, account, centre = balance.entity, balance.account_code, balance.cost_center
        cell = (
            entities.get(entity, entity),
            accounts.get(account, account),
            centres.get(centre, centre),
            balance.period,
        )
        if (
            cell[0] in known_entities
            and cell[1] in known_accounts
            and cell[2] in known_centres
            and cell[3] in known_months
        ):
            rows.append((cell, amount))
        elif amount:  # a zero movement of an account planning does not carry loses nothing
            dimension, value = next(
                (d, v) for d, v, m in zip(_DIMENSIONS, cell, known, strict=True) if v not in m
            )
            ref = f"{balance.entity} {balance.period} {account} {centre or '(unallocated)'}"
            mapped.unmapped.append(
                Unmapped(balance.entity, balance.period, dimension, value, amount, ref, cell)
            )
    return mapped


def aggregate(
    rows: Iterable[tuple[Cell, Decimal]], into: dict[Cell, Decimal] | None = None
) -> dict[Cell, Decimal]:
    """Exactly one amount per planning cell: ``rows`` summed into ``into`` (a new dict when None)."""
    cells = {} if into is None else into
    for cell, amount in rows:
        cells[cell] = cells[cell] + amount if cell in cells else amount
    return cells


@dataclass
class Tally:
    """What the balance check needs of each slice, summed batch by batch: the books are never held whole."""

    movement: dict[Slice, Decimal] = field(default_factory=dict)
    """Profit-and-loss movements, debit minus credit."""
    closing: dict[Slice, Decimal] = field(default_factory=dict)
    """Balance-sheet closing balances."""
    foreign: dict[Slice, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Currencies other than the entity's."""
    unsigned: dict[Slice, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Profit-and-loss types the map has no sign for."""

    def add(
        self, balances: Iterable[BalanceLike], currencies: Mapping[str, str], signs: Mapping[str, int]
    ) -> None:
        """Count ``balances`` in."""
        movement, closing = self.movement, self.closing
        for balance in balances:
            key = (balance.entity, balance.period)
            account_type = balance.account_type
            if account_type in _PROFIT_AND_LOSS:
                movement[key] = movement.get(key, ZERO) + balance.amount
                if account_type not in signs:
                    self.unsigned[key].add(str(account_type))
            else:
                closing[key] = closing.get(key, ZERO) + balance.amount
            if balance.currency != currencies.get(balance.entity):
                self.foreign[key].add(balance.currency)


def validate(
    tally: Tally,
    slices: Iterable[Slice],
    currencies: Mapping[str, str],
    dimension_map: DimensionMap,
    previous_period: Mapping[str, str | None],
) -> list[Problem]:
    """Check each slice before it is loaded.

    - **It balances**: the period's profit-and-loss movements plus the change of the balance-sheet
      closing balances since the previous period sum to zero (double entry). ``previous_period`` maps a
      period to the one before it, or None when the ERP has none (an opening of zero).
    - **Currency**: every amount of an entity is in that entity's currency.
    - **Signs**: every profit-and-loss account type has a sign convention in the map.
    """
    problems: list[Problem] = []
    for entity, period in sorted(set(slices)):
        key = (entity, period)
        before = previous_period.get(period)
        opening = tally.closing.get((entity, before), ZERO) if before is not None else ZERO
        imbalance = tally.movement.get(key, ZERO) + tally.closing.get(key, ZERO) - opening
        if imbalance:
            problems.append(
                Problem(
                    entity,
                    period,
                    "unbalanced-period",
                    f"{entity} {period} does not balance: movements and balance-sheet changes sum to {imbalance}",
                )
            )
        if tally.foreign.get(key):
            problems.append(
                Problem(
                    entity,
                    period,
                    "currency-mismatch",
                    f"{entity} {period} has amounts in {', '.join(sorted(tally.foreign[key]))}, not in "
                    f"{currencies.get(entity, 'its currency')}",
                )
            )
        if tally.unsigned.get(key):
            problems.append(
                Problem(
                    entity,
                    period,
                    "no-sign-convention",
                    f"the map {dimension_map.version} has no sign for {', '.join(sorted(tally.unsigned[key]))}",
                )
            )
    return problems


def zero_fill(
    cells: Mapping[Cell, Decimal], existing: Iterable[PlanningCell], slices: set[Slice]
) -> dict[Cell, Decimal]:
    """``cells`` plus a zero for every non-zero planning cell of ``slices`` that no longer has actuals
    (a reversal, a remapped cost centre), so that loading replaces each slice rather than adding to it."""
    filled = dict(cells)
    for cell in existing:
        key = (cell.entity, cell.account_code, cell.cost_center, cell.period)
        if (cell.entity, cell.period) in slices and key not in filled and cell.amount:
            filled[key] = ZERO
    return filled


def reconcile(
    expected: Mapping[Cell, Decimal], loaded: Iterable[PlanningCell], slices: set[Slice]
) -> list[ReconLine]:
    """Compare what the ERP holds with what planning holds, per entity, period and account, and per slice.

    Counts are of non-zero cells (a zero written over a stale cell is no actual); totals are to the cent.
    """
    erp: dict[tuple[str, str, str | None], tuple[int, Decimal]] = {}
    plan: dict[tuple[str, str, str | None], tuple[int, Decimal]] = {}

    def add(
        side: dict[tuple[str, str, str | None], tuple[int, Decimal]], cell: Cell, amount: Decimal
    ) -> None:
        entity, account, _centre, period = cell
        for key in ((entity, period, account), (entity, period, None)):
            count, total = side.get(key, (0, ZERO))
            side[key] = (count + (1 if amount else 0), total + amount)

    for cell, amount in expected.items():
        if (cell[0], cell[3]) in slices:
            add(erp, cell, amount)
    for loaded_cell in loaded:
        key = (loaded_cell.entity, loaded_cell.account_code, loaded_cell.cost_center, loaded_cell.period)
        if (key[0], key[3]) in slices:
            add(plan, key, loaded_cell.amount)
    lines = []
    for entity, period, account in sorted(set(erp) | set(plan), key=lambda k: (k[0], k[1], k[2] or "")):
        erp_count, erp_total = erp.get((entity, period, account), (0, ZERO))
        plan_count, plan_total = plan.get((entity, period, account), (0, ZERO))
        lines.append(ReconLine(entity, period, account, erp_count, erp_total, plan_count, plan_total))
    return lines
