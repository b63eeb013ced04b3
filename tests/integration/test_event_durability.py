"""The sweep is the durability guarantee: what Redis lost in a hard kill right after an acknowledgement still
arrives.

The billing sandbox pushes signed webhooks to the system layer (served on a
loopback port), whose ingress appends each event to the stream of a Redis of
this test's own and answers 2xx. Right after the sandbox has seen every
delivery acknowledged, that Redis gets ``kill -9``. With ``appendfsync
everysec``, what Redis wrote to its append-only file but did not yet fsync is
in the operating system's page cache: a kill of the process alone keeps it, a
crash of the host loses up to the last second of it. The test makes that loss
certain, as a host crash would: it cuts the file back to its length before the
pushes, so every acknowledged event is gone from the stream. Redis restarts on
that file, and the process layer, consuming the streams and sweeping the
billing source, must end with every event the sandbox emitted in its inbox,
once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from process_apis.app import create_app as create_process_app
from shared.redis import EmbeddedRedis
from system_apis.app import create_app as create_system_app
from tests.integration.test_billing_api import SOURCE as BILLING
from tests.integration.test_billing_api import billing_source, invoice_body
from tests.integration.test_event_ingress import serve
from tests.support import in_process, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from litestar import Litestar

    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox

pytestmark = pytest.mark.slow

SECRET = "whsec_durability_" + uuid.uuid4().hex
NEVER = "0 0 1 1 *"
"""A sweep schedule that does not fire during the test: the sweep it runs is its own."""


def all_delivered(billing: BillingSandbox) -> bool:
    """The sandbox has no event left whose delivery was not acknowledged."""
    pending = billing.api.get("/v1/events", params={"delivery_success": "false", "limit": 100})
    return pending.status_code == 200 and not pending.json()["data"]


async def test_events_acknowledged_right_before_a_hard_redis_kill_arrive_through_the_sweep(
    make_settings: Callable[..., Settings], ledger_url: str, billing: BillingSandbox, tmp_path: Path
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    assert redis.start()
    try:
        sources = billing_source(billing, webhook_secrets=[SECRET])
        system_settings = make_settings(
            redis_url=redis.url, auth={"enabled": False}, rate_limit={"enabled": False}, sources=sources
        )
        aof = redis.directory / "appendonly.aof"
        with serve(create_system_app(system_settings)) as base:
            billing.add_endpoint(f"{base}/v1/billing/{BILLING}/webhooks", secret=SECRET)
            on_disk = aof.stat().st_size  # every write so far is in the file: Redis writes before it answers
            with httpx.Client(base_url=base, timeout=30) as client:
                for deal in range(3):
                    body = invoice_body(f"crm:opportunity:durability{deal}{uuid.uuid4().hex[:6]}:invoice")
                    created = client.post(
                        f"/v1/billing/{BILLING}/invoices",
                        json=body,
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    assert created.status_code == 201, created.text
                    finalized = client.post(
                        f"/v1/billing/{BILLING}/invoices/{created.json()['id']}/finalize",
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    assert finalized.status_code == 200, finalized.text
            assert wait_until(lambda: all_delivered(billing), 20, interval=0.01)
            pid = redis.running_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # right after the last acknowledgement: no time to fsync
            killed = time.monotonic()
        assert redis.process is not None
        redis.process.wait(10)
        redis.process = None
        with aof.open("r+b") as file:  # the host crash: the appends since ``on_disk`` never reached the disk
            assert file.seek(0, 2) > on_disk, "the pushes were appended"
            file.truncate(on_disk)
        assert redis.start(), "Redis restarts on what its append-only file kept"

        system = create_system_app(system_settings)
        process = create_process_app(
            make_settings(
                redis_url=redis.url,
                auth={"enabled": False},
                rate_limit={"enabled": False},
                ledger={"database_url": ledger_url},
                event_consumer={
                    "billing_sources": [BILLING],
                    "sweep_since": "10m",
                    "sweep_schedule": NEVER,
                    "claim_after": 1.0,
                    "backoff": 0.05,
                },
            ),
            httpx.ASGITransport(app=system),
        )
        async with system.lifespan(), in_process(process):
            emitted = {
                event["id"]
                for event in await _every_event(system)
                if event["type"].startswith("billing.invoice.")
            }
            assert emitted, "the invoices' events reached the catch-up read"
            await process.state.events.sweep.run()
            inbox = process.state.ledger.inbox
            deadline = time.monotonic() + 20
            while {event.id for event in await inbox.list_events()} != emitted:
                assert time.monotonic() < deadline, "every emitted event reaches the inbox"
                await asyncio.sleep(0.05)
            events = await inbox.list_events()
        assert len(events) == len(emitted)  # each once, whether it came by the stream or by the sweep
        assert time.monotonic() - killed < 60
    finally:
        redis.stop()


async def _every_event(system: Litestar) -> list[dict[str, Any]]:
    """Every event of the billing source through the system layer's catch-up read."""
    items: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=system), base_url="http://system"
    ) as client:
        cursor: str | None = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(f"/v1/billing/{BILLING}/events", params=params)).json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items
