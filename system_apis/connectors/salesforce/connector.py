"""One Salesforce org as a CRM source, in canonical terms: its accounts as customers, its opportunities as bookings.

Reads go through SOQL, every batch followed through ``nextRecordsUrl`` until
``done``; single records through ``GET /sobjects/{type}/{Id}``. What changed
in a window of time is read by :class:`~.changes.Changes`, from the walk
primitives here (``changed_opportunities``, ``changed_lines``, and the reads
by id that complete what they find). A booking's ``customer`` is its account's
``AccountNumber``, read by id for the accounts of each batch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from shared.errors import FinsyncError, NotFoundError, SettingsError, UpstreamContractError
from shared.http_client import Probe, elapsed_ms
from system_apis.connectors.salesforce import soql
from system_apis.connectors.salesforce.changes import Changes, settled_until
from system_apis.connectors.salesforce.client import SalesforceClient
from system_apis.connectors.salesforce.mapping import MAPPING_VERSIONS, booking, customer
from system_apis.connectors.salesforce.wire import (
    LEGAL_ENTITY,
    AccountNumberRow,
    AccountRow,
    LineRow,
    LineStamp,
    OpportunityRow,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    import httpx

    from shared.canonical import Booking, Customer
    from shared.settings import SalesforceSourceConfig
    from system_apis.connectors.salesforce.changes import Position

__all__ = ("KEY_PREFIXES", "SalesforceConnector")

R = TypeVar("R", bound=msgspec.Struct)

KEY_PREFIXES = {"booking": "006", "customer": "001"}
"""The key prefix of the Salesforce ids behind each kind of record (Opportunity, Account)."""
_LINE_FIELDS = (
    "Id, OpportunityId, SortOrder, ProductCode, Name, Quantity, UnitPrice, TotalPrice, Discount, ServiceDate, "
    "LastModifiedDate"
)
_CHANGED_LINE_FIELDS = "Id, OpportunityId, LastModifiedDate"
_KEYSET = "LastModifiedDate, Id"
"""The walks' order: by stamp, ties broken by id."""


