"""Typed client for system_apis, decoding the shapes of ``openapi/system.json``.

The system layer's own shapes (sources) are mirrored here, not imported from it,
because layers talk only over HTTP; the canonical model (``shared.canonical``) is
the kernel's and every layer speaks it, so balances, cells and loads decode
straight into it, strictly (money only from decimal strings). ``tests/contract``
checks these against the committed spec.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import httpx
import msgspec

from shared import errors
from shared.canonical import (
    BillingInvoice,
    BillingInvoiceCreate,
    Booking,
    Customer,
    CustomerCreate,
    FiscalPeriod,
    Invoice,
    InvoiceCreate,
    JournalEntry,
    JournalEntryCreate,
    LegalEntity,
    Load,
    LoadCreate,
    Payment,
    PaymentCreate,
    PlanningCell,
    PlanningDimension,
    PlanningMember,
    decode,
    encode,
)
from shared.events import SourceEvent
from shared.http_client import NDJSON, LayerClient, Probe
from shared.pagination import Page

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = (
    "BalanceLine",
    "BillingInvoicePage",
    "BookingPage",
    "CustomerPage",
    "InvoicePage",
    "Source",
    "SourceEventPage",
    "SourceHealth",
    "SourcePage",
    "SystemClient",
    "Written",
)

T = TypeVar("T")


class BalanceLine(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The fields of a canonical ``Balance`` that actuals flows read, and no more: a million of them decode
    in about a second, where whole records (ids, timestamps, references, checks) take twice as long.
    ``account_type`` is the ``AccountType`` value (a ``StrEnum``, so the two compare and hash alike)."""

    entity: str
    period: str
    account_code: str
    account_type: str
    cost_center: str = ""
    amount: Decimal
    currency: str


_BALANCE_LINES = msgspec.json.Decoder(BalanceLine)


class SourceHealth(msgspec.Struct, kw_only=True):
    """``SourceHealth`` in the system spec."""

    status: Literal["up", "down"]
    checked_at: datetime
    latency_ms: float
    detail: str


class Source(msgspec.Struct, kw_only=True):
    """``Source`` in the system spec."""

    id: str
    kind: str
    description: str
    health: SourceHealth


class SourcePage(Page[Source], kw_only=True):
    """A page of ``ListSources``."""


class LegalEntityPage(Page[LegalEntity], kw_only=True):
    """A page of ``ListLegalEntities``."""


class FiscalPeriodPage(Page[FiscalPeriod], kw_only=True):
    """A page of ``ListPeriods``."""


class PlanningMemberPage(Page[PlanningMember], kw_only=True):
    """A page of ``ListPlanningMembers``."""


class BookingPage(Page[Booking], kw_only=True):
    """A page of ``ListBookings``: the last page of a read carries its ``sync_cursor``."""

    sync_cursor: str | None = None
    """Pass as ``cursor`` later to read what changed since this read."""


class CustomerPage(Page[Customer], kw_only=True):
    """A page of ``ListCustomers``."""


class InvoicePage(Page[Invoice], kw_only=True):
    """A page of ``ListInvoices``."""


class BillingInvoicePage(Page[BillingInvoice], kw_only=True):
    """A page of ``ListBillingInvoices``."""


class Written(msgspec.Struct, Generic[T], kw_only=True, frozen=True):
    """What an idempotent create answered: the record, and whether this call made it (201) or found it (200)."""

    record: T
    """The record, new or existing."""
    created: bool
    """``True`` when this call made it: a 201 that is not the replay of an earlier answer (``Idempotent-Replayed``);
    ``False`` when the external reference already had its record."""


