"""The worker's side of actuals-to-plan: one job per run, its record in the ledger, its slice locks.

A run is created ``queued`` in the ledger and its job (id = the run's id) is
enqueued; a worker then claims it (``running``), takes the locks of its slices
(all or none: a busy slice ends the run ``conflict``), runs the steps with a
heartbeat, and records the outcome: exceptions, reconciliation lines, counts,
``succeeded`` or ``failed``.

A job delivered again finds its run in one of three states: finished (nothing
to do: handlers must be idempotent), or ``running``/``abandoned`` because its
worker died mid-run. Then the run is marked ``abandoned`` and a new run with the
same parameters replaces it (``replaced_by`` in the old run's result), so
planning ends equal to the ERP once that run completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

import msgspec

from process_apis.flows.actuals_to_plan.dimension_map import load_map
from process_apis.flows.actuals_to_plan.runner import FLOW, RunParams, RunRefusedError, execute, slice_key
from process_apis.jobs import Slice, SliceBusyError, acquire_slices, release_slices_of
from process_apis.ledger.records import AuditEventCreate, ReconciliationCreate
from shared.auth.client import acting_for
from shared.errors import ConflictError, FinsyncError, SettingsError, UpstreamError
from shared.observability.context import continue_trace

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    import redis.asyncio as aioredis

    from process_apis.clients.system import SystemClient
    from process_apis.flows.actuals_to_plan.dimension_map import DimensionMap
    from process_apis.flows.actuals_to_plan.runner import RunOutcome
    from process_apis.jobs import Job, JobQueue, SliceLocks
    from process_apis.ledger.records import Run, RunStatus, RunTrigger
    from process_apis.ledger.store import LedgerStore

__all__ = ("HEARTBEAT", "JOB_KIND", "LOCK_TTL", "ActualsToPlan", "months")

logger = logging.getLogger("finsync.flows.actuals_to_plan")

JOB_KIND = "actuals-to-plan.run"
"""The job kind of a run."""
HEARTBEAT = 10.0
"""Seconds between two heartbeats of a running run (and renewals of its slice locks)."""
LOCK_TTL = 60.0
"""Seconds a slice lock lasts unless renewed: a dead worker's slices free up by themselves."""
_QUEUED: tuple[RunStatus, ...] = ("queued",)
_RUNNING: tuple[RunStatus, ...] = ("running",)
ERP_KINDS = ("tryton", "generated")
"""Source kinds a run reads actuals from."""
PLANNING_KINDS = ("anaplan",)
"""Source kinds a run loads into."""
_NOT_CLIENTS = frozenset({"schedule", "anonymous"})
"""Actors that are no OAuth client: the schedule, and any caller while auth is off."""


def months(period_from: str, period_to: str, most: int = 1200) -> list[str]:
    """Every period code from ``period_from`` to ``period_to``, both included (at most ``most`` + 1 of them)."""
    year, month = int(period_from[:4]), int(period_from[5:7])
    out: list[str] = []
    while f"{year:04d}-{month:02d}" <= period_to and len(out) <= most:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _hash(detail: dict[str, Any]) -> str:
    return hashlib.sha256(msgspec.json.encode(detail, order="sorted")).hexdigest()


