"""Order to cash on the event path: won deals to billing invoices to ERP receivables and payments, once each.

Everything is real but the pushes: the CRM and billing sandboxes, Tryton, the
ledger and Redis, with the system layer in-process under the process layer.
The deals are created in the CRM sandbox and their invoices driven through the
system layer's billing routes; the events are read back from the system layer
(the booking as the push of its version would carry it, the billing events
from its event feed) and appended to the streams as the system layer appends
them. What happened is read from the sources themselves: the billing sandbox's
own list of invoices, Tryton's receivables through the ERP API, and the
ledger's audit trail and exception queue.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest

from process_apis.app import create_app as create_process_app
from process_apis.events.sweep import booking_event
from shared import errors
from shared.canonical import Booking, decode, encode
from shared.events import FIELD, STREAMS, EventType, SourceEvent
from shared.redis import open_redis
from system_apis.app import create_app as create_system_app
from tests.integration.test_billing_api import billing_source, keyed, stripe_invoices
from tests.integration.test_crm_api import crm_source, org_records
from tests.integration.test_erp_api import A, sources
from tests.integration.test_erp_invoices import invoice_day
from tests.integration.test_event_consumer import NEVER, TIMINGS, VALIDATOR, drained, until
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import redis.asyncio as aioredis

    from process_apis.events import EventPath
    from process_apis.flows.order_to_cash import OrderToCash
    from process_apis.ledger import EventInbox
    from process_apis.ledger.store import LedgerStore
    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox
    from tests.crm_fixtures import CrmSandbox
    from tests.erp_fixtures import Erp

pytestmark = pytest.mark.slow

CRM, BILLING, ERP, US = "crm", "billing", A, "FS-US"
LINES = [
    {"ProductCode": "P-100", "Quantity": 3, "UnitPrice": 150},
    {"ProductCode": "P-400", "Quantity": 1, "UnitPrice": 900},
]
"""A deal's products: three consulting hours and a sensor kit, 1,350.00 in all."""
TOTAL = Decimal("1350.00")


@pytest.fixture
async def streams(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The session Redis, without the event path's keys (streams, jobs, locks) of earlier tests."""
    client = open_redis(redis_url)

    async def clean() -> None:
        keys = [key async for key in client.scan_iter(match="finsync:process:events:*")]
        keys += [key async for key in client.scan_iter(match="finsync:process:lock:event:*")]
        await client.delete(*STREAMS.values(), *keys)

    await clean()
    yield client
    await clean()
    await client.aclose()


@dataclass
class Stack:
    """The system layer (called directly as ``direct``) under the process layer, and the flow's parts."""

    direct: httpx.AsyncClient
    path: EventPath
    inbox: EventInbox
    store: LedgerStore
    flow: OrderToCash
    process: httpx.AsyncClient
    started: datetime
    redis: aioredis.Redis


@asynccontextmanager
async def stack(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    erp: Erp,
    crm: CrmSandbox,
    billing: BillingSandbox,
    **consumer: Any,
) -> AsyncIterator[Stack]:
    """Both layers in-process (auth off) over the three real sources, the flow posting to ``erp-a``."""
    system = create_system_app(
        make_settings(
            auth={"enabled": False},
            rate_limit={"enabled": False},
            sources={**sources(erp), **crm_source(crm), **billing_source(billing)},
        )
    )
    settings = make_settings(
        auth={"enabled": False},
        rate_limit={"enabled": False},
        ledger={"database_url": ledger_url},
        event_consumer={**TIMINGS, "attempts": 10, **consumer},
        order_to_cash={"enabled": True, "erp": ERP},
    )
    app = create_process_app(settings, httpx.ASGITransport(app=system))
    # Tryton numbers invoices in date order and the seed has numbered some up to December: billing's clock
    # moves to the ERP's last invoice date, so what it finalizes (and pays) can be posted on its own date.
    latest = datetime.combine(invoice_day(erp), datetime.min.time(), UTC) + timedelta(hours=12)
    if (ahead := int((latest - datetime.now(UTC)).total_seconds())) > 0:
        billing.advance_clock(ahead)
    async with (
        system.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=system), base_url="http://system", timeout=60
        ) as direct,
        in_process(app) as client,
    ):
        yield Stack(
            direct=direct,
            path=app.state.events,
            inbox=app.state.ledger.inbox,
            store=app.state.ledger.store,
            flow=app.state.order_to_cash,
            process=client,
            started=datetime.now(UTC),
            redis=app.state.redis,
        )


