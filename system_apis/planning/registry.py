"""The configured planning sources, each with its connector, and the loads run against them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import NotFoundError
from shared.settings import AnaplanSourceConfig
from system_apis.connectors.anaplan.connector import AnaplanConnector
from system_apis.planning.loads import LoadRunner, LoadStore

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from shared.settings import SourceConfig

__all__ = ("PlanningRegistry",)


class PlanningRegistry:
    """Every planning source by id, the store of load records and the runner of loads."""

    def __init__(self, configs: dict[str, SourceConfig], redis: aioredis.Redis) -> None:
        self.connectors = {
            source: AnaplanConnector(source, config)
            for source, config in configs.items()
            if isinstance(config, AnaplanSourceConfig)
        }
        self.loads = LoadStore(redis)
        self.runner = LoadRunner(self.loads)

    async def aclose(self) -> None:
        """Stop the running loads (each is recorded ``interrupted``), then close every connection."""
        await self.runner.close()
        for connector in self.connectors.values():
            await connector.client.aclose()

    def get(self, source: str) -> AnaplanConnector:
        """The connector of planning source ``source``; :class:`NotFoundError` when there is none."""
        connector = self.connectors.get(source)
        if connector is None:
            raise NotFoundError(f"no planning source {source!r}", field="source")
        return connector
