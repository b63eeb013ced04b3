"""What an export task does: write every cell of every version to the export's file, in chunks.

The file is CSV (UTF-8, RFC 4180 line ends) with the header
``Version,Entity,Account,Cost Centre,Time,Amount`` and one row per cell that
holds a value, members by code (by name when an item has no code), time by the
month's name and amounts as plain decimals, sorted in model order: versions as
the API lists them, then each list's order, then months. The content is taken
when the task completes and cut every ``export_chunk_size`` bytes.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from system_apis.connectors.anaplan.sandbox.catalog import EXPORT_ID, EXPORT_NAME, MODEL_NAME
from system_apis.connectors.anaplan.sandbox.files import split_chunks
from system_apis.connectors.anaplan.sandbox.tasks import result_details

if TYPE_CHECKING:
    from system_apis.connectors.anaplan.sandbox.faults import Faults
    from system_apis.connectors.anaplan.sandbox.files import SandboxFile
    from system_apis.connectors.anaplan.sandbox.model import PlanningModel
    from system_apis.connectors.anaplan.sandbox.tasks import SandboxTask

__all__ = ("EXPORT_HEADER", "render_export", "run_export")

EXPORT_HEADER = ("Version", "Entity", "Account", "Cost Centre", "Time", "Amount")
"""The export file's header row."""
_STEPS = 10
"""Checkpoints a slowed export spreads its delay over, so polls see progress."""


def render_export(model: PlanningModel) -> tuple[bytes, int]:
    """The export file's content and how many cells it holds."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    rows = 0
    for version in model.versions:
        for entity, account, cost_centre, month, amount in model.rows(version.name):
            writer.writerow((version.name, entity, account, cost_centre, month, format(amount, "f")))
            rows += 1
    return buffer.getvalue().encode("utf-8"), rows


async def run_export(
    task: SandboxTask, model: PlanningModel, file: SandboxFile, chunk_size: int, faults: Faults
) -> None:
    """Export every cell of ``model`` into ``file``, reporting on ``task``."""
    delay = faults.task_delay()
    steps = _STEPS if delay else 1
    for step in range(steps):
        await task.advance(step / steps, delay / steps)
    content, rows = render_export(model)
    file.chunks = split_chunks(content, chunk_size)
    task.complete(
        {
            "successful": True,
            "failureDumpAvailable": False,
            "objectId": EXPORT_ID,
            "details": result_details(
                f"{MODEL_NAME} - {EXPORT_NAME}: {rows} rows exported", "exportSucceeded", rowCount=rows
            ),
        }
    )
