"""The ledger's operations: what the flows, the worker and the API read and write.

Each operation is one short transaction of its own and returns plain records
(:mod:`~process_apis.ledger.records`), so no caller ever holds a session or an
ORM object. Listings are newest first and page by keyset: pass the last id of a
page as ``after_id`` (``after`` for reconciliations) to get the next one; a page
shorter than ``limit`` is the last.

Times the ledger stamps itself (start, finish, heartbeat, last seen, resolved)
come from the database's clock, the one clock every replica shares, so a stale
heartbeat is judged the same way whichever replica looks.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack

import msgspec
from sqlalchemy import Select, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from process_apis.ledger.models import AuditEventRow, DeadLetterRow, ExceptionRow, ReconciliationRow, RunRow
from process_apis.ledger.records import (
    FINISHED_RUN_STATUSES,
    AuditEvent,
    AuditEventCreate,
    DeadLetter,
    ExceptionCase,
    ExceptionStatus,
    Reconciliation,
    ReconciliationCreate,
    ReconciliationStatus,
    Run,
    RunChanges,
    RunStatus,
    RunStep,
    RunTrigger,
    new_id,
)
from shared.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from sqlalchemy.orm import InstrumentedAttribute

__all__ = ("UNSET", "LedgerStore", "Unset")

DEFAULT_LIMIT = 100
"""Rows a listing returns when no limit is given."""

_R = TypeVar("_R", bound=msgspec.Struct)


class Unset(enum.Enum):
    """Type of :data:`UNSET`: "leave as it is", where ``None`` is a value (an owner taken away)."""

    UNSET = enum.auto()


UNSET = Unset.UNSET
"""An argument not given."""

_RUNNING: tuple[RunStatus, ...] = ("running",)


def _record(kind: type[_R], row: object) -> _R:
    """The record ``kind`` read from the attributes of ORM object ``row``."""
    return msgspec.convert(row, kind, from_attributes=True)


def _one_or_many(value: str | Collection[str]) -> list[str]:
    """One status or several, as a list (a str is a collection too, so it is checked first)."""
    return [value] if isinstance(value, str) else list(value)


def _check_progress(progress: float) -> float:
    """``progress``, if it is a share (0 to 1); the table's check would refuse it less clearly."""
    if not 0 <= progress <= 1:
        raise ValueError(f"progress must be between 0 and 1, not {progress}")
    return progress


