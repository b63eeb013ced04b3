"""The pure parts of the process layer's event path: the sweep's events of bookings, and the handler registry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from process_apis.events import EventHandlers, booking_event
from shared.canonical import Booking, BookingStatus, encode
from shared.events import EventType, SourceEvent

if TYPE_CHECKING:
    from process_apis.events import EventHandler

MODIFIED = datetime(2026, 3, 31, 19, 45, tzinfo=timezone(timedelta(hours=2)))
"""17:45 UTC, given with another offset: keys are written in UTC."""


def deal(**changes: object) -> Booking:
    fields: dict[str, object] = {
        "id": "crm:booking:006Sb00000A1b2CIAR",
        "source": "crm",
        "source_ref": "006Sb00000A1b2CIAR",
        "modified_at": MODIFIED,
        "mapping_version": "salesforce/v1",
        "name": "Acme Corp: renewal 2026",
        "entity": "FS-US",
        "customer": "C-001",
        "customer_ref": "001Sb00000A1b2CIAR",
        "status": BookingStatus.WON,
        "stage": "Closed Won",
        "close_date": date(2026, 3, 31),
        "currency": "USD",
        "amount": Decimal("2700.00"),
    }
    return msgspec.convert({**fields, **changes}, Booking)


def test_a_swept_booking_is_keyed_like_the_push_of_the_same_version() -> None:
    received = datetime(2026, 4, 1, tzinfo=UTC)
    event = booking_event(deal(), received)
    key = "crm:booking:006Sb00000A1b2CIAR:2026-03-31T17:45:00Z"
    assert (event.id, event.dedupe_key) == (key, key)
    assert event.ordering_key == "crm:crm:booking:006Sb00000A1b2CIAR"
    assert (event.type, event.kind, event.via) == (EventType.BOOKING_CHANGED, "crm", "sweep")
    assert event.occurred_at == datetime(2026, 3, 31, 17, 45, tzinfo=UTC)
    assert event.booking is not None
    assert (event.booking.booking_ref, event.booking.amount, event.booking.status) == (
        "006Sb00000A1b2CIAR",
        Decimal("2700.00"),
        BookingStatus.WON,
    )
    # It travels like a pushed one: the published schema's JSON, decoded back unchanged.
    assert msgspec.json.decode(encode(event), type=SourceEvent) == event


def test_each_version_of_a_booking_is_its_own_change() -> None:
    later = booking_event(deal(modified_at=MODIFIED + timedelta(seconds=1)), datetime.now(UTC))
    assert later.dedupe_key != booking_event(deal(), datetime.now(UTC)).dedupe_key
    assert later.ordering_key == booking_event(deal(), datetime.now(UTC)).ordering_key


async def test_handlers_for_every_type_run_first_then_those_of_the_type() -> None:
    ran: list[str] = []

    def named(name: str) -> EventHandler:
        async def handler(event: SourceEvent) -> None:
            ran.append(name)

        return handler

    handlers = EventHandlers()
    booked, invoiced, every = named("booked"), named("invoiced"), named("every")
    handlers.subscribe(booked, EventType.BOOKING_CHANGED)
    handlers.subscribe(invoiced, EventType.INVOICE_PAID, EventType.INVOICE_VOIDED)
    handlers.subscribe(every)
    assert handlers.handlers_for(EventType.BOOKING_CHANGED) == [every, booked]
    assert handlers.handlers_for("billing.invoice.voided") == [every, invoiced]
    assert handlers.handlers_for(EventType.INVOICE_CREATED) == [every]
    handlers.unsubscribe(every)
    for handler in handlers.handlers_for(EventType.INVOICE_PAID):
        await handler(booking_event(deal(), datetime.now(UTC)))
    assert ran == ["invoiced"]
