"""Two replicas of one service, as separate OS processes, share one rate limit through Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx

from tests.support import free_port, ready, wait_until
from tests.tokens import TestIssuer

if TYPE_CHECKING:
    from pathlib import Path


def test_two_replicas_share_one_limit(tmp_path: Path, redis_url: str, ledger_url: str) -> None:
    issuer = TestIssuer(tmp_path)
    config = tmp_path / "finsync.toml"
    config.write_text(
        '[clients.partner-1]\ntier = "trial"\n\n[tiers.trial]\nlimit = "6/minute"\n', encoding="utf-8"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env |= {
        "FINSYNC_CONFIG": str(config),
        "FINSYNC_DATA_DIR": str(tmp_path / "data"),
        "FINSYNC_REDIS_URL": redis_url,
        "FINSYNC_AUTH__ISSUER": issuer.issuer,
        "FINSYNC_AUTH__JWKS_FILE": str(issuer.jwks_file),
        "FINSYNC_LEDGER__DATABASE_URL": ledger_url,  # the process layer keeps its control ledger there
    }
    ports = [free_port(), free_port()]
    replicas = []
    for index, port in enumerate(ports):
        with (tmp_path / f"replica-{index}.log").open("wb") as log:
            replicas.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shared.cli", "serve", "process", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            )
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        assert wait_until(lambda: all(ready(url) for url in urls), 60)
        assert len({process.pid for process in replicas}) == 2
        headers = {"authorization": f"Bearer {issuer.token('finsync-process', 'flows:read')}"}
        answers = [httpx.get(f"{urls[n % 2]}/v1/flows", headers=headers, timeout=5) for n in range(8)]
        assert [answer.status_code for answer in answers] == [200] * 6 + [429] * 2
        remaining = [answer.headers["ratelimit"].split(";")[1] for answer in answers[:6]]
        assert remaining == [f"r={left}" for left in range(5, -1, -1)]
        assert all(answer.headers["ratelimit"].startswith('"trial";') for answer in answers[:6])
        refused = answers[6]
        assert refused.headers["ratelimit-policy"] == '"trial";q=6;w=60'
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "/problems/rate-limited"
    finally:
        for process in replicas:
            process.send_signal(signal.SIGTERM)
        for process in replicas:
            process.wait(20)
