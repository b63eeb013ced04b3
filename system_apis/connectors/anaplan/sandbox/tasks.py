"""The task lifecycle imports and exports share: states, progress, cancel, results, and how fast clients poll.

A task goes ``NOT_STARTED`` → ``IN_PROGRESS`` → ``COMPLETE``, or, once
cancelled, → ``CANCELLING`` → ``CANCELLED``. Its work runs as an asyncio task
in the app's process; it reports progress at checkpoints
(:meth:`SandboxTask.advance`), where it also yields to the event loop, so polls
see progress on big files and a cancel takes effect. Work writes nothing until
its last step, which runs without yielding: a task either writes everything or,
cancelled, nothing.

While any task is not finished the model is busy (409 to other task starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from system_apis.connectors.anaplan.sandbox.catalog import MODEL_NAME
from system_apis.connectors.anaplan.sandbox.errors import UnknownObjectError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = (
    "HISTORY",
    "SandboxTask",
    "TaskBoard",
    "TaskCancelledError",
    "TaskKind",
    "TaskState",
    "result_details",
)

logger = logging.getLogger("finsync.planning_sandbox.tasks")

TaskState = Literal["NOT_STARTED", "IN_PROGRESS", "COMPLETE", "CANCELLING", "CANCELLED"]
"""Anaplan's task states."""
TaskKind = Literal["imports", "exports"]
"""Which action a task runs, as the URL names it."""
HISTORY = 200
"""Finished tasks kept per action (oldest dropped first), so a long-running sandbox does not grow forever."""
_UNFINISHED: tuple[TaskState, ...] = ("NOT_STARTED", "IN_PROGRESS", "CANCELLING")


class TaskCancelledError(Exception):
    """Raised at a checkpoint of a task whose cancel was asked for."""


def result_details(message: str, detail_type: str, **values: int) -> list[dict[str, Any]]:
    """A result's ``details``: one entry whose ``values`` alternate key and value, all strings."""
    flat = [text for key, value in values.items() for text in (key, str(value))]
    return [{"localMessageText": message, "type": detail_type, "values": flat}]


class SandboxTask:
    """One run of an import or an export."""

    def __init__(self, kind: TaskKind, action_id: str, action_name: str) -> None:
        """A task of action ``action_id``, not started yet."""
        self.task_id = uuid.uuid4().hex.upper()
        """32 hex digits, like Anaplan's."""
        self.kind: TaskKind = kind
        """Import or export."""
        self.action_id = action_id
        """The import's or export's id (the result's ``objectId``)."""
        self.action_name = action_name
        """Its name, for result messages."""
        self.state: TaskState = "NOT_STARTED"
        """Where it is."""
        self.progress = 0.0
        """0.0 to 1.0."""
        self.current_step = "Queued."
        """What it is doing, in words."""
        self.creation_time = int(time.time() * 1000)
        """Epoch milliseconds."""
        self.result: dict[str, Any] | None = None
        """Set when it completes or is cancelled."""
        self.dump: bytes | None = None
        """An import's failed rows (CSV), when some failed."""
        self.last_poll: float | None = None
        """Monotonic time of the last poll that was answered."""
        self._cancel = asyncio.Event()

    @property
    def finished(self) -> bool:
        """Complete or cancelled."""
        return self.state not in _UNFINISHED

    def summary(self) -> dict[str, Any]:
        """The task as a task start and a task listing show it."""
        return {"taskId": self.task_id, "taskState": self.state, "creationTime": self.creation_time}

    def detail(self) -> dict[str, Any]:
        """The task as a poll shows it; ``result`` once complete or cancelled."""
        detail: dict[str, Any] = {
            "taskId": self.task_id,
            "currentStep": self.current_step,
            "progress": round(self.progress, 4),
            "taskState": self.state,
            "creationTime": self.creation_time,
        }
        if self.result is not None:
            detail["result"] = self.result
        return detail

    def too_soon(self, min_interval: float) -> int | None:
        """Seconds to wait when this poll comes closer than ``min_interval`` to the last answered one, else ``None``.

        A refused poll does not count as answered, so a client that waits the
        ``Retry-After`` it got is answered next time.
        """
        now = time.monotonic()
        if self.last_poll is not None and min_interval > 0:
            remaining = min_interval - (now - self.last_poll)
            if remaining > 0:
                return max(1, math.ceil(remaining))
        self.last_poll = now
        return None

    def cancel(self) -> None:
        """Ask an unfinished task to stop; it is ``CANCELLING`` until its work reaches a checkpoint."""
        if self.finished or self.state == "CANCELLING":
            return
        self.state = "CANCELLING"
        self.current_step = "Cancelling."
        self._cancel.set()

    async def advance(self, progress: float, pause: float = 0.0) -> None:
        """A checkpoint: report ``progress``, wait ``pause`` seconds (or yield once), stop if cancelled.

        Raises:
            TaskCancelledError: a cancel was asked for, before or during the pause.
        """
        if self._cancel.is_set():
            raise TaskCancelledError
        self.progress = max(self.progress, min(progress, 1.0))
        if pause > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancel.wait(), pause)
        else:
            await asyncio.sleep(0)
        if self._cancel.is_set():
            raise TaskCancelledError

    def complete(self, result: dict[str, Any], dump: bytes | None = None) -> None:
        """Finish with ``result``; call it right after the work's writes, with no ``await`` in between."""
        self.result = result
        self.dump = dump
        self.progress = 1.0
        self.state = "COMPLETE"
        self.current_step = "Complete."

    def fail(self, message: str) -> None:
        """Finish as a task that failed entirely (``successful`` false), having written nothing."""
        self.complete(
            {
                "successful": False,
                "failureDumpAvailable": False,
                "objectId": self.action_id,
                "details": result_details(f"{MODEL_NAME} - {self.action_name}: {message}", "taskFailed"),
            }
        )

    def cancelled(self) -> None:
        """Finish as cancelled: rolled back, nothing written."""
        self.result = {
            "successful": False,
            "failureDumpAvailable": False,
            "objectId": self.action_id,
            "details": result_details(
                f"{MODEL_NAME} - {self.action_name}: cancelled; rolled back, nothing was written",
                "taskCancelled",
            ),
        }
        self.state = "CANCELLED"
        self.current_step = "Cancelled."


