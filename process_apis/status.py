"""``/v1/system-health``: the health of the system layer and its sources, as this layer sees them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

import msgspec
from litestar import get

from shared.auth.middleware import AUTH_ERRORS, requires
from shared.errors import UpstreamError
from shared.problems import problem_responses

if TYPE_CHECKING:
    from litestar.datastructures import State

    from process_apis.clients.system import Source, SystemClient

__all__ = ("SourceStatus", "SystemHealth", "get_system_health")


class SourceStatus(msgspec.Struct, kw_only=True):
    """One source, as the system layer reports it."""

    id: str
    kind: str
    status: Literal["up", "down"]
    detail: str


class SystemHealth(msgspec.Struct, kw_only=True):
    """Health of the layer below and of the sources behind it."""

    layer: Literal["system"]
    """Always ``system``."""
    status: Literal["up", "down"]
    """Readiness of the system layer."""
    latency_ms: float
    """Time the readiness call took."""
    detail: str
    """What the readiness call saw."""
    sources: list[SourceStatus] | None
    """The system layer's sources; null when they could not be listed."""


def _status(source: Source) -> SourceStatus:
    return SourceStatus(
        id=source.id, kind=source.kind, status=source.health.status, detail=source.health.detail
    )


@get(
    "/v1/system-health",
    operation_id="GetSystemHealth",
    summary="Health of the system layer and its sources",
    tags=["status"],
    responses=problem_responses(*AUTH_ERRORS),
    **requires("flows:read"),
)
async def get_system_health(state: State) -> SystemHealth:
    """Always answers 200: a system layer that is down is reported, not propagated as an error."""
    client: SystemClient = state.below
    ready, sources = await asyncio.gather(client.ready(), client.list_sources(), return_exceptions=True)
    if isinstance(ready, BaseException):
        raise ready
    listed: list[SourceStatus] | None = None
    if not isinstance(sources, BaseException):
        listed = [_status(source) for source in sources]
    elif not isinstance(sources, UpstreamError):
        raise sources
    return SystemHealth(
        layer="system", status=ready.status, latency_ms=ready.latency_ms, detail=ready.detail, sources=listed
    )
