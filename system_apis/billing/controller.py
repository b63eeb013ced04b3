"""``/v1/billing/{source}/...``: customers, invoices, payments and invoice events of one billing source.

Reads need ``billing:read``; writes need ``billing:write`` and an
``Idempotency-Key``. Invoices and payments list newest first, as the billing
platform keeps them, and page with ``next_cursor``; amounts are decimal
strings, converted exactly from the platform's minor units. The events read is
the catch-up sweep's: the same canonical events the webhooks push
(:mod:`system_apis.billing.webhooks`), read from the platform's event log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath, JSONBody, Parameter, QueryParameter

from shared.auth.middleware import AUTH_ERRORS, requires
from shared.canonical import (
    BillingInvoice,
    BillingInvoiceCreate,
    BillingInvoiceStatus,
    BillingPayment,
    BillingPaymentStatus,
    Customer,
)
from shared.errors import BadRequestError
from shared.idempotency import IDEMPOTENCY_STATUSES, REPLAYED_RESPONSE_HEADER, IdempotencyKeyRequired
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, decode_cursor, encode_cursor, paginate
from shared.problems import problem_responses
from system_apis.billing.schemas import (
    BillingCustomerPage,
    BillingEventPage,
    BillingInvoicePage,
    BillingPaymentPage,
    PayRequest,
)
from system_apis.bodies import strict_payload
from system_apis.connectors.stripe.connector import STRIPE_IDS, InvoiceFilter
from system_apis.queries import TimeQuery, parse_time

if TYPE_CHECKING:
    from litestar.datastructures import State

    from system_apis.billing.registry import BillingRegistry
    from system_apis.connectors.stripe.connector import StripeConnector

__all__ = ("BillingController",)


SourcePath = Annotated[str, Parameter(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Billing source id.")]
IdPath = Annotated[
    str,
    Parameter(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,255}$",
        description="The record's id as listed, or the platform's own id (`in_…`).",
    ),
]
CustomerPath = Annotated[
    str,
    Parameter(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}$",
        description="The customer's id as listed, the platform's id (`cus_…`), or its ERP code (`C-001`).",
    ),
]

READ_ERRORS = problem_responses(400, 404, 502, 503, 504, *AUTH_ERRORS)
WRITE_ERRORS = problem_responses(400, 404, 409, 415, 422, 502, 503, 504, *AUTH_ERRORS, *IDEMPOTENCY_STATUSES)


def _connector(state: State, source: str) -> StripeConnector:
    registry: BillingRegistry = state.billing
    return registry.get(source)


def _after(cursor: str | None, kind: str) -> str | None:
    """The platform id a ``next_cursor`` of this list holds; 400 when it holds none."""
    if cursor is None:
        return None
    after = decode_cursor(cursor)
    if not STRIPE_IDS[kind].match(after):
        raise BadRequestError("cursor is not valid; pass a next_cursor unchanged", field="cursor")
    return after


def _unix(value: str | None, name: str) -> int | None:
    moment = parse_time(value, name)
    return int(moment.timestamp()) if moment is not None else None


def _cursor(after: str | None) -> str | None:
    return encode_cursor(after) if after is not None else None


class BillingController(Controller):
    """One billing source in canonical terms."""

    path = "/v1/billing/{source:str}"
    tags = ["billing"]  # noqa: RUF012 - Litestar reads a plain class attribute

    # ------------------------------------------------------------- customers

    @get(
        "/customers",
        operation_id="ListBillingCustomers",
        summary="List billing customers",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def list_customers(
        self,
        state: State,
        source: FromPath[SourcePath],
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> BillingCustomerPage:
        """The platform's customers, each coded by the ERP party it stands for (its `erp_party` metadata; a
        customer without one keeps the platform's id as its code)."""
        records = await _connector(state, source).customers()
        return paginate(
            records, key=lambda c: c.id, limit=limit, cursor=cursor, page_type=BillingCustomerPage
        )

    @get(
        "/customers/{customer_id:str}",
        operation_id="GetBillingCustomer",
        summary="Get a billing customer",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def get_customer(
        self, state: State, source: FromPath[SourcePath], customer_id: FromPath[CustomerPath]
    ) -> Customer:
        """One customer by id, by the platform's id, or by its ERP code."""
        return await _connector(state, source).customer(customer_id)

    # ------------------------------------------------------------- invoices

    @get(
        "/invoices",
        operation_id="ListBillingInvoices",
        summary="List billing invoices, newest first",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def list_invoices(
        self,
        state: State,
        source: FromPath[SourcePath],
        status: Annotated[
            BillingInvoiceStatus | None, Parameter(description="Only invoices in this status.")
        ] = None,
        customer: Annotated[
            str | None,
            Parameter(
                pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$",
                description="Only this customer's invoices (its ERP code).",
            ),
        ] = None,
        booking_ref: Annotated[
            str | None,
            Parameter(
                pattern=r"^[!-~]{1,256}$",
                description="Only the invoices of this CRM deal. Read through the platform's search, which "
                "shows an invoice within about a minute of a change.",
            ),
        ] = None,
        created_since: TimeQuery = None,
        created_before: TimeQuery = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> BillingInvoicePage:
        """Invoices newest first, each with every line, its status and transition times, and its amounts.
        Page on with `next_cursor` (keep the same filters). The platform keeps no time of last change:
        `modified_at` is the latest of the creation and the status transitions."""
        connector = _connector(state, source)
        customer_ref: str | None = None
        if customer is not None:
            found = await connector.stripe_customer(customer)
            if found is None:
                return BillingInvoicePage(items=[], next_cursor=None)
            customer_ref = found.id
        where = InvoiceFilter(
            status=status.value if status is not None else None,
            customer=customer_ref,
            booking_ref=booking_ref,
            created_gte=_unix(created_since, "created_since"),
            created_lt=_unix(created_before, "created_before"),
        )
        items, after = await connector.invoices(where, limit, _after(cursor, "invoice"))
        return BillingInvoicePage(items=items, next_cursor=_cursor(after))

    @get(
        "/invoices/{invoice_id:str}",
        operation_id="GetBillingInvoice",
        summary="Get a billing invoice",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def get_invoice(
        self, state: State, source: FromPath[SourcePath], invoice_id: FromPath[IdPath]
    ) -> BillingInvoice:
        """One invoice by id (or the platform's `in_…` id), with every line."""
        return await _connector(state, source).invoice(invoice_id)

    @post(
        "/invoices",
        operation_id="CreateBillingInvoice",
        summary="Create a draft billing invoice by its external reference",
        responses={
            200: ResponseSpec(
                data_container=BillingInvoice,
                description="The invoice already created with this `external_ref` (and content), complete.",
            ),
            **WRITE_ERRORS,
        },
        response_headers=[
            REPLAYED_RESPONSE_HEADER,
            ResponseHeader(name="Location", description="The invoice.", documentation_only=True),
        ],
        **requires("billing:write", idempotency="required"),
    )
    async def create_invoice(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[BillingInvoiceCreate],
        idempotency_key: IdempotencyKeyRequired,
    ) -> Response[BillingInvoice]:
        """Create a draft invoice for the customer (its ERP code) with its lines (201), or answer the invoice
        already created with the same `external_ref` (200). The reference is kept in the invoice itself and
        looked up before anything is made, so a create repeated at any later time (long after the platform
        forgot its idempotency keys) never makes a second invoice; one that an earlier create left short of
        lines is completed (201). The reference with other content answers 409. An unknown customer, another
        currency than the customer's, an entity that does not bill in the currency, or a price finer than the
        currency's minor unit answers 422, and makes nothing."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, BillingInvoiceCreate, "invoice")
        written = await _connector(state, source).create_invoice(payload)
        return Response(
            written.record,
            status_code=201 if written.created else 200,
            headers={"Location": f"/v1/billing/{source}/invoices/{written.record.id}"},
        )

    @post(
        "/invoices/{invoice_id:str}/finalize",
        operation_id="FinalizeBillingInvoice",
        summary="Finalize a draft billing invoice",
        status_code=200,
        responses=WRITE_ERRORS,
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("billing:write", idempotency="required"),
    )
    async def finalize_invoice(
        self,
        state: State,
        source: FromPath[SourcePath],
        invoice_id: FromPath[IdPath],
        idempotency_key: IdempotencyKeyRequired,
    ) -> BillingInvoice:
        """Draft to open: the platform numbers the invoice. An invoice finalized before answers as it is. A
        draft still missing lines of its create answers 409: repeat the create first."""
        del idempotency_key
        return await _connector(state, source).finalize(invoice_id)

    @post(
        "/invoices/{invoice_id:str}/pay",
        operation_id="PayBillingInvoice",
        summary="Pay an open billing invoice",
        status_code=200,
        responses=WRITE_ERRORS,
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("billing:write", idempotency="required"),
    )
    async def pay_invoice(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        invoice_id: FromPath[IdPath],
        idempotency_key: IdempotencyKeyRequired,
        data: Annotated[
            PayRequest | None, Body(description="How to pay; no body: the default method.")
        ] = None,
    ) -> BillingInvoice:
        """Open (or uncollectible) to paid: charge the payment method, or record a payment made outside the
        platform (`paid_out_of_band`). A paid invoice answers as it is. A draft or a void invoice answers 409
        with the platform's reason; a declined card 422 with the card's, and the invoice stays open."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        how = await strict_payload(request, PayRequest, "payment request", default=PayRequest())
        return await _connector(state, source).pay(
            invoice_id, payment_method=how.payment_method, paid_out_of_band=how.paid_out_of_band
        )

    @post(
        "/invoices/{invoice_id:str}/void",
        operation_id="VoidBillingInvoice",
        summary="Void an open billing invoice",
        status_code=200,
        responses=WRITE_ERRORS,
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("billing:write", idempotency="required"),
    )
    async def void_invoice(
        self,
        state: State,
        source: FromPath[SourcePath],
        invoice_id: FromPath[IdPath],
        idempotency_key: IdempotencyKeyRequired,
    ) -> BillingInvoice:
        """Open (or uncollectible) to void. A void invoice answers as it is; a draft or a paid one answers
        409 with the platform's reason."""
        del idempotency_key
        return await _connector(state, source).void(invoice_id)

    # ------------------------------------------------------------- events

    @get(
        "/events",
        operation_id="ListBillingEvents",
        summary="List the billing platform's invoice events, newest first (the catch-up read)",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def list_events(
        self,
        state: State,
        source: FromPath[SourcePath],
        created_since: TimeQuery = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> BillingEventPage:
        """The platform's `invoice.*` events (it keeps 30 days of them), newest first, as the canonical events
        its webhooks push: the same `id` and `dedupe_key`, with `via` `sweep`. Feed the ones the stream
        missed into the same path. Types that make no event are left out, so a page may hold fewer than
        `limit`; page on with `next_cursor` (keep `created_since`)."""
        items, after = await _connector(state, source).events(
            _unix(created_since, "created_since"), limit, _after(cursor, "event")
        )
        return BillingEventPage(items=items, next_cursor=_cursor(after))

    # ------------------------------------------------------------- payments

    @get(
        "/payments",
        operation_id="ListBillingPayments",
        summary="List payments on billing invoices, newest first",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def list_payments(
        self,
        state: State,
        source: FromPath[SourcePath],
        invoice: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,255}$",
                description="Only the payments of this invoice (its id, or the platform's `in_…`).",
            ),
        ] = None,
        status: Annotated[
            BillingPaymentStatus | None, Parameter(description="Only payments in this status.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> BillingPaymentPage:
        """Payments applied to invoices, newest first, each with its invoice's customer, entity and deal. Page
        on with `next_cursor` (keep the same filters)."""
        items, after = await _connector(state, source).payments(
            invoice=invoice,
            status=status.value if status is not None else None,
            limit=limit,
            after=_after(cursor, "payment"),
        )
        return BillingPaymentPage(items=items, next_cursor=_cursor(after))

    @get(
        "/payments/{payment_id:str}",
        operation_id="GetBillingPayment",
        summary="Get a payment on a billing invoice",
        responses=READ_ERRORS,
        **requires("billing:read"),
    )
    async def get_payment(
        self, state: State, source: FromPath[SourcePath], payment_id: FromPath[IdPath]
    ) -> BillingPayment:
        """One payment by id (or the platform's `inpay_…` id)."""
        return await _connector(state, source).payment(payment_id)
