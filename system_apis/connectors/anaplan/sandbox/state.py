"""Everything one sandbox holds, in memory, in one object kept on ``app.state.sandbox``.

All state lives in the one worker process: it is lost on restart and
re-created, deterministically, from the seed (:func:`Sandbox.reset` does the
same on demand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from system_apis.connectors.anaplan.sandbox.catalog import (
    EXPORT_FILE_NAME,
    EXPORT_ID,
    IMPORT_FILE_ID,
    IMPORT_FILE_NAME,
)
from system_apis.connectors.anaplan.sandbox.errors import InvalidRequestError, UnknownObjectError
from system_apis.connectors.anaplan.sandbox.faults import Counters, Faults
from system_apis.connectors.anaplan.sandbox.files import SandboxFile
from system_apis.connectors.anaplan.sandbox.seed import seed_model
from system_apis.connectors.anaplan.sandbox.tasks import TaskBoard
from system_apis.connectors.anaplan.sandbox.tokens import TokenStore, password_file, read_password

if TYPE_CHECKING:
    from pathlib import Path

    from litestar import Request

    from shared.settings import Settings

__all__ = ("Sandbox", "SandboxConfig", "sandbox_of")


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """The sandbox's settings, resolved: the password read, the seed size chosen.

    A dataclass rather than a Struct only so the password can stay out of ``repr``.
    """

    user: str
    """The one login."""
    password: str = field(repr=False)
    """Its password."""
    password_file: str
    """Where the password was read from."""
    token_lifetime: int
    """Seconds a token lives."""
    min_poll_interval: float
    """Seconds between two answered polls of one task, at start (0 in fast-polling test mode)."""
    export_chunk_size: int
    """Bytes per chunk of the export's file."""
    seed_lines: int
    """Scale of the seeded budget."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxConfig:
        """Resolve ``settings.planning_sandbox``: read (or generate) the password, default the seed size.

        Raises:
            SettingsError: the password file is missing, unreadable or empty.
        """
        sandbox = settings.planning_sandbox
        path: Path = password_file(settings)
        return cls(
            user=sandbox.user,
            password=read_password(path),
            password_file=str(path),
            token_lifetime=sandbox.token_lifetime,
            min_poll_interval=sandbox.min_poll_interval,
            export_chunk_size=sandbox.export_chunk_size,
            seed_lines=settings.erp.seed_lines if sandbox.seed_lines is None else sandbox.seed_lines,
        )


class Sandbox:
    """The seeded model, its files, tasks and tokens, the faults and the counters."""

    def __init__(self, config: SandboxConfig) -> None:
        """A fresh sandbox."""
        self.config = config
        """Its resolved settings."""
        self._fresh()

    def _fresh(self) -> None:
        """Everything but the configuration, as at start; one definition for start and reset."""
        self.counters = Counters()
        """What happened since start or reset."""
        self.faults = Faults(self.counters)
        """Fault injection."""
        config = self.config
        self.tokens = TokenStore(config.user, config.password, config.token_lifetime)
        """Live tokens."""
        self.model = seed_model(config.seed_lines)
        """The planning model."""
        self.files = {
            IMPORT_FILE_ID: SandboxFile(IMPORT_FILE_ID, IMPORT_FILE_NAME, uploadable=True),
            EXPORT_ID: SandboxFile(EXPORT_ID, EXPORT_FILE_NAME, uploadable=False),
        }
        """The model's files, by id."""
        self.tasks = TaskBoard()
        """Import and export tasks."""
        self.min_poll_interval = config.min_poll_interval
        """Seconds between two answered polls of one task, now."""

    def file(self, file_id: str) -> SandboxFile:
        """The file ``file_id``.

        Raises:
            UnknownObjectError: there is no such file.
        """
        file = self.files.get(file_id)
        if file is None:
            raise UnknownObjectError(f"file {file_id} not found")
        return file

    def set_min_poll_interval(self, seconds: float) -> None:
        """Change the poll interval; never below the one the sandbox started with.

        Fast polling stays a test-mode choice (``--fast-polling`` at start): the
        control API can slow polling down, and speed it up again only that far.

        Raises:
            InvalidRequestError: ``seconds`` is below the starting interval.
        """
        if seconds < self.config.min_poll_interval:
            raise InvalidRequestError(
                f"min_interval is at least {self.config.min_poll_interval:g}s here; "
                "only a sandbox started with --fast-polling accepts faster polling"
            )
        self.min_poll_interval = seconds

    async def reset(self) -> None:
        """Back to the state at start: fresh seeded model, no tokens, no tasks, faults off, counters zero."""
        await self.tasks.close()
        self._fresh()

    async def close(self) -> None:
        """Stop every running task (app shutdown)."""
        await self.tasks.close()


def sandbox_of(request: Request[Any, Any, Any]) -> Sandbox:
    """The sandbox of the app serving ``request``."""
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox
