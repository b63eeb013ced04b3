"""``/v1/flows/actuals-to-plan/runs``: start a run (202 and its ``Location``) and watch it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, JSONBody, Parameter

from process_apis.flows.actuals_to_plan.job import months
from process_apis.flows.actuals_to_plan.runner import FLOW, RunParams
from process_apis.ledger.records import Run
from shared.auth.client import current_principal
from shared.auth.middleware import AUTH_ERRORS, requires
from shared.errors import BadRequestError, NotFoundError
from shared.idempotency import IDEMPOTENCY_STATUSES, REPLAYED_RESPONSE_HEADER, IdempotencyKeyOptional
from shared.observability.context import current_trace
from shared.problems import problem_responses

if TYPE_CHECKING:
    from litestar.datastructures import State

    from process_apis.flows.actuals_to_plan.job import ActualsToPlan
    from process_apis.ledger.store import LedgerStore

__all__ = ("RUNS_PATH", "ActualsToPlanController", "RunCreate", "run_accepted")

Period = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="A period, `YYYY-MM`.")
]
MAX_MONTHS = 24
"""Most months one run covers."""
RunIdPath = Annotated[str, Parameter(pattern=r"^[0-9a-f]{24}$", description="The run's id.")]


class RunCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a run covers; the sources default to the flow's settings."""

    period_from: Period
    """First period."""
    period_to: Period
    """Last period: a run covers at most 24 months."""
    entities: list[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]] = []
    """Legal entities (codes); empty: every entity of the ERP."""
    source: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{0,62}$")] | None = None
    """The ERP source; default: ``flows.actuals_to_plan.source``."""
    planning: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{0,62}$")] | None = None
    """The planning source; default: ``flows.actuals_to_plan.planning``."""


RUNS_PATH = "/v1/flows/actuals-to-plan/runs"
"""Where runs live; each run at ``{RUNS_PATH}/{id}``."""


def run_accepted(run: Run) -> Response[Run]:
    """202 with the run, and its ``Location`` to watch until it ends."""
    return Response(run, status_code=202, headers={"Location": f"{RUNS_PATH}/{run.id}"})


def _flow(state: State) -> ActualsToPlan:
    flow: ActualsToPlan = state.actuals_to_plan
    return flow


class ActualsToPlanController(Controller):
    """Runs of the actuals-to-plan flow."""

    path = RUNS_PATH
    tags = ["flows"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @post(
        operation_id="StartActualsToPlanRun",
        summary="Start an actuals-to-plan run",
        status_code=202,
        responses=problem_responses(
            400, 404, 409, 415, 422, 502, 503, 504, *AUTH_ERRORS, *IDEMPOTENCY_STATUSES
        ),
        response_headers=[
            REPLAYED_RESPONSE_HEADER,
            ResponseHeader(
                name="Location", description="The run, to watch until it ends.", documentation_only=True
            ),
        ],
        **requires("flows:run", idempotency="optional"),
    )
    async def start_run(
        self,
        state: State,
        data: JSONBody[RunCreate],
        idempotency_key: IdempotencyKeyOptional = None,
        dry_run: Annotated[
            bool, Parameter(description="Extract, map, validate and aggregate, but load nothing.")
        ] = False,
    ) -> Response[Run]:
        """Queue a run over the ERP's actuals of `entities` from `period_from` to `period_to` (202, `Location`:
        the run). A worker replaces each slice (entity, period) in planning's Actual version and reconciles it;
        a run over a slice another run holds ends `conflict`. With an `Idempotency-Key`, a retry answers the
        run already started."""
        del idempotency_key  # the idempotency middleware's
        if data.period_to < data.period_from:
            raise BadRequestError("period_to is before period_from", field="period_to")
        if len(months(data.period_from, data.period_to)) > MAX_MONTHS:
            raise BadRequestError(f"a run covers at most {MAX_MONTHS} months", field="period_to")
        settings = state.settings.flows.actuals_to_plan
        params = RunParams(
            source=data.source or settings.source,
            planning=data.planning or settings.planning,
            entities=tuple(data.entities),
            period_from=data.period_from,
            period_to=data.period_to,
            dry_run=dry_run,
            map_version=settings.map_version,
        )
        principal = current_principal()
        trace = current_trace()
        run = await _flow(state).start(
            params,
            actor=principal.actor if principal is not None else "anonymous",
            trace_id=trace.trace_id if trace is not None else "",
        )
        return run_accepted(run)

    @get(
        "/{run_id:str}",
        operation_id="GetActualsToPlanRun",
        summary="Get an actuals-to-plan run",
        responses=problem_responses(400, 404, *AUTH_ERRORS),
        **requires("flows:read"),
    )
    async def get_run(self, state: State, run_id: FromPath[RunIdPath]) -> Run:
        """One run: its status (`queued`, `running`, `succeeded`, `failed`, `abandoned`, `conflict`), step,
        progress, counts and result (`reconciled`, exceptions, slices with their period state)."""
        store: LedgerStore = state.ledger.store
        run = await store.get_run(run_id)
        if run is None or run.flow != FLOW:
            raise NotFoundError(f"no actuals-to-plan run {run_id!r}", field="run_id")
        return run
