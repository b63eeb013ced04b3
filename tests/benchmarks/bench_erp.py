"""The ERP system API's own cost: CPU per journal line with Tryton replayed, Tryton direct against the API, memory.

Run from the repository root (the first run builds and seeds an ERP database,
kept as a PostgreSQL template under ``.finsync/bench-erp`` for later runs)::

    .venv/bin/python -m tests.benchmarks.bench_erp [--lines 10000] [--reads 5] [--rounds 3]

What it measures, against one seeded Tryton (``--lines`` journal lines, the
seed's default size):

1. **Gateway CPU per line** (target <= 20 µs). The system service (granian, one
   worker, pinned to CPU 0) streams every journal entry of the ERP, page after
   page as ``application/x-ndjson``, while a *replay server* answers its
   JSON-RPC calls with Tryton's answers recorded once through a recording proxy,
   byte for byte. So Tryton is out of the loop and the service's CPU time
   (user + system, read from ``/proc`` for its whole process group) is the
   gateway's own: decoding Tryton's answers, mapping to the canonical model,
   the incremental-read bookkeeping, encoding. Baseline measured in the same
   run: raw msgspec, decoding the same recorded answers into plain objects and
   encoding their lines again, in this process, per line.
2. **Against Tryton directly.** The same read through the system API (against
   the real Tryton) and straight from Tryton with the same JSON-RPC calls from a
   plain client; the ratio of wall times should be about 1.0, since Tryton's
   own time dominates.
3. **Memory.** Peak minus idle RSS of the service (fresh for each figure) while
   streaming the ERP once (N lines) and ``--reads`` times (5N); the figure at 5N
   is within 10% of the figure at N when memory does not grow with the volume.
4. **Seeding time**: building the seeded template of a fresh variant
   (``--seed-timing``, off by default: it takes minutes) or, otherwise, the
   time the cached template took to build, from its log.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import gzip
import http.server
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from shared.postgres import EmbeddedPostgres
from shared.processes import die_with_parent
from shared.redis import EmbeddedRedis
from system_apis.connectors.tryton.database import Seed, build_seeded, setup_database
from system_apis.connectors.tryton.server import TrytonServer
from system_apis.connectors.tryton.trytond_conf import TrytonPaths
from tests.benchmarks.harness import GRANIAN, HOST, RESULTS, ROOT, SERVER_CPU, free_port, pinning, stop

if TYPE_CHECKING:
    from collections.abc import Iterator

TARGET_US_PER_LINE = 20.0
MEMORY_TOLERANCE = 0.10
DATA_DIR = ROOT / ".finsync" / "bench-erp"
DATABASE = "bench_erp"
SOURCE = "erp"
PAGE = 500
"""Journal entries per page of the read (the API's maximum)."""
TICKS = os.sysconf("SC_CLK_TCK")
READS_PER_ROUND = 3
"""Whole reads per CPU measurement: the kernel counts CPU time in 10 ms ticks."""
GZIP_OVER = 1400
"""Tryton gzips (level 1) answers longer than this, for clients that accept it; the replay does the same."""


# ----------------------------------------------------------------------------- replay


def _normalized(body: bytes) -> str:
    """The key of a JSON-RPC request: method and params, with every datetime (``until``, cursors) blanked.

    The read's bounds are "now" and so differ between recording and replay; the
    records' own ids, which decide the pages, stay.
    """
    request = json.loads(body)

    def blank(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("__class__") == "datetime":
                return "datetime"
            return {key: blank(item) for key, item in value.items()}
        if isinstance(value, list):
            return [blank(item) for item in value]
        return value

    return json.dumps([request["method"], blank(request["params"])], sort_keys=True)


class Tape:
    """Tryton's answers by request, recorded through :class:`RecordingProxy`, served by :class:`ReplayServer`."""

    def __init__(self) -> None:
        self.answers: dict[str, bytes] = {}
        self.misses = 0

    def get(self, body: bytes) -> bytes | None:
        answer = self.answers.get(_normalized(body))
        if answer is None:
            self.misses += 1
        return answer


def _handler(tape: Tape, upstream: str | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if upstream is not None:  # recording: forward, keep the answer
                forwarded = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
                }
                with httpx.Client(timeout=120) as client:
                    request = client.build_request(
                        "POST", upstream + self.path, content=body, headers=forwarded
                    )
                    answer = client.send(request, stream=True)
                    raw = b"".join(answer.iter_raw())
                # Tryton labels some plain bodies gzip; only the magic number says what they are.
                payload = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
                if answer.status_code == 200:
                    tape.answers[_normalized(body)] = payload
                status = answer.status_code
            else:  # replaying
                recorded = tape.get(body)
                status, payload = (200, recorded) if recorded is not None else (500, b"not recorded")
            self.send_response(status)
            if len(payload) > GZIP_OVER and "gzip" in self.headers.get("Accept-Encoding", ""):
                payload = gzip.compress(payload, compresslevel=1)  # as Tryton answers
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return

    return Handler


@contextlib.contextmanager
def tape_server(tape: Tape, upstream: str | None) -> Iterator[str]:
    """A threaded loopback server recording through to ``upstream``, or replaying when it is ``None``."""
    server = http.server.ThreadingHTTPServer((HOST, 0), _handler(tape, upstream))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------- the system service


@dataclass
class Service:
    """The system service, one granian worker, pinned; its process group is measured."""

    process: subprocess.Popen[bytes]
    url: str

    def pids(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    fields = stat[stat.rindex(")") + 2 :].split()
                    if int(fields[2]) == self.process.pid:  # process group
                        found.append(int(entry.name))
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total


@contextlib.contextmanager
def system_service(tryton_url: str, password_file: Path, logs: Path) -> Iterator[Service]:
    """``system_apis.app:create_app`` under granian, over one ``tryton`` source at ``tryton_url``."""
    port = free_port()
    config = logs / f"system-{port}.toml"
    config.write_text(
        f'[sources.{SOURCE}]\nkind = "tryton"\nurl = "{tryton_url}"\ndatabase = "{DATABASE}"\n'
        f'password_file = "{password_file}"\nconcurrency = 4\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSYNC_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "FINSYNC_CONFIG": str(config),
        "FINSYNC_DATA_DIR": str(DATA_DIR),
        "FINSYNC_AUTH__ENABLED": "false",
        "FINSYNC_RATE_LIMIT__ENABLED": "false",
        "FINSYNC_LOG__ACCESS": "false",
        "FINSYNC_REDIS_URL": os.environ["BENCH_REDIS_URL"],
    }
    command = [
        *pinning(SERVER_CPU),
        str(GRANIAN), "--interface", "asgi", "--factory", "--workers", "1", "--host", HOST, "--port", str(port),
        "--no-access-log", "system_apis.app:create_app",
    ]  # fmt: skip
    with (logs / f"system-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        try:
            url = f"http://{HOST}:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/health/live", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"the system service did not start; see {logs}")
            yield Service(process, url)
        finally:
            stop(process)


def stream_all(service_url: str, reads: int = 1) -> tuple[int, int, float]:
    """Read every journal entry ``reads`` times, as NDJSON pages; (entries, lines, seconds)."""
    entries = lines = 0
    started = time.perf_counter()
    with httpx.Client(base_url=service_url, timeout=300) as client:
        for _ in range(reads):
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": PAGE}
                if cursor:
                    params["cursor"] = cursor
                with client.stream(
                    "GET",
                    f"/v1/erp/{SOURCE}/journal-entries",
                    params=params,
                    headers={"Accept": "application/x-ndjson"},
                ) as response:
                    if response.status_code != 200:
                        raise RuntimeError(f"read failed: {response.status_code} {response.read()[:300]!r}")
                    for raw in response.iter_lines():
                        if raw:
                            entries += 1
                            lines += raw.count('"account_code"')
                    cursor = response.headers.get("next-cursor")
                if not cursor:
                    break
    return entries, lines, time.perf_counter() - started


# ----------------------------------------------------------------------------- direct from Tryton


def direct_read(tryton_url: str, password: str) -> tuple[int, int, float]:
    """The same read straight from Tryton: the connector's JSON-RPC calls, from a plain client; (entries, lines, s)."""
    url = f"{tryton_url}/{DATABASE}/rpc/"
    started = time.perf_counter()
    with httpx.Client(timeout=300) as client:

        def call(method: str, *params: Any, auth: str | None = None) -> Any:
            headers = {"Authorization": auth} if auth else {}
            answer = client.post(
                url, json={"id": 1, "method": method, "params": list(params)}, headers=headers
            ).json()
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            return answer["result"]

        user, session = call("common.db.login", "finsync", {"password": password}, "en")[:2]
        auth = "Session " + base64.b64encode(f"finsync:{user}:{session}".encode()).decode()
        companies = call("model.company.company.search", [], 0, None, None, {}, auth=auth)
        context = {"company": companies[0], "companies": companies}
        entries = lines = 0
        after: list[Any] | None = None
        while True:
            domain: list[Any] = [("company", "in", companies)]
            if after is not None:
                domain.append(
                    [
                        "OR",
                        ("write_date", ">", after[0]),
                        [("write_date", "=", after[0]), ("id", ">", after[1])],
                    ]
                )
            moves = call(
                "model.account.move.search_read", domain, 0, PAGE, [["write_date", "ASC"], ["id", "ASC"]],
                ["id", "number", "date", "period.name", "journal.code", "state", "description", "company",
                 "external_ref", "origin", "write_date", "create_date"], context, auth=auth,
            )  # fmt: skip
            if not moves:
                break
            ids = [move["id"] for move in moves]
            move_lines = call(
                "model.account.move.line.search_read", [("move", "in", ids)], 0, None, [["id", "ASC"]],
                ["id", "move", "account.code", "debit", "credit", "party.code", "description"], context, auth=auth,
            )  # fmt: skip
            call(
                "model.analytic_account.line.search_read",
                [("move_line", "in", [line["id"] for line in move_lines]), ("account.root.code", "=", "CC")],
                0, None, [["id", "ASC"]], ["id", "move_line", "account.code", "debit", "credit"], context, auth=auth,
            )  # fmt: skip
            entries += len(moves)
            lines += len(move_lines)
            last = moves[-1]
            after = [last["write_date"], last["id"]]
            if len(moves) < PAGE:
                break
    return entries, lines, time.perf_counter() - started


# ----------------------------------------------------------------------------- raw msgspec baseline


def raw_msgspec_us_per_line(tape: Tape, rounds: int) -> float:
    """µs per line to decode the recorded move-line answers and encode each line again, msgspec only."""
    bodies = [answer for key, answer in tape.answers.items() if "account.move.line.search_read" in key]
    lines = sum(len(msgspec.json.decode(body)["result"]) for body in bodies)
    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for body in bodies:
            for line in decoder.decode(body)["result"]:
                encoder.encode(line)
        best = min(best, time.process_time() - started)
    return best / max(lines, 1) * 1e6


# ----------------------------------------------------------------------------- the run


@dataclass
class Result:
    """What one run measured."""

    date: str
    command: str
    machine: str
    lines_in_erp: int
    entries_in_erp: int
    cpu_us_per_line: list[float] = field(default_factory=list)
    cpu_us_per_line_median: float = 0.0
    target_us_per_line: float = TARGET_US_PER_LINE
    cpu_passed: bool = False
    raw_msgspec_us_per_line: float = 0.0
    ratio_to_raw_msgspec: float = 0.0
    replay_misses: int = 0
    api_seconds: list[float] = field(default_factory=list)
    direct_seconds: list[float] = field(default_factory=list)
    api_over_direct: float = 0.0
    memory_n_bytes: int = 0
    memory_5n_bytes: int = 0
    memory_ratio: float = 0.0
    memory_passed: bool = False
    seed_seconds: float | None = None
    seed_note: str = ""


def measure_memory(tryton_url: str, password_file: Path, logs: Path, reads: int) -> int:
    """Peak minus idle RSS of a fresh service while it streams the ERP ``reads`` times."""
    with system_service(tryton_url, password_file, logs) as service:
        # Idle: started and answering, no read yet; so the figure is all the memory a read takes.
        httpx.get(f"{service.url}/health/ready", timeout=10).raise_for_status()
        time.sleep(0.5)
        idle = service.rss_bytes()
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, service.rss_bytes())
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            stream_all(service.url, reads)
        finally:
            done.set()
            sampler.join()
        return peak - idle


def against_tryton(
    result: Result, tryton_url: str, password: str, password_file: Path, logs: Path, rounds: int
) -> None:
    """Wall time of one read through the API and straight from Tryton, interleaved."""
    with system_service(tryton_url, password_file, logs) as service:
        stream_all(service.url)  # warm-up: sessions, caches
        for _ in range(rounds):
            result.api_seconds.append(round(stream_all(service.url)[2], 3))
            result.direct_seconds.append(round(direct_read(tryton_url, password)[2], 3))
    result.api_over_direct = round(
        statistics.median(result.api_seconds) / statistics.median(result.direct_seconds), 3
    )
    print(f"through the API / straight from Tryton: {result.api_over_direct}x "
          f"(API {result.api_seconds} s, direct {result.direct_seconds} s)")  # fmt: skip


def gateway_cpu(result: Result, tryton_url: str, password_file: Path, logs: Path, rounds: int) -> Tape:
    """The service's CPU per line while Tryton is replayed; returns the tape."""
    tape = Tape()
    with tape_server(tape, tryton_url) as recorder, system_service(recorder, password_file, logs) as service:
        stream_all(service.url)
    print(f"recorded {len(tape.answers)} Tryton answers")
    with tape_server(tape, None) as replay, system_service(replay, password_file, logs) as service:
        stream_all(service.url)  # warm-up
        for _ in range(rounds):
            before = service.cpu_seconds()
            _, streamed, _ = stream_all(service.url, READS_PER_ROUND)
            used = service.cpu_seconds() - before
            result.cpu_us_per_line.append(round(used / streamed * 1e6, 2))
    result.replay_misses = tape.misses
    result.cpu_us_per_line_median = statistics.median(result.cpu_us_per_line)
    result.cpu_passed = result.cpu_us_per_line_median <= TARGET_US_PER_LINE and tape.misses == 0
    result.raw_msgspec_us_per_line = round(raw_msgspec_us_per_line(tape, rounds), 3)
    result.ratio_to_raw_msgspec = round(result.cpu_us_per_line_median / result.raw_msgspec_us_per_line, 1)
    print(f"gateway CPU per line (Tryton replayed): {result.cpu_us_per_line_median} µs "
          f"(rounds {result.cpu_us_per_line}; target <= {TARGET_US_PER_LINE}): "
          f"{'PASS' if result.cpu_passed else 'FAIL'}; raw msgspec {result.raw_msgspec_us_per_line} µs/line, "
          f"{result.ratio_to_raw_msgspec}x of it; replay misses {tape.misses}")  # fmt: skip
    return tape


def memory(result: Result, tape: Tape, password_file: Path, logs: Path, reads: int) -> None:
    """Peak minus idle RSS for N lines and for ``reads`` x N, Tryton replayed."""
    with tape_server(tape, None) as replay:
        result.memory_n_bytes = measure_memory(replay, password_file, logs, 1)
        result.memory_5n_bytes = measure_memory(replay, password_file, logs, reads)
    result.memory_ratio = round(result.memory_5n_bytes / max(result.memory_n_bytes, 1), 3)
    result.memory_passed = result.memory_ratio <= 1 + MEMORY_TOLERANCE
    print(f"memory, peak minus idle RSS: N={result.lines_in_erp} lines {result.memory_n_bytes / 2**20:.1f} MiB, "
          f"{reads}N {result.memory_5n_bytes / 2**20:.1f} MiB, ratio {result.memory_ratio} "
          f"(<= {1 + MEMORY_TOLERANCE}): {'PASS' if result.memory_passed else 'FAIL'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_erp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--lines", type=int, default=10_000, help="journal lines seeded (default 10000)")
    parser.add_argument("--reads", type=int, default=5, help="reads for the 5N memory figure (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each timing (default 3)")
    parser.add_argument("--seed-timing", action="store_true", help="time a fresh seed (minutes)")
    args = parser.parse_args(argv)
    command = ".venv/bin/python -m tests.benchmarks.bench_erp " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    logs = DATA_DIR / "logs"
    logs.mkdir(exist_ok=True)
    postgres = EmbeddedPostgres(DATA_DIR)
    postgres.start()
    redis = EmbeddedRedis(DATA_DIR)
    redis.start()
    os.environ["BENCH_REDIS_URL"] = redis.url
    paths = TrytonPaths(DATA_DIR)
    tryton = TrytonServer(DATA_DIR, postgres.url, [DATABASE], port=free_port())
    try:
        seed_seconds: float | None = None
        seed_note = ""
        if args.seed_timing:
            started = time.perf_counter()
            build_seeded(postgres.url, Seed(args.lines, int(time.time())), paths)
            seed_seconds = time.perf_counter() - started
            seed_note = f"fresh seeded template of {args.lines} lines, base template cached"
        database = setup_database(postgres.url, DATABASE, Seed(args.lines, 1), paths, replace=True)
        if seed_seconds is None:
            # The seed prints its own time first in the template's log ("... journal lines in 228.5s").
            log = paths.directory / f"{database.template}.log"
            first = log.read_text(encoding="utf-8").splitlines()[:1] if log.exists() else []
            seed_note = f"when the template was built: {first[0] if first else 'no log'}"
            with contextlib.suppress(IndexError, ValueError):
                seed_seconds = float(first[0].rsplit(" in ", 1)[1].rstrip("s"))
        tryton.start()
        password_file = paths.service_password_file
        password = password_file.read_text(encoding="utf-8").strip()

        entries, lines, _ = direct_read(tryton.url, password)
        print(f"ERP: {entries} journal entries, {lines} lines ({args.lines} seeded)")
        result = Result(
            date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            command=command,
            machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            lines_in_erp=lines,
            entries_in_erp=entries,
            seed_seconds=seed_seconds,
            seed_note=seed_note,
        )

        against_tryton(result, tryton.url, password, password_file, logs, args.rounds)
        tape = gateway_cpu(result, tryton.url, password_file, logs, args.rounds)
        memory(result, tape, password_file, logs, args.reads)
        print(f"seeding: {seed_seconds if seed_seconds is not None else '-'} s ({seed_note})")
    finally:
        tryton.stop()
        redis.stop()
        postgres.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "erp.json").write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    print(f"reproduce (from {ROOT}): {command}\nresult written to {RESULTS / 'erp.json'}")
    return 0 if result.cpu_passed and result.memory_passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
