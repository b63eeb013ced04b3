"""Payments received for receivable invoices, recorded in one ERP call and replay-safe in the ERP.

A payment is one call to the finsync module's ``account.invoice.finsync_pay``:
Tryton's own ``pay_invoice`` books the payment move (the payment method's
account against the invoice's receivable) and links it to the invoice, and a
payment of everything due reconciles the invoice, which makes it paid; all in
one transaction, with the invoice locked. The payment move carries the
payload's ``external_ref``, unique per company like every finsync move, so a
retry or a race cannot pay twice: the connector answers the payment already
booked (or 409 when it differs).

The canonical :class:`~shared.canonical.Payment` is that move: its id is
``{source}:payment:{move id}``, its amount the move's total.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from shared.canonical import DocumentKind, DocumentRef, Payment, PaymentCreate, validate_payment
from shared.errors import (
    ConflictError,
    InvalidEntryError,
    NotFoundError,
    SourceRejectedError,
    Violation,
)
from system_apis.connectors.tryton import rows
from system_apis.connectors.tryton.checks import period_violation, text_violations
from system_apis.connectors.tryton.rpc import TrytonUserError
from system_apis.connectors.tryton.written import Written, call_write

if TYPE_CHECKING:
    from system_apis.connectors.tryton.connector import Entity, TrytonConnector

__all__ = ("DEFAULT_PAYMENT_JOURNAL", "record_payment")

DEFAULT_PAYMENT_JOURNAL: Final = "CASH"
"""Journal of the payment method used when a payment names none."""
_INVOICE_ORIGIN: Final = "account.invoice,"
"""Prefix of the ``origin`` of a payment move made by ``pay_invoice``."""


async def record_payment(connector: TrytonConnector, payload: PaymentCreate) -> Written[Payment]:
    """Record ``payload`` against its invoice in one ERP call, or answer the payment already booked under its reference.

    Raises:
        InvalidEntryError: the payload breaks a canonical rule, names an invoice that cannot take it
            (unknown, not posted, already paid, less due than paid, another currency) or a journal
            without a payment method, or falls in a closed period.
        SourceRejectedError: Tryton refused the payment; nothing was written.
        ConflictError: the ``external_ref`` is taken by another payment or by a journal entry.
    """
    validate_payment(payload)
    scope = await connector.entity(payload.entity)
    existing = await _existing(connector, payload, scope)
    if existing is not None:
        return existing
    invoice, method = await _checked(connector, payload, scope)
    try:
        move_id = await call_write(
            connector.rpc,
            "model.account.invoice.finsync_pay",
            invoice.id,
            payload.amount,
            payload.payment_date,
            method,
            payload.external_ref,
            payload.description or "",
            scope.context,
        )
    except TrytonUserError as refused:
        # Lost the race to a request with the same reference? Then that payment is the answer.
        existing = await _existing(connector, payload, scope)
        if existing is not None:
            return existing
        raise SourceRejectedError(
            f"the ERP refused the payment: {refused.message}", source_message=str(refused)
        ) from None
    moves = await connector.search("account.move", [("id", "=", move_id)], rows.MoveRow, scope.context)
    (payment,) = await _payments(connector, moves, scope)
    return Written(payment, created=True)


async def _existing(
    connector: TrytonConnector, payload: PaymentCreate, scope: Entity
) -> Written[Payment] | None:
    """The payment already booked under ``payload.external_ref``; 409 when it is another payment or not one."""
    moves = await connector.moves_by_ref(payload.external_ref, scope)
    if not moves:
        return None
    (move,) = moves
    if not (move.origin or "").startswith(_INVOICE_ORIGIN):
        raise ConflictError(
            f"external_ref {payload.external_ref!r} is already used by a journal entry, not a payment",
            existing_id=connector.record_id("move", move.id),
        )
    (payment,) = await _payments(connector, moves, scope)
    wanted = payload.settles
    same_document = (
        payment.settles.id == wanted.id
        if wanted.id is not None
        else payment.settles.external_ref == wanted.external_ref
    )
    if not (
        same_document and payment.amount == payload.amount and payment.payment_date == payload.payment_date
    ):
        raise ConflictError(
            f"external_ref {payload.external_ref!r} is already used by another payment ({payment.id}) "
            "with a different invoice, amount or date",
            existing_id=payment.id,
        )
    return Written(payment, created=False)


async def _checked(
    connector: TrytonConnector, payload: PaymentCreate, scope: Entity
) -> tuple[rows.InvoiceRow, int]:
    """The invoice to pay and the payment method's id, after checking the payment fits them."""
    invoice, methods, periods = await asyncio.gather(
        _invoice(connector, payload, scope),
        connector.search(
            "account.invoice.payment.method",
            [
                ("company", "=", scope.company_id),
                ("journal.code", "=", payload.journal or DEFAULT_PAYMENT_JOURNAL),
            ],
            rows.PaymentMethodRow,
            scope.context,
        ),
        connector.periods(scope.code),
    )
    violations = text_violations({"description": payload.description})
    if invoice is not None:
        violations.extend(_invoice_violations(payload, invoice))
    if not methods:
        violations.append(
            Violation(
                reason="unknown-journal",
                message=f"{payload.journal or DEFAULT_PAYMENT_JOURNAL!r} is not the journal of a payment method "
                f"of {scope.code}",
                field="journal",
            )
        )
    if (late := period_violation(periods, payload.payment_date, scope.code, "payment_date")) is not None:
        violations.append(late)
    if invoice is None:
        violations.insert(
            0,
            Violation(
                reason="unknown-invoice",
                message=f"{scope.code} has no customer invoice {payload.settles.id or payload.settles.external_ref!r}",
                field="settles",
            ),
        )
    if violations:
        raise InvalidEntryError(
            f"the payment cannot be recorded: {violations[0].message}"
            + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
            violations=violations,
        )
    assert invoice is not None
    return invoice, methods[0].id


