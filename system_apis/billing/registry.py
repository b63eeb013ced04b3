"""The configured billing sources, each with its connector."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import NotFoundError
from shared.settings import StripeSourceConfig
from system_apis.connectors.stripe.connector import StripeConnector

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from shared.http_client import Probe
    from shared.settings import SourceConfig

__all__ = ("BillingRegistry",)


class BillingRegistry:
    """Every billing source by id."""

    def __init__(self, configs: dict[str, SourceConfig]) -> None:
        self.connectors = {
            source: StripeConnector(source, config)
            for source, config in configs.items()
            if isinstance(config, StripeSourceConfig)
        }

    @property
    def probes(self) -> dict[str, Callable[[], Awaitable[Probe]]]:
        """Each source's own probe (with its own secret key, never retried)."""
        return {source: connector.probe for source, connector in self.connectors.items()}

    def get(self, source: str) -> StripeConnector:
        """The connector of billing source ``source``; :class:`NotFoundError` when there is none."""
        connector = self.connectors.get(source)
        if connector is None:
            raise NotFoundError(f"no billing source {source!r}", field="source")
        return connector

    async def aclose(self) -> None:
        """Close every connection."""
        for connector in self.connectors.values():
            await connector.aclose()
