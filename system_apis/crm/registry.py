"""The configured CRM sources, each with its connector, and the store of incremental-read cursors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import NotFoundError
from shared.settings import SalesforceSourceConfig
from system_apis.connectors.salesforce.connector import SalesforceConnector
from system_apis.crm.feed import BookingFeed
from system_apis.cursors import CursorStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import redis.asyncio as aioredis

    from shared.http_client import Probe
    from shared.settings import SourceConfig

__all__ = ("CrmRegistry",)


class CrmRegistry:
    """Every CRM source by id, and where their booking reads stand."""

    def __init__(self, configs: dict[str, SourceConfig], redis: aioredis.Redis) -> None:
        self.connectors = {
            source: SalesforceConnector(source, config)
            for source, config in configs.items()
            if isinstance(config, SalesforceSourceConfig)
        }
        self.feeds = CursorStore(redis, BookingFeed)

    @property
    def probes(self) -> dict[str, Callable[[], Awaitable[Probe]]]:
        """Each source's own probe, with its session's token (a login per probe would count against the org)."""
        return {source: connector.probe for source, connector in self.connectors.items()}

    def get(self, source: str) -> SalesforceConnector:
        """The connector of CRM source ``source``; :class:`NotFoundError` when there is none."""
        connector = self.connectors.get(source)
        if connector is None:
            raise NotFoundError(f"no CRM source {source!r}", field="source")
        return connector

    async def aclose(self) -> None:
        """Close every connection."""
        for connector in self.connectors.values():
            await connector.client.aclose()
