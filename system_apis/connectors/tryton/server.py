"""The Tryton server process: trytond's WSGI application under granian, owned like the embedded Redis.

Tryton's built-in ``trytond`` server is werkzeug's development server; the WSGI
application (``trytond.application:app``) runs under granian instead, one
worker with a few blocking threads. ``TRYTOND_DATABASE_NAMES`` makes it load
each database's pool at start, so the first JSON-RPC call is not slow, and one
server serves all of them (``POST /<database>/rpc/``).

Ownership: granian runs in a session of its own with a parent-death signal and
writes a pid file; :meth:`TrytonServer.stop` sends SIGTERM, then SIGKILL to its
whole process group (its worker included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.errors import SettingsError
from shared.processes import die_with_parent, pid_alive
from system_apis.connectors.tryton.trytond_conf import TrytonPaths, write_conf

__all__ = ("TrytonServer", "server_version")

STARTUP_TIMEOUT = 60.0
"""Seconds the server has to answer after start (it loads every database's pool first)."""
BLOCKING_THREADS = 4
"""Requests the granian worker serves at once."""


def server_version(url: str, timeout: float = 2.0) -> str | None:
    """Tryton's version from ``common.server.version`` on ``POST {url}/rpc/``, or ``None`` when it does not answer."""
    request: dict[str, Any] = {"id": 0, "method": "common.server.version", "params": []}
    try:
        response = httpx.post(f"{url.rstrip('/')}/rpc/", json=request, timeout=timeout)
        version = response.json().get("result") if response.is_success else None
    except (httpx.HTTPError, ValueError):
        return None
    return version if isinstance(version, str) else None


@dataclass
class TrytonServer:
    """One Tryton server per data dir, serving ``databases`` of one PostgreSQL server over JSON-RPC."""

    data_dir: Path
    """The stack's data dir; configuration, pid file and log live in ``data_dir/tryton``."""
    database_url: str
    """The PostgreSQL server holding the databases."""
    databases: list[str]
    """Databases loaded at start (others are loaded on first use)."""
    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = 8110
    """Port to listen on."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    """The server process, when this object started it."""

    @property
    def paths(self) -> TrytonPaths:
        """The ERP runtime's files."""
        return TrytonPaths(self.data_dir)

    @property
    def pidfile(self) -> Path:
        """Written by granian once it runs."""
        return self.paths.directory / "trytond.pid"

    @property
    def url(self) -> str:
        """Base URL; JSON-RPC is at ``{url}/{database}/rpc/``."""
        return f"http://{self.host}:{self.port}"

    def running_pid(self) -> int | None:
        """Pid of a live server for this data dir that answers JSON-RPC, else ``None``."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid) or server_version(self.url) is None:
            return None
        return pid

    def start(self) -> bool:
        """Start the server unless one already serves this data dir; True when this call started it."""
        if self.running_pid() is not None:
            return False
        paths = self.paths
        conf = write_conf(
            paths.server_conf,
            database_url=self.database_url,
            files=paths.files,
            listen=f"{self.host}:{self.port}",
        )
        self.pidfile.unlink(missing_ok=True)
        env = {
            **os.environ,
            "TRYTOND_CONFIG": str(conf),
            "TRYTOND_DATABASE_NAMES": ",".join(self.databases),
        }
        args = [
            sys.executable, "-m", "granian",
            "--interface", "wsgi",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", "1",
            "--blocking-threads", str(BLOCKING_THREADS),
            "--no-access-log",
            "--log-level", "warning",
            "--pid-file", str(self.pidfile),
            "trytond.application:app",
        ]  # fmt: skip
        with paths.log.open("ab") as sink:
            self.process = subprocess.Popen(  # noqa: S603
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                # Not the work tree: a stale finsync.egg-info there would hide the module's entry point.
                cwd=paths.directory,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise SettingsError(f"the Tryton server exited at start; see {paths.log}")
            if server_version(self.url, timeout=1.0) is not None:
                return True
            time.sleep(0.1)
        self.stop()
        raise SettingsError(
            f"the Tryton server did not answer within {STARTUP_TIMEOUT:.0f}s; see {paths.log}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL to its process group)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        self.pidfile.unlink(missing_ok=True)
