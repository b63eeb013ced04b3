"""The control ledger's tables, as SQLAlchemy declarative models.

These classes describe the schema; migration ``0001`` creates it, and a test
checks that the two agree. Nothing outside :mod:`process_apis.ledger` sees a
model: the store hands out the plain records of :mod:`~process_apis.ledger.records`.

Enumerated columns are ``text`` with a ``CHECK`` rather than PostgreSQL enums:
adding a value to a check is one statement inside a transaction, where an enum
value cannot be removed at all.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from process_apis.ledger.records import (
    AuditKind,
    ExceptionStatus,
    ReconciliationStatus,
    RunStatus,
    RunStep,
    RunTrigger,
    SourceEventStatus,
)

__all__ = (
    "AMOUNT",
    "AuditEventRow",
    "Base",
    "DeadLetterRow",
    "EventStateRow",
    "ExceptionRow",
    "ReconciliationRow",
    "RunRow",
    "SourceEventRow",
)

AMOUNT = Numeric(28, 6, asdecimal=True)
"""Money and quantities: 22 integer digits and 6 decimals, wide enough for any currency's minor units."""

_NOW = text("now()")
_JSON = JSONB(none_as_null=True)
"""JSONB where Python's None is SQL NULL, not the JSON value ``null``."""


def _one_of(column: str, values: object) -> str:
    """A check's SQL: ``column`` holds one of the values of the ``Literal`` type ``values``."""
    return f"{column} IN ({', '.join(repr(value) for value in get_args(values))})"


class Base(DeclarativeBase):
    """Declarative base of the ledger's tables: one metadata, one naming convention, one type map.

    The naming convention gives every constraint a stable name, so a later
    migration can drop or alter it by name on any database.
    """

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute as is
        str: Text(),
        int: Integer(),
        float: Double(),
        Decimal: AMOUNT,
        datetime: DateTime(timezone=True),
        dict[str, Any]: _JSON,
        dict[str, int]: _JSON,
        list[str]: _JSON,
    }


class RunRow(Base):
    """One run of a flow, from queued to finished."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RunStatus), name="status"),
        CheckConstraint(_one_of("step", RunStep), name="step"),
        CheckConstraint(_one_of("trigger", RunTrigger), name="trigger"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        CheckConstraint("jsonb_typeof(slice_keys) = 'array'", name="slice_keys"),
        # The listings page newest first by id, which sorts by creation time.
        Index("ix_runs_flow_id", "flow", "id"),
        Index("ix_runs_status_id", "status", "id"),
        Index(
            "ix_runs_slice_keys",
            "slice_keys",
            postgresql_using="gin",
            postgresql_ops={"slice_keys": "jsonb_path_ops"},
        ),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    """Time-sortable id: 12 hex digits of epoch milliseconds, then 12 random ones."""
    flow: Mapped[str]
    """The flow that runs."""
    status: Mapped[str] = mapped_column(server_default="queued")
    """Where the run is: ``queued``, ``running``, then one of the finished statuses."""
    step: Mapped[str | None]
    """The step running now, or the last one reached."""
    progress: Mapped[float] = mapped_column(server_default=text("0"))
    """Share of the work done, 0 to 1."""
    params: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    """What was asked: source, entities, period range, dry run..."""
    slice_keys: Mapped[list[str]] = mapped_column(server_default=text("'[]'::jsonb"))
    """The business slices the run covers (``erp:FS-US:2026-03``)."""
    counts: Mapped[dict[str, int]] = mapped_column(server_default=text("'{}'::jsonb"))
    """Counters by name (rows read, loaded, rejected...)."""
    result: Mapped[dict[str, Any] | None]
    """What the run produced, once finished."""
    error: Mapped[str | None]
    """Why the run failed or was abandoned."""
    trigger: Mapped[str]
    """What started it: ``manual``, ``schedule`` or ``replay``."""
    actor: Mapped[str]
    """The original caller's client id (not the layer that relayed the call)."""
    trace_id: Mapped[str]
    """The trace the run belongs to."""
    worker: Mapped[str | None]
    """The worker that runs it."""
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    """When it was queued."""
    started_at: Mapped[datetime | None]
    """When a worker started it."""
    finished_at: Mapped[datetime | None]
    """When it reached a finished status."""
    heartbeat_at: Mapped[datetime | None]
    """When its worker last said it is alive."""


