"""Throughput of a kernel route against a bare Litestar route returning the same JSON.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_kernel [--pairs 5] [--duration 5] [--connections 32]
    .venv/bin/python -m tests.benchmarks.bench_kernel --variant plugins --pairs 3

Each run starts a fresh granian server (one worker, pinned to CPU 0) on
``tests.benchmarks.apps``, loads it with wrk (pinned to CPU 1) on loopback after a
discarded warm-up, and stops it. Runs alternate bare, variant, bare, variant, ...;
the result is the median of the per-pair ratios. Server output (including the
kernel's JSON access log) goes to a file, so log writing is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from shared.processes import die_with_parent
from shared.redis import EmbeddedRedis
from tests.benchmarks.apps import PING_BODY, PING_PATH

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
GRANIAN = ROOT / ".venv" / "bin" / "granian"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
TARGET = 0.75
HOST = "127.0.0.1"
SERVER_CPU = "0"
LOAD_CPU = "1"
WARMUP_SECONDS = 1
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
FACTORIES = {"bare": "bare_app", "kernel": "kernel_app", "plugins": "plugins_app"}
PLUGIN_PACKAGES = {"structlog": "structlog", "prometheus_client": "prometheus-client"}
UVICORN_PACKAGES = {
    "uvicorn": "uvicorn[standard]",
    "uvloop": "uvicorn[standard]",
    "httptools": "uvicorn[standard]",
}

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors:(.*)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Run:
    """One wrk measurement of one app."""

    app: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: str | None
    log_bytes: int


@dataclass
class Pair:
    """A bare run and a variant run, measured one after the other."""

    bare: Run
    variant: Run

    @property
    def ratio(self) -> float:
        """Variant throughput over bare throughput."""
        return self.variant.rps / self.bare.rps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_kernel", description=__doc__)
    parser.add_argument("--pairs", type=int, default=5, help="interleaved bare/variant pairs (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--variant",
        choices=("kernel", "plugins"),
        default="kernel",
        help="kernel: create_service; plugins: Litestar's Prometheus + structlog plugins (default kernel)",
    )
    args = parser.parse_args(argv)
    for name in ("pairs", "duration", "connections", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration > 600:
        parser.error("--duration must be at most 600")
    return args


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


def server_command(app: str, port: int, server: str = "granian") -> list[str]:
    """The command line serving ``app``; identical for every app but the factory."""
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
            f"tests.benchmarks.apps:{FACTORIES[app]}",
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
        f"tests.benchmarks.apps:{FACTORIES[app]}",
    ]  # fmt: skip


def wrk_command(wrk: str, port: int, seconds: int, args: argparse.Namespace) -> list[str]:
    """The wrk command line for one run against ``port``."""
    return [
        *pinning(LOAD_CPU),
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        f"http://{HOST}:{port}{PING_PATH}",
    ]


def server_env(redis_url: str) -> dict[str, str]:
    """The environment of every server: default finsync settings plus the benchmark's Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSYNC_", "PROMETHEUS_MULTIPROC"))}
    env["FINSYNC_REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT)
    return env


def _ping(port: int) -> tuple[int, bytes] | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", PING_PATH)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return None
    finally:
        conn.close()


def wait_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    """Block until the server answers the ping route with the expected body."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
        answer = _ping(port)
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


def run_wrk(command: list[str], seconds: int) -> str:
    """Run wrk with a hard timeout and return its report."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def parse_wrk(report: str) -> tuple[float, dict[str, float], str | None]:
    """Requests/s, latency percentiles in ms, and any errors wrk reported."""
    rps = _RPS.search(report)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{report}")
    percentiles = {p: float(v) * _UNIT_MS[u] for p, v, u in _PERCENTILE.findall(report)}
    problems = []
    if match := _NON_2XX.search(report):
        problems.append(f"non-2xx: {match[1]}")
    if match := _SOCKET_ERRORS.search(report):
        problems.append(f"socket errors:{match[1]}")
    return float(rps[1]), percentiles, "; ".join(problems) or None


def measure(
    app: str, wrk: str, args: argparse.Namespace, redis_url: str, logs: Path, server: str = "granian"
) -> Run:
    """Start a fresh server for ``app``, warm it up, measure it, stop it."""
    port = free_port()
    log_path = logs / f"{app}-{server}-{port}.log"
    log: IO[bytes]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(app, port, server),
            cwd=ROOT,
            env=server_env(redis_url),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        try:
            wait_ready(process, port, log_path)
            run_wrk(wrk_command(wrk, port, WARMUP_SECONDS, args), WARMUP_SECONDS)
            report = run_wrk(wrk_command(wrk, port, args.duration, args), args.duration)
        finally:
            stop(process)
    rps, percentiles, errors = parse_wrk(report)
    return Run(app, rps, percentiles.get("50"), percentiles.get("99"), errors, log_path.stat().st_size)


def _ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.2f}"


