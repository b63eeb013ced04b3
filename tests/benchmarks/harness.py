"""What every throughput benchmark shares: granian servers, wrk, pinning, Redis counters.

A server is one granian process (ASGI, ``--factory``, one worker, pinned to CPU 0)
serving a factory of ``tests.benchmarks.apps``; its stdout and stderr go to a
file, so writing the access log is measured. Load comes from wrk pinned to CPU 1,
after a discarded warm-up. Nothing here decides what is compared: the
``bench_*`` scripts do.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Generic, Protocol, TypeVar

import redis as syncredis

from shared.processes import die_with_parent
from tests.benchmarks.apps import PING_BODY, PING_PATH

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = (
    "GRANIAN",
    "HOST",
    "LOAD_CPU",
    "RESULTS",
    "ROOT",
    "SERVER_CPU",
    "VENV_PYTHON",
    "WARMUP_SECONDS",
    "Load",
    "RedisCounters",
    "Server",
    "WrkResult",
    "ensure_packages",
    "ensure_wrk",
    "free_port",
    "parse_wrk",
    "pinning",
    "redis_counters",
    "run_wrk",
    "server_command",
    "server_env",
    "serving",
    "stop",
    "wait_ready",
    "wrk_command",
)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
GRANIAN = ROOT / ".venv" / "bin" / "granian"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
HOST = "127.0.0.1"
SERVER_CPU = "0"
LOAD_CPU = "1"
WARMUP_SECONDS = 1
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
APPS_MODULE = "tests.benchmarks.apps"

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_REQUESTS = re.compile(r"(\d+) requests in")
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors:(.*)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def ensure_wrk() -> str:
    """Path of wrk, installing it with apt-get when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: running `apt-get update && apt-get install -y wrk`", flush=True)
    subprocess.run(["apt-get", "update"], check=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def ensure_packages(packages: dict[str, str]) -> None:
    """Install what a comparison needs into the venv only (module -> package), when it is missing."""
    missing = []
    for module, package in packages.items():
        probe = subprocess.run([str(VENV_PYTHON), "-c", f"import {module}"], capture_output=True, check=False)
        if probe.returncode != 0:
            missing.append(package)
    missing = sorted(set(missing))
    if not missing:
        return
    command = [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", *missing]
    print(f"installing into the venv only, to measure (not a project dependency): {shlex.join(command)}")
    subprocess.run(command, check=True, timeout=600)


def pinning(cpu: str) -> list[str]:
    """``taskset -c cpu`` when the machine has the two CPUs the benchmark pins to."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu]
    return []


def free_port() -> int:
    """A loopback port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_command(factory: str, port: int, server: str = "granian") -> list[str]:
    """The command line serving ``apps:factory``; identical for every app but the factory."""
    if server == "uvicorn":
        return [
            *pinning(SERVER_CPU),
            str(VENV_PYTHON), "-m", "uvicorn",
            "--factory",
            "--workers", "1",
            "--host", HOST,
            "--port", str(port),
            "--no-access-log",
            "--loop", "uvloop",
            "--http", "httptools",
            f"{APPS_MODULE}:{factory}",
        ]  # fmt: skip
    return [
        *pinning(SERVER_CPU),
        str(GRANIAN),
        "--interface", "asgi",
        "--factory",
        "--workers", "1",
        "--host", HOST,
        "--port", str(port),
        "--no-access-log",
        f"{APPS_MODULE}:{factory}",
    ]  # fmt: skip


def wrk_command(
    wrk: str,
    port: int,
    seconds: int,
    *,
    connections: int,
    threads: int,
    headers: Sequence[str] = (),
) -> list[str]:
    """The wrk command line for one run against ``port``; each of ``headers`` is one ``-H``."""
    return [
        *pinning(LOAD_CPU),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        *[arg for header in headers for arg in ("-H", header)],
        "--latency",
        f"http://{HOST}:{port}{PING_PATH}",
    ]


def server_env(redis_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every server: default finsync settings, the benchmark's Redis, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSYNC_", "PROMETHEUS_MULTIPROC"))}
    env["FINSYNC_REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def _ping(port: int, headers: Mapping[str, str]) -> tuple[int, bytes] | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=5.0)
    try:
        conn.request("GET", PING_PATH, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return None
    finally:
        conn.close()


def wait_ready(
    process: subprocess.Popen[bytes], port: int, log_path: Path, headers: Mapping[str, str] | None = None
) -> None:
    """Block until the server answers the ping route (sent with ``headers``) with the expected body."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
        answer = _ping(port, headers or {})
        if answer is not None:
            status, body = answer
            if status != 200 or body != PING_BODY:
                raise RuntimeError(f"unexpected answer {status} {body!r}; see {log_path}")
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not answer within {STARTUP_TIMEOUT:.0f}s; see {log_path}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (granian and its worker): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class Server:
    """One server to start: a factory of ``tests.benchmarks.apps``, its environment, how to probe it."""

    factory: str
    """Factory name in ``tests.benchmarks.apps``."""
    env: dict[str, str]
    """Its whole environment (see :func:`server_env`)."""
    probe_headers: dict[str, str] = field(default_factory=dict)
    """Headers of the readiness probe (a bearer token for a protected route)."""
    kind: str = "granian"
    """``granian`` or ``uvicorn``."""
    port: int = field(default_factory=free_port)
    """Where it listens."""

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://{HOST}:{self.port}"


@contextlib.contextmanager
def serving(server: Server, logs: Path) -> Iterator[Path]:
    """Run ``server`` until the block ends; yields the file its output goes to."""
    log_path = logs / f"{server.factory}-{server.kind}-{server.port}.log"
    log: IO[bytes]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(server.factory, server.port, server.kind),
            cwd=ROOT,
            env=server.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        try:
            wait_ready(process, server.port, log_path, server.probe_headers)
            yield log_path
        finally:
            stop(process)


@dataclass(frozen=True)
class Load:
    """How wrk loads a server."""

    duration: int
    """Seconds of the measured run."""
    connections: int
    """Open connections."""
    threads: int
    """wrk threads."""
    headers: tuple[str, ...] = ()
    """Request headers, ``"Name: value"``."""

    def command(self, wrk: str, port: int, seconds: int | None = None) -> list[str]:
        """The wrk command line against ``port``, for ``seconds`` (default: the measured duration)."""
        return wrk_command(
            wrk,
            port,
            self.duration if seconds is None else seconds,
            connections=self.connections,
            threads=self.threads,
            headers=self.headers,
        )


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported."""

    rps: float
    requests: int
    percentiles: dict[str, float]
    errors: str | None


def run_wrk(command: list[str], seconds: int) -> str:
    """Run wrk with a hard timeout and return its report."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def parse_wrk(report: str) -> WrkResult:
    """Requests/s, request count, latency percentiles in ms, and any errors wrk reported."""
    rps = _RPS.search(report)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{report}")
    requests = _REQUESTS.search(report)
    percentiles = {p: float(v) * _UNIT_MS[u] for p, v, u in _PERCENTILE.findall(report)}
    problems = []
    if match := _NON_2XX.search(report):
        problems.append(f"non-2xx: {match[1]}")
    if match := _SOCKET_ERRORS.search(report):
        problems.append(f"socket errors:{match[1]}")
    return WrkResult(
        float(rps[1]), int(requests[1]) if requests else 0, percentiles, "; ".join(problems) or None
    )


def warm_up(wrk: str, port: int, load: Load) -> None:
    """A short run whose numbers are discarded."""
    run_wrk(load.command(wrk, port, WARMUP_SECONDS), WARMUP_SECONDS)


def measure_load(wrk: str, port: int, load: Load) -> WrkResult:
    """The measured run."""
    return parse_wrk(run_wrk(load.command(wrk, port), load.duration))


@dataclass(frozen=True)
class RedisCounters:
    """Redis's own counters: commands executed, reads from client sockets, and calls per command."""

    commands: int
    reads: int
    per_command: dict[str, int]

    def __sub__(self, before: RedisCounters) -> RedisCounters:
        """What happened between two snapshots, less the ``INFO`` that took the first one.

        ``INFO`` counts its own read but not its own command in what it reports, so
        the difference of two snapshots holds one ``INFO`` command and one read too many.
        """
        names = set(self.per_command) | set(before.per_command)
        per_command = {n: self.per_command.get(n, 0) - before.per_command.get(n, 0) for n in sorted(names)}
        per_command["info"] = per_command.get("info", 0) - 1
        return RedisCounters(
            self.commands - before.commands - 1,
            self.reads - before.reads - 1,
            {n: calls for n, calls in per_command.items() if calls},
        )


def redis_counters(client: syncredis.Redis) -> RedisCounters:
    """Redis's counters now, read with one ``INFO``."""
    info = client.info("all")
    per_command = {
        key.removeprefix("cmdstat_"): int(value["calls"])
        for key, value in info.items()
        if key.startswith("cmdstat_") and isinstance(value, dict)
    }
    return RedisCounters(
        int(info["total_commands_processed"]), int(info["total_reads_processed"]), per_command
    )


class _Throughput(Protocol):
    rps: float


RunT = TypeVar("RunT", bound=_Throughput)


@dataclass
class Pair(Generic[RunT]):
    """A baseline run and a measured run, one after the other."""

    base: RunT
    measured: RunT

    @property
    def ratio(self) -> float:
        """Measured throughput over baseline throughput."""
        return self.measured.rps / self.base.rps


def ms(value: float | None) -> str:
    """A latency column: milliseconds, or ``n/a``."""
    return "   n/a" if value is None else f"{value:6.2f}"
