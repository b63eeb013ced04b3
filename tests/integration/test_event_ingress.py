"""Pushes from the sandboxes to the system layer's ingress, over real sockets, onto the published streams.

The system layer runs in this process under uvicorn on a loopback port (the
sandboxes are separate processes and must reach it over a socket); the
streams are read from the session's real Redis, acting as the consumer would.
Every entry the ingress writes is validated against the committed contract,
``openapi/events.json``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import threading
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema_rs
import msgspec
import pytest
import redis
import uvicorn

from shared.events import FIELD, STREAMS, SourceEvent
from system_apis.app import create_app
from system_apis.connectors.salesforce.outbound import ACK
from tests.support import REPO, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from litestar import Litestar

    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox
    from tests.crm_fixtures import CrmSandbox

pytestmark = pytest.mark.slow

OLD_SECRET = "whsec_old_secret_still_accepted_while_rotating"
NEW_SECRET = "whsec_new_secret_after_rotation"
TOKEN = "outbound-" + uuid.uuid4().hex
OTHER_ORG = "00D000000000999AAA"


@functools.cache
def contract() -> Any:
    """A validator of the committed event contract."""
    return jsonschema_rs.validator_for(json.loads((REPO / "openapi" / "events.json").read_text()))


@pytest.fixture
def streams(redis_url: str) -> Iterator[redis.Redis]:
    """The session's Redis, with no event streams and no dedupe markers before and after the test."""
    client = redis.Redis.from_url(redis_url)

    def clear() -> None:
        keys = list(client.scan_iter(match="finsync:events:*", count=1000))
        if keys:
            client.delete(*keys)

    clear()
    yield client
    clear()
    client.close()


@contextmanager
def serve(app: Litestar) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="ingress", daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 15, interval=0.02), "the system layer did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def system(
    make_settings: Callable[..., Settings],
    billing: BillingSandbox,
    crm: CrmSandbox,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, Litestar]]:
    """The system layer over both sandboxes as the sources ``billing`` and ``crm``, served on loopback.

    ``@pytest.mark.parametrize("system", [{"max_backlog": n}], indirect=True)`` sets the event settings.
    """
    events = getattr(request, "param", {})
    settings = make_settings(
        auth={"enabled": False},
        rate_limit={"enabled": False},
        events=events,
        sources={
            "billing": {
                "kind": "stripe",
                "url": billing.url,
                "secret_key_file": str(billing.secret_key_file),
                "backoff": 0.01,
                "webhook_secrets": [OLD_SECRET, NEW_SECRET],
                "entity_by_currency": {"USD": "FS-US", "EUR": "FS-EU"},
            },
            "crm": {
                "kind": "salesforce",
                "login_url": crm.url,
                "client_id": crm.client_id,
                "client_secret": crm.client_secret,
                "api_version": "66.0",
                "outbound_token": TOKEN,
                "organization_id": crm.org()["organization_id"],
            },
        },
    )
    app = create_app(settings)
    with serve(app) as url:
        yield url, app


def entries(streams: redis.Redis, kind: str) -> list[dict[str, Any]]:
    """The events on ``kind``'s stream, oldest first, each checked against the committed contract."""
    found = []
    for _, fields in streams.xrange(STREAMS[kind]):
        raw = fields[FIELD.encode()]
        document = json.loads(raw)
        contract().validate(document)
        msgspec.json.decode(raw, type=SourceEvent)
        found.append(document)
    return found


