"""The Tryton connector: canonical reads and writes of one ERP source, over :class:`~.rpc.TrytonRPC`.

Every call runs in the context of one legal entity (``company`` and
``companies`` set to that company), so Tryton's own record rules keep one
entity's books from another's. Legal entities are Tryton companies, keyed by
their party's code; the connector learns them once and again every
``ENTITY_TTL`` seconds.

Ids are ``{source}:{kind}:{tryton id}`` (``erp-us:move:42``); ``source_ref`` is
Tryton's own reference (``account.move,42``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from shared.canonical import (
    Account,
    AccountType,
    CostCenter,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
    LegalEntity,
    PeriodState,
    Product,
    ProductKind,
    minor_unit,
)
from shared.errors import NotFoundError, UpstreamContractError
from system_apis.connectors.tryton import rows
from system_apis.connectors.tryton.mapping import MappingRules, load_rules
from system_apis.connectors.tryton.parties import party_records
from system_apis.connectors.tryton.rpc import TrytonRPC

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx

    from shared.canonical import Customer, Supplier
    from shared.settings import TrytonSourceConfig
    from system_apis.connectors.tryton.wire import WireDateTime

__all__ = ("Entity", "TrytonConnector", "after_clause", "context_for")

ENTITY_TTL = 60.0
"""Seconds the list of companies is reused."""
SEARCH_PAGE = 5000
"""Records per ``search_read`` call on the large reads."""

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Entity:
    """A legal entity as the connector needs it: the canonical record and its Tryton company."""

    record: LegalEntity
    company_id: int

    @property
    def code(self) -> str:
        """The entity's code."""
        return self.record.code

    @property
    def unit(self) -> Decimal:
        """The minor unit of the entity's currency: amounts are given to it (``0.00``, not ``0``)."""
        return minor_unit(self.record.currency)

    @property
    def context(self) -> dict[str, Any]:
        """The Tryton context of calls made for this entity."""
        return {"company": self.company_id, "companies": [self.company_id], "language": "en"}


def context_for(scopes: list[Entity]) -> dict[str, Any]:
    """The Tryton context of a call over several entities: the first as ``company``, all as ``companies``."""
    return {**scopes[0].context, "companies": [scope.company_id for scope in scopes]}


def after_clause(written: datetime, last: int) -> list[Any]:
    """The domain clause "after ``(write_date, id)``" of reads in ``(write_date, id)`` order."""
    return ["OR", ("write_date", ">", written), [("write_date", "=", written), ("id", ">", last)]]


def _moment(value: WireDateTime | None, fallback: WireDateTime) -> datetime:
    return (value or fallback).value()


