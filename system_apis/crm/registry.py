"""The configured crm sources, each with its connector (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from shared.http_client import Probe
    from shared.settings import SourceConfig

__all__ = ("CrmRegistry",)


class CrmRegistry:
    """Every crm source by id."""

    def __init__(self, configs: dict[str, SourceConfig]) -> None:
        del configs
        self.connectors: dict[str, Any] = {}

    @property
    def probes(self) -> dict[str, Callable[[], Awaitable[Probe]]]:
        """Each source's own probe."""
        return {source: connector.probe for source, connector in self.connectors.items()}

    async def aclose(self) -> None:
        """Close every connection."""
