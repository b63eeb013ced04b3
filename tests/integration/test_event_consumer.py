"""The process layer's half of the event path: the published streams consumed exactly once in effect.

The events are produced here as the system layer produces them: a
``SourceEvent`` encoded as JSON in the contract's one field, appended with
``XADD`` to ``STREAMS[kind]``, each checked first against the published schema
(``openapi/events.json`` when it is there, else msgspec's schema of
``SourceEvent``). That makes these the consumer side of the contract test. What
happened is read from the real ledger (the inbox, the states, dead letters,
exceptions and runs) and from the real Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from inspect import isawaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema_rs
import msgspec
import pytest
from prometheus_client import CollectorRegistry

from process_apis.app import create_app as create_process_app
from process_apis.events import EVENT_JOBS, EventRejectedError
from process_apis.events.metrics import EventMetrics
from process_apis.events.sweep import SWEEP_PREFIX
from process_apis.jobs.queue import JobQueue
from shared.canonical import encode
from shared.canonical.crm import BookingStatus
from shared.events import FIELD, STREAMS, BookingChange, EventType, SourceEvent
from shared.redis import open_redis
from system_apis.app import create_app as create_system_app
from tests.contract.test_layer_clients import assert_exchanges_match_spec
from tests.integration.test_billing_api import billing_source, invoice_body, keyed
from tests.integration.test_crm_api import crm_source
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import redis.asyncio as aioredis
    from litestar import Litestar

    from process_apis.events import EventPath
    from process_apis.ledger import EventInbox, SourceEventStatus
    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox
    from tests.crm_fixtures import CrmSandbox

pytestmark = pytest.mark.slow

EVENTS_SCHEMA = Path(__file__).parents[2] / "openapi" / "events.json"
CRM = "crm"
BILLING = "billing"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NEVER = "0 0 1 1 *"
"""A sweep schedule that does not fire during a test: the sweeps it runs are its own."""
TIMINGS = {"claim_after": 1.0, "backoff": 0.05, "backoff_max": 0.2, "attempts": 3, "metrics_interval": 0.2}


def _schema_validator() -> Any:
    """A validator of one event: the committed ``events.json`` when there is one, else msgspec's own schema.

    The committed document also names the streams and the entry's field; they must be the ones produced here.
    """
    if not EVENTS_SCHEMA.exists():
        return jsonschema_rs.validator_for(msgspec.json.schema(SourceEvent))
    published = json.loads(EVENTS_SCHEMA.read_text(encoding="utf-8"))
    assert published["x-finsync-streams"] == STREAMS
    assert published["x-finsync-entry-field"] == FIELD
    return jsonschema_rs.validator_for(published)


VALIDATOR = _schema_validator()


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``condition`` (sync or async) holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if await result if isawaitable(result) else result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def booking(
    ref: str,
    occurred_at: datetime,
    *,
    event_id: str | None = None,
    dedupe_key: str | None = None,
    status: BookingStatus = BookingStatus.OPEN,
    via: str = "push",
) -> SourceEvent:
    """A ``crm.booking.changed`` event of booking ``ref`` as of ``occurred_at``."""
    key = dedupe_key or f"{CRM}:booking:{ref}:{occurred_at.isoformat()}"
    return msgspec.convert(
        {
            "id": event_id or f"{CRM}:{uuid.uuid4().hex}",
            "type": EventType.BOOKING_CHANGED,
            "source": CRM,
            "kind": "crm",
            "dedupe_key": key,
            "ordering_key": f"crm:{CRM}:booking:{ref}",
            "occurred_at": occurred_at,
            "received_at": datetime.now(UTC),
            "via": via,
            "booking": BookingChange(
                booking_ref=ref,
                name=f"Deal {ref}",
                status=status,
                amount=Decimal("1200.50"),
                currency="USD",
                modified_at=occurred_at,
            ),
        },
        SourceEvent,
    )


async def push(redis: aioredis.Redis, *events: SourceEvent) -> None:
    """Append ``events`` as the system layer does, each checked against the published schema first."""
    for event in events:
        data = encode(event)
        VALIDATOR.validate(json.loads(data))
        await redis.xadd(STREAMS[event.kind], {FIELD: data})


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The session Redis, without the event path's keys of earlier tests."""
    client = open_redis(redis_url)

    async def clean() -> None:
        keys = [key async for key in client.scan_iter(match="finsync:process:events:*")]
        keys += [key async for key in client.scan_iter(match="finsync:process:lock:event:*")]
        await client.delete(*STREAMS.values(), *keys)

    await clean()
    yield client
    await clean()
    await client.aclose()


