"""The ``planning_sandbox`` fixture: the Anaplan-shaped planning sandbox as a real process, for the whole session.

``finsync serve planning-sandbox --fast-polling`` runs on a free loopback port
with a temporary data dir and a password file written here; its budget is
scaled to the ``erp`` fixture's seed (:data:`tests.erp_fixtures.ERP_LINES`)
and its export is cut in small chunks so downloads span several of them.
``sandbox`` is the same process, reset (fresh seeded model, no tokens, faults
off, counters zero) for one test::

    def test_something(sandbox: PlanningSandbox) -> None:
        sandbox.faults(rate_429=0.2, seed=7)
        ...
        assert sandbox.counters()["429"] > 0
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from system_apis.connectors.anaplan.sandbox.catalog import MODEL_ID, WORKSPACE_ID
from tests.erp_fixtures import ERP_LINES
from tests.support import free_port, start_sandbox_process, stop_process_group

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = (
    "EXPORT_CHUNK_SIZE",
    "PlanningSandbox",
    "planning_sandbox",
    "sandbox",
    "start_sandbox",
    "stop_sandbox",
)

EXPORT_CHUNK_SIZE = 16 * 1024
"""Bytes per export chunk in tests: the seeded model's export spans several chunks."""
USER = "integration@finsync.sandbox"
"""The sandbox's login (its default)."""
"""Seconds the sandbox has to answer after start."""


@dataclass
class PlanningSandbox:
    """A running planning sandbox, and helpers over its control API (``/sandbox/...``)."""

    url: str
    """Base URL: the token routes, ``/2/0`` and ``/sandbox`` are all under it."""
    user: str
    """The one login."""
    password: str
    """Its password."""
    password_file: Path
    """The file that holds it (what an ``anaplan`` source's ``password_file`` names)."""
    workspace: str
    """The workspace id."""
    model: str
    """The model id."""
    process: subprocess.Popen[bytes] = field(repr=False)
    """The ``finsync serve planning-sandbox`` process."""
    log: Path = field(repr=False)
    """Its output."""

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        """One control API call; asserts 200 and answers the JSON."""
        response = httpx.request(method, f"{self.url}/sandbox{path}", timeout=10, **kwargs)
        assert response.status_code == 200, f"{method} /sandbox{path}: {response.status_code} {response.text}"
        return response.json()

    def reset(self) -> None:
        """Fresh seeded model, no tokens, no tasks, faults off, counters zero, polling as at start."""
        self._control("POST", "/reset")

    def faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault configuration (``rate_429``, ``rate_5xx``, ``retry_after``, ``busy_seconds``,
        ``task_delay``, ``failed_rows``, ``seed``); fields left out are off. Answers the configuration."""
        answer: dict[str, Any] = self._control("PUT", "/faults", json=config)
        return answer

    def counters(self) -> dict[str, Any]:
        """What happened since start or reset: ``authentications``, ``requests``, ``tasks_started`` by kind,
        ``chunks_uploaded``, ``polls_too_fast``, and the injected faults (``429``, ``5xx``, ``busy``, ...)."""
        answer: dict[str, Any] = self._control("GET", "/counters")
        return answer

    def expire_tokens(self) -> None:
        """Every token expires now."""
        self._control("POST", "/tokens/expire")

    def cells(self, version: str) -> list[dict[str, str]]:
        """A version's cells: ``{entity, account, cost_center, time, amount}`` each, members by code, the
        month by name (``Jan 26``), the amount as a decimal string, in model order."""
        cells: list[dict[str, str]] = self._control("GET", "/cells", params={"version": version})["cells"]
        return cells

    def polling(self, min_interval: float) -> None:
        """Set the minimum interval between two polls of one task (never below the one at start)."""
        self._control("PUT", "/polling", json={"min_interval": min_interval})

    def token(self) -> str:
        """A new token's value (one ``/token/authenticate``)."""
        response = httpx.post(f"{self.url}/token/authenticate", auth=(self.user, self.password), timeout=10)
        assert response.status_code == 201, response.text
        value: str = response.json()["tokenInfo"]["tokenValue"]
        return value


def start_sandbox(tmp: Path, *, fast_polling: bool = True, **environment: str) -> PlanningSandbox:
    """Start ``finsync serve planning-sandbox`` in ``tmp`` and wait until it answers.

    ``environment`` adds ``FINSYNC_*`` variables (``FINSYNC_PLANNING_SANDBOX__TOKEN_LIFETIME="5"``, ...).
    """
    password = secrets.token_urlsafe(16)
    password_file = tmp / "planning-password"
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env.update(
        {
            "FINSYNC_DATA_DIR": str(tmp / "data"),
            "FINSYNC_PLANNING_SANDBOX__PASSWORD_FILE": str(password_file),
            "FINSYNC_PLANNING_SANDBOX__SEED_LINES": str(ERP_LINES),
            "FINSYNC_PLANNING_SANDBOX__EXPORT_CHUNK_SIZE": str(EXPORT_CHUNK_SIZE),
            **environment,
        }
    )
    args = [sys.executable, "-m", "shared.cli", "serve", "planning-sandbox", "--port", str(port)]
    if fast_polling:
        args.append("--fast-polling")
    log = tmp / "planning-sandbox.log"
    url = f"http://127.0.0.1:{port}"
    process = start_sandbox_process("planning sandbox", args, env, log, url)
    return PlanningSandbox(
        url=url,
        user=USER,
        password=password,
        password_file=password_file,
        workspace=WORKSPACE_ID,
        model=MODEL_ID,
        process=process,
        log=log,
    )


def stop_sandbox(sandbox: PlanningSandbox, timeout: float = 10.0) -> None:
    """SIGTERM, wait; SIGKILL to its process group (granian's worker included) if it does not stop."""
    stop_process_group(sandbox.process, timeout)


@pytest.fixture(scope="session")
def planning_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningSandbox]:
    """The planning sandbox, fast polling on, for the whole session (stopped at the end)."""
    running = start_sandbox(tmp_path_factory.mktemp("planning-sandbox"))
    try:
        yield running
    finally:
        stop_sandbox(running)


@pytest.fixture
def sandbox(planning_sandbox: PlanningSandbox) -> PlanningSandbox:
    """The session's planning sandbox, reset for this test."""
    planning_sandbox.reset()
    return planning_sandbox
