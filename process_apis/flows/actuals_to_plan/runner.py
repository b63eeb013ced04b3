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
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from process_apis.flows.actuals_to_plan.steps import (
    Slice,
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
    from process_apis.flows.actuals_to_plan.steps import Cell, ReconLine
    from shared.canonical import Balance, FiscalPeriod, Load

__all__ = ("FLOW", "LOAD_CHUNK", "LoadFailedError", "RunOutcome", "RunParams", "RunRefusedError", "execute")

logger = logging.getLogger("finsync.flows.actuals_to_plan")

FLOW = "actuals-to-plan"
LOAD_CHUNK = 50_000
"""Most rows per load."""
LOAD_POLL = (0.1, 2.0)
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

    Raises:
        FinsyncError: a system the run needs failed (after the client's retries); nothing is reported
            reconciled.
    """
    await progress("extract", 0.0)
    await audit("extract", "intent", {"source": params.source, "entities": list(params.entities)})
    books = await _extract(system, params)
    wanted, periods, slices, in_range = books.wanted, books.periods, books.slices, books.in_range
    await audit("extract", "outcome", {"balances": len(in_range), "slices": len(slices)})

    await progress("map", 0.2)
    members = {
        dimension: {
            m.canonical
            for m in await system.planning_members(params.planning, dimension)
            if m.canonical is not None
        }
        for dimension in PlanningDimension
    }
    mapped = map_actuals(in_range, dimension_map, members)
    exceptions: list[dict[str, Any]] = [
        {
            "reason_code": "unmapped-member",
            "slice_key": slice_key(params.source, item.entity, item.period),
            "fingerprint": f"{item.dimension.value}:{item.value}",
            "detail": {
                "dimension": item.dimension.value,
                "value": item.value,
                "amount": str(item.amount),
                "source_ref": item.source_ref,
                "map_version": dimension_map.version,
            },
        }
        for item in mapped.unmapped
    ]
    await audit("map", "outcome", {"rows": len(mapped.rows), "unmapped": len(mapped.unmapped)})

    await progress("validate", 0.3)
    known = {p.code for entity_periods in periods.values() for p in entity_periods}
    previous = {p: (_previous(p) if _previous(p) in known else None) for _entity, p in slices}
    problems = validate(books.balances, slices, books.currencies, dimension_map, previous)
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
    loadable = slices - refused
    await audit("validate", "outcome", {"slices": len(slices), "refused": sorted(map(list, refused))})

    await progress("aggregate", 0.4)
    cells = {
        cell: amount for cell, amount in aggregate(mapped.rows).items() if (cell[0], cell[3]) in loadable
    }
    counts = {
        "balances": len(in_range),
        "slices": len(slices),
        "slices_refused": len(refused),
        "unmapped": len(mapped.unmapped),
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
        for entity in wanted
        for p in periods[entity]
        if (entity, p.code) in slices
    }
    if params.dry_run:
        await audit("aggregate", "outcome", {"cells": len(cells), "dry_run": True})
        return RunOutcome(counts, False, [], exceptions, slice_state)

    await progress("load", 0.5)
    version = dimension_map.planning_version
    for entity in wanted:
        entity_slices = {s for s in loadable if s[0] == entity}
        if not entity_slices:
            continue
        existing = await system.planning_cells(
            params.planning, version, entity, params.period_from, params.period_to
        )
        entity_cells = {cell: amount for cell, amount in cells.items() if cell[0] == entity}
        filled = zero_fill(entity_cells, existing, entity_slices)
        counts["zeros"] += len(filled) - len(entity_cells)
        for loaded, sent in await _load(system, run_id, params, entity, version, filled, audit):
            counts["rows_loaded"] += loaded.counts.success_rows if loaded.counts else 0
            counts["rows_failed"] += len(loaded.failures)
            for failure in loaded.failures:
                cell = sent[failure.row] if failure.row is not None else None
                exceptions.append(
                    {
                        "reason_code": "load-rejected-rows",
                        "slice_key": slice_key(params.source, entity, cell[3]) if cell else None,
                        "fingerprint": f"{failure.account}:{failure.cost_center}:{failure.month}",
                        "detail": {"load": loaded.id, "reason": failure.reason, "amount": failure.amount},
                    }
                )

    await progress("reconcile", 0.9)
    lines = await _reconcile(system, params, version, wanted, slices, mapped.expected)
    exceptions += [_mismatch(params.source, line) for line in lines if not line.matched]
    reconciled = bool(lines) and all(line.matched for line in lines) and not exceptions
    await audit("reconcile", "outcome", {"lines": len(lines), "reconciled": reconciled})
    return RunOutcome(counts, reconciled, lines, exceptions, slice_state)


@dataclass
class _Books:
    """What the extract step read."""

    wanted: list[str]
    periods: dict[str, list[FiscalPeriod]]
    balances: list[Balance]
    slices: set[Slice]
    in_range: list[Balance]
    currencies: dict[str, str]


async def _extract(system: SystemClient, params: RunParams) -> _Books:
    """The entities, their periods and their actuals, from the period before the range (the balance check)."""
    entities = {entity.code: entity for entity in await system.legal_entities(params.source)}
    wanted = list(params.entities) or sorted(entities)
    unknown = [code for code in wanted if code not in entities]
    if unknown:
        raise RunRefusedError(f"the ERP {params.source!r} has no legal entity {', '.join(unknown)}")
    balances: list[Balance] = []
    periods: dict[str, list[FiscalPeriod]] = {}
    first = _previous(params.period_from)
    for entity in wanted:
        periods[entity] = [
            p for p in await system.periods(params.source, entity) if first <= p.code <= params.period_to
        ]
        balances.extend(await system.balances(params.source, entity, first, params.period_to))
    slices: set[Slice] = {
        (entity, p.code)
        for entity in wanted
        for p in periods[entity]
        if params.period_from <= p.code <= params.period_to
    }
    return _Books(
        wanted=wanted,
        periods=periods,
        balances=balances,
        slices=slices,
        in_range=[b for b in balances if (b.entity, b.period) in slices],
        currencies={code: entity.currency for code, entity in entities.items()},
    )


async def _reconcile(
    system: SystemClient,
    params: RunParams,
    version: str,
    wanted: list[str],
    slices: set[Slice],
    expected: dict[Cell, Decimal],
) -> list[ReconLine]:
    """Read each entity's cells back from planning and compare them with the ERP."""
    lines: list[ReconLine] = []
    for entity in wanted:
        entity_slices = {s for s in slices if s[0] == entity}
        if entity_slices:
            after = await system.planning_cells(
                params.planning, version, entity, params.period_from, params.period_to
            )
            lines += reconcile(expected, after, entity_slices)
    return lines


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
    entity: str,
    version: str,
    cells: dict[Cell, Decimal],
    audit: Callable[[str, str, dict[str, Any]], Awaitable[None]],
) -> list[tuple[Load, list[Cell]]]:
    """Load ``cells`` in chunks and wait for each load to end; each load with the cells it sent, in order.

    The idempotency key is business identity (source, entity, range, chunk) within the run, never the
    attempt: a job retried after a failure replays the load its run already made; a new run (a re-run, a
    replay) makes a new one, even with the same content, since planning may have changed in between.
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
        key = f"a2p:{params.source}:{entity}:{params.period_from}..{params.period_to}:{start // LOAD_CHUNK}:{run_id}"
        await audit("load", "intent", {"entity": entity, "rows": len(rows), "idempotency_key": key})
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
                "entity": entity,
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