def won_deal(crm: CrmSandbox, customer: str = "C-001", entity: str = US) -> str:
    """A new deal of ``customer`` with :data:`LINES`, closed won in the CRM sandbox; its Opportunity Id."""
    (account,) = org_records(crm, f"SELECT Id FROM Account WHERE AccountNumber = '{customer}'")
    created = crm.create_opportunity(
        LINES,
        Name=f"O2C {uuid.uuid4().hex[:8]}",
        AccountId=account["Id"],
        StageName="Closed Won",
        CloseDate=datetime.now(UTC).date().isoformat(),
        Legal_Entity__c=entity,
    )
    opportunity_id: str = created["Id"]
    return opportunity_id


async def deal_event(s: Stack, ref: str) -> SourceEvent:
    """The ``crm.booking.changed`` event the outbound message of the deal's current version becomes."""
    answer = await s.direct.get(f"/v1/crm/{CRM}/bookings/{CRM}:booking:{ref}")
    assert answer.status_code == 200, answer.text
    event = booking_event(decode(answer.content, Booking), datetime.now(UTC))
    return msgspec.structs.replace(event, id=f"{CRM}:04l{uuid.uuid4().hex[:12]}", via="push")


async def invoice_events(s: Stack, invoice_ref: str) -> dict[EventType, SourceEvent]:
    """The billing events of one invoice, by type, as the system layer's event feed (the webhooks') has them."""
    since = (s.started - timedelta(minutes=10)).isoformat()
    answer = await s.direct.get(
        f"/v1/billing/{BILLING}/events", params={"created_since": since, "limit": 500}
    )
    assert answer.status_code == 200, answer.text
    events = [msgspec.convert(item, SourceEvent) for item in answer.json()["items"]]
    return {e.type: e for e in events if e.invoice is not None and e.invoice.invoice_ref == invoice_ref}


async def act(s: Stack, invoice_ref: str, action: str, body: dict[str, Any] | None = None) -> None:
    """Finalize, pay or void the billing invoice through the system layer."""
    answer = await s.direct.post(
        f"/v1/billing/{BILLING}/invoices/{invoice_ref}/{action}", json=body, headers=keyed()
    )
    assert answer.status_code == 200, answer.text


async def outcomes(s: Stack, ref: str) -> dict[str, list[dict[str, Any]]]:
    """The audit outcomes of the deal's trace, by step, oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in await s.store.trace(s.flow.trace_id(ref)):
        if event.kind == "outcome":
            found.setdefault(event.step, []).append({"target_ref": event.target_ref, **(event.detail or {})})
    return found


async def reached(s: Stack, ref: str, step: str, timeout: float = 30.0) -> None:
    """Wait until the deal's trace has an outcome of ``step``; fail with the trace so far."""
    deadline = time.monotonic() + timeout
    while step not in (found := await outcomes(s, ref)):
        assert time.monotonic() < deadline, f"no {step!r} in the trace of deal {ref}: {found}"
        await asyncio.sleep(0.05)


async def billed(s: Stack, ref: str) -> str:
    """Push the won deal's event, wait for its billing invoice; the invoice's platform id."""
    await push_event(s, await deal_event(s, ref))
    await reached(s, ref, "create-billing-invoice")
    (outcome,) = (await outcomes(s, ref))["create-billing-invoice"]
    invoice_ref: str = outcome["invoice_ref"]
    return invoice_ref


async def push_event(s: Stack, event: SourceEvent, times: int = 1) -> None:
    """Append ``event`` to its stream ``times`` times at once (one pipeline), each a delivery with its own id,
    every one checked against the published schema first."""
    copies = [msgspec.structs.replace(event, id=f"{event.id}:{n}") if n else event for n in range(times)]
    async with s.redis.pipeline(transaction=False) as pipe:
        for copy in copies:
            data = encode(copy)
            VALIDATOR.validate(json.loads(data))
            pipe.xadd(STREAMS[copy.kind], {FIELD: data})
        await pipe.execute()


async def receivables(s: Stack, external_ref: str) -> list[dict[str, Any]]:
    """Tryton's receivable invoices carrying ``external_ref``, through the ERP API."""
    params: dict[str, Any] = {
        "entity": US,
        "modified_since": (s.started - timedelta(minutes=5)).isoformat(),
        "limit": 500,
    }
    found: list[dict[str, Any]] = []
    while True:
        page = (await s.direct.get(f"/v1/erp/{ERP}/invoices", params=params)).json()
        found += [item for item in page["items"] if item["external_ref"] == external_ref]
        if page["next_cursor"] is None:
            return found
        params = {"entity": US, "cursor": page["next_cursor"], "limit": 500}


