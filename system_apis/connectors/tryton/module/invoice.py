"""``account.invoice`` with an ``external_ref``, and create-and-post and pay calls for the connector."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trytond.exceptions import UserError
from trytond.pool import Pool, PoolMeta
from trytond.rpc import RPC
from trytond.transaction import Transaction, without_check_access

from system_apis.connectors.tryton.module.external_ref import ExternalRefMixin
from system_apis.connectors.tryton.module.move import PAYMENT_REF_CONTEXT

__all__ = ("Invoice",)


class Invoice(ExternalRefMixin, metaclass=PoolMeta):
    """Customer and supplier invoices, unique by ``(company, external_ref)``."""

    __name__ = "account.invoice"

    @classmethod
    def __setup__(cls) -> None:
        """Expose :meth:`finsync_post` and :meth:`finsync_pay` over RPC."""
        super().__setup__()
        cls.__rpc__["finsync_post"] = RPC(readonly=False)
        cls.__rpc__["finsync_pay"] = RPC(readonly=False)

    @classmethod
    def finsync_post(
        cls, vlist: list[dict[str, Any]], cost_centers: list[list[int | None]] | None = None
    ) -> list[int]:
        """Create the invoices of ``vlist``, compute their taxes and post them, in one transaction.

        Either every invoice is created *and* posted, or nothing is written.
        What Tryton's form fills in from the party and the product is filled in
        here when ``vlist`` leaves it out: the invoice address, the receivable
        (or payable) account, the payment term, and each product line's account
        and unit. Tryton's warnings (a date in the future, a due date in the
        past, a similar invoice) ask a person to confirm; a caller of this
        method has already decided, so they are skipped. Its errors still refuse.

        Args:
            vlist: Tryton's create values of each invoice; lines are created with a ``sequence``.
            cost_centers: Per invoice, per line in ``sequence`` order, the analytic account the
                line's revenue (or expense) is allocated to in full, or ``None``.
        """
        # Numbering a posted invoice locks the strict sequences' table, and Tryton gets a lock by
        # restarting the transaction with it; asking first restarts it before any work, not after.
        Pool().get("ir.sequence.strict").lock()
        with Transaction().set_context(_skip_warnings=True):
            for values in vlist:
                cls._finsync_defaults(values)
            invoices = cls.create(vlist)
            cls.update_taxes(invoices)
            cls.post(invoices)
            invoices = cls.browse([invoice.id for invoice in invoices])
            if cost_centers:
                cls._finsync_allocate(invoices, cost_centers)
        return [invoice.id for invoice in invoices]

    @classmethod
    def _finsync_defaults(cls, values: dict[str, Any]) -> None:
        """Fill in what ``values`` leaves out the way Tryton's form would, from the party and the products."""
        pool = Pool()
        outgoing = values.get("type") == "out"
        with Transaction().set_context(company=values["company"]):
            party = pool.get("party.party")(values["party"])
            if "invoice_address" not in values:
                address = party.address_get(type="invoice")
                values["invoice_address"] = address.id if address else None
            if "account" not in values:
                account = party.account_receivable_used if outgoing else party.account_payable_used
                values["account"] = account.id if account else None
            if "payment_term" not in values:
                term = party.customer_payment_term if outgoing else party.supplier_payment_term
                values["payment_term"] = term.id if term else None
            product_model = pool.get("product.product")
            for action, lines in values.get("lines", []):
                if action != "create":
                    continue
                for line in lines:
                    if not line.get("product"):
                        continue
                    product = product_model(line["product"])
                    if "account" not in line:
                        account = product.account_revenue_used if outgoing else product.account_expense_used
                        line["account"] = account.id if account else None
                    line.setdefault("unit", product.default_uom.id)

    @classmethod
    def _finsync_allocate(cls, invoices: list[Any], cost_centers: list[list[int | None]]) -> None:
        """Allocate each line's move line in full to its analytic account (posted move lines may take them)."""
        allocations: list[dict[str, Any]] = []
        for invoice, centers in zip(invoices, cost_centers, strict=True):
            lines = sorted(invoice.lines, key=lambda line: (line.sequence or 0, line.id))
            for line, center in zip(lines, centers, strict=True):
                if center is None:
                    continue
                allocations.extend(
                    {
                        "account": center,
                        "move_line": move_line.id,
                        "debit": move_line.debit,
                        "credit": move_line.credit,
                        "date": move_line.date,
                    }
                    for move_line in invoice.move.lines
                    if move_line.origin == line
                )
        if allocations:
            Pool().get("analytic_account.line").create(allocations)

    @classmethod
    def finsync_pay(
        cls, invoice_id: int, amount: Decimal, date: Any, method_id: int, external_ref: str, description: str
    ) -> int:
        """Pay ``amount`` of a posted invoice by ``method_id``, in one transaction; the payment move's id.

        The invoice is locked first, so two payments of one invoice run one after
        the other and neither can pay more than is due. The payment's move is
        created with ``external_ref``, so a second payment with the same reference
        in the same company is refused by the database. A payment that settles
        what is due reconciles the invoice's lines, which makes it paid.
        """
        pool = Pool()
        method = pool.get("account.invoice.payment.method")(method_id)
        line_model = pool.get("account.move.line")
        cls.lock([invoice_id])
        invoice = cls(invoice_id)
        if invoice.state != "posted":
            raise UserError(f"Invoice {invoice.rec_name} is {invoice.state}, not posted; it cannot be paid.")
        if method.company != invoice.company:
            raise UserError(f"The payment method {method.rec_name} is not of the invoice's company.")
        if amount <= 0 or amount > invoice.amount_to_pay:
            raise UserError(
                f"The payment of {amount} must be more than 0 and at most the {invoice.amount_to_pay} due."
            )
        with Transaction().set_context({PAYMENT_REF_CONTEXT: external_ref}):
            lines = invoice.pay_invoice(amount, method, date, description)
        invoice = cls(invoice_id)
        if invoice.amount_to_pay == 0:
            # As in Tryton's pay wizard: reconciling writes fields that no user may write directly.
            with without_check_access():
                line_model.reconcile(
                    [
                        line
                        for line in (*invoice.lines_to_pay, *invoice.payment_lines)
                        if not line.reconciliation
                    ]
                )
                cls.process([invoice])
        return int(lines[0].move.id)
