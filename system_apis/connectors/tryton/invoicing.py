"""Receivable invoices: canonical reads, and invoices created and posted in one ERP call, replay-safe in the ERP.

Writes follow journal entries (:mod:`.posting`). Each invoice carries the
payload's ``external_ref``, which the finsync Tryton module makes unique per
company, and is one call to the module's ``account.invoice.finsync_post``: the
invoice is created, its taxes computed and it is posted in one transaction, or
nothing is written. So a retry or a race cannot invoice twice: the second insert
breaks the unique constraint, and the connector answers the first invoice (or
409 when the content differs).

Before calling Tryton, the payload is checked against the canonical rules and
the entity's reference data, so the usual mistakes come back as 422 naming the
line: unknown customer, product, account, tax or cost centre, an account that
takes no revenue, a currency that is not the entity's, too many decimals, a date
outside any open period, or before an invoice Tryton has already numbered (its
customer invoice numbers follow their dates).

Reads go in ``(write_date, id)`` order, with a cursor of the last of them, so a
caller can page through everything changed since a time.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from shared.canonical import (
    DocumentState,
    FiscalPeriod,
    Invoice,
    InvoiceCreate,
    InvoiceLine,
    InvoiceLineCreate,
    decimal_places,
    minor_unit,
    validate_invoice,
)
from shared.errors import (
    BadRequestError,
    ConflictError,
    InvalidEntryError,
    NotFoundError,
    SourceRejectedError,
    UpstreamContractError,
    Violation,
)
from shared.pagination import decode_cursor, encode_cursor
from system_apis.connectors.tryton import rows
from system_apis.connectors.tryton.checks import period_violation, text_violations
from system_apis.connectors.tryton.connector import after_clause, context_for
from system_apis.connectors.tryton.rpc import TrytonUserError
from system_apis.connectors.tryton.written import Written, call_write

if TYPE_CHECKING:
    from system_apis.connectors.tryton.connector import Entity, TrytonConnector

__all__ = (
    "INVOICE_JOURNAL",
    "get_invoice",
    "invoice_page",
    "invoice_records",
    "post_invoice",
)

INVOICE_JOURNAL: Final = "REV"
"""Journal of the customer invoices finsync creates: Tryton's revenue journal."""
_LINE_ORIGIN: Final = "account.invoice.line,"
"""Prefix of the ``origin`` of a move line made from an invoice line."""


# ----------------------------------------------------------------------------- reads


async def invoice_page(
    connector: TrytonConnector,
    *,
    entity: str | None,
    modified_since: datetime | None,
    state: DocumentState | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Invoice], str | None]:
    """One page of the receivable invoices of ``entity`` (or of every entity), and the next page's cursor."""
    scopes = await connector.scoped(entity)
    domain: list[Any] = [("type", "=", "out"), ("company", "in", [scope.company_id for scope in scopes])]
    if modified_since is not None:
        domain.append(("write_date", ">=", modified_since))
    if state is not None:
        domain.append(
            (
                "state",
                "in",
                [name for name, mapped in connector.rules.document_states.items() if mapped is state],
            )
        )
    if cursor is not None:
        domain.append(after_clause(*_after(cursor)))
    found = await connector.search(
        "account.invoice",
        domain,
        rows.InvoiceRow,
        context_for(scopes),
        order=(("write_date", "ASC"), ("id", "ASC")),
        limit=limit + 1,
    )
    page = found[:limit]
    following = None
    if len(found) > limit:
        last_row = page[-1]
        following = encode_cursor(f"{_written(last_row).isoformat()}|{last_row.id}")
    return await _records(connector, page, scopes), following


async def get_invoice(connector: TrytonConnector, record_id: str) -> Invoice:
    """One receivable invoice by id; :class:`NotFoundError` when the source has none."""
    invoice_id = connector.tryton_id("invoice", record_id)
    scopes = await connector.scoped(None)
    found = await connector.search(
        "account.invoice",
        [("id", "=", invoice_id), ("type", "=", "out")],
        rows.InvoiceRow,
        context_for(scopes),
    )
    if not found:
        raise NotFoundError(f"no invoice {record_id!r} in source {connector.source!r}")
    (invoice,) = await _records(connector, found, scopes)
    return invoice


