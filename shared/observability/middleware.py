"""The kernel's one inbound middleware: trace context, request id, body limit, metrics and access log.

It wraps Litestar's whole ASGI handler, not a route, so it also sees the answers
the router gives before any route matches (404, 405) and the body limit applies
to every path. It is a plain ASGI callable because Litestar's Prometheus and
structlog plugins together kept only 0.26x of a bare route's throughput here,
against 0.79x for this middleware (README, "Benchmarks").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from litestar.enums import ScopeType

from shared.observability.context import new_trace, trace_var

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from shared.observability.access import AccessLog
    from shared.observability.metrics import HttpMetrics

__all__ = ("RESPONSE_HEADERS", "ObservabilityMiddleware")

RESPONSE_HEADERS = "finsync.response_headers"
"""Scope key where inner middleware leave headers for every answer (such as the RateLimit fields),
so that ``send`` is wrapped once per request, here, rather than once per concern."""

_PROBLEM_413 = (
    b'{"type":"/problems/payload-too-large","title":"Payload too large","status":413,'
    b'"detail":"The request body is over the configured limit of %d bytes."}'
)


class ObservabilityMiddleware:
    """Give every request a trace context and request id, and record how it was answered."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics | None,
        access_log: AccessLog | None,
        max_body_size: int,
        allow: dict[str, bytes] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.max_body_size = max_body_size
        self.allow = allow or {}
        """``Allow`` of each route (path template -> methods). Litestar 2.25 answers OPTIONS on a path
        with several handlers with the methods of the first handler only; the answer is corrected here."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        traceparent = request_id = content_length = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
        trace = new_trace(traceparent, request_id, scope)  # type: ignore[arg-type]
        trace_token = trace_var.set(trace)
        status = 500
        trace_headers = [
            (b"x-request-id", trace.request_id.encode()),
            (b"x-trace-id", trace.trace_id.encode()),
        ]

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra: list[tuple[bytes, bytes]] = cast("dict[str, Any]", scope).get(RESPONSE_HEADERS, [])
                headers = [*message.get("headers", ()), *trace_headers, *extra]
                if scope["method"] == "OPTIONS" and status == 204:
                    headers = self._allow(scope, headers)
                message["headers"] = headers
            await send(message)

        started = time.perf_counter()
        try:
            if content_length is not None and _too_large(content_length, self.max_body_size):
                await self._reject_too_large(send_with_ids)
            else:
                await self.app(scope, receive, send_with_ids)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template")
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route or "unmatched", status, elapsed)
            if self.access_log is not None:
                self.access_log.record(
                    scope["method"], route, scope["path"], status, elapsed, trace, scope.get("auth")
                )
            trace_var.reset(trace_token)

    def _allow(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        allow = self.allow.get(scope.get("path_template", ""))
        if allow is None:
            return headers
        return [(name, allow if name.lower() == b"allow" else value) for name, value in headers]

    async def _reject_too_large(self, send: Send) -> None:
        body = _PROBLEM_413 % self.max_body_size
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _too_large(content_length: bytes, limit: int) -> bool:
    try:
        return int(content_length) > limit
    except ValueError:
        return False
