"""The generated ledger's connector: legal entities, periods and balances computed, never stored.

It exists so that the pipeline can be loaded with a million actuals without an
ERP being the bottleneck (``tests/benchmarks/bench_pipeline.py``), and so a demo
can show a large ledger. Its books are deterministic (``seed``) and balanced the
way real ones are:

- every profit-and-loss account (``R0001``... revenue, ``X0001``... expense) has
  a movement in every period, split over every cost centre (``CC-01``...);
- the balance-sheet accounts (``B01``...) hold closing balances: all but the
  first come in pairs that cancel, and ``B01`` carries the result to date, so
  each period's movements plus the change of the closing balances sum to zero.

Rows are produced in batches as they are asked for, so a reader streaming a
million of them holds one batch at a time.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.canonical import (
    AccountType,
    Balance,
    BalanceKind,
    FiscalPeriod,
    LegalEntity,
    PeriodState,
)
from shared.errors import NotFoundError
from shared.http_client import Probe

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shared.settings import GeneratedSourceConfig

__all__ = ("BATCH", "GeneratedLedger")

BATCH = 5_000
"""Balances per batch."""
MAPPING_VERSION = "generated/v1"
"""What every generated record names as its mapping."""
_CURRENCIES = ("USD", "EUR", "GBP", "CHF", "JPY")
_AMOUNTS = 4_096
"""Distinct amounts drawn once per source (a table lookup per row keeps generation cheap)."""
_BALANCE_SHEET_TYPES = (AccountType.ASSET, AccountType.LIABILITY, AccountType.EQUITY)


@dataclass(frozen=True)
class _Account:
    code: str
    type: AccountType
    sign: int
    """+1 for an expense (a debit), -1 for revenue (a credit)."""


class GeneratedLedger:
    """The connector of one ``generated`` source."""

    kind = "generated"

    def __init__(self, source: str, config: GeneratedSourceConfig) -> None:
        self.source = source
        self.config = config
        self.created = datetime(int(config.first_period[:4]), 1, 1, tzinfo=UTC)
        draw = random.Random(config.seed)  # noqa: S311 - made-up amounts, not secrets
        # Cents between 1.00 and 9,999.99, with the currencies' minor units (JPY has none).
        self._cents = [draw.randrange(100, 1_000_000) for _ in range(_AMOUNTS)]
        self._amounts = {
            currency: [_amount(cents, currency) for cents in self._cents] for currency in set(_CURRENCIES)
        }
        self.entities = [
            LegalEntity(
                id=f"{source}:legal-entity:G{number:02d}",
                source=source,
                source_ref=f"entity,{number}",
                modified_at=self.created,
                mapping_version=MAPPING_VERSION,
                code=f"G{number:02d}",
                name=f"Generated entity {number:02d}",
                currency=_CURRENCIES[(number - 1) % len(_CURRENCIES)],
                time_zone="UTC",
            )
            for number in range(1, config.entities + 1)
        ]
        self.accounts = [
            *(_Account(f"R{n:04d}", AccountType.REVENUE, -1) for n in range(1, config.revenue_accounts + 1)),
            *(_Account(f"X{n:04d}", AccountType.EXPENSE, 1) for n in range(1, config.expense_accounts + 1)),
        ]
        self.cost_centers = [f"CC-{n:02d}" for n in range(1, config.cost_centers + 1)]
        self._movements: dict[tuple[str, int], Decimal] = {}

    @property
    def rows_per_slice(self) -> int:
        """Balances of one entity in one period."""
        return len(self.accounts) * len(self.cost_centers) + self.config.balance_sheet_accounts

    async def probe(self) -> Probe:
        """Always up: nothing is reached."""
        return Probe(
            status="up", latency_ms=0.0, detail=f"generated ledger, {self.rows_per_slice:,} rows a slice"
        )

    def entity(self, code: str) -> LegalEntity:
        """One entity by code; :class:`NotFoundError` when there is none."""
        for entity in self.entities:
            if entity.code == code:
                return entity
        raise NotFoundError(f"the ERP {self.source!r} has no legal entity {code!r}", field="entity")

    def periods(self, entity: str | None = None) -> list[FiscalPeriod]:
        """The monthly periods of ``entity`` (every entity when None), the first ``closed_periods`` closed."""
        entities = [self.entity(entity)] if entity is not None else self.entities
        year, first = int(self.config.first_period[:4]), int(self.config.first_period[5:7])
        return [
            FiscalPeriod(
                id=f"{self.source}:period:{scope.code}:{year:04d}-{month:02d}",
                source=self.source,
                source_ref=f"period,{scope.code},{month}",
                modified_at=self.created,
                mapping_version=MAPPING_VERSION,
                entity=scope.code,
                fiscal_year=str(year),
                code=f"{year:04d}-{month:02d}",
                start_date=date(year, month, 1),
                end_date=_month_end(year, month),
                state=PeriodState.CLOSED if index < self.config.closed_periods else PeriodState.OPEN,
            )
            for scope in entities
            for index, month in enumerate(range(first, first + self.config.periods))
        ]

    def balances(
        self, entity: str, period_from: str | None = None, period_to: str | None = None
    ) -> Iterator[list[Balance]]:
        """The balances of ``entity`` in the periods from ``period_from`` to ``period_to``, in batches."""
        scope = self.entity(entity)
        periods = [
            p
            for p in self.periods(entity)
            if (period_from is None or p.code >= period_from) and (period_to is None or p.code <= period_to)
        ]
        batch: list[Balance] = []
        for period in periods:
            for balance in self._slice(scope, period.code):
                batch.append(balance)
                if len(batch) == BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _slice(self, scope: LegalEntity, period: str) -> Iterator[Balance]:
        """One entity-period: every profit-and-loss amount, then the balance-sheet closing balances."""
        amounts = self._amounts[scope.currency]
        entity_index = self.entities.index(scope)
        month = int(period[5:7])
        common = {
            "source": self.source,
            "modified_at": self.created,
            "mapping_version": MAPPING_VERSION,
            "entity": scope.code,
            "period": period,
            "currency": scope.currency,
        }
        prefix = f"{self.source}:balance:{scope.code}:{period}:"
        step = entity_index * 7919 + month * 104_729
        for account_index, account in enumerate(self.accounts):
            for centre_index, centre in enumerate(self.cost_centers):
                amount = amounts[(step + account_index * 31 + centre_index) % _AMOUNTS]
                yield Balance(
                    id=f"{prefix}{account.code}:{centre}",
                    source_ref=f"account,{account.code}",
                    account_code=account.code,
                    account_type=account.type,
                    cost_center=centre,
                    amount=amount if account.sign > 0 else -amount,
                    kind=BalanceKind.MOVEMENT,
                    **common,  # type: ignore[arg-type]
                )
        for code, account_type, amount in self._closing(scope, month):
            yield Balance(
                id=f"{prefix}{code}:",
                source_ref=f"account,{code}",
                account_code=code,
                account_type=account_type,
                amount=amount,
                kind=BalanceKind.CLOSING,
                **common,  # type: ignore[arg-type]
            )

    def _closing(self, scope: LegalEntity, month: int) -> list[tuple[str, AccountType, Decimal]]:
        """Closing balances at the end of ``month``: ``B01`` carries minus the result to date, the rest cancel."""
        amounts = self._amounts[scope.currency]
        first = int(self.config.first_period[5:7])
        result = sum(
            (self._movement(scope, m) for m in range(first, month + 1)),
            Decimal(0),
        )
        rows = [("B01", AccountType.EQUITY, -result)]
        for number in range(2, self.config.balance_sheet_accounts + 1):
            pair = (number - 2) // 2
            amount = amounts[(pair * 97 + self.entities.index(scope)) % _AMOUNTS]
            rows.append(
                (
                    f"B{number:02d}",
                    _BALANCE_SHEET_TYPES[number % len(_BALANCE_SHEET_TYPES)],
                    amount if number % 2 == 0 else -amount,
                )
            )
        if self.config.balance_sheet_accounts % 2 == 0:  # an odd one out would not cancel: it carries zero
            code, account_type, _amount = rows[-1]
            rows[-1] = (code, account_type, amounts[0] * 0)
        return rows

    def _movement(self, scope: LegalEntity, month: int) -> Decimal:
        """The sum of one period's profit-and-loss movements (debit minus credit), computed once."""
        known = self._movements.get((scope.code, month))
        if known is not None:
            return known
        amounts = self._amounts[scope.currency]
        step = self.entities.index(scope) * 7919 + month * 104_729
        total = Decimal(0)
        for account_index, account in enumerate(self.accounts):
            base = step + account_index * 31
            subtotal = sum(
                (amounts[(base + centre) % _AMOUNTS] for centre in range(len(self.cost_centers))), Decimal(0)
            )
            total += subtotal if account.sign > 0 else -subtotal
        self._movements[scope.code, month] = total
        return total


def _amount(cents: int, currency: str) -> Decimal:
    return Decimal(cents // 100) if currency == "JPY" else Decimal(cents).scaleb(-2)


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])
