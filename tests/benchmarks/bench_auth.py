"""Throughput of an authenticated, rate-limited route against a bare route making the same Redis round trips.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_auth [--pairs 5] [--duration 5] [--connections 32]
    .venv/bin/python -m tests.benchmarks.bench_auth --skip-layers     # only the main comparison

Main comparison (target: median ratio >= 0.80x): ``tests.benchmarks.apps:auth_app``
(the kernel, a bearer token with scope ``flows:read``, rate limiting on Redis)
against ``bare_redis_app`` (a plain Litestar route making the rate limiter's Redis
round trip with raw redis-py), each on a fresh granian server (one worker, pinned
to CPU 0), loaded by wrk (pinned to CPU 1) with the same ``Authorization`` header
after a discarded warm-up, in interleaved pairs; the result is the median ratio.
So it measures the machinery beyond the I/O that cannot be avoided. The
throwaway Redis is pinned to CPU 1 too (``--redis-cpu``), so that CPU 0 runs
only the server under test.

Also reported: microseconds per token verification (``TokenVerifier.verify``,
in-process, cold and cached); Redis commands and round trips per request, read from
Redis's own counters around each measured run; and, for reference, the ratio of a
route that calls a lower layer over HTTP with auth and limits on both layers against
the same two layers with both off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis as syncredis

from shared.auth.resource import JwksSource, RevocationList, TokenVerifier
from shared.redis import EmbeddedRedis
from shared.settings import AuthSettings
from tests.benchmarks.apps import BELOW_SCOPE, BELOW_TOKEN_ENV, BENCH_RATE, PING_SCOPE
from tests.benchmarks.harness import (
    LOAD_CPU,
    RESULTS,
    ROOT,
    SERVER_CPU,
    Load,
    Pair,
    Server,
    ensure_wrk,
    measure_load,
    ms,
    pinning,
    redis_counters,
    server_command,
    server_env,
    serving,
    warm_up,
)
from tests.tokens import TestIssuer

if TYPE_CHECKING:
    from collections.abc import Iterator

TARGET = 0.80
ABLATION = ("kernel_redis_app", "kernel_redis_quiet_app")
"""With ``--ablation``: the raw round trip on the kernel, with and then without access log and metrics."""
KONG_RATIO = 0.76
AUDIENCE = "finsync-bench"
"""Audience of ``auth_app`` (``finsync-{service}``, service ``bench``)."""
TOKEN_LIFETIME = 86400
"""Seconds the benchmark's tokens live: far longer than any run."""
COLD_TOKENS = 200
"""Fresh tokens verified per round of the cold measurement."""
CACHED_CALLS = 50_000
"""Verifications of one token per round of the cached measurement."""
ROUNDS = 5
REDACTED = "Authorization: Bearer <token>"


@dataclass
class Run:
    """One wrk measurement of one app, with what Redis did meanwhile."""

    app: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: str | None
    requests: int
    log_bytes: int
    redis_commands_per_request: float
    redis_round_trips_per_request: float
    redis_calls_per_request: dict[str, float] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_auth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pairs", type=int, default=5, help="interleaved pairs (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--layer-pairs", type=int, default=None, help="pairs of the layer-below comparison (default: --pairs)"
    )
    parser.add_argument("--skip-layers", action="store_true", help="skip the layer-below comparison")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also run, in each pair, the raw round trip on the kernel with and without access log and metrics",
    )
    parser.add_argument(
        "--redis-cpu",
        choices=("0", "1", "none"),
        default=LOAD_CPU,
        help=f"CPU the benchmark's Redis is pinned to (default {LOAD_CPU}, wrk's, so CPU {SERVER_CPU} runs "
        "only the server under test); none: unpinned",
    )
    args = parser.parse_args(argv)
    if args.layer_pairs is None:
        args.layer_pairs = args.pairs
    for name in ("pairs", "duration", "connections", "threads", "layer_pairs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration > 600:
        parser.error("--duration must be at most 600")
    return args


def _pin_process(pid: int, cpu: str) -> bool:
    """Pin every thread of process ``pid`` to ``cpu``; False when pinning is unavailable."""
    if not pinning(cpu):
        return False
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), {int(cpu)})
    return True