async def _records(
    connector: TrytonConnector, invoices: list[rows.InvoiceRow], scopes: list[Entity]
) -> list[Invoice]:
    """Canonical invoices of ``invoices``, in their order, each mapped in its own entity."""
    mapped: dict[int, Invoice] = {}
    for scope in scopes:
        group = [row for row in invoices if row.company == scope.company_id]
        for row, record in zip(group, await invoice_records(connector, group, scope), strict=True):
            mapped[row.id] = record
    return [mapped[row.id] for row in invoices]


async def invoice_records(
    connector: TrytonConnector, invoices: list[rows.InvoiceRow], scope: Entity
) -> list[Invoice]:
    """The canonical invoices of ``invoices`` (all of ``scope``), with their lines, due dates and cost centres."""
    if not invoices:
        return []
    lines = await connector.search_all(
        "account.invoice.line",
        [("invoice", "in", [row.id for row in invoices])],
        rows.InvoiceLineRow,
        scope.context,
    )
    moves = [row.move for row in invoices if row.move is not None]
    taxes, move_lines = await asyncio.gather(
        _taxes(connector, sorted({tax for line in lines for tax in line.taxes}), scope),
        _move_lines(connector, moves, scope),
    )
    tax_names = {tax.id: tax.name for tax in taxes}
    due: dict[int, date] = {}
    made_from: dict[int, list[int]] = {}
    for move_line in move_lines:
        if move_line.maturity_date is not None:
            maturity = move_line.maturity_date.value()
            due[move_line.move] = min(maturity, due.get(move_line.move, maturity))
        if move_line.origin and move_line.origin.startswith(_LINE_ORIGIN):
            made_from.setdefault(int(move_line.origin.removeprefix(_LINE_ORIGIN)), []).append(move_line.id)
    allocated = await connector.line_cost_centers([move_line.id for move_line in move_lines], scope)
    units = {row.id: minor_unit(row.currency_.code or scope.record.currency) for row in invoices}
    by_invoice: dict[int, list[InvoiceLine]] = {}
    for line in sorted(lines, key=lambda line: (line.sequence is not None, line.sequence or 0, line.id)):
        if line.type != "line" or line.invoice is None:
            continue
        centers = {allocated.get(move_line) for move_line in made_from.get(line.id, [])}
        by_invoice.setdefault(line.invoice, []).append(
            InvoiceLine(
                description=line.description or "",
                quantity=_quantity(line.quantity),
                unit_price=line.unit_price.value() if line.unit_price is not None else Decimal(0),
                amount=(line.amount.value() if line.amount is not None else Decimal(0)).quantize(
                    units[line.invoice]
                ),
                product=line.product_.code if line.product_ is not None else None,
                account_code=(line.account_.code if line.account_ is not None else None) or "",
                tax_codes=tuple(tax_names.get(tax, str(tax)) for tax in line.taxes),
                cost_center=next(iter(centers)) if len(centers) == 1 else None,
            )
        )
    return [
        _invoice(connector, row, by_invoice.get(row.id, []), due.get(row.move or 0), scope)
        for row in invoices
    ]


async def _taxes(connector: TrytonConnector, ids: list[int], scope: Entity) -> list[rows.TaxRow]:
    if not ids:
        return []
    return await connector.search(
        "account.tax", [("id", "in", ids)], rows.TaxRow, {**scope.context, "active_test": False}
    )


async def _move_lines(
    connector: TrytonConnector, moves: list[int], scope: Entity
) -> list[rows.InvoiceMoveLineRow]:
    if not moves:
        return []
    return await connector.search_all(
        "account.move.line", [("move", "in", moves)], rows.InvoiceMoveLineRow, scope.context
    )


