"""``finsync up`` serves the planning sandbox through the system layer, at Anaplan's own polling pace."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.conftest import LiveStack

pytestmark = pytest.mark.slow

BASE = "/v1/planning/planning"


def test_the_local_stack_loads_and_reads_the_planning_sandbox(live_stack: LiveStack) -> None:
    token = live_stack.token("finsync-system")
    headers = {"Authorization": f"Bearer {token}"}
    row = {
        "entity": "FS-EU",
        "account_code": "5.2.2",
        "cost_center": "CC-300",
        "period": "2026-11",
        "amount": "4321.09",
    }
    with httpx.Client(base_url=live_stack.urls["system"], headers=headers, timeout=60) as client:
        sources = client.get("/v1/sources", params={"kind": "anaplan"})
        assert [(s["id"], s["health"]["status"]) for s in sources.json()["items"]] == [("planning", "up")]
        versions = client.get(f"{BASE}/versions")
        assert {v["name"] for v in versions.json()["items"]} == {"Actual", "Budget", "Forecast"}
        accepted = client.post(
            f"{BASE}/loads",
            json={"version": "Forecast", "rows": [row]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 60
        while (load := client.get(accepted.headers["location"]).json())["status"] not in (
            "complete",
            "failed",
        ):
            assert time.monotonic() < deadline, load
            time.sleep(0.5)
        assert load["status"] == "complete", load
        assert load["counts"]["success_rows"] == 1
        cells = client.get(
            f"{BASE}/cells",
            params={"version": "Forecast", "entity": "FS-EU", "account": "5.2.2", "from": "2026-11"},
        ).json()["items"]
        assert [
            Decimal(c["amount"]) for c in cells if c["cost_center"] == "CC-300" and c["period"] == "2026-11"
        ] == [Decimal("4321.09")]
    anonymous = httpx.get(f"{live_stack.urls['system']}{BASE}/versions", timeout=10)
    assert anonymous.status_code == 401
