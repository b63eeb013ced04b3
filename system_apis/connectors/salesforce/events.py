"""Outbound-message notifications as canonical :class:`~shared.events.SourceEvent` objects (pure: no I/O).

A notification carries the opportunity as it is when sent (its fields as text).
It becomes a ``crm.booking.changed`` event whose booking is mapped by the
rules of :mod:`.mapping` (status from ``IsWon`` and ``IsClosed``, amounts as
exact decimals to the currency's minor unit). Its keys:

- ``id``: ``{source}:{notification Id}``, the same on every retry of the notification;
- ``dedupe_key``: :func:`booking_dedupe_key`, ``{source}:booking:{Id}:{LastModifiedDate}``, the date in
  UTC as the event's JSON writes it (``2026-03-31T17:45:00Z``). It names the change, not the delivery, so
  two notifications of one change (and the process layer's sweep, reading bookings by ``LastModifiedDate``)
  give the same key;
- ``ordering_key``: ``crm:{source}:booking:{Id}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import msgspec

from shared.events import BookingChange, EventType, SourceEvent
from system_apis.connectors.salesforce.mapping import entity_code, money, status_of
from system_apis.connectors.salesforce.wire import LEGAL_ENTITY, OpportunityRow

if TYPE_CHECKING:
    from shared.settings import SalesforceSourceConfig
    from system_apis.connectors.salesforce.outbound import Notification

__all__ = ("REQUIRED_FIELDS", "booking_dedupe_key", "booking_event")

REQUIRED_FIELDS: Final = ("Id", "Name", "StageName", "CloseDate", "IsWon", "IsClosed", "LastModifiedDate")
"""Fields an Opportunity outbound message must carry to make an event (Salesforce's default set does)."""
_NAME_MAX: Final = 256


def booking_dedupe_key(source: str, booking_ref: str, modified_at: datetime) -> str:
    """``{source}:booking:{Id}:{modified_at}``, the time in UTC as msgspec writes it (``…T17:45:00Z``)."""
    stamp = modified_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"{source}:booking:{booking_ref}:{stamp}"


def _row(notification: Notification, config: SalesforceSourceConfig) -> OpportunityRow:
    fields: dict[str, str | None] = {
        name: value for name, value in notification.fields.items() if value is not None
    }
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        raise msgspec.ValidationError(
            f"notification {notification.id} lacks {', '.join(missing)}; add them to the outbound message"
        )
    # The legal-entity field is configured, so its value moves to the key the row type knows.
    fields[LEGAL_ENTITY] = fields.pop(config.legal_entity_field, None)
    return msgspec.convert(fields, OpportunityRow, strict=False)


def booking_event(
    source: str, config: SalesforceSourceConfig, notification: Notification, received_at: datetime
) -> SourceEvent:
    """The event of one Opportunity notification.

    Raises:
        msgspec.ValidationError: a required field is missing, or a field is not of its type.
        UpstreamContractError: an amount is not a finite number.
    """
    row = _row(notification, config)
    currency = row.currency_iso_code or config.currency
    modified_at = row.last_modified_date.astimezone(UTC)
    return SourceEvent(
        id=f"{source}:{notification.id}",
        type=EventType.BOOKING_CHANGED,
        source=source,
        kind="crm",
        dedupe_key=booking_dedupe_key(source, row.id, modified_at),
        ordering_key=f"crm:{source}:booking:{row.id}",
        occurred_at=modified_at,
        received_at=received_at,
        booking=BookingChange(
            booking_ref=row.id,
            name=row.name[:_NAME_MAX] or None,
            customer_ref=row.account_id,
            entity=entity_code(row.legal_entity),
            status=status_of(row),
            stage=row.stage_name[:_NAME_MAX] or None,
            close_date=row.close_date,
            amount=money(row.amount, currency) if row.amount is not None and currency else None,
            currency=currency if row.amount is not None else None,
            modified_at=modified_at,
        ),
    )
