"""The ``/2/0`` routes: workspaces, models, versions, time, lists, files, imports and exports, as Anaplan serves them.

Before any handler runs, :func:`_guard` counts the request, draws the injected
faults (a faulted request does nothing else) and checks the
``AnaplanAuthToken``. Handlers raise :class:`~.errors.SandboxError`; the app
turns it into the status envelope.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, Router, delete, get, post, put

from system_apis.connectors.anaplan.sandbox.catalog import (
    EXPORT_ID,
    EXPORT_NAME,
    IMPORT_FILE_ID,
    IMPORT_ID,
    IMPORT_NAME,
    MODEL_ID,
    MODEL_NAME,
    WORKSPACE_ID,
    WORKSPACE_NAME,
    WORKSPACE_SIZE_ALLOWANCE,
)
from system_apis.connectors.anaplan.sandbox.errors import (
    InvalidRequestError,
    ModelBusyError,
    UnknownObjectError,
)
from system_apis.connectors.anaplan.sandbox.exporting import run_export
from system_apis.connectors.anaplan.sandbox.files import decode_chunk
from system_apis.connectors.anaplan.sandbox.importing import run_import
from system_apis.connectors.anaplan.sandbox.model import MAX_ITEMS_PER_ADD, PlanningList
from system_apis.connectors.anaplan.sandbox.responses import (
    base_url,
    envelope,
    page,
    read_json,
    status_error,
)
from system_apis.connectors.anaplan.sandbox.state import Sandbox, sandbox_of
from system_apis.connectors.anaplan.sandbox.tasks import SandboxTask, TaskKind
from system_apis.connectors.anaplan.sandbox.tokens import token_value
from system_apis.connectors.tryton.seed import FISCAL_YEAR

__all__ = ("integration_router",)

_MODEL = "/workspaces/{ws:str}/models/{m:str}"
_IMPORT_TASKS = _MODEL + "/imports/{action:str}/tasks"
_EXPORT_TASKS = _MODEL + "/exports/{action:str}/tasks"
_BASE_SIZE = 8 * 1024 * 1024
"""A model's reported size without cells."""
_CELL_SIZE = 64
"""Bytes each cell adds to the reported size (a rough figure: only the order of magnitude matters)."""

_IMPORTS = {
    IMPORT_ID: {
        "id": IMPORT_ID,
        "name": IMPORT_NAME,
        "importDataSourceId": IMPORT_FILE_ID,
        "importType": "MODULE_DATA",
    }
}
_EXPORTS = {
    EXPORT_ID: {
        "id": EXPORT_ID,
        "name": EXPORT_NAME,
        "exportType": "TABULAR_MULTI_COLUMN",
        "exportFormat": "text/csv",
        "encoding": "UTF-8",
        "layout": "TABULAR_MULTI_COLUMN",
    }
}
_ACTION_NAMES = {IMPORT_ID: IMPORT_NAME, EXPORT_ID: EXPORT_NAME}


async def _guard(request: Request[Any, Any, Any]) -> Response[bytes] | None:
    """Count the request, answer an injected fault instead of serving it, and require a live token."""
    sandbox = sandbox_of(request)
    sandbox.counters.requests += 1
    fault = sandbox.faults.request_fault()
    if fault == 429:
        return status_error(
            429,
            "Too many requests (sandbox fault: rate_429)",
            {"Retry-After": str(sandbox.faults.config.retry_after)},
        )
    if fault is not None:
        return status_error(fault, f"Server error {fault} (sandbox fault: rate_5xx)")
    if sandbox.tokens.valid(token_value(request.headers.get("authorization"))) is None:
        sandbox.counters.unauthorized += 1
        return status_error(401, "Authentication failed: the AnaplanAuthToken is missing, unknown or expired")
    return None