def _page(
    statement: Select[Any], key: InstrumentedAttribute[Any], limit: int, after: object | None
) -> Select[Any]:
    """``statement`` newest first by ``key``, after the cursor ``after``, at most ``limit`` rows."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if after is not None:
        statement = statement.where(key < after)
    return statement.order_by(key.desc()).limit(limit)


class LedgerStore:
    """The ledger's operations over a session factory; safe to share between tasks."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Use ``sessions`` for every operation (one session, one transaction, per call)."""
        self._sessions = sessions

    # Runs.

    async def create_run(
        self,
        *,
        flow: str,
        trigger: RunTrigger,
        actor: str,
        trace_id: str,
        params: dict[str, Any] | None = None,
        slice_keys: Iterable[str] = (),
        status: RunStatus = "queued",
        run_id: str | None = None,
    ) -> Run:
        """Record a new run, ``queued`` unless told otherwise; ``run_id`` defaults to a new time-sortable id."""
        statement = (
            insert(RunRow)
            .values(
                id=run_id or new_id(),
                flow=flow,
                status=status,
                params=params or {},
                slice_keys=list(slice_keys),
                trigger=trigger,
                actor=actor,
                trace_id=trace_id,
            )
            .returning(RunRow)
        )
        async with self._sessions.begin() as session:
            return _record(Run, (await session.scalars(statement)).one())

    async def get_run(self, run_id: str) -> Run | None:
        """The run ``run_id``, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(RunRow, run_id)
            return None if row is None else _record(Run, row)

    async def update_run(
        self, run_id: str, *, from_status: Collection[RunStatus] | None = None, **changes: Unpack[RunChanges]
    ) -> Run:
        """Apply ``changes`` to run ``run_id`` and return it as it is now.

        A move to ``running`` stamps ``started_at`` (the first time) and
        ``heartbeat_at``; a move to a finished status stamps ``finished_at``;
        each unless given in ``changes``. With ``from_status``, the change
        applies only while the run is in one of those statuses: a worker claims
        a run with ``from_status=("queued",), status="running"``, and a late
        worker cannot overwrite a run that was abandoned.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is not in one of ``from_status``.
            ValueError: ``progress`` is outside 0 to 1.
        """
        values: dict[str, Any] = dict(changes)
        if "progress" in changes:
            _check_progress(changes["progress"])
        status = changes.get("status")
        if status == "running":
            values.setdefault("started_at", func.coalesce(RunRow.started_at, func.now()))
            values.setdefault("heartbeat_at", func.now())
        elif status in FINISHED_RUN_STATUSES:
            values.setdefault("finished_at", func.now())
        return await self._update_run(run_id, values, from_status)

    async def heartbeat(
        self, run_id: str, *, step: RunStep | None = None, progress: float | None = None
    ) -> Run:
        """Say that the worker of running run ``run_id`` is alive, optionally with its step and progress.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is not running any more (it was abandoned, say): its worker should stop.
            ValueError: ``progress`` is outside 0 to 1.
        """
        values: dict[str, Any] = {"heartbeat_at": func.now()}
        if step is not None:
            values["step"] = step
        if progress is not None:
            values["progress"] = _check_progress(progress)
        return await self._update_run(run_id, values, _RUNNING)

    async def _update_run(
        self, run_id: str, values: dict[str, Any], from_status: Collection[RunStatus] | None
    ) -> Run:
        async with self._sessions.begin() as session:
            if values:
                statement = update(RunRow).where(RunRow.id == run_id).values(values).returning(RunRow)
                if from_status is not None:
                    statement = statement.where(RunRow.status.in_(list(from_status)))
                row = (
                    await session.scalars(statement, execution_options={"synchronize_session": False})
                ).one_or_none()
            else:
                row = await session.get(RunRow, run_id)
            if row is not None:
                return _record(Run, row)
            current = await session.scalar(select(RunRow.status).where(RunRow.id == run_id))
        if current is None:
            raise NotFoundError(f"run {run_id} does not exist", run_id=run_id)
        raise ConflictError(
            f"run {run_id} is {current}, not {' or '.join(sorted(from_status or ()))}",
            run_id=run_id,
            status=current,
        )

    async def list_runs(
        self,
        *,
        flow: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
        slice_key: str | None = None,
        limit: int = DEFAULT_LIMIT,
        after_id: str | None = None,
    ) -> list[Run]:
        """Runs newest first, filtered by flow, status (one or several) and a slice they cover."""
        statement = select(RunRow)
        if flow is not None:
            statement = statement.where(RunRow.flow == flow)
        if status is not None:
            statement = statement.where(RunRow.status.in_(_one_or_many(status)))
        if slice_key is not None:
            statement = statement.where(RunRow.slice_keys.contains([slice_key]))
        async with self._sessions() as session:
            rows = await session.scalars(_page(statement, RunRow.id, limit, after_id))
            return [_record(Run, row) for row in rows]

    async def abandon_stale_runs(self, older_than: timedelta) -> list[str]:
        """Mark ``abandoned`` every running run whose last heartbeat (or start) is older than ``older_than``.

        Returns:
            The ids of the runs abandoned now, sorted.
        """
        last_sign_of_life = func.coalesce(RunRow.heartbeat_at, RunRow.started_at, RunRow.created_at)
        reason = f"abandoned: no heartbeat for {older_than.total_seconds():g} s"
        statement = (
            update(RunRow)
            .where(RunRow.status == "running", last_sign_of_life < func.now() - older_than)
            .values(status="abandoned", finished_at=func.now(), error=func.coalesce(RunRow.error, reason))
            .returning(RunRow.id)
        )
        async with self._sessions.begin() as session:
            ids = await session.scalars(statement, execution_options={"synchronize_session": False})
            return sorted(ids)

    # Audit events.

    async def add_audit_events(self, events: Iterable[AuditEventCreate]) -> int:
        """Append ``events`` in one transaction, in batches of multi-row inserts; returns how many.

        An event without ``at`` is stamped with this call's time.
        """
        now = datetime.now(UTC)
        rows = [msgspec.structs.asdict(event) for event in events]
        for row in rows:
            if row["at"] is None:
                row["at"] = now
        if rows:
            async with self._sessions.begin() as session:
                # render_nulls: else the ORM splits the batch wherever a None moves (a missing target_ref).
                await session.execute(insert(AuditEventRow).execution_options(render_nulls=True), rows)
        return len(rows)

    async def trace(self, trace_id: str) -> list[AuditEvent]:
        """Every audit event of ``trace_id``, in the order they happened (time, then insertion)."""
        statement = (
            select(AuditEventRow)
            .where(AuditEventRow.trace_id == trace_id)
            .order_by(AuditEventRow.at, AuditEventRow.id)
        )
        async with self._sessions() as session:
            return [_record(AuditEvent, row) for row in await session.scalars(statement)]

    # Exceptions.

    async def record_exception(
        self,
        *,
        flow: str,
        reason_code: str,
        slice_key: str | None,
        fingerprint: str = "",
        detail: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> ExceptionCase:
        """Record a business exception; returns it as it is now.

        While an exception with the same flow, reason, slice and fingerprint is
        unresolved, recording it again does not add one: it counts one more
        occurrence, moves ``last_seen``, and keeps the newest ``detail`` and run.
        After it is resolved, the same problem opens a new exception.
        """
        statement = pg_insert(ExceptionRow).values(
            id=new_id(),
            flow=flow,
            run_id=run_id,
            reason_code=reason_code,
            slice_key=slice_key,
            fingerprint=fingerprint,
            detail=detail or {},
        )
        statement = statement.on_conflict_do_update(
            index_elements=[
                ExceptionRow.flow,
                ExceptionRow.slice_key,
                ExceptionRow.reason_code,
                ExceptionRow.fingerprint,
            ],
            # The predicate of the partial unique index, word for word, so PostgreSQL infers that index.
            index_where=text("status <> 'resolved'"),
            set_={
                "occurrences": ExceptionRow.occurrences + 1,
                "last_seen": func.now(),
                "detail": statement.excluded.detail,
                "run_id": func.coalesce(statement.excluded.run_id, ExceptionRow.run_id),
            },
        )
        async with self._sessions.begin() as session:
            row = (await session.scalars(statement.returning(ExceptionRow))).one()
            return _record(ExceptionCase, row)

    async def get_exception(self, exception_id: str) -> ExceptionCase | None:
        """The exception ``exception_id``, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(ExceptionRow, exception_id)
            return None if row is None else _record(ExceptionCase, row)

    async def list_exceptions(
        self,
        *,
        flow: str | None = None,
        status: ExceptionStatus | Collection[ExceptionStatus] | None = None,
        reason_code: str | None = None,
        slice_key: str | None = None,
        limit: int = DEFAULT_LIMIT,
        after_id: str | None = None,
    ) -> list[ExceptionCase]:
        """Exceptions newest first, filtered by flow, status (one or several), reason and slice.

        The unresolved queue is ``status=("open", "assigned")``.
        """
        statement = select(ExceptionRow)
        if flow is not None:
            statement = statement.where(ExceptionRow.flow == flow)
        if status is not None:
            statement = statement.where(ExceptionRow.status.in_(_one_or_many(status)))
        if reason_code is not None:
            statement = statement.where(ExceptionRow.reason_code == reason_code)
        if slice_key is not None:
            statement = statement.where(ExceptionRow.slice_key == slice_key)
        async with self._sessions() as session:
            rows = await session.scalars(_page(statement, ExceptionRow.id, limit, after_id))
            return [_record(ExceptionCase, row) for row in rows]

    async def update_exception(
        self,
        exception_id: str,
        *,
        owner: str | Literal[Unset.UNSET] | None = UNSET,
        status: ExceptionStatus | None = None,
    ) -> ExceptionCase:
        """Assign, unassign or move exception ``exception_id``; returns it as it is now.

        Giving an open exception an owner makes it ``assigned`` unless ``status``
        says otherwise. Resolving stamps ``resolved_at``. A resolved exception
        stays resolved: if the problem comes back, it is a new exception.

        Raises:
            NotFoundError: no such exception.
            ConflictError: the exception is resolved and ``status`` would reopen it.
        """
        async with self._sessions.begin() as session:
            current = await session.scalar(
                select(ExceptionRow.status).where(ExceptionRow.id == exception_id).with_for_update()
            )
            if current is None:
                raise NotFoundError(f"exception {exception_id} does not exist", exception_id=exception_id)
            if current == "resolved" and status not in (None, "resolved"):
                raise ConflictError(
                    f"exception {exception_id} is resolved; a recurrence is recorded as a new exception",
                    exception_id=exception_id,
                )
            values: dict[str, Any] = {}
            if owner is not UNSET:
                values["owner"] = owner
                if status is None and current == "open" and owner is not None:
                    status = "assigned"
            if status is not None and status != current:
                values["status"] = status
                if status == "resolved":
                    values["resolved_at"] = func.now()
            if not values:
                return _record(ExceptionCase, await session.get_one(ExceptionRow, exception_id))
            statement = (
                update(ExceptionRow)
                .where(ExceptionRow.id == exception_id)
                .values(values)
                .returning(ExceptionRow)
            )
            row = (await session.scalars(statement, execution_options={"synchronize_session": False})).one()
            return _record(ExceptionCase, row)

    async def resolve_exceptions(
        self, flow: str, slice_key: str | None, reason_codes: Collection[str] | None = None
    ) -> list[str]:
        """Resolve the unresolved exceptions of one slice (of some reasons only, if given), as when a later
        run finds the slice clean.

        Returns:
            The ids resolved now, sorted.
        """
        statement = update(ExceptionRow).where(
            ExceptionRow.flow == flow,
            # Spelt as the unique index's predicate, so the planner can use that index.
            text("status <> 'resolved'"),
            ExceptionRow.slice_key.is_(None) if slice_key is None else ExceptionRow.slice_key == slice_key,
        )
        if reason_codes is not None:
            statement = statement.where(ExceptionRow.reason_code.in_(list(reason_codes)))
        statement = statement.values(status="resolved", resolved_at=func.now()).returning(ExceptionRow.id)
        async with self._sessions.begin() as session:
            ids = await session.scalars(statement, execution_options={"synchronize_session": False})
            return sorted(ids)

    # Dead letters.

    async def add_dead_letter(
        self, *, flow: str, job_kind: str, job_id: str, payload: dict[str, Any], reason: str, attempts: int
    ) -> DeadLetter:
        """Keep a job that failed ``attempts`` times, with the payload that replays it; returns the dead letter.

        Idempotent while the dead letter waits for a replay: handing over the
        same job (kind and id) with the same ``attempts`` again returns the one
        stored first. Once replayed, a new failure of that job is a new dead letter.
        """
        statement = (
            pg_insert(DeadLetterRow)
            .values(
                id=new_id(),
                flow=flow,
                job_kind=job_kind,
                job_id=job_id,
                payload=payload,
                reason=reason,
                attempts=attempts,
            )
            .on_conflict_do_nothing(
                index_elements=[DeadLetterRow.job_kind, DeadLetterRow.job_id, DeadLetterRow.attempts],
                index_where=text("replayed_at IS NULL"),
            )
            .returning(DeadLetterRow)
        )
        async with self._sessions.begin() as session:
            row = (await session.scalars(statement)).one_or_none()
            if row is None:
                row = (
                    await session.scalars(
                        select(DeadLetterRow).where(
                            DeadLetterRow.job_kind == job_kind,
                            DeadLetterRow.job_id == job_id,
                            DeadLetterRow.attempts == attempts,
                            DeadLetterRow.replayed_at.is_(None),
                        )
                    )
                ).one()
            return _record(DeadLetter, row)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        """The dead letter ``dead_letter_id``, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(DeadLetterRow, dead_letter_id)
            return None if row is None else _record(DeadLetter, row)

    async def list_dead_letters(
        self,
        *,
        flow: str | None = None,
        replayed: bool | None = None,
        limit: int = DEFAULT_LIMIT,
        after_id: str | None = None,
    ) -> list[DeadLetter]:
        """Dead letters newest first, filtered by flow and by whether they were replayed."""
        statement = select(DeadLetterRow)
        if flow is not None:
            statement = statement.where(DeadLetterRow.flow == flow)
        if replayed is not None:
            replayed_at = DeadLetterRow.replayed_at
            statement = statement.where(replayed_at.is_not(None) if replayed else replayed_at.is_(None))
        async with self._sessions() as session:
            rows = await session.scalars(_page(statement, DeadLetterRow.id, limit, after_id))
            return [_record(DeadLetter, row) for row in rows]

    async def mark_dead_letter_replayed(self, dead_letter_id: str, run_id: str) -> DeadLetter:
        """Record that run ``run_id`` replays dead letter ``dead_letter_id``; a dead letter is replayed once.

        Raises:
            NotFoundError: no such dead letter.
            ConflictError: it was replayed already.
        """
        statement = (
            update(DeadLetterRow)
            .where(DeadLetterRow.id == dead_letter_id, DeadLetterRow.replayed_at.is_(None))
            .values(replayed_at=func.now(), replay_run_id=run_id)
            .returning(DeadLetterRow)
        )
        async with self._sessions.begin() as session:
            row = (
                await session.scalars(statement, execution_options={"synchronize_session": False})
            ).one_or_none()
            if row is not None:
                return _record(DeadLetter, row)
            replayed_by = (
                await session.execute(
                    select(DeadLetterRow.replay_run_id).where(DeadLetterRow.id == dead_letter_id)
                )
            ).one_or_none()
        if replayed_by is None:
            raise NotFoundError(f"dead letter {dead_letter_id} does not exist", dead_letter_id=dead_letter_id)
        raise ConflictError(
            f"dead letter {dead_letter_id} was replayed already, by run {replayed_by[0]}",
            dead_letter_id=dead_letter_id,
            replay_run_id=replayed_by[0],
        )

    # Reconciliations.

    async def add_reconciliations(self, rows: Iterable[ReconciliationCreate]) -> int:
        """Store reconciliation lines in one transaction; returns how many."""
        values = [msgspec.structs.asdict(row) for row in rows]
        if values:
            async with self._sessions.begin() as session:
                await session.execute(insert(ReconciliationRow).execution_options(render_nulls=True), values)
        return len(values)

    async def list_reconciliations(
        self,
        *,
        flow: str | None = None,
        entity: str | None = None,
        period: str | None = None,
        run_id: str | None = None,
        status: ReconciliationStatus | None = None,
        limit: int = DEFAULT_LIMIT,
        after: int | None = None,
    ) -> list[Reconciliation]:
        """Reconciliation lines newest first, filtered by flow, entity, period, run and status."""
        statement = select(ReconciliationRow)
        for column, value in (
            (ReconciliationRow.flow, flow),
            (ReconciliationRow.entity, entity),
            (ReconciliationRow.period, period),
            (ReconciliationRow.run_id, run_id),
            (ReconciliationRow.status, status),
        ):
            if value is not None:
                statement = statement.where(column == value)
        async with self._sessions() as session:
            rows = await session.scalars(_page(statement, ReconciliationRow.id, limit, after))
            return [_record(Reconciliation, row) for row in rows]
