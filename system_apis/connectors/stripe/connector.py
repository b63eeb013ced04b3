"""One Stripe account as a billing source: customers, invoices, payments, and the invoice life cycle.

Reads follow Stripe's lists: newest first, ``limit`` at most 100, paged with
``starting_after`` while ``has_more``; a page of this connector ends at an
invoice id, the next starts after it. Customers are listed exhaustively (an
account has few); invoices and payments page as far as the caller asks.
Each invoice comes with every line: the ten Stripe embeds, and the rest from
``/v1/invoices/{id}/lines``. Customers come expanded (``expand[]``), for
their ERP code, in the same call.

Search (``/v1/…/search``) finds objects by metadata, but it is not
read-after-write: Stripe indexes within a minute. Reads that filter by deal
(``booking_ref``) use it and may lag that long; a lookup that must not lag
(the customer to bill, the invoice a create may already have made) falls back
on a list, which is always current.

Life-cycle calls (finalize, pay, void) read the invoice first: one already
past the step answers as it is, so repeating a call is harmless. Each call's
``Idempotency-Key`` names the invoice and the status it leaves (and, to pay,
the attempt and the method), so a retry of the same step replays, while the
same step tried again from another state runs afresh. A step Stripe refuses in
the invoice's state (void a paid invoice) answers 409 with Stripe's message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from shared.errors import BadRequestError, ConflictError, FinsyncError, NotFoundError
from shared.http_client import Probe, elapsed_ms
from system_apis.connectors.stripe import wire
from system_apis.connectors.stripe.client import StripeClient, StripeRejectedError
from system_apis.connectors.stripe.events import source_event
from system_apis.connectors.stripe.invoicing import Created, create_invoice
from system_apis.connectors.stripe.mapping import (
    BOOKING,
    LINES,
    PARTY,
    PRODUCT,
    Rules,
    customer_record,
    invoice_record,
    payment_record,
    search_literal,
    stripe_id,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    from shared.canonical import BillingInvoice, BillingInvoiceCreate, BillingPayment, Customer
    from shared.events import SourceEvent
    from shared.settings import StripeSourceConfig

__all__ = ("PAGE", "PRODUCTS_TTL", "STRIPE_IDS", "InvoiceFilter", "StripeConnector")

logger = logging.getLogger("finsync.stripe")

PAGE: Final = 100
"""Stripe's largest page."""
PRODUCTS_TTL: Final = 300.0
"""Seconds the product catalogue (Stripe id → ERP code, for lines) is reused before it is listed again."""
STRIPE_IDS: Final = {
    "invoice": re.compile(r"^in_[A-Za-z0-9]{1,200}$"),
    "customer": re.compile(r"^cus_[A-Za-z0-9]{1,200}$"),
    "payment": re.compile(r"^inpay_[A-Za-z0-9]{1,200}$"),
    "event": re.compile(r"^evt_[A-Za-z0-9]{1,200}$"),
}
"""The shape of a Stripe id of each kind of record (``in_…``, ``cus_…``, ``inpay_…``, ``evt_…``)."""


@dataclass(frozen=True)
class InvoiceFilter:
    """Which invoices a list reads."""

    status: str | None = None
    """Stripe's status (``draft``, ``open``, ``paid``, ``void``, ``uncollectible``)."""
    customer: str | None = None
    """The Stripe customer id."""
    booking_ref: str | None = None
    """The CRM deal (``opportunity_id`` metadata): read through search, which may lag by a minute."""
    created_gte: int | None = None
    """Created at or after (Unix seconds)."""
    created_lt: int | None = None
    """Created before (Unix seconds)."""


