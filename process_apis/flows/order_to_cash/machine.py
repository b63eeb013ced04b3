"""The flow's state machine: what to do next, from where the deal and its invoice stand now.

Events arrive in any order, more than once, and late. So a step is never
chosen from the event alone: the handler reads the deal or the invoice as its
source holds it *now*, and this module maps that state to the steps that bring
the ERP to it. Every step is idempotent by business key, so doing one twice, or
in the wrong order, comes to the same end:

==================  ===========================================================================
billing invoice     steps
==================  ===========================================================================
``draft``           none yet (it is finalized in billing)
``open``            post the receivable; a partial payment (paid something, not all) is an
                    exception after it
``paid``            post the receivable, then the payment that settles it (so a ``paid`` event
                    handled before its ``finalized`` one leaves the same end state)
``void``            reverse the receivable when the ERP has it; else nothing was posted: cancel
``uncollectible``   post the receivable, then an exception: writing it off is a finance decision
==================  ===========================================================================

A deal that is won gets its billing invoice; one that is no longer won after
its invoice was made (reopened, or lost after winning) is an exception.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from shared.canonical.billing import BillingInvoiceStatus
from shared.canonical.crm import BookingStatus

__all__ = ("DealStep", "InvoiceStep", "deal_step", "invoice_steps")


class DealStep(StrEnum):
    """What a deal's change calls for."""

    INVOICE = "create-billing-invoice"
    """Won: find or create the customer and the party, then the billing invoice."""
    REOPENED = "deal-reopened"
    """No longer won after it was invoiced: an exception."""
    NONE = "none"
    """Not won and never invoiced: nothing to do."""


class InvoiceStep(StrEnum):
    """One step an invoice's state calls for, named as the audit names it."""

    POST_RECEIVABLE = "post-receivable"
    """Post the receivable invoice to the ERP, idempotent by the billing invoice id."""
    POST_PAYMENT = "post-payment"
    """Record the payment that settles the receivable, idempotent by the billing invoice id."""
    REVERSE = "reverse-receivable"
    """Post the journal entry that reverses a voided invoice's receivable."""
    CANCEL = "cancel"
    """Voided before anything was posted: nothing to post, recorded as cancelled."""
    PARTIAL_PAYMENT = "partial-payment"
    """Paid in part: an exception."""
    UNCOLLECTIBLE = "uncollectible"
    """Marked uncollectible: an exception."""


def deal_step(status: BookingStatus, *, invoiced: bool) -> DealStep:
    """The step a deal in ``status`` calls for, given whether the flow has invoiced it."""
    if status is BookingStatus.WON:
        return DealStep.INVOICE
    return DealStep.REOPENED if invoiced else DealStep.NONE


def _partial(paid: Decimal, remaining: Decimal) -> bool:
    return paid > 0 and remaining > 0


def invoice_steps(
    status: BillingInvoiceStatus,
    *,
    paid: Decimal,
    remaining: Decimal,
    reported_partial: bool = False,
    posted: bool = False,
) -> list[InvoiceStep]:
    """The steps, in order, that an invoice in ``status`` calls for.

    Args:
        status: The invoice's status in billing now.
        paid: What billing says was paid.
        remaining: What billing says is left to pay.
        reported_partial: The event being handled reported a partial payment, whatever billing says now.
        posted: The ERP holds the receivable (only read for a voided invoice).
    """
    if status is BillingInvoiceStatus.DRAFT:
        return []
    if status is BillingInvoiceStatus.VOID:
        return [InvoiceStep.REVERSE if posted else InvoiceStep.CANCEL]
    if status is BillingInvoiceStatus.PAID:
        return [InvoiceStep.POST_RECEIVABLE, InvoiceStep.POST_PAYMENT]
    if status is BillingInvoiceStatus.UNCOLLECTIBLE:
        return [InvoiceStep.POST_RECEIVABLE, InvoiceStep.UNCOLLECTIBLE]
    if reported_partial or _partial(paid, remaining):
        return [InvoiceStep.POST_RECEIVABLE, InvoiceStep.PARTIAL_PAYMENT]
    return [InvoiceStep.POST_RECEIVABLE]
