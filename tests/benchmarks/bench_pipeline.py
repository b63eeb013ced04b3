"""The actuals-to-plan pipeline over a million actual lines, against raw msgspec and dlt.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_pipeline [--rounds 3] [--dlt-lines 100000] [--skip-dlt]

What runs: the system and process services as ``finsync serve`` processes (auth
and rate limits off: they are measured elsewhere), an embedded Redis and
PostgreSQL (the ledger), and the planning sandbox (fast polling). The system
layer's ERP source is a *generated ledger* (``kind = "generated"``) with fixed
cardinalities, so no ERP is the bottleneck; its lines come through the system
API as NDJSON exactly as Tryton's would. A dimension map remaps its 999
profit-and-loss accounts onto 40 planning accounts, so the pipeline aggregates
a million lines into 40,000 cells, loads them into the sandbox and reads them
back to reconcile.

Measured in the same run:

- the pipeline: a run over every entity and period, from ``POST`` to its end,
  in rows per second (best and median of ``--rounds``), with the seconds of each
  step from the run's own record, as microseconds per row;
- the process service's peak RSS (``VmHWM`` of its worker);
- raw msgspec: the same lines, fetched once from the system API, decoded by a
  typed ``msgspec`` decoder of the fields the pipeline reads;
- dlt: the same lines loaded into DuckDB by a dlt pipeline, in a venv of its own
  (``.finsync/bench/dlt-venv``, made on first use: dlt is no project
  dependency), over ``--dlt-lines`` of them (its rate is flat in the count).

Targets (issue 7): >= 20x dlt's rows/s, and peak RSS below 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from process_apis.clients.system import BalanceLine
from process_apis.flows.actuals_to_plan.dimension_map import MAPS
from shared.postgres import EmbeddedPostgres, create_database, database_url
from shared.processes import die_with_parent
from shared.redis import EmbeddedRedis
from system_apis.connectors.anaplan.sandbox.catalog import (
    ACCOUNTS_LIST_ID,
    COST_CENTRES_LIST_ID,
    ENTITIES_LIST_ID,
)
from tests.benchmarks.harness import RESULTS, ROOT, free_port
from tests.planning_fixtures import start_sandbox, stop_sandbox

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.planning_fixtures import PlanningSandbox

SOURCE = "bench"
PLANNING = "planning"
CARDINALITIES = {
    "entities": 5,
    "periods": 10,
    "revenue_accounts": 199,
    "expense_accounts": 800,
    "balance_sheet_accounts": 20,
    "cost_centers": 20,
}
"""The generated ledger: 5 x 10 x ((199 + 800) x 20 + 20) = 1,000,000 lines."""
PLANNING_REVENUE, PLANNING_EXPENSE = 10, 30
"""Planning accounts the profit-and-loss accounts are remapped onto."""
FIRST, LAST = "2026-01", "2026-10"
DLT_VENV = ROOT / ".finsync" / "bench" / "dlt-venv"
DLT_SCRIPT = """
import json, sys, time
import dlt

path, database, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])

def lines():
    with open(path, "rb") as source:
        for number, line in enumerate(source):
            if number == limit:
                return
            yield json.loads(line)

