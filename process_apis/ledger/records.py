"""What the ledger stores and hands back: plain msgspec records, never ORM objects.

Callers never hold a database session: every store operation takes and returns
these values. Money is :class:`~decimal.Decimal` from the caller down to the
``NUMERIC`` column and back, and every time is timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict

import msgspec

__all__ = (
    "FINISHED_RUN_STATUSES",
    "AuditEvent",
    "AuditEventCreate",
    "AuditKind",
    "DeadLetter",
    "EventState",
    "ExceptionCase",
    "ExceptionStatus",
    "LedgerRecord",
    "Reconciliation",
    "ReconciliationCreate",
    "ReconciliationStatus",
    "Run",
    "RunChanges",
    "RunStatus",
    "RunStep",
    "RunTrigger",
    "SourceEventRecord",
    "SourceEventStatus",
    "new_id",
    "payload_hash",
)

RunStatus = Literal["queued", "running", "succeeded", "failed", "abandoned", "conflict"]
"""Where a run is: ``queued``, ``running``, then one of :data:`FINISHED_RUN_STATUSES`."""
RunStep = Literal["extract", "map", "validate", "aggregate", "load", "reconcile"]
"""The steps of a flow, in order."""
RunTrigger = Literal["manual", "schedule", "replay"]
"""What started a run."""
AuditKind = Literal["intent", "outcome"]
"""An audit event is written before an effect (``intent``) and after it (``outcome``)."""
ExceptionStatus = Literal["open", "assigned", "resolved"]
"""An exception's place in the queue; ``open`` and ``assigned`` are unresolved."""
SourceEventStatus = Literal["received", "processed", "failed", "dead"]
"""An inbox event's state: ``received`` until its handlers ran (``processed``), or it met a business failure
(``failed``, in the exception queue) or failed every attempt (``dead``, in the dead letters)."""
ReconciliationStatus = Literal["matched", "mismatched"]
"""Whether source and target agree to the cent."""

FINISHED_RUN_STATUSES: frozenset[RunStatus] = frozenset({"succeeded", "failed", "abandoned", "conflict"})
"""Statuses a run never leaves."""


def new_id() -> str:
    """A time-sortable id: 12 hex digits of the epoch in milliseconds, then 12 random hex digits.

    Ids sort by creation time (to the millisecond, across processes whose clocks
    agree), so a listing pages newest first by id alone.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def payload_hash(payload: bytes | object) -> str:
    """Hex SHA-256 of ``payload``: its bytes, or its JSON with sorted keys (so equal values hash equal)."""
    data = payload if isinstance(payload, bytes) else msgspec.json.encode(payload, order="sorted")
    return hashlib.sha256(data).hexdigest()


class LedgerRecord(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of the ledger's records; its configuration holds for all of them.

    - ``kw_only``: fields are passed by name, so adding one never reorders a call.
    - ``frozen``: a record is a value, a snapshot of a row; change the row through the store.
    - ``forbid_unknown_fields``: a record decoded from JSON (a replayed payload, say) refuses stray fields.
    - Times are converted to UTC (the database answers in its session's time zone);
      a naive time is refused, as it cannot say which instant it means.

    mypy reads the class arguments of each class on its own, so every subclass
    repeats ``kw_only=True, frozen=True``.
    """

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                if value.utcoffset() is None:
                    raise ValueError(f"{name} must be timezone-aware")
                msgspec.structs.force_setattr(self, name, value.astimezone(UTC))