class AuditEventRow(Base):
    """One audit record: an intent before an effect, or its outcome after it. Never updated nor deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_one_of("kind", AuditKind), name="kind"),
        CheckConstraint("payload_hash ~ '^[0-9a-f]{64}$'", name="payload_hash"),
        # ``trace`` reads a trace in time order straight from this index.
        Index("ix_audit_events_trace_id_at_id", "trace_id", "at", "id"),
        Index("ix_audit_events_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    """Insertion order; breaks ties between events of the same instant."""
    trace_id: Mapped[str]
    """The trace the event belongs to."""
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    """The run that caused it, if any."""
    step: Mapped[str]
    """The step that acted (``load``, ``post-journal``...)."""
    kind: Mapped[str]
    """``intent`` (before the effect) or ``outcome`` (after it)."""
    source_ref: Mapped[str | None]
    """The record read, in its source."""
    target_ref: Mapped[str | None]
    """The record written, in its target."""
    mapping_version: Mapped[str | None]
    """The mapping rules that turned the one into the other."""
    actor: Mapped[str]
    """The original caller's client id."""
    payload_hash: Mapped[str]
    """Hex SHA-256 of the payload acted on."""
    detail: Mapped[dict[str, Any] | None]
    """Anything else worth keeping."""
    at: Mapped[datetime] = mapped_column(server_default=_NOW)
    """When it happened."""


