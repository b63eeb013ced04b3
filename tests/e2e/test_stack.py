"""``finsync up`` owns every process it starts, and leaves none behind."""

from __future__ import annotations

import os
import signal
import stat
import tomllib
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.auth.local import fetch_token, local_secrets_path, read_local_secrets
from tests.conftest import start_stack, stop_stack
from tests.support import processes_with, wait_until

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_every_process(tmp_path: Path, sig: int) -> None:
    process, urls, output = start_stack(tmp_path)
    data_dir = tmp_path / "data"
    owned = processes_with(str(data_dir))
    # Redis, plus at least one server process for the authorization server and for each layer.
    assert len(owned) >= 5, owned
    assert (data_dir / "redis" / "redis.pid").exists()
    printed = output.read_text()
    assert f"auth        {urls['auth']}" in printed
    assert printed.index("  auth ") < printed.index("  system ")
    # The local clients: secrets kept private, every child reading the merged config.
    assert stat.S_IMODE(local_secrets_path(data_dir).stat().st_mode) == 0o600
    assert set(tomllib.loads((data_dir / "stack.toml").read_text())["clients"]) == {
        "demo",
        "process",
        "experience",
    }
    token = fetch_token(f"{urls['auth']}/oauth/token", "demo", read_local_secrets(data_dir)["demo"])
    headers = {"authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{urls['experience']}/v1/overview", headers=headers, timeout=10).status_code == 200
    stop_stack(process, data_dir, sig)
    assert "stopped." in output.read_text()


def test_killing_the_supervisor_takes_its_children_down(tmp_path: Path) -> None:
    process, _urls, _output = start_stack(tmp_path)
    data_dir = tmp_path / "data"
    assert processes_with(str(data_dir))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert wait_until(lambda: not processes_with(str(data_dir)), 20), processes_with(str(data_dir))


def test_a_second_stack_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    process, _urls, _output = start_stack(tmp_path)
    try:
        import subprocess
        import sys

        from tests.conftest import stack_environment
        from tests.support import free_port

        ports = {service: free_port() for service in ("auth", "system", "process", "experience")}
        second = subprocess.run(
            [sys.executable, "-m", "shared.cli", "up"],
            env=stack_environment(tmp_path / "data", ports),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert b"already serves" in second.stderr
    finally:
        stop_stack(process, tmp_path / "data")
