"""What an import task does: read the import file's CSV and write its cells into one version.

The file has a header row (row 1) naming the columns ``Entity``, ``Account``,
``Cost Centre``, ``Time`` and ``Amount`` in any order (other columns are not
mapped), and data from row 2. Semantics follow the product:

- members are matched by code, else by name, exactly; ``Time`` by the month's
  name (``Jan 26``); ``Amount`` is a plain decimal number with ``.``;
- every valid row writes its cell, and rows that address the same cell
  overwrite each other, the last row winning;
- a row with an unknown member, a missing value or a bad amount fails and
  writes nothing; its reason goes to the failure dump (``_Error_1_``);
- empty lines are skipped and not counted; a row whose fields are all blank is
  counted as ignored;
- all writes land at once when the task completes; a cancelled task writes
  nothing.

A file that cannot be read (not UTF-8, not CSV, no header, a mapped column
missing) fails the task entirely: ``successful`` is false and nothing is written.
"""

from __future__ import annotations

import csv
import io
import math
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from system_apis.connectors.anaplan.sandbox.catalog import IMPORT_ID, IMPORT_NAME, MODEL_NAME
from system_apis.connectors.anaplan.sandbox.tasks import result_details

if TYPE_CHECKING:
    from system_apis.connectors.anaplan.sandbox.faults import Faults
    from system_apis.connectors.anaplan.sandbox.model import CellKey, PlanningList, PlanningModel
    from system_apis.connectors.anaplan.sandbox.tasks import SandboxTask

__all__ = ("BATCH_ROWS", "COLUMNS", "ERROR_COLUMN", "INJECTED_FAILURE", "run_import")

COLUMNS = ("Entity", "Account", "Cost Centre", "Time", "Amount")
"""The mapped columns, found by their header."""
ERROR_COLUMN = "_Error_1_"
"""The failure dump's extra last column: why the row failed."""
INJECTED_FAILURE = "Injected failure (sandbox fault: failed_rows)"
"""The reason of a row failed by the ``failed_rows`` fault."""
BATCH_ROWS = 5000
"""Rows checked between two checkpoints (progress, cancel, yield to the event loop)."""
_AMOUNT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class _ImportFailedError(Exception):
    """The file cannot be imported at all."""


def _read(content: bytes) -> tuple[list[str], dict[str, int], list[list[str]]]:
    """The header, each mapped column's index, and the data records (empty lines dropped).

    Raises:
        _ImportFailedError: the file is empty, not UTF-8, not CSV, or lacks a mapped column.
    """
    if not content:
        raise _ImportFailedError("the import file is empty (nothing was uploaded)")
    try:
        text = content.decode("utf-8-sig")
        records = list(csv.reader(io.StringIO(text, newline="")))
    except UnicodeDecodeError as exc:
        raise _ImportFailedError(
            f"the import file is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    except csv.Error as exc:
        raise _ImportFailedError(f"the import file is not valid CSV: {exc}") from exc
    if not records or not records[0]:
        raise _ImportFailedError("the import file has no header row")
    header = records[0]
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        columns.setdefault(name.strip(), index)
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise _ImportFailedError(f"the import file has no column {', '.join(missing)} in its header row")
    return header, columns, [record for record in records[1:] if record]


def _dump(header: list[str], failures: list[tuple[list[str], str]]) -> bytes:
    """The failure dump: the header, then each failed row as uploaded with its reason in a last column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*header, ERROR_COLUMN])
    writer.writerows([*record, reason] for record, reason in failures)
    return buffer.getvalue().encode("utf-8")


class _RowReader:
    """Turns one data record into the cell it writes and its amount, or the reason it fails."""

    def __init__(self, columns: dict[str, int], model: PlanningModel, faults: Faults) -> None:
        """Look-ups for the mapped ``columns`` of a file, against ``model``; row faults from ``faults``."""
        self._dimensions: list[tuple[int, str, PlanningList]] = [
            (columns["Entity"], "Entity", model.entities),
            (columns["Account"], "Account", model.accounts),
            (columns["Cost Centre"], "Cost Centre", model.cost_centres),
        ]
        self._time = columns["Time"]
        self._amount = columns["Amount"]
        self._months = model.month_index
        self._faults = faults

    def read(self, record: list[str]) -> tuple[CellKey, Decimal] | str:  # noqa: PLR0911 - a return per reason
        """The cell and amount of ``record``, or why it fails (the dump's ``_Error_1_``)."""
        width = len(record)
        ids: list[str] = []
        for column, column_name, members in self._dimensions:
            if column >= width:
                return f"Missing value for column {column_name}"
            item = members.find(record[column])
            if item is None:
                return f"Item not found in {members.name}: {record[column]}"
            ids.append(item.id)
        if self._time >= width:
            return "Missing value for column Time"
        month = self._months.get(record[self._time])
        if month is None:
            return f"Item not found in Time: {record[self._time]}"
        if self._amount >= width:
            return "Missing value for column Amount"
        amount = record[self._amount]
        if not _AMOUNT.fullmatch(amount):
            return f"Invalid number: {amount}"
        if self._faults.fail_row():
            return INJECTED_FAILURE
        return (ids[0], ids[1], ids[2], month), Decimal(amount)


def _result(created: int, updated: int, failed: int, ignored: int) -> dict[str, Any]:
    """The task's result: successful (the file was read), with the row counts."""
    successful = created + updated
    message = (
        f"{MODEL_NAME} - {IMPORT_NAME}: {successful} (0/{successful}) rows successful, "
        f"{failed} failed, {ignored} ignored"
    )
    return {
        "successful": True,
        "failureDumpAvailable": failed > 0,
        "objectId": IMPORT_ID,
        "details": result_details(
            message,
            "hierarchyRowsProcessedWithFailures" if failed else "hierarchyRowsProcessed",
            successRowCount=successful,
            failedCount=failed,
            ignoredCount=ignored,
            totalRowCount=successful + failed + ignored,
            createdCount=created,
            updatedCount=updated,
        ),
    }


async def run_import(
    task: SandboxTask, content: bytes, version: str, model: PlanningModel, faults: Faults
) -> None:
    """Import ``content`` into ``version`` of ``model``, reporting on ``task``; writes land only at the end."""
    delay = faults.task_delay()
    try:
        header, columns, records = _read(content)
    except _ImportFailedError as exc:
        await task.advance(0.0, delay)
        task.fail(str(exc))
        return
    reader = _RowReader(columns, model, faults)
    existing = model.cells[version]
    pending: dict[CellKey, Decimal] = {}
    failures: list[tuple[list[str], str]] = []
    created = updated = ignored = 0
    batches = max(1, math.ceil(len(records) / BATCH_ROWS))
    for batch in range(batches):
        await task.advance(batch / batches, delay / batches)
        for record in records[batch * BATCH_ROWS : (batch + 1) * BATCH_ROWS]:
            if not any(field.strip() for field in record):
                ignored += 1
                continue
            outcome = reader.read(record)
            if isinstance(outcome, str):
                failures.append((record, outcome))
                continue
            key, amount = outcome
            if key in pending or key in existing:
                updated += 1
            else:
                created += 1
            pending[key] = amount
    # The last checkpoint: after it, nothing awaits until the writes and the result are in place.
    await task.advance((batches - 0.5) / batches)
    existing.update(pending)
    task.complete(
        _result(created, updated, len(failures), ignored), _dump(header, failures) if failures else None
    )
