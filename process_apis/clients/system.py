"""Typed client for system_apis, decoding the shapes of ``openapi/system.json``.

These Structs mirror the system layer's contract; they are not imported from it,
because layers talk only over HTTP. ``tests/contract`` checks them against the
committed spec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from shared.http_client import LayerClient, Probe

__all__ = ("SourceHealth", "SourcePage", "SourceSummary", "SystemClient")

PAGE_SIZE = 500


class SourceHealth(msgspec.Struct, kw_only=True):
    """``SourceHealth`` in the system spec."""

    status: Literal["up", "down"]
    checked_at: datetime
    latency_ms: float
    detail: str


class SourceSummary(msgspec.Struct, kw_only=True):
    """``Source`` in the system spec."""

    id: str
    kind: str
    description: str
    health: SourceHealth


class SourcePage(msgspec.Struct, kw_only=True):
    """A page of ``ListSources``."""

    items: list[SourceSummary]
    next_cursor: str | None


class SystemClient(LayerClient):
    """Calls system_apis."""

    layer = "system layer"

    async def ready(self) -> Probe:
        """``GetReadiness``: is the system layer serving with its own dependencies up."""
        return await self.probe("/health/ready")

    async def list_sources(self) -> list[SourceSummary]:
        """``ListSources``, every page."""
        sources: list[SourceSummary] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": PAGE_SIZE}
            if cursor is not None:
                params["cursor"] = cursor
            page = await self.get("/v1/sources", SourcePage, params=params)
            sources.extend(page.items)
            if page.next_cursor is None:
                return sources
            cursor = page.next_cursor