class Recording(httpx.AsyncBaseTransport):
    """A transport to an app that keeps every answer, to check the calls against the committed spec."""

    def __init__(self, app: Litestar) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.responses: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self._inner.handle_async_request(request)
        body = await answer.aread()
        kept = httpx.Response(answer.status_code, headers=answer.headers, content=body, request=request)
        kept.elapsed = timedelta(0)  # the spec check reads it; only the client's own responses are timed
        self.responses.append(kept)
        return httpx.Response(answer.status_code, headers=answer.headers, content=body, request=request)


@asynccontextmanager
async def process(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    system: httpx.AsyncBaseTransport | None = None,
    **consumer: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, EventPath, EventInbox]]:
    """The process layer in-process (auth off) over ``system``, its event path and the ledger's inbox.

    Order to cash is off: these tests are about the path itself (``test_order_to_cash`` runs the flow on it).
    """
    settings = make_settings(
        auth={"enabled": False},
        rate_limit={"enabled": False},
        ledger={"database_url": ledger_url},
        event_consumer={**TIMINGS, **consumer},
        order_to_cash={"enabled": False},
    )
    app = create_process_app(settings, system)
    async with in_process(app) as client:
        yield client, app.state.events, app.state.ledger.inbox


async def counted(inbox: EventInbox, status: SourceEventStatus, expected: int) -> bool:
    """Whether the inbox holds ``expected`` events in ``status``."""
    return await inbox.count(status) == expected


async def drained(redis: aioredis.Redis) -> bool:
    """Nothing waits on the streams, nothing is pending, no event job waits or runs."""
    for stream in STREAMS.values():
        if await redis.xlen(stream):
            return False
        if (await redis.xpending(stream, "process"))["pending"]:
            return False
    return not await redis.xlen(f"{EVENT_JOBS}:stream") and not await redis.zcard(f"{EVENT_JOBS}:retry")


