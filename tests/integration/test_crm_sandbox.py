"""The CRM sandbox itself, over real HTTP: it must behave like Salesforce's REST API and Outbound Messaging, not
like a client wishes (OAuth grants, SOQL, batches, records, errors, limits, outbound messages, faults, reset)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from joserfc.jwk import OctKey, RSAKey

from system_apis.connectors.salesforce.sandbox.seed import LIST_PRICES, erp_customers
from system_apis.connectors.tryton.seed import COMPANIES, CUSTOMERS, FISCAL_YEAR, PRODUCTS
from tests.crm_fixtures import API
from tests.erp_fixtures import ERP_VARIANTS
from tests.support import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.crm_fixtures import CrmSandbox, OutboundListener

pytestmark = pytest.mark.slow

ID = re.compile(r"^[A-Za-z0-9]{18}$")
LOCATOR_URL = re.compile(rf"^{re.escape(API)}/query/01g[A-Za-z0-9]{{15}}-(\d+)$")
OPPORTUNITY_FIELDS = (
    "Id, Name, AccountId, StageName, IsWon, IsClosed, CloseDate, Amount, CurrencyIsoCode, LastModifiedDate"
)


class Rest:
    """A thin client of the sandbox's REST API with one access token."""

    def __init__(self, crm: CrmSandbox) -> None:
        self.crm = crm
        self.http = httpx.Client(base_url=crm.url, timeout=30)
        self.token = crm.token()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        response = self.http.get(path, headers=headers, **kwargs)
        assert response.headers["x-sandbox"] == "salesforce"
        assert re.fullmatch(r"api-usage=\d+/\d+", response.headers["sforce-limit-info"])
        return response

    def ok(self, path: str, **kwargs: Any) -> Any:
        response = self.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def query(self, soql: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.ok(f"{API}/query", params={"q": soql}, **kwargs)
        return body

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every record of ``soql``, following ``nextRecordsUrl`` until ``done``."""
        page = self.query(soql)
        records = list(page["records"])
        while not page["done"]:
            page = self.ok(page["nextRecordsUrl"])
            records.extend(page["records"])
        assert len(records) == page["totalSize"]
        return records


@pytest.fixture
def rest(crm: CrmSandbox) -> Iterator[Rest]:
    client = Rest(crm)
    yield client
    client.http.close()


@pytest.fixture(scope="module")
def soql(crm_sandbox: CrmSandbox) -> Iterator[Rest]:
    """One reset and one session for the read-only SOQL error cases (a reset per case costs more than the case)."""
    crm_sandbox.reset()
    client = Rest(crm_sandbox)
    yield client
    client.http.close()


def error_of(response: httpx.Response, status: int, code: str) -> str:
    """Check Salesforce's error array (one error) and answer its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list), body
    (error,) = body
    assert set(error) == {"message", "errorCode", "fields"}
    assert error["errorCode"] == code, error
    assert isinstance(error["fields"], list)
    message: str = error["message"]
    return message


def parse_datetime(value: str) -> dt.datetime:
    """A Salesforce datetime (``2026-03-31T14:05:09.000+0000``)."""
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def soql_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# OAuth


def test_client_credentials_answer_in_the_vendor_shape(crm: CrmSandbox) -> None:
    url = f"{crm.url}/services/oauth2/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": crm.client_id,
        "client_secret": crm.client_secret,
    }
    before = int(time.time() * 1000)
    response = httpx.post(url, data=form)
    assert response.status_code == 200, response.text
    assert response.headers["x-sandbox"] == "salesforce"
    assert response.headers["sforce-limit-info"] == "api-usage=0/100000", "token requests do not count"
    body = response.json()
    assert set(body) == {
        "access_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == crm.url
    org = crm.org()
    assert body["id"] == f"{crm.url}/id/{org['organization_id']}/{org['user_id']}"
    assert body["access_token"].startswith(org["organization_id"][:15] + "!")
    assert before <= int(body["issued_at"]) <= int(time.time() * 1000)
    expected = hmac.new(crm.client_secret.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256)
    assert body["signature"] == base64.b64encode(expected.digest()).decode()

    basic = httpx.post(
        url, data={"grant_type": "client_credentials"}, auth=(crm.client_id, crm.client_secret)
    )
    assert basic.status_code == 200, basic.text
    assert basic.json()["access_token"] != body["access_token"]

    refusals = [
        ({**form, "client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({**form, "client_id": "3MVG9someone.else"}, "invalid_client_id", "client identifier invalid"),
        ({**form, "grant_type": "password"}, "unsupported_grant_type", "grant type not supported"),
        ({"client_id": crm.client_id}, "unsupported_grant_type", "grant type not supported"),
    ]
    for data, error, description in refusals:
        refused = httpx.post(url, data=data)
        assert refused.status_code == 400
        assert refused.json() == {"error": error, "error_description": description}
        assert refused.headers["x-sandbox"] == "salesforce"
    as_json = httpx.post(url, json=form)
    assert as_json.json()["error"] == "unsupported_grant_type", "the token endpoint takes form bodies only"
    counters = crm.counters()
    assert counters["tokens_issued"] == {"client_credentials": 2, "jwt_bearer": 0}
    assert counters["token_failures"] == 5


def test_the_jwt_bearer_grant_checks_signature_issuer_subject_audience_and_expiry(crm: CrmSandbox) -> None:
    url = f"{crm.url}/services/oauth2/token"
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def exchange(assertion: str) -> httpx.Response:
        return httpx.post(url, data={"grant_type": grant, "assertion": assertion})

    good = exchange(crm.assertion())
    assert good.status_code == 200, good.text
    assert set(good.json()) == {
        "access_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    token = good.json()["access_token"]
    assert (
        httpx.get(f"{crm.url}{API}/limits", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    assert exchange(crm.assertion(aud="https://login.salesforce.com")).status_code == 200
    assert exchange(crm.assertion(aud=["https://test.salesforce.com"])).status_code == 200

    now = int(time.time())
    other_key = RSAKey.generate_key(2048)
    refusals = [
        (crm.assertion(key=other_key), "invalid_grant", "invalid assertion"),
        ("not.a.jwt", "invalid_grant", "invalid assertion"),
        ("", "invalid_grant", "invalid assertion"),
        (crm.assertion(exp=now - 5), "invalid_grant", "expired authorization code"),
        (crm.assertion(exp=None), "invalid_grant", "expired authorization code"),
        (
            crm.assertion(exp=now + 600),
            "invalid_grant",
            "invalid assertion: exp is more than 3 minutes ahead",
        ),
        (crm.assertion(aud="https://evil.example"), "invalid_grant", "audience is invalid"),
        (crm.assertion(iss="3MVG9someone.else"), "invalid_client_id", "client identifier invalid"),
        (crm.assertion(sub="someone@else.example"), "invalid_grant", "user hasn't approved this consumer"),
    ]
    for assertion, error, description in refusals:
        refused = exchange(assertion)
        assert refused.status_code == 400, (description, refused.text)
        assert refused.json() == {"error": error, "error_description": description}
    # RS256 only: an HMAC-signed assertion is refused whatever its key.
    forged = crm.assertion(key=OctKey.generate_key(256), algorithm="HS256")
    assert exchange(forged).json() == {"error": "invalid_grant", "error_description": "invalid assertion"}
    counters = crm.counters()
    assert counters["tokens_issued"]["jwt_bearer"] == 3
    assert counters["token_failures"] == len(refusals) + 1


def test_every_rest_call_needs_a_live_session(crm: CrmSandbox, rest: Rest) -> None:
    limits = f"{crm.url}{API}/limits"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {rest.token}"}):
        refused = httpx.get(limits, headers=headers)
        assert error_of(refused, 401, "INVALID_SESSION_ID") == "Session expired or invalid"
        assert refused.headers["x-sandbox"] == "salesforce"
    assert httpx.get(limits, headers={"Authorization": f"OAuth {rest.token}"}).status_code == 200
    versions = httpx.get(f"{crm.url}/services/data")
    assert versions.status_code == 200, "the versions resource needs no session"
    assert {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"} in versions.json()
    assert rest.ok(API) == {
        "limits": f"{API}/limits",
        "query": f"{API}/query",
        "sobjects": f"{API}/sobjects",
    }
    assert error_of(rest.get("/services/data/v12.0/limits"), 404, "NOT_FOUND")

    crm.control("POST", "/sessions/expire")
    assert error_of(rest.get(f"{API}/limits"), 401, "INVALID_SESSION_ID")
    assert crm.counters()["unauthorized"] == 4


# SOQL


def test_a_query_answers_the_selected_fields_with_attributes(rest: Rest) -> None:
    body = rest.query("select accountnumber, NAME, id from account where AccountNumber = 'C-003'")
    assert body["totalSize"] == 1
    assert body["done"] is True
    assert "nextRecordsUrl" not in body
    (record,) = body["records"]
    assert list(record) == ["attributes", "AccountNumber", "Name", "Id"], (
        "the query's order, Salesforce's names"
    )
    assert ID.match(record["Id"])
    assert record["Id"].startswith("001")
    assert record["attributes"] == {"type": "Account", "url": f"{API}/sobjects/Account/{record['Id']}"}
    assert record["Name"] == dict(erp_customers(ERP_VARIANTS[0]))["C-003"]
    lower = rest.query("SELECT Id FROM Account WHERE accountnumber = 'c-003'")
    assert lower["records"] == [{"attributes": record["attributes"], "Id": record["Id"]}], (
        "text compares ignoring case"
    )


def test_where_order_by_and_limit_agree_with_the_records(rest: Rest) -> None:
    everything = rest.query_all(f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity")
    assert len(everything) == 2400

    won_big = rest.query_all(
        f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity WHERE IsWon = true AND Amount > 10000"
    )
    expected = [r for r in everything if r["IsWon"] and Decimal(str(r["Amount"])) > 10000]
    assert 0 < len(won_big) < len(everything)
    assert won_big == expected, "filtered in creation order"

    top = rest.query(
        f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity WHERE CurrencyIsoCode = 'EUR' AND StageName = 'Closed Won' "
        "ORDER BY Amount DESC, Id LIMIT 5"
    )
    euro_won = [r for r in everything if r["CurrencyIsoCode"] == "EUR" and r["StageName"] == "Closed Won"]
    euro_won.sort(key=lambda r: r["Id"])
    euro_won.sort(key=lambda r: Decimal(str(r["Amount"])), reverse=True)
    assert top["totalSize"] == 5
    assert top["records"] == euro_won[:5]

    early = rest.query_all(
        "SELECT Id, CloseDate FROM Opportunity WHERE CloseDate < 2026-02-01 ORDER BY CloseDate"
    )
    assert [r["CloseDate"] for r in early] == sorted(
        r["CloseDate"] for r in everything if r["CloseDate"] < "2026-02-01"
    )
    either = rest.query_all(
        "SELECT Id FROM Opportunity WHERE (StageName = 'Closed Lost' OR StageName = 'Prospecting') AND IsClosed = false"
    )
    assert {r["Id"] for r in either} == {r["Id"] for r in everything if r["StageName"] == "Prospecting"}
    listed = rest.query(
        "SELECT Id FROM Account WHERE AccountNumber IN ('C-001', 'C-002') ORDER BY AccountNumber DESC"
    )
    assert len(listed["records"]) == 2
    offset = rest.query("SELECT Id FROM Account ORDER BY AccountNumber LIMIT 2 OFFSET 10")
    assert [r["Id"] for r in offset["records"]] == [
        r["Id"] for r in rest.query("SELECT Id FROM Account ORDER BY AccountNumber")["records"][10:12]
    ]


def test_last_modified_date_filters_see_changes_made_after_a_moment(crm: CrmSandbox, rest: Rest) -> None:
    latest = rest.query("SELECT Id, LastModifiedDate FROM Opportunity ORDER BY LastModifiedDate DESC LIMIT 1")
    mark = parse_datetime(latest["records"][0]["LastModifiedDate"])
    assert mark <= dt.datetime.now(dt.UTC)
    after = f"SELECT Id, StageName, LastModifiedDate, SystemModstamp FROM Opportunity WHERE LastModifiedDate > {soql_datetime(mark)}"
    assert rest.query(after)["totalSize"] == 0

    target = rest.query("SELECT Id FROM Opportunity WHERE StageName = 'Negotiation/Review' LIMIT 1")[
        "records"
    ][0]
    crm.update_opportunity(target["Id"], StageName="Closed Won")
    (changed,) = rest.query(after)["records"]
    assert changed["Id"] == target["Id"]
    assert changed["StageName"] == "Closed Won"
    stamp = parse_datetime(changed["LastModifiedDate"])
    assert stamp > mark
    assert changed["SystemModstamp"] == changed["LastModifiedDate"]
    assert changed["LastModifiedDate"].endswith(".000+0000"), "whole seconds, as Salesforce stamps them"
    # The same moment written with an offset, and a later one that excludes the change.
    shifted = mark.astimezone(dt.timezone(dt.timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    assert rest.query(f"SELECT Id FROM Opportunity WHERE LastModifiedDate > {shifted}")["totalSize"] == 1
    later = soql_datetime(stamp)
    assert rest.query(f"SELECT Id FROM Opportunity WHERE LastModifiedDate > {later}")["totalSize"] == 0

    crm.control("PUT", "/time", json={"advance_seconds": 86400})
    crm.update_opportunity(target["Id"], Description="a day later")
    moved = rest.query(f"SELECT LastModifiedDate FROM Opportunity WHERE Id = '{target['Id'][:15]}'")[
        "records"
    ][0]
    assert parse_datetime(moved["LastModifiedDate"]) >= stamp + dt.timedelta(days=1)
    refused = httpx.put(f"{crm.url}/sandbox/time", json={"now": "2020-01-01T00:00:00Z"})
    error_of(refused, 400, "JSON_PARSER_ERROR")


@pytest.mark.parametrize(
    ("query", "code", "reason"),
    [
        ("SELECT Id FRM Account", "MALFORMED_QUERY", "unexpected token: FRM"),
        ("SELECT Id, FROM Account", "MALFORMED_QUERY", "unexpected token: FROM"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        (
            "SELECT Id FROM Account WHERE Name = 'open",
            "MALFORMED_QUERY",
            "no viable alternative at character",
        ),
        ("SELECT Id FROM Account LIMIT x", "MALFORMED_QUERY", "unexpected token: x"),
        ("SELECT COUNT() FROM Account", "MALFORMED_QUERY", "functions are not supported"),
        ("SELECT Id FROM Account WHERE Name LIKE 'A%'", "MALFORMED_QUERY", "LIKE is not supported"),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: OR",
        ),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", "duplicate field selected: Id"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate > 2026-13-01",
            "MALFORMED_QUERY",
            "Invalid date: 2026-13-01",
        ),
        ("SELECT Foo FROM Account", "INVALID_FIELD", "No such column 'Foo' on entity 'Account'"),
        ("SELECT Account.Name FROM Opportunity", "INVALID_FIELD", "Didn't understand relationship 'Account'"),
        ("SELECT Id FROM Account ORDER BY Foo", "INVALID_FIELD", "No such column 'Foo'"),
        (
            "SELECT Id FROM Opportunity WHERE LastModifiedDate > '2026-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE LastModifiedDate > 2026-01-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        ("SELECT Id FROM Opportunity WHERE IsWon = 'true'", "INVALID_FIELD", "must be of type boolean"),
        ("SELECT Id FROM Opportunity WHERE Amount > '5'", "INVALID_FIELD", "must be of type currency"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", "should be enclosed in quotes"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE", "sObject type 'Widget__c' is not supported"),
        (
            "SELECT Id FROM Opportunity WHERE AccountId = 'abc'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: abc",
        ),
        (
            "SELECT Id FROM Account LIMIT 5 OFFSET 2001",
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Maximum SOQL offset allowed is 2000",
        ),
    ],
)
def test_bad_soql_answers_the_error_array(soql: Rest, query: str, code: str, reason: str) -> None:
    message = error_of(soql.get(f"{API}/query", params={"q": query}), 400, code)
    assert reason in message
    assert re.search(r"\nERROR at Row:1:Column:\d+\n", message), message
    assert message.startswith(f"\n{query}\n"), "the query's row, then a caret under the column"


def test_a_query_needs_a_query_string(rest: Rest) -> None:
    for params in ({}, {"q": "  "}):
        message = error_of(rest.get(f"{API}/query", params=params), 400, "MALFORMED_QUERY")
        assert message == "A query string has to be specified"


# Batches


def test_batches_of_2000_read_every_record_through_next_records_url(crm: CrmSandbox, rest: Rest) -> None:
    counts = crm.org()["records"]
    assert counts["OpportunityLineItem"] > 2 * 2000, "the seed spans several batches"
    first = rest.query(
        "SELECT Id, OpportunityId, ProductCode, Quantity, UnitPrice, TotalPrice FROM OpportunityLineItem"
    )
    assert first["totalSize"] == counts["OpportunityLineItem"]
    assert first["done"] is False
    assert len(first["records"]) == 2000
    match = LOCATOR_URL.match(first["nextRecordsUrl"])
    assert match, first["nextRecordsUrl"]
    assert match.group(1) == "2000"

    pages = [first]
    while not pages[-1]["done"]:
        pages.append(rest.ok(pages[-1]["nextRecordsUrl"]))
    records = [record for page in pages for record in page["records"]]
    assert len(records) == counts["OpportunityLineItem"]
    assert len({record["Id"] for record in records}) == len(records)
    assert all(record["Id"].startswith("00k") for record in records)
    assert all(page["totalSize"] == first["totalSize"] for page in pages)
    assert "nextRecordsUrl" not in pages[-1]
    assert [len(page["records"]) for page in pages[:-1]] == [2000] * (len(pages) - 1)

    # A locator keeps serving its result: the last batch again (a retry after a lost answer), the same records.
    again = rest.ok(pages[-2]["nextRecordsUrl"])
    assert again == pages[-1]
    # The result was taken when the query ran: later changes do not leak into its batches.
    last = rest.query("SELECT Id, StageName FROM Opportunity ORDER BY Id DESC LIMIT 1")["records"][0]
    snapshot = rest.query("SELECT Id, StageName FROM Opportunity ORDER BY Id")
    new_stage = "Closed Lost" if last["StageName"] != "Closed Lost" else "Closed Won"
    crm.update_opportunity(last["Id"], StageName=new_stage)
    assert rest.ok(snapshot["nextRecordsUrl"])["records"][-1] == last
    fresh = rest.query(f"SELECT Id, StageName FROM Opportunity WHERE Id = '{last['Id']}'")["records"][0]
    assert fresh["StageName"] == new_stage
    opportunities = rest.query_all("SELECT Id FROM Opportunity")
    assert len(opportunities) == counts["Opportunity"] == 2400

    smaller = rest.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(smaller["records"]) == 500
    smaller_match = LOCATOR_URL.match(smaller["nextRecordsUrl"])
    assert smaller_match
    assert smaller_match.group(1) == "500"
    following = rest.ok(smaller["nextRecordsUrl"], headers={"Sforce-Query-Options": "batchSize=500"})
    assert following["records"][0]["Id"] == opportunities[500]["Id"]

    for bad in (
        f"{API}/query/01gSb0000000000XYZ-2000",
        f"{API}/query/nonsense",
        first["nextRecordsUrl"] + "0000",
    ):
        assert error_of(rest.get(bad), 400, "INVALID_QUERY_LOCATOR") == "invalid query locator"
    assert crm.counters()["query_more"] >= len(pages)


def test_a_locator_closes_once_ten_newer_ones_are_open(rest: Rest) -> None:
    oldest = rest.query("SELECT Id FROM OpportunityLineItem")["nextRecordsUrl"]
    assert rest.get(oldest).status_code == 200
    for _ in range(10):
        rest.query("SELECT Id FROM OpportunityLineItem")
    error_of(rest.get(oldest), 400, "INVALID_QUERY_LOCATOR")


# Records


def test_an_sobject_get_answers_the_record_with_its_attributes(rest: Rest) -> None:
    row = rest.query(
        f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity WHERE HasOpportunityLineItem = true LIMIT 1"
    )
    (listed,) = row["records"]
    record_id = listed["Id"]
    record = rest.ok(f"{API}/sobjects/Opportunity/{record_id}")
    assert record["attributes"] == {"type": "Opportunity", "url": f"{API}/sobjects/Opportunity/{record_id}"}
    for name, value in listed.items():
        assert record[name] == value, name
    assert {"Probability", "OwnerId", "SystemModstamp", "CreatedDate", "Legal_Entity__c", "IsDeleted"} <= set(
        record
    )
    assert rest.ok(f"{API}/sobjects/opportunity/{record_id[:15]}") == record, (
        "15-character ids and any case of type"
    )
    assert rest.ok(f"{API}/sobjects/Opportunity/{record_id.lower()}") == record, (
        "18-character ids in any case"
    )
    narrow = rest.ok(f"{API}/sobjects/Opportunity/{record_id}", params={"fields": "Name,amount"})
    assert narrow == {"attributes": record["attributes"], "Name": record["Name"], "Amount": record["Amount"]}

    lines = rest.query_all(
        f"SELECT TotalPrice, Quantity, UnitPrice, Discount FROM OpportunityLineItem WHERE OpportunityId = '{record_id}'"
    )
    assert Decimal(str(record["Amount"])) == sum(Decimal(str(line["TotalPrice"])) for line in lines)
    product = rest.query("SELECT Id, ProductCode FROM Product2 WHERE ProductCode = 'P-500'")["records"][0]
    assert rest.ok(f"{API}/sobjects/Product2/{product['Id']}")["Name"] == "Gateway appliance"

    missing = "006Sb0000000ZZZ"
    assert error_of(rest.get(f"{API}/sobjects/Opportunity/{missing}"), 404, "NOT_FOUND") == (
        "The requested resource does not exist"
    )
    assert "Provided external ID field does not exist" in error_of(
        rest.get(f"{API}/sobjects/Opportunity/not-an-id"), 404, "NOT_FOUND"
    )
    error_of(rest.get(f"{API}/sobjects/Widget__c/{record_id}"), 404, "NOT_FOUND")
    error_of(
        rest.get(f"{API}/sobjects/Opportunity/{record_id}", params={"fields": "Nope"}), 400, "INVALID_FIELD"
    )
    error_of(rest.get(f"{API}/no/such/resource"), 404, "NOT_FOUND")


# Limits


def test_every_answer_reports_api_usage_and_the_limit_answers_403(crm: CrmSandbox, rest: Rest) -> None:
    assert rest.get(f"{API}/limits").headers["sforce-limit-info"] == "api-usage=1/100000"
    bad = rest.get(f"{API}/query", params={"q": "SELECT"})
    assert bad.status_code == 400
    assert bad.headers["sforce-limit-info"] == "api-usage=2/100000", "refused queries count too"
    control = httpx.get(f"{crm.url}/sandbox/counters")
    assert control.headers["sforce-limit-info"] == "api-usage=2/100000", (
        "control calls carry it and do not count"
    )
    assert httpx.get(f"{crm.url}/nowhere").headers["sforce-limit-info"] == "api-usage=2/100000"

    crm.control("PUT", "/limits", json={"used": 4998, "max": 5000})
    assert rest.ok(f"{API}/limits") == {"DailyApiRequests": {"Max": 5000, "Remaining": 1}}
    last = rest.get(f"{API}/query", params={"q": "SELECT Id FROM Account"})
    assert last.status_code == 200
    assert last.headers["sforce-limit-info"] == "api-usage=5000/5000"
    over = rest.get(f"{API}/query", params={"q": "SELECT Id FROM Account"})
    assert error_of(over, 403, "REQUEST_LIMIT_EXCEEDED") == "TotalRequests Limit exceeded."
    assert over.headers["sforce-limit-info"] == "api-usage=5000/5000"
    assert (
        httpx.post(
            f"{crm.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": crm.client_id,
                "client_secret": crm.client_secret,
            },
        ).status_code
        == 200
    ), "logging in is not an API request"
    assert crm.counters()["limit_exceeded"] == 1
    crm.control("PUT", "/limits", json={"used": 0})
    assert rest.get(f"{API}/limits").status_code == 200


# Outbound messages


def test_closing_an_opportunity_as_won_pushes_an_outbound_message(
    crm: CrmSandbox, rest: Rest, outbound_listener: OutboundListener
) -> None:
    crm.outbound(listener_url=outbound_listener.url)
    target = rest.query(
        f"SELECT {OPPORTUNITY_FIELDS} FROM Opportunity WHERE StageName = 'Negotiation/Review' LIMIT 1"
    )
    opportunity = target["records"][0]
    won = crm.update_opportunity(opportunity["Id"], StageName="Closed Won")
    assert (won["IsWon"], won["IsClosed"], won["Probability"], won["ForecastCategoryName"]) == (
        True,
        True,
        100,
        "Closed",
    )

    (call,) = outbound_listener.wait_for_calls(1)
    assert call.content_type.startswith("text/xml")
    org = crm.org()
    assert call.envelope["OrganizationId"] == org["organization_id"]
    assert call.envelope["ActionId"] == org["outbound_action_id"]
    assert str(call.envelope["ActionId"]).startswith("04k")
    assert call.envelope["SessionId"] is None
    assert call.envelope["EnterpriseUrl"] == f"{crm.url}/services/Soap/c/66.0/{org['organization_id'][:15]}"
    assert call.envelope["PartnerUrl"] == f"{crm.url}/services/Soap/u/66.0/{org['organization_id'][:15]}"
    ((notification_id, sobject_type, fields),) = call.notifications
    assert ID.match(notification_id)
    assert notification_id.startswith("04l")
    assert sobject_type == "sf:Opportunity"
    assert next(iter(fields)) == "Id"
    assert fields["Id"] == opportunity["Id"]
    assert fields["StageName"] == "Closed Won"
    assert fields["IsWon"] == "true"
    assert fields["IsClosed"] == "true"
    assert Decimal(fields["Amount"]) == Decimal(str(opportunity["Amount"]))
    assert fields["CurrencyIsoCode"] == opportunity["CurrencyIsoCode"]
    assert fields["AccountId"] == opportunity["AccountId"]
    assert fields["Legal_Entity__c"] in {company.code for company in COMPANIES}
    assert fields["LastModifiedDate"].endswith(".000Z")

    assert wait_until(lambda: crm.deliveries() != [], 10, 0.02)
    (delivery,) = crm.deliveries()
    assert delivery["outcome"] == "acked"
    assert delivery["notification_ids"] == [notification_id]
    assert delivery["attempts"] == [1]
    assert crm.control("GET", "/outbound")["pending_count"] == 0
    counters = crm.counters()
    assert (counters["notifications_queued"], counters["deliveries"], counters["notifications_acked"]) == (
        1,
        1,
        1,
    )

    crm.outbound(send_session_id=True, fields=["StageName", "Amount"])
    created = crm.create_opportunity(
        Name="Sandbox deal",
        AccountId=opportunity["AccountId"],
        StageName="Prospecting",
        CloseDate="2026-12-15",
        Legal_Entity__c="FS-US",
        lines=[
            {"ProductCode": "P-400", "Quantity": 3},
            {"ProductCode": "P-100", "Quantity": 10, "UnitPrice": "135.00"},
        ],
    )
    assert Decimal(str(created["Amount"])) == 3 * LIST_PRICES["P-400"]["USD"] + 10 * Decimal("135.00")
    assert [line["ProductCode"] for line in created["lines"]] == ["P-400", "P-100"]
    second = outbound_listener.wait_for_calls(2)[1]
    ((_, _, fields),) = second.notifications
    assert set(fields) == {"Id", "StageName", "Amount"}
    session = second.envelope["SessionId"]
    assert session is not None
    assert (
        httpx.get(f"{crm.url}{API}/limits", headers={"Authorization": f"Bearer {session}"}).status_code == 200
    )


def test_a_call_without_ack_is_retried_with_growing_intervals(
    crm: CrmSandbox, rest: Rest, outbound_listener: OutboundListener
) -> None:
    outbound_listener.plan = ["nack", "500", "no-ack"]
    crm.outbound(listener_url=outbound_listener.url)
    target = rest.query("SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 1")["records"][0]
    crm.update_opportunity(target["Id"], StageName="Closed Won")

    calls = outbound_listener.wait_for_calls(4)
    assert len({tuple(call.ids) for call in calls}) == 1, "the same notification, with the same Id, each time"
    gaps = [later.received - earlier.received for earlier, later in itertools.pairwise(calls)]
    assert gaps[0] >= 0.18, gaps
    assert gaps[1] >= 0.38, gaps
    assert gaps[2] >= 0.75, gaps
    assert gaps[2] > gaps[0], gaps
    assert wait_until(lambda: len(crm.deliveries()) == 4, 10, 0.02)
    deliveries = crm.deliveries()
    assert [d["outcome"] for d in deliveries] == ["not_acked", "http_error", "not_acked", "acked"]
    assert [d["attempts"] for d in deliveries] == [[1], [2], [3], [4]]
    assert deliveries[1]["http_status"] == 500
    counters = crm.counters()
    assert (counters["deliveries"], counters["deliveries_failed"], counters["retries"]) == (4, 3, 3)
    assert counters["notifications_acked"] == 1


def test_an_unreachable_listener_is_retried_and_a_message_too_old_is_dropped(
    crm: CrmSandbox, rest: Rest, outbound_listener: OutboundListener
) -> None:
    closed = outbound_listener.url.replace(str(outbound_listener.server.server_address[1]), "9")
    crm.outbound(listener_url=closed, retry_lifetime=0.5)
    target = rest.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]
    crm.update_opportunity(target["Id"], Description="nobody listens")
    deadline = time.monotonic() + 10
    while crm.counters()["dropped"] == 0:
        assert time.monotonic() < deadline, crm.deliveries()
        time.sleep(0.05)
    outcomes = {delivery["outcome"] for delivery in crm.deliveries()}
    assert outcomes == {"unreachable"}
    assert crm.control("GET", "/outbound")["pending_count"] == 0


def test_notifications_travel_in_calls_of_at_most_100(
    crm: CrmSandbox, rest: Rest, outbound_listener: OutboundListener
) -> None:
    crm.outbound(listener_url=outbound_listener.url, paused=True)
    opportunities = rest.query("SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 150")[
        "records"
    ]
    assert len(opportunities) == 150
    with httpx.Client(base_url=f"{crm.url}/sandbox") as control:
        for opportunity in opportunities:
            assert (
                control.patch(f"/opportunities/{opportunity['Id']}", json={"Probability": 55}).status_code
                == 200
            )
    assert crm.control("GET", "/outbound")["pending_count"] == 150
    crm.control("POST", "/outbound/retry")
    crm.outbound(paused=False)
    calls = outbound_listener.wait_for_calls(2)
    assert [len(call.notifications) for call in calls] == [100, 50]
    sent = [fields["Id"] for call in calls for _, _, fields in call.notifications]
    assert sent == [opportunity["Id"] for opportunity in opportunities], "oldest first"
    assert len({nid for call in calls for nid in call.ids}) == 150


def test_deliveries_are_duplicated_and_reordered_on_request(
    crm: CrmSandbox, rest: Rest, outbound_listener: OutboundListener
) -> None:
    opportunities = rest.query("SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 3")[
        "records"
    ]
    crm.faults(duplicate_notifications=1.0)
    crm.outbound(listener_url=outbound_listener.url)
    crm.update_opportunity(opportunities[0]["Id"], StageName="Closed Won")
    first, again = outbound_listener.wait_for_calls(2)
    assert first.ids == again.ids, "a duplicate carries the same notification Id"
    assert crm.control("GET", "/faults")["counters"]["duplicates"] == 1
    time.sleep(0.3)
    assert len(outbound_listener.calls) == 2, "duplicated once, not forever"

    crm.reset()
    crm.outbound(listener_url=outbound_listener.url, paused=True, batch_size=1)
    crm.faults(reorder_notifications=True)
    for opportunity in opportunities:
        crm.update_opportunity(opportunity["Id"], StageName="Closed Won")
    assert crm.control("POST", "/outbound/retry") == {"due": 3}, "all due at once, whatever the batch window"
    crm.outbound(paused=False)
    calls = outbound_listener.wait_for_calls(5)[2:]
    assert [call.notifications[0][2]["Id"] for call in calls] == [o["Id"] for o in reversed(opportunities)]
    assert crm.control("GET", "/faults")["counters"]["reordered"] == 2


# Faults, counters, reset


def test_injected_faults_do_nothing_and_are_counted(crm: CrmSandbox, rest: Rest) -> None:
    crm.faults(rate_5xx=0.4, rate_limit_exceeded=0.2, seed=11)
    statuses: dict[int, int] = {}
    for _ in range(60):
        response = rest.get(f"{API}/query", params={"q": "SELECT Id FROM Account LIMIT 1"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 200:
            continue
        code = {500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE", 403: "REQUEST_LIMIT_EXCEEDED"}
        assert "sandbox fault" in error_of(response, response.status_code, code[response.status_code])
    faults = crm.control("GET", "/faults")
    injected_5xx = statuses.get(500, 0) + statuses.get(503, 0)
    assert faults["counters"]["5xx"] == injected_5xx > 0
    assert faults["counters"]["REQUEST_LIMIT_EXCEEDED"] == statuses.get(403, 0) > 0
    assert faults["config"] == {
        "rate_5xx": 0.4,
        "rate_limit_exceeded": 0.2,
        "duplicate_notifications": 0.0,
        "reorder_notifications": False,
        "seed": 11,
    }
    assert crm.control("GET", "/limits")["used"] == statuses[200], "a faulted request does not count"
    counters = crm.counters()
    assert counters["requests"] == 60
    assert counters["queries"] == statuses[200]
    assert httpx.post(f"{crm.url}/services/oauth2/token", data={"grant_type": "x"}).status_code == 400, (
        "no faults here"
    )
    refused = httpx.put(f"{crm.url}/sandbox/faults", json={"rate_5xx": 0.8, "rate_limit_exceeded": 0.5})
    error_of(refused, 400, "JSON_PARSER_ERROR")
    error_of(httpx.put(f"{crm.url}/sandbox/faults", json={"rate_50x": 0.1}), 400, "JSON_PARSER_ERROR")


def test_reset_brings_back_the_seeded_org(crm: CrmSandbox, rest: Rest) -> None:
    seeded = rest.query(
        "SELECT Id, Name, StageName, Amount, LastModifiedDate FROM Opportunity ORDER BY Id LIMIT 5"
    )
    target = seeded["records"][0]
    crm.update_opportunity(target["Id"], StageName="Closed Lost", Name="renamed")
    crm.faults(rate_5xx=1.0)
    crm.control("PUT", "/limits", json={"used": 77})
    old_token = rest.token

    crm.reset()
    assert crm.counters()["requests"] == 0
    assert crm.control("GET", "/faults")["config"]["rate_5xx"] == 0.0
    assert crm.control("GET", "/limits") == {"used": 0, "max": 100000}
    assert error_of(
        httpx.get(f"{crm.url}{API}/limits", headers={"Authorization": f"Bearer {old_token}"}),
        401,
        "INVALID_SESSION_ID",
    )
    rest.token = crm.token()
    assert (
        rest.query(
            "SELECT Id, Name, StageName, Amount, LastModifiedDate FROM Opportunity ORDER BY Id LIMIT 5"
        )
        == seeded
    )


def test_the_seed_agrees_with_the_erp_seed(crm: CrmSandbox, rest: Rest) -> None:
    accounts = rest.query("SELECT AccountNumber, Name, CurrencyIsoCode FROM Account ORDER BY AccountNumber")
    customers = erp_customers(ERP_VARIANTS[0])
    assert [(a["AccountNumber"], a["Name"]) for a in accounts["records"]] == customers
    assert [code for code, _ in customers] == [f"C-{n:03d}" for n in range(1, CUSTOMERS + 1)]
    products = rest.query("SELECT ProductCode, Name, Family FROM Product2 ORDER BY ProductCode")["records"]
    assert [(p["ProductCode"], p["Name"], p["Family"]) for p in products] == [
        (p.code, p.name, p.category) for p in PRODUCTS
    ]
    entries = rest.query_all("SELECT ProductCode, CurrencyIsoCode, UnitPrice FROM PricebookEntry")
    assert {(e["ProductCode"], e["CurrencyIsoCode"]): Decimal(str(e["UnitPrice"])) for e in entries} == {
        (code, currency): price for code, prices in LIST_PRICES.items() for currency, price in prices.items()
    }

    opportunities = rest.query_all(
        f"SELECT {OPPORTUNITY_FIELDS}, Legal_Entity__c, Probability FROM Opportunity"
    )
    currencies = {company.code: company.currency for company in COMPANIES}
    assert {o["Legal_Entity__c"] for o in opportunities} == set(currencies)
    assert all(currencies[o["Legal_Entity__c"]] == o["CurrencyIsoCode"] for o in opportunities)
    assert all(o["CloseDate"].startswith(str(FISCAL_YEAR)) for o in opportunities)
    assert all(o["IsWon"] == (o["StageName"] == "Closed Won") for o in opportunities)
    assert all(o["IsClosed"] == o["StageName"].startswith("Closed") for o in opportunities)
    stages = {o["StageName"] for o in opportunities}
    assert {"Closed Won", "Closed Lost", "Negotiation/Review", "Prospecting"} <= stages
    lines = rest.query_all(
        "SELECT OpportunityId, ProductCode, Quantity, UnitPrice, TotalPrice FROM OpportunityLineItem"
    )
    totals: dict[str, Decimal] = {}
    for line in lines:
        assert line["ProductCode"] in LIST_PRICES
        assert Decimal(str(line["TotalPrice"])) == Decimal(str(line["Quantity"])) * Decimal(
            str(line["UnitPrice"])
        )
        totals[line["OpportunityId"]] = totals.get(line["OpportunityId"], Decimal(0)) + Decimal(
            str(line["TotalPrice"])
        )
    assert all(Decimal(str(o["Amount"])) == totals[o["Id"]] for o in opportunities), (
        "Amount is the sum of the lines"
    )
    assert crm.org()["records"]["Account"] == CUSTOMERS


def test_control_writes_are_checked_like_salesforce_dml(crm: CrmSandbox, rest: Rest) -> None:
    opportunity = rest.query(
        "SELECT Id, AccountId FROM Opportunity WHERE HasOpportunityLineItem = true LIMIT 1"
    )["records"][0]
    url = f"{crm.url}/sandbox/opportunities"
    cases = [
        (
            "PATCH",
            f"{url}/{opportunity['Id']}",
            {"StageName": "Won-ish"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        ("PATCH", f"{url}/{opportunity['Id']}", {"IsWon": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ("PATCH", f"{url}/{opportunity['Id']}", {"Amount": 5}, "FIELD_INTEGRITY_EXCEPTION"),
        ("PATCH", f"{url}/{opportunity['Id']}", {"CloseDate": "soon"}, "JSON_PARSER_ERROR"),
        ("PATCH", f"{url}/006Sb0000000ZZZ", {"StageName": "Closed Won"}, "INVALID_CROSS_REFERENCE_KEY"),
        (
            "POST",
            url,
            {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-12-01"},
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "POST",
            url,
            {
                "Name": "x",
                "AccountId": opportunity["AccountId"],
                "StageName": "Prospecting",
                "CloseDate": "2026-12-01",
                "lines": [{"ProductCode": "P-999", "Quantity": 1}],
            },
            "INVALID_CROSS_REFERENCE_KEY",
        ),
    ]
    for method, path, body, code in cases:
        error_of(httpx.request(method, path, json=body), 400, code)
    assert crm.counters()["notifications_queued"] == 0, "a refused write changes nothing"
    account = crm.control(
        "POST", "/accounts", status=201, json={"Name": "New Customer GmbH", "AccountNumber": "C-013"}
    )
    assert account["Id"].startswith("001")
    renamed = crm.control("PATCH", f"/accounts/{account['Id']}", json={"Name": "Renamed GmbH"})
    assert renamed["Name"] == "Renamed GmbH"
    user_id = crm.org()["user_id"]
    assert crm.control("PATCH", f"/accounts/{account['Id']}", json={"OwnerId": user_id})["OwnerId"] == user_id
    stranger = httpx.patch(f"{crm.url}/sandbox/accounts/{account['Id']}", json={"OwnerId": "005Sb0000000009"})
    error_of(stranger, 400, "INVALID_CROSS_REFERENCE_KEY")
    line = crm.control(
        "POST",
        f"/opportunities/{opportunity['Id']}/line-items",
        status=201,
        json={"ProductCode": "P-600", "Quantity": 2},
    )
    assert line["OpportunityId"] == opportunity["Id"]
    assert crm.counters()["notifications_queued"] == 1, "adding a product changes the opportunity"
