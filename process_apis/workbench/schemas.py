"""What the workbench's routes take and answer.

Money is ``Decimal`` from the planning cells to the wire, where it is a decimal
string beside its currency; so is the variance percentage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.params import Parameter, QueryParameter

from process_apis.workbench.periods import MAX_PERIODS, PERIOD_PATTERN
from shared.canonical import CODE_PATTERN, DECIMAL_PATTERN, Amount, CurrencyCode, PeriodState, VersionName

__all__ = (
    "DEFAULT_GROUP_BY",
    "GROUP_BY_PATTERN",
    "GROUP_KEYS",
    "BudgetVsActualsPage",
    "BudgetVsActualsRow",
    "EntityQuery",
    "FreshnessPage",
    "FreshnessRow",
    "FromQuery",
    "GroupByQuery",
    "GroupKey",
    "Percentage",
    "ToQuery",
    "VersionQuery",
    "group_keys",
    "with_alternative",
)

GroupKey = Literal["entity", "period", "account", "cost_center"]
"""A dimension rows can be grouped by."""
GROUP_KEYS: tuple[GroupKey, ...] = ("entity", "period", "account", "cost_center")
"""Every :data:`GroupKey`."""
DEFAULT_GROUP_BY = "account"
"""Rows per account, unless asked otherwise."""
_KEY = "(entity|period|account|cost_center)"
GROUP_BY_PATTERN = rf"^{_KEY}(,{_KEY})*$"
"""A comma list of group keys, such as ``account,cost_center``."""

Percentage = Annotated[
    Decimal,
    msgspec.Meta(
        description="A percentage as a decimal string, to 2 places: `-12.50` is -12.5 %.",
        examples=["-12.50"],
        extra_json_schema={"pattern": DECIMAL_PATTERN, "extra": {"pattern": DECIMAL_PATTERN}},
    ),
]
"""A percentage, rounded to 2 places; a decimal string."""

VersionQuery = Annotated[
    VersionName,
    Parameter(
        description="The planning version to compare with the actuals, such as `Forecast`.",
        examples=[Example(value="Budget")],
    ),
]
FromQuery = Annotated[
    str | None,
    QueryParameter(
        name="from",
        pattern=PERIOD_PATTERN,
        description="First period, `YYYY-MM`; default: January of `to`'s year, or of the current year.",
        examples=[Example(value="2026-01")],
    ),
]
ToQuery = Annotated[
    str | None,
    QueryParameter(
        name="to",
        pattern=PERIOD_PATTERN,
        description=(
            f"Last period, `YYYY-MM`; default: December of `from`'s year, or of the current year. "
            f"At most {MAX_PERIODS} months from `from`."
        ),
        examples=[Example(value="2026-06")],
    ),
]
EntityQuery = Annotated[
    str | None,
    Parameter(
        pattern=CODE_PATTERN,
        max_length=64,
        description="Only this legal entity (its code).",
        examples=[Example(value="FS-US")],
    ),
]
GroupByQuery = Annotated[
    str,
    Parameter(
        pattern=GROUP_BY_PATTERN,
        max_length=200,
        description=(
            "The dimensions each row is a total of, as a comma list of `entity`, `period`, `account` and "
            "`cost_center`, in the order rows sort by. Rows of different currencies are never added up: "
            "the currency is always part of a row's key."
        ),
        examples=[Example(value="account,cost_center")],
    ),
]


def group_keys(value: str) -> tuple[GroupKey, ...]:
    """The group keys of a ``group_by`` parameter, in order, each once (its pattern has checked each)."""
    keys: list[GroupKey] = []
    for name in value.split(","):
        key = next(k for k in GROUP_KEYS if k == name)
        if key not in keys:
            keys.append(key)
    return tuple(keys)


class BudgetVsActualsRow(msgspec.Struct, kw_only=True):
    """One group's actuals against its budget, in the group's currency.

    A dimension the rows are not grouped by is null. Amounts follow the planning model's sign convention
    (revenue and expense both positive), so a positive variance is revenue above plan, or spending above it.
    """

    entity: str | None
    """The legal entity's code; null unless grouped by entity."""
    period: str | None
    """The month, `YYYY-MM`; null unless grouped by period."""
    account: str | None
    """The account's code; null unless grouped by account."""
    cost_center: str | None
    """The cost centre's code, `""` for the unallocated remainder; null unless grouped by cost centre."""
    currency: CurrencyCode
    """The currency of every amount of the row: the entities' planning currency."""
    actual: Amount
    """The actuals version's total."""
    budget: Amount
    """The compared version's total."""
    variance: Amount
    """`actual - budget`."""
    variance_pct: Percentage | None
    """`variance / |budget| * 100`, rounded half up to 2 places; null when the budget is zero."""


