"""Typed client for process_apis, decoding the shapes of ``openapi/process.json``.

The Structs mirror the process layer's contract; ``tests/contract`` checks them
against the committed spec.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import httpx
import msgspec

from shared import errors
from shared.canonical import DECIMAL_PATTERN, Amount, CurrencyCode, PeriodState
from shared.http_client import LayerClient, Probe
from shared.ndjson import NDJSON
from shared.pagination import Page

__all__ = (
    "BudgetVsActualsPage",
    "BudgetVsActualsRow",
    "Flow",
    "FlowPage",
    "FreshnessPage",
    "FreshnessRow",
    "GroupKey",
    "ProcessClient",
    "SourceStatus",
    "SystemHealth",
)

T = TypeVar("T")
GroupKey = Literal["entity", "period", "account", "cost_center"]
"""A dimension budget-against-actuals rows can be grouped by."""
Percentage = Annotated[
    Decimal,
    msgspec.Meta(
        description="A percentage as a decimal string, to 2 places: `-12.50` is -12.5 %.",
        examples=["-12.50"],
        extra_json_schema={"pattern": DECIMAL_PATTERN, "extra": {"pattern": DECIMAL_PATTERN}},
    ),
]


class Flow(msgspec.Struct, kw_only=True):
    """``Flow`` in the process spec (the fields this layer shows)."""

    id: str
    name: str
    description: str
    sync_model: str
    status: Literal["available", "planned"]


class FlowPage(Page[Flow], kw_only=True):
    """A page of ``ListFlows``."""


class SourceStatus(msgspec.Struct, kw_only=True):
    """``SourceStatus`` in the process spec."""

    id: str
    kind: str
    status: Literal["up", "down"]
    detail: str


class SystemHealth(msgspec.Struct, kw_only=True):
    """``SystemHealth`` in the process spec."""

    layer: Literal["system"]
    status: Literal["up", "down"]
    latency_ms: float
    detail: str
    sources: list[SourceStatus] | None


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
    """The planning version that holds the actuals."""
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
    """The legal entity's code."""
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


_ROW_DECODER = msgspec.json.Decoder(BudgetVsActualsRow)
_RELAYED: dict[int, type[errors.ClientError]] = {400: errors.BadRequestError, 404: errors.NotFoundError}
"""The process layer's answers that are the caller's own mistake, raised again as the same error."""
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "trace_id", "request_id"})


class ProcessClient(LayerClient):
    """Calls process_apis."""

    layer = "process layer"

    async def ready(self) -> Probe:
        """``GetReadiness`` of the process layer."""
        return await self.probe("/health/ready")

    async def system_health(self) -> SystemHealth:
        """``GetSystemHealth``: the layer below the process layer, as it sees it."""
        return await self.get("/v1/system-health", SystemHealth)

    async def list_flows(self) -> list[Flow]:
        """``ListFlows``, every page."""
        return await self.get_every_page("/v1/flows", FlowPage)

    # -- the workbench -----------------------------------------------------------------------------

    async def budget_vs_actuals(self, query: dict[str, Any], *, timeout: float) -> BudgetVsActualsPage:
        """``ListBudgetVsActuals``: one page."""
        response = await self._workbench(
            "/v1/workbench/budget-vs-actuals", query, "application/json", timeout
        )
        return self._decoded(response, BudgetVsActualsPage)

    async def budget_vs_actuals_rows(
        self, query: dict[str, Any], *, timeout: float
    ) -> list[BudgetVsActualsRow]:
        """``ListBudgetVsActuals`` as NDJSON: every row, in one answer (``limit`` and ``cursor`` do not apply)."""
        path = "/v1/workbench/budget-vs-actuals"
        response = await self._workbench(path, query, NDJSON, timeout)
        return self._lines(_ROW_DECODER, response.content, path)

    async def freshness(self, query: dict[str, Any], *, timeout: float) -> FreshnessPage:
        """``ListFreshness``: one page."""
        response = await self._workbench("/v1/workbench/freshness", query, "application/json", timeout)
        return self._decoded(response, FreshnessPage)

    def _decoded(self, response: httpx.Response, type_: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=type_)
        except msgspec.DecodeError as exc:
            raise errors.UpstreamContractError(
                f"{self.layer} answered {response.request.url.path} off contract: {exc}"
            ) from exc

    async def _workbench(
        self, path: str, query: dict[str, Any], accept: str, timeout: float
    ) -> httpx.Response:
        """GET a workbench read, waiting up to ``timeout`` seconds (it runs a planning export below).

        The process layer validates what this layer cannot (an entity the ERP does not have, a version
        planning does not have, ``from`` after ``to``): its 400 and 404 are the caller's mistake, so they are
        raised again as the same error with the same detail and members, not as an upstream failure.
        """
        params = {key: value for key, value in query.items() if value is not None}
        with self._translated("GET", path):
            response = await self.http.get(path, params=params, headers={"Accept": accept}, timeout=timeout)
        relayed = _RELAYED.get(response.status_code)
        if relayed is not None:
            try:
                problem = msgspec.json.decode(response.content, type=dict[str, Any])
            except msgspec.DecodeError:
                problem = {}
            members = {key: value for key, value in problem.items() if key not in _PROBLEM_MEMBERS}
            detail = str(problem.get("detail") or "")
            raise relayed(detail or f"{self.layer} refused the request ({response.status_code})", **members)
        # Anything else is this layer's problem, not the caller's: as every other call below answers it.
        self._check(response, "GET", path)
        return response