def _workspace(sandbox: Sandbox, ws: str) -> dict[str, Any]:
    """The workspace ``ws`` as the API shows it; 404 for any other id."""
    if ws != WORKSPACE_ID:
        raise UnknownObjectError(f"workspace {ws} not found")
    return {
        "id": WORKSPACE_ID,
        "name": WORKSPACE_NAME,
        "active": True,
        "sizeAllowance": WORKSPACE_SIZE_ALLOWANCE,
        "currentSize": _BASE_SIZE + _CELL_SIZE * sandbox.model.cell_count(),
    }


def _model(request: Request[Any, Any, Any], ws: str, m: str) -> dict[str, Any]:
    """The model ``m`` of workspace ``ws`` as the API shows it; 404 for any other id."""
    _workspace(sandbox_of(request), ws)
    if m != MODEL_ID:
        raise UnknownObjectError(f"model {m} not found in workspace {ws}")
    return {
        "id": MODEL_ID,
        "name": MODEL_NAME,
        "activeState": "UNLOCKED",
        "currentWorkspaceId": WORKSPACE_ID,
        "currentWorkspaceName": WORKSPACE_NAME,
        "modelUrl": f"{base_url(request)}/2/0/workspaces/{WORKSPACE_ID}/models/{MODEL_ID}",
        "categoryValues": [],
    }


def _model_only(m: str) -> None:
    """The transactional API names the model without its workspace."""
    if m != MODEL_ID:
        raise UnknownObjectError(f"model {m} not found")


def _ensure_idle(sandbox: Sandbox) -> None:
    """Raise 409 when the busy fault holds the model or a task is unfinished on it."""
    if sandbox.faults.busy():
        raise ModelBusyError("The model is busy (sandbox fault: busy_seconds); try again later")
    if sandbox.tasks.busy():
        sandbox.counters.model_busy += 1
        raise ModelBusyError("The model is busy: a task is running on it; try again when it has finished")


def _chunk_index(n: str) -> int:
    """A chunk index from the path; 400 unless it is a non-negative integer."""
    if not n.isdigit() or not n.isascii():
        raise InvalidRequestError(f"a chunk index is a non-negative integer, got {n!r}")
    return int(n)


def _locale(body: dict[str, Any]) -> None:
    """Require ``localeName`` in a task start's body."""
    locale = body.get("localeName")
    if not isinstance(locale, str) or not locale:
        raise InvalidRequestError("localeName is required, e.g. en_US")


# Workspaces and models


@get("/workspaces")
async def list_workspaces(request: Request[Any, Any, Any]) -> Response[bytes]:
    """``workspaces``: the one workspace."""
    items, paging = page(request, [_workspace(sandbox_of(request), WORKSPACE_ID)])
    return envelope(request, "workspace", {"workspaces": items}, paging=paging)


@get("/workspaces/{ws:str}")
async def get_workspace(request: Request[Any, Any, Any], ws: str) -> Response[bytes]:
    """``workspace``."""
    return envelope(request, "workspace", {"workspace": _workspace(sandbox_of(request), ws)})


@get("/workspaces/{ws:str}/models")
async def list_models(request: Request[Any, Any, Any], ws: str) -> Response[bytes]:
    """``models``: the one model."""
    items, paging = page(request, [_model(request, ws, MODEL_ID)])
    return envelope(request, "model", {"models": items}, paging=paging)


