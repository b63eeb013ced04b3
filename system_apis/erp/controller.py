"""``/v1/erp/{source}/...``: master data, journal entries and actuals of one ERP source, in canonical terms.

Reads need ``erp:read``; writes need ``erp:write`` and an ``Idempotency-Key``.
Lists use the cursor envelope; the large reads (journal entries, balances) also
stream as ``application/x-ndjson`` when asked with ``Accept``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from shared.auth.middleware import AUTH_ERRORS, requires
from shared.canonical import (
    Account,
    AccountType,
    Balance,
    CostCenter,
    Customer,
    CustomerCreate,
    DocumentState,
    FiscalPeriod,
    Invoice,
    InvoiceCreate,
    JournalEntry,
    JournalEntryCreate,
    LegalEntity,
    Payment,
    PaymentCreate,
    PeriodState,
    Product,
    Supplier,
    SupplierCreate,
)
from shared.errors import NotFoundError
from shared.idempotency import IDEMPOTENCY_STATUSES, REPLAYED_RESPONSE_HEADER, IdempotencyKeyRequired
from shared.ndjson import ndjson, wants_ndjson
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, paginate
from shared.problems import problem_responses
from system_apis.bodies import strict_payload
from system_apis.connectors.tryton.invoicing import get_invoice, invoice_page, post_invoice
from system_apis.connectors.tryton.parties import create_party
from system_apis.connectors.tryton.payments import record_payment
from system_apis.connectors.tryton.posting import post_journal_entry
from system_apis.erp.entries import read_entries
from system_apis.erp.schemas import (
    AccountPage,
    BalancePage,
    CostCenterPage,
    CustomerPage,
    FiscalPeriodPage,
    InvoicePage,
    JournalEntryPage,
    LegalEntityPage,
    ProductPage,
    SupplierPage,
)
from system_apis.queries import FeedCursor, ModifiedSince, feed_answer, parse_time

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar.datastructures import State

    from system_apis.connectors.tryton.connector import TrytonConnector
    from system_apis.erp.readers import ActualsReader
    from system_apis.erp.registry import ErpRegistry

__all__ = ("ErpController",)

R = TypeVar("R", bound=Any)
P = TypeVar("P", bound=Page[Any])
T = TypeVar("T")

SourcePath = Annotated[str, Parameter(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="ERP source id.")]
RecordPath = Annotated[str, Parameter(min_length=1, max_length=256, description="Record id, as listed.")]
EntityQuery = Annotated[
    str | None, Parameter(max_length=64, description="Only this legal entity (its code, such as `FS-US`).")
]
PeriodCodeQuery = Annotated[
    str | None, Parameter(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="Fiscal period code, `YYYY-MM`.")
]

READ_ERRORS = problem_responses(400, 404, 502, 503, 504, *AUTH_ERRORS)
WRITE_ERRORS = problem_responses(400, 404, 409, 415, 422, 502, 503, 504, *AUTH_ERRORS, *IDEMPOTENCY_STATUSES)


def _connector(state: State, source: str) -> TrytonConnector:
    registry: ErpRegistry = state.erp
    return registry.get(source)


def _reader(state: State, source: str) -> ActualsReader:
    registry: ErpRegistry = state.erp
    return registry.reader(source)


def _listed(
    records: list[R], modified_since: datetime | None, limit: int, cursor: str | None, page_type: type[P]
) -> P:
    if modified_since is not None:
        records = [record for record in records if record.modified_at >= modified_since]
    return paginate(records, key=lambda record: record.id, limit=limit, cursor=cursor, page_type=page_type)


def _one(records: list[R], record_id: str, what: str) -> R:
    for record in records:
        if record.id == record_id:
            return record
    raise NotFoundError(f"no {what} {record_id!r}")


async def _in_cost_center(batches: AsyncIterator[list[Balance]], code: str) -> AsyncIterator[list[Balance]]:
    async for batch in batches:
        yield [balance for balance in batch if balance.cost_center == code]


async def _chained(head: list[Balance], rest: AsyncIterator[list[Balance]]) -> AsyncIterator[list[Balance]]:
    yield head
    async for batch in rest:
        yield batch


def _write_responses(record: type[Any], existing: str) -> dict[int, ResponseSpec]:
    """What a create documents besides its 201: 200 with ``existing``, the record already there, and the errors."""
    return {200: ResponseSpec(data_container=record, description=existing), **WRITE_ERRORS}


class ErpController(Controller):
    """One ERP source in canonical terms."""

    path = "/v1/erp/{source:str}"
    tags = ["erp"]  # noqa: RUF012 - Litestar reads a plain class attribute

    # ------------------------------------------------------------- master data

    @get(
        "/legal-entities",
        operation_id="ListLegalEntities",
        summary="List legal entities",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_legal_entities(
        self,
        state: State,
        source: FromPath[SourcePath],
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> LegalEntityPage:
        """The legal entities (Tryton companies) of the ERP."""
        records = await _reader(state, source).legal_entities()
        return _listed(records, None, limit, cursor, LegalEntityPage)

    @get(
        "/legal-entities/{entity_id:str}",
        operation_id="GetLegalEntity",
        summary="Get a legal entity",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_legal_entity(
        self, state: State, source: FromPath[SourcePath], entity_id: FromPath[RecordPath]
    ) -> LegalEntity:
        """One legal entity by id."""
        return _one(await _reader(state, source).legal_entities(), entity_id, "legal entity")

    @get(
        "/accounts",
        operation_id="ListAccounts",
        summary="List accounts",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_accounts(
        self,
        state: State,
        source: FromPath[SourcePath],
        entity: EntityQuery = None,
        type: Annotated[AccountType | None, Parameter(description="Only accounts of this type.")] = None,  # noqa: A002
        leaf: Annotated[
            bool | None, Parameter(description="Only leaf (true) or parent (false) accounts.")
        ] = None,
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> AccountPage:
        """Accounts with a type (view and off-balance accounts hold no actuals and are left out)."""
        records = await _connector(state, source).accounts(entity)
        records = [
            account
            for account in records
            if (type is None or account.type == type) and (leaf is None or account.is_leaf == leaf)
        ]
        return _listed(records, parse_time(modified_since), limit, cursor, AccountPage)

    @get(
        "/accounts/{account_id:str}",
        operation_id="GetAccount",
        summary="Get an account",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_account(
        self, state: State, source: FromPath[SourcePath], account_id: FromPath[RecordPath]
    ) -> Account:
        """One account by id."""
        return _one(await _connector(state, source).accounts(), account_id, "account")

    @get(
        "/cost-centers",
        operation_id="ListCostCenters",
        summary="List cost centres",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_cost_centers(
        self,
        state: State,
        source: FromPath[SourcePath],
        entity: EntityQuery = None,
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> CostCenterPage:
        """Cost centres: the analytic accounts under the cost-centre root of the mapping."""
        records = await _connector(state, source).cost_centers(entity)
        return _listed(records, parse_time(modified_since), limit, cursor, CostCenterPage)

    @get(
        "/cost-centers/{cost_center_id:str}",
        operation_id="GetCostCenter",
        summary="Get a cost centre",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_cost_center(
        self, state: State, source: FromPath[SourcePath], cost_center_id: FromPath[RecordPath]
    ) -> CostCenter:
        """One cost centre by id."""
        return _one(await _connector(state, source).cost_centers(), cost_center_id, "cost centre")

    @get(
        "/customers",
        operation_id="ListCustomers",
        summary="List customers",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_customers(
        self,
        state: State,
        source: FromPath[SourcePath],
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> CustomerPage:
        """Customers: the parties in the mapping's customer category."""
        records = await _connector(state, source).parties("customer")
        return _listed(records, parse_time(modified_since), limit, cursor, CustomerPage)

    @get(
        "/customers/{customer_id:str}",
        operation_id="GetCustomer",
        summary="Get a customer",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_customer(
        self, state: State, source: FromPath[SourcePath], customer_id: FromPath[RecordPath]
    ) -> Customer:
        """One customer by id."""
        record = _one(await _connector(state, source).parties("customer"), customer_id, "customer")
        assert isinstance(record, Customer)
        return record

    @post(
        "/customers",
        operation_id="CreateCustomer",
        summary="Create a customer by its external reference",
        responses=_write_responses(Customer, "The customer already created with this `external_ref`."),
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("erp:write", idempotency="required"),
    )
    async def create_customer(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[CustomerCreate],
        idempotency_key: IdempotencyKeyRequired,
    ) -> Response[Customer]:
        """Create a customer (201), or answer the customer already created with the same `external_ref` (200).
        The ERP itself enforces `external_ref` as unique, so neither a retry nor a race creates two; the
        reference used with another name or code, or by a supplier, answers 409. A currency that is not an
        active ISO 4217 code, or a country the ERP does not have, answers 422."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, CustomerCreate, "customer")
        written = await create_party(_connector(state, source), "customer", payload)
        assert isinstance(written.record, Customer)
        return Response(written.record, status_code=201 if written.created else 200)

    @get(
        "/suppliers",
        operation_id="ListSuppliers",
        summary="List suppliers",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_suppliers(
        self,
        state: State,
        source: FromPath[SourcePath],
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> SupplierPage:
        """Suppliers: the parties in the mapping's supplier category."""
        records = await _connector(state, source).parties("supplier")
        return _listed(records, parse_time(modified_since), limit, cursor, SupplierPage)

    @get(
        "/suppliers/{supplier_id:str}",
        operation_id="GetSupplier",
        summary="Get a supplier",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_supplier(
        self, state: State, source: FromPath[SourcePath], supplier_id: FromPath[RecordPath]
    ) -> Supplier:
        """One supplier by id."""
        record = _one(await _connector(state, source).parties("supplier"), supplier_id, "supplier")
        assert isinstance(record, Supplier)
        return record

    @post(
        "/suppliers",
        operation_id="CreateSupplier",
        summary="Create a supplier by its external reference",
        responses=_write_responses(Supplier, "The supplier already created with this `external_ref`."),
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("erp:write", idempotency="required"),
    )
    async def create_supplier(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[SupplierCreate],
        idempotency_key: IdempotencyKeyRequired,
    ) -> Response[Supplier]:
        """Create a supplier (201), or answer the supplier already created with the same `external_ref` (200).
        The ERP itself enforces `external_ref` as unique, so neither a retry nor a race creates two; the
        reference used with another name or code, or by a customer, answers 409. A currency that is not an
        active ISO 4217 code, or a country the ERP does not have, answers 422."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, SupplierCreate, "supplier")
        written = await create_party(_connector(state, source), "supplier", payload)
        assert isinstance(written.record, Supplier)
        return Response(written.record, status_code=201 if written.created else 200)

    @get(
        "/products",
        operation_id="ListProducts",
        summary="List products",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_products(
        self,
        state: State,
        source: FromPath[SourcePath],
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> ProductPage:
        """Products and services."""
        records = await _connector(state, source).products()
        return _listed(records, parse_time(modified_since), limit, cursor, ProductPage)

    @get(
        "/products/{product_id:str}",
        operation_id="GetProduct",
        summary="Get a product",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_product(
        self, state: State, source: FromPath[SourcePath], product_id: FromPath[RecordPath]
    ) -> Product:
        """One product by id."""
        return _one(await _connector(state, source).products(), product_id, "product")

    @get(
        "/periods",
        operation_id="ListPeriods",
        summary="List fiscal periods",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_periods(
        self,
        state: State,
        source: FromPath[SourcePath],
        entity: EntityQuery = None,
        period_state: Annotated[
            PeriodState | None, QueryParameter(name="state", description="Only open or only closed periods.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> FiscalPeriodPage:
        """The monthly fiscal periods, with whether each is open."""
        records = await _reader(state, source).fiscal_periods(entity)
        records = [period for period in records if period_state is None or period.state == period_state]
        return _listed(records, None, limit, cursor, FiscalPeriodPage)

    @get(
        "/periods/{period_id:str}",
        operation_id="GetPeriod",
        summary="Get a fiscal period",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_period(
        self, state: State, source: FromPath[SourcePath], period_id: FromPath[RecordPath]
    ) -> FiscalPeriod:
        """One fiscal period by id."""
        return _one(await _reader(state, source).fiscal_periods(), period_id, "period")

    # ------------------------------------------------------------- journal entries

    @get(
        "/journal-entries",
        operation_id="ListJournalEntries",
        summary="Read journal entries incrementally",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_journal_entries(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        entity: EntityQuery = None,
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: FeedCursor = None,
    ) -> JournalEntryPage:
        """Journal entries in `(modified_at, id)` order, drafts included (`state`), deleted drafts flagged.

        A read ends with a `sync_cursor`; passing it later returns each entry
        changed since, exactly once, including those committed late. With
        `Accept: application/x-ndjson` the page's entries stream one per line.
        """
        registry: ErpRegistry = state.erp
        page = await read_entries(
            registry.get(source),
            registry.feeds,
            entity=entity,
            modified_since=parse_time(modified_since),
            cursor=cursor,
            limit=limit,
        )
        return feed_answer(request, page)  # type: ignore[no-any-return]

    @get(
        "/journal-entries/{entry_id:str}",
        operation_id="GetJournalEntry",
        summary="Get a journal entry",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_journal_entry(
        self, state: State, source: FromPath[SourcePath], entry_id: FromPath[RecordPath]
    ) -> JournalEntry:
        """One journal entry by id, with its lines."""
        return await _connector(state, source).journal_entry(entry_id)

    @post(
        "/journal-entries",
        operation_id="PostJournalEntry",
        summary="Create and post a journal entry",
        responses=WRITE_ERRORS,
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("erp:write", idempotency="required"),
    )
    async def post_journal_entry(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[JournalEntryCreate],
        idempotency_key: IdempotencyKeyRequired,
        dry_run: Annotated[
            bool, Parameter(description="Check the entry against the ERP without posting.")
        ] = False,
    ) -> Response[JournalEntry]:
        """Create and post one balanced entry in one step (201), or answer the entry already posted with the
        same `external_ref` and content (200). The ERP itself enforces `external_ref` as unique per entity,
        so neither a retry nor a race can post twice. Refused entries (unbalanced, unknown account or cost
        centre, closed period, wrong currency, too many decimals, over 1,000 lines) answer 422 naming the
        line, and post nothing."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, JournalEntryCreate, "entry")
        posted = await post_journal_entry(_connector(state, source), payload, dry_run=dry_run)
        return Response(posted.record, status_code=201 if posted.created else 200)

    # ------------------------------------------------------------- invoices and payments

    @get(
        "/invoices",
        operation_id="ListInvoices",
        summary="Read receivable invoices incrementally",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_invoices(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        entity: EntityQuery = None,
        modified_since: ModifiedSince = None,
        invoice_state: Annotated[
            DocumentState | None, QueryParameter(name="state", description="Only invoices in this state.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> InvoicePage:
        """Customer invoices in `(modified_at, id)` order, with their lines, totals, state and amount due.
        Page on with `next_cursor`; read what changed later with `modified_since` set to the last
        `modified_at` seen. With `Accept: application/x-ndjson` the page's invoices stream one per line."""
        items, next_cursor = await invoice_page(
            _connector(state, source),
            entity=entity,
            modified_since=parse_time(modified_since),
            state=invoice_state,
            cursor=cursor,
            limit=limit,
        )
        if wants_ndjson(request):
            return ndjson(items, {"Next-Cursor": next_cursor} if next_cursor else None)  # type: ignore[return-value]
        return InvoicePage(items=items, next_cursor=next_cursor)

    @get(
        "/invoices/{invoice_id:str}",
        operation_id="GetInvoice",
        summary="Get a receivable invoice",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def get_invoice(
        self, state: State, source: FromPath[SourcePath], invoice_id: FromPath[RecordPath]
    ) -> Invoice:
        """One customer invoice by id, with its lines."""
        return await get_invoice(_connector(state, source), invoice_id)

    @post(
        "/invoices",
        operation_id="PostInvoice",
        summary="Create and post a receivable invoice",
        responses=_write_responses(
            Invoice, "The invoice already posted with this `external_ref` and content."
        ),
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("erp:write", idempotency="required"),
    )
    async def post_invoice(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[InvoiceCreate],
        idempotency_key: IdempotencyKeyRequired,
    ) -> Response[Invoice]:
        """Create, tax and post one customer invoice in one ERP call (201), or answer the invoice already posted
        with the same `external_ref` and content (200). The ERP itself enforces `external_ref` as unique per
        entity, so neither a retry nor a race invoices twice; the reference with other content answers 409.
        Refused invoices (unknown customer, product, account, tax or cost centre, another currency, too many
        decimals, a closed period, a date before an invoice already numbered) answer 422 naming the line,
        and write nothing."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, InvoiceCreate, "invoice")
        written = await post_invoice(_connector(state, source), payload)
        return Response(written.record, status_code=201 if written.created else 200)

    @post(
        "/payments",
        operation_id="RecordPayment",
        summary="Record a payment that settles a receivable invoice",
        responses=_write_responses(Payment, "The payment already recorded with this `external_ref`."),
        response_headers=[REPLAYED_RESPONSE_HEADER],
        **requires("erp:write", idempotency="required"),
    )
    async def record_payment(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        data: JSONBody[PaymentCreate],
        idempotency_key: IdempotencyKeyRequired,
    ) -> Response[Payment]:
        """Record a payment received against a customer invoice, named by `id` or `external_ref`, in one ERP call
        (201), or answer the payment already recorded with the same `external_ref` (200; 409 when it differs).
        A payment of everything due makes the invoice `paid`. A payment of more than is due, of an invoice
        that is not posted or already paid, in another currency or in a closed period answers 422, and
        writes nothing."""
        del idempotency_key, data  # the key is the idempotency middleware's; ``data`` documents the body
        payload = await strict_payload(request, PaymentCreate, "payment")
        written = await record_payment(_connector(state, source), payload)
        return Response(written.record, status_code=201 if written.created else 200)

    # ------------------------------------------------------------- actuals

    @get(
        "/balances",
        operation_id="ListBalances",
        summary="Actuals by period, account and cost centre",
        responses=READ_ERRORS,
        **requires("erp:read"),
    )
    async def list_balances(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        entity: Annotated[str, Parameter(max_length=64, description="The legal entity (its code).")],
        period: PeriodCodeQuery = None,
        period_from: Annotated[
            str | None,
            QueryParameter(name="from", pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="First period."),
        ] = None,
        period_to: Annotated[
            str | None,
            QueryParameter(name="to", pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="Last period."),
        ] = None,
        account: Annotated[
            str | None, Parameter(max_length=64, description="Only this account code.")
        ] = None,
        cost_center: Annotated[
            str | None,
            Parameter(max_length=64, description="Only this cost centre; empty: the unallocated rows."),
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> BalancePage:
        """Actuals as DESIGN.md defines them: posted moves only, leaf accounts only, the period's movement for
        revenue and expense accounts and the closing balance for the others, split by cost centre and
        reconciled to the account total (the unallocated remainder has the empty cost centre). Without a
        period filter, every period of the entity. `Accept: application/x-ndjson` streams every row, batch by
        batch as the source gives them."""
        first = max(filter(None, (period, period_from)), default=None)
        last = min(filter(None, (period, period_to)), default=None)
        batches = _reader(state, source).balance_batches(entity, first, last, account)
        if cost_center is not None:
            batches = _in_cost_center(batches, cost_center)
        if wants_ndjson(request):
            # The first batch is awaited here, so that an unknown entity is a 404 problem, not a broken stream.
            head: list[Balance] = await anext(batches, [])
            return ndjson(_chained(head, batches))  # type: ignore[return-value]
        balances = [balance async for batch in batches for balance in batch]
        return paginate(
            balances, key=lambda balance: balance.id, limit=limit, cursor=cursor, page_type=BalancePage
        )
