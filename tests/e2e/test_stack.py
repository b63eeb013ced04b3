"""``finsync up`` owns every process it starts, and leaves none behind."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.auth.local import fetch_token, local_secrets_path, read_local_secrets
from tests.conftest import STACK_PORTS, stack_environment, start_stack, stop_stack
from tests.support import free_port, processes_with, wait_until

if TYPE_CHECKING:
    from tests.erp_fixtures import Erp


def _postgres_and_tryton(data_dir: Path) -> tuple[int, int]:
    """Pids of the stack's PostgreSQL server and of its Tryton server (from their own pid files)."""
    postgres = int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])
    tryton = int((data_dir / "tryton" / "trytond.pid").read_text().strip())
    return postgres, tryton


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's exit status may wait for a reaper here)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_every_process(tmp_path: Path, sig: int, erp: Erp) -> None:
    process, urls, output = start_stack(tmp_path, erp)
    data_dir = tmp_path / "data"
    owned = processes_with(str(data_dir))
    # Redis, PostgreSQL, Tryton, plus at least one server process for the authorization server and each layer.
    assert len(owned) >= 7, owned
    assert (data_dir / "redis" / "redis.pid").exists()
    postgres, tryton = _postgres_and_tryton(data_dir)
    assert {postgres, tryton} <= set(owned)
    printed = output.read_text()
    assert f"auth        {urls['auth']}" in printed
    assert (
        printed.index("  postgres ")
        < printed.index("  erp ")
        < printed.index("  planning ")
        < printed.index("  crm ")
        < printed.index("  billing ")
        < printed.index("  auth ")
    )
    assert printed.index("  auth ") < printed.index("  system ")
    # The ERP: served from a copy of the seeded template, declared as the source 'erp' of the system layer.
    source = tomllib.loads((data_dir / "stack.toml").read_text())["sources"]["erp"]
    assert source["kind"] == "tryton"
    assert source["url"] == urls["erp"]
    password = Path(source["password_file"]).read_text().strip()
    login = httpx.post(
        f"{urls['erp']}/{source['database']}/rpc/",
        json={
            "id": 1,
            "method": "common.db.login",
            "params": [source["login"], {"password": password}, "en"],
        },
        timeout=30,
    )
    assert isinstance(login.json()["result"][0], int), login.text
    # The planning sandbox: declared as the source 'planning', its user's password in the data dir.
    planning = tomllib.loads((data_dir / "stack.toml").read_text())["sources"]["planning"]
    assert planning["kind"] == "anaplan"
    assert planning["url"] == urls["planning_sandbox"]
    sandbox_login = httpx.post(
        f"{planning['url']}/token/authenticate",
        auth=(planning["user"], Path(planning["password_file"]).read_text().strip()),
        timeout=10,
    )
    assert sandbox_login.status_code == 201, sandbox_login.text
    # The CRM and billing sandboxes: declared as the sources 'crm' and 'billing', their secrets in the data dir.
    crm = tomllib.loads((data_dir / "stack.toml").read_text())["sources"]["crm"]
    assert (crm["kind"], crm["login_url"]) == ("salesforce", urls["crm_sandbox"])
    crm_token = httpx.post(
        f"{crm['login_url']}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": crm["client_id"],
            "client_secret": Path(crm["client_secret_file"]).read_text().strip(),
        },
        timeout=10,
    )
    assert crm_token.status_code == 200, crm_token.text
    billing = tomllib.loads((data_dir / "stack.toml").read_text())["sources"]["billing"]
    assert (billing["kind"], billing["url"]) == ("stripe", urls["billing_sandbox"])
    key = Path(billing["secret_key_file"]).read_text().strip()
    customers = httpx.get(f"{billing['url']}/v1/customers", auth=(key, ""), timeout=10)
    assert customers.status_code == 200, customers.text
    # Both sandboxes push to the system layer, which verifies and acknowledges the pushes.
    _pushes_reach_the_system_layer(urls["system"], crm, billing, key)
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
    assert not _alive(postgres)
    assert not _alive(tryton)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()  # a clean shutdown, not a crash


def _pushes_reach_the_system_layer(
    system: str, crm: dict[str, Any], billing: dict[str, Any], key: str
) -> None:
    """The billing sandbox's webhooks are acknowledged by the system layer; the CRM sandbox's outbound message
    goes to the system layer's listener, under the token the ``crm`` source declares (mode 0600)."""
    customers = httpx.get(f"{billing['url']}/v1/customers", auth=(key, ""), timeout=10).json()["data"]
    invoice = httpx.post(
        f"{billing['url']}/v1/invoices", data={"customer": customers[0]["id"]}, auth=(key, ""), timeout=10
    )
    assert invoice.status_code == 200, invoice.text

    def acknowledged() -> bool:
        attempts = httpx.get(f"{billing['url']}/sandbox/webhooks/deliveries", timeout=10).json()["attempts"]
        return any(a["type"] == "invoice.created" and a["status"] == 200 for a in attempts)

    assert wait_until(acknowledged, 30, interval=0.2), "the billing sandbox's webhook was not acknowledged"
    token_file = Path(crm["outbound_token_file"])
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert crm["organization_id"].startswith("00D")
    outbound = httpx.get(f"{crm['login_url']}/sandbox/outbound", timeout=10).json()
    assert outbound["settings"]["listener_url"] == (
        f"{system}/v1/crm/crm/outbound-messages/{token_file.read_text().strip()}"
    )


def test_a_second_stack_is_refused_and_killing_the_supervisor_takes_its_children_down(
    tmp_path: Path, erp: Erp
) -> None:
    process, _urls, _output = start_stack(tmp_path, erp)
    data_dir = tmp_path / "data"
    try:
        # One stack per data dir: a second 'finsync up' there is refused, and leaves the first running.
        second = subprocess.run(
            [sys.executable, "-m", "shared.cli", "up"],
            env=stack_environment(data_dir, {service: free_port() for service in STACK_PORTS}),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert b"already serves" in second.stderr
        assert process.poll() is None
    except BaseException:
        stop_stack(process, data_dir)
        raise
    postgres, tryton = _postgres_and_tryton(data_dir)
    assert {postgres, tryton} <= set(processes_with(str(data_dir)))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert wait_until(lambda: not processes_with(str(data_dir)), 20), processes_with(str(data_dir))
    assert not _alive(postgres)
    assert not _alive(tryton)
