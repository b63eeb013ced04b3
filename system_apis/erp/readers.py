"""What every ERP source answers, whatever its kind: legal entities, fiscal periods and actuals.

A Tryton source answers every ERP route; a generated ledger (``kind =
"generated"``) answers these reads only. The routes that serve them go through
:class:`ActualsReader`, so both kinds stream balances the same way: in batches,
as they are produced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from system_apis.connectors.tryton.actuals import actuals

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from shared.canonical import Balance, FiscalPeriod, LegalEntity
    from system_apis.connectors.generated.ledger import GeneratedLedger
    from system_apis.connectors.tryton.connector import TrytonConnector

__all__ = ("ActualsReader", "GeneratedActuals", "TrytonActuals")


class ActualsReader(Protocol):
    """The reads an actuals flow needs from an ERP source."""

    async def legal_entities(self) -> list[LegalEntity]:
        """Every legal entity."""
        ...

    async def fiscal_periods(self, entity: str | None = None) -> list[FiscalPeriod]:
        """The monthly periods of ``entity``, or of every entity."""
        ...

    def balance_batches(
        self, entity: str, period_from: str | None, period_to: str | None, account: str | None
    ) -> AsyncIterator[list[Balance]]:
        """The actuals of ``entity`` in the periods from ``period_from`` to ``period_to`` (both included, None:
        open-ended), of ``account`` only when given, in batches."""
        ...


class TrytonActuals:
    """A Tryton source's actuals (``system_apis.connectors.tryton.actuals``)."""

    def __init__(self, connector: TrytonConnector) -> None:
        self.connector = connector

    async def legal_entities(self) -> list[LegalEntity]:
        """The Tryton companies."""
        return [entity.record for entity in (await self.connector.entities()).values()]

    async def fiscal_periods(self, entity: str | None = None) -> list[FiscalPeriod]:
        """Tryton's standard periods."""
        return await self.connector.periods(entity)

    async def balance_batches(
        self, entity: str, period_from: str | None, period_to: str | None, account: str | None
    ) -> AsyncIterator[list[Balance]]:
        """Tryton's balances of the range, read in one go (Tryton computes them per period and account)."""
        scope = await self.connector.entity(entity)
        periods = [
            p
            for p in await self.connector.periods(entity)
            if (period_from is None or p.code >= period_from) and (period_to is None or p.code <= period_to)
        ]
        accounts = [a for a in await self.connector.accounts(entity) if account is None or a.code == account]
        yield await actuals(self.connector, scope, periods, accounts)


class GeneratedActuals:
    """A generated ledger's actuals, computed batch by batch."""

    def __init__(self, ledger: GeneratedLedger) -> None:
        self.ledger = ledger

    async def legal_entities(self) -> list[LegalEntity]:
        """The generated entities."""
        return list(self.ledger.entities)

    async def fiscal_periods(self, entity: str | None = None) -> list[FiscalPeriod]:
        """The generated periods."""
        return self.ledger.periods(entity)

    async def balance_batches(
        self, entity: str, period_from: str | None, period_to: str | None, account: str | None
    ) -> AsyncIterator[list[Balance]]:
        """Each batch as it is generated."""
        for batch in self.ledger.balances(entity, period_from, period_to):
            yield batch if account is None else [b for b in batch if b.account_code == account]