def _invoice(
    connector: TrytonConnector,
    row: rows.InvoiceRow,
    lines: list[InvoiceLine],
    due: date | None,
    scope: Entity,
) -> Invoice:
    state = connector.rules.document_states.get(row.state)
    if state is None:
        raise UpstreamContractError(f"the ERP has an invoice in an unknown state {row.state!r}")
    currency = row.currency_.code or scope.record.currency
    unit = minor_unit(currency)
    total = row.total_amount.value().quantize(unit)
    if state is DocumentState.POSTED:
        amount_due = row.amount_to_pay.value() if row.amount_to_pay is not None else total
    else:
        amount_due = total if state is DocumentState.DRAFT else Decimal(0)
    return Invoice(
        id=connector.record_id("invoice", row.id),
        source=connector.source,
        source_ref=f"account.invoice,{row.id}",
        external_ref=row.external_ref,
        modified_at=_written(row),
        deleted=state is DocumentState.CANCELLED,
        mapping_version=connector.rules.version,
        entity=scope.code,
        customer=row.party_.code or str(row.party_.id),
        number=row.number,
        invoice_date=row.invoice_date.value() if row.invoice_date is not None else None,
        due_date=due,
        currency=currency,
        lines=tuple(lines),
        untaxed_amount=row.untaxed_amount.value().quantize(unit),
        tax_amount=row.tax_amount.value().quantize(unit),
        total_amount=total,
        amount_due=amount_due.quantize(unit),
        state=state,
        description=row.description or None,
    )


def _written(row: rows.InvoiceRow) -> datetime:
    return (row.write_date or row.create_date).value()


def _after(cursor: str) -> tuple[datetime, int]:
    """The ``(write_date, id)`` inside a cursor of :func:`invoice_page`."""
    written, _, last = decode_cursor(cursor).partition("|")
    try:
        return datetime.fromisoformat(written), int(last)
    except ValueError:
        raise BadRequestError("cursor is not valid; pass a next_cursor unchanged", field="cursor") from None


def _quantity(value: float | None) -> Decimal:
    """Tryton's float quantity as the decimal it was written as: ``2.0`` is ``2``, ``1.5`` stays ``1.5``."""
    quantity = Decimal(repr(value or 0.0))
    return quantity.quantize(Decimal(1)) if quantity == quantity.to_integral_value() else quantity


# ----------------------------------------------------------------------------- writes


async def post_invoice(connector: TrytonConnector, payload: InvoiceCreate) -> Written[Invoice]:
    """Create and post ``payload`` in one ERP call, or answer the invoice already posted under its reference.

    Raises:
        InvalidEntryError: the payload breaks a canonical rule or names what the entity does not have.
        SourceRejectedError: Tryton refused the invoice; nothing was written.
        ConflictError: the ``external_ref`` is taken by an invoice with other content.
    """
    validate_invoice(payload)
    scope = await connector.entity(payload.entity)
    existing = await _existing(connector, payload, scope)
    if existing is not None:
        return existing
    values, cost_centers = await _values(connector, payload, scope)
    try:
        (invoice_id,) = await call_write(
            connector.rpc, "model.account.invoice.finsync_post", [values], [cost_centers], scope.context
        )
    except TrytonUserError as refused:
        # Lost the race to a request with the same reference? Then that invoice is the answer.
        existing = await _existing(connector, payload, scope)
        if existing is not None:
            return existing
        raise SourceRejectedError(
            f"the ERP refused the invoice: {refused.message}", source_message=str(refused)
        ) from None
    found = await connector.search(
        "account.invoice", [("id", "=", invoice_id)], rows.InvoiceRow, scope.context
    )
    (invoice,) = await invoice_records(connector, found, scope)
    return Written(invoice, created=True)


async def _existing(
    connector: TrytonConnector, payload: InvoiceCreate, scope: Entity
) -> Written[Invoice] | None:
    """The invoice already created under ``payload.external_ref``; 409 when its content differs."""
    found = await connector.search(
        "account.invoice",
        [("external_ref", "=", payload.external_ref), ("company", "=", scope.company_id)],
        rows.InvoiceRow,
        scope.context,
    )
    if not found:
        return None
    (invoice,) = await invoice_records(connector, found, scope)
    if not _same(invoice, payload):
        raise ConflictError(
            f"external_ref {payload.external_ref!r} is already used by another invoice ({invoice.id}) "
            "with different content",
            existing_id=invoice.id,
        )
    return Written(invoice, created=False)


