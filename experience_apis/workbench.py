"""``/v1/workbench/...``: the planner's workbench, served from the process layer's routes of the same names.

The process layer computes (it reads planning through the system layer, and the
control ledger); this layer shapes for people. JSON pages pass through as the
process layer answers them. ``Accept: text/csv`` is rendered here, from every
row the process layer streams as NDJSON in one answer, so a spreadsheet gets a
consistent snapshot whatever its size; CSV is this layer's only rendering of
its own (see ``docs/workbench.md``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, Response, get
from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Parameter, QueryParameter

from experience_apis.clients.process import (
    BudgetVsActualsPage,
    BudgetVsActualsRow,
    FreshnessPage,
    GroupKey,
    ProcessClient,
)
from shared.auth.middleware import AUTH_ERRORS, requires
from shared.canonical import CODE_PATTERN, VersionName
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam
from shared.problems import problem_responses

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.datastructures import State

    from shared.settings import Settings

__all__ = ("CSV", "budget_vs_actuals_csv", "list_budget_vs_actuals", "list_freshness")

CSV = "text/csv"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8; header=present"
"""RFC 4180 CSV in UTF-8, with a header row."""
BOM = "\ufeff"
"""Starts the file, so that spreadsheets read it as UTF-8 (Excel takes a file without one for ANSI)."""
READ_ERRORS = problem_responses(400, 404, 502, 503, 504, *AUTH_ERRORS)
PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_KEY = "(entity|period|account|cost_center)"
GROUP_KEYS: tuple[GroupKey, ...] = ("entity", "period", "account", "cost_center")
AMOUNT_COLUMNS = ("currency", "actual", "budget", "variance", "variance_pct")
"""The columns after the group keys."""
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")

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
            "Last period, `YYYY-MM`; default: December of `from`'s year, or of the current year. "
            "At most 24 months from `from`."
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
        pattern=rf"^{_KEY}(,{_KEY})*$",
        max_length=200,
        description=(
            "The dimensions each row is a total of, as a comma list of `entity`, `period`, `account` and "
            "`cost_center`, in the order rows sort by. Rows of different currencies are never added up: "
            "the currency is always part of a row's key."
        ),
        examples=[Example(value="account,cost_center")],
    ),
]


@dataclass
class _CsvAlternative(Operation):
    """Documents ``text/csv`` beside JSON for the 200 answer."""

    def __post_init__(self) -> None:
        answer = (self.responses or {}).get("200")
        if isinstance(answer, OpenAPIResponse) and answer.content is not None:
            answer.content[CSV] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


def _settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def _group_keys(value: str) -> list[GroupKey]:
    """The keys of ``group_by`` in order, each once (its pattern has checked each name)."""
    keys: list[GroupKey] = []
    for name in value.split(","):
        key = next(k for k in GROUP_KEYS if k == name)
        if key not in keys:
            keys.append(key)
    return keys


def _range(period_from: str | None, period_to: str | None) -> tuple[str, str]:
    """The process layer's default range, resolved here only to name the CSV file (and then sent explicitly,
    so the file's name and its rows cannot disagree)."""
    year = datetime.now(UTC).year
    first = period_from or (f"{period_to[:4]}-01" if period_to else f"{year:04d}-01")
    last = period_to or (f"{period_from[:4]}-12" if period_from else f"{year:04d}-12")
    return first, last


def budget_vs_actuals_csv(rows: Sequence[BudgetVsActualsRow], group_by: Sequence[GroupKey]) -> bytes:
    """The rows as CSV: a header row, then one line per row, the group keys first.

    Numbers are plain decimal strings with a point (``-1234.50``), no grouping, no currency sign; a null
    variance percentage is an empty field. Codes start with a letter or a digit (the canonical model's
    pattern), so no field can start a spreadsheet formula.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*group_by, *AMOUNT_COLUMNS])
    for row in rows:
        keys: dict[str, str | None] = {
            "entity": row.entity,
            "period": row.period,
            "account": row.account,
            "cost_center": row.cost_center,
        }
        writer.writerow(
            [
                *(keys[key] or "" for key in group_by),
                row.currency,
                str(row.actual),
                str(row.budget),
                str(row.variance),
                "" if row.variance_pct is None else str(row.variance_pct),
            ]
        )
    return (BOM + buffer.getvalue()).encode("utf-8")


def _filename(version: str, first: str, last: str) -> str:
    return (
        f"budget-vs-actuals_{_UNSAFE_FILENAME.sub('-', version).strip('-') or 'version'}_{first}_{last}.csv"
    )


@get(
    "/v1/workbench/budget-vs-actuals",
    operation_id="ListBudgetVsActuals",
    summary="Budget against actuals",
    tags=["workbench"],
    responses=READ_ERRORS,
    operation_class=_CsvAlternative,
    **requires("workbench:read"),
)
async def list_budget_vs_actuals(
    request: Request[Any, Any, Any],
    state: State,
    version: VersionQuery = "Budget",
    period_from: FromQuery = None,
    period_to: ToQuery = None,
    entity: EntityQuery = None,
    group_by: GroupByQuery = "account",
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> BudgetVsActualsPage:
    """Actuals against `version` (default `Budget`), totalled by the `group_by` dimensions (default
    `account`) over `from`..`to` (default: the current year, at most 24 months), for one entity or all:
    actual, budget, variance (`actual - budget`) and variance % (null when the budget is zero), as decimal
    strings. Each row states its currency, and the answer its planning currency (`planning_currency`, or
    `currencies` per entity when they differ): amounts of two currencies are never added up.

    `Accept: text/csv` answers the same rows as a CSV file (UTF-8, header row, plain decimal numbers) that
    opens in a spreadsheet: every row at once, so `limit` and `cursor` do not apply."""
    client: ProcessClient = state.below
    timeout = _settings(state).workbench.timeout
    query: dict[str, Any] = {"version": version, "entity": entity, "group_by": group_by}
    if request.accept.best_match(["application/json", CSV], default="application/json") == CSV:
        first, last = _range(period_from, period_to)
        rows = await client.budget_vs_actuals_rows({**query, "from": first, "to": last}, timeout=timeout)
        return Response(  # type: ignore[return-value]
            budget_vs_actuals_csv(rows, _group_keys(group_by)),
            media_type=CSV_CONTENT_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{_filename(version, first, last)}"'},
        )
    query |= {"from": period_from, "to": period_to, "limit": limit, "cursor": cursor}
    return await client.budget_vs_actuals(query, timeout=timeout)


@get(
    "/v1/workbench/freshness",
    operation_id="ListFreshness",
    summary="Freshness of actuals in planning",
    tags=["workbench"],
    responses=READ_ERRORS,
    **requires("workbench:read"),
)
async def list_freshness(
    state: State,
    period_from: FromQuery = None,
    period_to: ToQuery = None,
    entity: EntityQuery = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> FreshnessPage:
    """Per entity and period, when the ERP's actuals were last loaded into planning, whether that load
    reconciled, the period's state then, and whether it meets the freshness objective (set in the TOML,
    `flows.actuals_to_plan.freshness_objective`, default 24 h): loaded, reconciled, and younger than the
    objective or loaded after the period closed. Every entity is listed, loaded or not; default range: this
    year up to the current month (later months are left out)."""
    client: ProcessClient = state.below
    query = {"from": period_from, "to": period_to, "entity": entity, "limit": limit, "cursor": cursor}
    return await client.freshness(query, timeout=_settings(state).workbench.timeout)
