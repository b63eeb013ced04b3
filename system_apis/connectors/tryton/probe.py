"""Health probe of a Tryton server: one cheap JSON-RPC call that needs no session."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import httpx

from shared.http_client import Probe, elapsed_ms

if TYPE_CHECKING:
    from shared.settings import TrytonSourceConfig

__all__ = ("TrytonProbe",)

PROBE_TIMEOUT = 2.0
"""Seconds before a silent Tryton counts as down."""


class TrytonProbe:
    """Asks a Tryton server for its version (``common.server.version``); an answer means up."""

    def __init__(self, client: httpx.AsyncClient, config: TrytonSourceConfig) -> None:
        self.client = client
        self.url = config.url.rstrip("/") + "/rpc/"

    async def probe(self) -> Probe:
        """Call the server once; never raises."""
        started = time.perf_counter()
        request = {"id": 0, "method": "common.server.version", "params": []}
        try:
            response = await self.client.post(self.url, json=request, timeout=PROBE_TIMEOUT)
        except httpx.TimeoutException:
            return Probe(status="down", latency_ms=elapsed_ms(started), detail="no answer in time")
        except httpx.HTTPError as exc:
            return Probe(
                status="down", latency_ms=elapsed_ms(started), detail=f"unreachable: {type(exc).__name__}"
            )
        version = None
        if response.is_success:
            try:
                version = response.json().get("result")
            except ValueError:
                version = None
        status: Literal["up", "down"] = "up" if isinstance(version, str) else "down"
        detail = f"Tryton {version}" if isinstance(version, str) else f"HTTP {response.status_code}"
        return Probe(status=status, latency_ms=elapsed_ms(started), detail=detail)