def _same(invoice: Invoice, payload: InvoiceCreate) -> bool:
    """Same customer, date, currency and lines, in order; a line's account only when the payload names one."""
    if (invoice.customer, invoice.invoice_date, invoice.currency, len(invoice.lines)) != (
        payload.customer,
        payload.invoice_date,
        payload.currency,
        len(payload.lines),
    ):
        return False
    return all(
        (
            held.description,
            held.quantity,
            held.unit_price,
            held.product,
            sorted(held.tax_codes),
            held.cost_center,
        )
        == (
            line.description,
            line.quantity,
            line.unit_price,
            line.product,
            sorted(line.tax_codes),
            line.cost_center,
        )
        and (line.account_code is None or held.account_code == line.account_code)
        for held, line in zip(invoice.lines, payload.lines, strict=True)
    )


async def _values(
    connector: TrytonConnector, payload: InvoiceCreate, scope: Entity
) -> tuple[dict[str, Any], list[int | None]]:
    """Tryton's create values of the invoice, and each line's cost centre, after checking every code it names."""
    lines = payload.lines
    products = sorted({line.product for line in lines if line.product})
    accounts = sorted({line.account_code for line in lines if line.account_code})
    taxes = sorted({tax for line in lines for tax in line.tax_codes})
    context = scope.context
    (
        customers,
        product_rows,
        postable,
        revenue,
        tax_rows,
        cost_centers,
        periods,
        journals,
        currencies,
    ) = await asyncio.gather(
        _customer_ids(connector, payload.customer),
        connector.search("product.product", [("code", "in", products)], rows.ProductUnitRow, context),
        connector.postable_accounts(scope),
        connector.rpc.call(
            "model.account.account.search",
            [("company", "=", scope.company_id), ("code", "in", accounts), ("type.revenue", "=", True)],
            0,
            None,
            None,
            context,
        ),
        connector.search(
            "account.tax",
            [("company", "=", scope.company_id), ("name", "in", taxes), ("parent", "=", None)],
            rows.TaxRow,
            context,
        ),
        connector.cost_centers(scope.code),
        connector.periods(scope.code),
        connector.search("account.journal", [("code", "=", INVOICE_JOURNAL)], rows.JournalRow, context),
        connector.rpc.call(
            "model.currency.currency.search", [("code", "=", scope.record.currency)], 0, 1, None, {}
        ),
    )
    product_by_code = {row.code: row for row in product_rows if row.code}
    revenue_ids = set(revenue)
    tax_ids = {row.name: row.id for row in tax_rows}
    center_ids = {center.code: int(center.source_ref.rsplit(",", 1)[1]) for center in cost_centers}
    violations = text_violations({"description": payload.description})
    if payload.customer not in customers:
        violations.append(
            Violation(
                reason="unknown-customer",
                message=f"{payload.customer!r} is not a customer of this ERP",
                field="customer",
            )
        )
    if payload.currency != scope.record.currency:
        violations.append(
            Violation(
                reason="wrong-currency",
                message=f"{scope.code} invoices in {scope.record.currency}, not {payload.currency}",
                field="currency",
            )
        )
    if (late := period_violation(periods, payload.invoice_date, scope.code, "invoice_date")) is not None:
        violations.append(late)
    else:
        violations.extend(await _sequence_violations(connector, payload.invoice_date, periods, scope))
    if not journals or not currencies:
        raise UpstreamContractError(
            f"the ERP has no {INVOICE_JOURNAL} journal or no {scope.record.currency} currency"
        )
    values: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        product = product_by_code.get(line.product) if line.product else None
        found = _line_violations(index, line, product, postable, revenue_ids, tax_ids, center_ids, scope.code)
        violations.extend(found)
        if found:
            continue
        value: dict[str, Any] = {
            "type": "line",
            "sequence": index + 1,
            "description": line.description,
            "quantity": float(line.quantity),
            "unit_price": line.unit_price,
            "currency": currencies[0],
            "company": scope.company_id,
        }
        if product is not None:
            value["product"] = product.id
        if line.account_code:
            value["account"] = postable[line.account_code]
        if line.tax_codes:
            value["taxes"] = [["add", [tax_ids[tax] for tax in line.tax_codes]]]
        values.append(value)
    if violations:
        raise InvalidEntryError(
            f"the invoice names what {scope.code} does not have: {violations[0].message}"
            + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
            violations=violations,
        )
    invoice: dict[str, Any] = {
        "company": scope.company_id,
        "type": "out",
        "party": customers[payload.customer],
        "currency": currencies[0],
        "journal": journals[0].id,
        "invoice_date": payload.invoice_date,
        # Tryton dates what is due from here: the due date given, else the invoice date (and the payment term).
        "payment_term_date": payload.due_date or payload.invoice_date,
        "description": payload.description or "",
        "external_ref": payload.external_ref,
        "lines": [["create", values]],
    }
    if payload.due_date is not None:
        invoice["payment_term"] = None
    return invoice, [center_ids[line.cost_center] if line.cost_center else None for line in lines]


