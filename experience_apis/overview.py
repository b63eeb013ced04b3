"""``/v1/overview``: a planner's landing data, built through the chain of layers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import msgspec
from litestar import get

from experience_apis.clients.process import Flow, ProcessClient, SourceStatus
from shared.auth.middleware import AUTH_ERRORS, requires
from shared.errors import UpstreamError
from shared.problems import problem_responses

if TYPE_CHECKING:
    from litestar.datastructures import State

__all__ = ("LayerStatus", "Overview", "get_overview")

Status = Literal["up", "down", "unknown"]


class LayerStatus(msgspec.Struct, kw_only=True):
    """Health of one layer below experience."""

    name: Literal["process", "system"]
    """Layer name."""
    status: Status
    """``unknown`` when the layer between could not tell."""
    latency_ms: float | None
    """Time the readiness call took, when it was made."""
    detail: str
    """What was seen."""


class Overview(msgspec.Struct, kw_only=True):
    """What a planner sees first."""

    generated_at: datetime
    """When this answer was assembled (UTC)."""
    status: Literal["ok", "degraded"]
    """``ok`` when every layer and source is up."""
    layers: list[LayerStatus]
    """Health of the process and system layers."""
    sources: list[SourceStatus]
    """Source systems and their health, as the system layer reports them."""
    flows: list[Flow]
    """Flows the process layer offers."""


@get(
    "/v1/overview",
    operation_id="GetOverview",
    summary="A planner's landing data",
    tags=["overview"],
    responses=problem_responses(*AUTH_ERRORS),
    **requires("workbench:read"),
)
async def get_overview(state: State) -> Overview:
    """Always answers 200: a layer that is down shows in ``layers`` rather than failing the page."""
    client: ProcessClient = state.below
    ready, system, flows = await asyncio.gather(
        client.ready(), client.system_health(), client.list_flows(), return_exceptions=True
    )
    for result in (ready, system, flows):
        if isinstance(result, BaseException) and not isinstance(result, UpstreamError):
            raise result
    assert not isinstance(ready, BaseException)  # probe() never raises
    layers = [
        LayerStatus(name="process", status=ready.status, latency_ms=ready.latency_ms, detail=ready.detail)
    ]
    sources: list[SourceStatus] = []
    if isinstance(system, BaseException):
        layers.append(LayerStatus(name="system", status="unknown", latency_ms=None, detail=str(system)))
    else:
        layers.append(
            LayerStatus(
                name="system", status=system.status, latency_ms=system.latency_ms, detail=system.detail
            )
        )
        sources = system.sources or []
    healthy = all(layer.status == "up" for layer in layers) and all(s.status == "up" for s in sources)
    return Overview(
        generated_at=datetime.now(UTC),
        status="ok" if healthy else "degraded",
        layers=layers,
        sources=sources,
        flows=[] if isinstance(flows, BaseException) else flows,
    )
