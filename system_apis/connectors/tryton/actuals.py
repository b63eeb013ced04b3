"""Actuals (canonical :class:`~shared.canonical.Balance`) from Tryton, as DESIGN.md defines them.

Tryton's own account balances are used, with its defaults overridden:

- ``posted`` is set in the context, or draft moves would count;
- only leaf accounts are read, since parents roll their children up;
- revenue and expense accounts take the period's movement (``periods`` in the
  context); asset, liability and equity accounts take the closing balance at
  the period's end (``date`` in the context), which carries prior years forward.

The cost-centre split of a profit-and-loss account is summed from the analytic
lines of posted moves in the period under the cost-centre root, then reconciled
to the account's total by :func:`~shared.canonical.split_by_cost_center`: what
no cost centre takes is its own row, with the empty cost centre.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.canonical import Balance, BalanceKind, balance_kind_for, split_by_cost_center
from system_apis.connectors.tryton import rows

if TYPE_CHECKING:
    from shared.canonical import Account, FiscalPeriod
    from system_apis.connectors.tryton.connector import Entity, TrytonConnector

__all__ = ("actuals",)


async def actuals(
    connector: TrytonConnector, scope: Entity, periods: list[FiscalPeriod], accounts: list[Account]
) -> list[Balance]:
    """Balances of the leaf ``accounts`` of ``scope`` in each of ``periods``, split by cost centre."""
    leaves = {int(account.source_ref.rsplit(",", 1)[1]): account for account in accounts if account.is_leaf}
    profit_and_loss = [key for key, account in leaves.items() if account.type.is_profit_and_loss]
    balance_sheet = [key for key, account in leaves.items() if not account.type.is_profit_and_loss]
    computed_at = datetime.now(UTC)
    found: list[Balance] = []
    for period in periods:
        period_id = int(period.source_ref.rsplit(",", 1)[1])
        totals: dict[int, Decimal] = {}
        totals.update(await _balances(connector, scope, profit_and_loss, {"periods": [period_id]}))
        totals.update(await _balances(connector, scope, balance_sheet, {"date": period.end_date}))
        splits = await _cost_center_split(connector, scope, period_id)
        for account_id, total in totals.items():
            account = leaves[account_id]
            kind = balance_kind_for(account.type)
            allocated = splits.get(account_id, {}) if kind is BalanceKind.MOVEMENT else {}
            for cost_center, amount in sorted(split_by_cost_center(total, allocated).items()):
                found.append(
                    Balance(
                        id=f"{connector.source}:balance:{scope.code}:{period.code}:{account.code}:{cost_center}",
                        source=connector.source,
                        source_ref=f"account.account,{account_id}",
                        modified_at=computed_at,
                        mapping_version=connector.rules.version,
                        entity=scope.code,
                        period=period.code,
                        account_code=account.code,
                        account_type=account.type,
                        cost_center=cost_center,
                        amount=amount.quantize(scope.unit),
                        currency=scope.record.currency,
                        kind=kind,
                    )
                )
    return found


async def _balances(
    connector: TrytonConnector, scope: Entity, account_ids: list[int], context: dict[str, object]
) -> dict[int, Decimal]:
    """Tryton's ``balance`` of each account, posted moves only, in ``context``."""
    if not account_ids:
        return {}
    found = await connector.search(
        "account.account",
        [("id", "in", account_ids)],
        rows.BalanceRow,
        {**scope.context, "posted": True, **context},
    )
    return {row.id: row.balance.value() for row in found}


async def _cost_center_split(
    connector: TrytonConnector, scope: Entity, period_id: int
) -> dict[int, dict[str, Decimal]]:
    """Per account id, the amount (debit minus credit) each cost centre took in the period's posted moves."""
    lines = await connector.search_all(
        "analytic_account.line",
        [
            ("move_line.move.period", "=", period_id),
            ("move_line.move.state", "=", "posted"),
            ("account.root.code", "=", connector.rules.dimensions.cost_center),
        ],
        rows.AnalyticSplitRow,
        scope.context,
    )
    split: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in lines:
        split[line.move_line_.account][line.account_.code or ""] += line.debit.value() - line.credit.value()
    return split
