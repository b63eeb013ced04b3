"""The billing sandbox itself, over real HTTP: it must behave like Stripe's API, not like a client wishes (auth,
form bodies, the invoice state machine, newest-first paging, Idempotency-Key, events, signed webhooks with
retries, duplicates and reordering, faults, reset)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from system_apis.connectors.stripe.sandbox.config import API_VERSION
from system_apis.connectors.stripe.sandbox.seed import (
    _NAME_FIRST,
    _NAME_SECOND,
    _NAME_SUFFIX,
    EUR_CUSTOMERS,
    erp_customer_names,
)
from system_apis.connectors.tryton import seed as erp_seed
from tests.billing_fixtures import RETRY_BASE
from tests.support import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.billing_fixtures import BillingSandbox, WebhookReceiver

pytestmark = pytest.mark.slow

SEEDED_INVOICES = 120
"""12 ERP customers x 10 months: more than one page of 100."""
SIGNATURE_TOLERANCE = 300
"""Seconds Stripe's libraries accept between a signature's timestamp and now."""


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["x-sandbox"] == "stripe"
    body: dict[str, Any] = response.json()
    return body


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The ``error`` member of a Stripe error answer with ``status``."""
    body = ok(response, status)
    assert set(body) == {"error"}, body
    assert body["error"]["type"] in ("api_error", "card_error", "idempotency_error", "invalid_request_error")
    assert body["error"]["message"]
    return dict(body["error"])


def customer(billing: BillingSandbox, **fields: str) -> dict[str, Any]:
    data = {"name": "Test Customer", "invoice_settings[default_payment_method]": "pm_card_visa", **fields}
    return ok(billing.api.post("/v1/customers", data=data))


def price(billing: BillingSandbox, lookup_key: str) -> dict[str, Any]:
    (found,) = ok(billing.api.get("/v1/prices", params={"lookup_keys[]": lookup_key}))["data"]
    return dict(found)


def events(billing: BillingSandbox, **params: Any) -> list[dict[str, Any]]:
    return billing.list_all("/v1/events", **params)


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """Stripe's documented check, written independently of the sandbox: any v1 matches, timestamp fresh."""
    parts = [part.split("=", 1) for part in header.split(",")]
    timestamp = int(next(value for key, value in parts if key == "t"))
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    matches = any(hmac.compare_digest(expected, value) for key, value in parts if key == "v1")
    return matches and abs(now - timestamp) <= tolerance


# Authentication, labels, envelopes


def test_auth_is_a_bearer_secret_key_and_errors_have_stripe_shape(billing: BillingSandbox) -> None:
    missing = httpx.get(f"{billing.url}/v1/customers")
    wrong = httpx.get(
        f"{billing.url}/v1/customers", headers={"Authorization": "Bearer sk_test_not_the_key_1234"}
    )
    basic = httpx.get(f"{billing.url}/v1/customers", auth=(billing.secret_key, ""))
    assert error(missing, 401)["message"].startswith("You did not provide an API key.")
    message = error(wrong, 401)["message"]
    assert message.startswith("Invalid API Key provided: sk_test_")
    assert message.endswith("1234")
    assert "not_the_key" not in message, "the key is redacted"
    assert ok(basic)["object"] == "list", "Stripe also takes the key as HTTP Basic user name"

    answer = billing.api.get("/v1/customers")
    assert answer.headers["request-id"].startswith("req_")
    assert answer.headers["stripe-version"] == API_VERSION
    assert answer.headers["x-sandbox"] == "stripe"
    unknown = error(billing.api.get("/v1/subscriptions_of_nothing"), 404)
    assert unknown["message"].startswith("Unrecognized request URL (GET: /v1/subscriptions_of_nothing)")
    assert error(billing.api.delete("/v1/invoices"), 404)["message"].startswith("Unrecognized request URL")
    missing_object = error(billing.api.get("/v1/invoices/in_doesnotexist"), 404)
    assert missing_object["code"] == "resource_missing"
    assert missing_object["message"] == "No such invoice: 'in_doesnotexist'"
    other_version = billing.api.get("/v1/customers", headers={"Stripe-Version": "2020-08-27"})
    assert error(other_version, 400)["param"] == "Stripe-Version"
    assert httpx.get(f"{billing.url}/sandbox/counters").headers["x-sandbox"] == "stripe"
    assert billing.counters()["unauthorized"] == 2


