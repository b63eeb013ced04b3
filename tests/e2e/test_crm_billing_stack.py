"""``finsync up`` serves the CRM and billing sandboxes through the system layer, with real tokens and scopes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support import wait_until

if TYPE_CHECKING:
    from tests.conftest import LiveStack

pytestmark = pytest.mark.slow


def test_the_local_stack_reads_the_crm_and_bills_through_billing(live_stack: LiveStack) -> None:
    headers = {"Authorization": f"Bearer {live_stack.token('finsync-system')}"}
    with httpx.Client(base_url=live_stack.urls["system"], headers=headers, timeout=60) as client:
        kinds = {
            s["id"]: (s["kind"], s["health"]["status"]) for s in client.get("/v1/sources").json()["items"]
        }
        assert kinds["crm"] == ("salesforce", "up")
        assert kinds["billing"] == ("stripe", "up")

        customers = client.get("/v1/crm/crm/customers", params={"limit": 100}).json()["items"]
        assert sorted(c["code"] for c in customers) == [f"C-{n:03d}" for n in range(1, 13)]
        won = client.get("/v1/crm/crm/bookings", params={"status": "won", "limit": 5}).json()["items"]
        assert won
        assert all(b["status"] == "won" for b in won)
        deal = won[0]

        body = {
            "external_ref": f"e2e:{uuid.uuid4().hex}",
            "customer": deal["customer"],
            "entity": deal["entity"],
            "currency": deal["currency"],
            "booking_ref": deal["source_ref"],
            "lines": [
                {
                    "description": line["description"],
                    "quantity": int(Decimal(line["quantity"])),
                    "unit_price": line["unit_price"],
                    "product": line["product"],
                }
                for line in deal["lines"]
            ],
        }
        created = client.post("/v1/billing/billing/invoices", json=body, headers={"Idempotency-Key": "a"})
        assert created.status_code == 201, created.text
        again = client.post("/v1/billing/billing/invoices", json=body, headers={"Idempotency-Key": "b"})
        assert again.status_code == 200, again.text
        invoice = created.json()
        assert again.json()["id"] == invoice["id"]
        assert (invoice["status"], invoice["booking_ref"]) == ("draft", deal["source_ref"])
        assert Decimal(invoice["total"]) == sum(
            line["quantity"] * Decimal(line["unit_price"]) for line in body["lines"]
        )


def test_crm_and_billing_need_their_scopes(live_stack: LiveStack) -> None:
    token = live_stack.token("finsync-system", scope="erp:read")
    with httpx.Client(
        base_url=live_stack.urls["system"], headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        for path in ("/v1/crm/crm/customers", "/v1/billing/billing/invoices"):
            refused = client.get(path)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "insufficient_scope" in refused.headers["www-authenticate"]


def _processed(metrics: str, event_type: str) -> float:
    """``finsync_events_processed_total`` of ``event_type`` in a Prometheus exposition."""
    prefix = f'finsync_events_processed_total{{type="{event_type}"}} '
    return sum(float(line.removeprefix(prefix)) for line in metrics.splitlines() if line.startswith(prefix))


def test_a_deal_changed_in_the_crm_travels_the_event_path_to_the_process_layer(live_stack: LiveStack) -> None:
    headers = {"Authorization": f"Bearer {live_stack.token('finsync-system')}"}
    open_deal = httpx.get(
        f"{live_stack.urls['system']}/v1/crm/crm/bookings",
        params={"status": "open", "limit": 1},
        headers=headers,
        timeout=60,
    ).json()["items"][0]
    metrics = f"{live_stack.urls['process']}/metrics"
    before = _processed(httpx.get(metrics, timeout=10).text, "crm.booking.changed")
    # The change goes out as an outbound message to the system layer's listener, onto the stream, and is
    # consumed by the process layer: nothing in between is called by the test.
    changed = httpx.patch(
        f"{live_stack.urls['crm_sandbox']}/sandbox/opportunities/{open_deal['source_ref']}",
        json={"StageName": "Negotiation/Review"},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    assert wait_until(
        lambda: _processed(httpx.get(metrics, timeout=10).text, "crm.booking.changed") > before, 30
    ), "the change was not processed by the process layer"