@contextlib.contextmanager
def _pinned(cpu: str) -> Iterator[None]:
    """Run this process on ``cpu`` only (as the servers are) for an in-process measurement."""
    if not pinning(cpu):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def _verification_costs(issuer: TestIssuer) -> dict[str, Any]:
    """Microseconds per ``TokenVerifier.verify``: cold (a new token each time) and cached (the same token).

    Built as ``shared.service._access_control`` builds it for a JWKS file, with an
    (empty) revocation list as in a running service.
    """
    settings = AuthSettings(issuer=issuer.issuer, jwks_file=str(issuer.jwks_file))
    jwks = JwksSource(url=None, file=settings.jwks_file, refetch_interval=settings.jwks_refetch_interval)
    revocations = RevocationList(cast("Any", None))  # never started: an empty deny-list
    verifier = TokenVerifier(settings, AUDIENCE, jwks, revocations, {})
    exp = int(time.time()) + TOKEN_LIFETIME
    await verifier.verify(issuer.token(AUDIENCE, PING_SCOPE, exp=exp))  # loads the JWKS file
    cold: list[float] = []
    cached: list[float] = []
    for _ in range(ROUNDS):
        tokens = [issuer.token(AUDIENCE, PING_SCOPE, exp=exp) for _ in range(COLD_TOKENS)]
        started = time.perf_counter()
        for token in tokens:
            await verifier.verify(token)
        cold.append((time.perf_counter() - started) / COLD_TOKENS * 1e6)
        token = tokens[0]
        started = time.perf_counter()
        for _ in range(CACHED_CALLS):
            await verifier.verify(token)
        cached.append((time.perf_counter() - started) / CACHED_CALLS * 1e6)
    return {
        "cold_us": round(statistics.median(cold), 2),
        "cached_us": round(statistics.median(cached), 3),
        "cold_rounds_us": [round(v, 2) for v in cold],
        "cached_rounds_us": [round(v, 3) for v in cached],
        "method": (
            f"in-process TokenVerifier.verify, RS256 (2048-bit) tokens of tests.tokens.TestIssuer, "
            f"median of {ROUNDS} rounds of {COLD_TOKENS} new tokens (cold) and {CACHED_CALLS} calls "
            f"with one token (cached), pinned to CPU {SERVER_CPU}"
        ),
    }


def _run(
    label: str,
    servers: list[Server],
    wrk: str,
    load: Load,
    counters: syncredis.Redis,
    logs: Path,
) -> Run:
    """Start ``servers`` in order (the last one is loaded), warm up, measure, stop them all."""
    with contextlib.ExitStack() as stack:
        log_paths = [stack.enter_context(serving(server, logs)) for server in servers]
        port = servers[-1].port
        warm_up(wrk, port, load)
        before = redis_counters(counters)
        result = measure_load(wrk, port, load)
        during = redis_counters(counters) - before
    requests = max(result.requests, 1)
    return Run(
        app=label,
        rps=result.rps,
        p50_ms=result.percentiles.get("50"),
        p99_ms=result.percentiles.get("99"),
        errors=result.errors,
        requests=result.requests,
        log_bytes=sum(path.stat().st_size for path in log_paths),
        redis_commands_per_request=round(during.commands / requests, 4),
        redis_round_trips_per_request=round(during.reads / requests, 4),
        redis_calls_per_request={
            name: round(calls / requests, 4)
            for name, calls in during.per_command.items()
            if calls / requests >= 0.001
        },
    )


def _print_pairs(pairs: list[Pair[Run]], base: str, measured: str) -> None:
    print(f"pair  {base:>12} req/s  p50 ms  p99 ms  {measured:>12} req/s  p50 ms  p99 ms  ratio")
    for i, pair in enumerate(pairs, 1):
        b, m = pair.base, pair.measured
        print(
            f"{i:>4}  {b.rps:18.0f}  {ms(b.p50_ms)}  {ms(b.p99_ms)}  {m.rps:18.0f}  "
            f"{ms(m.p50_ms)}  {ms(m.p99_ms)}  {pair.ratio:5.3f}"
        )
    for pair in pairs:
        for run in (pair.base, pair.measured):
            if run.errors:
                print(f"WARNING: {run.app} run reported {run.errors}")


def _median(runs: list[Run], attribute: str) -> float:
    return round(float(statistics.median(getattr(run, attribute) for run in runs)), 3)


def _redis_summary(runs: list[Run]) -> dict[str, Any]:
    names = sorted({name for run in runs for name in run.redis_calls_per_request})
    return {
        "commands_per_request": _median(runs, "redis_commands_per_request"),
        "round_trips_per_request": _median(runs, "redis_round_trips_per_request"),
        "calls_per_request": {
            name: round(statistics.median(run.redis_calls_per_request.get(name, 0.0) for run in runs), 3)
            for name in names
        },
    }