def counted(app: Litestar, name: str, **labels: str) -> float:
    """The value of one of the ingress's counters (``pushes`` or ``rejections``) with ``labels``."""
    registry = app.state.ingress.metrics.registry
    sample = "finsync_source_pushes_total" if name == "pushes" else "finsync_source_push_rejections_total"
    return registry.get_sample_value(sample, labels) or 0.0


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a delivery signed as Stripe documents it (written here, independently of the ingress)."""
    moment = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={moment},v1={signature}", "Content-Type": "application/json"}


def new_invoice(billing: BillingSandbox) -> str:
    """A customer and a draft invoice for it, made in the sandox (``customer.created``, ``invoice.created``)."""
    customer = billing.api.post("/v1/customers", data={"name": "Pushed Customer"}).json()
    invoice = billing.api.post("/v1/invoices", data={"customer": customer["id"], "currency": "usd"})
    assert invoice.status_code == 200, invoice.text
    invoice_id: str = invoice.json()["id"]
    return invoice_id


def invoice_event(billing: BillingSandbox, invoice_id: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in billing.list_all("/v1/events", type="invoice.created")
        if e["data"]["object"]["id"] == invoice_id
    ]
    return event


def delivered(billing: BillingSandbox, count: int) -> list[dict[str, Any]]:
    """The delivery attempts once ``count`` of them were acknowledged and none is pending."""

    def done() -> bool:
        deliveries = billing.deliveries()
        return deliveries["pending"] == 0 and sum(a["delivered"] for a in deliveries["attempts"]) >= count

    assert wait_until(done, 10, interval=0.05), billing.deliveries()
    attempts: list[dict[str, Any]] = billing.deliveries()["attempts"]
    return attempts


def opportunity(crm: CrmSandbox, name: str, **fields: Any) -> dict[str, Any]:
    """An account and an opportunity of it, made in the sandbox (one outbound notification)."""
    account = crm.control("POST", "/accounts", status=201, json={"Name": f"{name} account"})
    return crm.create_opportunity(
        Name=name, AccountId=account["Id"], StageName="Prospecting", CloseDate="2026-12-15", **fields
    )


# Stripe webhooks


def test_a_signed_webhook_is_on_the_stream_once_before_its_2xx(
    system: tuple[str, Litestar], billing: BillingSandbox, streams: redis.Redis
) -> None:
    url, app = system
    billing.add_endpoint(f"{url}/v1/billing/billing/webhooks", secret=NEW_SECRET)
    invoice_id = new_invoice(billing)
    attempts = delivered(billing, 2)
    assert {a["type"]: a["status"] for a in attempts} == {"customer.created": 200, "invoice.created": 200}
    (event,) = entries(streams, "billing")
    stripe_event = invoice_event(billing, invoice_id)
    assert event["id"] == event["dedupe_key"] == f"billing:{stripe_event['id']}"
    assert event["type"] == "billing.invoice.created"
    assert (event["kind"], event["source"], event["via"]) == ("billing", "billing", "push")
    assert event["ordering_key"] == f"billing:billing:invoice:{invoice_id}"
    assert event["invoice"]["invoice_ref"] == invoice_id
    assert event["invoice"]["status"] == "draft"
    assert event["invoice"]["currency"] == "USD"
    assert event["invoice"]["total"] == "0.00", "converted from minor units: two decimals for USD"
    assert counted(app, "rejections", source="billing", kind="billing", reason="ignored_type") == 1

    # Rotation: a second endpoint signs with the old secret. Both deliveries of the next event are
    # acknowledged; the event is appended once.
    billing.add_endpoint(f"{url}/v1/billing/billing/webhooks", secret=OLD_SECRET)
    finalized = billing.api.post(f"/v1/invoices/{invoice_id}/finalize")
    assert finalized.status_code == 200, finalized.text
    attempts = delivered(billing, 4)
    finals = [a for a in attempts if a["type"] == "invoice.finalized"]
    assert sorted(a["status"] for a in finals) == [200, 200]
    assert len({a["endpoint"] for a in finals}) == 2
    first, *later = entries(streams, "billing")
    assert first == event
    assert len({e["id"] for e in later}) == len(later), "each event once, though delivered twice"
    (second,) = [e for e in later if e["type"] == "billing.invoice.finalized"]
    assert second["invoice"]["status"] == "open"
    assert counted(app, "pushes", source="billing", kind="billing", outcome="duplicate") == len(later)
    assert counted(app, "pushes", source="billing", kind="billing", outcome="accepted") == 1 + len(later)

    # The catch-up read answers the same events, as the sweep would see them.
    pushed = [first, *later]
    page = httpx.get(f"{url}/v1/billing/billing/events", params={"limit": 10}).json()
    assert page["next_cursor"] is None
    swept = page["items"]
    assert sorted((e["id"], e["dedupe_key"], e["via"]) for e in swept) == sorted(
        (e["id"], e["dedupe_key"], "sweep") for e in pushed
    )
    assert {e["id"]: e["invoice"] for e in swept} == {e["id"]: e["invoice"] for e in pushed}
    for e in swept:
        contract().validate(e)
    one = httpx.get(f"{url}/v1/billing/billing/events", params={"limit": 1}).json()
    more = httpx.get(
        f"{url}/v1/billing/billing/events", params={"limit": 1, "cursor": one["next_cursor"]}
    ).json()
    assert [e["id"] for e in one["items"] + more["items"]] == [e["id"] for e in swept[:2]]


def test_a_bad_or_replayed_signature_is_refused_and_nothing_is_appended(
    system: tuple[str, Litestar], billing: BillingSandbox, streams: redis.Redis
) -> None:
    url, app = system
    invoice_id = new_invoice(billing)
    body = json.dumps(invoice_event(billing, invoice_id)).encode()
    webhooks = f"{url}/v1/billing/billing/webhooks"
    refusals = {
        "unknown secret": signed("whsec_not_one_of_ours", body),
        "replayed": signed(NEW_SECRET, body, int(time.time()) - 301),
        "no signature": {"Content-Type": "application/json"},
        "garbage": {"Stripe-Signature": "t=abc,v2=zz"},
    }
    for why, headers in refusals.items():
        answer = httpx.post(webhooks, content=body, headers=headers)
        assert answer.status_code == 400, (why, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    tampered = httpx.post(webhooks, content=body.replace(b"usd", b"eur"), headers=signed(NEW_SECRET, body))
    assert tampered.status_code == 400
    assert entries(streams, "billing") == []
    assert counted(app, "rejections", source="billing", kind="billing", reason="signature") == 4
    assert counted(app, "rejections", source="billing", kind="billing", reason="replay") == 1

    # The sandbox's clock ten minutes ahead: its real deliveries carry a t out of tolerance.
    billing.add_endpoint(webhooks, secret=NEW_SECRET)
    billing.timings(retry_horizon=0.01)
    billing.advance_clock(600)
    new_invoice(billing)
    assert wait_until(lambda: len(billing.deliveries()["attempts"]) >= 2, 10, interval=0.05)
    assert {a["status"] for a in billing.deliveries()["attempts"]} == {400}
    assert entries(streams, "billing") == []

    good = httpx.post(webhooks, content=body, headers=signed(NEW_SECRET, body))
    assert (good.status_code, good.json()["outcome"]) == (200, "accepted")
    again = httpx.post(webhooks, content=body, headers=signed(OLD_SECRET, body))
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert len(entries(streams, "billing")) == 1


@pytest.mark.parametrize("system", [{"max_backlog": 1, "retry_after": 7}], indirect=True)
def test_over_the_backlog_bound_pushes_are_turned_away_and_arrive_once_it_drains(
    system: tuple[str, Litestar], billing: BillingSandbox, crm: CrmSandbox, streams: redis.Redis
) -> None:
    url, app = system
    billing.timings(retry_base=0.2, retry_factor=1.0, retry_horizon=30)
    billing.add_endpoint(f"{url}/v1/billing/billing/webhooks", secret=NEW_SECRET, events=["invoice.created"])
    first = new_invoice(billing)
    delivered(billing, 1)
    second = new_invoice(billing)
    assert wait_until(
        lambda: any(a["status"] == 503 for a in billing.deliveries()["attempts"]), 10, interval=0.05
    )
    body = json.dumps(invoice_event(billing, second)).encode()
    direct = httpx.post(f"{url}/v1/billing/billing/webhooks", content=body, headers=signed(NEW_SECRET, body))
    assert (direct.status_code, direct.headers["retry-after"]) == (503, "7")
    assert [e["invoice"]["invoice_ref"] for e in entries(streams, "billing")] == [first]

    crm.outbound(listener_url=f"{url}/v1/crm/crm/outbound-messages/{TOKEN}")
    streams.xadd(STREAMS["crm"], {FIELD: b"{}"})  # someone else's backlog
    created = opportunity(crm, "Pushed while full")
    assert wait_until(lambda: any(d["http_status"] == 503 for d in crm.deliveries()), 10, interval=0.05)
    assert all(d["outcome"] != "acked" for d in crm.deliveries()), "no Ack while turned away"

    # A consumer drains both streams; the sources' own retries bring what was turned away.
    streams.xtrim(STREAMS["billing"], maxlen=0)
    streams.xtrim(STREAMS["crm"], maxlen=0)
    assert wait_until(lambda: len(streams.xrange(STREAMS["billing"])) == 1, 10, interval=0.05)
    assert [e["invoice"]["invoice_ref"] for e in entries(streams, "billing")] == [second]
    assert wait_until(lambda: any(d["outcome"] == "acked" for d in crm.deliveries()), 10, interval=0.05)
    (booking,) = entries(streams, "crm")
    assert booking["booking"]["booking_ref"] == created["Id"]
    assert counted(app, "pushes", source="billing", kind="billing", outcome="turned_away") >= 2
    assert counted(app, "pushes", source="crm", kind="crm", outcome="turned_away") >= 1


# Salesforce outbound messages


def test_an_outbound_message_lands_as_events_and_is_acknowledged(
    system: tuple[str, Litestar], crm: CrmSandbox, streams: redis.Redis
) -> None:
    url, app = system
    crm.outbound(listener_url=f"{url}/v1/crm/crm/outbound-messages/{TOKEN}", paused=True)
    opened = opportunity(crm, "Pushed deal", Amount=1500.5)
    won = crm.update_opportunity(opened["Id"], StageName="Closed Won")
    crm.outbound(paused=False)
    assert wait_until(lambda: crm.outbound()["pending_count"] == 0, 10, interval=0.05)
    calls = crm.deliveries()
    assert {(call["outcome"], call["http_status"]) for call in calls} == {("acked", 200)}
    notifications = [notification for call in calls for notification in call["notification_ids"]]
    assert len(notifications) == 2
    # Both notifications carry the record as it is when sent (won): one change, so one event, under the
    # first notification's id; the second is acknowledged as a duplicate.
    (event,) = entries(streams, "crm")
    assert event["id"] == f"crm:{notifications[0]}"
    stamp = won["LastModifiedDate"].replace(".000+0000", "Z")
    assert event["dedupe_key"] == f"crm:booking:{opened['Id']}:{stamp}"
    assert (event["type"], event["kind"], event["ordering_key"]) == (
        "crm.booking.changed",
        "crm",
        f"crm:crm:booking:{opened['Id']}",
    )
    assert (event["booking"]["status"], event["booking"]["stage"]) == ("won", "Closed Won")
    assert event["booking"]["amount"] == "1500.50"
    assert counted(app, "pushes", source="crm", kind="crm", outcome="accepted") == 1


XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&lol9;</OrganizationId>
</notifications></soapenv:Body></soapenv:Envelope>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE notifications [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>00D000000000001AAA</OrganizationId>
<ActionId>04k000000000001AAA</ActionId><Notification><Id>04l000000000001AAA</Id>
<sObject xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>006000000000001AAA</sf:Id><sf:Name>&xxe;</sf:Name>
</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"""


