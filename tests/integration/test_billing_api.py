"""The billing system API against the Stripe-shaped sandbox, a real server process on loopback.

What landed is read from the sandbox itself (its own ``/v1`` API, never through
the connector), and what happened on the wire from its counters.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.errors import UpstreamUnavailableError
from shared.settings import StripeSourceConfig
from system_apis.app import create_app
from system_apis.connectors.stripe.connector import StripeConnector

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from litestar import Litestar

    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox

pytestmark = pytest.mark.slow

SOURCE = "billing"
BASE = f"/v1/billing/{SOURCE}"
SEEDED_INVOICES = 120
"""12 ERP customers x 10 months: more than one of Stripe's pages of 100."""
EXPONENT = {"usd": 2, "eur": 2, "jpy": 0}
SEED = 8
"""Seed of the sandbox's fault draws, so a run that injects faults injects the same ones every time."""


def billing_source(sandbox: BillingSandbox, **overrides: Any) -> dict[str, Any]:
    """The sandbox as a ``stripe`` source: quick retries, the seed's entities by currency."""
    return {
        SOURCE: {
            "kind": "stripe",
            "url": sandbox.url,
            "secret_key_file": str(sandbox.secret_key_file),
            "backoff": 0.01,
            "retries": 12,
            "timeout": 5.0,
            "entity_by_currency": {"USD": "FS-US", "EUR": "FS-EU"},
            **overrides,
        }
    }


@asynccontextmanager
async def billing_app(
    make_settings: Callable[..., Settings], sandbox: BillingSandbox, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Litestar]]:
    """The system layer in-process over the sandbox, auth and rate limits off (tested elsewhere), and the app."""
    settings = make_settings(
        auth={"enabled": False}, rate_limit={"enabled": False}, sources=billing_source(sandbox, **overrides)
    )
    app = create_app(settings)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client,
    ):
        yield client, app


def connector_of(app: Litestar) -> StripeConnector:
    connector: StripeConnector = app.state.billing.get(SOURCE)
    return connector


def keyed() -> dict[str, str]:
    """A fresh ``Idempotency-Key`` for one call of our API (the business key is the body's ``external_ref``)."""
    return {"Idempotency-Key": str(uuid.uuid4())}


def minor(amount: str, currency: str) -> int:
    """A decimal string of our API in the sandbox's minor units; fails when it does not convert exactly."""
    scaled = Decimal(amount).scaleb(EXPONENT[currency.lower()])
    assert scaled == scaled.to_integral_value(), amount
    return int(scaled)


def invoice_body(ref: str, customer: str = "C-001", currency: str = "USD", **fields: Any) -> dict[str, Any]:
    entity = "FS-EU" if currency == "EUR" else "FS-US"
    return {
        "external_ref": ref,
        "customer": customer,
        "entity": entity,
        "currency": currency,
        "booking_ref": "006" + uuid.uuid5(uuid.NAMESPACE_URL, ref).hex[:15],
        "lines": [
            {"description": "Implementation", "quantity": 3, "unit_price": "1234.56", "product": "P-200"},
            {"description": "Rounding check", "quantity": 1, "unit_price": "0.01"},
        ],
        **fields,
    }


def stripe_invoices(sandbox: BillingSandbox, ref: str) -> list[dict[str, Any]]:
    """The invoices carrying ``finsync_ref`` ``ref``, by the sandbox's own list (always current)."""
    return [
        invoice
        for invoice in sandbox.list_all("/v1/invoices")
        if invoice["metadata"].get("finsync_ref") == ref
    ]


def stripe_lines(sandbox: BillingSandbox, invoice_id: str) -> list[dict[str, Any]]:
    response = sandbox.api.get(f"/v1/invoices/{invoice_id}/lines", params={"limit": 100})
    assert response.status_code == 200, response.text
    lines: list[dict[str, Any]] = response.json()["data"]
    return lines


async def every_invoice(client: httpx.AsyncClient, limit: int, **params: str) -> list[dict[str, Any]]:
    """Every invoice through our API, page by page."""
    invoices: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{BASE}/invoices", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        invoices.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return invoices


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    return body


# Reads