class ExceptionRow(Base):
    """A business exception in the queue: a problem a person must look at, recorded once while open."""

    __tablename__ = "exceptions"
    __table_args__ = (
        CheckConstraint(_one_of("status", ExceptionStatus), name="status"),
        CheckConstraint("occurrences >= 1", name="occurrences"),
        # One unresolved exception per problem: recording it again bumps that row (an upsert on this
        # index). A missing slice key is one slice too (NULLS NOT DISTINCT: PostgreSQL 15 or later).
        Index(
            "uq_exceptions_unresolved",
            "flow",
            "slice_key",
            "reason_code",
            "fingerprint",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_exceptions_status_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    """Time-sortable id, like a run's."""
    flow: Mapped[str]
    """The flow that met the problem."""
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    """The last run that met it."""
    reason_code: Mapped[str]
    """What kind of problem (``unmapped-member``, ``unbalanced-period``...)."""
    slice_key: Mapped[str | None]
    """The business slice it blocks (``erp:FS-US:2026-03``)."""
    fingerprint: Mapped[str] = mapped_column(server_default="")
    """Tells apart problems of one reason in one slice (the unmapped member's code, say)."""
    owner: Mapped[str | None]
    """Who is on it."""
    status: Mapped[str] = mapped_column(server_default="open")
    """``open``, ``assigned`` or ``resolved``."""
    detail: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    """What the last occurrence saw."""
    first_seen: Mapped[datetime] = mapped_column(server_default=_NOW)
    """First occurrence; the exception's age counts from here."""
    last_seen: Mapped[datetime] = mapped_column(server_default=_NOW)
    """Latest occurrence."""
    resolved_at: Mapped[datetime | None]
    """When it was resolved."""
    occurrences: Mapped[int] = mapped_column(server_default=text("1"))
    """How many times it was recorded while unresolved."""


class DeadLetterRow(Base):
    """A job that failed every attempt, kept with its payload so it can be replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_dead_letters_flow_id", "flow", "id"),
        # The replay queue: what still waits for one.
        Index("ix_dead_letters_pending", "id", postgresql_where=text("replayed_at IS NULL")),
        # A worker may hand over one failed job twice (its acknowledgement lost): while the dead letter
        # waits for a replay, the same job and attempt is the same dead letter.
        Index(
            "uq_dead_letters_pending_job",
            "job_kind",
            "job_id",
            "attempts",
            unique=True,
            postgresql_where=text("replayed_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    """Time-sortable id, like a run's."""
    flow: Mapped[str]
    """The flow the job belonged to."""
    job_kind: Mapped[str]
    """What the job did."""
    job_id: Mapped[str]
    """The job's id in the work queue."""
    payload: Mapped[dict[str, Any]]
    """The job as queued: enough to run it again."""
    reason: Mapped[str]
    """The last attempt's error."""
    attempts: Mapped[int]
    """Attempts made."""
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    """When it was given up."""
    replayed_at: Mapped[datetime | None]
    """When it was replayed."""
    # No foreign key: the replay's run may be created by the job the replay queues, after this mark.
    replay_run_id: Mapped[str | None]
    """The run that replayed it."""


class ReconciliationRow(Base):
    """One line of a reconciliation: counts and totals of source and target for an entity, period and account."""

    __tablename__ = "reconciliations"
    __table_args__ = (
        CheckConstraint(_one_of("status", ReconciliationStatus), name="status"),
        Index("ix_reconciliations_flow_entity_period", "flow", "entity", "period"),
        Index("ix_reconciliations_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    """Insertion order."""
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    """The run that reconciled."""
    flow: Mapped[str]
    """Its flow."""
    source: Mapped[str]
    """The source compared."""
    entity: Mapped[str]
    """The legal entity."""
    period: Mapped[str]
    """The period (``2026-03``) or day."""
    account: Mapped[str | None]
    """The account; null on the entity-period total line."""
    erp_count: Mapped[int]
    """Records on the ERP side."""
    erp_total: Mapped[Decimal]
    """Their total."""
    planning_count: Mapped[int]
    """Records on the planning side."""
    planning_total: Mapped[Decimal]
    """Their total."""
    difference: Mapped[Decimal]
    """``planning_total - erp_total``: what planning holds beyond the ERP."""
    status: Mapped[str]
    """``matched`` or ``mismatched``."""
    at: Mapped[datetime] = mapped_column(server_default=_NOW)
    """When it was compared."""


class SourceEventRow(Base):
    """The inbox: each source event once, by id and by dedupe key, with where its handling stands."""

    __tablename__ = "source_events"
    __table_args__ = (
        CheckConstraint(_one_of("status", SourceEventStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        # A pushed and a swept delivery of one change have different ids and the same key.
        Index("uq_source_events_dedupe_key", "dedupe_key", unique=True),
        Index("ix_source_events_ordering_key", "ordering_key"),
        Index("ix_source_events_status_recorded_at", "status", "recorded_at"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    """The event's id."""
    dedupe_key: Mapped[str]
    """Equal for every delivery of one change."""
    ordering_key: Mapped[str]
    """The business object it is about."""
    type: Mapped[str]
    """What happened."""
    source: Mapped[str]
    """The configured source."""
    kind: Mapped[str]
    """The source's kind."""
    via: Mapped[str]
    """``push`` or ``sweep``."""
    occurred_at: Mapped[datetime]
    """When the source made the change."""
    received_at: Mapped[datetime]
    """When the system layer accepted it."""
    payload: Mapped[dict[str, Any]]
    """The event as JSON."""
    status: Mapped[str] = mapped_column(server_default="received")
    """``received``, ``processed``, ``failed`` or ``dead``."""
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    """Runs of its handlers so far."""
    last_error: Mapped[str | None]
    """The last failure."""
    recorded_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    """When the process layer recorded it."""
    processed_at: Mapped[datetime | None]
    """When its handlers finished."""


class EventStateRow(Base):
    """The newest state seen of each business object, by ``occurred_at``: a late older event changes nothing."""

    __tablename__ = "event_states"

    ordering_key: Mapped[str] = mapped_column(primary_key=True)
    """The business object."""
    event_id: Mapped[str]
    """The event that carried this state."""
    type: Mapped[str]
    """Its type."""
    occurred_at: Mapped[datetime]
    """When the source made that change."""
    state: Mapped[dict[str, Any]]
    """The object as the event carried it."""
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    """When this row last changed."""
