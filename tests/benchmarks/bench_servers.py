"""Which ASGI server serves the kernel faster: granian against uvicorn (uvloop + httptools).

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_servers [--pairs 5] [--duration 5] [--connections 32]

Same method as ``bench_kernel``: the kernel app (``tests.benchmarks.apps:kernel_app``),
one worker pinned to CPU 0, wrk pinned to CPU 1 after a discarded warm-up, runs
interleaved uvicorn, granian, uvicorn, granian, ...; the result is the median of the
per-pair ratios granian/uvicorn. uvicorn is the baseline because it is the common
default; it is installed into the venv only for this measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
from pathlib import Path

from shared.redis import EmbeddedRedis
from tests.benchmarks.bench_kernel import RESULTS, UVICORN_PACKAGES, ensure_packages, ensure_wrk, measure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved pairs and print the median ratio granian/uvicorn."""
    args = parse_args(argv)
    wrk = ensure_wrk()
    ensure_packages(UVICORN_PACKAGES)
    ratios: list[float] = []
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="finsync-bench-") as tmp:
        redis = EmbeddedRedis(Path(tmp))
        redis.start()
        try:
            for i in range(1, args.pairs + 1):
                uvicorn = measure("kernel", wrk, args, redis.url, Path(tmp), server="uvicorn")
                granian = measure("kernel", wrk, args, redis.url, Path(tmp), server="granian")
                ratios.append(granian.rps / uvicorn.rps)
                runs.append({"uvicorn_rps": uvicorn.rps, "granian_rps": granian.rps})
                print(
                    f"pair {i}/{args.pairs}: uvicorn {uvicorn.rps:.0f} req/s (p99 {uvicorn.p99_ms} ms), "
                    f"granian {granian.rps:.0f} req/s (p99 {granian.p99_ms} ms), ratio {ratios[-1]:.3f}",
                    flush=True,
                )
        finally:
            redis.stop()
    median = statistics.median(ratios)
    command = (
        f".venv/bin/python -m tests.benchmarks.bench_servers --pairs {args.pairs} --duration {args.duration}"
        f" --connections {args.connections} --threads {args.threads}"
    )
    print(f"\nmedian ratio granian/uvicorn on the kernel app: {median:.3f}x")
    print(f"reproduce: {command}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "servers.json").write_text(
        json.dumps(
            {
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "command": command,
                "median_ratio_granian_over_uvicorn": round(median, 4),
                "ratios": [round(r, 4) for r in ratios],
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
