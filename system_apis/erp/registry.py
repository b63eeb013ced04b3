"""The configured ERP sources, each with its connector, for the ERP routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import NotFoundError
from shared.settings import TrytonSourceConfig
from system_apis.connectors.tryton.connector import TrytonConnector
from system_apis.erp.feed import FeedStore

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
        self.feeds = FeedStore(redis)

    def get(self, source: str) -> TrytonConnector:
        """The connector of ERP source ``source``; :class:`NotFoundError` when there is none."""
        connector = self.connectors.get(source)
        if connector is None:
            raise NotFoundError(f"no ERP source {source!r}", field="source")
        return connector
