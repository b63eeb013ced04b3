"""Probes every source's health, at most once per TTL, sharing a probe among concurrent callers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.settings import HttpSourceConfig, TrytonSourceConfig
from system_apis.connectors.http.connector import HttpConnector
from system_apis.connectors.tryton.probe import TrytonProbe
from system_apis.sources.schemas import Source, SourceHealth

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx

    from shared.http_client import Probe
    from shared.settings import SourceConfig

__all__ = ("SourceRegistry",)

HEALTH_TTL = 2.0
"""Seconds a probe result is reused; keeps a busy listing from hammering the sources."""


class SourceRegistry:
    """The configured sources, each with its connector and its latest probe."""

    def __init__(
        self,
        configs: dict[str, SourceConfig],
        client: httpx.AsyncClient,
        probes: dict[str, Callable[[], Awaitable[Probe]]] | None = None,
    ) -> None:
        """``probes`` are the sources whose connectors probe themselves (with their own session)."""
        self.configs = configs
        self.probes = dict(probes or {})
        for source_id, cfg in configs.items():
            if isinstance(cfg, HttpSourceConfig):
                self.probes[source_id] = HttpConnector(
                    client, cfg.base_url, cfg.health_path, cfg.timeout
                ).probe
            elif isinstance(cfg, TrytonSourceConfig):
                self.probes[source_id] = TrytonProbe(client, cfg).probe
        self._cache: dict[str, tuple[float, SourceHealth]] = {}
        self._inflight: dict[str, asyncio.Task[SourceHealth]] = {}

    async def health(self, source_id: str) -> SourceHealth:
        """Live health of one source, reused for ``HEALTH_TTL`` seconds."""
        cached = self._cache.get(source_id)
        if cached is not None and time.monotonic() - cached[0] < HEALTH_TTL:
            return cached[1]
        task = self._inflight.get(source_id)
        if task is None:
            task = self._inflight[source_id] = asyncio.ensure_future(self._probe(source_id))
            task.add_done_callback(lambda _: self._inflight.pop(source_id, None))
        return await asyncio.shield(task)

    async def _probe(self, source_id: str) -> SourceHealth:
        probe = await self.probes[source_id]()
        health = SourceHealth(
            status=probe.status,
            checked_at=datetime.now(UTC),
            latency_ms=probe.latency_ms,
            detail=probe.detail,
        )
        self._cache[source_id] = (time.monotonic(), health)
        return health

    async def describe(self, source_ids: list[str]) -> list[Source]:
        """The sources named, with live health, probed concurrently."""
        healths = await asyncio.gather(*(self.health(source_id) for source_id in source_ids))
        return [
            Source(
                id=source_id,
                kind=self.configs[source_id].__struct_config__.tag,  # type: ignore[arg-type]
                description=self.configs[source_id].description,
                health=health,
            )
            for source_id, health in zip(source_ids, healths, strict=True)
        ]