class SalesforceConnector:
    """One Salesforce org as a CRM source."""

    def __init__(
        self, source: str, config: SalesforceSourceConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if config.mapping not in MAPPING_VERSIONS:
            raise SettingsError(
                f"CRM source {source!r}: unknown mapping {config.mapping!r} (known: {', '.join(sorted(MAPPING_VERSIONS))})"
            )
        self.source = source
        self.config = config
        self.client = SalesforceClient(config, transport)
        currency = [] if config.currency else ["CurrencyIsoCode"]
        self._opportunity_fields = ", ".join(
            dict.fromkeys(
                [
                    "Id",
                    "IsDeleted",
                    "AccountId",
                    "Name",
                    "StageName",
                    "Amount",
                    "Probability",
                    "CloseDate",
                    "IsClosed",
                    "IsWon",
                    *currency,
                    config.legal_entity_field,
                    "LastModifiedDate",
                ]
            )
        )
        self._account_fields = ", ".join(
            ["Id", "IsDeleted", "Name", "AccountNumber", "BillingCountry", *currency, "LastModifiedDate"]
        )

    # -- records -----------------------------------------------------------------------------------

    async def probe(self) -> Probe:
        """Read the org's limits with the session's token (getting one first if needed); never raises."""
        started = time.perf_counter()
        try:
            await self.client.get("/limits")
        except FinsyncError as exc:
            return Probe(status="down", latency_ms=elapsed_ms(started), detail=exc.detail)
        quota = self.client.quota
        return Probe(
            status="up",
            latency_ms=elapsed_ms(started),
            detail=f"Salesforce org answers; API usage {quota.used} of {quota.allowed} today",
        )

    async def accounts(self, modified_since: datetime | None = None) -> list[Customer]:
        """Every account that carries a customer code, as a customer; only those changed at or after
        ``modified_since`` (to the second) when given."""
        where = f"LastModifiedDate >= {soql.moment(modified_since)}" if modified_since else None
        records = await self.client.query_all(soql.select(self._account_fields, "Account", where, "Id"))
        mapped = (self._customer(row) for row in _rows(records, AccountRow, "Account"))
        return [record for record in mapped if record is not None]

    async def customer(self, customer_id: str) -> Customer:
        """One customer by finsync id; :class:`NotFoundError` when the org has no such account, or it carries no
        customer code."""
        ref = self.salesforce_id("customer", customer_id)
        record = await self.client.record("Account", ref, self._account_fields.replace(" ", ""))
        if record is None:
            raise NotFoundError(f"no customer {customer_id!r}")
        mapped = self._customer(_row(record, AccountRow, "Account"))
        if mapped is None:
            raise NotFoundError(
                f"the CRM account behind {customer_id!r} carries no customer code (AccountNumber)"
            )
        return mapped

    async def bookings(
        self, modified_since: datetime | None = None, until: datetime | None = None
    ) -> list[Booking]:
        """Every booking changed in ``[modified_since, until]`` (``until``: the last second passed when not
        given), read in full, in ``modified_at`` order."""
        return await Changes(self, low=modified_since, until=until or settled_until()).take(None)

    async def booking(self, booking_id: str) -> Booking:
        """One booking by finsync id, with its lines; :class:`NotFoundError` when the org has no such opportunity."""
        ref = self.salesforce_id("booking", booking_id)
        record = await self.client.record("Opportunity", ref, self._opportunity_fields.replace(" ", ""))
        if record is None:
            raise NotFoundError(f"no booking {booking_id!r}")
        opportunity = self._opportunity(record)
        lines = await self.lines([opportunity.id])
        numbers = await self.account_numbers([opportunity.account_id] if opportunity.account_id else [])
        return self.to_booking(
            opportunity, lines.get(opportunity.id, []), numbers.get(opportunity.account_id or "")
        )

    def salesforce_id(self, kind: str, finsync_id: str) -> str:
        """The Salesforce id inside ``finsync_id``; :class:`NotFoundError` when it is not one of this source's
        ``kind`` ids (so no call is made for it)."""
        ref = finsync_id.removeprefix(f"{self.source}:{kind}:")
        if ref == finsync_id or not soql.is_id(ref, KEY_PREFIXES[kind]):
            raise NotFoundError(f"no {kind} {finsync_id!r}")
        return ref

    def to_booking(
        self, opportunity: OpportunityRow, lines: list[LineRow], account_number: str | None
    ) -> Booking:
        """The canonical booking of an opportunity, its lines and its account's number."""
        return booking(
            self.source, self.config.mapping, opportunity, lines, account_number, self.config.currency
        )

    def _customer(self, row: AccountRow) -> Customer | None:
        return customer(self.source, self.config.mapping, row, self.config.currency)

    def _opportunity(self, record: dict[str, Any]) -> OpportunityRow:
        # The legal-entity field is configured, so its value moves to the key the row type knows.
        return _row(
            {**record, LEGAL_ENTITY: record.get(self.config.legal_entity_field)},
            OpportunityRow,
            "Opportunity",
        )

    # -- the walk ------------------------------------------------------------------------------------

    async def changed_opportunities(
        self, low: datetime | None, until: datetime, after: Position | None, limit: int | None
    ) -> list[OpportunityRow]:
        """Opportunities stamped in ``[low, until]`` after ``after``, in ``(LastModifiedDate, Id)`` order."""
        query = soql.select(
            self._opportunity_fields, "Opportunity", _window(low, until, after), _KEYSET, limit
        )
        records = await self.client.query_all(query)
        return [self._opportunity(record) for record in records]

    async def changed_lines(
        self, low: datetime | None, until: datetime, after: Position | None, limit: int | None
    ) -> list[LineStamp]:
        """Line items stamped in ``[low, until]`` after ``after``, in ``(LastModifiedDate, Id)`` order."""
        query = soql.select(
            _CHANGED_LINE_FIELDS, "OpportunityLineItem", _window(low, until, after), _KEYSET, limit
        )
        records = await self.client.query_all(query)
        return _rows(records, LineStamp, "OpportunityLineItem")

    async def opportunities(self, ids: Iterable[str]) -> dict[str, OpportunityRow]:
        """The opportunities of ``ids`` that exist, by id."""
        found: dict[str, OpportunityRow] = {}
        for chunk in soql.chunks(ids):
            query = soql.select(self._opportunity_fields, "Opportunity", f"Id IN {soql.id_list(chunk)}")
            for record in await self.client.query_all(query):
                row = self._opportunity(record)
                found[row.id] = row
        return found

    async def lines(self, opportunity_ids: Iterable[str]) -> dict[str, list[LineRow]]:
        """The line items of each opportunity of ``opportunity_ids`` that has some, in the CRM's order."""
        found: dict[str, list[LineRow]] = {}
        for chunk in soql.chunks(opportunity_ids):
            where = f"OpportunityId IN {soql.id_list(chunk)}"
            query = soql.select(_LINE_FIELDS, "OpportunityLineItem", where, "SortOrder NULLS LAST, Id")
            for row in _rows(await self.client.query_all(query), LineRow, "OpportunityLineItem"):
                found.setdefault(row.opportunity_id, []).append(row)
        return found

    async def account_numbers(self, account_ids: Iterable[str]) -> dict[str, str | None]:
        """The ``AccountNumber`` of each account of ``account_ids``, by id."""
        found: dict[str, str | None] = {}
        for chunk in soql.chunks(account_ids):
            query = soql.select("Id, AccountNumber", "Account", f"Id IN {soql.id_list(chunk)}")
            for row in _rows(await self.client.query_all(query), AccountNumberRow, "Account"):
                found[row.id] = row.account_number
        return found


def _window(low: datetime | None, until: datetime, after: Position | None) -> str:
    conditions = [f"LastModifiedDate <= {soql.moment(until)}"]
    if low is not None:
        conditions.insert(0, f"LastModifiedDate >= {soql.moment(low)}")
    if after is not None:
        conditions.append(soql.after(after.stamp, after.ref))
    return " AND ".join(conditions)


def _row(record: dict[str, Any], type_: type[R], sobject: str) -> R:
    try:
        return msgspec.convert(record, type_)
    except msgspec.ValidationError as exc:
        raise UpstreamContractError(f"the CRM answered a {sobject} off contract: {exc}") from exc


def _rows(records: list[dict[str, Any]], type_: type[R], sobject: str) -> list[R]:
    return [_row(record, type_, sobject) for record in records]
