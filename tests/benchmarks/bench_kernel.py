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
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.redis import EmbeddedRedis
from tests.benchmarks import harness
from tests.benchmarks.harness import (
    RESULTS,
    ROOT,
    SERVER_CPU,
    Load,
    Pair,
    Server,
    ensure_packages,
    ensure_wrk,
    measure_load,
    ms,
    pinning,
    server_env,
    serving,
    warm_up,
)

__all__ = ("RESULTS", "UVICORN_PACKAGES", "Pair", "Run", "ensure_packages", "ensure_wrk", "main", "measure")

TARGET = 0.75
FACTORIES = {"bare": "bare_app", "kernel": "kernel_app", "plugins": "plugins_app"}
PLUGIN_PACKAGES = {"structlog": "structlog", "prometheus_client": "prometheus-client"}
UVICORN_PACKAGES = {
    "uvicorn": "uvicorn[standard]",
    "uvloop": "uvicorn[standard]",
    "httptools": "uvicorn[standard]",
}


@dataclass
class Run:
    """One wrk measurement of one app."""

    app: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: str | None
    log_bytes: int


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


def server_command(app: str, port: int, server: str = "granian") -> list[str]:
    """The command line serving ``app``; identical for every app but the factory."""
    return harness.server_command(FACTORIES[app], port, server)


def _load(args: argparse.Namespace) -> Load:
    return Load(duration=args.duration, connections=args.connections, threads=args.threads)


def wrk_command(wrk: str, port: int, seconds: int, args: argparse.Namespace) -> list[str]:
    """The wrk command line for one run against ``port``."""
    return _load(args).command(wrk, port, seconds)


def measure(
    app: str, wrk: str, args: argparse.Namespace, redis_url: str, logs: Path, server: str = "granian"
) -> Run:
    """Start a fresh server for ``app``, warm it up, measure it, stop it."""
    spec = Server(FACTORIES[app], server_env(redis_url), kind=server)
    load = _load(args)
    with serving(spec, logs) as log_path:
        warm_up(wrk, spec.port, load)
        result = measure_load(wrk, spec.port, load)
    return Run(
        app,
        result.rps,
        result.percentiles.get("50"),
        result.percentiles.get("99"),
        result.errors,
        log_path.stat().st_size,
    )


def reproduce_command(args: argparse.Namespace) -> str:
    """The command that reproduces this result, from the repository root."""
    return (
        f".venv/bin/python -m tests.benchmarks.bench_kernel --variant {args.variant} --pairs {args.pairs}"
        f" --duration {args.duration} --connections {args.connections} --threads {args.threads}"
    )


def report(pairs: list[Pair[Run]], args: argparse.Namespace, wrk: str) -> bool:
    """Print the pairs, the median ratio and the verdict; write the JSON result. True on PASS."""
    median = statistics.median(p.ratio for p in pairs)
    passed = median >= TARGET
    variant = args.variant
    print()
    print(f"pair  bare req/s  p50 ms  p99 ms  {variant:>7} req/s  p50 ms  p99 ms  ratio")
    for i, pair in enumerate(pairs, 1):
        b, v = pair.base, pair.measured
        print(
            f"{i:>4}  {b.rps:10.0f}  {ms(b.p50_ms)}  {ms(b.p99_ms)}  {v.rps:13.0f}  "
            f"{ms(v.p50_ms)}  {ms(v.p99_ms)}  {pair.ratio:5.3f}"
        )
    for pair in pairs:
        for run in (pair.base, pair.measured):
            if run.errors:
                print(f"WARNING: {run.app} run reported {run.errors}")
    print()
    print(f"median ratio {variant}/bare: {median:.3f}x (target >= {TARGET}x): {'PASS' if passed else 'FAIL'}")
    bare_rps = statistics.median(p.base.rps for p in pairs)
    variant_rps = statistics.median(p.measured.rps for p in pairs)
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
        "pairs": [{"bare": asdict(p.base), variant: asdict(p.measured)} for p in pairs],
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
    pairs: list[Pair[Run]] = []
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
