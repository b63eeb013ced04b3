"""Customers, suppliers, invoices and payments through the ERP system API, against the real Tryton of ``erp``.

The expected figures come from Tryton itself, over JSON-RPC as the service user
(``erp.rpc``), never from the connector's mapping code. Every test writes
records of its own (fresh references), and leaves the seed's records as they are.

Tryton numbers customer invoices in date order, and the seed has numbered
invoices up to late December, so the invoices here are dated on the last date
the seed numbered (:func:`invoice_day`), read from Tryton.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.erp_fixtures import rpc_date, rpc_decimal
from tests.integration.test_erp_api import US, A, system_api

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from shared.settings import Settings
    from tests.erp_fixtures import Erp

pytestmark = pytest.mark.slow

CUSTOMER = "C-002"
"""A seeded customer; the tests only add invoices of their own to it."""
RECEIVABLE, CASH = "1.2.1", "1.1.1"
"""The receivable account of the seed's customers, and the account of its cash payment method."""


def ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def invoice_day(erp: Erp) -> dt.date:
    """The last date FS-US has numbered a customer invoice on: a new invoice may be dated then, not before."""
    name = erp.databases[0]
    company = erp.company_id(name, US)
    (latest,) = erp.rpc(
        name,
        "model.account.invoice.search_read",
        [("company", "=", company), ("type", "=", "out"), ("number", "!=", None)],
        0,
        1,
        [["invoice_date", "DESC"]],
        ["invoice_date"],
        erp.context(name, company),
    )
    date = latest["invoice_date"]
    return dt.date(date["year"], date["month"], date["day"])


def invoice(external_ref: str, day: dt.date, customer: str = CUSTOMER, **changes: Any) -> dict[str, Any]:
    """A valid two-line invoice of FS-US: a product sold into a cost centre, and a line on a revenue account."""
    body: dict[str, Any] = {
        "external_ref": external_ref,
        "entity": US,
        "customer": customer,
        "invoice_date": day.isoformat(),
        "currency": "USD",
        "description": "test invoice",
        "lines": [
            {
                "description": "Consulting",
                "quantity": "3",
                "unit_price": "120.50",
                "product": "P-100",
                "cost_center": "CC-100",
            },
            {"description": "Travel", "quantity": "1", "unit_price": "99.99", "account_code": "4.1.1"},
        ],
    }
    body.update(changes)
    return body


def payment(key: str, day: dt.date, amount: str, **settles: str) -> dict[str, Any]:
    """A payment of FS-US in USD; ``settles`` names the invoice by ``id`` or ``external_ref``."""
    return {
        "external_ref": key,
        "entity": US,
        "settles": {"kind": "invoice", **settles},
        "amount": amount,
        "currency": "USD",
        "payment_date": day.isoformat(),
        "description": "test payment",
    }