def reproduce_command(args: argparse.Namespace) -> str:
    """The command that reproduces this result, from the repository root."""
    command = (
        f".venv/bin/python -m tests.benchmarks.bench_auth --pairs {args.pairs} --duration {args.duration}"
        f" --connections {args.connections} --threads {args.threads} --redis-cpu {args.redis_cpu}"
    )
    command += " --ablation" if args.ablation else ""
    return command + (" --skip-layers" if args.skip_layers else f" --layer-pairs {args.layer_pairs}")


def _redacted(command: list[str]) -> list[str]:
    return [REDACTED if arg.startswith("Authorization: Bearer ") else arg for arg in command]


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one linear script
    """Measure, report, write ``results/auth.json``. Exit 1 when the main ratio misses the target."""
    args = parse_args(argv)
    wrk = ensure_wrk()
    if not pinning(SERVER_CPU):
        print("WARNING: taskset or a second CPU is missing: servers and wrk are not pinned", flush=True)
    main_pairs: list[Pair[Run]] = []
    layer_pairs: list[Pair[Run]] = []
    ablation: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="finsync-bench-") as tmp:
        logs = Path(tmp)
        issuer = TestIssuer(logs)
        with _pinned(SERVER_CPU):
            verification = asyncio.run(_verification_costs(issuer))
        print(
            f"token verification: cold {verification['cold_us']:.0f} us, "
            f"cached {verification['cached_us']:.2f} us",
            flush=True,
        )
        config = logs / "finsync.toml"
        config.write_text(f'[tiers.default]\nlimit = "{BENCH_RATE}"\n', encoding="utf-8")
        exp = int(time.time()) + TOKEN_LIFETIME
        token = issuer.token(AUDIENCE, PING_SCOPE, exp=exp)
        upper_token = issuer.token("finsync-process", PING_SCOPE, exp=exp)
        below_token = issuer.token("finsync-system", BELOW_SCOPE, exp=exp)
        redis = EmbeddedRedis(logs)
        redis.start()
        assert redis.process is not None
        redis_pinned = args.redis_cpu != "none" and _pin_process(redis.process.pid, args.redis_cpu)
        print(f"Redis: {'pinned to CPU ' + args.redis_cpu if redis_pinned else 'not pinned'}", flush=True)
        counters = syncredis.Redis.from_url(redis.url, socket_timeout=5)
        try:
            settings_env = {
                "FINSYNC_CONFIG": str(config),
                "FINSYNC_AUTH__JWKS_FILE": str(issuer.jwks_file),
                "FINSYNC_AUTH__ISSUER": issuer.issuer,
            }
            env = server_env(redis.url, settings_env)
            load = Load(args.duration, args.connections, args.threads, (f"Authorization: Bearer {token}",))
            probe = {"Authorization": f"Bearer {token}"}
            for i in range(1, args.pairs + 1):
                bare = _run("bare_redis", [Server("bare_redis_app", env, probe)], wrk, load, counters, logs)
                auth = _run("auth", [Server("auth_app", env, probe)], wrk, load, counters, logs)
                main_pairs.append(Pair(bare, auth))
                if args.ablation:
                    for factory in ABLATION:
                        run = _run(factory, [Server(factory, env, probe)], wrk, load, counters, logs)
                        ablation.setdefault(factory, []).append(round(run.rps / bare.rps, 4))
                        print(
                            f"  {factory}: {run.rps:.0f} req/s, {ablation[factory][-1]:.3f}x of bare_redis",
                            flush=True,
                        )
                print(
                    f"pair {i}/{args.pairs}: bare_redis {bare.rps:.0f} req/s "
                    f"({bare.redis_round_trips_per_request:.2f} round trips/request), auth {auth.rps:.0f} req/s "
                    f"({auth.redis_round_trips_per_request:.2f} round trips, "
                    f"{auth.redis_commands_per_request:.2f} commands/request), ratio {main_pairs[-1].ratio:.3f}",
                    flush=True,
                )
            if not args.skip_layers:
                upper_load = Load(
                    args.duration, args.connections, args.threads, (f"Authorization: Bearer {upper_token}",)
                )
                upper_probe = {"Authorization": f"Bearer {upper_token}"}
                for i in range(1, args.layer_pairs + 1):
                    runs = []
                    for secured in (False, True):
                        suffix = "_app" if secured else "_open_app"
                        lower = Server(
                            f"layer_lower{suffix}", env, {"Authorization": f"Bearer {below_token}"}
                        )
                        upper_env = {**env, "FINSYNC_SYSTEM_URL": lower.url, BELOW_TOKEN_ENV: below_token}
                        upper = Server(f"layer_upper{suffix}", upper_env, upper_probe)
                        label = "layers_secured" if secured else "layers_open"
                        runs.append(_run(label, [lower, upper], wrk, upper_load, counters, logs))
                    layer_pairs.append(Pair(*runs))
                    print(
                        f"layers pair {i}/{args.layer_pairs}: open {runs[0].rps:.0f} req/s, "
                        f"secured {runs[1].rps:.0f} req/s, ratio {layer_pairs[-1].ratio:.3f}",
                        flush=True,
                    )
        finally:
            counters.close()
            redis.stop()

    median = statistics.median(p.ratio for p in main_pairs)
    passed = median >= TARGET
    print()
    _print_pairs(main_pairs, "bare_redis", "auth")
    auth_redis = _redis_summary([p.measured for p in main_pairs])
    bare_redis = _redis_summary([p.base for p in main_pairs])
    print(
        f"\nRedis per authenticated request: {auth_redis['round_trips_per_request']} round trips, "
        f"{auth_redis['commands_per_request']} commands {auth_redis['calls_per_request']}"
    )
    print(
        f"Redis per bare_redis request:    {bare_redis['round_trips_per_request']} round trips, "
        f"{bare_redis['commands_per_request']} commands {bare_redis['calls_per_request']}"
    )
    if abs(auth_redis["round_trips_per_request"] - bare_redis["round_trips_per_request"]) > 0.05:
        print("WARNING: the two apps do not make the same number of Redis round trips per request")
    print(
        f"token verification (us): cold {verification['cold_us']}, cached {verification['cached_us']} "
        f"({verification['method']})"
    )
    layers: dict[str, Any] | None = None
    if layer_pairs:
        print()
        _print_pairs(layer_pairs, "layers_open", "layers_secured")
        layer_median = statistics.median(p.ratio for p in layer_pairs)
        layers = {
            "median_ratio": round(layer_median, 4),
            "ratios": [round(p.ratio, 4) for p in layer_pairs],
            "reference": f"Kong publishes {KONG_RATIO}x for its rate limiting plus key auth",
            "redis_secured": _redis_summary([p.measured for p in layer_pairs]),
            "redis_open": _redis_summary([p.base for p in layer_pairs]),
            "pairs": [{"open": asdict(p.base), "secured": asdict(p.measured)} for p in layer_pairs],
            "method": (
                "a process-like upper layer (create_service with below=system) whose GET /v1/ping calls the "
                "lower layer's GET /v1/ping over loopback HTTP and answers its JSON; secured: auth and rate "
                "limiting on both layers, the upper sending a static bearer token below (no authorization "
                "server runs, so ClientCredentialsAuth is not used); open: both off. Both servers pinned to "
                "CPU 0, wrk (and Redis, unless --redis-cpu says otherwise) to CPU 1."
            ),
        }
        print(
            f"\nlayer-below ratio secured/open: {layer_median:.3f}x "
            f"(reference, no target: Kong publishes {KONG_RATIO}x for rate limiting plus key auth)"
        )
    print()
    print(
        f"median ratio auth/bare_redis: {median:.3f}x (target >= {TARGET}x): {'PASS' if passed else 'FAIL'}"
    )
    print(
        f"median req/s: bare_redis {statistics.median(p.base.rps for p in main_pairs):.0f}, "
        f"auth {statistics.median(p.measured.rps for p in main_pairs):.0f}"
    )
    command = reproduce_command(args)
    load_command = _redacted(Load(args.duration, args.connections, args.threads, (REDACTED,)).command(wrk, 0))
    print(f"server:  {shlex.join(server_command('auth_app', 0)).replace('--port 0', '--port PORT')}")
    print(f"load:    {shlex.join(load_command).replace(':0/', ':PORT/')}")
    for factory, ratios in ablation.items():
        print(f"ablation: {factory} {statistics.median(ratios):.3f}x of bare_redis (pairs {ratios})")
    print(f"reproduce (from {ROOT}): {command}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "auth.json"
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "target": TARGET,
        "median_ratio": round(median, 4),
        "passed": passed,
        "ratios": [round(p.ratio, 4) for p in main_pairs],
        "pairs": [{"bare_redis": asdict(p.base), "auth": asdict(p.measured)} for p in main_pairs],
        "redis_per_request": {"auth": auth_redis, "bare_redis": bare_redis},
        "token_verification": verification,
        "layers": layers,
        "ablation": {
            factory: {"median_ratio_to_bare_redis": round(statistics.median(ratios), 4), "ratios": ratios}
            for factory, ratios in ablation.items()
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "pinned": bool(pinning("0")),
            "redis_cpu": args.redis_cpu if redis_pinned else None,
        },
        "servers": {app: server_command(app, 0) for app in ("bare_redis_app", "auth_app")},
        "load": load_command,
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"result written to {out.relative_to(ROOT)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
