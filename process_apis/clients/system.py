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
from shared.pagination import Page

__all__ = ("Source", "SourceHealth", "SourcePage", "SystemClient")


class SourceHealth(msgspec.Struct, kw_only=True):
    """``SourceHealth`` in the system spec."""

    status: Literal["up", "down"]
    checked_at: datetime
    latency_ms: float
    detail: str


class Source(msgspec.Struct, kw_only=True):
    """``Source`` in the system spec."""

    id: str
    kind: str
    description: str
    health: SourceHealth


class SourcePage(Page[Source], kw_only=True):
    """A page of ``ListSources``."""


class SystemClient(LayerClient):
    """Calls system_apis."""

    layer = "system layer"

    async def ready(self) -> Probe:
        """``GetReadiness``: is the system layer serving with its own dependencies up."""
        return await self.probe("/health/ready")

    async def list_sources(self) -> list[Source]:
        """``ListSources``, every page."""
        return await self.get_every_page("/v1/sources", SourcePage)
