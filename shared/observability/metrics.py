"""Prometheus metrics: request latency and errors per route and status, multiprocess-aware.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``finsync serve --workers N`` sets it), each
worker writes its samples to files there and ``GET /metrics`` merges them, so a
scrape sees every worker. prometheus_client picks its value store when first
imported, which is why the CLI sets the variable before anything imports it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from litestar import MediaType, Response, get
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from litestar.datastructures import State

__all__ = ("HttpMetrics", "metrics_endpoint")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The request metrics of one app; label children are cached so a request costs two dict lookups."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.latency = Histogram(
            "finsync_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and status.",
            ("service", "method", "route", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "finsync_http_errors",
            "HTTP answers with status >= 400, by route and status.",
            ("service", "method", "route", "status"),
            registry=self.registry,
        )
        self.service = service
        self._children: dict[tuple[str, str, int], tuple[Histogram, Counter | None]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (self.service, method, route, str(status))
            error = self.errors.labels(*labels) if status >= 400 else None
            children = self._children[key] = (self.latency.labels(*labels), error)
        children[0].observe(seconds)
        if children[1] is not None:
            children[1].inc()

    def exposition(self) -> bytes:
        """The text format of every sample, merged across workers in multiprocess mode."""
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


@get(
    "/metrics",
    media_type=MediaType.TEXT,
    summary="Prometheus metrics",
    operation_id="GetMetrics",
    tags=["operations"],
    include_in_schema=False,
    sync_to_thread=False,
)
def metrics_endpoint(state: State) -> Response[bytes]:
    """Prometheus text exposition of this service's metrics."""
    metrics: HttpMetrics = state.metrics
    # Litestar appends "; charset=utf-8" to text types itself.
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")
