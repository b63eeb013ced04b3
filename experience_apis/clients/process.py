"""Typed client for process_apis, decoding the shapes of ``openapi/process.json``.

The Structs mirror the process layer's contract; ``tests/contract`` checks them
against the committed spec.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shared.http_client import LayerClient, Probe
from shared.pagination import Page

__all__ = ("Flow", "FlowPage", "ProcessClient", "SourceStatus", "SystemHealth")


class Flow(msgspec.Struct, kw_only=True):
    """``Flow`` in the process spec (the fields this layer shows)."""

    id: str
    name: str
    description: str
    sync_model: str
    status: Literal["available", "planned"]


class FlowPage(Page[Flow], kw_only=True):
    """A page of ``ListFlows``."""


class SourceStatus(msgspec.Struct, kw_only=True):
    """``SourceStatus`` in the process spec."""

    id: str
    kind: str
    status: Literal["up", "down"]
    detail: str


class SystemHealth(msgspec.Struct, kw_only=True):
    """``SystemHealth`` in the process spec."""

    layer: Literal["system"]
    status: Literal["up", "down"]
    latency_ms: float
    detail: str
    sources: list[SourceStatus] | None


class ProcessClient(LayerClient):
    """Calls process_apis."""

    layer = "process layer"

    async def ready(self) -> Probe:
        """``GetReadiness`` of the process layer."""
        return await self.probe("/health/ready")

    async def system_health(self) -> SystemHealth:
        """``GetSystemHealth``: the layer below the process layer, as it sees it."""
        return await self.get("/v1/system-health", SystemHealth)

    async def list_flows(self) -> list[Flow]:
        """``ListFlows``, every page."""
        return await self.get_every_page("/v1/flows", FlowPage)
