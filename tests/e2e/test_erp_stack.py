"""``finsync up`` serves the ERP system API over its seeded Tryton, through real sockets and real tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.conftest import LiveStack

pytestmark = pytest.mark.slow


def test_the_local_stack_serves_the_seeded_erp_through_the_system_layer(live_stack: LiveStack) -> None:
    token = live_stack.token("finsync-system")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_stack.urls["system"], headers=headers, timeout=60) as client:
        entities = client.get("/v1/erp/erp/legal-entities")
        assert entities.status_code == 200, entities.text
        assert {(e["code"], e["currency"]) for e in entities.json()["items"]} == {
            ("FS-US", "USD"),
            ("FS-EU", "EUR"),
        }
        entries = client.get("/v1/erp/erp/journal-entries", params={"entity": "FS-US", "limit": 5})
        assert entries.status_code == 200, entries.text
        assert len(entries.json()["items"]) == 5
        assert all(entry["mapping_version"] == "tryton/v1" for entry in entries.json()["items"])
        sources = client.get("/v1/sources", params={"kind": "tryton"})
        assert [(s["id"], s["health"]["status"]) for s in sources.json()["items"]] == [("erp", "up")]
    anonymous = httpx.get(f"{live_stack.urls['system']}/v1/erp/erp/legal-entities", timeout=10)
    assert anonymous.status_code == 401
