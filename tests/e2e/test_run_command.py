"""``finsync run actuals-to-plan`` as a real process against the session's live stack.

One real run over a slice no other test loads (FS-EU, August) proves the
progress, the summary and exit 0; a second run over the same slice while the
first holds it ends ``conflict``. The refusals cost no load: an unknown entity,
a range backwards, a process layer that is not there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from shared.run_command import EXIT_NOT_RECONCILED, EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE
from shared.run_summary import money
from tests.support import closed_port, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import LiveStack

pytestmark = pytest.mark.slow

ENTITY = "FS-EU"
PERIOD = "2026-08"
"""A slice no other test loads, so no other run holds it."""
STEPS = ("extract", "map", "validate", "aggregate", "load", "reconcile")
RUN = [sys.executable, "-m", "shared.cli", "run", "actuals-to-plan"]


def _environment(stack: LiveStack) -> dict[str, str]:
    """What a user's shell next to that stack holds: its data dir and its ports."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env["FINSYNC_DATA_DIR"] = str(stack.data_dir)
    for service in ("auth", "process"):
        env[f"FINSYNC_PORTS__{service.upper()}"] = str(urlsplit(stack.urls[service]).port)
    return env


def _run(stack: LiveStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUN, *args],
        env=_environment(stack),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _process(stack: LiveStack, path: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {stack.token('finsync-process')}"}
    answer: dict[str, object] = httpx.get(
        f"{stack.urls['process']}{path}", headers=headers, timeout=10
    ).json()
    return answer


def test_a_run_shows_its_progress_and_ends_with_its_reconciliation(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        first = subprocess.Popen(
            [*RUN, "--entity", ENTITY, "--from", PERIOD, "--to", PERIOD],
            env=_environment(live_stack),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    try:
        assert wait_until(lambda: re.search(r"^run [0-9a-f]{24} ", out.read_text(), re.M) is not None, 30), (
            err.read_text()
        )
        run_id = out.read_text().split()[1]
        # Once the run has a step it holds its slice: a second run over it ends conflict, and says so.
        assert wait_until(
            lambda: _process(live_stack, f"/v1/flows/actuals-to-plan/runs/{run_id}")["step"], 30
        )
        second = _run(live_stack, "--entity", ENTITY, "--from", PERIOD, "--to", PERIOD)
        assert second.returncode == EXIT_NOT_RECONCILED, second.stderr
        assert re.search(r"run [0-9a-f]{24} ended conflict: another run holds 1 of its slices", second.stderr)
        assert first.wait(180) == EXIT_OK, err.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    elapsed = time.monotonic() - started
    printed, progress = out.read_text(), err.read_text()
    # Progress on stderr: one line per step seen, since stderr is no terminal (steps quicker than a poll go
    # unseen; loading and reconciling wait on planning tasks polled every 5 s).
    seen = [s for s in re.findall(r"^actuals-to-plan: (\w+) \d+% \(\d+s\)$", progress, re.M) if s in STEPS]
    assert seen == sorted(seen, key=STEPS.index), progress
    assert seen[-2:] == ["load", "reconcile"], progress
    # The summary on stdout, its totals the ledger's to the cent, then the final line.
    total = next(
        line
        for line in _process(live_stack, f"/v1/reconciliations?run_id={run_id}&limit=500")["items"]  # type: ignore[union-attr]
        if line["account"] is None
    )
    assert total["status"] == "matched"
    erp_total = money(Decimal(total["erp_total"]))
    assert re.search(
        rf"^  {ENTITY}\s+{PERIOD}\s+open\s+(\d+)\s+\1\s+0\s+{re.escape(erp_total)}\s+{re.escape(erp_total)}\s+0\.00$",
        printed,
        re.M,
    ), printed
    assert (
        printed.rstrip()
        .splitlines()[-1]
        .startswith(f"run {run_id} succeeded and reconciled: 1 slice(s), {ENTITY}, {PERIOD}..{PERIOD}, ")
    )
    print(f"one-slice run, watched by finsync run: {elapsed:.1f}s")


def test_a_run_over_an_unknown_entity_ends_non_zero_with_the_reason(live_stack: LiveStack) -> None:
    result = _run(live_stack, "--entity", "XX-NOPE", "--from", PERIOD, "--to", PERIOD)
    # The process layer checks the entities before it queues anything: a 422, and no run.
    assert result.returncode == EXIT_REFUSED, result
    assert "has no legal entity XX-NOPE" in result.stderr, result.stderr
    assert "run " not in result.stdout


def test_a_run_the_process_layer_refuses_ends_with_its_problem_detail(live_stack: LiveStack) -> None:
    result = _run(live_stack, "--from", "2026-06", "--to", "2026-01")
    assert result.returncode == EXIT_REFUSED, result
    assert "the process layer refused the run: 400 " in result.stderr
    assert "period_to is before period_from" in result.stderr
    assert "run " not in result.stdout  # nothing was started


def test_a_process_layer_that_is_not_there_ends_with_a_clear_message(live_stack: LiveStack) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = _run(live_stack, "--process-url", url, "--from", PERIOD, "--to", PERIOD)
    assert result.returncode == EXIT_UNAVAILABLE, result
    assert f"cannot reach the process layer at {url}" in result.stderr
    assert "is the stack up ('finsync up')?" in result.stderr


def test_a_range_that_is_no_period_is_refused_before_any_call(tmp_path: Path) -> None:
    result = subprocess.run(
        [*RUN, "--from", "2026-13"],
        env={"FINSYNC_DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == EXIT_REFUSED
    assert "'2026-13' is not a period YYYY-MM" in result.stderr
