"""Crash mid-run: the process service gets ``kill -9`` while an actuals-to-plan run loads into planning.

The system and process layers run as real ``finsync serve`` processes over the
real Tryton (``erp``), the planning sandbox (``sandbox``), a fresh ledger
database and the session Redis. The planning sandbox is slowed so that the
run's load step lasts seconds; the process service's whole process group is
killed with SIGKILL once a planning load is in flight. After a restart the
orphaned run is ``abandoned`` and names the run that replaced it; once that run
completes, planning holds what Tryton holds (the same oracle as
``tests/integration/test_actuals_to_plan.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.processes import die_with_parent
from tests.integration.test_actuals_to_plan import PLAN, RUNS, assert_planning_is_the_oracle
from tests.integration.test_erp_api import A, sources
from tests.integration.test_planning_api import planning_source
from tests.support import free_port, processes_with, ready, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.erp_fixtures import Erp
    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

PERIOD = "2026-11"
"""A period no other test of the flow loads."""
ENTITIES = ("FS-EU", "FS-US")
CLAIM_AFTER = 3
"""Seconds before a live worker claims the dead worker's job."""
TASK_DELAY = 2.0
"""Extra seconds each planning task takes while the run is to be killed."""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    raise TypeError(f"no TOML for {value!r}")


def _sources_toml(tables: dict[str, dict[str, Any]]) -> str:
    """``[sources.NAME]`` tables of flat source configs."""
    lines: list[str] = []
    for name, config in tables.items():
        lines.append(f"[sources.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in config.items()]
        lines.append("")
    return "\n".join(lines)


class Service:
    """One ``finsync serve LAYER`` in a session (a process group) of its own, logging to a file."""

    def __init__(self, layer: str, env: dict[str, str], log: Path) -> None:
        self.layer = layer
        self.log = log
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._env = env

    def start(self) -> str:
        port = free_port()
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "serve", self.layer, "--port", str(port)],
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                start_new_session=True,  # its own process group: kill -9 reaches every worker
                preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads are started before it
            )
        self.url = f"http://127.0.0.1:{port}"
        process = self.process
        assert wait_until(lambda: ready(self.url) or process.poll() is not None, 60), self.output()
        assert process.poll() is None, self.output()
        return self.url

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """``kill -9`` the whole process group, as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        """SIGINT, then SIGKILL if it has not ended within 20 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], Service]]:
    """Make services; every one is stopped at the end, and none may be left behind."""
    made: list[Service] = []

    def make(layer: str, env: dict[str, str]) -> Service:
        service = Service(layer, env, tmp_path / f"{layer}.log")
        made.append(service)
        return service

    yield make
    for service in reversed(made):
        service.stop()
    assert wait_until(lambda: not processes_with(str(tmp_path / "data")), 15), processes_with(
        str(tmp_path / "data")
    )


def _environment(data_dir: Path, redis_url: str, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env.update(
        {
            "FINSYNC_DATA_DIR": str(data_dir),
            "FINSYNC_REDIS_URL": redis_url,
            "FINSYNC_AUTH__ENABLED": "false",
            "FINSYNC_RATE_LIMIT__ENABLED": "false",
            "FINSYNC_LOG__ACCESS": "false",
        }
    )
    env.update({f"FINSYNC_{key.upper()}": value for key, value in settings.items()})
    return env


def _poll(client: httpx.Client, path: str, until: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """GET ``path`` until ``until(json)`` holds; fails naming ``what`` and the last answer."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        response = client.get(path)
        if response.status_code == 200:
            body = response.json()
            if until(body):
                return body
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout:g} s; last answer: {body}")


def test_a_run_killed_mid_load_is_abandoned_and_its_replacement_makes_planning_equal_the_erp(
    tmp_path: Path,
    erp: Erp,
    sandbox: PlanningSandbox,
    ledger_url: str,
    redis_url: str,
    services: Callable[[str, dict[str, str]], Service],
) -> None:
    config = tmp_path / "finsync.toml"
    config.write_text(_sources_toml({**sources(erp), **planning_source(sandbox)}), encoding="utf-8")
    system_url = services(
        "system", _environment(tmp_path / "data" / "system", redis_url, config=str(config))
    ).start()
    process = services(
        "process",
        _environment(
            tmp_path / "data" / "process",
            redis_url,
            system_url=system_url,
            ledger__database_url=ledger_url,
            worker__claim_after=str(CLAIM_AFTER),
            worker__backoff="0.1",
            flows__actuals_to_plan__source=A,
            flows__actuals_to_plan__planning=PLAN,
        ),
    )
    sandbox.faults(task_delay=TASK_DELAY)
    body = {"period_from": PERIOD, "period_to": PERIOD, "entities": list(ENTITIES)}

    with httpx.Client(base_url=process.start(), timeout=10) as client:
        response = client.post(RUNS, json=body)
        assert response.status_code == 202, response.text
        location = response.headers["location"]
        orphan = response.json()
        # Kill it once a planning load is in flight: the intent is written just before the load starts,
        # and the sandbox's import task then takes TASK_DELAY seconds.
        _poll(
            client,
            f"/v1/audit/traces/{orphan['trace_id']}",
            lambda trace: any(e["step"] == "load" and e["kind"] == "intent" for e in trace["events"]),
            30,
            "the run sent no planning load",
        )
        assert wait_until(lambda: sandbox.counters()["tasks_started"]["imports"] >= 1, 10)
        killed = client.get(location).json()
    assert killed["status"] == "running", killed
    assert killed["step"] == "load", killed
    process.kill()
    assert wait_until(lambda: not processes_with(str(tmp_path / "data" / "process")), 10)

    sandbox.faults()  # planning back to normal speed for the run that replaces the orphan
    with httpx.Client(base_url=process.start(), timeout=10) as client:
        abandoned = _poll(
            client,
            location,
            lambda run: run["status"] == "abandoned" and "replaced_by" in (run["result"] or {}),
            30,
            "the orphaned run was not marked abandoned and replaced",
        )
        replacement = _poll(
            client,
            f"{RUNS}/{abandoned['result']['replaced_by']}",
            lambda run: run["status"] not in ("queued", "running"),
            60,
            "the replacement run did not end",
        )
        runs = client.get("/v1/runs", params={"flow": "actuals-to-plan"}).json()["items"]

    assert replacement["status"] == "succeeded", (
        f"the run replacing the orphan ended {replacement['status']}: {replacement['error']}"
    )
    assert replacement["result"]["reconciled"] is True, replacement
    assert replacement["counts"]["rows_loaded"] > 0, replacement
    assert replacement["trigger"] == "replay"
    assert replacement["params"] == orphan["params"]
    assert replacement["slice_keys"] == orphan["slice_keys"]
    assert abandoned["error"]
    for entity in ENTITIES:
        assert_planning_is_the_oracle(erp, sandbox, entity, [PERIOD])
    assert {run["id"]: (run["status"], run["trigger"]) for run in runs} == {
        orphan["id"]: ("abandoned", "manual"),
        replacement["id"]: ("succeeded", "replay"),
    }
