"""The CRM system API against the Salesforce-shaped sandbox, a real server process on loopback.

What the org holds is read from the sandbox itself (its REST API with a token
of its own, numbers parsed as ``Decimal``), and what happened on the wire from
its counters, never from the connector's own report.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest

from system_apis.app import create_app
from system_apis.connectors.salesforce.sandbox.seed import erp_customers
from tests.crm_fixtures import API
from tests.erp_fixtures import ERP_VARIANTS
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from shared.settings import Settings
    from system_apis.connectors.salesforce.connector import SalesforceConnector
    from tests.crm_fixtures import CrmSandbox

pytestmark = pytest.mark.slow

SOURCE = "crm"
BASE = f"/v1/crm/{SOURCE}"
SEEDED = 2400
PROBLEM = "application/problem+json"


def crm_source(crm: CrmSandbox, **overrides: Any) -> dict[str, Any]:
    """The sandbox as a ``salesforce`` source: quick retries, a short lookback."""
    return {
        SOURCE: {
            "kind": "salesforce",
            "login_url": crm.url,
            "client_id": crm.client_id,
            "client_secret": crm.client_secret,
            "api_version": "66.0",
            "lookback": 60,
            "backoff": 0.01,
            "retries": 12,
            **overrides,
        }
    }


@asynccontextmanager
async def crm_api(
    make_settings: Callable[..., Settings], crm: CrmSandbox, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, SalesforceConnector]]:
    """The system layer in-process over the sandbox (auth and rate limits off, tested elsewhere), and its
    connector of the source."""
    settings = make_settings(
        auth={"enabled": False}, rate_limit={"enabled": False}, sources=crm_source(crm, **overrides)
    )
    app = create_app(settings)
    async with in_process(app) as client:
        yield client, app.state.crm.get(SOURCE)


async def read(
    client: httpx.AsyncClient, cursor: str | None = None, limit: int = 500, **params: Any
) -> tuple[list[dict[str, Any]], str, int]:
    """One whole read from ``cursor``: its bookings, its ``sync_cursor`` and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{BASE}/bookings", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        items += page["items"]
        if page["next_cursor"] is None:
            assert page["sync_cursor"]
            return items, page["sync_cursor"], pages
        cursor = page["next_cursor"]


def org_records(crm: CrmSandbox, soql: str) -> list[dict[str, Any]]:
    """Every record of ``soql`` as the sandbox answers it (its own token), numbers as ``Decimal``."""
    headers = {"Authorization": f"Bearer {crm.token()}"}
    records: list[dict[str, Any]] = []
    with httpx.Client(base_url=crm.url, headers=headers, timeout=30) as http:
        response = http.get(f"{API}/query", params={"q": soql})
        while True:
            assert response.status_code == 200, response.text
            page = json.loads(response.text, parse_float=Decimal)
            records += page["records"]
            if page["done"]:
                return records
            response = http.get(page["nextRecordsUrl"])


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def decimal_strings(booking: dict[str, Any]) -> Decimal:
    """The booking's amount, checked: money is a decimal string with cents, and the lines add up to it."""
    assert isinstance(booking["amount"], str)
    assert len(booking["amount"].rpartition(".")[2]) == 2, booking["amount"]
    lines = [Decimal(line["amount"]) for line in booking["lines"]]
    assert all(
        isinstance(line["amount"], str) and isinstance(line["unit_price"], str) for line in booking["lines"]
    )
    assert sum(lines, Decimal(0)) == Decimal(booking["amount"])
    return Decimal(booking["amount"])


# --------------------------------------------------------------------------- customers