class TaskBoard:
    """Every task of the model, by action, and the asyncio tasks running their work."""

    def __init__(self) -> None:
        """No tasks."""
        self._tasks: dict[str, dict[str, SandboxTask]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def busy(self) -> bool:
        """Whether a task is unfinished on the model."""
        return any(not task.finished for tasks in self._tasks.values() for task in tasks.values())

    def start(
        self,
        kind: TaskKind,
        action_id: str,
        action_name: str,
        work: Callable[[SandboxTask], Awaitable[None]],
    ) -> SandboxTask:
        """A new task of ``action_id`` whose ``work`` runs in the background, on this process's event loop."""
        task = SandboxTask(kind, action_id, action_name)
        tasks = self._tasks.setdefault(action_id, {})
        tasks[task.task_id] = task
        finished = [key for key, old in tasks.items() if old.finished]
        for key in finished[: max(0, len(tasks) - HISTORY)]:
            del tasks[key]
        # Kept in a set: the event loop holds only weak references to tasks.
        handle = asyncio.get_running_loop().create_task(self._run(task, work), name=f"sandbox-{task.task_id}")
        self._running.add(handle)
        handle.add_done_callback(self._running.discard)
        return task

    @staticmethod
    async def _run(task: SandboxTask, work: Callable[[SandboxTask], Awaitable[None]]) -> None:
        """Run ``work`` as ``task``: IN_PROGRESS, then whatever the work or a cancel makes of it."""
        try:
            await task.advance(0.0)
            task.state = "IN_PROGRESS"
            task.current_step = "Importing." if task.kind == "imports" else "Exporting."
            await work(task)
        except TaskCancelledError:
            task.cancelled()
        except Exception:
            # A sandbox bug must not leave a task IN_PROGRESS forever: the client would poll it until it gives up.
            logger.exception("task %s of %s failed", task.task_id, task.action_name)
            task.fail("internal error in the sandbox")

    def tasks(self, action_id: str) -> list[SandboxTask]:
        """Every kept task of an action, oldest first."""
        return list(self._tasks.get(action_id, {}).values())

    def find(self, action_id: str, task_id: str) -> SandboxTask:
        """The task ``task_id`` of action ``action_id``.

        Raises:
            UnknownObjectError: there is no such task.
        """
        task = self._tasks.get(action_id, {}).get(task_id)
        if task is None:
            raise UnknownObjectError(f"task {task_id} not found")
        return task

    async def close(self) -> None:
        """Stop every running task's work (shutdown and reset) and forget every task."""
        running = list(self._running)
        for handle in running:
            handle.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._tasks.clear()
