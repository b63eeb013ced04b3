"""Freshness of actuals in planning, from the control ledger: what actuals-to-plan last loaded, and how it went.

A slice (source, entity, period) counts as loaded by a run that **succeeded**
and whose result says the slice was ``loaded`` (a dry run, or a slice refused
by validation, loads nothing). The last such run gives the time (its finish),
the period's state as that run read it, and whether the slice reconciled: every
reconciliation line of that run for the entity and period matched. A slice with
no line at all (nothing on either side) reconciled trivially.

This module is the workbench's one query of the ledger's tables, beside
:class:`~process_apis.ledger.store.LedgerStore`, read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text

from process_apis.workbench.schemas import FreshnessRow
from shared.canonical import PeriodState

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ("LoadedSlice", "SliceLedger", "freshness_rows")

# DISTINCT ON keeps, per slice key, the first row in the ORDER BY: the latest run that loaded the slice.
# jsonb_each is given only an object (a run's ``result.slices``); anything else yields no row.
_LATEST_LOADS = text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (s.key)
            s.key AS slice_key, r.id AS run_id, r.finished_at, s.value ->> 'period_state' AS period_state
        FROM runs AS r
        CROSS JOIN LATERAL jsonb_each(
            CASE WHEN jsonb_typeof(r.result -> 'slices') = 'object' THEN r.result -> 'slices' END
        ) AS s
        WHERE r.flow = :flow
          AND r.status = 'succeeded'
          AND r.finished_at IS NOT NULL
          AND starts_with(s.key, :prefix)
          AND s.value ->> 'loaded' = 'true'
        ORDER BY s.key, r.finished_at DESC, r.id DESC
    )
    SELECT l.slice_key, l.run_id, l.finished_at, l.period_state,
           COALESCE(bool_and(c.status = 'matched'), true) AS reconciled
    FROM latest AS l
    LEFT JOIN reconciliations AS c
      ON c.run_id = l.run_id AND c.source || ':' || c.entity || ':' || c.period = l.slice_key
    GROUP BY l.slice_key, l.run_id, l.finished_at, l.period_state
    """
)


_STATES = frozenset(state.value for state in PeriodState)


@dataclass(frozen=True)
class LoadedSlice:
    """The last load of one slice."""

    entity: str
    """The ERP entity."""
    period: str
    """The period."""
    run_id: str
    """The run that loaded it."""
    loaded_at: datetime
    """When that run finished."""
    period_state: PeriodState | None
    """The period's state as the run read it."""
    reconciled: bool
    """Every reconciliation line of the run for the slice matched."""


class SliceLedger:
    """Reads the ledger for the workbench; one short read-only transaction per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def latest_loads(self, flow: str, source: str) -> dict[tuple[str, str], LoadedSlice]:
        """The last load of every slice of ``source`` that ``flow`` ever loaded, by (entity, period)."""
        prefix = f"{source}:"
        async with self._sessions() as session:
            rows = (await session.execute(_LATEST_LOADS, {"flow": flow, "prefix": prefix})).all()
        loads: dict[tuple[str, str], LoadedSlice] = {}
        for slice_key, run_id, finished_at, period_state, reconciled in rows:
            entity, _, period = str(slice_key)[len(prefix) :].rpartition(":")
            state = PeriodState(period_state) if period_state in _STATES else None
            loads[entity, period] = LoadedSlice(
                entity=entity,
                period=period,
                run_id=str(run_id),
                loaded_at=finished_at.astimezone(UTC),
                period_state=state,
                reconciled=bool(reconciled),
            )
        return loads


def freshness_rows(
    entities: Iterable[str],
    periods: Sequence[str],
    loads: Mapping[tuple[str, str], LoadedSlice],
    objective: timedelta,
    now: datetime,
) -> list[FreshnessRow]:
    """One row per entity and period, sorted by entity then period.

    A slice meets the objective when it was loaded, reconciled, and either its load is younger than
    ``objective`` or the period was closed when it was loaded (its actuals can no longer change).
    """
    rows = []
    for entity in sorted(set(entities)):
        for period in periods:
            load = loads.get((entity, period))
            if load is None:
                rows.append(
                    FreshnessRow(
                        entity=entity,
                        period=period,
                        last_loaded_at=None,
                        run_id=None,
                        reconciled=False,
                        period_state=None,
                        age_seconds=None,
                        meets_objective=False,
                    )
                )
                continue
            age = max(now - load.loaded_at, timedelta(0))
            final = load.period_state is PeriodState.CLOSED
            rows.append(
                FreshnessRow(
                    entity=entity,
                    period=period,
                    last_loaded_at=load.loaded_at,
                    run_id=load.run_id,
                    reconciled=load.reconciled,
                    period_state=load.period_state,
                    age_seconds=int(age.total_seconds()),
                    meets_objective=load.reconciled and (final or age <= objective),
                )
            )
    return rows
