"""The billing system API's own shapes: one named page type per list, the body of ``pay``, a webhook's receipt."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from shared.canonical import BillingInvoice, BillingPayment, Customer
from shared.events import SourceEvent
from shared.pagination import Page

__all__ = (
    "BillingCustomerPage",
    "BillingEventPage",
    "BillingInvoicePage",
    "BillingPaymentPage",
    "PayRequest",
    "WebhookReceipt",
)


class BillingCustomerPage(Page[Customer], kw_only=True):
    """A page of billing customers."""


class BillingInvoicePage(Page[BillingInvoice], kw_only=True):
    """A page of billing invoices, newest first."""


class BillingPaymentPage(Page[BillingPayment], kw_only=True):
    """A page of payments on billing invoices, newest first."""


class PayRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How to pay an invoice: charge a payment method, or record a payment made outside the platform.

    Both left out: charge the invoice's or the customer's default payment method.
    """

    payment_method: (
        Annotated[
            str,
            Meta(
                pattern=r"^pm_[A-Za-z0-9_]{1,100}$",
                description="The payment method to charge (`pm_…`).",
                examples=["pm_card_visa"],
            ),
        ]
        | None
    ) = None
    """The payment method to charge."""
    paid_out_of_band: bool = False
    """The customer paid outside the platform (a bank transfer): mark the invoice paid, charge nothing."""


class BillingEventPage(Page[SourceEvent], kw_only=True):
    """A page of the billing platform's invoice events, newest first, as the webhooks would have pushed them."""


class WebhookReceipt(msgspec.Struct, kw_only=True, frozen=True):
    """What a webhook delivery is answered with (any 2xx is an acknowledgement to the platform)."""

    outcome: Literal["accepted", "duplicate", "ignored"]
    """``accepted``: its event is on the stream now; ``duplicate``: it was already; ``ignored``: its type makes
    no event."""
    event_id: str | None = None
    """finsync's id of the event (``{source}:{evt id}``); null when ignored."""
