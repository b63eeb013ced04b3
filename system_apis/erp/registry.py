"""The configured ERP sources, each with its connector, for the ERP routes.

Tryton sources answer every ERP route; generated ledgers answer the reads of
:class:`~system_apis.erp.readers.ActualsReader` only, and any other route
refuses them clearly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import NotFoundError
from shared.settings import GeneratedSourceConfig, TrytonSourceConfig
from system_apis.connectors.generated.ledger import GeneratedLedger
from system_apis.connectors.tryton.connector import TrytonConnector
from system_apis.cursors import CursorStore
from system_apis.erp.feed import FeedState
from system_apis.erp.readers import ActualsReader, GeneratedActuals, TrytonActuals

if TYPE_CHECKING:
    import httpx
    import redis.asyncio as aioredis

    from shared.settings import SourceConfig

__all__ = ("ErpRegistry",)


class ErpRegistry:
    """Every ERP source by id, and the store of incremental-read cursors."""

    def __init__(
        self, configs: dict[str, SourceConfig], client: httpx.AsyncClient, redis: aioredis.Redis
    ) -> None:
        self.connectors = {
            source: TrytonConnector(source, config, client)
            for source, config in configs.items()
            if isinstance(config, TrytonSourceConfig)
        }
        self.generated = {
            source: GeneratedLedger(source, config)
            for source, config in configs.items()
            if isinstance(config, GeneratedSourceConfig)
        }
        self.feeds = CursorStore(redis, FeedState)

    def get(self, source: str) -> TrytonConnector:
        """The connector of ERP source ``source``; :class:`NotFoundError` when there is none."""
        connector = self.connectors.get(source)
        if connector is None:
            if source in self.generated:
                raise NotFoundError(
                    f"the ERP source {source!r} is a generated ledger: it serves legal entities, periods and "
                    "balances only",
                    field="source",
                )
            raise NotFoundError(f"no ERP source {source!r}", field="source")
        return connector

    def reader(self, source: str) -> ActualsReader:
        """Legal entities, periods and actuals of ERP source ``source``, whatever its kind."""
        ledger = self.generated.get(source)
        return GeneratedActuals(ledger) if ledger is not None else TrytonActuals(self.get(source))