async def create(client: httpx.AsyncClient, resource: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        f"/v1/erp/{A}/{resource}", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


async def new_customer(client: httpx.AsyncClient) -> str:
    """The code of a customer of this test's own, created through the API: nothing else posts to it."""
    key = ref("customer")
    response = await create(client, "customers", {"external_ref": key, "name": f"Customer {key}"})
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def party_lines(erp: Erp, customer: str, **domain: str) -> dict[str, Decimal]:
    """Debit minus credit of the posted move lines of ``customer`` (and ``domain``) in FS-US, per account code."""
    name = erp.databases[0]
    company = erp.company_id(name, US)
    lines = erp.rpc(
        name,
        "model.account.move.line.search_read",
        [
            ("party.code", "=", customer),
            ("move.company", "=", company),
            ("move.state", "=", "posted"),
            *((field, "=", value) for field, value in domain.items()),
        ],
        0,
        None,
        None,
        ["account.code", "debit", "credit"],
        erp.context(name, company),
    )
    totals: dict[str, Decimal] = {}
    for line in lines:
        code = line["account."]["code"]
        totals[code] = (
            totals.get(code, Decimal(0))
            + Decimal(line["debit"]["decimal"])
            - Decimal(line["credit"]["decimal"])
        )
    return totals


def count(erp: Erp, model: str, external_ref: str) -> int:
    """How many records of ``model`` Tryton holds with ``external_ref`` (read straight from Tryton)."""
    return int(
        erp.rpc(erp.databases[0], f"model.{model}.search_count", [("external_ref", "=", external_ref)], {})
    )


def tryton_invoice(erp: Erp, record_id: str) -> dict[str, Any]:
    """Tryton's own view of an invoice (state, totals, what is left to pay, its move)."""
    name = erp.databases[0]
    context = erp.context(name, erp.company_id(name, US))
    (row,) = erp.rpc(
        name,
        "model.account.invoice.read",
        [int(record_id.rsplit(":", 1)[1])],
        ["state", "number", "untaxed_amount", "tax_amount", "total_amount", "amount_to_pay", "move"],
        context,
    )
    return {
        key: Decimal(value["decimal"]) if isinstance(value, dict) and "decimal" in value else value
        for key, value in row.items()
    }


# --------------------------------------------------------------------------- customers and suppliers


async def test_customers_and_suppliers_are_created_once_by_reference(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    key = ref("cust")
    name = f"Test Customer {key}"
    async with system_api(make_settings, erp) as client:
        created = await create(
            client, "customers", {"external_ref": key, "name": name, "tax_id": "US-12-3456789"}
        )
        again = await create(
            client, "customers", {"external_ref": key, "name": name, "tax_id": "US-12-3456789"}
        )
        renamed = await create(client, "customers", {"external_ref": key, "name": "Someone Else"})
        as_supplier = await create(client, "suppliers", {"external_ref": key, "name": name})
        read = await client.get(f"/v1/erp/{A}/customers/{created.json()['id']}")
        unkeyed = await client.post(
            f"/v1/erp/{A}/customers", json={"external_ref": ref("nokey"), "name": "x"}
        )
        nowhere = await create(
            client, "customers", {"external_ref": (lost := ref("ctry")), "name": "x", "country": "ZZ"}
        )
        taken = await create(
            client, "customers", {"external_ref": (coded := ref("code")), "name": "x", "code": "C-001"}
        )
        supplier = await create(
            client, "suppliers", {"external_ref": (sup := ref("sup")), "name": f"Supplier {sup}"}
        )
        suppliers = (await client.get(f"/v1/erp/{A}/suppliers", params={"limit": 500})).json()["items"]
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["external_ref"] == key
    assert customer["name"] == name
    assert customer["tax_id"] == "US-12-3456789"
    assert customer["code"]
    assert again.status_code == 200
    assert again.json() == customer
    assert read.json() == customer
    assert renamed.status_code == 409
    assert renamed.json()["existing_id"] == customer["id"]
    assert as_supplier.status_code == 409
    assert unkeyed.status_code == 400
    assert nowhere.status_code == 422
    assert "unknown-country" in {v["reason"] for v in nowhere.json()["violations"]}
    assert taken.status_code == 409, taken.text
    assert supplier.status_code == 201, supplier.text
    assert supplier.json()["id"] in {s["id"] for s in suppliers}
    # Straight from Tryton: one party per reference, in the mapping's category, and nothing for the refused one.
    name_db = erp.databases[0]
    (party,) = erp.rpc(
        name_db,
        "model.party.party.search_read",
        [("external_ref", "=", key)],
        0,
        None,
        None,
        ["code", "name", "categories.name"],
        {},
    )
    assert party["code"] == customer["code"]
    assert [category["name"] for category in party["categories."]] == ["Customers"]
    assert count(erp, "party.party", lost) == 0
    assert count(erp, "party.party", coded) == 0


async def test_concurrent_creates_of_one_customer_make_one_party(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    key = ref("race-cust")
    body = {"external_ref": key, "name": f"Racing Customer {key}"}
    async with system_api(make_settings, erp, concurrency=8) as client:
        answers = await asyncio.gather(*(create(client, "customers", body) for _ in range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    assert set(statuses) == {200, 201}
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert count(erp, "party.party", key) == 1


# --------------------------------------------------------------------------- invoices


async def test_a_posted_invoice_reads_back_with_tryton_figures_and_moves_the_receivable(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    day = invoice_day(erp)
    key = ref("inv")
    async with system_api(make_settings, erp) as client:
        customer = await new_customer(client)
        assert party_lines(erp, customer) == {}
        created = await create(client, "invoices", invoice(key, day, customer))
        assert created.status_code == 201, created.text
        posted = created.json()
        read = await client.get(f"/v1/erp/{A}/invoices/{posted['id']}")
        again = await create(client, "invoices", invoice(key, day, customer))
        changed = await create(
            client, "invoices", invoice(key, day, customer, lines=invoice(key, day)["lines"][1:])
        )
        since = dt.datetime.fromisoformat(posted["modified_at"]) - dt.timedelta(seconds=1)
        listed: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"entity": US, "state": "posted", "modified_since": since.isoformat(), "limit": 1}
            page = (await client.get(f"/v1/erp/{A}/invoices", params={**params, **({"cursor": cursor} if cursor else {})})).json()  # fmt: skip
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    tryton = tryton_invoice(erp, posted["id"])
    assert tryton["state"] == "posted"
    assert posted["state"] == "posted"
    assert posted["number"] == tryton["number"]
    assert posted["external_ref"] == key
    assert posted["customer"] == customer
    assert posted["invoice_date"] == day.isoformat()
    assert posted["due_date"] == day.isoformat()  # no payment term: due on the invoice date
    assert Decimal(posted["untaxed_amount"]) == tryton["untaxed_amount"] == Decimal("461.49")
    assert Decimal(posted["tax_amount"]) == tryton["tax_amount"] == 0
    assert Decimal(posted["total_amount"]) == tryton["total_amount"]
    assert Decimal(posted["amount_due"]) == tryton["amount_to_pay"] == tryton["total_amount"]
    assert [(line["product"], line["account_code"], line["quantity"], line["amount"], line["cost_center"])
            for line in posted["lines"]] == [
        ("P-100", "4.1.2", "3", "361.50", "CC-100"),  # the product's revenue account
        (None, "4.1.1", "1", "99.99", None),
    ]  # fmt: skip
    assert read.status_code == 200
    assert read.json() == posted
    # The customer's receivable moved by exactly the invoice's total, in Tryton's own posted lines.
    assert party_lines(erp, customer) == {RECEIVABLE: tryton["total_amount"]}
    # The cost centre holds the whole product line, as analytic lines on its move line.
    name = erp.databases[0]
    analytic = erp.rpc(
        name,
        "model.analytic_account.line.search_read",
        [("move_line.move", "=", tryton["move"])],
        0,
        None,
        None,
        ["account.code", "credit"],
        erp.context(name, erp.company_id(name, US)),
    )
    assert [(row["account."]["code"], Decimal(row["credit"]["decimal"])) for row in analytic] == [
        ("CC-100", Decimal("361.50"))
    ]
    # The same reference again is the same invoice; with other content, a conflict.
    assert again.status_code == 200
    assert again.json()["id"] == posted["id"]
    assert changed.status_code == 409
    assert changed.json()["existing_id"] == posted["id"]
    assert count(erp, "account.invoice", key) == 1
    ids = [item["id"] for item in listed]
    assert posted["id"] in ids
    assert len(ids) == len(set(ids))
    assert all(item["state"] == "posted" for item in listed)


async def test_concurrent_creates_of_one_invoice_make_one_invoice(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    day = invoice_day(erp)
    key = ref("race-inv")
    async with system_api(make_settings, erp, concurrency=5) as client:
        answers = await asyncio.gather(*(create(client, "invoices", invoice(key, day)) for _ in range(5)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    assert set(statuses) == {200, 201}, [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert count(erp, "account.invoice", key) == 1


@pytest.mark.parametrize(
    ("case", "change", "reason"),
    [
        ("unknown customer", {"customer": "C-999"}, "unknown-customer"),
        ("unknown product", {"lines": [{"description": "x", "quantity": "1", "unit_price": "10", "product": "P-999"}]},
         "unknown-product"),
        ("unknown account", {"lines": [{"description": "x", "quantity": "1", "unit_price": "10", "account_code": "9.9.9"}]},
         "unknown-account"),
        ("not revenue", {"lines": [{"description": "x", "quantity": "1", "unit_price": "10", "account_code": "1.1.1"}]},
         "not-revenue-account"),
        ("unknown tax", {"lines": [{"description": "x", "quantity": "1", "unit_price": "10", "account_code": "4.1.1",
                                    "tax_codes": ["VAT-99"]}]}, "unknown-tax"),
        ("wrong currency", {"currency": "EUR"}, "wrong-currency"),
        ("too many decimals", {"lines": [{"description": "x", "quantity": "1", "unit_price": "10.00001",
                                          "account_code": "4.1.1"}]}, "too-many-decimals"),
        ("fractional units", {"lines": [{"description": "x", "quantity": "1.5", "unit_price": "10", "product": "P-400"}]},
         "too-many-decimals"),
        ("unstorable text", {"lines": [{"description": "a\u0000b", "quantity": "1", "unit_price": "10",
                                        "account_code": "4.1.1"}]}, "invalid-text"),
        ("closed period", {"invoice_date": "2026-02-10"}, "closed-period"),
        ("before a numbered invoice", {"invoice_date": "2026-06-10"}, "invoice-date-out-of-sequence"),
    ],
)  # fmt: skip
async def test_bad_invoices_are_refused_naming_the_line_and_write_nothing(
    erp: Erp, make_settings: Callable[..., Settings], case: str, change: dict[str, Any], reason: str
) -> None:
    key = ref("bad-inv")
    async with system_api(make_settings, erp) as client:
        response = await create(client, "invoices", invoice(key, invoice_day(erp), **change))
    assert response.status_code == 422, (case, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    violations = response.json()["violations"]
    assert reason in {v["reason"] for v in violations}, violations
    if "lines" in change:
        assert {v["line"] for v in violations if v["reason"] == reason} == {0}
    assert count(erp, "account.invoice", key) == 0


# --------------------------------------------------------------------------- payments


async def test_a_full_payment_makes_the_invoice_paid_once(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    day = invoice_day(erp)
    key = ref("inv-pay")
    pay = ref("pay")
    async with system_api(make_settings, erp) as client:
        customer = await new_customer(client)
        posted = (await create(client, "invoices", invoice(key, day, customer))).json()
        total = posted["total_amount"]
        paid = await create(client, "payments", payment(pay, day, total, external_ref=key))
        again = await create(client, "payments", payment(pay, day, total, external_ref=key))
        other = await create(client, "payments", payment(pay, day, "1.00", external_ref=key))
        more = await create(client, "payments", payment(ref("pay"), day, "1.00", id=posted["id"]))
        read = (await client.get(f"/v1/erp/{A}/invoices/{posted['id']}")).json()
    assert paid.status_code == 201, paid.text
    recorded = paid.json()
    assert recorded["settles"] == {"kind": "invoice", "id": posted["id"], "external_ref": key}
    assert recorded["amount"] == total
    assert recorded["party"] == customer
    assert recorded["journal"] == "CASH"
    assert recorded["external_ref"] == pay
    tryton = tryton_invoice(erp, posted["id"])
    assert tryton["state"] == "paid"
    assert tryton["amount_to_pay"] == 0
    assert read["state"] == "paid"
    assert Decimal(read["amount_due"]) == 0
    # Tryton's payment move: cash in, the customer's receivable settled.
    assert party_lines(erp, customer, **{"move.external_ref": pay}) == {RECEIVABLE: -Decimal(total)}
    assert party_lines(erp, customer) == {RECEIVABLE: Decimal(0)}
    cash = erp.rpc(
        erp.databases[0], "model.account.move.line.search_read", [("move.external_ref", "=", pay), ("account.code", "=", CASH)],
        0, None, None, ["debit"], {},
    )  # fmt: skip
    assert [Decimal(line["debit"]["decimal"]) for line in cash] == [Decimal(total)]
    assert again.status_code == 200
    assert again.json() == recorded
    assert other.status_code == 409
    assert more.status_code == 422
    assert "invoice-paid" in {v["reason"] for v in more.json()["violations"]}
    assert count(erp, "account.move", pay) == 1


async def test_a_partial_payment_leaves_the_rest_due_and_an_over_payment_is_refused(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    day = invoice_day(erp)
    key = ref("inv-part")
    part, over = ref("part"), ref("over")
    async with system_api(make_settings, erp) as client:
        posted = (await create(client, "invoices", invoice(key, day))).json()
        paid = await create(client, "payments", payment(part, day, "100.00", id=posted["id"]))
        refused = await create(
            client, "payments", payment(over, day, posted["total_amount"], id=posted["id"])
        )
        read = (await client.get(f"/v1/erp/{A}/invoices/{posted['id']}")).json()
    assert paid.status_code == 201, paid.text
    tryton = tryton_invoice(erp, posted["id"])
    assert tryton["state"] == "posted"
    assert tryton["amount_to_pay"] == tryton["total_amount"] - Decimal("100.00")
    assert read["state"] == "posted"
    assert Decimal(read["amount_due"]) == tryton["amount_to_pay"]
    assert refused.status_code == 422
    assert "over-payment" in {v["reason"] for v in refused.json()["violations"]}
    assert count(erp, "account.move", over) == 0


async def test_a_payment_of_an_invoice_that_is_not_posted_is_refused(
    erp: Erp, make_settings: Callable[..., Settings]
) -> None:
    name = erp.databases[0]
    company = erp.company_id(name, US)
    context = erp.context(name, company)
    (party,) = erp.rpc(
        name, "model.party.party.search_read", [("code", "=", CUSTOMER)], 0, 1, None, ["addresses"], context
    )
    accounts = {
        row["code"]: row["id"]
        for row in erp.rpc(
            name, "model.account.account.search_read",
            [("company", "=", company), ("code", "in", ["1.2.1", "4.1.1"])], 0, None, None, ["code"], context,
        )
    }  # fmt: skip
    (currency,) = erp.rpc(name, "model.currency.currency.search", [("code", "=", "USD")], 0, 1, None, {})
    key = ref("draft-inv")
    # A draft invoice of this test's own, straight in Tryton.
    erp.rpc(
        name,
        "model.account.invoice.create",
        [
            {
                "company": company,
                "type": "out",
                "party": party["id"],
                "invoice_address": party["addresses"][0],
                "account": accounts["1.2.1"],
                "currency": currency,
                "invoice_date": rpc_date(invoice_day(erp)),
                "external_ref": key,
                "lines": [["create", [{"type": "line", "description": "draft", "quantity": 1.0,
                                       "unit_price": rpc_decimal("10.00"), "account": accounts["4.1.1"],
                                       "company": company, "currency": currency}]]],
            }
        ],
        context,
    )  # fmt: skip
    pay = ref("pay-draft")
    async with system_api(make_settings, erp) as client:
        refused = await create(client, "payments", payment(pay, invoice_day(erp), "10.00", external_ref=key))
        unknown = await create(client, "payments", payment(ref("pay-none"), invoice_day(erp), "10.00", external_ref=ref("none")))  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert "invoice-not-posted" in {v["reason"] for v in refused.json()["violations"]}
    assert unknown.status_code == 422
    assert "unknown-invoice" in {v["reason"] for v in unknown.json()["violations"]}
    assert count(erp, "account.move", pay) == 0
