"""``/v1/workbench/...`` on the process layer: budget against actuals, and the freshness of actuals.

Both need ``workbench:read``: the scope the experience layer's client holds at
this layer, and the one a planner's token needs at the experience layer, so the
same right opens the same data at either door. Each read is recorded in the
audit trail (step ``workbench.read``) under the request's trace, naming the
original caller; a read that cannot be recorded is not served (503).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar import Controller, Request, get
from sqlalchemy.exc import SQLAlchemyError

from process_apis.flows.actuals_to_plan.runner import FLOW
from process_apis.ledger.records import AuditEventCreate, payload_hash
from process_apis.workbench.freshness import SliceLedger, freshness_rows
from process_apis.workbench.periods import period_range
from process_apis.workbench.schemas import (
    DEFAULT_GROUP_BY,
    BudgetVsActualsPage,
    BudgetVsActualsRow,
    EntityQuery,
    FreshnessPage,
    FreshnessRow,
    FromQuery,
    GroupByQuery,
    ToQuery,
    VersionQuery,
    group_keys,
    with_alternative,
)
from process_apis.workbench.variance import budget_vs_actuals, row_key
from shared.auth.client import current_principal
from shared.auth.middleware import AUTH_ERRORS, requires
from shared.errors import NotFoundError, ServiceUnavailableError, UpstreamError, UpstreamRejectedError
from shared.ndjson import NDJSON, ndjson
from shared.observability.context import current_trace
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, paginate
from shared.problems import problem_responses
from shared.settings import duration_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.datastructures import State

    from process_apis.clients.system import SystemClient
    from process_apis.flows.actuals_to_plan.dimension_map import DimensionMap
    from process_apis.flows.actuals_to_plan.job import ActualsToPlan
    from shared.canonical import PlanningCell
    from shared.settings import Settings

__all__ = ("DEFAULT_VERSION", "WorkbenchController")

DEFAULT_VERSION = "Budget"
"""The version compared with the actuals unless the caller names another."""
READ_ERRORS = problem_responses(400, 404, 502, 503, 504, *AUTH_ERRORS)
STEP = "workbench.read"
"""The audit step of every workbench read."""


def _today() -> date:
    return datetime.now(UTC).date()


def _flow(state: State) -> ActualsToPlan:
    flow: ActualsToPlan = state.actuals_to_plan
    return flow


def _settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


async def _audit(
    state: State,
    *,
    operation: str,
    source_ref: str,
    mapping_version: str | None,
    detail: dict[str, Any],
    shown: object,
) -> None:
    """Record one read: who asked (the original caller), what, and a hash of what they were shown.

    Raises:
        ServiceUnavailableError: the ledger cannot take the record; the read is then not served.
    """
    principal, trace = current_principal(), current_trace()
    event = AuditEventCreate(
        trace_id=trace.trace_id if trace else "",
        step=STEP,
        kind="outcome",
        source_ref=source_ref,
        mapping_version=mapping_version,
        actor=principal.actor if principal else "anonymous",
        payload_hash=payload_hash(msgspec.to_builtins(shown)),
        detail={"operation": operation, **detail},
    )
    try:
        await state.ledger.store.add_audit_events([event])
    except SQLAlchemyError as exc:
        raise ServiceUnavailableError("the control ledger cannot record this read; try again") from exc


async def _currencies(system: SystemClient, source: str, dimension_map: DimensionMap) -> dict[str, str]:
    """Each planning entity's currency: its ERP legal entity's, through the map's entity remaps."""
    return {dimension_map.entity(legal.code): legal.currency for legal in await system.legal_entities(source)}


async def _cells(
    system: SystemClient,
    planning: str,
    versions: Sequence[str],
    entities: Sequence[str],
    periods: tuple[str, str],
    timeout: float,
    compared: str,
) -> dict[str, list[PlanningCell]]:
    """Every cell of ``versions`` for ``entities`` over ``periods``, by version.

    Raises:
        NotFoundError: the planning platform has no version ``compared`` (the one the caller named).
    """

    async def read(version: str) -> list[PlanningCell]:
        try:
            # Every entity in one read: each read is an export, and the platform runs one task at a time.
            return await system.planning_cells(
                planning, version, None, periods[0], periods[1], timeout=timeout
            )
        except UpstreamRejectedError as exc:
            if version == compared and exc.extra.get("upstream_status") == 404:
                raise NotFoundError(
                    f"the planning source {planning!r} has no version {version!r}", field="version"
                ) from exc
            raise

    wanted = set(entities)
    cells: dict[str, list[PlanningCell]] = {}
    for version in sorted(versions, key=lambda name: name != compared):  # the caller's first: its 404 wins
        cells[version] = [cell for cell in await read(version) if cell.entity in wanted]
    return cells


