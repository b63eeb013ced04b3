"""The control ledger over HTTP: runs, audit traces, exceptions, dead letters and reconciliations.

Lists are newest first and cursor-paged (the cursor is the last item's id).
Replaying an exception re-runs its whole slice; replaying a dead letter starts a
new run with the parameters of the run it carried. For the event path (flow
``source-events``) either replay runs the event's handlers again, and the run it
answers reports how that went.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from process_apis.events.consumer import EVENTS_FLOW
from process_apis.events.intake import EVENT_JOB
from process_apis.flows.actuals_to_plan.controller import run_accepted
from process_apis.flows.actuals_to_plan.runner import FLOW, RunParams
from process_apis.ledger.records import (
    AuditEvent,
    DeadLetter,
    ExceptionCase,
    ExceptionStatus,
    Reconciliation,
    ReconciliationStatus,
    Run,
    RunStatus,
)
from shared.auth.client import current_principal
from shared.auth.middleware import AUTH_ERRORS, requires
from shared.errors import BadRequestError, ConflictError, NotFoundError
from shared.observability.context import current_trace
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, encode_cursor
from shared.problems import problem_responses

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.datastructures import State

    from process_apis.events.runtime import EventPath
    from process_apis.flows.actuals_to_plan.job import ActualsToPlan
    from process_apis.ledger.store import LedgerStore

__all__ = ("ControlsController",)

READ_ERRORS = problem_responses(400, 404, *AUTH_ERRORS)
WRITE_ERRORS = problem_responses(400, 404, 409, 415, 422, 502, 503, 504, *AUTH_ERRORS)
_LEDGER_ID = re.compile(r"[0-9a-f]{24}")
"""The ledger's record ids (runs, exceptions, dead letters, reconciliation lines)."""
IdPath = Annotated[str, Parameter(pattern=r"^[0-9a-f]{24}$", description="The record's id.")]
NAME = r"^[a-z][a-z0-9-]{0,63}$"
"""A flow's or a reason code's name."""
CODE = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
"""An entity code, as the canonical model has them."""
FlowQuery = Annotated[
    str | None, Parameter(pattern=NAME, description="Only this flow, such as `actuals-to-plan`.")
]


class RunPage(Page[Run], kw_only=True):
    """A page of runs, newest first."""


class AuditTrace(msgspec.Struct, kw_only=True):
    """Every audit event of one trace, in order: the path from the ERP's actuals to the planning cells."""

    trace_id: str
    """The trace."""
    events: list[AuditEvent]
    """Its events, oldest first."""


class ExceptionView(msgspec.Struct, kw_only=True):
    """An exception with its age."""

    exception: ExceptionCase
    """The exception as the ledger holds it."""
    age_seconds: int
    """Seconds since it was first seen (until it was resolved)."""


class ExceptionPage(Page[ExceptionView], kw_only=True):
    """A page of exceptions, newest first."""


class ExceptionUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Assign an exception or resolve it."""

    owner: Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{1,128}$")] | None = None
    """Who owns it; setting an owner makes an open exception `assigned`."""
    status: Literal["open", "assigned", "resolved"] | None = None
    """Its new status."""


class DeadLetterPage(Page[DeadLetter], kw_only=True):
    """A page of dead letters, newest first."""


class ReconciliationPage(Page[Reconciliation], kw_only=True):
    """A page of reconciliation lines, newest first."""


def _store(state: State) -> LedgerStore:
    store: LedgerStore = state.ledger.store
    return store


def _after(cursor: str | None) -> str | None:
    """The ledger id a cursor carries; a cursor that carries none was not issued here (400)."""
    if cursor is None:
        return None
    after = decode_cursor(cursor)
    if not _LEDGER_ID.fullmatch(after):
        raise BadRequestError("cursor is not valid; pass a next_cursor unchanged", field="cursor")
    return after


def _next(items: Sequence[object], limit: int, key: str) -> str | None:
    return encode_cursor(key) if len(items) == limit else None


def _view(case: ExceptionCase) -> ExceptionView:
    until = case.resolved_at or datetime.now(UTC)
    return ExceptionView(exception=case, age_seconds=max(0, int((until - case.first_seen).total_seconds())))


def _actor() -> tuple[str, str]:
    principal, trace = current_principal(), current_trace()
    return (principal.actor if principal else "anonymous", trace.trace_id if trace else "")


async def _rerun(state: State, params: dict[str, object], **changes: object) -> Run:
    """A new run with ``params`` changed by ``changes``, loading for real, with the dimension map configured
    now: a replay after a map was added loads what the old map could not."""
    flow: ActualsToPlan = state.actuals_to_plan
    run_params = msgspec.structs.replace(
        msgspec.convert(params, RunParams),
        dry_run=False,
        map_version=state.settings.flows.actuals_to_plan.map_version,
        **changes,
    )
    actor, trace_id = _actor()
    return await flow.start(run_params, actor=actor, trace_id=trace_id, trigger="replay")


async def _replay_event(state: State, event_id: object) -> Response[Run]:
    """A run that replays one event of the inbox (202, `Location`: the run)."""
    events: EventPath = state.events
    actor, trace_id = _actor()
    try:
        run = await events.processor.replay(str(event_id), actor=actor, trace_id=trace_id)
    except LookupError as exc:
        raise ConflictError(str(exc)) from exc
    return Response(run, status_code=202, headers={"Location": f"/v1/runs/{run.id}"})


class ControlsController(Controller):
    """The control ledger."""

    tags = ["controls"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @get(
        "/v1/runs",
        operation_id="ListRuns",
        summary="List runs",
        responses=READ_ERRORS,
        **requires("flows:read"),
    )
    async def list_runs(
        self,
        state: State,
        flow: FlowQuery = None,
        status: Annotated[RunStatus | None, Parameter(description="Only runs in this status.")] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> RunPage:
        """Runs of every flow, newest first, with their status, step, progress, counts and result."""
        runs = await _store(state).list_runs(flow=flow, status=status, limit=limit, after_id=_after(cursor))
        return RunPage(items=runs, next_cursor=_next(runs, limit, runs[-1].id) if runs else None)

    @get(
        "/v1/runs/{run_id:str}",
        operation_id="GetRun",
        summary="Get a run of any flow",
        responses=READ_ERRORS,
        **requires("flows:read"),
    )
    async def get_run(self, state: State, run_id: FromPath[IdPath]) -> Run:
        """One run of any flow (a replay of an event, say): its status, counts, result and error."""
        run = await _store(state).get_run(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id!r}", field="run_id")
        return run

    @get(
        "/v1/audit/traces/{trace_id:str}",
        operation_id="GetAuditTrace",
        summary="Follow one trace through the audit trail",
        responses=READ_ERRORS,
        **requires("flows:read"),
    )
    async def get_trace(
        self,
        state: State,
        trace_id: FromPath[Annotated[str, Parameter(pattern=r"^[0-9a-f]{32}$", description="W3C trace id.")]],
    ) -> AuditTrace:
        """Every intent and outcome recorded under the trace: each step of each run it started, with source and
        target refs, mapping version, the original caller and a hash of what was sent."""
        events = await _store(state).trace(trace_id)
        if not events:
            raise NotFoundError(f"no audit events for trace {trace_id}", field="trace_id")
        return AuditTrace(trace_id=trace_id, events=events)

    @get(
        "/v1/exceptions",
        operation_id="ListExceptions",
        summary="List exceptions, with their age",
        responses=READ_ERRORS,
        **requires("flows:read"),
    )
    async def list_exceptions(
        self,
        state: State,
        flow: FlowQuery = None,
        status: Annotated[
            ExceptionStatus | None, Parameter(description="Only exceptions in this status.")
        ] = None,
        reason_code: Annotated[str | None, Parameter(pattern=NAME, description="Only this reason.")] = None,
        slice_key: Annotated[
            str | None,
            Parameter(
                pattern=r"^[a-z][a-z0-9-]{0,62}:[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}:[0-9]{4}-(0[1-9]|1[0-2])$",
                description="Only this slice, such as `erp:FS-US:2026-03`.",
            ),
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> ExceptionPage:
        """Exceptions newest first: reason, slice, owner, status, first and last seen, occurrences and age."""
        cases = await _store(state).list_exceptions(
            flow=flow,
            status=status,
            reason_code=reason_code,
            slice_key=slice_key,
            limit=limit,
            after_id=_after(cursor),
        )
        return ExceptionPage(
            items=[_view(case) for case in cases],
            next_cursor=_next(cases, limit, cases[-1].id) if cases else None,
        )

    @patch(
        "/v1/exceptions/{exception_id:str}",
        operation_id="UpdateException",
        summary="Assign or resolve an exception",
        responses=WRITE_ERRORS,
        **requires("flows:run"),
    )
    async def update_exception(
        self, state: State, exception_id: FromPath[IdPath], data: JSONBody[ExceptionUpdate]
    ) -> ExceptionView:
        """Set the owner (an open exception becomes `assigned`) or the status (`resolved` stamps when)."""
        if data.owner is None and data.status is None:
            raise BadRequestError("give an owner, a status or both")
        store = _store(state)
        if await store.get_exception(exception_id) is None:
            raise NotFoundError(f"no exception {exception_id!r}", field="exception_id")
        if data.owner is not None:
            case = await store.update_exception(exception_id, owner=data.owner, status=data.status)
        else:
            case = await store.update_exception(exception_id, status=data.status)
        return _view(case)

    @post(
        "/v1/exceptions/{exception_id:str}/replay",
        operation_id="ReplayException",
        summary="Re-run the slice of an exception",
        status_code=202,
        responses=WRITE_ERRORS,
        **requires("flows:run"),
    )
    async def replay_exception(self, state: State, exception_id: FromPath[IdPath]) -> Response[Run]:
        """Start a run over the whole entity-period slice of the exception, or, for an event, run its handlers
        again (202, `Location`: the run)."""
        store = _store(state)
        case = await store.get_exception(exception_id)
        if case is None:
            raise NotFoundError(f"no exception {exception_id!r}", field="exception_id")
        if case.flow == EVENTS_FLOW and "event_id" in case.detail:
            return await _replay_event(state, case.detail["event_id"])
        if case.flow != FLOW or case.slice_key is None or case.run_id is None:
            raise ConflictError("only an actuals-to-plan exception of a slice can be replayed")
        run = await store.get_run(case.run_id)
        if run is None:
            raise ConflictError(f"the run of exception {exception_id} is gone")
        _source, entity, period = case.slice_key.rsplit(":", 2)
        replay = await _rerun(state, run.params, entities=(entity,), period_from=period, period_to=period)
        return run_accepted(replay)

    @get(
        "/v1/dead-letters",
        operation_id="ListDeadLetters",
        summary="List dead letters",
        responses=READ_ERRORS,
        **requires("flows:read"),
    )
    async def list_dead_letters(
        self,
        state: State,
        flow: FlowQuery = None,
        replayed: Annotated[
            bool | None, Parameter(description="Only replayed (true) or waiting (false) ones.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> DeadLetterPage:
        """Work that failed every attempt, newest first, with its payload and the last reason."""
        letters = await _store(state).list_dead_letters(
            flow=flow, replayed=replayed, limit=limit, after_id=_after(cursor)
        )
        return DeadLetterPage(
            items=letters, next_cursor=_next(letters, limit, letters[-1].id) if letters else None
        )

    @post(
        "/v1/dead-letters/{dead_letter_id:str}/replay",
        operation_id="ReplayDeadLetter",
        summary="Replay a dead letter",
        status_code=202,
        responses=WRITE_ERRORS,
        **requires("flows:run"),
    )
    async def replay_dead_letter(self, state: State, dead_letter_id: FromPath[IdPath]) -> Response[Run]:
        """Start a new run with the parameters of the run the dead letter carried, or, for an event, run its
        handlers again (202); it is marked replayed."""
        store = _store(state)
        letter = await store.get_dead_letter(dead_letter_id)
        if letter is None:
            raise NotFoundError(f"no dead letter {dead_letter_id!r}", field="dead_letter_id")
        if letter.replayed_at is not None:
            raise ConflictError(
                f"dead letter {dead_letter_id} was replayed already (run {letter.replay_run_id})"
            )
        if letter.job_kind == EVENT_JOB:
            answer = await _replay_event(state, letter.payload.get("event_id"))
            await store.mark_dead_letter_replayed(dead_letter_id, answer.content.id)
            return answer
        run = await store.get_run(str(letter.payload.get("run_id", "")))
        if run is None:
            raise ConflictError(f"dead letter {dead_letter_id} carries no run that can be replayed")
        replay = await _rerun(state, run.params)
        await store.mark_dead_letter_replayed(dead_letter_id, replay.id)
        return run_accepted(replay)

    @get(
        "/v1/reconciliations",
        operation_id="ListReconciliations",
        summary="List reconciliation lines",
        responses=READ_ERRORS,
        **requires("flows:read"),
    )
    async def list_reconciliations(
        self,
        state: State,
        flow: FlowQuery = None,
        entity: Annotated[str | None, Parameter(pattern=CODE, description="Only this entity.")] = None,
        period: Annotated[
            str | None, Parameter(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="Only this period.")
        ] = None,
        run_id: Annotated[
            str | None, Parameter(pattern=r"^[0-9a-f]{24}$", description="Only this run.")
        ] = None,
        status: Annotated[
            ReconciliationStatus | None, Parameter(description="Only matched or mismatched.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> ReconciliationPage:
        """ERP against planning per entity, period and account (account null: the slice's total), counts and
        totals to the cent, newest first."""
        after = _after(cursor)
        if after is not None and not after.isdigit():
            raise BadRequestError("cursor is not valid; pass a next_cursor unchanged", field="cursor")
        lines = await _store(state).list_reconciliations(
            flow=flow,
            entity=entity,
            period=period,
            run_id=run_id,
            status=status,
            limit=limit,
            after=int(after) if after is not None else None,
        )
        return ReconciliationPage(
            items=lines, next_cursor=_next(lines, limit, str(lines[-1].id)) if lines else None
        )