async def test_published_events_are_decoded_and_each_change_applied_once(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    first = booking("006A", T0)
    async with process(make_settings, ledger_url) as (client, path, inbox):
        await push(
            redis,
            first,
            first,  # the same delivery twice
            booking("006A", T0, dedupe_key=first.dedupe_key),  # another id, the same change
            booking("006B", T0, status=BookingStatus.WON),
        )
        await until(lambda: counted(inbox, "processed", 2))
        await until(lambda: drained(redis))
        events = await inbox.list_events()
        assert sorted(event.ordering_key for event in events) == [
            "crm:crm:booking:006A",
            "crm:crm:booking:006B",
        ]
        assert all(event.attempts == 1 and event.via == "push" for event in events)
        state = await inbox.state("crm:crm:booking:006B")
        assert state is not None
        assert state.state["status"] == "won"
        assert state.state["amount"] == "1200.50"
        a = next(event for event in events if event.ordering_key.endswith("006A"))
        assert msgspec.convert(a.payload, SourceEvent) == first

        await path.sample()
        metrics = (await client.get("/metrics")).text
    stream = STREAMS["crm"]
    assert f'finsync_event_stream_length{{stream="{stream}"}} 0.0' in metrics
    assert f'finsync_event_stream_pending{{stream="{stream}"}} 0.0' in metrics
    assert 'finsync_events_accepted_total{kind="crm",outcome="new",via="push"} 2.0' in metrics
    assert 'finsync_events_accepted_total{kind="crm",outcome="duplicate",via="push"} 2.0' in metrics
    assert "finsync_event_jobs_waiting 0.0" in metrics


async def test_an_older_event_arriving_late_does_not_replace_the_newer_state(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    newer = booking("006C", T0 + timedelta(hours=1), status=BookingStatus.WON)
    older = booking("006C", T0, status=BookingStatus.OPEN)
    async with process(make_settings, ledger_url) as (_client, _path, inbox):
        await push(redis, newer)
        await until(lambda: counted(inbox, "processed", 1))
        await push(redis, older)
        await until(lambda: counted(inbox, "processed", 2))
        state = await inbox.state(newer.ordering_key)
    assert state is not None
    assert (state.event_id, state.state["status"]) == (newer.id, "won")


async def test_events_pushed_while_the_consumer_is_down_are_drained_once_it_is_back(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    async with process(make_settings, ledger_url) as (_client, _path, inbox):
        await push(redis, booking("006D", T0))
        await until(lambda: counted(inbox, "processed", 1))
    events = [booking(f"1{n:03d}", T0 + timedelta(minutes=n)) for n in range(30)]
    await push(redis, *events, *events[:5])  # five delivered twice
    assert await redis.xlen(STREAMS["crm"]) == 35
    registry = CollectorRegistry()
    await EventMetrics(registry).sample(redis, STREAMS, "process", JobQueue(redis, EVENT_JOBS))
    stream = {"stream": STREAMS["crm"]}
    assert registry.get_sample_value("finsync_event_stream_length", stream) == 35
    assert registry.get_sample_value("finsync_event_stream_pending", stream) == 0
    assert registry.get_sample_value("finsync_event_stream_lag", stream) == 35  # the backlog, none read
    async with process(make_settings, ledger_url) as (_client, _path, inbox):
        await until(lambda: counted(inbox, "processed", 31))
        await until(lambda: drained(redis))
        recorded = await inbox.list_events()
    assert len(recorded) == 31
    assert {event.id for event in recorded} >= {event.id for event in events}
    assert all(event.attempts == 1 for event in recorded)


async def test_an_entry_read_by_a_consumer_that_died_is_claimed_and_applied_once(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    stream = STREAMS["crm"]
    await redis.xgroup_create(stream, "process", id="0", mkstream=True)
    orphan = booking("006E", T0)
    await push(redis, orphan)
    # A consumer reads it and dies before its acknowledgement.
    read: Any = await redis.xreadgroup("process", "dead-consumer", {stream: ">"}, count=10)
    assert len(read[0][1]) == 1
    async with process(make_settings, ledger_url, claim_after=0.5) as (_client, path, inbox):
        await until(lambda: counted(inbox, "processed", 1))
        await until(lambda: drained(redis))
        assert path.consumer.claimed == 1
        (event,) = await inbox.list_events()
    assert (event.id, event.attempts) == (orphan.id, 1)


async def test_a_transient_failure_is_retried_with_backoff_until_it_succeeds(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    calls: list[float] = []

    async def flaky(event: SourceEvent) -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise TimeoutError("the ERP did not answer")

    async with process(make_settings, ledger_url) as (client, path, inbox):
        path.handlers.subscribe(flaky, EventType.BOOKING_CHANGED)
        event = booking("006F", T0)
        await push(redis, event)
        await until(lambda: counted(inbox, "processed", 1))
        record = await inbox.get(event.id)
        metrics = (await client.get("/metrics")).text
        letters = (await client.get("/v1/dead-letters", params={"flow": "source-events"})).json()
    assert len(calls) == 3
    assert record is not None
    assert (record.status, record.attempts) == ("processed", 3)
    assert record.last_error == "TimeoutError: the ERP did not answer"
    assert "finsync_events_retries_total 2.0" in metrics
    assert letters["items"] == []


async def test_a_permanent_failure_becomes_a_dead_letter_that_replays_through_the_api(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    broken = True
    calls = 0

    async def posting(event: SourceEvent) -> None:
        nonlocal calls
        calls += 1
        if broken:
            raise ConnectionError("receivables are down")

    async with process(make_settings, ledger_url) as (client, path, inbox):
        path.handlers.subscribe(posting, EventType.BOOKING_CHANGED)
        event = booking("006G", T0)
        await push(redis, event)
        await until(lambda: counted(inbox, "dead", 1))
        (letter,) = (await client.get("/v1/dead-letters", params={"flow": "source-events"})).json()["items"]
        assert (letter["job_kind"], letter["job_id"], letter["attempts"]) == ("source-event", event.id, 3)
        assert letter["reason"] == "ConnectionError: receivables are down"
        assert calls == 3
        assert await inbox.state(event.ordering_key) is not None  # the handlers before it are idempotent

        broken = False  # the cause is fixed
        response = await client.post(f"/v1/dead-letters/{letter['id']}/replay")
        assert response.status_code == 202, response.text
        location = response.headers["location"]
        assert location == f"/v1/runs/{response.json()['id']}"

        async def finished() -> bool:
            return bool((await client.get(location)).json()["status"] == "succeeded")

        await until(finished)
        record = await inbox.get(event.id)
        again = await client.post(f"/v1/dead-letters/{letter['id']}/replay")
        metrics = (await client.get("/metrics")).text
    assert record is not None
    assert record.status == "processed"
    assert calls == 4
    assert again.status_code == 409
    assert "finsync_events_dead_letters_total 1.0" in metrics


async def test_a_business_failure_goes_to_the_exception_queue_and_replays(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    known: set[str] = set()

    async def needs_customer(event: SourceEvent) -> None:
        if event.booking is not None and event.booking.booking_ref not in known:
            raise EventRejectedError("unknown-customer", f"no customer for {event.booking.booking_ref}")

    async with process(make_settings, ledger_url) as (client, path, inbox):
        path.handlers.subscribe(needs_customer, EventType.BOOKING_CHANGED)
        event = booking("006H", T0)
        await push(redis, event)
        await until(lambda: counted(inbox, "failed", 1))
        (case,) = (await client.get("/v1/exceptions", params={"flow": "source-events"})).json()["items"]
        assert case["exception"]["reason_code"] == "unknown-customer"
        assert case["exception"]["slice_key"] == event.ordering_key
        record = await inbox.get(event.id)
        assert record is not None
        assert record.attempts == 1  # not retried

        known.add("006H")
        response = await client.post(f"/v1/exceptions/{case['exception']['id']}/replay")
        assert response.status_code == 202, response.text
        await until(lambda: counted(inbox, "processed", 1))
        (after,) = (await client.get("/v1/exceptions", params={"flow": "source-events"})).json()["items"]
    assert after["exception"]["status"] == "resolved"


async def test_an_entry_off_the_schema_goes_to_the_dead_letters_unretried(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis
) -> None:
    async with process(make_settings, ledger_url) as (client, _path, inbox):
        await redis.xadd(STREAMS["billing"], {FIELD: b'{"id": "billing:evt_1", "type": "billing.unknown"}'})
        await until(lambda: drained(redis))
        (letter,) = (await client.get("/v1/dead-letters", params={"flow": "source-events"})).json()["items"]
        replay = await client.post(f"/v1/dead-letters/{letter['id']}/replay")
        assert await inbox.count() == 0
    assert letter["job_kind"] == "malformed-event"
    assert letter["payload"]["stream"] == STREAMS["billing"]
    assert replay.status_code == 409


# The catch-up sweep, through the real system layer over the CRM sandbox.


async def test_the_sweep_brings_in_changes_never_pushed_and_counts_pushed_ones_once(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis, crm: CrmSandbox
) -> None:
    system = create_system_app(
        make_settings(auth={"enabled": False}, rate_limit={"enabled": False}, sources=crm_source(crm))
    )
    sweeping = {"crm_sources": [CRM], "sweep_since": "10m", "sweep_schedule": NEVER}
    recording = Recording(system)
    async with (
        system.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=system), base_url="http://system") as direct,
        process(make_settings, ledger_url, recording, **sweeping) as (_c, path, inbox),
    ):
        assert await path.sweep.run() == {"crm:crm": 0}  # the seed is older than ten minutes
        assert await redis.get(f"{SWEEP_PREFIX}:crm:{CRM}")  # where the next sweep goes on from

        page = (await direct.get(f"/v1/crm/{CRM}/bookings", params={"limit": 2})).json()
        quiet, pushed = (item["source_ref"] for item in page["items"])
        crm.update_opportunity(quiet, StageName="Negotiation/Review")
        crm.update_opportunity(pushed, StageName="Closed Won")
        await asyncio.sleep(1.1)  # the feed reports whole seconds that have passed
        answer = await direct.get(f"/v1/crm/{CRM}/bookings/{CRM}:booking:{pushed}")
        assert answer.status_code == 200, answer.text
        changed = answer.json()
        modified_at = datetime.fromisoformat(changed["modified_at"])
        push_event = msgspec.structs.replace(
            booking(pushed, modified_at, status=BookingStatus.WON),
            id=f"{CRM}:04l{uuid.uuid4().hex[:12]}",
            dedupe_key=f"{CRM}:booking:{pushed}:{changed['modified_at']}",  # as the system layer keys it
        )
        await push(redis, push_event)
        await until(lambda: counted(inbox, "processed", 1))

        assert await path.sweep.run() == {"crm:crm": 1}  # the quiet change; the pushed one is known
        await until(lambda: counted(inbox, "processed", 2))
        assert await path.sweep.run() == {"crm:crm": 0}  # nothing new since
        await until(lambda: drained(redis))
        events = {event.ordering_key: event for event in await inbox.list_events()}
        state = await inbox.state(f"crm:{CRM}:booking:{quiet}")
    assert set(events) == {f"crm:{CRM}:booking:{quiet}", f"crm:{CRM}:booking:{pushed}"}
    swept = events[f"crm:{CRM}:booking:{quiet}"]
    assert swept.via == "sweep"
    assert swept.id == swept.dedupe_key
    VALIDATOR.validate(swept.payload)  # what the sweep makes is an event of the published schema
    assert swept.dedupe_key.startswith(f"{CRM}:booking:{quiet}:")
    assert swept.dedupe_key.endswith("Z")  # UTC as the event's JSON writes it, like the push's key
    assert events[f"crm:{CRM}:booking:{pushed}"].id == push_event.id
    assert state is not None
    assert state.state["stage"] == "Negotiation/Review"
    assert assert_exchanges_match_spec("system", recording.responses) == {"ListBookings"}


async def test_the_billing_sweep_reads_the_events_the_webhooks_would_push_once(
    make_settings: Callable[..., Settings], ledger_url: str, redis: aioredis.Redis, billing: BillingSandbox
) -> None:
    system = create_system_app(
        make_settings(auth={"enabled": False}, rate_limit={"enabled": False}, sources=billing_source(billing))
    )
    sweeping = {"billing_sources": [BILLING], "sweep_since": "10m", "sweep_schedule": NEVER}
    recording = Recording(system)
    async with (
        system.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=system), base_url="http://system") as direct,
        process(make_settings, ledger_url, recording, **sweeping) as (_c, path, inbox),
    ):
        body = invoice_body(f"crm:opportunity:{uuid.uuid4().hex[:15]}:invoice")
        created = await direct.post(f"/v1/billing/{BILLING}/invoices", json=body, headers=keyed())
        assert created.status_code == 201, created.text
        invoice = created.json()
        finalized = await direct.post(
            f"/v1/billing/{BILLING}/invoices/{invoice['id']}/finalize", headers=keyed()
        )
        assert finalized.status_code == 200, finalized.text

        # One of the events, pushed (the webhook) before the sweep finds it: the same id and key.
        page = (await direct.get(f"/v1/billing/{BILLING}/events")).json()
        first = msgspec.convert(page["items"][-1], SourceEvent)
        await push(redis, msgspec.structs.replace(first, via="push"))
        await until(lambda: counted(inbox, "processed", 1))

        found = (await path.sweep.run())[f"billing:{BILLING}"]
        assert found == len(page["items"]) - 1 > 0
        await until(lambda: counted(inbox, "processed", len(page["items"])))
        assert await path.sweep.run() == {f"billing:{BILLING}": 0}
        await until(lambda: drained(redis))
        events = await inbox.list_events()
        state = await inbox.state(first.ordering_key)
    assert {event.id for event in events} == {item["id"] for item in page["items"]}
    assert [event.via for event in events if event.id == first.id] == ["push"]
    assert assert_exchanges_match_spec("system", recording.responses) == {"ListBillingEvents"}
    assert state is not None
    assert first.invoice is not None
    assert state.state["invoice_ref"] == first.invoice.invoice_ref