async def exceptions(s: Stack, reason: str) -> list[Any]:
    """The unresolved exceptions with ``reason``."""
    return await s.store.list_exceptions(reason_code=reason, status=("open", "assigned"))


async def test_a_storm_of_one_event_makes_one_billing_invoice_and_one_receivable(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    streams: aioredis.Redis,
    erp: Erp,
    crm: CrmSandbox,
    billing: BillingSandbox,
) -> None:
    async with stack(make_settings, ledger_url, erp, crm, billing) as s:
        ref = won_deal(crm)
        await push_event(s, await deal_event(s, ref), times=100)
        await reached(s, ref, "create-billing-invoice")
        await until(lambda: drained(streams), timeout=30)
        (outcome,) = (await outcomes(s, ref))["create-billing-invoice"]
        invoice_ref = outcome["invoice_ref"]

        await act(s, invoice_ref, "finalize")
        finalized = (await invoice_events(s, invoice_ref))[EventType.INVOICE_FINALIZED]
        await push_event(s, finalized, times=100)
        await reached(s, ref, "post-receivable")
        await until(lambda: drained(streams), timeout=30)
        # And the same event handled twenty times at once outside the event path's lock and inbox: only the
        # ERP's unique external reference stands between them and a second posting.
        raced = await asyncio.gather(
            *(s.flow.on_invoice(finalized) for _ in range(20)), return_exceptions=True
        )
        for result in raced:
            if result is not None:
                assert isinstance(result, errors.UpstreamRejectedError), result
                assert "idempotency-key-in-use" in str(result)
        await s.flow.on_invoice(finalized)

        invoices = stripe_invoices(billing, s.flow.billing_ref(ref))
        posted = await receivables(s, s.flow.receivable_ref(invoice_ref))
        assert await s.inbox.count("processed") == 2  # one per change; every other delivery a duplicate
    assert len(invoices) == 1
    assert invoices[0]["metadata"]["opportunity_id"] == ref
    assert invoices[0]["total"] == int(TOTAL * 100)
    assert len(posted) == 1
    assert Decimal(posted[0]["total_amount"]) == TOTAL
    assert posted[0]["customer"] == "C-001"


async def test_paid_before_finalized_ends_paid_in_the_erp_under_one_trace(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    streams: aioredis.Redis,
    erp: Erp,
    crm: CrmSandbox,
    billing: BillingSandbox,
) -> None:
    async with stack(make_settings, ledger_url, erp, crm, billing) as s:
        ref = won_deal(crm)
        invoice_ref = await billed(s, ref)
        await act(s, invoice_ref, "finalize")
        await act(s, invoice_ref, "pay", {"paid_out_of_band": True})
        events = await invoice_events(s, invoice_ref)
        await push_event(s, events[EventType.INVOICE_PAID])
        await reached(s, ref, "post-payment")
        await push_event(s, events[EventType.INVOICE_FINALIZED])  # late, after the payment
        await until(lambda: drained(streams), timeout=30)
        posted = await receivables(s, s.flow.receivable_ref(invoice_ref))
        steps = await outcomes(s, ref)
        trace = await s.process.get(f"/v1/audit/traces/{s.flow.trace_id(ref)}")
        assert await s.inbox.count("failed") == 0
    assert len(posted) == 1
    assert posted[0]["state"] == "paid"
    assert Decimal(posted[0]["amount_due"]) == 0
    assert [outcome["created"] for outcome in steps["post-receivable"]] == [True, False]
    assert [outcome["created"] for outcome in steps["post-payment"]] == [True, False]
    assert trace.status_code == 200, trace.text
    assert {"create-billing-invoice", "post-receivable", "post-payment"} <= {
        event["step"] for event in trace.json()["events"]
    }


