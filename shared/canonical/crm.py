"""The CRM's records: bookings (won or open deals, with their lines). Accounts are :class:`~.master.Customer`.

A booking is what a CRM opportunity becomes in the canonical model. Its
``customer`` is the account's business code (the ERP party code the account
carries), so a booking joins the ERP's and billing's customers by code, not by
the CRM's own ids; ``customer_ref`` keeps the CRM's id of the account.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from shared.canonical.fields import Code, Description, Name, SourceRef
from shared.canonical.money import Amount, CurrencyCode, Quantity, Rate
from shared.canonical.records import CanonicalStruct, Record

__all__ = ("Booking", "BookingLine", "BookingStatus")


class BookingStatus(StrEnum):
    """Where a deal stands: still open, closed and won, or closed and lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class BookingLine(CanonicalStruct, kw_only=True, frozen=True):
    """One product line of a booking (an opportunity line item)."""

    source_ref: SourceRef
    """The line's own id in the CRM."""
    product: Code | None = None
    """Product code (the ERP's), when the line sells a catalogued product."""
    description: Description
    """Line text (the product's name in the CRM)."""
    quantity: Quantity
    """Quantity sold."""
    unit_price: Amount
    """Price of one unit, in the booking's currency, after any discount is applied to ``amount`` only."""
    discount: Rate | None = None
    """Discount as a fraction (0.1 is 10%), when the line has one."""
    amount: Amount
    """Line total, in the booking's currency."""
    service_date: date | None = None
    """When the product is delivered or the service starts, when known."""


class Booking(Record, kw_only=True, frozen=True):
    """A deal from the CRM: who buys what, for how much, from which legal entity, and whether it was won."""

    name: Name
    """The deal's name."""
    entity: Code | None = None
    """Code of the legal entity that sells; null when the CRM does not say."""
    customer: Code | None = None
    """The account's business code (the ERP party code); null when the account carries none."""
    customer_ref: SourceRef | None = None
    """The CRM's id of the account."""
    status: BookingStatus
    """Open, won or lost."""
    stage: Name
    """The CRM's own stage name (``Closed Won``)."""
    close_date: date
    """When the deal closed, or is expected to."""
    currency: CurrencyCode
    """Currency of every amount of the booking."""
    amount: Amount
    """Total of the deal; the sum of the lines when it has lines."""
    probability: Rate | None = None
    """Chance of winning, as a fraction (0.9 is 90%), when the CRM says."""
    lines: tuple[BookingLine, ...] = ()
    """The product lines, in the CRM's order."""