class BudgetVsActualsPage(msgspec.Struct, kw_only=True):
    """A page of budget against actuals, sorted by the group keys (in `group_by`'s order) and the currency.

    The list envelope (`items`, `next_cursor`) with what the rows are: spelt out rather than a generic
    `Page[T]`, whose items the OpenAPI generator cannot resolve.
    """

    items: list[BudgetVsActualsRow]
    """The rows of this page."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""
    version: str
    """The version compared with the actuals."""
    actual_version: str
    """The planning version that holds the actuals (the actuals-to-plan map's)."""
    period_from: str
    """First period covered."""
    period_to: str
    """Last period covered."""
    group_by: list[GroupKey]
    """The row keys, in order."""
    planning_currency: CurrencyCode | None
    """The currency of every row, when the entities covered share one; null when they do not (then each
    row's `currency` says)."""
    currencies: dict[str, CurrencyCode]
    """The planning currency of each entity covered, by entity code."""


class FreshnessRow(msgspec.Struct, kw_only=True):
    """How fresh the actuals of one entity and period are in the planning platform."""

    entity: str
    """The legal entity's code (the ERP's)."""
    period: str
    """The month, `YYYY-MM`."""
    last_loaded_at: datetime | None
    """When the last run that loaded this entity and period finished; null if none ever did."""
    run_id: str | None
    """That run."""
    reconciled: bool
    """Every reconciliation line of that run for this entity and period matched."""
    period_state: PeriodState | None
    """The ERP period's state when that run read it."""
    age_seconds: int | None
    """Seconds since `last_loaded_at`."""
    meets_objective: bool
    """Loaded, reconciled, and either younger than the objective or loaded after the period closed."""


class FreshnessPage(msgspec.Struct, kw_only=True):
    """A page of freshness, by entity then period (the list envelope, spelt out as
    :class:`BudgetVsActualsPage` is)."""

    items: list[FreshnessRow]
    """The rows of this page."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""
    source: str
    """The ERP source the actuals come from."""
    objective: str
    """The freshness objective, as configured (`flows.actuals_to_plan.freshness_objective`)."""
    objective_seconds: int
    """The same, in seconds."""
    as_of: datetime
    """When ages were measured (UTC)."""
    entities_from: Literal["erp", "ledger"]
    """Where the entities listed come from: the ERP's legal entities, or (the ERP unreachable) those the
    ledger has loaded before."""


def with_alternative(media_type: str, schema: str | None = None) -> type[Operation]:
    """An OpenAPI operation class whose 200 answer also documents ``media_type`` (``schema``: a component whose
    instances the body holds, one per line, or a plain string when None)."""

    @dataclass
    class AlternativeOperation(Operation):
        def __post_init__(self) -> None:
            answer = (self.responses or {}).get("200")
            if isinstance(answer, OpenAPIResponse) and answer.content is not None:
                described = (
                    Reference(ref=f"#/components/schemas/{schema}")
                    if schema
                    else Schema(type=OpenAPIType.STRING)
                )
                answer.content[media_type] = OpenAPIMediaType(schema=described)

    return AlternativeOperation