pipeline = dlt.pipeline(
    pipeline_name="bench_actuals", destination=dlt.destinations.duckdb(database), dataset_name="actuals"
)
started = time.perf_counter()
pipeline.run(lines(), table_name="balances")
seconds = time.perf_counter() - started
print(json.dumps({"rows": limit, "seconds": seconds, "dlt": dlt.__version__}))
"""


def total_lines() -> int:
    c = CARDINALITIES
    per_slice = (c["revenue_accounts"] + c["expense_accounts"]) * c["cost_centers"] + c[
        "balance_sheet_accounts"
    ]
    return c["entities"] * c["periods"] * per_slice


def planning_account(code: str) -> str:
    number = int(code[1:])
    if code.startswith("R"):
        return f"PR-{number % PLANNING_REVENUE + 1:02d}"
    return f"PX-{number % PLANNING_EXPENSE + 1:02d}"


def write_map(directory: Path) -> str:
    """A dimension map ``bench``: v1's signs, the ERP accounts remapped onto the planning accounts."""
    directory.mkdir(parents=True, exist_ok=True)
    c = CARDINALITIES
    codes = [f"R{n:04d}" for n in range(1, c["revenue_accounts"] + 1)]
    codes += [f"X{n:04d}" for n in range(1, c["expense_accounts"] + 1)]
    remaps = "\n".join(f'"{code}" = "{planning_account(code)}"' for code in codes)
    (directory / "v1.toml").write_text((MAPS / "v1.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "bench.toml").write_text(
        f'version = "a2p/bench"\nplanning_version = "Actual"\n\n[signs]\nrevenue = -1\nexpense = 1\n\n'
        f"[accounts]\n{remaps}\n",
        encoding="utf-8",
    )
    return "bench"


def add_planning_members(sandbox: PlanningSandbox) -> None:
    """The generated entities, the planning accounts and the cost centres, added through Anaplan's list API."""
    c = CARDINALITIES
    token = sandbox.token()
    headers = {"Authorization": f"AnaplanAuthToken {token}"}
    base = f"{sandbox.url}/2/0/workspaces/{sandbox.workspace}/models/{sandbox.model}/lists"
    wanted = {
        ENTITIES_LIST_ID: [f"G{n:02d}" for n in range(1, c["entities"] + 1)],
        ACCOUNTS_LIST_ID: [f"PR-{n:02d}" for n in range(1, PLANNING_REVENUE + 1)]
        + [f"PX-{n:02d}" for n in range(1, PLANNING_EXPENSE + 1)],
        COST_CENTRES_LIST_ID: [f"CC-{n:02d}" for n in range(1, c["cost_centers"] + 1)],
    }
    for list_id, codes in wanted.items():
        response = httpx.post(
            f"{base}/{list_id}/items",
            params={"action": "add"},
            json={"items": [{"code": code, "name": code} for code in codes]},
            headers=headers,
            timeout=30,
        )
        response.raise_for_status()


def config_toml(sandbox: PlanningSandbox) -> str:
    c = CARDINALITIES
    generated = "\n".join(f"{key} = {value}" for key, value in c.items())
    return f"""
[sources.{SOURCE}]
kind = "generated"
first_period = "{FIRST}"
{generated}

[sources.{PLANNING}]
kind = "anaplan"
url = "{sandbox.url}"
workspace = "{sandbox.workspace}"
model = "{sandbox.model}"
user = "{sandbox.user}"
password_file = "{sandbox.password_file}"
sandbox = true
poll_interval = 0.05
"""


@dataclass
class Service:
    layer: str
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(layer: str, env: dict[str, str], log: Path) -> Service:
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", layer, "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - nothing threaded runs before it
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{layer} exited at start:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return Service(layer, url, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{layer} did not get ready:\n{log.read_text()[-3000:]}")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (granian's worker is a child of its main process)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            queue.extend(int(child) for child in task.read_text().split())
    return found


def memory(pid: int, field: str) -> int:
    """The largest ``field`` (``VmHWM``, ``VmRSS``) of the process tree, in bytes."""
    largest = 0
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    largest = max(largest, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return largest


@dataclass
class Round:
    seconds: float
    rows_per_second: float
    steps: dict[str, float]
    counts: dict[str, int]
    reconciled: bool


def run_once(process: Service) -> Round:
    started = time.perf_counter()
    response = httpx.post(
        f"{process.url}/v1/flows/actuals-to-plan/runs",
        json={"period_from": FIRST, "period_to": LAST},
        timeout=30,
    )
    response.raise_for_status()
    location = f"{process.url}{response.headers['location']}"
    while True:
        run: dict[str, Any] = httpx.get(location, timeout=30).json()
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if run["status"] != "succeeded":
        raise SystemExit(f"the run ended {run['status']}: {run.get('error')}")
    return Round(
        seconds=seconds,
        rows_per_second=run["counts"]["balances"] / seconds,
        steps=run["result"]["seconds"],
        counts=run["counts"],
        reconciled=run["result"]["reconciled"],
    )


def fetch_lines(system: Service, path: Path) -> int:
    """The same lines the pipeline reads, from the system API, into ``path``; their count."""
    count = 0
    with path.open("wb") as sink:
        for number in range(1, CARDINALITIES["entities"] + 1):
            with httpx.stream(
                "GET",
                f"{system.url}/v1/erp/{SOURCE}/balances",
                params={"entity": f"G{number:02d}", "from": FIRST, "to": LAST},
                headers={"Accept": "application/x-ndjson"},
                timeout=120,
            ) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    count += chunk.count(b"\n")
                    sink.write(chunk)
    return count


def batches(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    """``data`` cut into runs of whole lines of about ``size`` bytes, as the process layer's client cuts a stream."""
    start = 0
    while start < len(data):
        end = len(data) if start + size >= len(data) else data.rfind(b"\n", start, start + size) + 1
        yield data[start:end]
        start = end


def msgspec_rate(path: Path, rounds: int) -> float:
    """Lines per second of a typed msgspec decode of the file (best of ``rounds``), in batches as streamed."""
    data = path.read_bytes()
    lines = data.count(b"\n")
    decoder = msgspec.json.Decoder(BalanceLine)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        decoded = sum(len(decoder.decode_lines(batch)) for batch in batches(data))
        best = min(best, time.perf_counter() - started)
        assert decoded == lines, (decoded, lines)
    return lines / best


def dlt_rate(path: Path, lines: int, tmp: Path) -> dict[str, Any]:
    """Rows per second of dlt loading the first ``lines`` lines into DuckDB, in its own venv."""
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {DLT_VENV} with dlt[duckdb] (for this benchmark only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "dlt[duckdb]"], check=True, timeout=1200
        )
    script = tmp / "dlt_load.py"
    script.write_text(DLT_SCRIPT, encoding="utf-8")
    env = {**os.environ, "DLT_DATA_DIR": str(tmp / "dlt-data"), "RUNTIME__LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [str(python), str(script), str(path), str(tmp / "dlt.duckdb"), str(lines)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
        timeout=3600,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows_per_second"] = result["rows"] / result["seconds"]
    return result


@dataclass
class Result:
    command: str
    date: str
    machine: str
    cardinalities: dict[str, int]
    lines: int
    cells: int
    rounds: list[dict[str, Any]]
    pipeline_rows_per_second_best: float
    pipeline_rows_per_second_median: float
    microseconds_per_row: dict[str, float]
    process_peak_rss_mb: float
    process_idle_rss_mb: float
    msgspec_lines_per_second: float
    dlt: dict[str, Any] | None
    ratio_to_dlt: float | None
    ratio_to_msgspec: float
    targets: dict[str, bool]


def environment(tmp: Path, name: str, redis_url: str, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env.update(
        {
            "FINSYNC_DATA_DIR": str(tmp / name),
            "FINSYNC_REDIS_URL": redis_url,
            "FINSYNC_AUTH__ENABLED": "false",
            "FINSYNC_RATE_LIMIT__ENABLED": "false",
            **{f"FINSYNC_{key.upper()}": value for key, value in settings.items()},
        }
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="pipeline runs (default 3)")
    parser.add_argument("--dlt-lines", type=int, default=100_000, help="lines dlt loads (default 100,000)")
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out")
    args = parser.parse_args()
    lines = total_lines()
    print(f"cardinalities: {CARDINALITIES}, periods {FIRST}..{LAST}: {lines:,} lines", flush=True)
    with tempfile.TemporaryDirectory(prefix="finsync-bench-pipeline-") as name:
        tmp = Path(name)
        for key, value in _measure(tmp, args, lines).items():
            print(f"{key}: {value}")


def _measure(tmp: Path, args: argparse.Namespace, lines: int) -> dict[str, Any]:
    with _infrastructure(tmp) as (redis_url, ledger_url, sandbox):
        add_planning_members(sandbox)
        config = tmp / "finsync.toml"
        config.write_text(config_toml(sandbox), encoding="utf-8")
        map_version = write_map(tmp / "maps")
        system = serve(
            "system", environment(tmp, "system", redis_url, config=str(config)), tmp / "system.log"
        )
        process = serve(
            "process",
            environment(
                tmp,
                "process",
                redis_url,
                system_url=system.url,
                ledger__database_url=ledger_url,
                flows__actuals_to_plan__source=SOURCE,
                flows__actuals_to_plan__planning=PLANNING,
                flows__actuals_to_plan__maps_dir=str(tmp / "maps"),
                flows__actuals_to_plan__map_version=map_version,
                client__timeout="120",
            ),
            tmp / "process.log",
        )
        try:
            idle = memory(process.process.pid, "VmRSS")
            rounds = []
            for number in range(1, args.rounds + 1):
                result = run_once(process)
                rounds.append(result)
                print(
                    f"round {number}: {result.seconds:.2f} s, {result.rows_per_second:,.0f} rows/s, "
                    f"reconciled {result.reconciled}, steps {result.steps}",
                    flush=True,
                )
            peak = memory(process.process.pid, "VmHWM")
            path = tmp / "lines.ndjson"
            fetched = fetch_lines(system, path)
        finally:
            process.stop()
            system.stop()
    raw = msgspec_rate(path, 3)
    dlt = None if args.skip_dlt else dlt_rate(path, min(args.dlt_lines, fetched), tmp)
    best = max(r.rows_per_second for r in rounds)
    median = statistics.median(r.rows_per_second for r in rounds)
    fastest = max(rounds, key=lambda r: r.rows_per_second)
    per_row = {step: round(seconds / lines * 1e6, 3) for step, seconds in fastest.steps.items()}
    result = Result(
        command=shlex.join([".venv/bin/python", "-m", "tests.benchmarks.bench_pipeline", *sys.argv[1:]]),
        date=dt.datetime.now(dt.UTC).date().isoformat(),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        cardinalities=CARDINALITIES,
        lines=fetched,
        cells=fastest.counts["cells"],
        rounds=[asdict(r) for r in rounds],
        pipeline_rows_per_second_best=round(best),
        pipeline_rows_per_second_median=round(median),
        microseconds_per_row=per_row,
        process_peak_rss_mb=round(peak / 2**20, 1),
        process_idle_rss_mb=round(idle / 2**20, 1),
        msgspec_lines_per_second=round(raw),
        dlt=dlt,
        ratio_to_dlt=round(median / dlt["rows_per_second"], 1) if dlt else None,
        ratio_to_msgspec=round(median / raw, 3),
        targets={
            "20x dlt": bool(dlt) and median >= 20 * dlt["rows_per_second"],  # type: ignore[index]
            "peak RSS < 300 MB": peak < 300 * 2**20,
            "every run reconciled": all(r.reconciled for r in rounds),
            "a million lines": fetched == lines == fastest.counts["balances"],
        },
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    print(f"reproduce (from {ROOT}): {result.command}\nresult written to {RESULTS / 'pipeline.json'}")
    return {
        "pipeline rows/s (median, best)": f"{median:,.0f}, {best:,.0f}",
        "microseconds per row by step": per_row,
        "process service peak RSS": f"{result.process_peak_rss_mb} MB (idle {result.process_idle_rss_mb} MB)",
        "raw msgspec lines/s": f"{raw:,.0f}",
        "dlt rows/s": f"{dlt['rows_per_second']:,.0f} over {dlt['rows']:,} lines" if dlt else "skipped",
        "ratio to dlt": result.ratio_to_dlt,
        "ratio to raw msgspec": result.ratio_to_msgspec,
        "targets": result.targets,
    }


@contextmanager
def _infrastructure(tmp: Path) -> Iterator[tuple[str, str, PlanningSandbox]]:
    """Redis, the ledger's PostgreSQL and the planning sandbox, started, then stopped."""
    redis = EmbeddedRedis(tmp / "redis")
    postgres = EmbeddedPostgres(tmp / "postgres")
    redis.start()
    postgres.start()
    sandbox: PlanningSandbox | None = None
    try:
        create_database(postgres.url, "ledger")
        (tmp / "sandbox").mkdir()
        sandbox = start_sandbox(tmp / "sandbox")
        yield redis.url, database_url(postgres.url, "ledger"), sandbox
    finally:
        if sandbox is not None:
            stop_sandbox(sandbox)
        postgres.stop()
        redis.stop()


if __name__ == "__main__":
    main()