@get(_MODEL)
async def get_model(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """``model``."""
    return envelope(request, "model", {"model": _model(request, ws, m)})


@post(_MODEL + "/status")
async def model_status(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """``requestStatus`` of an idle model; 409 when it is busy."""
    _model(request, ws, m)
    _ensure_idle(sandbox_of(request))
    status = {"currentStep": "Open.", "progress": -1.0, "creationTime": _now_ms()}
    return envelope(request, "modelStatus", {"requestStatus": status})


def _now_ms() -> int:
    """Now, in epoch milliseconds."""
    return int(time.time() * 1000)


# Versions and time (transactional API)


@get("/models/{m:str}/versions")
async def list_versions(request: Request[Any, Any, Any], m: str) -> Response[bytes]:
    """``versionMetadata``: Actual, Budget, Forecast."""
    _model_only(m)
    versions = [
        {
            "id": version.id,
            "name": version.name,
            "isActual": version.is_actual,
            "isCurrent": version.is_current,
            "editFrom": None,
            "editTo": None,
        }
        for version in sandbox_of(request).model.versions
    ]
    return envelope(request, "version", {"versionMetadata": versions})


def _calendar(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The model calendar: calendar months of the ERP seed's fiscal year."""
    calendar = {
        "calendarType": "Calendar Months/Quarters/Years",
        "fiscalYear": {
            "year": f"FY{FISCAL_YEAR % 100:02d}",
            "startDate": f"{FISCAL_YEAR}-01-01",
            "endDate": f"{FISCAL_YEAR}-12-31",
        },
    }
    return envelope(request, "modelCalendar", {"modelCalendar": calendar})


@get("/models/{m:str}/modelCalendar")
async def model_calendar(request: Request[Any, Any, Any], m: str) -> Response[bytes]:
    """``modelCalendar``: calendar months of FY26."""
    _model_only(m)
    return _calendar(request)


@get(_MODEL + "/modelCalendar")
async def workspace_model_calendar(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """The same, at the path Anaplan documents for the model calendar."""
    _model(request, ws, m)
    return _calendar(request)


# Lists


@get(_MODEL + "/lists")
async def list_lists(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """``lists``: entities, accounts, cost centres."""
    _model(request, ws, m)
    lists = [{"id": item.id, "name": item.name} for item in sandbox_of(request).model.lists.values()]
    items, paging = page(request, lists)
    return envelope(request, "list", {"lists": items}, paging=paging)


def _list(request: Request[Any, Any, Any], ws: str, m: str, list_id: str) -> PlanningList:
    """The list ``list_id`` of the model; 404 for an unknown one."""
    _model(request, ws, m)
    found = sandbox_of(request).model.lists.get(list_id)
    if found is None:
        raise UnknownObjectError(f"list {list_id} not found")
    return found


@get(_MODEL + "/lists/{list_id:str}/items")
async def list_items(request: Request[Any, Any, Any], ws: str, m: str, list_id: str) -> Response[bytes]:
    """``listItems`` of one list, paged."""
    members = _list(request, ws, m, list_id)
    rows = [
        {
            "id": item.id,
            "name": item.name,
            "code": item.code,
            "parent": item.parent,
            "parentId": item.parent_id,
            "listId": members.id,
            "listName": members.name,
        }
        for item in members.items
    ]
    items, paging = page(request, rows)
    return envelope(request, "listItem", {"listItems": items}, paging=paging)


@post(_MODEL + "/lists/{list_id:str}/items")
async def add_list_items(request: Request[Any, Any, Any], ws: str, m: str, list_id: str) -> Response[bytes]:
    """``?action=add``: add items whose code is new; answers added, ignored, total and failures."""
    members = _list(request, ws, m, list_id)
    if request.query_params.get("action") != "add":
        raise InvalidRequestError("this endpoint takes action=add")
    body = await read_json(request)
    requested = body.get("items")
    if not isinstance(requested, list):
        raise InvalidRequestError('the body is {"items": [...]}')
    if len(requested) > MAX_ITEMS_PER_ADD:
        raise InvalidRequestError(f"at most {MAX_ITEMS_PER_ADD} items per request, got {len(requested)}")
    return envelope(request, "listItemResult", members.add_items(requested))


# Files


@get(_MODEL + "/files")
async def list_files(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """``files``: the import's data source and the export's output."""
    _model(request, ws, m)
    items, paging = page(request, [file.info() for file in sandbox_of(request).files.values()])
    return envelope(request, "file", {"files": items}, paging=paging)


@post(_MODEL + "/files/{file_id:str}")
async def start_upload(request: Request[Any, Any, Any], ws: str, m: str, file_id: str) -> Response[bytes]:
    """``{"chunkCount": -1}`` (or a count) starts a new upload; staged chunks are dropped."""
    _model(request, ws, m)
    file = sandbox_of(request).file(file_id)
    body = await read_json(request)
    count = body.get("chunkCount", -1)
    if not isinstance(count, int) or isinstance(count, bool):
        raise InvalidRequestError("chunkCount is an integer: -1, or how many chunks follow")
    file.start_upload(count)
    return envelope(request, "file", {"file": file.info(chunk_count=count)})


@put(_MODEL + "/files/{file_id:str}")
async def upload_whole_file(
    request: Request[Any, Any, Any], ws: str, m: str, file_id: str
) -> Response[bytes]:
    """The whole file in one body (Anaplan's single-chunk upload)."""
    _model(request, ws, m)
    sandbox = sandbox_of(request)
    file = sandbox.file(file_id)
    file.upload_whole(decode_chunk(await request.body(), request.headers.get("content-type")))
    sandbox.counters.chunks_uploaded += 1
    return Response(content=b"", status_code=204)


@put(_MODEL + "/files/{file_id:str}/chunks/{n:str}")
async def upload_chunk(
    request: Request[Any, Any, Any], ws: str, m: str, file_id: str, n: str
) -> Response[bytes]:
    """Stage chunk ``n`` (octet-stream, or gzip which is stored gunzipped)."""
    _model(request, ws, m)
    sandbox = sandbox_of(request)
    file = sandbox.file(file_id)
    index = _chunk_index(n)
    file.put_chunk(index, decode_chunk(await request.body(), request.headers.get("content-type")))
    sandbox.counters.chunks_uploaded += 1
    return Response(content=b"", status_code=204)


@post(_MODEL + "/files/{file_id:str}/complete")
async def complete_upload(request: Request[Any, Any, Any], ws: str, m: str, file_id: str) -> Response[bytes]:
    """The staged chunks become the file's content."""
    _model(request, ws, m)
    file = sandbox_of(request).file(file_id)
    body = await read_json(request)
    if body.get("id", file_id) != file_id:
        raise InvalidRequestError(f"the body's id {body.get('id')!r} is not the file's id {file_id}")
    file.complete()
    return envelope(request, "file", {"file": file.info()})


@get(_MODEL + "/files/{file_id:str}/chunks")
async def list_chunks(request: Request[Any, Any, Any], ws: str, m: str, file_id: str) -> Response[bytes]:
    """``chunks`` of the file's content."""
    _model(request, ws, m)
    file = sandbox_of(request).file(file_id)
    chunks = [{"id": str(index), "name": f"Chunk {index}"} for index in range(len(file.chunks))]
    items, paging = page(request, chunks)
    return envelope(request, "chunk", {"chunks": items}, paging=paging)


@get(_MODEL + "/files/{file_id:str}/chunks/{n:str}")
async def download_chunk(
    request: Request[Any, Any, Any], ws: str, m: str, file_id: str, n: str
) -> Response[bytes]:
    """One chunk's bytes."""
    _model(request, ws, m)
    file = sandbox_of(request).file(file_id)
    index = _chunk_index(n)
    if index >= len(file.chunks):
        raise UnknownObjectError(f"chunk {index} not found: {file.name} has {len(file.chunks)} chunks")
    return Response(content=file.chunks[index], media_type="application/octet-stream")


# Imports and exports


@get(_MODEL + "/imports")
async def list_imports(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """``imports``: the one import."""
    _model(request, ws, m)
    items, paging = page(request, list(_IMPORTS.values()))
    return envelope(request, "import", {"imports": items}, paging=paging)


@get(_MODEL + "/exports")
async def list_exports(request: Request[Any, Any, Any], ws: str, m: str) -> Response[bytes]:
    """``exports``: the one export."""
    _model(request, ws, m)
    items, paging = page(request, list(_EXPORTS.values()))
    return envelope(request, "export", {"exports": items}, paging=paging)


def _action(request: Request[Any, Any, Any], ws: str, m: str, kind: TaskKind, action: str) -> None:
    """Check the model and that ``action`` is its import (or export); 404 otherwise."""
    _model(request, ws, m)
    if action not in (_IMPORTS if kind == "imports" else _EXPORTS):
        raise UnknownObjectError(f"{kind[:-1]} {action} not found")


def _version_parameter(sandbox: Sandbox, body: dict[str, Any]) -> str:
    """The ``Version`` mapping parameter's version name (the import writes into that version).

    Raises:
        InvalidRequestError: the parameters are malformed, another entity type is named, or the version is
            missing or unknown.
    """
    parameters = body.get("mappingParameters", [])
    if not isinstance(parameters, list):
        raise InvalidRequestError("mappingParameters is a list of {entityType, entityName}")
    version: str | None = None
    for parameter in parameters:
        if not isinstance(parameter, dict):
            raise InvalidRequestError("mappingParameters is a list of {entityType, entityName}")
        entity_type, entity_name = parameter.get("entityType"), parameter.get("entityName")
        if entity_type != "Version":
            raise InvalidRequestError(
                f"the import has no mapping parameter {entity_type!r}; it takes Version"
            )
        if not isinstance(entity_name, str) or sandbox.model.version(entity_name) is None:
            raise InvalidRequestError(f"unknown version {entity_name!r} for mapping parameter Version")
        version = entity_name
    if version is None:
        raise InvalidRequestError("the import needs the mapping parameter Version (entityType Version)")
    return version


@post(_IMPORT_TASKS)
async def start_import(request: Request[Any, Any, Any], ws: str, m: str, action: str) -> Response[bytes]:
    """Start an import of the data source's last completed content into the mapped version."""
    _action(request, ws, m, "imports", action)
    sandbox = sandbox_of(request)
    body = await read_json(request)
    _locale(body)
    version = _version_parameter(sandbox, body)
    _ensure_idle(sandbox)
    # The content is taken now: an upload that starts while the task runs does not change what it reads.
    content = sandbox.file(IMPORT_FILE_ID).content
    model, faults = sandbox.model, sandbox.faults

    async def work(task: SandboxTask) -> None:
        """The import, run as the task."""
        await run_import(task, content, version, model, faults)

    task = sandbox.tasks.start("imports", action, _ACTION_NAMES[action], work)
    sandbox.counters.tasks_started["imports"] += 1
    return envelope(request, "task", {"task": task.summary()})


@post(_EXPORT_TASKS)
async def start_export(request: Request[Any, Any, Any], ws: str, m: str, action: str) -> Response[bytes]:
    """Start an export of every cell into the export's file."""
    _action(request, ws, m, "exports", action)
    sandbox = sandbox_of(request)
    _locale(await read_json(request))
    _ensure_idle(sandbox)
    model, faults, file = sandbox.model, sandbox.faults, sandbox.file(action)
    chunk_size = sandbox.config.export_chunk_size

    async def work(task: SandboxTask) -> None:
        """The export, run as the task."""
        await run_export(task, model, file, chunk_size, faults)

    task = sandbox.tasks.start("exports", action, _ACTION_NAMES[action], work)
    sandbox.counters.tasks_started["exports"] += 1
    return envelope(request, "task", {"task": task.summary()})


def _list_tasks(request: Request[Any, Any, Any], action: str) -> Response[bytes]:
    """The tasks of an action, paged."""
    rows = [task.summary() for task in sandbox_of(request).tasks.tasks(action)]
    items, paging = page(request, rows)
    return envelope(request, "task", {"tasks": items}, paging=paging)


def _poll(request: Request[Any, Any, Any], action: str, task_id: str) -> Response[bytes]:
    """A task poll: 429 with ``Retry-After`` when it comes too soon after the last answered one."""
    sandbox = sandbox_of(request)
    task = sandbox.tasks.find(action, task_id)
    wait = task.too_soon(sandbox.min_poll_interval)
    if wait is not None:
        sandbox.counters.polls_too_fast += 1
        return status_error(
            429,
            f"Too many requests: poll a task at most once every {sandbox.min_poll_interval:g}s",
            {"Retry-After": str(wait)},
        )
    return envelope(request, "task", {"task": task.detail()})


def _cancel(request: Request[Any, Any, Any], action: str, task_id: str) -> Response[bytes]:
    """Cancel a task and answer it as it is now (CANCELLING, or finished already)."""
    task = sandbox_of(request).tasks.find(action, task_id)
    task.cancel()
    return envelope(request, "task", {"task": task.detail()})


@get(_IMPORT_TASKS)
async def list_import_tasks(request: Request[Any, Any, Any], ws: str, m: str, action: str) -> Response[bytes]:
    """``tasks`` of the import."""
    _action(request, ws, m, "imports", action)
    return _list_tasks(request, action)


@get(_EXPORT_TASKS)
async def list_export_tasks(request: Request[Any, Any, Any], ws: str, m: str, action: str) -> Response[bytes]:
    """``tasks`` of the export."""
    _action(request, ws, m, "exports", action)
    return _list_tasks(request, action)


@get(_IMPORT_TASKS + "/{task_id:str}")
async def poll_import(
    request: Request[Any, Any, Any], ws: str, m: str, action: str, task_id: str
) -> Response[bytes]:
    """The import task's state, progress and, once finished, result."""
    _action(request, ws, m, "imports", action)
    return _poll(request, action, task_id)


@get(_EXPORT_TASKS + "/{task_id:str}")
async def poll_export(
    request: Request[Any, Any, Any], ws: str, m: str, action: str, task_id: str
) -> Response[bytes]:
    """The export task's state, progress and, once finished, result."""
    _action(request, ws, m, "exports", action)
    return _poll(request, action, task_id)


@delete(_IMPORT_TASKS + "/{task_id:str}", status_code=200)
async def cancel_import(
    request: Request[Any, Any, Any], ws: str, m: str, action: str, task_id: str
) -> Response[bytes]:
    """Cancel the import task: CANCELLING, then CANCELLED with nothing written."""
    _action(request, ws, m, "imports", action)
    return _cancel(request, action, task_id)


@delete(_EXPORT_TASKS + "/{task_id:str}", status_code=200)
async def cancel_export(
    request: Request[Any, Any, Any], ws: str, m: str, action: str, task_id: str
) -> Response[bytes]:
    """Cancel the export task: CANCELLING, then CANCELLED with the file unchanged."""
    _action(request, ws, m, "exports", action)
    return _cancel(request, action, task_id)


@get(_IMPORT_TASKS + "/{task_id:str}/dump")
async def failure_dump(
    request: Request[Any, Any, Any], ws: str, m: str, action: str, task_id: str
) -> Response[bytes]:
    """The import's failed rows as CSV, each with its reason in ``_Error_1_``."""
    _action(request, ws, m, "imports", action)
    task = sandbox_of(request).tasks.find(action, task_id)
    if task.dump is None:
        raise UnknownObjectError(f"task {task_id} has no failure dump")
    return Response(content=task.dump, media_type="text/csv")


def integration_router() -> Router:
    """Every ``/2/0`` route, behind the fault and token guard."""
    return Router(
        path="/2/0",
        before_request=_guard,
        route_handlers=[
            list_workspaces,
            get_workspace,
            list_models,
            get_model,
            model_status,
            list_versions,
            model_calendar,
            workspace_model_calendar,
            list_lists,
            list_items,
            add_list_items,
            list_files,
            start_upload,
            upload_whole_file,
            upload_chunk,
            complete_upload,
            list_chunks,
            download_chunk,
            list_imports,
            list_exports,
            start_import,
            start_export,
            list_import_tasks,
            list_export_tasks,
            poll_import,
            poll_export,
            cancel_import,
            cancel_export,
            failure_dump,
        ],
    )