def reproduce_command(args: argparse.Namespace) -> str:
    """The command that reproduces this result, from the repository root."""
    return (
        f".venv/bin/python -m tests.benchmarks.bench_kernel --variant {args.variant} --pairs {args.pairs}"
        f" --duration {args.duration} --connections {args.connections} --threads {args.threads}"
    )


def report(pairs: list[Pair], args: argparse.Namespace, wrk: str) -> bool:
    """Print the pairs, the median ratio and the verdict; write the JSON result. True on PASS."""
    median = statistics.median(p.ratio for p in pairs)
    passed = median >= TARGET
    variant = args.variant
    print()
    print(f"pair  bare req/s  p50 ms  p99 ms  {variant:>7} req/s  p50 ms  p99 ms  ratio")
    for i, pair in enumerate(pairs, 1):
        b, v = pair.bare, pair.variant
        print(
            f"{i:>4}  {b.rps:10.0f}  {_ms(b.p50_ms)}  {_ms(b.p99_ms)}  {v.rps:13.0f}  "
            f"{_ms(v.p50_ms)}  {_ms(v.p99_ms)}  {pair.ratio:5.3f}"
        )
    for pair in pairs:
        for run in (pair.bare, pair.variant):
            if run.errors:
                print(f"WARNING: {run.app} run reported {run.errors}")
    print()
    print(f"median ratio {variant}/bare: {median:.3f}x (target >= {TARGET}x): {'PASS' if passed else 'FAIL'}")
    bare_rps = statistics.median(p.bare.rps for p in pairs)
    variant_rps = statistics.median(p.variant.rps for p in pairs)
    print(f"median req/s: bare {bare_rps:.0f}, {variant} {variant_rps:.0f}")
    command = reproduce_command(args)
    print(f"server:  {shlex.join(server_command(variant, 0)).replace('--port 0', '--port PORT')}")
    print(f"load:    {shlex.join(wrk_command(wrk, 0, args.duration, args)).replace(':0/', ':PORT/')}")
    print(f"reproduce (from {ROOT}): {command}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{variant}.json"
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "variant": variant,
        "target": TARGET,
        "median_ratio": round(median, 4),
        "passed": passed,
        "ratios": [round(p.ratio, 4) for p in pairs],
        "pairs": [{"bare": asdict(p.bare), variant: asdict(p.variant)} for p in pairs],
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "pinned": bool(pinning("0")),
        },
        "server": server_command(variant, 0),
        "load": wrk_command(wrk, 0, args.duration, args),
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"result written to {out.relative_to(ROOT)}")
    return passed


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved pairs and report. Exit 1 when the kernel variant misses the target."""
    args = parse_args(argv)
    wrk = ensure_wrk()
    if args.variant == "plugins":
        ensure_packages(PLUGIN_PACKAGES)
    if not pinning(SERVER_CPU):
        print("WARNING: taskset or a second CPU is missing: server and wrk are not pinned", flush=True)
    pairs: list[Pair] = []
    with tempfile.TemporaryDirectory(prefix="finsync-bench-") as tmp:
        redis = EmbeddedRedis(Path(tmp))
        redis.start()
        try:
            for i in range(1, args.pairs + 1):
                bare = measure("bare", wrk, args, redis.url, Path(tmp))
                variant = measure(args.variant, wrk, args, redis.url, Path(tmp))
                pairs.append(Pair(bare, variant))
                print(
                    f"pair {i}/{args.pairs}: bare {bare.rps:.0f} req/s, {args.variant} {variant.rps:.0f} req/s "
                    f"({variant.log_bytes} bytes of server output), ratio {pairs[-1].ratio:.3f}",
                    flush=True,
                )
        finally:
            redis.stop()
    passed = report(pairs, args, wrk)
    return 0 if passed or args.variant != "kernel" else 1


if __name__ == "__main__":
    sys.exit(main())