def envelope(org: str, opportunity: str = "006000000000001AAA") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        '<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId><ActionId>04k000000000001AAA</ActionId>"
        "<Notification><Id>04l000000000777AAA</Id>"
        '<sObject xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{opportunity}</sf:Id><sf:CloseDate>2026-12-15</sf:CloseDate><sf:IsClosed>false</sf:IsClosed>"
        "<sf:IsWon>false</sf:IsWon><sf:LastModifiedDate>2026-11-27T10:00:00.000Z</sf:LastModifiedDate>"
        "<sf:Name>Crafted</sf:Name><sf:StageName>Prospecting</sf:StageName>"
        "</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def test_a_wrong_token_hostile_xml_or_another_org_is_refused_and_nothing_is_appended(
    system: tuple[str, Litestar], crm: CrmSandbox, streams: redis.Redis
) -> None:
    url, app = system
    org = crm.org()["organization_id"]
    listener = f"{url}/v1/crm/crm/outbound-messages"
    xml = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    wrong = httpx.post(f"{listener}/not-the-token", content=envelope(org), headers=xml)
    assert wrong.status_code == 404
    for hostile in (XML_BOMB, XXE):
        started = time.monotonic()
        answer = httpx.post(f"{listener}/{TOKEN}", content=hostile, headers=xml)
        assert answer.status_code == 400, answer.text
        assert "root:" not in answer.text, "no external entity was read"
        assert "lollol" not in answer.text, "no entity was expanded"
        assert time.monotonic() - started < 2
    other = httpx.post(f"{listener}/{TOKEN}", content=envelope(OTHER_ORG), headers=xml)
    assert other.status_code == 403
    assert entries(streams, "crm") == []
    assert counted(app, "rejections", source="crm", kind="crm", reason="token") == 1
    assert counted(app, "rejections", source="crm", kind="crm", reason="malformed") == 2
    assert counted(app, "rejections", source="crm", kind="crm", reason="organization") == 1

    # The sandbox pointed at a wrong token: its calls are refused and never acknowledged.
    crm.outbound(listener_url=f"{listener}/not-the-token")
    opportunity(crm, "Wrong listener")
    assert wait_until(lambda: len(crm.deliveries()) >= 1, 10, interval=0.05)
    assert crm.deliveries()[0]["http_status"] == 404
    assert entries(streams, "crm") == []

    # The 15-character form of the org's id is the same org; the answer is the Ack.
    accepted = httpx.post(f"{listener}/{TOKEN}", content=envelope(org[:15]), headers=xml)
    assert (accepted.status_code, accepted.content) == (200, ACK)
    assert accepted.headers["content-type"].startswith("text/xml")
    assert len(entries(streams, "crm")) == 1