async def test_the_rest_of_the_lifecycle_is_a_reversal_or_an_exception_never_silent(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    streams: aioredis.Redis,
    erp: Erp,
    crm: CrmSandbox,
    billing: BillingSandbox,
) -> None:
    async with stack(make_settings, ledger_url, erp, crm, billing) as s:
        voided, cancelled, partial, reopened = (won_deal(crm) for _ in range(4))
        refs = {deal: await billed(s, deal) for deal in (voided, cancelled, partial, reopened)}

        # Voided after its receivable was posted: a reversing entry in the ERP.
        await act(s, refs[voided], "finalize")
        await push_event(s, (await invoice_events(s, refs[voided]))[EventType.INVOICE_FINALIZED])
        await reached(s, voided, "post-receivable")
        await act(s, refs[voided], "void")
        await push_event(s, (await invoice_events(s, refs[voided]))[EventType.INVOICE_VOIDED])
        await reached(s, voided, "reverse-receivable")

        # Voided before anything was posted (its finalized event comes late): nothing posted, recorded.
        await act(s, refs[cancelled], "finalize")
        await act(s, refs[cancelled], "void")
        events = await invoice_events(s, refs[cancelled])
        await push_event(s, events[EventType.INVOICE_VOIDED])
        await reached(s, cancelled, "cancel")
        await push_event(s, events[EventType.INVOICE_FINALIZED])

        # Paid in part: the receivable is posted, the partial payment is an exception.
        await act(s, refs[partial], "finalize")
        finalized = (await invoice_events(s, refs[partial]))[EventType.INVOICE_FINALIZED]
        assert finalized.invoice is not None
        half = (finalized.invoice.amount_due / 2).quantize(Decimal("0.01"))
        update = msgspec.structs.replace(
            finalized,
            id=f"{BILLING}:evt_partial_{uuid.uuid4().hex[:8]}",
            dedupe_key=f"{BILLING}:evt_partial_{uuid.uuid4().hex[:8]}",
            type=EventType.INVOICE_UPDATED,
            invoice=msgspec.structs.replace(
                finalized.invoice, amount_paid=half, amount_remaining=finalized.invoice.amount_due - half
            ),
        )
        await push_event(s, update)
        await reached(s, partial, "partial-payment")

        # Won, invoiced, then reopened in the CRM: an exception.
        crm.update_opportunity(reopened, StageName="Negotiation/Review")
        await push_event(s, await deal_event(s, reopened))
        await reached(s, reopened, "deal-reopened")
        await until(lambda: drained(streams), timeout=30)

        reversal = (await outcomes(s, voided))["reverse-receivable"][0]
        entry = (await s.direct.get(f"/v1/erp/{ERP}/journal-entries/{reversal['target_ref']}")).json()
        voided_posted = await receivables(s, s.flow.receivable_ref(refs[voided]))
        cancelled_posted = await receivables(s, s.flow.receivable_ref(refs[cancelled]))
        partial_posted = await receivables(s, s.flow.receivable_ref(refs[partial]))
        cancel_steps = await outcomes(s, cancelled)
        partials = await exceptions(s, "partial-payment")
        reopenings = await exceptions(s, "deal-reopened")
    assert len(voided_posted) == 1
    assert entry["state"] == "posted"
    assert sum(Decimal(line["credit"]) for line in entry["lines"] if line["account_code"] == "1.2.1") == TOTAL
    assert sum(Decimal(line["debit"]) for line in entry["lines"]) == TOTAL
    assert cancelled_posted == []
    assert "post-receivable" not in cancel_steps
    assert len(cancel_steps["cancel"]) == 2  # the void, and the late finalized event that found it void
    assert len(partial_posted) == 1
    assert [case.slice_key for case in partials] == [update.ordering_key]
    assert [case.slice_key for case in reopenings] == [f"crm:{CRM}:booking:{reopened}"]


async def test_a_deal_whose_push_was_lost_comes_in_through_the_sweep(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    streams: aioredis.Redis,
    erp: Erp,
    crm: CrmSandbox,
    billing: BillingSandbox,
) -> None:
    sweeping = {"crm_sources": [CRM], "sweep_since": "10m", "sweep_schedule": NEVER}
    async with stack(make_settings, ledger_url, erp, crm, billing, **sweeping) as s:
        assert await s.path.sweep.run() == {f"crm:{CRM}": 0}  # the seed is older than ten minutes
        ref = won_deal(crm)  # its outbound message goes nowhere: no listener is set
        await asyncio.sleep(1.1)  # the feed reports whole seconds that have passed
        assert await s.path.sweep.run() == {f"crm:{CRM}": 1}
        await reached(s, ref, "create-billing-invoice")
        await until(lambda: drained(streams), timeout=30)
        invoices = stripe_invoices(billing, s.flow.billing_ref(ref))
        (swept,) = await s.inbox.list_events()
    assert swept.via == "sweep"
    assert len(invoices) == 1
    assert invoices[0]["metadata"]["opportunity_id"] == ref