def _invoice_violations(payload: PaymentCreate, invoice: rows.InvoiceRow) -> list[Violation]:
    """Why ``invoice`` cannot take ``payload``: its state, its currency, or less due than paid."""
    name = invoice.number or f"#{invoice.id}"
    if invoice.state != "posted":
        reason = "invoice-paid" if invoice.state == "paid" else "invoice-not-posted"
        return [
            Violation(
                reason=reason,
                message=f"invoice {name} is {invoice.state}; only a posted invoice with an amount due can be paid",
                field="settles",
            )
        ]
    found: list[Violation] = []
    if payload.currency != invoice.currency_.code:
        found.append(
            Violation(
                reason="wrong-currency",
                message=f"invoice {name} is in {invoice.currency_.code}, not {payload.currency}",
                field="currency",
            )
        )
    due = invoice.amount_to_pay.value() if invoice.amount_to_pay is not None else Decimal(0)
    if payload.amount > due:
        found.append(
            Violation(
                reason="over-payment",
                message=f"amount {payload.amount} is more than the {due} due on invoice {name}",
                field="amount",
            )
        )
    return found


async def _invoice(
    connector: TrytonConnector, payload: PaymentCreate, scope: Entity
) -> rows.InvoiceRow | None:
    """The customer invoice of ``scope`` that ``payload`` settles, by id or by external reference."""
    wanted = payload.settles
    if wanted.kind is not DocumentKind.INVOICE:
        return None  # bills are not paid through this connector yet: no such customer invoice
    domain: list[Any] = [("company", "=", scope.company_id), ("type", "=", "out")]
    if wanted.id is not None:
        try:
            domain.append(("id", "=", connector.tryton_id("invoice", wanted.id)))
        except NotFoundError:
            return None
    else:
        domain.append(("external_ref", "=", wanted.external_ref))
    found = await connector.search("account.invoice", domain, rows.InvoiceRow, scope.context)
    return found[0] if found else None


async def _payments(connector: TrytonConnector, moves: list[rows.MoveRow], scope: Entity) -> list[Payment]:
    """The canonical payments of the payment ``moves`` (all of ``scope``)."""
    invoice_ids = sorted({int((move.origin or "").removeprefix(_INVOICE_ORIGIN)) for move in moves})
    lines, invoices = await asyncio.gather(
        connector.search_all(
            "account.move.line",
            [("move", "in", [move.id for move in moves])],
            rows.MoveLineRow,
            scope.context,
        ),
        connector.rpc.call(
            "model.account.invoice.search_read",
            [("id", "in", invoice_ids)],
            0,
            None,
            None,
            ["external_ref"],
            scope.context,
        ),
    )
    references: dict[int, str | None] = {row["id"]: row["external_ref"] for row in invoices}
    totals: dict[int, Decimal] = {}
    parties: dict[int, str] = {}
    for line in lines:
        totals[line.move] = totals.get(line.move, Decimal(0)) + line.debit.value()
        if line.party_ is not None and line.party_.code:
            parties.setdefault(line.move, line.party_.code)
    payments: list[Payment] = []
    for move in moves:
        invoice_id = int((move.origin or "").removeprefix(_INVOICE_ORIGIN))
        payments.append(
            Payment(
                id=connector.record_id("payment", move.id),
                source=connector.source,
                source_ref=f"account.move,{move.id}",
                external_ref=move.external_ref,
                modified_at=(move.write_date or move.create_date).value(),
                mapping_version=connector.rules.version,
                entity=scope.code,
                settles=DocumentRef(
                    kind=DocumentKind.INVOICE,
                    id=connector.record_id("invoice", invoice_id),
                    external_ref=references.get(invoice_id),
                ),
                party=parties.get(move.id),
                amount=totals.get(move.id, Decimal(0)).quantize(scope.unit),
                currency=scope.record.currency,
                payment_date=move.date.value(),
                journal=move.journal_.code if move.journal_ is not None else None,
                description=move.description or None,
            )
        )
    return payments