def test_bodies_are_form_encoded_with_nested_parameters(billing: BillingSandbox) -> None:
    created = customer(
        billing, **{"metadata[erp_party]": "C-900", "metadata[segment]": "smb", "email": "a@b.example"}
    )
    assert created["id"].startswith("cus_")
    assert created["object"] == "customer"
    assert created["livemode"] is False
    assert created["metadata"] == {"erp_party": "C-900", "segment": "smb"}
    assert created["invoice_settings"]["default_payment_method"] == "pm_card_visa"

    as_json = billing.api.post("/v1/customers", json={"name": "x"})
    assert "unsupported Content-Type application/json" in error(as_json, 400)["message"]
    unknown = error(billing.api.post("/v1/customers", data={"nmae": "typo"}), 400)
    assert (unknown["message"], unknown["param"]) == ("Received unknown parameter: nmae", "nmae")
    nested = error(billing.api.post("/v1/customers", data={"invoice_settings[colour]": "red"}), 400)
    assert nested["param"] == "invoice_settings[colour]"
    missing = error(billing.api.post("/v1/invoices", data={"description": "no customer"}), 400)
    assert (missing["code"], missing["param"]) == ("parameter_missing", "customer")
    bad_integer = error(billing.api.get("/v1/customers", params={"limit": "ten"}), 400)
    assert bad_integer["message"] == "Invalid integer: ten"

    path = f"/v1/customers/{created['id']}"
    updated = ok(
        billing.api.post(path, data={"metadata[segment]": "", "metadata[tier]": "gold", "name": "Renamed"})
    )
    assert updated["metadata"] == {"erp_party": "C-900", "tier": "gold"}, "an empty value unsets one key"
    cleared = ok(billing.api.post(path, data={"metadata": ""}))
    assert cleared["metadata"] == {}, "an empty metadata unsets every key"
    (first_update, *_) = events(billing, type="customer.updated")[::-1]
    assert first_update["data"]["previous_attributes"]["name"] == "Test Customer"
    assert first_update["data"]["object"]["name"] == "Renamed"

    deleted = ok(billing.api.delete(path))
    assert deleted == {"id": created["id"], "object": "customer", "deleted": True}
    assert ok(billing.api.get(path))["deleted"] is True


# Seed


def test_the_seed_agrees_with_the_erp_seed(billing: BillingSandbox) -> None:
    assert (_NAME_FIRST, _NAME_SECOND, _NAME_SUFFIX) == (
        erp_seed._NAME_FIRST,
        erp_seed._NAME_SECOND,
        erp_seed._NAME_SUFFIX,
    ), "the sandbox repeats the ERP seed's name draw"
    seed = billing.seed()
    codes = [f"C-{n:03d}" for n in range(1, erp_seed.CUSTOMERS + 1)]
    assert [c["erp_party"] for c in seed["customers"]] == codes
    assert [c["name"] for c in seed["customers"]] == erp_customer_names(seed["variant"])
    assert {c["erp_party"] for c in seed["customers"] if c["currency"] == "eur"} == EUR_CUSTOMERS
    assert [(p["erp_product"], p["name"]) for p in seed["products"]] == [
        (p.code, p.name) for p in erp_seed.PRODUCTS
    ]
    assert {p["lookup_key"] for p in seed["prices"]} == {
        f"{p.code}:{currency}" for p in erp_seed.PRODUCTS for currency in ("usd", "eur")
    }

    found = ok(billing.api.get("/v1/customers/search", params={"query": "metadata['erp_party']:'C-007'"}))
    assert found["object"] == "search_result"
    (c007,) = found["data"]
    assert (c007["name"], c007["currency"]) == (erp_customer_names(seed["variant"])[6], "eur")
    product = ok(billing.api.get(f"/v1/products/{price(billing, 'P-400:eur')['product']}"))
    assert product["metadata"]["erp_product"] == "P-400"
    assert events(billing) == [], "the seeded history is older than the 30 days events are kept"


# Lists


