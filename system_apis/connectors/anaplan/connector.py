"""The planning model of one Anaplan source, in canonical terms: versions, members, cells and loads.

Reads and loads follow Anaplan's bulk API:

- **members** come from the transactional list API, the months from the model
  calendar; members are cached for :data:`MEMBERS_TTL` seconds;
- **cells** come from the export action: start its task, poll it, download its
  file's chunks, and map the CSV back to canonical values;
- **loads** write the import file in chunks (``chunkCount: -1``, each chunk in
  order, then ``complete``), start the import task with the version as its
  mapping parameter, poll it every ``poll_interval`` seconds (Anaplan asks for
  5 s at least), read the row counts from its result and, when rows failed, the
  failure dump.

Rows are checked before anything is uploaded: every value must map to a member
(:class:`UnknownMemberError` otherwise), and no two rows may land on the same
cell (:class:`DuplicateCellError`), since the import would keep only the last.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Protocol, TypeVar

from shared.canonical import (
    UNALLOCATED,
    LoadCounts,
    LoadFailure,
    PlanningCell,
    PlanningDimension,
    PlanningMember,
    PlanningVersion,
)
from shared.errors import (
    DuplicateCellError,
    FinsyncError,
    NotFoundError,
    UnknownMemberError,
    UpstreamContractError,
    UpstreamError,
    Violation,
)
from shared.http_client import Probe, elapsed_ms
from system_apis.connectors.anaplan import wire
from system_apis.connectors.anaplan.client import AnaplanClient
from system_apis.connectors.anaplan.mapping import MemberIndex, load_mapping

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx

    from shared.canonical import LoadRow
    from shared.settings import AnaplanSourceConfig

__all__ = ("CELLS_TTL", "MEMBERS_TTL", "AnaplanConnector", "ImportOutcome", "MappedLoad", "Progress")

MEMBERS_TTL = 60.0
"""Seconds the members of a list are reused before they are listed again."""
CELLS_TTL = 5.0
"""Seconds one export's cells answer reads (an export is a task of seconds; pages of one read share it)."""
PAGE = 1000
"""Items asked for per page of a list."""
RUNNING = frozenset({"NOT_STARTED", "IN_PROGRESS", "CANCELLING"})
"""Task states that are not final."""
T = TypeVar("T")


class _Paged(Protocol[T]):
    """A page of a vendor list: its items and its paging."""

    @property
    def items(self) -> list[T]: ...

    @property
    def meta(self) -> wire.Meta: ...


Progress = Callable[[float, str | None], Awaitable[None]]
"""Told how far a load got (0 to 1) and its import task's id once started."""
_LIST_DIMENSIONS = (PlanningDimension.ENTITY, PlanningDimension.ACCOUNT, PlanningDimension.COST_CENTER)


@dataclass(frozen=True)
class MappedLoad:
    """Rows checked and turned into the import file's lines, one per cell."""

    lines: list[tuple[str, str, str, str, str]]
    """Entity, account, cost centre and month members, and the amount, per row, in the rows' order."""

    def file(self, columns: Sequence[str]) -> bytes:
        """The import file: CSV, header first."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(self.lines)
        return buffer.getvalue().encode()


@dataclass(frozen=True)
class ImportOutcome:
    """What the import task reported."""

    task_id: str
    """The platform's task."""
    counts: LoadCounts
    """Its row counts."""
    failures: tuple[LoadFailure, ...]
    """Every failed row, from the failure dump."""
    cancelled: bool = False
    """The task was cancelled in the platform (and rolled back)."""


@dataclass
class _Ids:
    """Ids of the model's actions, files and lists, by name, read once."""

    lists: dict[str, str] = field(default_factory=dict)
    imports: dict[str, wire.Import] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)


