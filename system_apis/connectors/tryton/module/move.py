"""``account.move`` with an ``external_ref``, and a create-and-post call for the connector."""

from __future__ import annotations

from typing import Any, Final

from trytond.pool import Pool, PoolMeta
from trytond.rpc import RPC
from trytond.transaction import Transaction

from system_apis.connectors.tryton.module.external_ref import ExternalRefMixin

__all__ = ("PAYMENT_REF_CONTEXT", "Move")

PAYMENT_REF_CONTEXT: Final = "finsync_payment_ref"
"""Context key under which :meth:`Invoice.finsync_pay` hands the payment's reference to the move it creates."""


class Move(ExternalRefMixin, metaclass=PoolMeta):
    """Journal entries (moves), unique by ``(company, external_ref)``."""

    __name__ = "account.move"

    @classmethod
    def __setup__(cls) -> None:
        """Expose :meth:`finsync_post` over RPC."""
        super().__setup__()
        cls.__rpc__["finsync_post"] = RPC(readonly=False)

    @classmethod
    def create(cls, vlist: list[dict[str, Any]]) -> list[Any]:
        """Create; with :data:`PAYMENT_REF_CONTEXT` set, the moves carry that reference from their insert on.

        Tryton's ``pay_invoice`` creates and posts the payment's move itself, and
        a posted move cannot be written to; so the reference must be there when
        the row is inserted, which is also when the unique constraint refuses a
        second payment with it.
        """
        reference = Transaction().context.get(PAYMENT_REF_CONTEXT)
        if reference:
            vlist = [{**values, "external_ref": reference} for values in vlist]
        moves: list[Any] = super().create(vlist)
        return moves

    @classmethod
    def finsync_post(cls, vlist: list[dict[str, Any]]) -> list[int]:
        """Create the moves of ``vlist`` and post them, in one transaction.

        Either every move is created *and* posted, or the transaction rolls back
        and nothing is written: a refused post (unbalanced, closed period) never
        leaves a draft behind. Each move's period is the open period of its date.
        """
        period_model = Pool().get("account.period")
        for values in vlist:
            if values.get("period") is None:
                values["period"] = period_model.find(values["company"], date=values["date"])
        moves = cls.create(vlist)
        cls.post(moves)
        return [move.id for move in moves]