class Run(LedgerRecord, kw_only=True, frozen=True):
    """One run of a flow."""

    id: str
    """Time-sortable id (:func:`new_id`)."""
    flow: str
    """The flow that runs."""
    status: RunStatus
    """Where the run is."""
    step: RunStep | None
    """The step running now, or the last one reached."""
    progress: float
    """Share of the work done, 0 to 1."""
    params: dict[str, Any]
    """What was asked: source, entities, period range, dry run..."""
    slice_keys: list[str]
    """The business slices the run covers (``erp:FS-US:2026-03``)."""
    counts: dict[str, int]
    """Counters by name (rows read, loaded, rejected...)."""
    result: dict[str, Any] | None
    """What the run produced, once finished."""
    error: str | None
    """Why it failed or was abandoned."""
    trigger: RunTrigger
    """What started it."""
    actor: str
    """The original caller's client id."""
    trace_id: str
    """The trace it belongs to."""
    worker: str | None
    """The worker that runs it."""
    created_at: datetime
    """When it was queued."""
    started_at: datetime | None
    """When a worker started it."""
    finished_at: datetime | None
    """When it reached a finished status."""
    heartbeat_at: datetime | None
    """When its worker last said it is alive."""


class RunChanges(TypedDict, total=False):
    """What :meth:`~process_apis.ledger.store.LedgerStore.update_run` may change; a key given is a change."""

    status: RunStatus
    """The new status. ``running`` stamps ``started_at`` (first time only) and ``heartbeat_at``; a finished
    status stamps ``finished_at``; unless those are given too."""
    step: RunStep | None
    """The step reached."""
    progress: float
    """Share of the work done, 0 to 1."""
    counts: dict[str, int]
    """Counters by name; replaces the previous ones."""
    result: dict[str, Any] | None
    """What the run produced."""
    error: str | None
    """Why it failed."""
    worker: str | None
    """The worker that runs it."""
    started_at: datetime | None
    """When a worker started it."""
    finished_at: datetime | None
    """When it finished."""
    heartbeat_at: datetime | None
    """When its worker last said it is alive."""


class AuditEventCreate(LedgerRecord, kw_only=True, frozen=True):
    """An audit event to append."""

    trace_id: str
    """The trace it belongs to."""
    run_id: str | None = None
    """The run that caused it, if any."""
    step: str
    """The step that acted (``load``, ``post-journal``...)."""
    kind: AuditKind
    """``intent`` before the effect, ``outcome`` after it."""
    source_ref: str | None = None
    """The record read, in its source."""
    target_ref: str | None = None
    """The record written, in its target."""
    mapping_version: str | None = None
    """The mapping rules that turned the one into the other."""
    actor: str
    """The original caller's client id."""
    payload_hash: str
    """Hex SHA-256 of the payload acted on (:func:`payload_hash`)."""
    detail: dict[str, Any] | None = None
    """Anything else worth keeping."""
    at: datetime | None = None
    """When it happened; null means when it is appended."""


class AuditEvent(LedgerRecord, kw_only=True, frozen=True):
    """An audit event as stored."""

    id: int
    """Insertion order; breaks ties between events of the same instant."""
    trace_id: str
    """The trace it belongs to."""
    run_id: str | None
    """The run that caused it, if any."""
    step: str
    """The step that acted."""
    kind: AuditKind
    """``intent`` or ``outcome``."""
    source_ref: str | None
    """The record read, in its source."""
    target_ref: str | None
    """The record written, in its target."""
    mapping_version: str | None
    """The mapping rules that turned the one into the other."""
    actor: str
    """The original caller's client id."""
    payload_hash: str
    """Hex SHA-256 of the payload acted on."""
    detail: dict[str, Any] | None
    """Anything else worth keeping."""
    at: datetime
    """When it happened."""


class ExceptionCase(LedgerRecord, kw_only=True, frozen=True):
    """A business exception in the queue: one problem, however often it recurs while unresolved."""

    id: str
    """Time-sortable id (:func:`new_id`)."""
    flow: str
    """The flow that met the problem."""
    run_id: str | None
    """The last run that met it."""
    reason_code: str
    """What kind of problem (``unmapped-member``, ``unbalanced-period``...)."""
    slice_key: str | None
    """The business slice it blocks (``erp:FS-US:2026-03``)."""
    fingerprint: str
    """Tells apart problems of one reason in one slice."""
    owner: str | None
    """Who is on it."""
    status: ExceptionStatus
    """``open``, ``assigned`` or ``resolved``."""
    detail: dict[str, Any]
    """What the last occurrence saw."""
    first_seen: datetime
    """First occurrence; the age counts from here."""
    last_seen: datetime
    """Latest occurrence."""
    resolved_at: datetime | None
    """When it was resolved."""
    occurrences: int
    """How many times it was recorded while unresolved."""