def test_lists_page_newest_first_through_the_whole_seed(billing: BillingSandbox) -> None:
    first = ok(billing.api.get("/v1/invoices", params={"limit": 100}))
    assert (first["object"], first["url"], first["has_more"], len(first["data"])) == (
        "list",
        "/v1/invoices",
        True,
        100,
    )
    second = ok(
        billing.api.get("/v1/invoices", params={"limit": 100, "starting_after": first["data"][-1]["id"]})
    )
    assert (second["has_more"], len(second["data"])) == (False, SEEDED_INVOICES - 100)
    invoices = first["data"] + second["data"]
    assert len({invoice["id"] for invoice in invoices}) == SEEDED_INVOICES
    created = [invoice["created"] for invoice in invoices]
    assert created == sorted(created, reverse=True), "newest first"
    assert {invoice["status"] for invoice in invoices} == {"draft", "open", "paid", "void", "uncollectible"}
    assert all(
        isinstance(invoice["amount_due"], int) and invoice["currency"] in ("usd", "eur")
        for invoice in invoices
    )

    back = ok(billing.api.get("/v1/invoices", params={"limit": 5, "ending_before": second["data"][0]["id"]}))
    assert [i["id"] for i in back["data"]] == [i["id"] for i in first["data"][-5:]], (
        "the page just newer, newest first"
    )
    assert back["has_more"] is True
    assert len(ok(billing.api.get("/v1/invoices"))["data"]) == 10, "the default limit is 10"
    expanded = ok(billing.api.get("/v1/invoices", params={"limit": 2, "expand[]": "data.customer"}))
    assert [i["customer"]["object"] for i in expanded["data"]] == ["customer", "customer"]
    unexpandable = error(billing.api.get("/v1/invoices", params={"expand[]": "data.currency"}), 400)
    assert unexpandable["message"] == "This property cannot be expanded (data.currency)."
    assert error(billing.api.get("/v1/invoices", params={"limit": 101}), 400)["param"] == "limit"
    assert error(billing.api.get("/v1/invoices", params={"limit": 0}), 400)["param"] == "limit"
    missing = error(billing.api.get("/v1/invoices", params={"starting_after": "in_nothing"}), 400)
    assert (missing["code"], missing["param"]) == ("resource_missing", "starting_after")

    paid = billing.list_all("/v1/invoices", status="paid")
    intents = billing.list_all("/v1/payment_intents")
    assert len(intents) == len(paid), "each paid invoice has its payment intent"
    assert len(billing.list_all("/v1/invoice_payments")) == len(paid)
    one = next(i for i in invoices if i["collection_method"] == "send_invoice")
    assert one["due_date"] == one["created"] + 30 * 86400
    by_customer = billing.list_all("/v1/invoices", customer=one["customer"])
    assert len(by_customer) == 10
    window = {"created[gte]": str(created[50]), "created[lte]": str(created[10])}
    assert len(billing.list_all("/v1/invoices", **window)) == sum(
        created[50] <= c <= created[10] for c in created
    )


# Invoices


