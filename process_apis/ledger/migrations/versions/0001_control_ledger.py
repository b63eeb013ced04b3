"""The control ledger: runs, audit events, exceptions, dead letters and reconciliations.

Revision ID: 0001
Revises:
Create Date: 2026-04-01

Written by hand; :mod:`process_apis.ledger.models` describes the same schema, and
``tests/integration/test_ledger.py`` checks that the two agree. Constraint and
index names follow the models' naming convention, so later revisions can name
them. Audit events are append-only: a trigger refuses to update, delete or
truncate them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade")

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Check constraint names are wrapped in op.f(): they are final. Alembic applies the models' naming
# convention to what it creates, and "ck_%(table_name)s_%(constraint_name)s" would prefix them again.

_AMOUNT = sa.Numeric(28, 6)
_TIME = sa.DateTime(timezone=True)
_NOW = sa.text("now()")
_EMPTY_OBJECT = sa.text("'{}'::jsonb")

_APPEND_ONLY = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    """Create the five tables, their indexes and the audit trail's append-only trigger."""
    op.create_table(
        "runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="queued", nullable=False),
        sa.Column("step", sa.Text(), nullable=True),
        sa.Column("progress", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("params", JSONB(), server_default=_EMPTY_OBJECT, nullable=False),
        sa.Column("slice_keys", JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("counts", JSONB(), server_default=_EMPTY_OBJECT, nullable=False),
        sa.Column("result", JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, server_default=_NOW, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("heartbeat_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'abandoned', 'conflict')",
            name=op.f("ck_runs_status"),
        ),
        sa.CheckConstraint(
            "step IN ('extract', 'map', 'validate', 'aggregate', 'load', 'reconcile')",
            name=op.f("ck_runs_step"),
        ),
        sa.CheckConstraint("trigger IN ('manual', 'schedule', 'replay')", name=op.f("ck_runs_trigger")),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_runs_progress")),
        sa.CheckConstraint("jsonb_typeof(slice_keys) = 'array'", name=op.f("ck_runs_slice_keys")),
    )
    op.create_index("ix_runs_flow_id", "runs", ["flow", "id"])
    op.create_index("ix_runs_status_id", "runs", ["status", "id"])
    # Serves "runs of this slice" (slice_keys @> '["erp:FS-US:2026-03"]').
    op.create_index(
        "ix_runs_slice_keys",
        "runs",
        ["slice_keys"],
        postgresql_using="gin",
        postgresql_ops={"slice_keys": "jsonb_path_ops"},
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=True),
        sa.Column("target_ref", sa.Text(), nullable=True),
        sa.Column("mapping_version", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=False),
        sa.Column("detail", JSONB(), nullable=True),
        sa.Column("at", _TIME, server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_audit_events_run_id_runs"),
        sa.CheckConstraint("kind IN ('intent', 'outcome')", name=op.f("ck_audit_events_kind")),
        sa.CheckConstraint("payload_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_audit_events_payload_hash")),
    )
    op.create_index("ix_audit_events_trace_id_at_id", "audit_events", ["trace_id", "at", "id"])
    op.create_index("ix_audit_events_run_id", "audit_events", ["run_id"])
    op.execute(_APPEND_ONLY)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )

    op.create_table(
        "exceptions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("reason_code", sa.Text(), nullable=False),
        sa.Column("slice_key", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), server_default="", nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("detail", JSONB(), server_default=_EMPTY_OBJECT, nullable=False),
        sa.Column("first_seen", _TIME, server_default=_NOW, nullable=False),
        sa.Column("last_seen", _TIME, server_default=_NOW, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("occurrences", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exceptions"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_exceptions_run_id_runs"),
        sa.CheckConstraint("status IN ('open', 'assigned', 'resolved')", name=op.f("ck_exceptions_status")),
        sa.CheckConstraint("occurrences >= 1", name=op.f("ck_exceptions_occurrences")),
    )
    # At most one unresolved exception per problem; record_exception upserts on it. NULLS NOT DISTINCT
    # (PostgreSQL 15+) makes "no slice" one slice, so slice-less problems are deduplicated too.
    op.create_index(
        "uq_exceptions_unresolved",
        "exceptions",
        ["flow", "slice_key", "reason_code", "fingerprint"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
        postgresql_nulls_not_distinct=True,
    )
    op.create_index("ix_exceptions_status_id", "exceptions", ["status", "id"])

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("job_kind", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, server_default=_NOW, nullable=False),
        sa.Column("replayed_at", _TIME, nullable=True),
        sa.Column("replay_run_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_dead_letters_attempts")),
    )
    op.create_index("ix_dead_letters_flow_id", "dead_letters", ["flow", "id"])
    op.create_index(
        "ix_dead_letters_pending", "dead_letters", ["id"], postgresql_where=sa.text("replayed_at IS NULL")
    )
    # One pending dead letter per job and attempt: add_dead_letter is idempotent until the replay.
    op.create_index(
        "uq_dead_letters_pending_job",
        "dead_letters",
        ["job_kind", "job_id", "attempts"],
        unique=True,
        postgresql_where=sa.text("replayed_at IS NULL"),
    )

    op.create_table(
        "reconciliations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=True),
        sa.Column("erp_count", sa.Integer(), nullable=False),
        sa.Column("erp_total", _AMOUNT, nullable=False),
        sa.Column("planning_count", sa.Integer(), nullable=False),
        sa.Column("planning_total", _AMOUNT, nullable=False),
        sa.Column("difference", _AMOUNT, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("at", _TIME, server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliations"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_reconciliations_run_id_runs"),
        sa.CheckConstraint("status IN ('matched', 'mismatched')", name=op.f("ck_reconciliations_status")),
    )
    op.create_index("ix_reconciliations_flow_entity_period", "reconciliations", ["flow", "entity", "period"])
    op.create_index("ix_reconciliations_run_id", "reconciliations", ["run_id"])


def downgrade() -> None:
    """Drop everything :func:`upgrade` created (the ledger's whole history goes with it)."""
    op.drop_table("reconciliations")
    op.drop_table("dead_letters")
    op.drop_table("exceptions")
    # Dropping the table drops its triggers; the function is the migration's own.
    op.drop_table("audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("runs")
