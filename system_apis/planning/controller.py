"""``/v1/planning/{source}/...``: versions, dimension members, cells and loads of one planning source.

Reads need ``planning:read``; loads need ``planning:write`` and an
``Idempotency-Key``. Values are canonical (the ERP's codes, ``YYYY-MM`` months);
the source's versioned mapping rules turn them into the model's members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from shared.auth.middleware import AUTH_ERRORS, requires
from shared.canonical import Load, LoadCreate, PlanningDimension, VersionName
from shared.errors import NotFoundError
from shared.idempotency import IDEMPOTENCY_STATUSES, REPLAYED_RESPONSE_HEADER, IdempotencyKeyRequired
from shared.ndjson import ndjson, wants_ndjson
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, decode_cursor, encode_cursor, paginate
from shared.problems import problem_responses
from system_apis.bodies import strict_payload
from system_apis.planning.schemas import LoadPage, PlanningCellPage, PlanningMemberPage, PlanningVersionPage

if TYPE_CHECKING:
    from litestar.datastructures import State

    from system_apis.connectors.anaplan.connector import AnaplanConnector
    from system_apis.planning.registry import PlanningRegistry

__all__ = ("PlanningController",)

SourcePath = Annotated[str, Parameter(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Planning source id.")]
MonthQuery = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
CodeQuery = Annotated[str | None, Parameter(max_length=64, description="Only this code.")]

READ_ERRORS = problem_responses(400, 404, 502, 503, 504, *AUTH_ERRORS)
LOAD_ERRORS = problem_responses(400, 404, 409, 415, 422, 502, 503, 504, *AUTH_ERRORS, *IDEMPOTENCY_STATUSES)


def _registry(state: State) -> PlanningRegistry:
    registry: PlanningRegistry = state.planning
    return registry


def _connector(state: State, source: str) -> AnaplanConnector:
    return _registry(state).get(source)


class PlanningController(Controller):
    """One planning source in canonical terms."""

    path = "/v1/planning/{source:str}"
    tags = ["planning"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @get(
        "/versions",
        operation_id="ListPlanningVersions",
        summary="List planning versions",
        responses=READ_ERRORS,
        **requires("planning:read"),
    )
    async def list_versions(
        self,
        state: State,
        source: FromPath[SourcePath],
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> PlanningVersionPage:
        """The model's versions (such as Actual, Budget, Forecast); loads and cell reads name one."""
        versions = await _connector(state, source).versions()
        return paginate(
            versions, key=lambda v: v.name, limit=limit, cursor=cursor, page_type=PlanningVersionPage
        )

    @get(
        "/dimensions/{dimension:str}/members",
        operation_id="ListPlanningMembers",
        summary="List the members of a dimension",
        responses=READ_ERRORS,
        **requires("planning:read"),
    )
    async def list_members(
        self,
        state: State,
        source: FromPath[SourcePath],
        dimension: FromPath[Annotated[PlanningDimension, Parameter(description="The dimension.")]],
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> PlanningMemberPage:
        """The members of `entity`, `account`, `cost_center` or `month`, each with the canonical value the
        mapping rules map to it (`canonical`; null when none does). Months come in calendar order."""
        members = await _connector(state, source).members(dimension)
        months = dimension is PlanningDimension.MONTH  # months page in calendar order, by their period code
        return paginate(
            members,
            key=lambda m: (m.canonical or m.id) if months else m.id,
            limit=limit,
            cursor=cursor,
            page_type=PlanningMemberPage,
        )

    @get(
        "/cells",
        operation_id="ListPlanningCells",
        summary="Read the cells of a version",
        responses=READ_ERRORS,
        **requires("planning:read"),
    )
    async def list_cells(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        version: Annotated[VersionName, Parameter(description="The version, such as `Budget`.")],
        entity: CodeQuery = None,
        account: CodeQuery = None,
        cost_center: Annotated[
            str | None,
            Parameter(max_length=64, description="Only this cost centre; empty: the unallocated cells."),
        ] = None,
        period_from: Annotated[
            str | None, QueryParameter(name="from", pattern=MonthQuery, description="First month, `YYYY-MM`.")
        ] = None,
        period_to: Annotated[
            str | None, QueryParameter(name="to", pattern=MonthQuery, description="Last month, `YYYY-MM`.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> PlanningCellPage:
        """The non-empty cells of one version, in canonical terms, ordered by entity, account, cost centre and
        month. Read through the platform's export (a task: seconds). `Accept: application/x-ndjson` streams
        every matching cell."""
        connector = _connector(state, source)
        await connector.version(version)
        cells = [
            cell
            for cell in await connector.cells()
            if cell.version == version
            and (entity is None or cell.entity == entity)
            and (account is None or cell.account_code == account)
            and (cost_center is None or cell.cost_center == cost_center)
            and (period_from is None or cell.period >= period_from)
            and (period_to is None or cell.period <= period_to)
        ]
        if wants_ndjson(request):
            cells.sort(key=lambda c: (c.entity, c.account_code, c.cost_center, c.period))
            return ndjson(cells)  # type: ignore[return-value]
        return paginate(
            cells,
            key=lambda c: f"{c.entity}\x00{c.account_code}\x00{c.cost_center}\x00{c.period}",
            limit=limit,
            cursor=cursor,
            page_type=PlanningCellPage,
        )

    @post(
        "/loads",
        operation_id="CreatePlanningLoad",
        summary="Load rows into a version",
        status_code=202,
        responses={
            200: ResponseSpec(
                data_container=Load, description="`dry_run`: the rows are valid; nothing was loaded."
            ),
            **LOAD_ERRORS,
        },
        response_headers=[
            REPLAYED_RESPONSE_HEADER,
            ResponseHeader(
                name="Location", description="The load, to watch until it ends.", documentation_only=True
            ),
        ],
        **requires("planning:write", idempotency="required"),
    )
    async def create_load(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[LoadCreate],
        idempotency_key: IdempotencyKeyRequired,
        dry_run: Annotated[
            bool, Parameter(description="Check and map the rows without loading them (200; nothing is kept).")
        ] = False,
    ) -> Response[Load]:
        """Accept a load (202, `Location`: the load) and run it in the background: upload the rows as the
        import file in chunks, run the import task into `version`, and record the platform's row counts and
        every failed row. Rows are checked first, and a load with any value that maps to no member, or two
        rows for one cell, answers 422 naming each row, and loads nothing. One load runs at a time per
        source; the others wait `queued`."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, LoadCreate, "load")
        connector = _connector(state, source)
        load = await _registry(state).runner.accept(connector, payload, start=not dry_run)
        if dry_run:
            return Response(load, status_code=200)
        return Response(load, status_code=202, headers={"Location": f"/v1/planning/{source}/loads/{load.id}"})

    @get(
        "/loads",
        operation_id="ListPlanningLoads",
        summary="List loads, newest first",
        responses=READ_ERRORS,
        **requires("planning:read"),
    )
    async def list_loads(
        self,
        state: State,
        source: FromPath[SourcePath],
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> LoadPage:
        """The loads of the last 7 days, newest first, each with its status, progress and counts."""
        _connector(state, source)
        after = decode_cursor(cursor) if cursor is not None else None
        loads, last = await _registry(state).loads.page(source, limit, after)
        return LoadPage(items=loads, next_cursor=encode_cursor(last) if last else None)

    @get(
        "/loads/{load_id:str}",
        operation_id="GetPlanningLoad",
        summary="Get a load",
        responses=READ_ERRORS,
        **requires("planning:read"),
    )
    async def get_load(
        self,
        state: State,
        source: FromPath[SourcePath],
        load_id: FromPath[Annotated[str, Parameter(pattern=r"^[0-9a-f]{24}$", description="The load's id.")]],
    ) -> Load:
        """One load: its status (`queued`, `uploading`, `importing`, `complete`, `failed`, `interrupted`), its
        progress from 0 to 1, the platform's task id and, once it ended, the row counts as the platform
        reported them and every failed row with the platform's reason."""
        _connector(state, source)
        load = await _registry(state).loads.get(source, load_id)
        if load is None:
            raise NotFoundError(f"no load {load_id!r} of planning source {source!r}", field="load_id")
        return load
