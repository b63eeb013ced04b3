"""Wire shapes of ``/v1/sources``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from shared.pagination import Page
from shared.settings import SourceKind

__all__ = ("Source", "SourceHealth", "SourcePage")


class SourceHealth(msgspec.Struct, kw_only=True):
    """Result of the latest live probe of a source."""

    status: Literal["up", "down"]
    """``up`` when the source answered its health check."""
    checked_at: datetime
    """When the probe ran (UTC)."""
    latency_ms: float
    """How long the probe took."""
    detail: str
    """What the probe saw, such as ``HTTP 200`` or ``unreachable: ConnectError``."""


class Source(msgspec.Struct, kw_only=True):
    """A configured source system."""

    id: str
    """Source id from the configuration, such as ``erp-us``."""
    kind: SourceKind
    """Connector kind."""
    description: str
    """Free text from the configuration."""
    health: SourceHealth
    """Live health."""


class SourcePage(Page[Source], kw_only=True):
    """A page of sources."""