class TrytonConnector:
    """Reads and writes one Tryton database in canonical terms."""

    kind = "tryton"

    def __init__(
        self,
        source: str,
        config: TrytonSourceConfig,
        client: httpx.AsyncClient,
        rules: MappingRules | None = None,
    ) -> None:
        self.source = source
        self.config = config
        self.rpc = TrytonRPC(config, client)
        self.rules = rules or load_rules()
        self._entities: tuple[float, dict[str, Entity]] | None = None
        self._entities_lock = asyncio.Lock()
        self._account_types: dict[int, AccountType | None] | None = None

    # ----------------------------------------------------------------- plumbing

    def record_id(self, kind: str, tryton_id: int) -> str:
        """finsync's id of a Tryton record."""
        return f"{self.source}:{kind}:{tryton_id}"

    def tryton_id(self, kind: str, record_id: str) -> int:
        """The Tryton id inside ``record_id``; :class:`NotFoundError` when it is not one of ours."""
        prefix = f"{self.source}:{kind}:"
        number = record_id.removeprefix(prefix)
        if number == record_id or not number.isdigit():
            raise NotFoundError(f"no {kind} {record_id!r} in source {self.source!r}")
        return int(number)

    async def search(
        self,
        model: str,
        domain: list[Any],
        row: type[R],
        context: dict[str, Any],
        *,
        order: Sequence[tuple[str, str]] = (("id", "ASC"),),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[R]:
        """``search_read`` of ``model``, decoded into ``row``."""
        fields = list(getattr(row, "FIELDS", ()))
        result: list[R] = await self.rpc.call(
            f"model.{model}.search_read",
            domain,
            offset,
            limit,
            [list(pair) for pair in order],
            fields,
            context,
            result=list[row],  # type: ignore[valid-type]
        )
        return result

    async def search_all(
        self, model: str, domain: list[Any], row: type[R], context: dict[str, Any]
    ) -> list[R]:
        """Every matching record, read ``SEARCH_PAGE`` at a time in id order."""
        found: list[R] = []
        last = 0
        while True:
            page = await self.search(model, [*domain, ("id", ">", last)], row, context, limit=SEARCH_PAGE)
            found.extend(page)
            if len(page) < SEARCH_PAGE:
                return found
            last = page[-1].id  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- entities

    async def entities(self) -> dict[str, Entity]:
        """Every legal entity (Tryton company) of this ERP, by code."""
        cached = self._entities
        if cached is not None and time.monotonic() - cached[0] < ENTITY_TTL:
            return cached[1]
        async with self._entities_lock:
            cached = self._entities
            if cached is not None and time.monotonic() - cached[0] < ENTITY_TTL:
                return cached[1]
            companies = await self.search("company.company", [], rows.CompanyRow, {})
            found: dict[str, Entity] = {}
            for company in companies:
                code = company.party_.code
                if not code:
                    continue  # a company without a party code has no stable key; it is not offered
                record = LegalEntity(
                    id=self.record_id("company", company.id),
                    source=self.source,
                    source_ref=f"company.company,{company.id}",
                    modified_at=_moment(company.write_date, company.create_date),
                    mapping_version=self.rules.version,
                    code=code,
                    name=company.party_.name or code,
                    currency=company.currency_.code or "",
                    time_zone=company.timezone or self.rules.entity.time_zone_default,
                )
                found[code] = Entity(record, company.id)
            self._entities = (time.monotonic(), found)
            return found

    async def entity(self, code: str) -> Entity:
        """The legal entity ``code``; :class:`NotFoundError` when this ERP has none."""
        entity = (await self.entities()).get(code)
        if entity is None:
            raise NotFoundError(f"source {self.source!r} has no legal entity {code!r}", field="entity")
        return entity

    async def scoped(self, entity: str | None) -> list[Entity]:
        """The entity named, or every entity when ``entity`` is ``None``."""
        if entity is not None:
            return [await self.entity(entity)]
        return list((await self.entities()).values())

    # ----------------------------------------------------------------- master data

    async def account_types(self) -> dict[int, AccountType | None]:
        """Canonical type of every Tryton account type (``None``: off-balance), by the mapping's rules."""
        if self._account_types is None:
            types = {
                row.id: row for row in await self.search("account.account.type", [], rows.AccountTypeRow, {})
            }

            def chain(type_id: int) -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = []
                current: int | None = type_id
                while current is not None and current in types and len(found) < len(types):
                    row = types[current]
                    found.append({name: getattr(row, name) for name in rows.AccountTypeRow.FIELDS})
                    current = row.parent
                return found

            self._account_types = {type_id: self.rules.account_type(chain(type_id)) for type_id in types}
        return self._account_types

    async def accounts(self, entity: str | None = None) -> list[Account]:
        """Every account with a code and a balance-sheet or income type, of one entity or all."""
        types = await self.account_types()
        found: list[Account] = []
        for scope in await self.scoped(entity):
            for row in await self.account_rows(scope):
                account_type = types.get(row.type) if row.type is not None else None
                if account_type is not None and row.code:
                    found.append(self._account(row, account_type, scope))
        return found

    async def account_rows(self, scope: Entity) -> list[rows.AccountRow]:
        """Tryton's accounts of ``scope``, inactive ones included."""
        return await self.search_all(
            "account.account",
            [("company", "=", scope.company_id)],
            rows.AccountRow,
            {**scope.context, "active_test": False},
        )

    async def postable_accounts(self, scope: Entity) -> dict[str, int]:
        """Code -> id of the accounts of ``scope`` a move may post to: typed, leaf, open and active."""
        types = await self.account_types()
        return {
            row.code: row.id
            for row in await self.account_rows(scope)
            if row.code
            and row.type is not None
            and types.get(row.type)
            and not row.childs
            and not row.closed
            and row.active
        }

    def _account(self, row: rows.AccountRow, account_type: AccountType, scope: Entity) -> Account:
        assert row.code is not None
        return Account(
            id=self.record_id("account", row.id),
            source=self.source,
            source_ref=f"account.account,{row.id}",
            modified_at=_moment(row.write_date, row.create_date),
            deleted=not row.active,
            mapping_version=self.rules.version,
            code=row.code,
            name=row.name,
            type=account_type,
            normal_balance=account_type.normal_balance,
            parent_code=row.parent_.code if row.parent_ is not None else None,
            is_leaf=not row.childs,
            entity=scope.code,
        )

    async def accounts_needing_party(self, scope: Entity) -> set[str]:
        """Codes of the accounts of ``scope`` whose move lines must name a party (receivables, payables)."""
        return {row.code for row in await self.account_rows(scope) if row.code and row.party_required}

    async def cost_centers(self, entity: str | None = None) -> list[CostCenter]:
        """Analytic accounts under the cost-centre root (the mapping's dimension map)."""
        root = self.rules.dimensions.cost_center
        found: list[CostCenter] = []
        for scope in await self.scoped(entity):
            accounts = await self.search_all(
                "analytic_account.account",
                [("company", "=", scope.company_id), ("root.code", "=", root), ("type", "=", "normal")],
                rows.AnalyticAccountRow,
                scope.context,
            )
            found.extend(
                CostCenter(
                    id=self.record_id("cost-center", row.id),
                    source=self.source,
                    source_ref=f"analytic_account.account,{row.id}",
                    modified_at=_moment(row.write_date, row.create_date),
                    mapping_version=self.rules.version,
                    code=row.code,
                    name=row.name,
                    entity=scope.code,
                    parent_code=(
                        row.parent_.code if row.parent_ is not None and row.parent_.code != root else None
                    ),
                )
                for row in accounts
                if row.code
            )
        return found

    async def party_category(self, role: str) -> int | None:
        """Id of the party category of customers (``role="customer"``) or suppliers, as the mapping names it."""
        parties = self.rules.parties
        name = parties.customer_category if role == "customer" else parties.supplier_category
        found = await self.rpc.call("model.party.category.search", [("name", "=", name)], 0, 1, None, {})
        return found[0] if found else None

    async def parties(self, role: str) -> list[Customer | Supplier]:
        """Customers (``role="customer"``) or suppliers: the parties in the mapping's category."""
        category_id = await self.party_category(role)
        if category_id is None:
            return []
        parties = await self.search_all(
            "party.party", [("categories", "=", category_id)], rows.PartyRow, {"active_test": False}
        )
        return await party_records(self, role, parties)

    async def products(self) -> list[Product]:
        """Every product."""
        products = await self.search_all("product.product", [], rows.ProductRow, {"active_test": False})
        return [
            Product(
                id=self.record_id("product", row.id),
                source=self.source,
                source_ref=f"product.product,{row.id}",
                modified_at=_moment(row.write_date, row.create_date),
                deleted=not row.active,
                mapping_version=self.rules.version,
                code=row.code or str(row.id),
                name=row.name,
                kind=ProductKind.SERVICE if row.type == "service" else ProductKind.GOODS,
                unit=row.uom_.name if row.uom_ is not None else None,
            )
            for row in products
        ]

    async def periods(self, entity: str | None = None) -> list[FiscalPeriod]:
        """The standard (monthly) periods of every fiscal year."""
        found: list[FiscalPeriod] = []
        for scope in await self.scoped(entity):
            periods = await self.search_all(
                "account.period",
                [("company", "=", scope.company_id), ("type", "=", "standard")],
                rows.PeriodRow,
                scope.context,
            )
            found.extend(self._period(row, scope) for row in periods)
        return found

    def _period(self, row: rows.PeriodRow, scope: Entity) -> FiscalPeriod:
        start = row.start_date.value()
        return FiscalPeriod(
            id=self.record_id("period", row.id),
            source=self.source,
            source_ref=f"account.period,{row.id}",
            modified_at=_moment(row.write_date, row.create_date),
            mapping_version=self.rules.version,
            entity=scope.code,
            fiscal_year=row.fiscalyear_.name or str(start.year),
            code=f"{start.year:04d}-{start.month:02d}",
            start_date=start,
            end_date=row.end_date.value(),
            state=PeriodState.OPEN if row.state == "open" else PeriodState.CLOSED,
        )

    # ----------------------------------------------------------------- journal entries

    async def journal_entries(self, moves: list[rows.MoveRow], scope: Entity) -> list[JournalEntry]:
        """The canonical entries of ``moves`` (all of ``scope``), with their lines."""
        if not moves:
            return []
        ids = [move.id for move in moves]
        lines = await self.search_all(
            "account.move.line", [("move", "in", ids)], rows.MoveLineRow, scope.context
        )
        cost_centers = await self.line_cost_centers([line.id for line in lines], scope)
        by_move: dict[int, list[JournalLine]] = {}
        currency = scope.record.currency
        unit = scope.unit
        for line in lines:
            by_move.setdefault(line.move, []).append(
                JournalLine(
                    account_code=line.account_.code or "",
                    debit=line.debit.value().quantize(unit),
                    credit=line.credit.value().quantize(unit),
                    currency=currency,
                    cost_center=cost_centers.get(line.id),
                    description=line.description or None,
                    party=line.party_.code if line.party_ is not None else None,
                )
            )
        return [self._entry(move, by_move.get(move.id, []), scope) for move in moves]

    def _entry(self, move: rows.MoveRow, lines: list[JournalLine], scope: Entity) -> JournalEntry:
        state = self.rules.entry_states.get(move.state)
        if state is None:
            raise UpstreamContractError(f"the ERP has a move in an unknown state {move.state!r}")
        posting_date = move.date.value()
        return JournalEntry(
            id=self.record_id("move", move.id),
            source=self.source,
            source_ref=f"account.move,{move.id}",
            external_ref=move.external_ref,
            modified_at=_moment(move.write_date, move.create_date),
            mapping_version=self.rules.version,
            entity=scope.code,
            posting_date=posting_date,
            period=f"{posting_date.year:04d}-{posting_date.month:02d}",
            journal=move.journal_.code if move.journal_ is not None else None,
            description=move.description or None,
            state=state,
            lines=tuple(lines),
        )

    async def line_cost_centers(self, line_ids: list[int], scope: Entity) -> dict[int, str]:
        """The cost centre of each move line wholly allocated to one; split or unallocated lines have none."""
        if not line_ids:
            return {}
        analytic = await self.search_all(
            "analytic_account.line",
            [("move_line", "in", line_ids), ("account.root.code", "=", self.rules.dimensions.cost_center)],
            rows.AnalyticLineRow,
            scope.context,
        )
        per_line: dict[int, set[str]] = {}
        for row in analytic:
            per_line.setdefault(row.move_line, set()).add(row.account_.code or "")
        return {line: next(iter(codes)) for line, codes in per_line.items() if len(codes) == 1}

    async def changed_moves(
        self,
        scopes: list[Entity],
        low: datetime | None,
        until: datetime,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[rows.MoveRow]:
        """Moves of ``scopes`` written in ``[low, until]`` after ``after``, in ``(write_date, id)`` order."""
        domain: list[Any] = [
            ("company", "in", [scope.company_id for scope in scopes]),
            ("write_date", "<=", until),
        ]
        if low is not None:
            domain.append(("write_date", ">=", low))
        if after is not None:
            written, last = after
            domain.append(
                ["OR", ("write_date", ">", written), [("write_date", "=", written), ("id", ">", last)]]
            )
        context = {**scopes[0].context, "companies": [scope.company_id for scope in scopes]}
        return await self.search(
            "account.move",
            domain,
            rows.MoveRow,
            context,
            order=(("write_date", "ASC"), ("id", "ASC")),
            limit=limit,
        )

    async def existing_moves(self, ids: list[int], scopes: list[Entity]) -> set[int]:
        """Which of the moves ``ids`` still exist (drafts can be deleted; posted moves never are)."""
        if not ids:
            return set()
        context = {**scopes[0].context, "companies": [scope.company_id for scope in scopes]}
        found: list[int] = await self.rpc.call(
            "model.account.move.search", [("id", "in", ids)], 0, None, None, context
        )
        return set(found)

    async def journal_entry(self, record_id: str) -> JournalEntry:
        """One entry by id."""
        move_id = self.tryton_id("move", record_id)
        scopes = await self.scoped(None)
        moves = await self.search("account.move", [("id", "=", move_id)], rows.MoveRow, context_for(scopes))
        scope = next((scope for scope in scopes if moves and scope.company_id == moves[0].company), None)
        if scope is not None:
            return (await self.journal_entries(moves, scope))[0]
        raise NotFoundError(f"no journal entry {record_id!r} in source {self.source!r}")

    async def moves_by_ref(self, external_ref: str, scope: Entity) -> list[rows.MoveRow]:
        """The move of ``scope`` with ``external_ref`` (at most one: the ERP enforces it)."""
        return await self.search(
            "account.move",
            [("external_ref", "=", external_ref), ("company", "=", scope.company_id)],
            rows.MoveRow,
            scope.context,
        )
