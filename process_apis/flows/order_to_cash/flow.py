"""Order to cash on the event path: a won deal becomes a billing invoice, then an ERP receivable and payment.

:class:`OrderToCash` subscribes two handlers to the event path:

- ``crm.booking.changed``: a deal that is won (read again from the CRM, with
  its lines) gets its billing customer checked, its ERP party found or created,
  and its billing invoice created, idempotent by the deal's id;
- ``billing.invoice.*`` (finalized, paid, voided, payment failed, updated,
  marked uncollectible): the invoice is read again from billing and
  :func:`~process_apis.flows.order_to_cash.machine.invoice_steps` says what
  the ERP still needs: the receivable, the payment, a reversal, or an
  exception.

Every write carries a business key, so a duplicate or a retry finds the effect
already made: the billing invoice ``o2c:{crm}:{deal}``, the receivable
``o2c:{billing}:{invoice}``, its payment ``…:payment`` and its reversal
``…:reversal``. The ``Idempotency-Key`` of each call is that key and the hash
of the payload, so a changed payload is a new call whose effect the source
still refuses to make twice.

Each deal has one trace id, derived from its CRM id, and every step is audited
under it, intent before the effect and outcome after, from the deal to the ERP
payment: ``GET /v1/audit/traces/{trace_id}`` shows the whole path. The same trail
tells the flow whether it invoiced a deal, which a reopened deal needs to know.
Business failures raise :class:`~process_apis.events.EventRejectedError`, so
the event lands in the exception queue with its reason code; anything else is
retried by the event path.
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

from process_apis.events.handlers import EventRejectedError
from process_apis.flows.order_to_cash.machine import DealStep, InvoiceStep, deal_step, invoice_steps
from process_apis.ledger.records import AuditEventCreate, payload_hash
from shared import errors
from shared.canonical import (
    BillingInvoiceCreate,
    CustomerCreate,
    InvoiceCreate,
    JournalEntryCreate,
    PaymentCreate,
    minor_units,
)
from shared.canonical.billing import BillingInvoiceLineCreate, BillingInvoiceStatus
from shared.canonical.crm import BookingStatus
from shared.canonical.transactions import DocumentKind, DocumentRef, InvoiceLineCreate, JournalLine
from shared.events import EventType

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from process_apis.clients.system import SystemClient
    from process_apis.events.handlers import EventHandlers
    from process_apis.flows.order_to_cash.mapping import OrderToCashMap
    from process_apis.ledger.store import LedgerStore
    from shared.canonical import BillingInvoice, Booking, Invoice
    from shared.events import SourceEvent
    from shared.settings import OrderToCashSettings

__all__ = ("INVOICE_EVENTS", "OrderToCash")

INVOICE_EVENTS = (
    EventType.INVOICE_FINALIZED,
    EventType.INVOICE_PAID,
    EventType.INVOICE_VOIDED,
    EventType.INVOICE_PAYMENT_FAILED,
    EventType.INVOICE_UPDATED,
    EventType.INVOICE_MARKED_UNCOLLECTIBLE,
)
"""The billing events the flow acts on (``created`` is its own doing: the invoice is still a draft)."""
PREFIX = "o2c"
"""First part of every business key the flow writes."""
_TRACE_NAMESPACE = uuid.UUID("9b1c3f4e-2d0a-4c55-8f1e-0a2b3c4d5e6f")
"""Namespace of the deals' trace ids (UUIDv5 of the deal's key, as 32 hex digits like a W3C trace id)."""
_ERP_LOOKBACK = timedelta(days=1)
"""How far before the billing invoice's creation the ERP's receivables are read when looking for its own."""


def _whole(value: Decimal) -> int | None:
    return int(value) if value == value.to_integral_value() and value >= 1 else None


class OrderToCash:
    """The flow's handlers, over the system layer's API and the ledger's audit trail."""

    def __init__(
        self,
        system: SystemClient,
        store: LedgerStore,
        settings: OrderToCashSettings,
        mapping: OrderToCashMap,
    ) -> None:
        """Configure the flow (no I/O).

        Args:
            system: The system layer, the flow's only way to the sources.
            store: The ledger, for the audit trail.
            settings: Which sources the flow joins.
            mapping: Legal entities and the reversal's accounts.
        """
        self._system = system
        self._store = store
        self._settings = settings
        self._map = mapping
        self._parties: set[str] = set()

    # -- wiring --------------------------------------------------------------------------------------

    def subscribe(self, handlers: EventHandlers) -> None:
        """Run the flow for bookings and for the billing invoice events it acts on."""
        handlers.subscribe(self.on_booking, EventType.BOOKING_CHANGED)
        handlers.subscribe(self.on_invoice, *INVOICE_EVENTS)

    def unsubscribe(self, handlers: EventHandlers) -> None:
        """Stop running the flow."""
        handlers.unsubscribe(self.on_booking)
        handlers.unsubscribe(self.on_invoice)

    def trace_id(self, booking_ref: str) -> str:
        """The one trace id of a deal, from the CRM's id of it: every step of its way is audited under it."""
        return uuid.uuid5(_TRACE_NAMESPACE, f"{PREFIX}:{self._settings.crm}:{booking_ref}").hex

    def billing_ref(self, booking_ref: str) -> str:
        """The business key of a deal's billing invoice (its ``finsync_ref`` in billing)."""
        return f"{PREFIX}:{self._settings.crm}:{booking_ref}"

    def receivable_ref(self, invoice_ref: str) -> str:
        """The business key of a billing invoice's receivable in the ERP."""
        return f"{PREFIX}:{self._settings.billing}:{invoice_ref}"

    # -- the deal ------------------------------------------------------------------------------------

    async def on_booking(self, event: SourceEvent) -> None:
        """A deal changed: invoice it when it is won now; an exception when it was invoiced and is not won."""
        change = event.booking
        if change is None or event.source != self._settings.crm:
            return
        trace = self.trace_id(change.booking_ref)
        # Most changes are of deals that are not won and never were: no read for them.
        if change.status is not BookingStatus.WON and not await self._invoiced(trace):
            return
        booking = await self._read(
            "unknown-booking",
            self._system.booking(self._settings.crm, f"{self._settings.crm}:booking:{change.booking_ref}"),
        )
        invoiced = booking.status is not BookingStatus.WON and await self._invoiced(trace)
        step = deal_step(booking.status, invoiced=invoiced)
        if step is DealStep.INVOICE:
            await self._invoice(booking, trace, actor=event.source, event_id=event.id)
        elif step is DealStep.REOPENED:
            await self._reject(
                trace,
                step,
                "deal-reopened",
                f"deal {booking.source_ref} is {booking.status} ({booking.stage}) after it was invoiced",
                source_ref=booking.id,
                actor=event.source,
            )

    async def _invoiced(self, trace: str) -> bool:
        return any(
            each.step == DealStep.INVOICE and each.kind == "outcome" and each.target_ref is not None
            for each in await self._store.trace(trace)
        )

    async def _invoice(self, booking: Booking, trace: str, *, actor: str, event_id: str) -> None:
        entity = self._map.entity(booking.entity)
        if entity is None:
            await self._reject(
                trace,
                DealStep.INVOICE,
                "unmapped-entity",
                f"deal {booking.source_ref}: legal entity {booking.entity!r} is not in map {self._map.version}",
                source_ref=booking.id,
                actor=actor,
            )
        if booking.customer is None:
            await self._reject(
                trace,
                DealStep.INVOICE,
                "unknown-customer",
                f"deal {booking.source_ref}: its account carries no customer code",
                source_ref=booking.id,
                actor=actor,
            )
        lines = await self._billing_lines(booking, trace, actor)
        customer = await self._read(
            "unknown-billing-customer",
            self._system.billing_customer(self._settings.billing, booking.customer),
        )
        await self._party(trace, booking.customer, customer.name, customer.currency)
        payload = BillingInvoiceCreate(
            external_ref=self.billing_ref(booking.source_ref),
            customer=booking.customer,
            entity=entity,
            currency=booking.currency,
            lines=lines,
            booking_ref=booking.source_ref,
            description=booking.name,
        )
        detail: dict[str, Any] = {"event_id": event_id, "external_ref": payload.external_ref}
        await self._audit(trace, DealStep.INVOICE, "intent", booking.id, None, actor, payload, detail)
        async with self._refused(trace, DealStep.INVOICE, "billing-refused", actor):
            written = await self._system.create_billing_invoice(
                self._settings.billing, payload, self._key(payload.external_ref, payload)
            )
        detail = {**detail, "created": written.created, "invoice_ref": written.record.source_ref}
        await self._audit(
            trace, DealStep.INVOICE, "outcome", booking.id, written.record.id, actor, payload, detail
        )

    async def _billing_lines(
        self, booking: Booking, trace: str, actor: str
    ) -> tuple[BillingInvoiceLineCreate, ...]:
        """The deal's lines as billing takes them: whole quantities, a unit price that gives the line's amount."""
        lines: list[BillingInvoiceLineCreate] = []
        for line in booking.lines:
            quantity = _whole(line.quantity)
            unit_price = line.amount / line.quantity if line.quantity else line.amount
            exact = unit_price.quantize(Decimal(1).scaleb(-minor_units(booking.currency)))
            if quantity is None or exact * quantity != line.amount:
                await self._reject(
                    trace,
                    DealStep.INVOICE,
                    "unbillable-line",
                    f"deal {booking.source_ref}, line {line.source_ref}: {line.quantity} x for {line.amount} "
                    "is not a whole quantity at an exact unit price",
                    source_ref=booking.id,
                    actor=actor,
                )
            lines.append(
                BillingInvoiceLineCreate(
                    description=line.description, quantity=quantity, unit_price=exact, product=line.product
                )
            )
        if not lines:
            await self._reject(
                trace,
                DealStep.INVOICE,
                "no-lines",
                f"deal {booking.source_ref} is won with no products to bill",
                source_ref=booking.id,
                actor=actor,
            )
        return tuple(lines)

    async def _party(self, trace: str, code: str, name: str, currency: str | None) -> None:
        """Find the ERP party by its code, or create it by its external reference."""
        if code in self._parties:
            return
        if not any(each.code == code for each in await self._system.erp_customers(self._settings.erp)):
            payload = CustomerCreate(
                external_ref=f"{PREFIX}:party:{code}", code=code, name=name, currency=currency
            )
            async with self._refused(trace, DealStep.INVOICE, "erp-party-refused", "order-to-cash"):
                await self._system.create_erp_customer(
                    self._settings.erp, payload, self._key(payload.external_ref, payload)
                )
        self._parties.add(code)

    # -- the invoice ---------------------------------------------------------------------------------

    async def on_invoice(self, event: SourceEvent) -> None:
        """A billing invoice changed: bring the ERP to where the invoice stands now."""
        change = event.invoice
        if change is None or change.booking_ref is None or event.source != self._settings.billing:
            return
        if change.business_ref is not None and not change.business_ref.startswith(f"{PREFIX}:"):
            return  # billed through finsync, but not by this flow
        invoice = await self._read(
            "unknown-invoice", self._system.billing_invoice(self._settings.billing, change.invoice_ref)
        )
        if invoice.booking_ref is None or invoice.external_ref != self.billing_ref(invoice.booking_ref):
            return  # not an invoice of this flow
        trace = self.trace_id(invoice.booking_ref)
        actor = event.source
        if event.type is EventType.INVOICE_PAYMENT_FAILED:
            # Billing retries the payment and the invoice stays open: recorded, not an exception.
            detail = {"event_id": event.id, "amount_due": str(change.amount_due)}
            await self._audit(trace, "payment-failed", "outcome", invoice.id, None, actor, detail, detail)
        reported_partial = (
            change.status is BillingInvoiceStatus.OPEN
            and change.amount_paid > 0
            and change.amount_remaining > 0
        )
        receivable = None
        if invoice.status is BillingInvoiceStatus.VOID:
            receivable = await self._receivable(invoice, trace)
        steps = invoice_steps(
            invoice.status,
            paid=invoice.amount_paid,
            remaining=invoice.amount_remaining,
            reported_partial=reported_partial,
            posted=receivable is not None,
        )
        for step in steps:
            if step is InvoiceStep.POST_RECEIVABLE:
                await self._post_receivable(invoice, trace, actor)
            elif step is InvoiceStep.POST_PAYMENT:
                await self._post_payment(invoice, trace, actor)
            elif step is InvoiceStep.REVERSE:
                assert receivable is not None
                await self._reverse(invoice, receivable, trace, actor)
            elif step is InvoiceStep.CANCEL:
                detail = {"event_id": event.id, "voided_at": str(invoice.voided_at)}
                await self._audit(trace, step, "outcome", invoice.id, None, actor, detail, detail)
            else:
                paid = change.amount_paid if reported_partial else invoice.amount_paid
                await self._reject(
                    trace,
                    step,
                    str(step),
                    f"billing invoice {invoice.source_ref} of deal {invoice.booking_ref}: "
                    + (
                        f"paid {paid} of {invoice.amount_due} {invoice.currency}"
                        if step is InvoiceStep.PARTIAL_PAYMENT
                        else "marked uncollectible; its receivable stays open in the ERP"
                    ),
                    source_ref=invoice.id,
                    actor=actor,
                )

    def _entity(self, invoice: BillingInvoice) -> str:
        if invoice.entity is None or invoice.customer is None:
            raise EventRejectedError(
                "unmapped-entity", f"billing invoice {invoice.source_ref} names no legal entity or customer"
            )
        return invoice.entity

    async def _post_receivable(self, invoice: BillingInvoice, trace: str, actor: str) -> None:
        entity = self._entity(invoice)
        assert invoice.customer is not None
        await self._party(trace, invoice.customer, invoice.customer, None)
        stamp = invoice.finalized_at or invoice.paid_at or datetime.now(UTC)
        payload = InvoiceCreate(
            external_ref=self.receivable_ref(invoice.source_ref),
            entity=entity,
            customer=invoice.customer,
            invoice_date=stamp.date(),
            due_date=invoice.due_date,
            currency=invoice.currency,
            lines=tuple(
                InvoiceLineCreate(
                    description=line.description or line.product or "Billed",
                    quantity=line.quantity,
                    unit_price=line.unit_price
                    if line.unit_price is not None
                    else line.amount / line.quantity,
                    product=line.product,
                )
                for line in invoice.lines
            ),
            description=f"Billing invoice {invoice.number or invoice.source_ref}, deal {invoice.booking_ref}",
        )
        step = InvoiceStep.POST_RECEIVABLE
        await self._audit(trace, step, "intent", invoice.id, None, actor, payload, None)
        async with self._refused(trace, step, "erp-refused", actor):
            written = await self._system.post_erp_invoice(
                self._settings.erp, payload, self._key(payload.external_ref, payload)
            )
        detail = {
            "created": written.created,
            "external_ref": payload.external_ref,
            "total": str(written.record.total_amount),
        }
        await self._audit(trace, step, "outcome", invoice.id, written.record.id, actor, payload, detail)

    async def _post_payment(self, invoice: BillingInvoice, trace: str, actor: str) -> None:
        receivable = self.receivable_ref(invoice.source_ref)
        payload = PaymentCreate(
            external_ref=f"{receivable}:payment",
            entity=self._entity(invoice),
            settles=DocumentRef(kind=DocumentKind.INVOICE, external_ref=receivable),
            amount=invoice.amount_paid,
            currency=invoice.currency,
            payment_date=(invoice.paid_at or datetime.now(UTC)).date(),
            description=f"Billing invoice {invoice.number or invoice.source_ref} paid",
        )
        step = InvoiceStep.POST_PAYMENT
        await self._audit(trace, step, "intent", invoice.id, None, actor, payload, None)
        async with self._refused(trace, step, "erp-refused", actor):
            written = await self._system.record_erp_payment(
                self._settings.erp, payload, self._key(payload.external_ref, payload)
            )
        detail = {"created": written.created, "external_ref": payload.external_ref}
        await self._audit(trace, step, "outcome", invoice.id, written.record.id, actor, payload, detail)

    async def _receivable(self, invoice: BillingInvoice, trace: str) -> Invoice | None:
        """The ERP's receivable of ``invoice``, read from the ERP itself (the truth a reversal needs): by the id
        the trail recorded when it was posted, else (the outcome lost in a crash) by a read of the entity's
        receivables changed since the invoice was created."""
        wanted = self.receivable_ref(invoice.source_ref)
        for event in await self._store.trace(trace):
            if event.step == InvoiceStep.POST_RECEIVABLE and event.kind == "outcome" and event.target_ref:
                found = await self._system.erp_invoice(self._settings.erp, event.target_ref)
                if found.external_ref == wanted:
                    return found
        since = invoice.created_at - _ERP_LOOKBACK
        for each in await self._system.erp_invoices(self._settings.erp, self._entity(invoice), since):
            if each.external_ref == wanted:
                return each
        return None

    async def _reverse(self, invoice: BillingInvoice, receivable: Invoice, trace: str, actor: str) -> None:
        step = InvoiceStep.REVERSE
        if receivable.tax_amount != 0:
            await self._reject(
                trace,
                step,
                "taxed-reversal",
                f"receivable {receivable.id} carries tax: a voided invoice's credit note is a finance task",
                source_ref=invoice.id,
                actor=actor,
            )
        assert invoice.customer is not None
        currency = receivable.currency
        debits = [
            JournalLine(
                account_code=line.account_code,
                debit=line.amount,
                credit=Decimal(0),
                currency=currency,
                description=line.description,
            )
            for line in receivable.lines
        ]
        credit = JournalLine(
            account_code=self._map.receivable_account,
            debit=Decimal(0),
            credit=receivable.total_amount,
            currency=currency,
            party=receivable.customer,
        )
        payload = JournalEntryCreate(
            external_ref=f"{self.receivable_ref(invoice.source_ref)}:reversal",
            entity=receivable.entity,
            posting_date=(invoice.voided_at or datetime.now(UTC)).date(),
            description=f"Reversal of {receivable.number or receivable.id}: billing invoice {invoice.source_ref} voided",
            lines=(*debits, credit),
        )
        await self._audit(trace, step, "intent", invoice.id, receivable.id, actor, payload, None)
        async with self._refused(trace, step, "erp-refused", actor):
            written = await self._system.post_journal_entry(
                self._settings.erp, payload, self._key(payload.external_ref, payload)
            )
        detail = {"created": written.created, "external_ref": payload.external_ref, "reverses": receivable.id}
        await self._audit(trace, step, "outcome", invoice.id, written.record.id, actor, payload, detail)

    # -- plumbing ------------------------------------------------------------------------------------

    @staticmethod
    def _key(external_ref: str, payload: object) -> str:
        """The ``Idempotency-Key`` of a write: its business key and the hash of what it sends."""
        return f"{external_ref}:{payload_hash(payload)[:16]}"

    async def _read(self, reason: str, call: Any) -> Any:
        """Await a read; a 404 is the business failure ``reason``, other failures are transient."""
        try:
            return await call
        except errors.UpstreamRejectedError as exc:
            if exc.extra.get("upstream_status") == 404:
                raise EventRejectedError(reason, str(exc)) from exc
            raise

    @asynccontextmanager
    async def _refused(self, trace: str, step: str, reason: str, actor: str) -> AsyncIterator[None]:
        """A write the system layer refuses (a 4xx: the source said no) is a business failure, audited under the
        deal's trace with the source's own words and never retried blindly. A 408, a 429 or the same
        ``Idempotency-Key`` still running elsewhere (a claimed job, a replay) is transient: tried again."""
        try:
            yield
        except errors.UpstreamRejectedError as exc:
            if exc.extra.get("upstream_status") in (408, 429) or "idempotency-key-in-use" in str(exc):
                raise
            await self._reject(trace, step, reason, str(exc), source_ref=None, actor=actor)

    async def _reject(
        self, trace: str, step: str, reason: str, message: str, *, source_ref: str | None, actor: str
    ) -> NoReturn:
        """Audit the exception under the deal's trace, then raise it."""
        detail = {"exception": reason, "message": message}
        await self._audit(trace, step, "outcome", source_ref, None, actor, detail, detail)
        raise EventRejectedError(reason, message)

    async def _audit(
        self,
        trace: str,
        step: str,
        kind: str,
        source_ref: str | None,
        target_ref: str | None,
        actor: str,
        payload: object,
        detail: dict[str, Any] | None,
    ) -> None:
        await self._store.add_audit_events(
            [
                AuditEventCreate(
                    trace_id=trace,
                    step=str(step),
                    kind=kind,  # type: ignore[arg-type]
                    source_ref=source_ref,
                    target_ref=target_ref,
                    mapping_version=self._map.version,
                    actor=actor,
                    payload_hash=payload_hash(payload),
                    detail=detail,
                )
            ]
        )
