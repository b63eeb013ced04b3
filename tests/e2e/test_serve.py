"""``finsync serve`` on its own: embedded Redis ownership, and metrics across workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import free_port, processes_with, ready, wait_until


def _serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    environment["FINSYNC_DATA_DIR"] = str(tmp_path / "data")
    environment.update(env or {})
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", *args, "--port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: ready(url) or process.poll() is not None, 60)
    assert process.poll() is None, (tmp_path / "serve.log").read_text()
    return process, url


def test_metrics_add_up_across_workers(tmp_path: Path, ledger_url: str) -> None:
    # Metrics are what is checked here; tokens are covered elsewhere.
    env = {"FINSYNC_AUTH__ENABLED": "false", "FINSYNC_LEDGER__DATABASE_URL": ledger_url}
    process, url = _serve(tmp_path, "process", "--workers", "2", env=env)
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            for _ in range(40):
                # A fresh connection each time, so requests spread over both workers.
                assert httpx.get(f"{url}/v1/flows", timeout=5).status_code == 200
            assert client.get("/v1/flows/no-such-flow").status_code == 404
            text = client.get("/metrics").text
        count = re.search(
            r'finsync_http_request_duration_seconds_count\{method="GET",route="/v1/flows",service="process",status="200"\} (\S+)',
            text,
        )
        assert count is not None, text
        assert float(count.group(1)) == 40
        assert (
            'finsync_http_errors_total{method="GET",route="/v1/flows/{flow_id}",service="process",status="404"} 1.0'
            in text
        )
        # Both workers served and wrote samples; the scrape above merged them.
        assert len(list((tmp_path / "data" / "metrics" / "process").glob("histogram_*.db"))) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert wait_until(lambda: not processes_with(str(tmp_path / "data")), 15)


def test_serve_starts_and_stops_its_own_embedded_redis(tmp_path: Path) -> None:
    process, url = _serve(tmp_path, "system")
    pidfile = tmp_path / "data" / "redis" / "redis.pid"
    assert pidfile.exists()
    redis_pid = int(pidfile.read_text())
    assert httpx.get(f"{url}/health/ready", timeout=5).json()["checks"] == {"redis": "up"}
    process.send_signal(signal.SIGINT)
    process.wait(20)
    assert wait_until(lambda: not Path(f"/proc/{redis_pid}").exists(), 15)


def test_a_wrong_setting_stops_start_up_and_names_the_key(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    environment["FINSYNC_LOG__LEVL"] = "DEBUG"
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "serve", "system"],
        env=environment,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"FINSYNC_LOG__LEVL" in result.stderr
    assert b"Traceback" not in result.stderr