class SourceEventPage(Page[SourceEvent], kw_only=True):
    """A page of ``ListBillingEvents``: the published events, as the sweep finds them."""


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SystemClient(LayerClient):
    """Calls system_apis."""

    layer = "system layer"

    async def ready(self) -> Probe:
        """``GetReadiness``: is the system layer serving with its own dependencies up."""
        return await self.probe("/health/ready")

    async def list_sources(self) -> list[Source]:
        """``ListSources``, every page."""
        return await self.get_every_page("/v1/sources", SourcePage)

    # -- the ERP ----------------------------------------------------------------------------------

    async def legal_entities(self, source: str) -> list[LegalEntity]:
        """``ListLegalEntities``, every page."""
        return await self.get_every_page(f"/v1/erp/{source}/legal-entities", LegalEntityPage)

    async def periods(self, source: str, entity: str) -> list[FiscalPeriod]:
        """``ListPeriods`` of one entity, every page."""
        return await self.get_every_page(f"/v1/erp/{source}/periods?entity={entity}", FiscalPeriodPage)

    def balance_batches(
        self, source: str, entity: str, period_from: str, period_to: str
    ) -> AsyncIterator[list[BalanceLine]]:
        """``ListBalances`` of one entity over a range of periods, streamed as NDJSON, batch by batch."""
        return self.stream_ndjson(
            f"/v1/erp/{source}/balances",
            _BALANCE_LINES,
            {"entity": entity, "from": period_from, "to": period_to},
        )

    # -- the planning platform -------------------------------------------------------------------

    async def planning_members(self, source: str, dimension: PlanningDimension) -> list[PlanningMember]:
        """``ListPlanningMembers`` of one dimension, every page."""
        return await self.get_every_page(
            f"/v1/planning/{source}/dimensions/{dimension.value}/members", PlanningMemberPage
        )

    async def planning_cells(
        self,
        source: str,
        version: str,
        entity: str | None,
        period_from: str,
        period_to: str,
        *,
        timeout: float | None = None,
    ) -> list[PlanningCell]:
        """``ListPlanningCells`` of one version over a range of periods, of one entity or (None) of every
        entity, streamed as NDJSON: one export of the planning platform either way. ``timeout`` replaces the
        client's for this call: a person waits on the workbench's reads, and the export behind them can
        outlast the usual timeout."""
        params = {"version": version, "from": period_from, "to": period_to}
        if entity is not None:
            params["entity"] = entity
        return await self._ndjson(f"/v1/planning/{source}/cells", PlanningCell, params, timeout)

    async def start_load(self, source: str, load: LoadCreate, idempotency_key: str) -> Load:
        """``CreatePlanningLoad``: 202 and the load; the same key again answers the same load."""
        path = f"/v1/planning/{source}/loads"
        response = await self.request(
            "POST",
            path,
            content=encode(load),
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        )
        return self._decoded(response, Load, path)

    async def load(self, source: str, load_id: str) -> Load:
        """``GetPlanningLoad``."""
        path = f"/v1/planning/{source}/loads/{load_id}"
        return self._decoded(await self.request("GET", path), Load, path)

    # -- order to cash: the CRM, billing and the ERP's receivables ----------------------------------

    async def booking(self, source: str, booking_id: str) -> Booking:
        """``GetBooking``: the deal with its lines (``booking_id`` as listed: ``{source}:booking:{Id}``)."""
        path = f"/v1/crm/{source}/bookings/{booking_id}"
        return self._decoded(await self.request("GET", path), Booking, path)

    async def billing_customer(self, source: str, code: str) -> Customer:
        """``GetBillingCustomer`` by its ERP code."""
        path = f"/v1/billing/{source}/customers/{code}"
        return self._decoded(await self.request("GET", path), Customer, path)

    async def billing_invoice(self, source: str, invoice_id: str) -> BillingInvoice:
        """``GetBillingInvoice`` by record id or the platform's own id (``in_…``), as the platform holds it now."""
        path = f"/v1/billing/{source}/invoices/{invoice_id}"
        return self._decoded(await self.request("GET", path), BillingInvoice, path)

    async def create_billing_invoice(
        self, source: str, invoice: BillingInvoiceCreate, idempotency_key: str
    ) -> Written[BillingInvoice]:
        """``CreateBillingInvoice``: a draft, or the invoice its ``external_ref`` already made."""
        return await self._write(f"/v1/billing/{source}/invoices", invoice, idempotency_key, BillingInvoice)

    async def erp_customers(self, source: str) -> list[Customer]:
        """``ListCustomers``, every page."""
        return await self.get_every_page(f"/v1/erp/{source}/customers", CustomerPage)

    async def create_erp_customer(
        self, source: str, customer: CustomerCreate, idempotency_key: str
    ) -> Written[Customer]:
        """``CreateCustomer``: the party, or the one its ``external_ref`` already made."""
        return await self._write(f"/v1/erp/{source}/customers", customer, idempotency_key, Customer)

    async def erp_invoices(self, source: str, entity: str, modified_since: datetime) -> list[Invoice]:
        """``ListInvoices`` of one entity changed since ``modified_since``, every page."""
        path = f"/v1/erp/{source}/invoices"
        items: list[Invoice] = []
        params: dict[str, str | int] = {
            "entity": entity,
            "modified_since": _rfc3339(modified_since),
            "limit": self.page_size,
        }
        while True:
            page = self._decoded(await self.request("GET", path, params=params), InvoicePage, path)
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            params = {"entity": entity, "cursor": page.next_cursor, "limit": self.page_size}

    async def erp_invoice(self, source: str, invoice_id: str) -> Invoice:
        """``GetInvoice``: a receivable by record id."""
        path = f"/v1/erp/{source}/invoices/{invoice_id}"
        return self._decoded(await self.request("GET", path), Invoice, path)

    async def post_erp_invoice(
        self, source: str, invoice: InvoiceCreate, idempotency_key: str
    ) -> Written[Invoice]:
        """``PostInvoice``: the posted receivable, or the one its ``external_ref`` already made."""
        return await self._write(f"/v1/erp/{source}/invoices", invoice, idempotency_key, Invoice)

    async def record_erp_payment(
        self, source: str, payment: PaymentCreate, idempotency_key: str
    ) -> Written[Payment]:
        """``RecordPayment``: the payment settling a receivable, or the one its ``external_ref`` already made."""
        return await self._write(f"/v1/erp/{source}/payments", payment, idempotency_key, Payment)

    async def post_journal_entry(
        self, source: str, entry: JournalEntryCreate, idempotency_key: str
    ) -> Written[JournalEntry]:
        """``PostJournalEntry``: the posted entry, or the one its ``external_ref`` already made."""
        return await self._write(f"/v1/erp/{source}/journal-entries", entry, idempotency_key, JournalEntry)

    # -- changes, for the catch-up sweep -------------------------------------------------------------

    async def booking_changes(
        self, source: str, *, cursor: str | None = None, modified_since: datetime | None = None
    ) -> BookingPage:
        """One page of ``ListBookings``: from ``cursor`` (a ``next_cursor`` or ``sync_cursor``), or a new read
        from ``modified_since``."""
        params: dict[str, str | int] = {"limit": self.page_size}
        if cursor is not None:
            params["cursor"] = cursor
        elif modified_since is not None:
            params["modified_since"] = _rfc3339(modified_since)
        path = f"/v1/crm/{source}/bookings"
        return self._decoded(await self.request("GET", path, params=params), BookingPage, path)

    async def billing_events(
        self, source: str, *, created_since: datetime, cursor: str | None = None
    ) -> SourceEventPage:
        """One page of ``ListBillingEvents``: the source's events created since ``created_since``, as the
        webhook would have pushed them (``via="sweep"``, the same ids and dedupe keys)."""
        params: dict[str, str | int] = {"limit": self.page_size, "created_since": _rfc3339(created_since)}
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/v1/billing/{source}/events"
        return self._decoded(await self.request("GET", path, params=params), SourceEventPage, path)

    # -- plumbing ----------------------------------------------------------------------------------

    async def _write(self, path: str, body: object, idempotency_key: str, type_: type[T]) -> Written[T]:
        response = await self.request(
            "POST",
            path,
            content=encode(body),
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        )
        replayed = response.headers.get("idempotent-replayed") == "true"
        return Written(
            record=self._decoded(response, type_, path), created=response.status_code == 201 and not replayed
        )

    def _decoded(self, response: httpx.Response, type_: type[T], path: str) -> T:
        try:
            return decode(response.content, type_)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.UpstreamContractError(f"{self.layer} answered {path} off contract: {exc}") from exc

    async def _ndjson(
        self, path: str, type_: type[T], params: dict[str, str], timeout: float | None = None
    ) -> list[T]:
        extra = {} if timeout is None else {"timeout": timeout}
        response = await self.request("GET", path, params=params, headers={"Accept": NDJSON}, **extra)
        try:
            return [decode(line, type_) for line in response.content.splitlines() if line]
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.UpstreamContractError(f"{self.layer} streamed {path} off contract: {exc}") from exc
