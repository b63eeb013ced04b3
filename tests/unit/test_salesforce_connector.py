"""The Salesforce connector's pure parts: the mapping rules, the anchor and merge of the change walks, the quota
guard and the SOQL literals. What the sandbox cannot produce (a line item changed after its opportunity, an
account number that is no code) is shown here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from shared.errors import UpstreamContractError, UpstreamUnavailableError
from system_apis.connectors.salesforce import soql
from system_apis.connectors.salesforce.changes import anchor_line, merge, settled_until
from system_apis.connectors.salesforce.mapping import booking, customer, money
from system_apis.connectors.salesforce.quota import Quota
from system_apis.connectors.salesforce.wire import PAGES, AccountRow, LineRow, LineStamp, OpportunityRow

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
OPP = "006Sb0000000001IAA"


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def opportunity(stamp: int = 0, **fields: Any) -> OpportunityRow:
    values: dict[str, Any] = {
        "Id": OPP,
        "AccountId": "001Sb0000000001IAA",
        "Name": "Acme - Consulting #00001",
        "StageName": "Closed Won",
        "Amount": Decimal("1234.50"),
        "Probability": Decimal(100),
        "CloseDate": "2026-10-30",
        "IsClosed": True,
        "IsWon": True,
        "CurrencyIsoCode": "USD",
        "LegalEntity": "FS-US",
        "LastModifiedDate": at(stamp).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        **fields,
    }
    return msgspec.convert(values, OpportunityRow)


def line(ref: str, stamp: int = 0, **fields: Any) -> LineRow:
    values: dict[str, Any] = {
        "Id": ref,
        "OpportunityId": OPP,
        "Name": "Acme - Consulting #00001 Consulting day",
        "ProductCode": "P-100",
        "Quantity": Decimal(3),
        "UnitPrice": Decimal("150.00"),
        "TotalPrice": Decimal("405.00"),
        "Discount": Decimal(10),
        "LastModifiedDate": at(stamp).isoformat(),
        **fields,
    }
    return msgspec.convert(values, LineRow)


def stamp(ref: str, seconds: int) -> LineStamp:
    return LineStamp(id=ref, opportunity_id=OPP, last_modified_date=at(seconds))


# --------------------------------------------------------------------------- mapping


def test_a_query_batch_keeps_every_digit_of_its_numbers() -> None:
    page = PAGES.decode(
        b'{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Opportunity"},"Amount":0.1,'
        b'"Other":12345678901234567890.123456789}]}'
    )
    assert page.records[0]["Amount"] == Decimal("0.1")
    assert page.records[0]["Other"] == Decimal("12345678901234567890.123456789")


def test_an_opportunity_becomes_a_booking_with_exact_money_and_fractions() -> None:
    record = booking(
        "crm",
        "salesforce/v1",
        opportunity(Amount=Decimal("810.005"), Probability=Decimal(90)),
        [line("00kSb0000000001IAA", TotalPrice=Decimal("405.005")), line("00kSb0000000002IAA")],
        " C-001 ",
        None,
    )
    assert record.id == f"crm:booking:{OPP}"
    assert record.amount == Decimal("810.01"), "half up, to the cent"
    assert record.probability == Decimal("0.9")
    assert (record.customer, record.entity, record.status) == ("C-001", "FS-US", "won")
    first = record.lines[0]
    assert (first.description, first.discount, first.amount) == (
        "Consulting day",
        Decimal("0.1"),
        Decimal("405.01"),
    )
    encoded = msgspec.json.decode(msgspec.json.encode(record))
    assert encoded["amount"] == "810.01"
    assert encoded["lines"][0]["quantity"] == "3"


def test_status_follows_is_won_and_is_closed() -> None:
    lost = booking("crm", "salesforce/v1", opportunity(IsWon=False), [], None, None)
    open_ = booking("crm", "salesforce/v1", opportunity(IsWon=False, IsClosed=False), [], None, None)
    assert (lost.status, open_.status) == ("lost", "open")


def test_a_missing_amount_is_the_sum_of_the_lines_and_modified_at_the_latest_stamp() -> None:
    record = booking(
        "crm",
        "salesforce/v1",
        opportunity(stamp=5, Amount=None, CurrencyIsoCode=None),
        [line("00kSb0000000001IAA", stamp=9, TotalPrice=Decimal(100)), line("00kSb0000000002IAA", stamp=2)],
        None,
        "JPY",
    )
    assert record.currency == "JPY"
    assert record.amount == Decimal(505)
    assert record.modified_at == at(9)


def test_an_opportunity_without_a_currency_is_off_contract() -> None:
    with pytest.raises(UpstreamContractError):
        booking("crm", "salesforce/v1", opportunity(CurrencyIsoCode=None), [], None, None)


def test_money_never_has_an_exponent() -> None:
    assert str(money(Decimal("1E+2"), "USD")) == "100.00"
    assert str(money(Decimal("1E+2"), "XXX")) == "100", "a currency finsync does not know keeps its digits"


@pytest.mark.parametrize(
    ("number", "country", "expected"),
    [
        ("C-001", "DE", ("C-001", "DE")),
        ("C-001", "Germany", ("C-001", None)),
        ("has space", "DE", None),
        (None, "DE", None),
    ],
)
def test_an_account_is_a_customer_only_with_a_code(
    number: str | None, country: str, expected: tuple[str, str | None] | None
) -> None:
    row = AccountRow(
        id="001Sb0000000001IAA",
        name="Acme",
        account_number=number,
        billing_country=country,
        last_modified_date=T0,
    )
    mapped = customer("crm", "salesforce/v1", row, "EUR")
    assert (None if mapped is None else (mapped.code, mapped.country)) == expected
    if mapped is not None:
        assert mapped.currency == "EUR"


# --------------------------------------------------------------------------- the change walks


def test_the_opportunity_anchors_its_booking_unless_a_line_is_later() -> None:
    assert anchor_line(opportunity(stamp=5), [line("00kSb0000000001IAA", stamp=5)]) is None
    later = [
        line("00kSb0000000002IAA", stamp=7),
        line("00kSb0000000001IAA", stamp=7),
        line("00kSb0000000003IAA", 6),
    ]
    chosen = anchor_line(opportunity(stamp=5), later)
    assert chosen is not None
    assert chosen.id == "00kSb0000000001IAA", "the smallest id of the latest"


def test_merge_orders_by_stamp_and_stops_where_a_batch_with_more_to_come_ends() -> None:
    opportunities = [
        opportunity(stamp=1, Id="006Sb0000000001IAA"),
        opportunity(stamp=4, Id="006Sb0000000002IAA"),
    ]
    lines = [stamp("00kSb0000000001IAA", 1), stamp("00kSb0000000002IAA", 3)]
    everything = merge(opportunities, False, lines, False)
    assert [e.id for e in everything] == [
        "006Sb0000000001IAA",
        "00kSb0000000001IAA",
        "00kSb0000000002IAA",
        "006Sb0000000002IAA",
    ]
    # Line items past stamp 3 may follow: the opportunity of stamp 4 must wait for them.
    assert [e.id for e in merge(opportunities, False, lines, True)] == [e.id for e in everything[:3]]
    # Opportunities at stamp 4 or later may follow: a line item of stamp 4 waits, one of stamp 3 does not.
    tail = [stamp("00kSb0000000003IAA", 3), stamp("00kSb0000000004IAA", 4)]
    assert [e.id for e in merge(opportunities, True, tail, False)] == [
        "006Sb0000000001IAA",
        "00kSb0000000003IAA",
        "006Sb0000000002IAA",
    ]


def test_a_read_ends_at_the_last_second_passed() -> None:
    assert settled_until(dt.datetime(2026, 11, 2, 9, 0, 5, 999_000, tzinfo=dt.UTC)) == at(4)


# --------------------------------------------------------------------------- quota and SOQL


def test_the_quota_stops_at_the_reserve_and_lets_one_probe_through_per_interval() -> None:
    quota = Quota(0.25, probe_interval=0)
    quota.acquire()
    quota.observe("api-usage=28/40")
    quota.release()
    quota.acquire()
    quota.acquire()  # 28 used and 2 in flight: the budget of 30 is taken
    with pytest.raises(UpstreamUnavailableError) as refused:
        quota.acquire()
    assert refused.value.headers == {"Retry-After": "1"}, (
        "over by calls in flight only: their answers come soon"
    )
    quota.observe("per-app-api-usage=3/10, api-usage=29/40")
    quota.release()
    quota.observe("api-usage=30/40")
    quota.release()
    quota.acquire()  # the probe: the interval (0 here) has passed
    with pytest.raises(UpstreamUnavailableError):
        quota.acquire()
    quota.observe("api-usage=2/40")
    quota.release()
    quota.acquire()
    assert (quota.probes, quota.refused, quota.in_flight) == (1, 2, 1)


def test_soql_literals_admit_only_ids_and_utc_seconds() -> None:
    assert soql.moment(dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == (
        "2026-01-02T02:04:05Z"
    )
    assert soql.moment(dt.datetime(999, 1, 2, tzinfo=dt.UTC)) == "1700-01-01T00:00:00Z", (
        "what Salesforce takes"
    )
    assert soql.moment(dt.datetime(9999, 1, 2, tzinfo=dt.UTC)) == "4000-12-31T23:59:59Z"
    assert soql.after(at(0), OPP) == (
        f"(LastModifiedDate > 2026-11-02T09:00:00Z OR (LastModifiedDate = 2026-11-02T09:00:00Z AND Id > '{OPP}'))"
    )
    with pytest.raises(ValueError, match="not a Salesforce id"):
        soql.id_literal("006' OR Name != '")
    assert [len(chunk) for chunk in soql.chunks([f"{n:018d}" for n in range(450)] * 2)] == [200, 200, 50]