class StripeConnector:
    """One Stripe account in canonical terms."""

    def __init__(
        self, source: str, config: StripeSourceConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.source = source
        self.config = config
        self.client = StripeClient(config, transport)
        self.rules = Rules(
            source=source, version=config.mapping, entity_by_currency=config.entity_by_currency
        )
        self._products: tuple[float, dict[str, str]] | None = None
        self._creates: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def key(self, operation: str, business_key: str) -> str:
        """The ``Idempotency-Key`` of one business operation: the same on every try, by any replica."""
        return f"finsync:{self.source}:{operation}:{business_key}"

    def source_event(
        self, event: wire.Event, received_at: datetime, via: Literal["push", "sweep"] = "push"
    ) -> SourceEvent | None:
        """The canonical event of a Stripe event (a delivery or a listed one); ``None`` for a type that makes
        none."""
        return source_event(self.rules, event, received_at, via)

    def create_lock(self, external_ref: str) -> asyncio.Lock:
        """One create per business key at a time in this process (across replicas, Stripe's key holds)."""
        lock = self._creates.get(external_ref)
        if lock is None:
            lock = self._creates[external_ref] = asyncio.Lock()
        return lock

    def stripe_ref(self, kind: str, value: str) -> str:
        """The Stripe id in ``value`` (a record id of this source, or a Stripe id); 404 when it is neither."""
        ref = stripe_id(self.source, kind, value)
        if not STRIPE_IDS[kind].match(ref):
            raise NotFoundError(f"no {kind} {value!r} in billing source {self.source!r}", field=f"{kind}_id")
        return ref

    async def probe(self) -> Probe:
        """List one customer, once, without retries; never raises."""
        started = time.perf_counter()
        try:
            await self.client.request("GET", "/v1/customers", params={"limit": 1}, retry=False)
        except FinsyncError as exc:
            return Probe(status="down", latency_ms=elapsed_ms(started), detail=exc.detail)
        return Probe(status="up", latency_ms=elapsed_ms(started), detail="Stripe API answers")

    # -- paging ----------------------------------------------------------------------------------------

    async def page(
        self, path: str, type_: type[Any], params: Mapping[str, Any], limit: int | None, after: str | None
    ) -> tuple[list[Any], str | None]:
        """Up to ``limit`` objects (every one when None) after ``after``, newest first; and the id to page on
        from, or None when the list ended."""
        found: list[Any] = []
        while limit is None or len(found) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(found))
            try:
                page = await self.client.get(
                    path, type_, {**params, "limit": size, **({"starting_after": after} if after else {})}
                )
            except StripeRejectedError as refused:
                if refused.error.param != "starting_after":
                    raise
                raise BadRequestError(
                    f"cursor names {after!r}, which billing source {self.source!r} no longer has",
                    field="cursor",
                ) from refused
            found.extend(page.data)
            if not page.has_more or not page.data:
                return found, None
            after = page.data[-1].id
        return found, after

    async def search(self, path: str, type_: type[Any], query: str, expand: list[str]) -> list[Any]:
        """Every object a search finds (``next_page`` followed)."""
        found: list[Any] = []
        page_token: str | None = None
        while True:
            params = {"query": query, "limit": PAGE, "expand": expand}
            if page_token:
                params["page"] = page_token
            page = await self.client.get(path, type_, params)
            found.extend(page.data)
            if not page.has_more or not page.next_page:
                return found
            page_token = page.next_page

    # -- customers -------------------------------------------------------------------------------------

    async def customers(self) -> list[Customer]:
        """Every customer of the account."""
        found, _ = await self.page("/v1/customers", wire.CustomerList, {}, None, None)
        return [customer_record(self.rules, customer) for customer in found]

    async def customer(self, value: str) -> Customer:
        """One customer by record id, Stripe id or ERP code; 404 when there is none."""
        if value.startswith((f"{self.source}:customer:", "cus_")):
            ref = self.stripe_ref("customer", value)
            found = await self.client.get(f"/v1/customers/{ref}", wire.Customer)
            if found.deleted:
                raise NotFoundError(f"customer {value!r} was deleted from billing source {self.source!r}")
            return customer_record(self.rules, found)
        by_code = await self.stripe_customer(value)
        if by_code is None:
            raise NotFoundError(
                f"billing source {self.source!r} has no customer {value!r}", field="customer_id"
            )
        return customer_record(self.rules, by_code)

    async def stripe_customer(self, code: str) -> wire.Customer | None:
        """The customer whose ``erp_party`` is ``code``: by search, else (search lags) by listing them all.
        With more than one, the oldest (Stripe lists newest first)."""
        query = f"metadata[{search_literal(PARTY)}]:{search_literal(code)}"
        found = await self.search("/v1/customers/search", wire.CustomerSearch, query, [])
        matches = [customer for customer in found if customer.metadata.get(PARTY) == code]
        if not matches:
            every, _ = await self.page("/v1/customers", wire.CustomerList, {}, None, None)
            matches = [customer for customer in every if customer.metadata.get(PARTY) == code]
        if len(matches) > 1:
            logger.warning(
                "billing customers share one ERP code", extra={"code": code, "count": len(matches)}
            )
        return min(matches, key=lambda customer: (customer.created, customer.id)) if matches else None

    # -- products (for the ERP code of a line) ---------------------------------------------------------

    async def products(self) -> dict[str, str]:
        """Stripe product id → ERP product code (``erp_product``), listed at most every :data:`PRODUCTS_TTL`."""
        now = time.monotonic()
        if self._products is not None and now - self._products[0] < PRODUCTS_TTL:
            return self._products[1]
        found, _ = await self.page("/v1/products", wire.ProductList, {}, None, None)
        codes = {product.id: product.metadata[PRODUCT] for product in found if product.metadata.get(PRODUCT)}
        self._products = (now, codes)
        return codes

    # -- invoices --------------------------------------------------------------------------------------

    async def lines(self, invoice: wire.Invoice) -> list[wire.Line]:
        """Every line of ``invoice``: those embedded, then the rest from ``/v1/invoices/{id}/lines``."""
        lines = list(invoice.lines.data)
        more = invoice.lines.has_more
        while more:
            params: dict[str, Any] = {"limit": PAGE}
            if lines:
                params["starting_after"] = lines[-1].id
            page = await self.client.get(f"/v1/invoices/{invoice.id}/lines", wire.LineList, params)
            lines.extend(page.data)
            more = page.has_more and bool(page.data)
        return lines

    async def records(self, invoices: list[wire.Invoice]) -> list[BillingInvoice]:
        """Invoices in canonical terms, each with every line."""
        all_lines = await asyncio.gather(*(self.lines(invoice) for invoice in invoices))
        wants_products = any(
            line.pricing and line.pricing.price_details and not line.metadata.get(PRODUCT)
            for lines in all_lines
            for line in lines
        )
        products = await self.products() if wants_products else {}
        return [
            invoice_record(self.rules, invoice, lines, products)
            for invoice, lines in zip(invoices, all_lines, strict=True)
        ]

    async def stripe_invoice(self, value: str) -> wire.Invoice:
        """The invoice as Stripe holds it now, its customer expanded; 404 when there is none."""
        ref = self.stripe_ref("invoice", value)
        return await self.client.get(f"/v1/invoices/{ref}", wire.Invoice, {"expand": ["customer"]})

    async def invoice(self, value: str) -> BillingInvoice:
        """One invoice by record id or Stripe id, with every line."""
        (record,) = await self.records([await self.stripe_invoice(value)])
        return record

    async def invoices(
        self, where: InvoiceFilter, limit: int | None = None, after: str | None = None
    ) -> tuple[list[BillingInvoice], str | None]:
        """Up to ``limit`` invoices after the invoice ``after``, newest first, and the id to page on from."""
        if where.booking_ref is not None:
            found, after = await self._by_booking(where, limit, after)
        else:
            params: dict[str, Any] = {
                "expand": ["data.customer"],
                "status": where.status,
                "customer": where.customer,
                "created": {"gte": where.created_gte, "lt": where.created_lt},
            }
            found, after = await self.page("/v1/invoices", wire.InvoiceList, params, limit, after)
        return await self.records(found), after

    async def _by_booking(
        self, where: InvoiceFilter, limit: int | None, after: str | None
    ) -> tuple[list[wire.Invoice], str | None]:
        """Invoices of one deal, through search; paged here (a deal has few invoices)."""
        assert where.booking_ref is not None
        clauses = [f"metadata[{search_literal(BOOKING)}]:{search_literal(where.booking_ref)}"]
        if where.status is not None:
            clauses.append(f"status:{search_literal(where.status)}")
        if where.customer is not None:
            clauses.append(f"customer:{search_literal(where.customer)}")
        if where.created_gte is not None:
            clauses.append(f"created>={where.created_gte}")
        if where.created_lt is not None:
            clauses.append(f"created<{where.created_lt}")
        found = await self.search(
            "/v1/invoices/search", wire.InvoiceSearch, " AND ".join(clauses), ["data.customer"]
        )
        ordered = sorted(
            (invoice for invoice in found if invoice.metadata.get(BOOKING) == where.booking_ref),
            key=lambda invoice: (-invoice.created, invoice.id),
        )
        if after is not None:
            ids = [invoice.id for invoice in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        if limit is None or len(ordered) <= limit:
            return ordered, None
        return ordered[:limit], ordered[limit - 1].id

    async def create_invoice(self, payload: BillingInvoiceCreate) -> Created[BillingInvoice]:
        """Create a draft invoice with its lines, once per ``external_ref`` (see :mod:`.invoicing`)."""
        return await create_invoice(self, payload)

    # -- the life cycle --------------------------------------------------------------------------------

    async def finalize(self, value: str) -> BillingInvoice:
        """draft → open. Any other status answers as it is (the invoice was finalized before). A draft that
        lacks lines its create promised (``finsync_lines``) is refused (409): repeat the create first."""
        invoice = await self.stripe_invoice(value)
        if invoice.status != "draft":
            return await self._record(invoice)
        promised = invoice.metadata.get(LINES)
        present = len(await self.lines(invoice))
        if promised is not None and promised.isdigit() and present < int(promised):
            raise ConflictError(
                f"invoice {invoice.id} has {present} of its {promised} lines: a create stopped half-way; "
                "repeat the create (same external_ref) to complete it, then finalize",
                source_ref=invoice.id,
            )
        return await self._step(invoice, "finalize", {"auto_advance": False}, "open")

    async def pay(
        self, value: str, *, payment_method: str | None = None, paid_out_of_band: bool = False
    ) -> BillingInvoice:
        """open or uncollectible → paid: charge ``payment_method`` (else the invoice's or the customer's
        default), or record a payment made outside Stripe. A paid invoice answers as it is; a decline is 422
        with the card's reason, and leaves the invoice open."""
        invoice = await self.stripe_invoice(value)
        if invoice.status == "paid":
            return await self._record(invoice)
        params: dict[str, Any] = {}
        if paid_out_of_band:
            params["paid_out_of_band"] = True
        elif payment_method is not None:
            params["payment_method"] = payment_method
        how = "out-of-band" if paid_out_of_band else payment_method or "default"
        return await self._step(invoice, "pay", params, "paid", f"{invoice.attempt_count}:{how}")

    async def void(self, value: str) -> BillingInvoice:
        """open or uncollectible → void. A void invoice answers as it is."""
        invoice = await self.stripe_invoice(value)
        if invoice.status == "void":
            return await self._record(invoice)
        return await self._step(invoice, "void", {}, "void")

    async def _record(self, invoice: wire.Invoice) -> BillingInvoice:
        (record,) = await self.records([invoice])
        return record

    async def _step(
        self, invoice: wire.Invoice, action: str, params: dict[str, Any], target: str, attempt: str = ""
    ) -> BillingInvoice:
        """POST ``/v1/invoices/{id}/{action}``, keyed by the invoice, its status and ``attempt``; a refusal in
        this state is 409 with Stripe's message, unless a racing call already took the invoice to ``target``."""
        key = self.key(action, ":".join(filter(None, (invoice.id, invoice.status, attempt))))
        try:
            done, _ = await self.client.post(
                f"/v1/invoices/{invoice.id}/{action}",
                wire.Invoice,
                {**params, "expand": ["customer"]},
                idempotency_key=key,
            )
        except StripeRejectedError as refused:
            if refused.status != 400 or refused.error.type != "invalid_request_error":
                raise
            now = await self.stripe_invoice(invoice.id)
            if now.status == target:
                return await self._record(now)
            raise ConflictError(
                f"the billing platform refused to {action} invoice {invoice.id} ({now.status}): "
                f"{refused.error.message}",
                source_message=refused.error.message,
                status=now.status,
            ) from refused
        return await self._record(done)

    # -- payments --------------------------------------------------------------------------------------

    async def payments(
        self,
        *,
        invoice: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> tuple[list[BillingPayment], str | None]:
        """Up to ``limit`` invoice payments after the payment ``after``, newest first, and the id to page on
        from; each with its invoice's customer, entity and deal."""
        params: dict[str, Any] = {
            "expand": ["data.invoice.customer"],
            "invoice": self.stripe_ref("invoice", invoice) if invoice is not None else None,
            "status": status,
        }
        found, after = await self.page("/v1/invoice_payments", wire.InvoicePaymentList, params, limit, after)
        return [payment_record(self.rules, payment) for payment in found], after

    async def payment(self, value: str) -> BillingPayment:
        """One invoice payment by record id or Stripe id."""
        ref = self.stripe_ref("payment", value)
        found = await self.client.get(
            f"/v1/invoice_payments/{ref}", wire.InvoicePayment, {"expand": ["invoice.customer"]}
        )
        return payment_record(self.rules, found)

    # -- events --------------------------------------------------------------------------------------------

    async def events(
        self, created_gte: int | None, limit: int, after: str | None
    ) -> tuple[list[SourceEvent], str | None]:
        """The canonical events of up to ``limit`` of Stripe's ``invoice.*`` events after the event ``after``,
        newest first (those of a type that makes no event left out), and the event id to page on from."""
        params: dict[str, Any] = {"type": "invoice.*", "created": {"gte": created_gte}}
        found, after = await self.page("/v1/events", wire.EventList, params, limit, after)
        now = datetime.now(UTC)
        events = (self.source_event(event, now, "sweep") for event in found)
        return [event for event in events if event is not None], after

    async def aclose(self) -> None:
        """Close the connections."""
        await self.client.aclose()
