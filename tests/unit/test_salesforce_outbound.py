"""Outbound messages: the hardened SOAP parse, and notifications as canonical events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import pytest

from shared.settings import SalesforceSourceConfig
from system_apis.connectors.salesforce.events import booking_dedupe_key, booking_event
from system_apis.connectors.salesforce.outbound import OutboundError, parse

CONFIG = SalesforceSourceConfig(login_url="https://login.example", client_id="c", client_secret="s")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def call(*notifications: str, org: str = "00D000000000001AAA") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId><ActionId>04k000000000001AAA</ActionId>"
        '<SessionId xsi:nil="true"/>'
        + "".join(notifications)
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def notification(number: int, **fields: str) -> str:
    values = {
        "Id": "006000000000001AAA",
        "Name": "Deal",
        "StageName": "Closed Won",
        "CloseDate": "2026-12-15",
        "IsWon": "true",
        "IsClosed": "true",
        "LastModifiedDate": "2026-11-27T10:00:00.000Z",
        "Amount": "1500.5",
        "CurrencyIsoCode": "USD",
        "Legal_Entity__c": "FS-US",
        **fields,
    }
    body = "".join(f"<sf:{name}>{value}</sf:{name}>" for name, value in values.items())
    return (
        f"<Notification><Id>04l00000000000{number}AAA</Id>"
        '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"{body}</sObject></Notification>"
    )


def test_a_call_becomes_one_event_per_notification() -> None:
    message = parse(call(notification(1), notification(2, LastModifiedDate="2026-11-27T10:00:05.000Z")))
    assert message.organization_id == "00D000000000001AAA"
    first, second = (booking_event("crm", CONFIG, n, NOW) for n in message.notifications)
    assert first.id == "crm:04l000000000001AAA"
    assert first.dedupe_key == "crm:booking:006000000000001AAA:2026-11-27T10:00:00Z"
    assert second.dedupe_key == "crm:booking:006000000000001AAA:2026-11-27T10:00:05Z"
    assert first.ordering_key == second.ordering_key == "crm:crm:booking:006000000000001AAA"
    booking = first.booking
    assert booking is not None
    assert (booking.status, booking.stage, booking.entity) == ("won", "Closed Won", "FS-US")
    assert (booking.amount, booking.currency, booking.close_date) == (
        Decimal("1500.50"),
        "USD",
        date(2026, 12, 15),
    )
    assert first.occurred_at == booking.modified_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_the_dedupe_key_is_the_time_in_utc_as_the_json_writes_it() -> None:
    stamp = datetime(2026, 3, 31, 19, 45, tzinfo=UTC).astimezone()
    key = booking_dedupe_key("crm", "006x", stamp)
    assert key == "crm:booking:006x:" + msgspec.json.encode(stamp.astimezone(UTC)).decode().strip('"')


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b SYSTEM "file:///etc/passwd">]><a>&b;</a>',
        call(),
        call(*(notification(n % 10) for n in range(101))),
        b"<a/>",
    ],
)
def test_hostile_or_foreign_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(OutboundError):
        parse(body)


def test_a_notification_without_the_required_fields_is_refused() -> None:
    (bare,) = parse(
        call(notification(1).replace("<sf:StageName>Closed Won</sf:StageName>", ""))
    ).notifications
    with pytest.raises(msgspec.ValidationError, match="StageName"):
        booking_event("crm", CONFIG, bare, NOW)
