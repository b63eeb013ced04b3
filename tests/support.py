"""Helpers the tests share: free ports, a tiny HTTP target, process scans, waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.processes import die_with_parent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from subprocess import Popen

    from litestar import Litestar

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port that refuses connections."""
    return free_port()


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200 if self.path.startswith("/healthz") else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class HealthyTarget:
    """A real HTTP server on loopback that answers 200 on ``/healthz``."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HealthyTarget:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def processes_with(marker: str) -> list[int]:
    """Pids whose command line or environment mentions ``marker`` (root reads every process)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            pids.append(int(entry.name))
    return pids


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def ready(url: str) -> bool:
    """The service at ``url`` answers its readiness check with 200."""
    return _answers_200(f"{url}/health/ready")


def _answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def read_json_lines(path: Path) -> Iterator[dict[str, object]]:
    """Every JSON object line of a log file."""
    import json

    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


@contextlib.asynccontextmanager
async def in_process(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client over ASGI to ``app``, with its lifespan running in this task."""
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


SANDBOX_STARTUP = 30.0
"""Seconds a sandbox server gets to answer its control API."""


def start_sandbox_process(
    name: str, args: list[str], env: dict[str, str], log: Path, url: str
) -> Popen[bytes]:
    """Start a sandbox server (``args``) in a process group of its own, logging to ``log``, and wait until its
    control API answers at ``url``; the test fails with the log when it does not, or exits."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - a killed test run must not leave the sandbox behind
        )
    if not wait_until(
        lambda: process.poll() is not None or _answers_200(f"{url}/sandbox/counters"), SANDBOX_STARTUP
    ):
        stop_process_group(process)
        pytest.fail(f"the {name} did not answer within {SANDBOX_STARTUP:.0f}s:\n{log.read_text()}")
    if process.poll() is not None:
        pytest.fail(f"the {name} exited at start:\n{log.read_text()}")
    return process


def stop_process_group(process: Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait; SIGKILL to its process group (granian's worker included) if it does not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
