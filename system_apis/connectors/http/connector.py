"""Health probe of a system watched over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.http_client import Probe, probe

if TYPE_CHECKING:
    import httpx

__all__ = ("HttpConnector",)


class HttpConnector:
    """Watches one system: a 2xx on its health path means up, anything else down."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, health_path: str, timeout: float) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + "/" + health_path.lstrip("/")
        self.timeout = timeout

    async def probe(self) -> Probe:
        """GET the health path once; never raises."""
        return await probe(self.client, self.url, self.timeout)