class WorkbenchController(Controller):
    """What a planner's workbench shows, computed here and served to planners by the experience layer."""

    path = "/v1/workbench"
    tags = ["workbench"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @get(
        "/budget-vs-actuals",
        operation_id="ListBudgetVsActuals",
        summary="Budget against actuals",
        responses=READ_ERRORS,
        operation_class=with_alternative(NDJSON, BudgetVsActualsRow.__name__),
        **requires("workbench:read"),
    )
    async def budget_vs_actuals(
        self,
        request: Request[Any, Any, Any],
        state: State,
        version: VersionQuery = DEFAULT_VERSION,
        period_from: FromQuery = None,
        period_to: ToQuery = None,
        entity: EntityQuery = None,
        group_by: GroupByQuery = DEFAULT_GROUP_BY,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> BudgetVsActualsPage:
        """The planning platform's actuals (the version actuals-to-plan loads) against `version`, totalled by
        the `group_by` dimensions and the currency, over `from`..`to`, for one entity or every entity of the
        ERP: actual, budget, variance (`actual - budget`) and variance % (null when the budget is zero), as
        decimal strings. Each entity's amounts are in its planning currency (the ERP legal entity's), and
        amounts of two currencies are never added up. `Accept: application/x-ndjson` streams every row, one
        per line, without the envelope (`limit` and `cursor` do not apply)."""
        settings = _settings(state)
        flow = settings.flows.actuals_to_plan
        periods = period_range(period_from, period_to, _today())
        keys = group_keys(group_by)
        if cursor is not None:
            decode_cursor(cursor)  # a cursor that is not one is refused before any planning read
        dimension_map = _flow(state).dimension_map(flow.map_version)
        system: SystemClient = state.below
        currencies = await _currencies(system, flow.source, dimension_map)
        if entity is not None:
            if entity not in currencies:
                raise NotFoundError(f"the ERP {flow.source!r} has no legal entity {entity!r}", field="entity")
            currencies = {entity: currencies[entity]}
        actual_version = dimension_map.planning_version
        versions = list(dict.fromkeys((actual_version, version)))
        cells = await _cells(
            system,
            flow.planning,
            versions,
            sorted(currencies),
            (periods[0], periods[-1]),
            settings.workbench.timeout / 2,
            compared=version,
        )
        rows = budget_vs_actuals(cells[actual_version], cells[version], currencies, keys)
        detail: dict[str, Any] = {
            "version": version,
            "actual_version": actual_version,
            "period_from": periods[0],
            "period_to": periods[-1],
            "entity": entity,
            "group_by": list(keys),
        }
        source_ref = f"{flow.planning}:{actual_version},{version}"
        if request.accept.best_match(["application/json", NDJSON], default="application/json") == NDJSON:
            await _audit(
                state,
                operation="ListBudgetVsActuals",
                source_ref=source_ref,
                mapping_version=dimension_map.version,
                detail={**detail, "format": "ndjson", "rows": len(rows)},
                shown=rows,
            )
            return ndjson(rows)  # type: ignore[return-value]
        page = paginate(rows, lambda row: row_key(row, keys), limit, cursor, Page)
        shown: list[BudgetVsActualsRow] = page.items
        currency_set = set(currencies.values())
        answer = BudgetVsActualsPage(
            items=shown,
            next_cursor=page.next_cursor,
            version=version,
            actual_version=actual_version,
            period_from=periods[0],
            period_to=periods[-1],
            group_by=list(keys),
            planning_currency=currency_set.pop() if len(currency_set) == 1 else None,
            currencies=dict(sorted(currencies.items())),
        )
        await _audit(
            state,
            operation="ListBudgetVsActuals",
            source_ref=source_ref,
            mapping_version=dimension_map.version,
            detail={**detail, "format": "json", "limit": limit, "cursor": cursor, "rows": len(shown)},
            shown=shown,
        )
        return answer

    @get(
        "/freshness",
        operation_id="ListFreshness",
        summary="Freshness of actuals in planning",
        responses=READ_ERRORS,
        **requires("workbench:read"),
    )
    async def freshness(
        self,
        state: State,
        period_from: FromQuery = None,
        period_to: ToQuery = None,
        entity: EntityQuery = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> FreshnessPage:
        """Per entity and period, when actuals-to-plan last loaded the ERP's actuals into planning, whether
        that load reconciled, the period's state then, and whether it meets the freshness objective
        (`flows.actuals_to_plan.freshness_objective`): loaded, reconciled, and younger than the objective
        or loaded after the period closed. Every entity of the ERP is listed, loaded or not; periods after
        the current month are left out."""
        settings = _settings(state)
        flow = settings.flows.actuals_to_plan
        today = _today()
        current = f"{today.year:04d}-{today.month:02d}"
        periods = [p for p in period_range(period_from, period_to, today) if p <= current]
        if cursor is not None:
            decode_cursor(cursor)
        try:
            loads = await SliceLedger(state.ledger.sessions).latest_loads(FLOW, flow.source)
        except SQLAlchemyError as exc:
            raise ServiceUnavailableError("the control ledger cannot be read; try again") from exc
        system: SystemClient = state.below
        entities_from: Literal["erp", "ledger"] = "erp"
        try:
            entities = {legal.code for legal in await system.legal_entities(flow.source)}
        except UpstreamError:
            # The ledger's own record still answers when the ERP is out, which is when freshness matters.
            entities = {loaded_entity for loaded_entity, _period in loads}
            entities_from = "ledger"
        if entity is not None:
            if entities_from == "erp" and entity not in entities:
                raise NotFoundError(f"the ERP {flow.source!r} has no legal entity {entity!r}", field="entity")
            entities = {entity}
        objective = duration_seconds(flow.freshness_objective)
        now = datetime.now(UTC)
        rows = freshness_rows(entities, periods, loads, timedelta(seconds=objective), now)
        page = paginate(rows, lambda row: f"{row.entity}\x00{row.period}", limit, cursor, Page)
        shown: list[FreshnessRow] = page.items
        answer = FreshnessPage(
            items=shown,
            next_cursor=page.next_cursor,
            source=flow.source,
            objective=flow.freshness_objective,
            objective_seconds=objective,
            as_of=now,
            entities_from=entities_from,
        )
        await _audit(
            state,
            operation="ListFreshness",
            source_ref=f"ledger:{FLOW}:{flow.source}",
            mapping_version=None,
            detail={
                "period_from": periods[0] if periods else None,
                "period_to": periods[-1] if periods else None,
                "entity": entity,
                "format": "json",
                "limit": limit,
                "cursor": cursor,
                "rows": len(shown),
            },
            shown=shown,
        )
        return answer