class AnaplanConnector:
    """One Anaplan model as a planning source."""

    def __init__(
        self, source: str, config: AnaplanSourceConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.source = source
        self.config = config
        self.client = AnaplanClient(config, transport)
        self.mapping = load_mapping(config.mapping)
        self.model_path = f"/workspaces/{config.workspace}/models/{config.model}"
        self._ids: _Ids | None = None
        self._members: dict[PlanningDimension, tuple[float, MemberIndex]] = {}
        self._ids_lock = asyncio.Lock()
        self._cells: tuple[float, list[PlanningCell]] | None = None
        self._cells_lock = asyncio.Lock()

    # -- reads -----------------------------------------------------------------------------------

    async def probe(self) -> Probe:
        """Ask for the model with the session's token (logging in first if needed); never raises."""
        started = time.perf_counter()
        try:
            await self.client.request("GET", self.model_path)
        except FinsyncError as exc:
            return Probe(status="down", latency_ms=elapsed_ms(started), detail=exc.detail)
        return Probe(status="up", latency_ms=elapsed_ms(started), detail="Anaplan model answers")

    async def versions(self) -> list[PlanningVersion]:
        """The model's versions."""
        answer = await self.client.get(f"/models/{self.config.model}/versions", wire.VersionsAnswer)
        return [
            PlanningVersion(name=v.name, id=v.id, is_actual=v.is_actual, is_current=v.is_current)
            for v in answer.version_metadata
        ]

    async def version(self, name: str) -> PlanningVersion:
        """The version named ``name``; :class:`NotFoundError` when the model has none."""
        for version in await self.versions():
            if version.name == name:
                return version
        raise NotFoundError(f"the planning model has no version {name!r}", field="version")

    async def months(self) -> list[tuple[str, str]]:
        """``(period code, month member)`` of every month of the model's calendar, in order."""
        answer = await self.client.get(f"/models/{self.config.model}/modelCalendar", wire.ModelCalendarAnswer)
        fiscal = answer.model_calendar.fiscal_year
        try:
            start, end = date.fromisoformat(fiscal.start_date), date.fromisoformat(fiscal.end_date)
        except ValueError as exc:
            raise UpstreamContractError(f"the planning model's calendar is not readable: {exc}") from exc
        months: list[tuple[str, str]] = []
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            period = f"{year:04d}-{month:02d}"
            months.append((period, self.mapping.month(period)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months

    async def members(self, dimension: PlanningDimension) -> list[PlanningMember]:
        """The members of one dimension, each with the canonical value that maps to it."""
        if dimension is PlanningDimension.MONTH:
            return [
                PlanningMember(
                    dimension=dimension, id=name, name=name, code=None, parent=None, canonical=period
                )
                for period, name in await self.months()
            ]
        index = await self._index(dimension)
        return [
            PlanningMember(
                dimension=dimension,
                id=item.id,
                name=item.name,
                code=item.code,
                parent=item.parent,
                canonical=self.mapping.canonical(dimension, item),
            )
            for item in index.items
        ]

    async def cells(self) -> list[PlanningCell]:
        """Every non-empty cell of every version, through the export action; one export serves the callers
        of the next :data:`CELLS_TTL` seconds (a load through this connector forgets it)."""
        async with self._cells_lock:
            if self._cells is not None and time.monotonic() - self._cells[0] < CELLS_TTL:
                return self._cells[1]
            cells = await self._export()
            self._cells = (time.monotonic(), cells)
            return cells

    async def _export(self) -> list[PlanningCell]:
        ids = await self._action_ids()
        export_id = ids.exports.get(self.config.export_name)
        if export_id is None:
            raise UpstreamContractError(f"the planning model has no export {self.config.export_name!r}")
        base = f"{self.model_path}/exports/{export_id}/tasks"
        task = (await self.client.post(base, wire.TaskAnswer, {"localeName": "en_US"})).task
        task = await self._wait(f"{base}/{task.task_id}", task, None)
        if task.task_state != "COMPLETE" or task.result is None or not task.result.successful:
            raise UpstreamError(f"the planning export ended {task.task_state}, not successfully")
        chunks = await self.client.get(f"{self.model_path}/files/{export_id}/chunks", wire.ChunksAnswer)
        body = b"".join(
            [
                (
                    await self.client.request("GET", f"{self.model_path}/files/{export_id}/chunks/{chunk.id}")
                ).content
                for chunk in chunks.chunks
            ]
        )
        return self._cells_from(body, {name: period for period, name in await self.months()})

    def _cells_from(self, body: bytes, periods: dict[str, str]) -> list[PlanningCell]:
        """Map the export file's rows (``Version,Entity,Account,Cost Centre,Time,Amount``) back to cells."""
        reverse = {dimension: self._reverse(dimension) for dimension in _LIST_DIMENSIONS}
        reader = csv.reader(io.StringIO(body.decode("utf-8-sig")))
        next(reader, None)  # the header
        cells: list[PlanningCell] = []
        for row in reader:
            if not row:
                continue
            try:
                version, entity, account, centre, month, amount = row
                cells.append(
                    PlanningCell(
                        version=version,
                        entity=reverse[PlanningDimension.ENTITY].get(entity, entity),
                        account_code=reverse[PlanningDimension.ACCOUNT].get(account, account),
                        cost_center=reverse[PlanningDimension.COST_CENTER].get(centre, centre),
                        period=periods[month],
                        amount=Decimal(amount),
                    )
                )
            except (ValueError, KeyError, InvalidOperation) as exc:
                raise UpstreamContractError(
                    f"the planning export has a row finsync cannot read: {row!r}"
                ) from exc
        return cells

    def _reverse(self, dimension: PlanningDimension) -> dict[str, str]:
        """Member code (or name) -> canonical value, from the explicit rules (the rest map to themselves)."""
        return {member: value for value, member in self.mapping.rule(dimension).members.items()}

    # -- loads -----------------------------------------------------------------------------------

    async def map_rows(self, rows: Sequence[LoadRow]) -> MappedLoad:
        """Check and map rows; nothing is sent to the platform.

        Raises:
            UnknownMemberError: values that map to no member, each named with its row and dimension.
            DuplicateCellError: rows that land on a cell an earlier row already holds.
        """
        indexes = {dimension: await self._index(dimension) for dimension in _LIST_DIMENSIONS}
        months = dict(await self.months())
        mapping = self.mapping
        cache: dict[tuple[PlanningDimension, str], str | None] = {}

        def member(dimension: PlanningDimension, value: str) -> str | None:
            key = (dimension, value)
            if key not in cache:
                item = mapping.member(dimension, value, indexes[dimension])
                cache[key] = None if item is None else (item.code or item.name)
            return cache[key]

        unknown: list[Violation] = []
        duplicates: list[Violation] = []
        seen: dict[tuple[str, str, str, str], int] = {}
        lines: list[tuple[str, str, str, str, str]] = []
        for number, row in enumerate(rows):
            values = (
                (PlanningDimension.ENTITY, "entity", row.entity),
                (PlanningDimension.ACCOUNT, "account_code", row.account_code),
                (PlanningDimension.COST_CENTER, "cost_center", row.cost_center),
            )
            found = [member(dimension, value) for dimension, _, value in values]
            month = months.get(row.period)
            for (_dimension, name, value), item in zip(values, found, strict=True):
                if item is None:
                    unknown.append(_unknown(number, name, value))
            if month is None:
                unknown.append(_unknown(number, "period", row.period))
            entity, account, centre = found
            if entity is None or account is None or centre is None or month is None:
                continue
            cell = (entity, account, centre, month)
            if cell in seen:
                duplicates.append(
                    Violation(
                        reason="duplicate-cell",
                        message=f"row {number} writes the same cell as row {seen[cell]}",
                        line=number,
                        field="rows",
                    )
                )
                continue
            seen[cell] = number
            lines.append((entity, account, centre, month, format(row.amount, "f")))
        if unknown:
            raise UnknownMemberError(
                f"{len(unknown)} value(s) map to no planning member under {mapping.version}; nothing was loaded",
                violations=unknown,
                mapping_version=mapping.version,
            )
        if duplicates:
            raise DuplicateCellError(
                f"{len(duplicates)} row(s) repeat a cell; send exactly one row per cell",
                violations=duplicates,
            )
        return MappedLoad(lines=lines)

    async def load(self, version: str, mapped: MappedLoad, progress: Progress) -> ImportOutcome:
        """Upload ``mapped`` in chunks, import it into ``version`` and wait for the import to end.

        ``progress`` is told how far the load got, from 0 to 1 (the upload is the first half, the import
        task's own progress the second), and the import task's id once it started.
        """
        ids = await self._action_ids()
        action = ids.imports.get(self.config.import_name)
        if action is None or action.import_data_source_id is None:
            raise UpstreamContractError(
                f"the planning model has no import {self.config.import_name!r} with a file"
            )
        file_id = action.import_data_source_id
        files = f"{self.model_path}/files/{file_id}"
        body = mapped.file(self.mapping.columns)
        size = self.config.chunk_size
        chunks = [body[start : start + size] for start in range(0, len(body), size)] or [b""]
        await self.client.request("POST", files, json={"chunkCount": -1})
        for number, chunk in enumerate(chunks):
            await self.client.request(
                "PUT",
                f"{files}/chunks/{number}",
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
            )
            await progress(0.5 * (number + 1) / len(chunks), None)
        await self.client.request(
            "POST",
            f"{files}/complete",
            json={"id": file_id, "name": file_id, "chunkCount": -1, "firstDataRow": 2, "headerRow": 1},
        )
        base = f"{self.model_path}/imports/{action.id}/tasks"
        body_json = {
            "localeName": "en_US",
            "mappingParameters": [{"entityType": "Version", "entityName": version}],
        }
        task = (await self.client.post(base, wire.TaskAnswer, body_json)).task
        self._cells = None
        await progress(0.5, task.task_id)
        task = await self._wait(f"{base}/{task.task_id}", task, progress)
        if task.task_state == "CANCELLED":
            return ImportOutcome(task_id=task.task_id, counts=_counts(task), failures=(), cancelled=True)
        if task.result is None or not task.result.successful:
            raise UpstreamError(f"the planning import task {task.task_id} ended without success")
        failures: tuple[LoadFailure, ...] = ()
        if task.result.failure_dump_available:
            dump = await self.client.request("GET", f"{base}/{task.task_id}/dump")
            failures = _failures(dump.content, mapped)
        self._cells = None
        return ImportOutcome(task_id=task.task_id, counts=_counts(task), failures=failures)

    # -- internals -------------------------------------------------------------------------------

    async def _wait(self, url: str, task: wire.Task, progress: Progress | None) -> wire.Task:
        """Poll a task every ``poll_interval`` seconds until it ends."""
        while task.task_state in RUNNING:
            await asyncio.sleep(self.config.poll_interval)
            task = (await self.client.get(url, wire.TaskAnswer)).task
            if progress is not None:
                await progress(0.5 + 0.5 * min(max(task.progress, 0.0), 1.0), task.task_id)
        return task

    async def _action_ids(self) -> _Ids:
        async with self._ids_lock:
            if self._ids is None:
                lists = await self._every(f"{self.model_path}/lists", wire.ListsAnswer)
                imports = await self.client.get(f"{self.model_path}/imports", wire.ImportsAnswer)
                exports = await self.client.get(f"{self.model_path}/exports", wire.ExportsAnswer)
                self._ids = _Ids(
                    lists={item.name: item.id for item in lists},
                    imports={item.name: item for item in imports.imports},
                    exports={item.name: item.id for item in exports.exports},
                )
            return self._ids

    async def _index(self, dimension: PlanningDimension) -> MemberIndex:
        cached = self._members.get(dimension)
        if cached is not None and time.monotonic() - cached[0] < MEMBERS_TTL:
            return cached[1]
        name = self.mapping.rule(dimension).list
        list_id = (await self._action_ids()).lists.get(name)
        if list_id is None:
            raise UpstreamContractError(
                f"the planning model has no list {name!r} (mapping {self.mapping.version})"
            )
        items = await self._every(f"{self.model_path}/lists/{list_id}/items", wire.ListItemsAnswer)
        index = MemberIndex(items=tuple(items))
        self._members[dimension] = (time.monotonic(), index)
        return index

    async def _every(self, path: str, type_: type[_Paged[T]]) -> list[T]:
        """Every item of a paged list (``offset`` and ``limit``)."""
        items: list[T] = []
        offset = 0
        while True:
            answer = await self.client.get(path, type_, params={"offset": offset, "limit": PAGE})
            page = answer.items
            items.extend(page)
            paging = answer.meta.paging
            offset += len(page)
            if paging is None or not page or offset >= paging.total_size:
                return items


def _unknown(row: int, field: str, value: str) -> Violation:
    shown = "the unallocated cost centre" if field == "cost_center" and value == UNALLOCATED else repr(value)
    return Violation(
        reason="unknown-member",
        message=f"{shown} maps to no planning member",
        line=row,
        field=field,
    )


def _counts(task: wire.Task) -> LoadCounts:
    values = wire.counts(task.result) if task.result is not None else {}
    return LoadCounts(
        total_rows=values.get("totalRowCount", 0),
        success_rows=values.get("successRowCount", 0),
        failed_rows=values.get("failedCount", 0),
        ignored_rows=values.get("ignoredCount", 0),
        created=values.get("createdCount", 0),
        updated=values.get("updatedCount", 0),
    )


def _failures(dump: bytes, mapped: MappedLoad) -> tuple[LoadFailure, ...]:
    """The failure dump's rows (the uploaded columns, then the platform's reasons), each traced to its row."""
    rows = {line[:4]: number for number, line in enumerate(mapped.lines)}
    reader = csv.reader(io.StringIO(dump.decode("utf-8-sig")))
    next(reader, None)
    failures: list[LoadFailure] = []
    for record in reader:
        if len(record) < 5:
            continue
        entity, account, centre, month, amount, *reasons = record
        failures.append(
            LoadFailure(
                row=rows.get((entity, account, centre, month)),
                entity=entity,
                account=account,
                cost_center=centre,
                month=month,
                amount=amount,
                reason="; ".join(reason for reason in reasons if reason)
                or "refused by the planning platform",
            )
        )
    return tuple(failures)