async def test_customers_are_the_accounts_with_their_erp_codes(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    names = dict(erp_customers(ERP_VARIANTS[0]))
    accounts = {a["Id"]: a for a in org_records(crm, "SELECT Id, CurrencyIsoCode FROM Account")}
    async with crm_api(make_settings, crm) as (client, _):
        listed: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = (
                await client.get(
                    f"{BASE}/customers", params={"limit": 5, **({"cursor": cursor} if cursor else {})}
                )
            ).json()
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert {c["code"]: c["name"] for c in listed} == names
        for customer in listed:
            assert customer["id"] == f"{SOURCE}:customer:{customer['source_ref']}"
            assert customer["currency"] == accounts[customer["source_ref"]]["CurrencyIsoCode"]
            assert customer["country"] is None, "the seed's billing countries are names, not ISO codes"
            assert customer["mapping_version"] == "salesforce/v1"

        one = listed[3]
        assert (await client.get(f"{BASE}/customers/{one['id']}")).json() == one
        crm.control("PATCH", f"/accounts/{one['source_ref']}", json={"BillingCountry": "DE"})
        since = (
            await client.get(f"{BASE}/customers", params={"modified_since": "2026-11-01T00:00:00Z"})
        ).json()
        assert [(c["id"], c["country"]) for c in since["items"]] == [(one["id"], "DE")]


# --------------------------------------------------------------------------- bookings


async def test_a_full_read_returns_every_booking_once_as_the_org_holds_it(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    opportunities = org_records(
        crm,
        "SELECT Id, Amount, CurrencyIsoCode, IsWon, IsClosed, AccountId, Legal_Entity__c FROM Opportunity",
    )
    lines = org_records(crm, "SELECT Id, OpportunityId, TotalPrice FROM OpportunityLineItem")
    accounts = {
        a["Id"]: a["AccountNumber"] for a in org_records(crm, "SELECT Id, AccountNumber FROM Account")
    }
    assert len(opportunities) == SEEDED
    lines_of: dict[str, list[Decimal]] = {}
    for line in lines:
        lines_of.setdefault(line["OpportunityId"], []).append(line["TotalPrice"])
    async with crm_api(make_settings, crm) as (client, connector):
        items, _, pages = await read(client)
        assert pages >= 5, "500 a page at most"
        ids = [item["source_ref"] for item in items]
        assert len(ids) == len(set(ids)) == SEEDED
        stamps = [item["modified_at"] for item in items]
        assert stamps == sorted(stamps), "a read comes in modified_at order"

        by_id = {item["source_ref"]: item for item in items}
        totals: dict[str, Decimal] = {}
        for opportunity in opportunities:
            booking = by_id[opportunity["Id"]]
            amount = decimal_strings(booking)
            assert amount == opportunity["Amount"] == sum(lines_of[opportunity["Id"]], Decimal(0))
            assert booking["currency"] == opportunity["CurrencyIsoCode"]
            assert booking["entity"] == opportunity["Legal_Entity__c"]
            assert booking["customer"] == accounts[opportunity["AccountId"]]
            assert len(booking["lines"]) == len(lines_of[opportunity["Id"]])
            won, closed = opportunity["IsWon"], opportunity["IsClosed"]
            assert booking["status"] == ("won" if won else "lost" if closed else "open")
            totals[booking["currency"]] = totals.get(booking["currency"], Decimal(0)) + amount
        org_totals: dict[str, Decimal] = {}
        for opportunity in opportunities:
            currency = opportunity["CurrencyIsoCode"]
            org_totals[currency] = org_totals.get(currency, Decimal(0)) + opportunity["Amount"]
        assert totals == org_totals

        # The connector's own full read follows nextRecordsUrl: 2,400 opportunities and ~4,800 lines are
        # more than one batch of 2,000 each.
        counted = crm.counters()["query_more"]
        everything = await connector.bookings()
        assert crm.counters()["query_more"] - counted >= 2
        assert json.loads(msgspec.json.encode(everything)) == items

        won = [item for item in items if item["status"] == "won"]
        filtered, _, _ = await read(client, status="won")
        assert filtered == won

        one = items[1234]
        assert (await client.get(f"{BASE}/bookings/{one['id']}")).json() == one
        streamed = await client.get(
            f"{BASE}/bookings", params={"limit": 100}, headers={"Accept": "application/x-ndjson"}
        )
        assert streamed.headers["content-type"].startswith("application/x-ndjson")
        assert [json.loads(line) for line in streamed.text.splitlines()] == items[:100]
        assert streamed.headers["next-cursor"]


async def test_changes_during_a_read_come_in_the_next_read_once(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    async with crm_api(make_settings, crm) as (client, _):
        first_page = (await client.get(f"{BASE}/bookings", params={"limit": 500})).json()
        early = first_page["items"][0]["source_ref"]
        rest_ids = [
            o["Id"]
            for o in org_records(crm, "SELECT Id FROM Opportunity ORDER BY LastModifiedDate DESC LIMIT 3")
        ]
        before, late, grown = rest_ids
        crm.update_opportunity(before, Name="Renamed before the read")
        await asyncio.sleep(1.1)  # stamped to the second: the change is in the past once the read starts

        page = (await client.get(f"{BASE}/bookings", params={"limit": 500})).json()
        first_read = page["items"]
        await asyncio.sleep(1.1)  # what changes from now on is stamped after the read's `until`
        crm.update_opportunity(early, Name="Renamed during the read")
        crm.update_opportunity(late, StageName="Closed Won")
        added = crm.control(
            "POST",
            f"/opportunities/{grown}/line-items",
            status=201,
            json={"ProductCode": "P-100", "Quantity": 2},
        )
        created = crm.create_opportunity(
            lines=[{"ProductCode": "P-200", "Quantity": 3, "Discount": 10}],
            Name="Created during the read",
            AccountId=first_read[0]["customer_ref"],
            StageName="Prospecting",
            CloseDate="2026-12-15",
            Legal_Entity__c="FS-EU",
        )
        rest, sync, _ = await read(client, cursor=page["next_cursor"])
        first_read += rest

        seen = [item["source_ref"] for item in first_read]
        assert len(seen) == len(set(seen)) == SEEDED - 2, "`late` and `grown` wait for the next read"
        assert next(i for i in first_read if i["source_ref"] == before)["name"] == "Renamed before the read"
        assert next(i for i in first_read if i["source_ref"] == early)["name"] != "Renamed during the read"
        assert late not in seen, (
            "changed during the read: its old version is gone, its new one is past `until`"
        )
        assert grown not in seen

        await asyncio.sleep(1.1)  # a read ends at the last second passed when it starts
        changed, sync, _ = await read(client, cursor=sync)
        by_id = {item["source_ref"]: item for item in changed}
        assert sorted(by_id) == sorted([early, late, grown, created["Id"]]), "and `before` not again"
        assert len(changed) == 4
        assert by_id[early]["name"] == "Renamed during the read"
        assert by_id[late]["status"] == "won"
        assert by_id[late]["stage"] == "Closed Won"
        assert added["Id"] in {line["source_ref"] for line in by_id[grown]["lines"]}
        decimal_strings(by_id[grown])
        new = by_id[created["Id"]]
        assert (new["entity"], new["currency"], new["status"]) == ("FS-EU", "EUR", "open")
        assert new["lines"][0]["discount"] == "0.1"
        assert decimal_strings(new) == Decimal("2970.00"), "3 x 1,100.00 EUR less 10 %"

        again, _, _ = await read(client, cursor=sync)
        assert again == []


async def test_a_read_under_injected_faults_equals_the_fault_free_read(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    async with crm_api(make_settings, crm) as (client, connector):
        clean, _, _ = await read(client)
        crm.faults(rate_5xx=0.1, rate_limit_exceeded=0.1, seed=8)
        faulted, _, _ = await read(client)
        customers = await client.get(f"{BASE}/customers")
        assert customers.status_code == 200
    injected = crm.counters()
    assert injected["5xx"] > 0
    assert injected["REQUEST_LIMIT_EXCEEDED"] > 0
    assert injected["limit_exceeded"] == 0
    assert faulted == clean
    assert connector.client.counters.rate_limited == injected["REQUEST_LIMIT_EXCEEDED"]
    assert connector.client.counters.server_errors == injected["5xx"]
    assert connector.client.counters.retries >= injected["5xx"] + injected["REQUEST_LIMIT_EXCEEDED"]


async def test_the_daily_quota_stops_at_the_reserve_with_503_and_retry_after(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    crm.control("PUT", "/limits", json={"used": 0, "max": 40})
    async with crm_api(make_settings, crm, quota_reserve=0.25) as (client, connector):
        answers = [await client.get(f"{BASE}/customers") for _ in range(32)]
        assert [a.status_code for a in answers[:30]] == [200] * 30, "30 of 40: a quarter left to others"
        for refused in answers[30:]:
            body = problem(refused, 503)
            assert int(refused.headers["retry-after"]) >= 1
            assert (body["quota_used"], body["quota_allowed"]) == (30, 40)
        refused_read = await client.get(f"{BASE}/bookings")
        problem(refused_read, 503)
        assert crm.control("GET", "/limits") == {"used": 30, "max": 40}
        assert crm.counters()["limit_exceeded"] == 0, "the org never had to refuse"

        # Room again (the org's rolling day moved on): one call every probe interval reads the usage again.
        crm.control("PUT", "/limits", json={"used": 0})
        connector.client.quota.probe_interval = 0.2
        await asyncio.sleep(0.3)
        assert (await client.get(f"{BASE}/customers")).status_code == 200
        assert (await client.get(f"{BASE}/customers")).status_code == 200
        assert connector.client.quota.probes == 1


async def test_the_jwt_bearer_grant_and_a_new_session_when_one_ends(
    crm: CrmSandbox, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    key_file = tmp_path / "jwt-private.pem"
    key_file.write_bytes(crm.private_key.as_pem(private=True))
    key_file.chmod(0o600)
    async with crm_api(
        make_settings,
        crm,
        grant="jwt_bearer",
        client_secret=None,
        username=crm.username,
        private_key_file=str(key_file),
    ) as (client, connector):
        assert (await client.get(f"{BASE}/customers")).status_code == 200
        assert crm.counters()["tokens_issued"]["jwt_bearer"] == 1
        crm.control("POST", "/sessions/expire")
        assert (await client.get(f"{BASE}/customers")).status_code == 200
        health = (await client.get(f"/v1/sources/{SOURCE}")).json()["health"]
    counters = crm.counters()
    assert counters["tokens_issued"] == {"client_credentials": 0, "jwt_bearer": 2}
    assert counters["unauthorized"] == 1
    assert connector.client.counters.token_fetches == 2
    assert health["status"] == "up", health


async def test_refusals_of_the_org_are_502_with_its_own_words(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    async with crm_api(make_settings, crm, client_secret="wrong") as (client, _):
        body = problem(await client.get(f"{BASE}/customers"), 502)
        assert "invalid_client" in body["detail"]
        health = (await client.get(f"/v1/sources/{SOURCE}")).json()["health"]
        assert health["status"] == "down"
    async with crm_api(make_settings, crm, api_version="57.0") as (client, _):
        body = problem(await client.get(f"{BASE}/customers"), 502)
        assert "NOT_FOUND" in body["detail"]


async def test_bad_input_is_a_400_or_404_problem(
    crm: CrmSandbox, make_settings: Callable[..., Settings]
) -> None:
    async with crm_api(make_settings, crm) as (client, _):
        won = (await client.get(f"{BASE}/bookings", params={"status": "won", "limit": 1})).json()
        customer = (await client.get(f"{BASE}/customers", params={"limit": 1})).json()["items"][0]
        calls = crm.counters()["requests"]
        for path, params, status in [
            ("/v1/crm/nope/customers", {}, 404),
            ("/v1/crm/CRM!/customers", {}, 400),
            (f"{BASE}/bookings", {"cursor": "nosuchcursor"}, 400),
            (f"{BASE}/bookings", {"cursor": "not a cursor"}, 400),
            (f"{BASE}/bookings", {"cursor": won["next_cursor"], "status": "lost"}, 400),
            (f"{BASE}/bookings", {"status": "pending"}, 400),
            (f"{BASE}/bookings", {"limit": 0}, 400),
            (f"{BASE}/bookings", {"limit": 501}, 400),
            (f"{BASE}/bookings", {"modified_since": "2026-13-01T00:00:00Z"}, 400),
            (f"{BASE}/bookings", {"modified_since": "9999-12-31T23:59:59-23:59"}, 400),
            (f"{BASE}/bookings", {"modified_since": "yesterday"}, 400),
            (f"{BASE}/customers", {"cursor": "!!"}, 400),
            (f"{BASE}/bookings/{SOURCE}:booking:006%00", {}, 400),
            (f"{BASE}/bookings/{SOURCE}:booking:006%01abc", {}, 400),
            (f"{BASE}/bookings/nope", {}, 404),
            (f"{BASE}/bookings/{customer['id']}", {}, 404),
            (f"{BASE}/customers/{SOURCE}:customer:006Sb0000000001IAA", {}, 404),
            (f"{BASE}/bookings/{SOURCE}:booking:006Sb0000000001'OR'", {}, 404),
        ]:
            response = await client.get(path, params=params)
            problem(response, status)
        assert crm.counters()["requests"] == calls, "no malformed id reached the org"
        for extreme in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
            assert (
                await client.get(f"{BASE}/customers", params={"modified_since": extreme})
            ).status_code == 200
            assert (
                await client.get(f"{BASE}/bookings", params={"modified_since": extreme, "limit": 1})
            ).status_code == 200
        problem(await client.get(f"{BASE}/bookings/{SOURCE}:booking:006Sb00000ZZZZZIAA"), 404)
        problem(await client.get(f"{BASE}/customers/{SOURCE}:customer:001Sb00000ZZZZZIAA"), 404)
