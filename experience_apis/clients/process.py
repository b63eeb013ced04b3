"""Typed client for process_apis, decoding the shapes of ``openapi/process.json``.

The Structs mirror the process layer's contract; ``tests/contract`` checks them
against the committed spec.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shared.http_client import LayerClient, Probe

__all__ = ("FlowPage", "FlowSummary", "ProcessClient", "SourceStatus", "SystemHealth")

PAGE_SIZE = 500


class FlowSummary(msgspec.Struct, kw_only=True):
    """``Flow`` in the process spec (the fields this layer shows)."""

    id: str
    name: str
    description: str
    sync_model: str
    status: Literal["available", "planned"]


class FlowPage(msgspec.Struct, kw_only=True):
    """A page of ``ListFlows``."""

    items: list[FlowSummary]
    next_cursor: str | None


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

    async def list_flows(self) -> list[FlowSummary]:
        """``ListFlows``, every page."""
        flows: list[FlowSummary] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": PAGE_SIZE}
            if cursor is not None:
                params["cursor"] = cursor
            page = await self.get("/v1/flows", FlowPage, params=params)
            flows.extend(page.items)
            if page.next_cursor is None:
                return flows
            cursor = page.next_cursor
