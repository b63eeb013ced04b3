"""One run of actuals-to-plan, step by step, recorded in the control ledger.

A run covers one ERP source, one or more entities and a range of periods; it
replaces the slices ``(entity, period)`` it covers in the planning platform's
Actual version:

1. **extract** the ERP's actuals through the system layer (posted moves, leaf
   accounts, cost-centre split), from the period before the range (for the
   balance check);
2. **map** them with the versioned dimension map; a value with no planning
   member is an exception (``unmapped-member``), never a dropped amount;
3. **validate** each slice (it balances, one currency, a sign for every planned
   type); a slice that fails is not loaded and is an exception;
4. **aggregate** to one row per cell, plus a zero for every stale cell of the
   slice, so that a re-run replaces the slice and never adds to it;
5. **load** through the system layer, one load per entity and chunk, each with
   an idempotency key from business identity and content, never from the
   attempt;
6. **reconcile**: read the cells back and compare them with the ERP per entity,
   period and account, counts and totals to the cent; the result goes to the
   ledger, a mismatch is an exception.

Runs hold a Redis lock per slice, so two runs over one slice end as one run and
one ``conflict``. Every step writes its intent and outcome to the audit trail
under the run's trace id, naming the original caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from process_apis.flows.actuals_to_plan.steps import (
    ZERO,
    Slice,
    Tally,
    aggregate,
    map_actuals,
    reconcile,
    validate,
    zero_fill,
)
from shared.canonical import LoadCreate, LoadRow, LoadStatus, PlanningDimension
from shared.errors import BusinessRuleError, UpstreamError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from process_apis.clients.system import SystemClient
    from process_apis.flows.actuals_to_plan.dimension_map import DimensionMap
    from process_apis.flows.actuals_to_plan.steps import Cell, ReconLine, Unmapped
    from shared.canonical import FiscalPeriod, Load

__all__ = ("FLOW", "LOAD_CHUNK", "LoadFailedError", "RunOutcome", "RunParams", "RunRefusedError", "execute")

logger = logging.getLogger("finsync.flows.actuals_to_plan")

FLOW = "actuals-to-plan"
LOAD_CHUNK = 50_000
"""Most rows per load."""
LOAD_POLL = (0.05, 0.5)
"""First and longest wait between two reads of a running load, in seconds."""


class RunParams(msgspec.Struct, kw_only=True, frozen=True):
    """What a run covers."""

    source: str
    """The ERP source."""
    planning: str
    """The planning source."""
    entities: tuple[str, ...] = ()
    """Legal entities (codes); empty: every entity of the ERP."""
    period_from: str
    """First period, ``YYYY-MM``."""
    period_to: str
    """Last period, ``YYYY-MM``."""
    dry_run: bool = False
    """Extract, map, validate and aggregate, but load nothing."""
    map_version: str
    """The dimension map (``flows.actuals_to_plan.map_version`` when the run started)."""


@dataclass
class RunOutcome:
    """What a run did, for its ledger record."""

    counts: dict[str, int]
    """Balances read, rows loaded, zeros written, unmapped amounts, slices..."""
    reconciled: bool
    """Every reconciliation line matched."""
    lines: list[ReconLine]
    """The reconciliation, per entity, period and account."""
    exceptions: list[dict[str, Any]]
    """Exceptions to record: ``reason_code``, ``slice_key``, ``fingerprint``, ``detail``."""
    slices: dict[str, dict[str, Any]]
    """Per slice: period state, loaded or why not."""
    seconds: dict[str, float]
    """Seconds spent per step."""


def slice_key(source: str, entity: str, period: str) -> str:
    """``erp:FS-US:2026-03``: how exceptions and locks name a slice."""
    return f"{source}:{entity}:{period}"


def _previous(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


async def execute(
    system: SystemClient,
    run_id: str,
    params: RunParams,
    dimension_map: DimensionMap,
    progress: Callable[[str, float], Awaitable[None]],
    audit: Callable[[str, str, dict[str, Any]], Awaitable[None]],
) -> RunOutcome:
    """Run the six steps with ``dimension_map`` (``params.map_version``'s); ``progress(step, share)`` and
    ``audit(step, kind, detail)`` are the ledger's.

    Extract, map, the balance check's sums and aggregation run batch by batch as the balances stream in,
    so a run holds its cells and one batch, never the ERP's rows.

    Raises:
        FinsyncError: a system the run needs failed (after the client's retries); nothing is reported
            reconciled.
    """
    clock = _Clock()
    await progress("extract", 0.0)
    await audit("extract", "intent", {"source": params.source, "entities": list(params.entities)})
    scope = await _scope(system, params, dimension_map)
    members = {
        dimension: {
            m.canonical
            for m in await system.planning_members(params.planning, dimension)
            if m.canonical is not None
        }
        for dimension in PlanningDimension
    }
    clock.lap("extract")
    books = await _stream(system, params, scope, dimension_map, members, clock, progress)
    cells, unmapped = books.cells, books.unmapped
    expected = dict(cells)
    for item in unmapped:
        expected[item.cell] = expected.get(item.cell, ZERO) + item.amount
    await audit("extract", "outcome", {"balances": books.read, "slices": len(scope.slices)})
    exceptions = [_unmapped(params.source, item, dimension_map.version) for item in unmapped]
    await audit("map", "outcome", {"cells": len(cells), "unmapped": len(unmapped)})

    await progress("validate", 0.5)
    known = {p.code for entity_periods in scope.periods.values() for p in entity_periods}
    previous = {p: (_previous(p) if _previous(p) in known else None) for _entity, p in scope.slices}
    problems = validate(books.tally, scope.slices, scope.currencies, dimension_map, previous)
    refused = {(problem.entity, problem.period) for problem in problems}
    exceptions += [
        {
            "reason_code": problem.reason,
            "slice_key": slice_key(params.source, problem.entity, problem.period),
            "fingerprint": problem.reason,
            "detail": {"message": problem.message},
        }
        for problem in problems
    ]
    loadable = scope.slices - refused
    await audit("validate", "outcome", {"slices": len(scope.slices), "refused": sorted(map(list, refused))})
    clock.lap("validate")

    await progress("aggregate", 0.55)
    # Cells speak planning's entity codes, slices the ERP's (the map may rename entities, one to one).
    planned = {(scope.planning_entity[entity], period) for entity, period in loadable}
    cells = {cell: amount for cell, amount in cells.items() if (cell[0], cell[3]) in planned}
    counts = {
        "balances": books.read,
        "slices": len(scope.slices),
        "slices_refused": len(refused),
        "unmapped": len(unmapped),
        "cells": len(cells),
        "zeros": 0,
        "rows_loaded": 0,
        "rows_failed": 0,
    }
    slice_state = {
        slice_key(params.source, entity, p.code): {
            "period_state": p.state.value,
            "loaded": (entity, p.code) in loadable and not params.dry_run,
        }
        for entity in scope.wanted
        for p in scope.periods[entity]
        if (entity, p.code) in scope.slices
    }
    clock.lap("aggregate")
    if params.dry_run:
        await audit("aggregate", "outcome", {"cells": len(cells), "dry_run": True})
        return RunOutcome(counts, False, [], exceptions, slice_state, clock.seconds)

    await progress("load", 0.6)
    version = dimension_map.planning_version
    if loadable:
        # One read of what planning holds and one load for every entity: the platform runs one task at a
        # time per model, so a task per entity would only queue.
        existing = await system.planning_cells(
            params.planning, version, None, params.period_from, params.period_to
        )
        filled = zero_fill(cells, existing, planned)
        counts["zeros"] = len(filled) - len(cells)
        for loaded, sent in await _load(system, run_id, params, version, filled, audit):
            counts["rows_loaded"] += loaded.counts.success_rows if loaded.counts else 0
            counts["rows_failed"] += len(loaded.failures)
            for failure in loaded.failures:
                cell = sent[failure.row] if failure.row is not None else None
                exceptions.append(
                    {
                        "reason_code": "load-rejected-rows",
                        "slice_key": (
                            slice_key(params.source, scope.erp_entity[cell[0]], cell[3]) if cell else None
                        ),
                        "fingerprint": f"{failure.account}:{failure.cost_center}:{failure.month}",
                        "detail": {"load": loaded.id, "reason": failure.reason, "amount": failure.amount},
                    }
                )
    clock.lap("load")

    await progress("reconcile", 0.9)
    after = await system.planning_cells(params.planning, version, None, params.period_from, params.period_to)
    every = {(scope.planning_entity[entity], period) for entity, period in scope.slices}
    lines = [
        replace(line, entity=scope.erp_entity[line.entity]) for line in reconcile(expected, after, every)
    ]
    exceptions += [_mismatch(params.source, line) for line in lines if not line.matched]
    reconciled = bool(lines) and all(line.matched for line in lines) and not exceptions
    await audit("reconcile", "outcome", {"lines": len(lines), "reconciled": reconciled})
    clock.lap("reconcile")
    return RunOutcome(counts, reconciled, lines, exceptions, slice_state, clock.seconds)


@dataclass
class _Books:
    """What streaming the balances left: the cells, the unmapped amounts, the balance check's sums."""

    cells: dict[Cell, Decimal]
    unmapped: list[Unmapped]
    tally: Tally
    read: int


async def _stream(
    system: SystemClient,
    params: RunParams,
    scope: _Scope,
    dimension_map: DimensionMap,
    members: dict[PlanningDimension, set[str]],
    clock: _Clock,
    progress: Callable[[str, float], Awaitable[None]],
) -> _Books:
    """Read each entity's balances batch by batch (from the period before the range, for the balance check)
    and fold each batch into the cells, the unmapped amounts and the check's sums as it arrives."""
    cells: dict[Cell, Decimal] = {}
    unmapped: dict[tuple[str, str, PlanningDimension, str], Unmapped] = {}
    tally = Tally()
    read = 0
    for index, entity in enumerate(scope.wanted):
        batches = system.balance_batches(
            params.source, entity, _previous(params.period_from), params.period_to
        )
        async for batch in batches:
            clock.lap("extract")
            read += len(batch)
            tally.add(batch, scope.currencies, dimension_map.signs)
            clock.lap("validate")
            mapped = map_actuals((b for b in batch if b.period >= params.period_from), dimension_map, members)
            for item in mapped.unmapped:
                key = (item.entity, item.period, item.dimension, item.value)
                known = unmapped.get(key)
                unmapped[key] = item if known is None else replace(known, amount=known.amount + item.amount)
            clock.lap("map")
            aggregate(mapped.rows, into=cells)
            clock.lap("aggregate")
        await progress("extract", 0.5 * (index + 1) / len(scope.wanted))
    return _Books(cells, list(unmapped.values()), tally, read)


def _unmapped(source: str, item: Unmapped, map_version: str) -> dict[str, Any]:
    return {
        "reason_code": "unmapped-member",
        "slice_key": slice_key(source, item.entity, item.period),
        "fingerprint": f"{item.dimension.value}:{item.value}",
        "detail": {
            "dimension": item.dimension.value,
            "value": item.value,
            "amount": str(item.amount),
            "source_ref": item.source_ref,
            "map_version": map_version,
        },
    }


class _Clock:
    """Seconds spent per step; the streamed steps take turns on each batch, so each lap is booked to one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self._last
        self._last = now


@dataclass
class _Scope:
    """What a run covers, as the ERP has it."""

    wanted: list[str]
    """The entities."""
    periods: dict[str, list[FiscalPeriod]]
    """Each entity's periods, from the one before the range."""
    slices: set[Slice]
    """(entity, period) in the range."""
    currencies: dict[str, str]
    """Each entity's currency."""
    planning_entity: dict[str, str]
    """Each entity's code in planning, after the map."""

    @property
    def erp_entity(self) -> dict[str, str]:
        """Each planning entity's ERP entity."""
        return {planning: erp for erp, planning in self.planning_entity.items()}


async def _scope(system: SystemClient, params: RunParams, dimension_map: DimensionMap) -> _Scope:
    """The entities and their periods, from the period before the range (the balance check).

    Raises:
        RunRefusedError: an entity the ERP does not have, or a map that sends two of the run's entities to
            one planning entity (each would replace the other's slice).
    """
    entities = {entity.code: entity for entity in await system.legal_entities(params.source)}
    wanted = list(params.entities) or sorted(entities)
    unknown = [code for code in wanted if code not in entities]
    if unknown:
        raise RunRefusedError(f"the ERP {params.source!r} has no legal entity {', '.join(unknown)}")
    planning_entity = {entity: dimension_map.entity(entity) for entity in wanted}
    if len(set(planning_entity.values())) < len(planning_entity):
        raise RunRefusedError(
            f"the map {dimension_map.version} sends several of the run's entities to one planning entity"
        )
    first = _previous(params.period_from)
    periods = {
        entity: [
            p for p in await system.periods(params.source, entity) if first <= p.code <= params.period_to
        ]
        for entity in wanted
    }
    return _Scope(
        wanted=wanted,
        periods=periods,
        slices={
            (entity, p.code)
            for entity in wanted
            for p in periods[entity]
            if params.period_from <= p.code <= params.period_to
        },
        currencies={code: entity.currency for code, entity in entities.items()},
        planning_entity=planning_entity,
    )


def _mismatch(source: str, line: ReconLine) -> dict[str, Any]:
    return {
        "reason_code": "reconciliation-mismatch",
        "slice_key": slice_key(source, line.entity, line.period),
        "fingerprint": line.account or "total",
        "detail": {
            "account": line.account,
            "erp_count": line.erp_count,
            "erp_total": str(line.erp_total),
            "planning_count": line.planning_count,
            "planning_total": str(line.planning_total),
            "difference": str(line.difference),
        },
    }


class RunRefusedError(BusinessRuleError):
    """The run's parameters name something the systems do not have: a source of the wrong kind, an entity."""

    code = "run-refused"
    title = "Run refused"


async def _load(
    system: SystemClient,
    run_id: str,
    params: RunParams,
    version: str,
    cells: dict[Cell, Decimal],
    audit: Callable[[str, str, dict[str, Any]], Awaitable[None]],
) -> list[tuple[Load, list[Cell]]]:
    """Load ``cells`` in chunks and wait for each load to end; each load with the cells it sent, in order.

    The idempotency key is business identity (source, range, chunk) within the run, never the attempt: a
    job retried after a failure replays the load its run already made; a new run (a re-run, a replay)
    makes a new one, even with the same content, since planning may have changed in between.
    """
    ordered = sorted(cells.items())
    loads: list[tuple[Load, list[Cell]]] = []
    for start in range(0, len(ordered), LOAD_CHUNK):
        chunk = ordered[start : start + LOAD_CHUNK]
        rows = tuple(
            LoadRow(entity=cell[0], account_code=cell[1], cost_center=cell[2], period=cell[3], amount=amount)
            for cell, amount in chunk
        )
        body = LoadCreate(version=version, rows=rows)
        key = f"a2p:{params.source}:{params.period_from}..{params.period_to}:{start // LOAD_CHUNK}:{run_id}"
        entities = sorted({cell[0] for cell, _amount in chunk})
        await audit("load", "intent", {"entities": entities, "rows": len(rows), "idempotency_key": key})
        load = await system.start_load(params.planning, body, key)
        wait = LOAD_POLL[0]
        while not load.status.finished:
            await asyncio.sleep(wait)
            wait = min(wait * 2, LOAD_POLL[1])
            load = await system.load(params.planning, load.id)
        await audit(
            "load",
            "outcome",
            {
                "entities": entities,
                "load": load.id,
                "status": load.status.value,
                "counts": msgspec.to_builtins(load.counts),
                "failed_rows": len(load.failures),
            },
        )
        if load.status is not LoadStatus.COMPLETE:
            raise LoadFailedError(
                f"planning load {load.id} ended {load.status.value}: {load.detail or ''}".strip()
            )
        loads.append((load, [cell for cell, _amount in chunk]))
    return loads


class LoadFailedError(UpstreamError):
    """A planning load did not complete."""

    code = "load-failed"
    title = "Planning load failed"
