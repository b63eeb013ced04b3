"""The list envelopes of the CRM system API: one named page type per resource, for the OpenAPI spec."""

from __future__ import annotations

from shared.canonical import Booking, Customer
from shared.pagination import Page

__all__ = ("BookingPage", "CrmCustomerPage")


class CrmCustomerPage(Page[Customer], kw_only=True):
    """A page of the CRM's customers (its accounts)."""


class BookingPage(Page[Booking], kw_only=True):
    """A page of an incremental read of bookings."""

    sync_cursor: str | None = None
    """Set on the last page of a read: pass it as `cursor` later to get only what changed since
    (changes made during this read included, nothing returned twice)."""
