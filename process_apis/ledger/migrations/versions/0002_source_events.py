"""The event inbox and the newest state per business object.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

``source_events`` records each source event once, by its id and by its dedupe
key, before its entry leaves the stream; ``event_states`` keeps, per ordering
key, the newest state seen by ``occurred_at``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade")

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_NOW = sa.text("now()")


def upgrade() -> None:
    """Create the inbox and the state table."""
    op.create_table(
        "source_events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("ordering_key", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("status", sa.Text(), server_default="received", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("recorded_at", _TIME, server_default=_NOW, nullable=False),
        sa.Column("processed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_source_events"),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'failed', 'dead')", name=op.f("ck_source_events_status")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_source_events_attempts")),
    )
    op.create_index("uq_source_events_dedupe_key", "source_events", ["dedupe_key"], unique=True)
    op.create_index("ix_source_events_ordering_key", "source_events", ["ordering_key"])
    op.create_index("ix_source_events_status_recorded_at", "source_events", ["status", "recorded_at"])

    op.create_table(
        "event_states",
        sa.Column("ordering_key", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("state", JSONB(), nullable=False),
        sa.Column("updated_at", _TIME, server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("ordering_key", name="pk_event_states"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("event_states")
    op.drop_table("source_events")