class DeadLetter(LedgerRecord, kw_only=True, frozen=True):
    """A job that failed every attempt."""

    id: str
    """Time-sortable id (:func:`new_id`)."""
    flow: str
    """The flow the job belonged to."""
    job_kind: str
    """What the job did."""
    job_id: str
    """The job's id in the work queue."""
    payload: dict[str, Any]
    """The job as queued: enough to run it again."""
    reason: str
    """The last attempt's error."""
    attempts: int
    """Attempts made."""
    created_at: datetime
    """When it was given up."""
    replayed_at: datetime | None
    """When it was replayed."""
    replay_run_id: str | None
    """The run that replayed it."""


class ReconciliationCreate(LedgerRecord, kw_only=True, frozen=True):
    """One reconciliation line to store."""

    run_id: str
    """The run that reconciled."""
    flow: str
    """Its flow."""
    source: str
    """The source compared."""
    entity: str
    """The legal entity."""
    period: str
    """The period (``2026-03``) or day."""
    account: str | None = None
    """The account; null on the entity-period total line."""
    erp_count: int
    """Records on the ERP side."""
    erp_total: Decimal
    """Their total."""
    planning_count: int
    """Records on the planning side."""
    planning_total: Decimal
    """Their total."""
    difference: Decimal
    """``planning_total - erp_total``: what planning holds beyond the ERP."""
    status: ReconciliationStatus
    """Whether the two agree."""


class Reconciliation(LedgerRecord, kw_only=True, frozen=True):
    """One reconciliation line as stored."""

    id: int
    """Insertion order."""
    run_id: str
    """The run that reconciled."""
    flow: str
    """Its flow."""
    source: str
    """The source compared."""
    entity: str
    """The legal entity."""
    period: str
    """The period or day."""
    account: str | None
    """The account; null on the entity-period total line."""
    erp_count: int
    """Records on the ERP side."""
    erp_total: Decimal
    """Their total."""
    planning_count: int
    """Records on the planning side."""
    planning_total: Decimal
    """Their total."""
    difference: Decimal
    """``planning_total - erp_total``: what planning holds beyond the ERP."""
    status: ReconciliationStatus
    """Whether the two agree."""
    at: datetime
    """When it was compared."""


class SourceEventRecord(LedgerRecord, kw_only=True, frozen=True):
    """One source event in the inbox: recorded once, however often it was delivered or swept."""

    id: str
    """The event's id (``SourceEvent.id``)."""
    dedupe_key: str
    """Equal for every delivery of one change; unique in the inbox."""
    ordering_key: str
    """The business object it is about."""
    type: str
    """What happened (``crm.booking.changed``)."""
    source: str
    """The configured source it came from."""
    kind: str
    """The source's kind (``crm``, ``billing``)."""
    via: str
    """``push`` or ``sweep``: how the first delivery arrived."""
    occurred_at: datetime
    """When the source made the change."""
    received_at: datetime
    """When the system layer accepted it."""
    payload: dict[str, Any]
    """The event as it travelled, JSON."""
    status: SourceEventStatus
    """``received``, ``processed``, ``failed`` or ``dead``."""
    attempts: int
    """Runs of its handlers so far."""
    last_error: str | None
    """The last failure, if any."""
    recorded_at: datetime
    """When the process layer recorded it."""
    processed_at: datetime | None
    """When its handlers finished."""


class EventState(LedgerRecord, kw_only=True, frozen=True):
    """The newest state seen of one business object, whatever order its events arrived in."""

    ordering_key: str
    """The business object (``crm:{source}:booking:{ref}``)."""
    event_id: str
    """The event that carried this state."""
    type: str
    """Its type."""
    occurred_at: datetime
    """When the source made that change; an event older than this never replaces it."""
    state: dict[str, Any]
    """The object as that event carried it (the booking or invoice), JSON."""
    updated_at: datetime
    """When this row last changed."""
