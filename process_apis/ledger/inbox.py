"""The event inbox in the ledger: each source event recorded once, and the newest state per business object.

:meth:`EventInbox.record` is where "exactly once in effect" starts. An event is
inserted unless its id *or* its dedupe key is already there, in one statement
(``ON CONFLICT DO NOTHING`` covers both unique indexes), so two deliveries of
one change racing on two replicas leave one row. The caller learns whether the
row is new, and in every case the row as it stands, so a delivery that finds
its event still ``received`` (a consumer died between recording and queueing)
queues it again.

:meth:`EventInbox.apply_state` is the state machine that does not care about
arrival order: the newest ``(occurred_at, event_id)`` wins, whatever came last.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from process_apis.ledger.models import EventStateRow, SourceEventRow
from process_apis.ledger.records import EventState, SourceEventRecord, SourceEventStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from shared.events import SourceEvent

__all__ = ("EventInbox",)


def _event_record(row: SourceEventRow) -> SourceEventRecord:
    return msgspec.convert(row, SourceEventRecord, from_attributes=True)


class EventInbox:
    """The inbox's operations over a session factory; each is one short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Use ``sessions`` for every operation."""
        self._sessions = sessions

    async def record(self, event: SourceEvent, payload: dict[str, Any]) -> tuple[SourceEventRecord, bool]:
        """Record ``event`` (``payload`` is its JSON) unless its id or dedupe key is known.

        Returns:
            The inbox row of the change, and whether this call created it.
        """
        statement = (
            pg_insert(SourceEventRow)
            .values(
                id=event.id,
                dedupe_key=event.dedupe_key,
                ordering_key=event.ordering_key,
                type=str(event.type),
                source=event.source,
                kind=event.kind,
                via=event.via,
                occurred_at=event.occurred_at,
                received_at=event.received_at,
                payload=payload,
            )
            .on_conflict_do_nothing()
            .returning(SourceEventRow)
        )
        async with self._sessions.begin() as session:
            row = (await session.scalars(statement)).one_or_none()
            if row is not None:
                return _event_record(row), True
            existing = (
                await session.scalars(
                    select(SourceEventRow)
                    .where(or_(SourceEventRow.id == event.id, SourceEventRow.dedupe_key == event.dedupe_key))
                    .limit(1)
                )
            ).one()
            return _event_record(existing), False

    async def get(self, event_id: str) -> SourceEventRecord | None:
        """The inbox row of ``event_id``, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(SourceEventRow, event_id)
            return None if row is None else _event_record(row)

    async def list_events(
        self,
        *,
        status: SourceEventStatus | None = None,
        ordering_key: str | None = None,
        limit: int = 1000,
    ) -> list[SourceEventRecord]:
        """Inbox rows in the order they were recorded, filtered by status and ordering key."""
        statement = select(SourceEventRow).order_by(SourceEventRow.recorded_at, SourceEventRow.id)
        if status is not None:
            statement = statement.where(SourceEventRow.status == status)
        if ordering_key is not None:
            statement = statement.where(SourceEventRow.ordering_key == ordering_key)
        async with self._sessions() as session:
            return [_event_record(row) for row in await session.scalars(statement.limit(limit))]

    async def count(self, status: SourceEventStatus | None = None) -> int:
        """Inbox rows, of ``status`` only when given."""
        statement = select(func.count()).select_from(SourceEventRow)
        if status is not None:
            statement = statement.where(SourceEventRow.status == status)
        async with self._sessions() as session:
            return int(await session.scalar(statement) or 0)

    async def attempted(self, event_id: str, error: str | None) -> None:
        """Count one run of the event's handlers, and keep its error (``None``: it succeeded)."""
        values: dict[str, Any] = {"attempts": SourceEventRow.attempts + 1}
        if error is not None:
            values["last_error"] = error[:2000]
        await self._update(event_id, values)

    async def mark(self, event_id: str, status: SourceEventStatus, error: str | None = None) -> None:
        """Move the event to ``status``; ``processed`` stamps ``processed_at``."""
        values: dict[str, Any] = {"status": status}
        if status == "processed":
            values["processed_at"] = func.now()
        if error is not None:
            values["last_error"] = error[:2000]
        await self._update(event_id, values)

    async def _update(self, event_id: str, values: dict[str, Any]) -> None:
        statement = update(SourceEventRow).where(SourceEventRow.id == event_id).values(values)
        async with self._sessions.begin() as session:
            await session.execute(statement, execution_options={"synchronize_session": False})

    async def apply_state(
        self,
        *,
        ordering_key: str,
        event_id: str,
        event_type: str,
        occurred_at: datetime,
        state: dict[str, Any],
    ) -> bool:
        """Keep ``state`` as the object's newest unless a newer event's state is there; whether it was kept.

        Newer means a later ``(occurred_at, event_id)``, so two events of one instant settle the same way
        on every replica and in every arrival order.
        """
        statement = pg_insert(EventStateRow).values(
            ordering_key=ordering_key,
            event_id=event_id,
            type=event_type,
            occurred_at=occurred_at,
            state=state,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[EventStateRow.ordering_key],
            set_={
                "event_id": statement.excluded.event_id,
                "type": statement.excluded.type,
                "occurred_at": statement.excluded.occurred_at,
                "state": statement.excluded.state,
                "updated_at": func.now(),
            },
            where=tuple_(statement.excluded.occurred_at, statement.excluded.event_id)
            > tuple_(EventStateRow.occurred_at, EventStateRow.event_id),
        ).returning(EventStateRow.ordering_key)
        async with self._sessions.begin() as session:
            return (await session.scalars(upsert)).one_or_none() is not None

    async def state(self, ordering_key: str) -> EventState | None:
        """The newest state of ``ordering_key``, or ``None``."""
        async with self._sessions() as session:
            row = await session.get(EventStateRow, ordering_key)
            return None if row is None else msgspec.convert(row, EventState, from_attributes=True)