def _line_violations(
    index: int,
    line: InvoiceLineCreate,
    product: rows.ProductUnitRow | None,
    postable: dict[str, int],
    revenue: set[int],
    taxes: dict[str, int],
    centers: dict[str, int],
    entity: str,
) -> list[Violation]:
    """Why line ``index`` cannot be invoiced: unknown codes, a non-revenue account, too fine a quantity."""
    found = text_violations({"description": line.description}, index)

    def refuse(reason: str, text: str, field: str) -> None:
        found.append(Violation(reason=reason, message=f"line {index}: {text}", line=index, field=field))

    if line.product and product is None:
        refuse("unknown-product", f"{line.product!r} is not a product of this ERP", "product")
    if line.account_code:
        account = postable.get(line.account_code)
        if account is None:
            refuse(
                "unknown-account",
                f"{line.account_code!r} is not an open leaf account of {entity}",
                "account_code",
            )
        elif account not in revenue:
            refuse("not-revenue-account", f"{line.account_code!r} is not a revenue account", "account_code")
    elif not line.product:
        refuse("no-account", "a line without a product needs an account_code", "account_code")
    for tax in line.tax_codes:
        if tax not in taxes:
            refuse("unknown-tax", f"{tax!r} is not a tax of {entity}", "tax_codes")
    if line.cost_center and line.cost_center not in centers:
        refuse("unknown-cost-center", f"{line.cost_center!r} is not a cost centre of {entity}", "cost_center")
    digits = product.uom_.digits if product is not None else None
    if digits is not None and line.quantity.is_finite() and decimal_places(line.quantity) > digits:
        refuse(
            "too-many-decimals",
            f"quantity {line.quantity} has more than the {digits} decimals of its unit",
            "quantity",
        )
    return found


async def _customer_ids(connector: TrytonConnector, code: str) -> dict[str, int]:
    """``{code: party id}`` when ``code`` is a customer (a party in the mapping's customer category)."""
    category = await connector.party_category("customer")
    if category is None:
        return {}
    found = await connector.search(
        "party.party", [("code", "=", code), ("categories", "=", category)], rows.PartyRow, {}
    )
    return {row.code: row.id for row in found if row.code}


async def _sequence_violations(
    connector: TrytonConnector, day: date, periods: list[FiscalPeriod], scope: Entity
) -> list[Violation]:
    """An invoice dated ``day`` must not come before one Tryton has already numbered in that fiscal year."""
    year = next(p.fiscal_year for p in periods if p.start_date <= day <= p.end_date)
    end = max(p.end_date for p in periods if p.fiscal_year == year)
    later: list[dict[str, Any]] = await connector.rpc.call(
        "model.account.invoice.search_read",
        [
            ("company", "=", scope.company_id),
            ("type", "=", "out"),
            ("number", "!=", None),
            ("invoice_date", ">", day),
            ("invoice_date", "<=", end),
        ],
        0,
        1,
        [["invoice_date", "DESC"]],
        ["number", "invoice_date"],
        scope.context,
    )
    if not later:
        return []
    return [
        Violation(
            reason="invoice-date-out-of-sequence",
            message=(
                f"{scope.code} has already numbered invoice {later[0]['number']} dated "
                f"{later[0]['invoice_date'].isoformat()}; invoice numbers follow invoice dates, so the "
                f"invoice date must be on or after it"
            ),
            field="invoice_date",
        )
    ]