def test_the_invoice_lifecycle_follows_stripes_state_machine(billing: BillingSandbox) -> None:
    buyer = customer(billing)
    consulting = price(billing, "P-100:usd")
    pending = ok(
        billing.api.post(
            "/v1/invoiceitems", data={"customer": buyer["id"], "amount": "2500", "currency": "usd"}
        )
    )
    assert (pending["invoice"], pending["amount"]) == (None, 2500)

    excluded = ok(billing.api.post("/v1/invoices", data={"customer": buyer["id"]}))
    assert (excluded["status"], excluded["lines"]["total_count"]) == ("draft", 0), (
        "pending items are excluded by default"
    )
    invoice = ok(
        billing.api.post(
            "/v1/invoices",
            data={
                "customer": buyer["id"],
                "pending_invoice_items_behavior": "include",
                "metadata[opportunity_id]": "006A1",
            },
        )
    )
    assert invoice["id"].startswith("in_")
    assert [line["parent"]["invoice_item_details"]["invoice_item"] for line in invoice["lines"]["data"]] == [
        pending["id"]
    ]
    item = ok(
        billing.api.post(
            "/v1/invoiceitems",
            data={
                "customer": buyer["id"],
                "invoice": invoice["id"],
                "pricing[price]": consulting["id"],
                "quantity": "3",
            },
        )
    )
    assert item["id"].startswith("ii_")
    assert item["amount"] == 3 * consulting["unit_amount"]
    assert item["pricing"]["price_details"]["price"] == consulting["id"]
    draft = ok(billing.api.get(f"/v1/invoices/{invoice['id']}"))
    due = 2500 + 3 * consulting["unit_amount"]
    assert (draft["status"], draft["number"], draft["amount_due"], draft["amount_remaining"]) == (
        "draft",
        None,
        due,
        due,
    )
    assert draft["status_transitions"] == {
        "finalized_at": None,
        "marked_uncollectible_at": None,
        "paid_at": None,
        "voided_at": None,
    }
    assert error(billing.api.post(f"/v1/invoices/{invoice['id']}/pay"), 400)["message"].endswith(
        "before paying it."
    )

    opened = ok(billing.api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    assert opened["status"] == "open"
    assert opened["number"] == f"{buyer['invoice_prefix']}-0001"
    assert opened["status_transitions"]["finalized_at"] is not None
    again = error(billing.api.post(f"/v1/invoices/{invoice['id']}/finalize"), 400)
    assert again["message"].startswith("This invoice is already finalized")
    late_item = billing.api.post(
        "/v1/invoiceitems",
        data={"customer": buyer["id"], "invoice": invoice["id"], "amount": "1", "currency": "usd"},
    )
    assert error(late_item, 400)["code"] == "invoice_not_editable"
    assert error(billing.api.post(f"/v1/invoices/{invoice['id']}/void/extra"), 404)

    paid = ok(billing.api.post(f"/v1/invoices/{invoice['id']}/pay", data={"expand[]": "payments"}))
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", due, 0)
    assert paid["status_transitions"]["paid_at"] >= paid["status_transitions"]["finalized_at"]
    (payment,) = paid["payments"]["data"]
    assert payment["id"].startswith("inpay_")
    assert (payment["amount_paid"], payment["status"]) == (due, "paid")
    intent = ok(
        billing.api.get(
            f"/v1/payment_intents/{payment['payment']['payment_intent']}",
            params={"expand[]": "latest_charge"},
        )
    )
    assert intent["id"].startswith("pi_")
    assert (intent["status"], intent["amount_received"], intent["customer"]) == (
        "succeeded",
        due,
        buyer["id"],
    )
    assert intent["latest_charge"]["id"].startswith("ch_")
    assert (intent["latest_charge"]["paid"], intent["latest_charge"]["status"]) == (True, "succeeded")
    assert (
        error(billing.api.post(f"/v1/invoices/{invoice['id']}/pay"), 400)["message"]
        == "Invoice is already paid"
    )
    assert error(billing.api.post(f"/v1/invoices/{invoice['id']}/void"), 400)

    types = [event["type"] for event in events(billing)][::-1]
    assert types == [
        "customer.created",
        "invoiceitem.created",
        "invoice.created",
        "invoice.created",
        "invoiceitem.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def test_an_invoice_can_be_written_off_and_voided(billing: BillingSandbox) -> None:
    buyer = customer(billing)
    empty = ok(billing.api.post("/v1/invoices", data={"customer": buyer["id"], "currency": "eur"}))
    settled = ok(billing.api.post(f"/v1/invoices/{empty['id']}/finalize"))
    assert (settled["status"], settled["amount_due"]) == ("paid", 0), (
        "a finalized invoice with nothing due is paid"
    )
    assert settled["number"] == f"{buyer['invoice_prefix']}-0001"

    data = {"customer": buyer["id"], "collection_method": "send_invoice", "days_until_due": "30"}
    invoice = ok(billing.api.post("/v1/invoices", data=data))
    assert invoice["due_date"] == invoice["created"] + 30 * 86400
    ok(
        billing.api.post(
            "/v1/invoiceitems", data={"customer": buyer["id"], "invoice": invoice["id"], "amount": "900"}
        )
    )
    ok(billing.api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    doubtful = ok(billing.api.post(f"/v1/invoices/{invoice['id']}/mark_uncollectible"))
    assert (doubtful["status"], doubtful["amount_remaining"]) == ("uncollectible", 900)
    assert error(billing.api.post(f"/v1/invoices/{invoice['id']}/mark_uncollectible"), 400)
    voided = ok(billing.api.post(f"/v1/invoices/{invoice['id']}/void"))
    assert voided["status"] == "void"
    transitions = voided["status_transitions"]
    assert transitions["voided_at"] >= transitions["marked_uncollectible_at"] >= transitions["finalized_at"]
    assert transitions["paid_at"] is None
    assert voided["number"] == f"{buyer['invoice_prefix']}-0002"
    assert error(
        billing.api.post(f"/v1/invoices/{invoice['id']}/pay", data={"paid_out_of_band": "true"}), 400
    )
    charge_auto = billing.api.post("/v1/invoices", data={"customer": buyer["id"], "days_until_due": "30"})
    assert error(charge_auto, 400)["param"] == "days_until_due"

    types = [event["type"] for event in events(billing)][::-1]
    assert types == [
        "customer.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.created",
        "invoiceitem.created",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.voided",
    ]


def test_a_declined_payment_leaves_the_invoice_open(billing: BillingSandbox) -> None:
    buyer = customer(billing)
    invoice = ok(billing.api.post("/v1/invoices", data={"customer": buyer["id"], "currency": "usd"}))
    ok(
        billing.api.post(
            "/v1/invoiceitems", data={"customer": buyer["id"], "invoice": invoice["id"], "amount": "4200"}
        )
    )
    ok(billing.api.post(f"/v1/invoices/{invoice['id']}/finalize"))

    declined = billing.api.post(
        f"/v1/invoices/{invoice['id']}/pay",
        data={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
    )
    card = error(declined, 402)
    assert (card["type"], card["code"], card["decline_code"]) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert card["payment_intent"]["status"] == "requires_payment_method"
    still_open = ok(billing.api.get(f"/v1/invoices/{invoice['id']}"))
    assert (still_open["status"], still_open["attempt_count"], still_open["amount_paid"]) == ("open", 1, 0)
    assert [e["type"] for e in events(billing, type="invoice.payment_failed")] == ["invoice.payment_failed"]
    assert ok(billing.api.get(f"/v1/charges/{card['charge']}"))["failure_code"] == "card_declined"

    paid = ok(billing.api.post(f"/v1/invoices/{invoice['id']}/pay", data={"paid_out_of_band": "true"}))
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"], paid["attempt_count"]) == (
        "paid",
        4200,
        0,
        1,
    )
    assert ok(billing.api.get("/v1/invoice_payments", params={"invoice": invoice["id"]}))["data"] == []


def test_search_finds_an_invoice_by_metadata_but_lags_like_stripe(billing: BillingSandbox) -> None:
    buyer = customer(billing)
    made = ok(
        billing.api.post("/v1/invoices", data={"customer": buyer["id"], "metadata[opportunity_id]": "006XYZ"})
    )
    query = {"query": "metadata['opportunity_id']:'006XYZ'"}
    found = ok(billing.api.get("/v1/invoices/search", params=query))
    assert [invoice["id"] for invoice in found["data"]] == [made["id"]]
    assert (found["url"], found["has_more"], found["next_page"]) == ("/v1/invoices/search", False, None)
    both = ok(
        billing.api.get(
            "/v1/invoices/search", params={"query": f"customer:'{buyer['id']}' AND status:'draft'"}
        )
    )
    assert [invoice["id"] for invoice in both["data"]] == [made["id"]]
    seeded = ok(
        billing.api.get(
            "/v1/invoices/search",
            params={"query": "metadata['billing_period']:'2026-03'", "limit": 5, "expand[]": "total_count"},
        )
    )
    assert (seeded["total_count"], len(seeded["data"]), seeded["has_more"]) == (12, 5, True)
    rest = ok(
        billing.api.get(
            "/v1/invoices/search",
            params={
                "query": "metadata['billing_period']:'2026-03'",
                "limit": 100,
                "page": seeded["next_page"],
            },
        )
    )
    assert len(rest["data"]) == 7

    billing.faults(search_lag=30)
    hidden = ok(
        billing.api.post("/v1/invoices", data={"customer": buyer["id"], "metadata[opportunity_id]": "006LAG"})
    )
    lagged = {"query": "metadata['opportunity_id']:'006LAG'"}
    assert ok(billing.api.get("/v1/invoices/search", params=lagged))["data"] == [], (
        "search is not read-after-write"
    )
    listed = ok(billing.api.get("/v1/invoices", params={"customer": buyer["id"]}))
    assert hidden["id"] in [invoice["id"] for invoice in listed["data"]], "lists are"
    assert billing.counters()["search_lagged"] >= 1

    for bad in (
        "colour:'red'",
        "status:'open' AND total>5 OR currency:'usd'",
        "total:'lots'",
        "number~'ab'",
        "status:open",
    ):
        assert (
            error(billing.api.get("/v1/invoices/search", params={"query": bad}), 400)["param"] == "query"
        ), bad


# Idempotency


def test_idempotency_replays_refuses_and_expires(billing: BillingSandbox) -> None:
    key = {"Idempotency-Key": "create-customer-C-950"}
    data = {"name": "Once Only", "metadata[erp_party]": "C-950"}
    first = billing.api.post("/v1/customers", data=data, headers=key)
    replay = billing.api.post("/v1/customers", data=data, headers=key)
    assert ok(first)["id"] == ok(replay)["id"]
    assert "idempotent-replayed" not in first.headers
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["original-request"] == first.headers["request-id"]
    assert replay.headers["idempotency-key"] == "create-customer-C-950"
    assert replay.content == first.content
    assert len(events(billing, type="customer.created")) == 1, "the replay did nothing"
    (event,) = events(billing)
    assert event["request"] == {"id": first.headers["request-id"], "idempotency_key": "create-customer-C-950"}

    mismatch = error(billing.api.post("/v1/customers", data={**data, "name": "Twice"}, headers=key), 400)
    assert mismatch["type"] == "idempotency_error"
    assert "same parameters" in mismatch["message"]
    elsewhere = error(billing.api.post("/v1/invoices", data={"customer": ok(first)["id"]}, headers=key), 400)
    assert (elsewhere["type"], "same endpoint" in elsewhere["message"]) == ("idempotency_error", True)

    finalize_key = {"Idempotency-Key": "finalize-seeded"}
    paid_invoice = billing.list_all("/v1/invoices", status="paid")[0]["id"]
    refused = billing.api.post(f"/v1/invoices/{paid_invoice}/finalize", headers=finalize_key)
    refused_again = billing.api.post(f"/v1/invoices/{paid_invoice}/finalize", headers=finalize_key)
    assert error(refused, 400) == error(refused_again, 400)
    assert refused_again.headers["idempotent-replayed"] == "true", "errors once execution began are saved too"

    invalid_key = {"Idempotency-Key": "fix-and-retry"}
    error(billing.api.post("/v1/customers", data={"nmae": "typo"}, headers=invalid_key), 400)
    fixed = billing.api.post("/v1/customers", data={"name": "fixed"}, headers=invalid_key)
    assert ok(fixed)["name"] == "fixed"
    assert "idempotent-replayed" not in fixed.headers, "a request refused by validation saved nothing"
    assert "idempotency-key" not in billing.api.get("/v1/customers", headers=invalid_key).headers, (
        "GET ignores keys"
    )

    billing.advance_clock(24 * 3600 + 1)
    after_a_day = ok(billing.api.post("/v1/customers", data=data, headers=key))
    assert after_a_day["id"] != ok(first)["id"], (
        "a key older than 24 hours is pruned: the request runs afresh"
    )
    assert billing.expire_keys() >= 1
    once_more = billing.api.post("/v1/customers", data=data, headers=key)
    assert "idempotent-replayed" not in once_more.headers
    counters = billing.counters()
    assert (counters["idempotent_replays"], counters["idempotency_mismatches"]) == (2, 2)


def test_a_retry_while_the_first_write_runs_meets_409(billing: BillingSandbox) -> None:
    billing.faults(write_delay=0.6)
    key = {"Idempotency-Key": "slow-write"}
    answers: list[httpx.Response] = []
    headers = {"Authorization": f"Bearer {billing.secret_key}", **key}

    def write() -> None:
        answers.append(httpx.post(f"{billing.url}/v1/customers", data={"name": "slow"}, headers=headers))

    first = threading.Thread(target=write)
    first.start()

    def running() -> bool:
        keys = httpx.get(f"{billing.url}/sandbox/idempotency").json()["keys"]
        return any(saved["key"] == "slow-write" and saved["running"] for saved in keys)

    assert wait_until(running, 5, interval=0.01), "the first write holds its key"
    conflict = error(billing.api.post("/v1/customers", data={"name": "slow"}, headers=key), 409)
    assert (conflict["type"], conflict["code"]) == ("idempotency_error", "idempotency_key_in_use")
    first.join()
    billing.faults()
    replay = billing.api.post("/v1/customers", data={"name": "slow"}, headers=key)
    assert ok(replay)["id"] == ok(answers[0])["id"]
    assert billing.counters()["idempotency_conflicts"] == 1


# Events


def test_events_support_catch_up_by_type_and_time(billing: BillingSandbox) -> None:
    buyer = customer(billing)
    invoice = ok(billing.api.post("/v1/invoices", data={"customer": buyer["id"]}))
    billing.api.post(
        "/v1/invoiceitems", data={"customer": buyer["id"], "invoice": invoice["id"], "amount": "100"}
    )
    ok(billing.api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    later = billing.advance_clock(120)
    ok(billing.api.post(f"/v1/invoices/{invoice['id']}/pay"))

    everything = events(billing)
    assert everything[0]["type"] == "invoice.payment_succeeded", "newest first"
    event = everything[-1]
    assert event["id"].startswith("evt_")
    assert (event["object"], event["api_version"], event["livemode"], event["type"]) == (
        "event",
        API_VERSION,
        False,
        "customer.created",
    )
    assert event["data"]["object"]["id"] == buyer["id"]
    assert set(event["request"]) == {"id", "idempotency_key"}
    invoice_events = events(billing, type="invoice.*")
    assert {e["type"] for e in invoice_events} == {
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    }
    chosen = events(billing, **{"types[]": ["invoice.finalized", "invoice.paid"]})
    assert [e["type"] for e in chosen] == ["invoice.paid", "invoice.finalized"]
    recent = events(billing, **{"created[gte]": later})
    assert {e["type"] for e in recent} >= {"invoice.paid", "charge.succeeded"}
    assert "invoice.finalized" not in {e["type"] for e in recent}
    assert [e["id"] for e in events(billing, **{"created[lt]": later})] == [
        e["id"] for e in everything if e["created"] < later
    ]
    finalized_snapshot = next(e for e in everything if e["type"] == "invoice.finalized")["data"]["object"]
    assert finalized_snapshot["status"] == "open", "an event holds the object as it was then"
    both = error(
        billing.api.get("/v1/events", params={"type": "invoice.paid", "types[]": "invoice.created"}), 400
    )
    assert both["param"] == "types"

    first_page = ok(billing.api.get("/v1/events", params={"limit": 3}))
    next_page = ok(
        billing.api.get("/v1/events", params={"limit": 3, "starting_after": first_page["data"][-1]["id"]})
    )
    assert [e["id"] for e in first_page["data"] + next_page["data"]] == [e["id"] for e in everything[:6]]

    billing.advance_clock(31 * 86400)
    assert events(billing) == [], "events are kept 30 days"
    assert error(billing.api.get(f"/v1/events/{event['id']}"), 404)["code"] == "resource_missing"


# Webhooks


def test_deliveries_are_signed_as_stripe_documents(
    billing: BillingSandbox, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = billing.add_endpoint(webhook_receiver.url, secret="whsec_test_secret_for_verification")
    assert endpoint["id"].startswith("we_")
    created = customer(billing)
    (delivery,) = webhook_receiver.wait_for(1)
    header = delivery.headers["stripe-signature"]
    assert header.startswith("t=")
    assert verify("whsec_test_secret_for_verification", header, delivery.body, time.time())
    assert not verify("whsec_some_other_secret", header, delivery.body, time.time())
    assert not verify("whsec_test_secret_for_verification", header, delivery.body + b" ", time.time())
    assert delivery.headers["content-type"].startswith("application/json")
    assert delivery.headers["x-sandbox"] == "stripe"
    assert delivery.headers["user-agent"].startswith("Stripe/1.0")
    payload = json.loads(delivery.body)
    assert (payload["object"], payload["type"], payload["data"]["object"]["id"]) == (
        "event",
        "customer.created",
        created["id"],
    )
    assert wait_until(lambda: events(billing)[0]["pending_webhooks"] == 0, 5, interval=0.02)
    assert [e["id"] for e in events(billing, delivery_success="true")] == [payload["id"]]

    billing.advance_clock(600)
    customer(billing, name="Later")
    (_, skewed) = webhook_receiver.wait_for(2)
    assert not verify(
        "whsec_test_secret_for_verification", skewed.headers["stripe-signature"], skewed.body, time.time()
    ), "t follows the sandbox's clock: ten minutes ahead fails the 300 s tolerance"

    listed = ok(
        billing.api.post(
            "/v1/webhook_endpoints", data={"url": webhook_receiver.url, "enabled_events[]": "invoice.paid"}
        )
    )
    assert listed["secret"].startswith("whsec_"), "Stripe shows the secret once, when the endpoint is created"
    assert "secret" not in ok(billing.api.get(f"/v1/webhook_endpoints/{listed['id']}"))


def test_a_failed_delivery_is_retried_with_growing_intervals(
    billing: BillingSandbox, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.answer = lambda n: 500 if n <= 3 else 200
    billing.add_endpoint(webhook_receiver.url)
    customer(billing)
    received = webhook_receiver.wait_for(4)
    assert [r.status for r in received] == [500, 500, 500, 200]
    assert len({r.body for r in received}) == 1, "every attempt sends the same event"
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
    assert gaps[0] >= RETRY_BASE * 0.8
    assert gaps[2] > gaps[0], "the intervals grow"
    attempts = billing.deliveries()["attempts"]
    assert [(a["attempt"], a["status"], a["delivered"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 500, False),
        (4, 200, True),
    ]
    counters = billing.counters()
    assert (
        counters["webhook_retries"],
        counters["webhook_failed_attempts"],
        counters["webhook_delivered"],
    ) == (3, 3, 1)
    assert events(billing)[0]["pending_webhooks"] == 0

    webhook_receiver.answer = lambda _n: 503
    billing.timings(retry_base=0.05, retry_factor=2, retry_horizon=0.3, timeout=2)
    customer(billing, name="never delivered")
    assert wait_until(lambda: billing.counters()["webhook_abandoned"] == 1, 10, interval=0.05)
    newest = events(billing)[0]
    assert newest["pending_webhooks"] == 1
    assert events(billing, delivery_success="false") == [newest]


def test_duplicates_and_reordering_can_be_turned_on(
    billing: BillingSandbox, webhook_receiver: WebhookReceiver
) -> None:
    billing.add_endpoint(webhook_receiver.url)
    billing.faults(webhook_duplicates=1.0, seed=3)
    customer(billing)
    first, second = webhook_receiver.wait_for(2)
    assert first.body == second.body, "the same event, twice: receivers dedupe on event.id"
    assert billing.counters()["webhook_duplicates"] == 1

    billing.reset()
    webhook_receiver.received.clear()
    billing.add_endpoint(webhook_receiver.url)
    billing.faults(webhook_reorder_window=0.5, seed=11)
    made = [customer(billing, name=f"Ordered {n}")["id"] for n in range(8)]
    arrived = [json.loads(r.body)["data"]["object"]["id"] for r in webhook_receiver.wait_for(8)]
    assert sorted(arrived) == sorted(made)
    assert arrived != made, "deliveries arrive out of order"
    assert billing.counters()["webhook_reordered"] == 8


# Faults, counters, reset


def test_faults_are_injected_before_anything_happens_and_counted(billing: BillingSandbox) -> None:
    billing.faults(rate_429=1.0, retry_after=2)
    limited = billing.api.post(
        "/v1/customers", data={"name": "never"}, headers={"Idempotency-Key": "under-load"}
    )
    body = error(limited, 429)
    assert (body["type"], body["code"]) == ("invalid_request_error", "rate_limit")
    assert (limited.headers["stripe-should-retry"], limited.headers["retry-after"]) == ("true", "2")
    billing.faults(rate_5xx=1.0)
    broken = billing.api.get("/v1/customers")
    assert broken.status_code in (500, 502, 503)
    assert error(broken, broken.status_code)["type"] == "api_error"
    assert broken.headers["stripe-should-retry"] == "true"

    billing.faults()
    after = billing.api.post("/v1/customers", data={"name": "now"}, headers={"Idempotency-Key": "under-load"})
    assert "idempotent-replayed" not in after.headers, "a faulted request saved nothing under its key"
    assert [e["data"]["object"]["name"] for e in events(billing)] == ["now"], "the faulted write did nothing"
    counters = billing.counters()
    assert (counters["429"], counters["5xx"], counters["events"]) == (1, 1, 1)

    billing.faults(rate_429=0.3, rate_5xx=0.2, seed=5)
    statuses = [billing.api.get("/v1/products").status_code for _ in range(40)]
    faults = billing.counters()
    assert statuses.count(429) == faults["429"] - 1
    assert sum(s >= 500 for s in statuses) == faults["5xx"] - 1
    assert 0 < statuses.count(200) < 40
    assert httpx.get(f"{billing.url}/sandbox/faults").json()["config"]["seed"] == 5
    refused = httpx.put(f"{billing.url}/sandbox/faults", json={"rate_492": 1})
    assert refused.status_code == 400, "a misspelt fault fails loudly"


def test_reset_restores_the_seeded_state(billing: BillingSandbox, webhook_receiver: WebhookReceiver) -> None:
    billing.add_endpoint(webhook_receiver.url)
    customer(billing)
    billing.faults(rate_429=0.5)
    billing.advance_clock(3600)
    billing.reset()
    assert len(billing.list_all("/v1/customers")) == erp_seed.CUSTOMERS
    assert events(billing) == []
    assert ok(billing.api.get("/v1/webhook_endpoints"))["data"] == []
    assert httpx.get(f"{billing.url}/sandbox/clock").json()["offset"] == 0
    assert billing.counters()["429"] == 0
    assert httpx.get(f"{billing.url}/sandbox/faults").json()["config"]["rate_429"] == 0


def test_a_live_key_is_refused_at_start(tmp_path: Path) -> None:
    live = tmp_path / "live-key"
    live.write_text("sk_live_definitely_not_for_a_sandbox\n", encoding="utf-8")
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "system_apis.connectors.stripe.sandbox",
            "--port",
            "0",
            "--secret-key-file",
            str(live),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 2
    assert b"live Stripe key" in finished.stderr