async def test_every_seeded_invoice_pages_through_with_exact_amounts(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    truth = {invoice["id"]: invoice for invoice in billing.list_all("/v1/invoices")}
    assert len(truth) == SEEDED_INVOICES
    async with billing_app(make_settings, billing) as (client, _app):
        paged = await every_invoice(client, 37)
        whole = await client.get(f"{BASE}/invoices", params={"limit": "500"})
    assert whole.status_code == 200, whole.text
    assert whole.json()["next_cursor"] is None
    assert [i["id"] for i in whole.json()["items"]] == [i["id"] for i in paged], "same order, pages or not"

    refs = [invoice["source_ref"] for invoice in paged]
    assert len(refs) == len(set(refs)) == SEEDED_INVOICES, "every invoice exactly once"
    assert set(refs) == set(truth)
    assert refs == list(truth), "newest first, as the platform lists them"
    for invoice in paged:
        stripe = truth[invoice["source_ref"]]
        currency = stripe["currency"]
        assert invoice["id"] == f"{SOURCE}:invoice:{stripe['id']}"
        assert invoice["currency"] == currency.upper()
        for field in ("total", "amount_due", "amount_paid", "amount_remaining"):
            assert minor(invoice[field], currency) == stripe[field], (invoice["id"], field)
        assert [minor(line["amount"], currency) for line in invoice["lines"]] == [
            line["amount"] for line in stripe["lines"]["data"]
        ]
        assert all(line["product"] and line["product"].startswith("P-") for line in invoice["lines"])
        assert invoice["entity"] == ("FS-EU" if currency == "eur" else "FS-US")
        assert str(invoice["customer"]).startswith("C-")
        assert invoice["status"] == stripe["status"]
        assert invoice["mapping_version"] == "stripe/v1"
        moments = [stripe["created"], *(t for t in stripe["status_transitions"].values() if t is not None)]
        assert invoice["modified_at"] == _rfc3339(max(moments))
    for currency in ("usd", "eur"):
        ours = sum(Decimal(i["total"]) for i in paged if i["currency"] == currency.upper())
        theirs = sum(i["total"] for i in truth.values() if i["currency"] == currency)
        assert ours == Decimal(theirs).scaleb(-2), currency
        assert ours.as_tuple().exponent == -2, "cents kept"


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def test_customers_are_the_erp_parties_and_filters_narrow_the_invoices(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    async with billing_app(make_settings, billing) as (client, _app):
        customers = (await client.get(f"{BASE}/customers")).json()
        by_code = await client.get(f"{BASE}/customers/C-007")
        by_id = await client.get(f"{BASE}/customers/{by_code.json()['id']}")
        paid = await every_invoice(client, 100, customer="C-003", status="paid")
        unknown = await client.get(f"{BASE}/invoices", params={"customer": "C-999"})
        october = await every_invoice(client, 100, created_since="2026-10-01T00:00:00Z")
        health = (await client.get(f"/v1/sources/{SOURCE}")).json()
    codes = sorted(customer["code"] for customer in customers["items"])
    assert codes == [f"C-{n:03d}" for n in range(1, 13)]
    currencies = {customer["code"]: customer["currency"] for customer in customers["items"]}
    assert currencies["C-001"] == "USD"
    assert currencies["C-012"] == "EUR"
    assert by_code.status_code == 200
    assert by_code.json()["code"] == "C-007"
    assert by_code.json()["source_ref"].startswith("cus_")
    assert by_id.json() == by_code.json()
    assert paid
    assert {(i["customer"], i["status"]) for i in paid} == {("C-003", "paid")}
    assert unknown.json() == {"items": [], "next_cursor": None}
    assert len(october) == 12, "one invoice per customer in the last seeded month"
    assert (health["kind"], health["health"]["status"]) == ("stripe", "up"), health


# Writes


async def test_create_finalize_pay_and_the_payment_to_the_cent(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    body = invoice_body("crm:opportunity:0065g00000TEST01:invoice", days_until_due=30)
    async with billing_app(make_settings, billing) as (client, _app):
        created = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        assert created.status_code == 201, created.text
        invoice = created.json()
        assert created.headers["location"] == f"{BASE}/invoices/{invoice['id']}"
        finalized = await client.post(f"{BASE}/invoices/{invoice['id']}/finalize", headers=keyed())
        paid = await client.post(f"{BASE}/invoices/{invoice['id']}/pay", headers=keyed())
        payments = await client.get(f"{BASE}/payments", params={"invoice": invoice["id"]})
        by_deal = await client.get(f"{BASE}/invoices", params={"booking_ref": body["booking_ref"]})
        (payment,) = payments.json()["items"]
        one_payment = await client.get(f"{BASE}/payments/{payment['id']}")

    assert invoice["status"] == "draft"
    assert invoice["external_ref"] == body["external_ref"]
    assert invoice["booking_ref"] == body["booking_ref"]
    assert (invoice["entity"], invoice["customer"], invoice["currency"]) == ("FS-US", "C-001", "USD")
    assert invoice["total"] == "3703.69"
    assert [
        (line["quantity"], line["unit_price"], line["amount"], line["product"]) for line in invoice["lines"]
    ] == [
        ("3", "1234.56", "3703.68", "P-200"),
        ("1", "0.01", "0.01", None),
    ]
    assert invoice["due_date"] is not None

    stripe = billing.api.get(f"/v1/invoices/{invoice['source_ref']}").json()
    assert stripe["amount_paid"] == 370369, "the sandbox's own figure, in cents"
    assert stripe["status"] == "paid"
    assert stripe["metadata"] == {
        "finsync_ref": body["external_ref"],
        "opportunity_id": body["booking_ref"],
        "legal_entity": "FS-US",
        "finsync_lines": "2",
    }
    assert stripe["auto_advance"] is False, "a half-made draft must never finalize by itself"

    assert finalized.status_code == 200, finalized.text
    assert finalized.json()["status"] == "open"
    assert finalized.json()["number"]
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_paid"], paid.json()["amount_remaining"]) == (
        "paid",
        "3703.69",
        "0.00",
    )
    assert payment["amount"] == "3703.69"
    assert payment["status"] == "paid"
    assert (payment["customer"], payment["entity"], payment["booking_ref"]) == (
        "C-001",
        "FS-US",
        body["booking_ref"],
    )
    assert payment["invoice_ref"] == invoice["source_ref"]
    assert payment["source_ref"].startswith("inpay_")
    assert one_payment.json() == payment
    assert [i["id"] for i in by_deal.json()["items"]] == [invoice["id"]]


async def test_euro_and_yen_invoices_convert_exactly_and_finer_amounts_are_refused(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    tokyo = billing.api.post(
        "/v1/customers",
        data={
            "name": "Sakura Trading K.K.",
            "metadata[erp_party]": "C-901",
            "invoice_settings[default_payment_method]": "pm_card_visa",
        },
    )
    assert tokyo.status_code == 200, tokyo.text
    yen_body = invoice_body("yen-1", customer="C-901", currency="JPY", entity="FS-JP")
    yen_body["lines"] = [{"description": "Licence", "quantity": 3, "unit_price": "1500"}]
    euro_body = invoice_body("euro-1", customer="C-007", currency="EUR")
    async with billing_app(make_settings, billing) as (client, _app):
        euro = await client.post(f"{BASE}/invoices", json=euro_body, headers=keyed())
        yen = await client.post(f"{BASE}/invoices", json=yen_body, headers=keyed())
        for created in (euro, yen):
            assert created.status_code == 201, created.text
            await client.post(f"{BASE}/invoices/{created.json()['id']}/finalize", headers=keyed())
        euro_paid = await client.post(
            f"{BASE}/invoices/{euro.json()['id']}/pay", json={"paid_out_of_band": True}, headers=keyed()
        )
        yen_paid = await client.post(
            f"{BASE}/invoices/{yen.json()['id']}/pay",
            json={"payment_method": "pm_card_mastercard"},
            headers=keyed(),
        )
        half_yen = dict(
            yen_body, external_ref="yen-2", lines=[{"description": "x", "quantity": 1, "unit_price": "1.5"}]
        )
        sub_cent = dict(
            euro_body,
            external_ref="euro-2",
            lines=[{"description": "x", "quantity": 1, "unit_price": "0.001"}],
        )
        negative = dict(
            euro_body,
            external_ref="euro-3",
            lines=[{"description": "x", "quantity": 1, "unit_price": "-1.00"}],
        )
        wrong_entity = dict(euro_body, external_ref="euro-4", entity="FS-US")
        wrong_currency = dict(euro_body, external_ref="euro-5", currency="USD", entity="FS-US")
        refusals = [
            await client.post(f"{BASE}/invoices", json=refused, headers=keyed())
            for refused in (half_yen, sub_cent, negative, wrong_entity, wrong_currency)
        ]
    assert euro_paid.json()["amount_paid"] == "3703.69"
    assert euro_paid.json()["currency"] == "EUR"
    assert yen.json()["total"] == "4500"
    assert yen_paid.json()["amount_paid"] == "4500"
    assert yen.json()["entity"] == "FS-JP", "the invoice's own legal_entity wins over the currency's"
    assert billing.api.get(f"/v1/invoices/{yen.json()['source_ref']}").json()["amount_paid"] == 4500
    assert billing.api.get(f"/v1/invoices/{euro.json()['source_ref']}").json()["amount_paid"] == 370369
    reasons = [problem(response, 422)["violations"][0]["reason"] for response in refusals]
    assert reasons == [
        "too-many-decimals",
        "too-many-decimals",
        "negative-amount",
        "entity-currency",
        "currency-mismatch",
    ]
    refused_refs = {"yen-2", "euro-2", "euro-3", "euro-4", "euro-5"}
    assert not [
        i for i in billing.list_all("/v1/invoices") if i["metadata"].get("finsync_ref") in refused_refs
    ]


async def test_a_create_repeated_at_any_time_answers_the_one_invoice(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    ref = "crm:opportunity:0065g00000TEST02:invoice"
    body = invoice_body(ref)
    async with billing_app(make_settings, billing) as (client, _app):
        first = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        again = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        assert billing.expire_keys() > 0
        after_prune = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        billing.advance_clock(25 * 3600)
        next_day = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        billing.faults(search_lag=600)  # search shows nothing newer than ten minutes; keys forgotten
        lagging_ref = "crm:opportunity:0065g00000TEST03:invoice"
        lagging_first = await client.post(f"{BASE}/invoices", json=invoice_body(lagging_ref), headers=keyed())
        billing.expire_keys()
        lagging_again = await client.post(f"{BASE}/invoices", json=invoice_body(lagging_ref), headers=keyed())
        other_content = await client.post(
            f"{BASE}/invoices", json=dict(body, lines=body["lines"][:1]), headers=keyed()
        )
    assert first.status_code == 201, first.text
    for repeat in (again, after_prune, next_day):
        assert repeat.status_code == 200, repeat.text
        assert repeat.json()["id"] == first.json()["id"]
    assert len(first.json()["lines"]) == len(next_day.json()["lines"]) == 2
    assert (lagging_first.status_code, lagging_again.status_code) == (201, 200)
    assert lagging_again.json()["id"] == lagging_first.json()["id"]
    assert billing.counters()["search_lagged"] > 0, "search did lag; the list of recent invoices found it"
    assert "lines" in problem(other_content, 409)["detail"]
    assert len(stripe_invoices(billing, ref)) == 1
    assert len(stripe_invoices(billing, lagging_ref)) == 1
    assert len(stripe_lines(billing, first.json()["source_ref"])) == 2


async def test_a_half_made_invoice_is_completed_never_duplicated(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    # What a create leaves when it stops after the draft and its first line: made here through the sandbox.
    ref = "crm:opportunity:0065g00000TEST04:invoice"
    body = invoice_body(ref)
    body["lines"].append(
        {"description": "Training", "quantity": 2, "unit_price": "750.00", "product": "P-400"}
    )
    customer = billing.api.get(
        "/v1/customers/search", params={"query": "metadata['erp_party']:'C-001'"}
    ).json()
    draft = billing.api.post(
        "/v1/invoices",
        data={
            "customer": customer["data"][0]["id"],
            "currency": "usd",
            "auto_advance": "false",
            "metadata[finsync_ref]": ref,
            "metadata[opportunity_id]": body["booking_ref"],
            "metadata[legal_entity]": "FS-US",
            "metadata[finsync_lines]": "3",
        },
    ).json()
    first_line = billing.api.post(
        "/v1/invoiceitems",
        data={
            "customer": draft["customer"],
            "invoice": draft["id"],
            "currency": "usd",
            "description": "Implementation",
            "quantity": "3",
            "unit_amount_decimal": "123456",
            "metadata[finsync_line]": "0",
            "metadata[erp_product]": "P-200",
        },
    )
    assert first_line.status_code == 200, first_line.text
    async with billing_app(make_settings, billing) as (client, _app):
        too_early = await client.post(
            f"{BASE}/invoices/{SOURCE}:invoice:{draft['id']}/finalize", headers=keyed()
        )
        completed = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        finalized = await client.post(f"{BASE}/invoices/{draft['id']}/finalize", headers=keyed())
    assert "1 of its 3 lines" in problem(too_early, 409)["detail"]
    assert completed.status_code == 201, "it wrote the missing lines"
    assert completed.json()["source_ref"] == draft["id"]
    assert [line["description"] for line in completed.json()["lines"]] == [
        "Implementation",
        "Rounding check",
        "Training",
    ]
    assert completed.json()["total"] == "5203.69"
    assert finalized.json()["status"] == "open"
    assert len(stripe_invoices(billing, ref)) == 1


async def test_creates_stopped_by_faults_at_any_step_end_in_one_complete_invoice(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    ref = "crm:opportunity:0065g00000TEST05:invoice"
    body = invoice_body(ref)
    body["lines"] += [
        {"description": f"Month {n}", "quantity": n, "unit_price": "99.99", "product": "P-600"}
        for n in range(1, 5)
    ]
    attempts: list[tuple[int, int | None]] = []
    # No retries: every injected 5xx stops the create where it is (a fresh draw of faults per attempt).
    async with billing_app(make_settings, billing, retries=0) as (client, _app):
        for attempt in range(100):
            billing.faults(rate_5xx=0.25, seed=SEED + attempt)
            response = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
            billing.faults()  # look without faults
            made = [len(stripe_lines(billing, invoice["id"])) for invoice in stripe_invoices(billing, ref)]
            assert len(made) <= 1, "never a second invoice"
            attempts.append((response.status_code, made[0] if made else None))
            if response.status_code < 300:
                break
    assert attempts[-1] == (201, 6), attempts
    half_made = [lines for status, lines in attempts if status == 503 and lines is not None and lines < 6]
    assert half_made, f"some create stopped after its draft: {attempts}"
    (invoice,) = stripe_invoices(billing, ref)
    lines = stripe_lines(billing, invoice["id"])
    assert [line["metadata"]["finsync_line"] for line in lines] == [str(n) for n in range(6)], "all, in order"


async def test_a_lost_answer_is_replayed_under_the_same_key(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    ref = "crm:opportunity:0065g00000TEST06:invoice"
    body = invoice_body(ref, lines=[{"description": "Support", "quantity": 1, "unit_price": "10.00"}])
    billing.faults(write_delay=0.6)  # every write is done, then its answer is held past the client's timeout
    async with billing_app(make_settings, billing, timeout=0.25, backoff=0.2) as (client, app):
        created = await client.post(f"{BASE}/invoices", json=body, headers=keyed())
        counters = connector_of(app).client.counters
    billing.faults()
    assert created.status_code == 201, created.text
    assert len(stripe_invoices(billing, ref)) == 1
    assert len(stripe_lines(billing, created.json()["source_ref"])) == 1
    sandbox = billing.counters()
    assert sandbox["idempotent_replays"] >= 2, "the invoice and its line were each answered from their key"
    assert counters.replays >= 2
    assert counters.retries >= 2


async def test_reads_and_writes_complete_under_injected_faults(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    billing.faults(rate_429=0.1, rate_5xx=0.1, seed=SEED)
    refs = [f"crm:opportunity:0065g0000FAULT{n:02d}:invoice" for n in range(10)]
    async with billing_app(make_settings, billing) as (client, app):

        async def bill(ref: str) -> dict[str, Any]:
            customer = f"C-{1 + refs.index(ref) % 6:03d}"
            created = await client.post(
                f"{BASE}/invoices", json=invoice_body(ref, customer=customer), headers=keyed()
            )
            assert created.status_code == 201, created.text
            invoice_id = created.json()["id"]
            finalized = await client.post(f"{BASE}/invoices/{invoice_id}/finalize", headers=keyed())
            assert finalized.status_code == 200, finalized.text
            paid = await client.post(f"{BASE}/invoices/{invoice_id}/pay", headers=keyed())
            assert paid.status_code == 200, paid.text
            result: dict[str, Any] = paid.json()
            return result

        paid = await asyncio.gather(*(bill(ref) for ref in refs))
        listed = await every_invoice(client, 50)
        repeated = await asyncio.gather(
            *(
                client.post(
                    f"{BASE}/invoices", json=invoice_body(ref, customer=f"C-{1 + n % 6:03d}"), headers=keyed()
                )
                for n, ref in enumerate(refs)
            )
        )
        counters = connector_of(app).client.counters
    faults = billing.counters()
    billing.faults()
    assert all(invoice["status"] == "paid" and invoice["amount_paid"] == "3703.69" for invoice in paid)
    assert len(listed) == SEEDED_INVOICES + len(refs)
    assert [response.status_code for response in repeated] == [200] * len(refs)
    for ref in refs:
        (invoice,) = stripe_invoices(billing, ref)
        assert invoice["status"] == "paid"
        assert len(invoice["lines"]["data"]) == 2
    assert faults["429"] > 0
    assert faults["5xx"] > 0
    assert counters.should_retry_true == faults["429"] + faults["5xx"], "every fault was met and retried"
    assert counters.retries >= faults["429"] + faults["5xx"]


class _Verdict(httpx.AsyncBaseTransport):
    """The real transport, with the sandbox's ``Stripe-Should-Retry`` answers rewritten (``None``: removed).

    The sandbox marks every injected fault retryable; Stripe also answers ``false`` (a request that cannot
    succeed as sent), which only this rewrite can produce here.
    """

    def __init__(self, verdict: str | None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.verdict = verdict

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "stripe-should-retry" in response.headers:
            del response.headers["stripe-should-retry"]
            if self.verdict is not None:
                response.headers["Stripe-Should-Retry"] = self.verdict
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(("verdict", "sent"), [("false", 1), (None, 3)])
async def test_stripe_should_retry_false_is_never_retried(
    billing: BillingSandbox, verdict: str | None, sent: int
) -> None:
    config = StripeSourceConfig(
        url=billing.url, secret_key_file=str(billing.secret_key_file), retries=2, backoff=0.01
    )
    connector = StripeConnector(SOURCE, config, transport=_Verdict(verdict))
    billing.faults(rate_5xx=1.0)
    try:
        with pytest.raises(UpstreamUnavailableError):
            await connector.customers()
    finally:
        await connector.aclose()
    billing.faults()
    assert billing.counters()["requests"] == sent, "false: one try; no header on a 5xx: every retry"
    assert connector.client.counters.should_retry_false == (1 if verdict == "false" else 0)


async def test_steps_the_invoice_is_past_answer_as_is_and_illegal_ones_are_409(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    seeded = billing.list_all("/v1/invoices")
    paid = next(invoice["id"] for invoice in seeded if invoice["status"] == "paid")
    void = next(invoice["id"] for invoice in seeded if invoice["status"] == "void")
    draft = next(invoice["id"] for invoice in seeded if invoice["status"] == "draft")
    opened = [invoice["id"] for invoice in seeded if invoice["status"] == "open"]
    async with billing_app(make_settings, billing) as (client, _app):
        void_paid = await client.post(f"{BASE}/invoices/{paid}/void", headers=keyed())
        pay_void = await client.post(f"{BASE}/invoices/{void}/pay", headers=keyed())
        pay_draft = await client.post(f"{BASE}/invoices/{draft}/pay", headers=keyed())
        pay_paid = await client.post(f"{BASE}/invoices/{paid}/pay", headers=keyed())
        finalize_paid = await client.post(f"{BASE}/invoices/{paid}/finalize", headers=keyed())
        voided = await client.post(f"{BASE}/invoices/{opened[0]}/void", headers=keyed())
        voided_again = await client.post(f"{BASE}/invoices/{opened[0]}/void", headers=keyed())
        declined = await client.post(
            f"{BASE}/invoices/{opened[1]}/pay",
            json={"payment_method": "pm_card_chargeDeclined"},
            headers=keyed(),
        )
        retried = await client.post(f"{BASE}/invoices/{opened[1]}/pay", headers=keyed())
    assert "You can only void an open or uncollectible invoice" in problem(void_paid, 409)["detail"]
    assert problem(void_paid, 409)["type"] == "/problems/conflict"
    assert "void" in problem(pay_void, 409)["detail"]
    assert "finalize it" in problem(pay_draft, 409)["detail"]
    assert (pay_paid.status_code, pay_paid.json()["status"]) == (200, "paid")
    assert (finalize_paid.status_code, finalize_paid.json()["status"]) == (200, "paid")
    assert (voided.json()["status"], voided_again.json()["status"]) == ("void", "void")
    assert voided_again.json()["modified_at"] == voided.json()["modified_at"]
    assert problem(declined, 422)["decline_code"] == "generic_decline"
    assert retried.json()["status"] == "paid", "a declined attempt does not block the next one"
    assert billing.api.get(f"/v1/invoices/{paid}").json()["status"] == "paid"


async def test_bad_input_is_a_problem_never_a_500(
    make_settings: Callable[..., Settings], billing: BillingSandbox
) -> None:
    async with billing_app(make_settings, billing) as (client, _app):
        answers = {
            "unknown source": (await client.get("/v1/billing/nowhere/invoices"), 404),
            "control character": (await client.get(f"{BASE}/invoices/in_%01x"), 400),
            "other source's id": (await client.get(f"{BASE}/invoices/erp-us:invoice:42"), 404),
            "no such invoice": (await client.get(f"{BASE}/invoices/in_doesnotexist"), 404),
            "no such payment": (await client.get(f"{BASE}/payments/inpay_doesnotexist"), 404),
            "no such customer": (await client.get(f"{BASE}/customers/C-999"), 404),
            "bad cursor": (await client.get(f"{BASE}/invoices", params={"cursor": "bm90LWFuLWlk"}), 400),
            "unknown cursor id": (await client.get(f"{BASE}/invoices", params={"cursor": "aW5fbm9wZQ"}), 400),
            "limit zero": (await client.get(f"{BASE}/invoices", params={"limit": "0"}), 400),
            "bad status": (await client.get(f"{BASE}/invoices", params={"status": "lost"}), 400),
            "month 13": (
                await client.get(f"{BASE}/invoices", params={"created_since": "2026-13-01T00:00:00Z"}),
                400,
            ),
            "money as number": (
                await client.post(
                    f"{BASE}/invoices",
                    json=invoice_body("x-1", lines=[{"description": "x", "quantity": 1, "unit_price": 1.5}]),
                    headers=keyed(),
                ),
                400,
            ),
            "unknown field": (
                await client.post(
                    f"{BASE}/invoices", json={**invoice_body("x-2"), "tax": "1"}, headers=keyed()
                ),
                400,
            ),
            "no key": (await client.post(f"{BASE}/invoices", json=invoice_body("x-3")), 400),
            "unknown customer": (
                await client.post(
                    f"{BASE}/invoices", json=invoice_body("x-4", customer="C-999"), headers=keyed()
                ),
                422,
            ),
            "unknown pay field": (
                await client.post(f"{BASE}/invoices/in_x/pay", json={"card": "4242"}, headers=keyed()),
                400,
            ),
            "bad payment method": (
                await client.post(
                    f"{BASE}/invoices/in_x/pay", json={"payment_method": "pm_ x"}, headers=keyed()
                ),
                400,
            ),
        }
    for what, (response, status) in answers.items():
        assert response.status_code == status, (what, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), what