class ActualsToPlan:
    """Starts runs (ledger record plus job) and runs them (the job handler)."""

    def __init__(
        self,
        system: SystemClient,
        store: LedgerStore,
        queue: JobQueue,
        redis: aioredis.Redis,
        worker: str,
        maps: Path | None = None,
    ) -> None:
        self.system = system
        self.store = store
        self.queue = queue
        self.redis = redis
        self.worker = worker
        self.maps = maps
        """The deployment's dimension maps (None: the packaged ones)."""

    def dimension_map(self, version: str) -> DimensionMap:
        """The dimension map ``version``.

        Raises:
            SettingsError: there is no such map, or it is not valid.
        """
        return load_map(version, self.maps)

    async def start(
        self, params: RunParams, *, actor: str, trace_id: str, trigger: RunTrigger = "manual"
    ) -> Run:
        """Record a run ``queued`` and enqueue its job; the run's slices are its entities times its months.

        Raises:
            RunRefusedError: the sources are not an ERP and a planning source of the system layer, an
                entity is not the ERP's, or the run's dimension map cannot be read.
        """
        try:
            self.dimension_map(params.map_version)
        except SettingsError as exc:
            raise RunRefusedError(exc.detail) from exc
        kinds = {source.id: source.kind for source in await self.system.list_sources()}
        for name, wanted, field in (
            (params.source, ERP_KINDS, "source"),
            (params.planning, PLANNING_KINDS, "planning"),
        ):
            if kinds.get(name) not in wanted:
                raise RunRefusedError(
                    f"the system layer has no {' or '.join(wanted)} source {name!r}", field=field
                )
        try:
            known = sorted(e.code for e in await self.system.legal_entities(params.source))
        except UpstreamError:
            if not params.entities:
                raise  # which entities the run covers cannot be known
            known = (
                None  # named entities are queued unchecked: the run then fails, as an exception of each slice
            )
        unknown = sorted(set(params.entities) - set(known)) if known is not None else []
        if unknown:
            raise RunRefusedError(
                f"the ERP {params.source!r} has no legal entity {', '.join(unknown)}", field="entities"
            )
        entities = params.entities or tuple(known or ())
        run = await self.store.create_run(
            flow=FLOW,
            trigger=trigger,
            actor=actor,
            trace_id=trace_id,
            params=msgspec.to_builtins(msgspec.structs.replace(params, entities=entities)),
            slice_keys=[
                slice_key(params.source, entity, period)
                for entity in entities
                for period in months(params.period_from, params.period_to)
            ],
        )
        await self.queue.enqueue(JOB_KIND, {"run_id": run.id}, job_id=run.id)
        return run

    async def handle(self, job: Job) -> None:
        """Run the job's run, or its replacement when its worker died; idempotent."""
        run = await self.store.get_run(str(job.payload["run_id"]))
        if run is None:
            logger.warning("job %s names no run; nothing to do", job.id)
            return
        if run.status in ("running", "abandoned"):
            run = await self._replace(run)
            if run is None:
                return
        elif run.status != "queued":
            return
        try:
            run = await self.store.update_run(
                run.id, from_status=_QUEUED, status="running", worker=self.worker
            )
        except ConflictError:
            return  # another delivery of the same job got there first
        await self._run(run)

    async def _replace(self, run: Run) -> Run | None:
        """Mark ``run`` abandoned and give the run that replaces it (None: its replacement already ran)."""
        replaced_by = (run.result or {}).get("replaced_by")
        if replaced_by is not None:
            successor = await self.store.get_run(str(replaced_by))
            return successor if successor is not None and successor.status == "queued" else None
        with contextlib.suppress(ConflictError):
            await self.store.update_run(
                run.id,
                from_status=_RUNNING,
                status="abandoned",
                error="its worker stopped before the run ended; a new run replaces it",
            )
        # Its worker is gone: free the slices it still holds, or its replacement would meet them busy (a
        # ``conflict``) until they expire. Only locks taken by this run are freed, never another run's.
        await release_slices_of(self.redis, FLOW, self._slices(run), owner=run.id)
        successor = await self.store.create_run(
            flow=FLOW,
            trigger="replay",
            actor=run.actor,
            trace_id=secrets.token_hex(16),
            params=run.params,
            slice_keys=run.slice_keys,
        )
        await self.store.update_run(run.id, result={**(run.result or {}), "replaced_by": successor.id})
        logger.warning("run %s was orphaned by its worker; run %s replaces it", run.id, successor.id)
        return successor

    @staticmethod
    def _slices(run: Run) -> list[Slice]:
        source = str(run.params["source"])
        return [Slice(source, *key.rsplit(":", 2)[1:]) for key in run.slice_keys]

    async def _run(self, run: Run) -> None:
        params = msgspec.convert(run.params, RunParams)
        try:
            locks = await acquire_slices(self.redis, FLOW, self._slices(run), LOCK_TTL, owner=run.id)
        except SliceBusyError as busy:
            await self.store.update_run(
                run.id,
                status="conflict",
                error=f"another run holds {len(busy.keys)} of its slices: {busy.detail}",
            )
            return
        heartbeat = asyncio.create_task(self._heartbeat(run, locks))
        try:
            dimension_map = self.dimension_map(params.map_version)
            # The layer below sees (and audits) the client that started the run, and the run's trace, as it
            # would a relayed call.
            with (
                acting_for(None if run.actor in _NOT_CLIENTS else run.actor),
                continue_trace(run.trace_id, run.id),
            ):
                outcome = await execute(
                    self.system,
                    run.id,
                    params,
                    dimension_map,
                    self._progress(run),
                    self._audit(run, params, dimension_map.version),
                )
        except FinsyncError as exc:
            await self._ended(self._failed(run, params, exc))
        except asyncio.CancelledError:
            # The worker is stopping (past its grace period): the job stays pending, and its next delivery
            # replaces this run.
            with contextlib.suppress(Exception):
                await self.store.update_run(
                    run.id, from_status=_RUNNING, status="abandoned", error="its worker stopped mid-run"
                )
            raise
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.store.update_run(
                    run.id,
                    from_status=_RUNNING,
                    status="failed",
                    error=f"finsync failed inside: {type(exc).__name__}",
                )
            raise
        else:
            await self._ended(self._record(run, params, outcome))
        finally:
            heartbeat.cancel()
            await locks.release_all()

    @staticmethod
    async def _ended(recording: Awaitable[None]) -> None:
        """Record a run's end, unless it was abandoned meanwhile (its worker stalled past ``claim_after`` and
        a replacement took over): the replacement's outcome is the one that counts."""
        try:
            await recording
        except ConflictError as exc:
            logger.warning("a run's outcome was not recorded: %s", exc.detail)

    async def _heartbeat(self, run: Run, locks: SliceLocks) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(Exception):
                await self.store.heartbeat(run.id)
                await locks.extend(LOCK_TTL, replace_ttl=True)

    def _progress(self, run: Run) -> Callable[[str, float], Awaitable[None]]:
        async def progress(step: str, share: float) -> None:
            await self.store.heartbeat(run.id, step=step, progress=share)  # type: ignore[arg-type]

        return progress

    def _audit(
        self, run: Run, params: RunParams, map_version: str
    ) -> Callable[[str, str, dict[str, Any]], Awaitable[None]]:
        async def audit(step: str, kind: str, detail: dict[str, Any]) -> None:
            event = AuditEventCreate(
                trace_id=run.trace_id,
                run_id=run.id,
                step=step,
                kind=kind,  # type: ignore[arg-type]
                source_ref=f"{params.source}:{','.join(params.entities)}:{params.period_from}..{params.period_to}",
                target_ref=f"{params.planning}:Actual",
                mapping_version=map_version,
                actor=run.actor,
                payload_hash=_hash(detail),
                detail=detail,
            )
            await self.store.add_audit_events([event])

        return audit

    async def _failed(self, run: Run, params: RunParams, exc: FinsyncError) -> None:
        reason = "source-unreachable" if isinstance(exc, UpstreamError) else exc.code
        for key in run.slice_keys:
            await self.store.record_exception(
                flow=FLOW,
                reason_code=reason,
                slice_key=key,
                fingerprint=reason,
                detail={"message": exc.detail},
                run_id=run.id,
            )
        await self.store.update_run(
            run.id,
            from_status=_RUNNING,
            status="failed",
            error=exc.detail,
            result={"reconciled": False, "error": exc.code},
        )

    async def _record(self, run: Run, params: RunParams, outcome: RunOutcome) -> None:
        for item in outcome.exceptions:
            await self.store.record_exception(flow=FLOW, run_id=run.id, **item)
        failing = {item["slice_key"] for item in outcome.exceptions}
        if not params.dry_run:
            for key in run.slice_keys:
                if key not in failing:
                    await self.store.resolve_exceptions(FLOW, key)
        await self.store.add_reconciliations(
            ReconciliationCreate(
                run_id=run.id,
                flow=FLOW,
                source=params.source,
                entity=line.entity,
                period=line.period,
                account=line.account,
                erp_count=line.erp_count,
                erp_total=line.erp_total,
                planning_count=line.planning_count,
                planning_total=line.planning_total,
                difference=line.difference,
                status="matched" if line.matched else "mismatched",
            )
            for line in outcome.lines
        )
        await self.store.update_run(
            run.id,
            from_status=_RUNNING,
            status="succeeded",
            step="reconcile" if not params.dry_run else "aggregate",
            progress=1.0,
            counts=outcome.counts,
            result={
                "reconciled": outcome.reconciled,
                "dry_run": params.dry_run,
                "exceptions": len(outcome.exceptions),
                "mismatched_lines": sum(1 for line in outcome.lines if not line.matched),
                "slices": outcome.slices,
                "seconds": {step: round(spent, 6) for step, spent in outcome.seconds.items()},
            },
        )
