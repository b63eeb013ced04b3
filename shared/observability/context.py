"""W3C trace context for the request being served, held in a context variable.

The inbound middleware sets it; logs, problem bodies and the client for the layer
below read it. Parsing follows W3C Trace Context level 1: ``version-traceid-parentid-flags``.
"""

from __future__ import annotations

import random
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "TraceContext",
    "continue_trace",
    "current_route",
    "current_trace",
    "new_trace",
    "parse_traceparent",
    "trace_var",
)

_TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class TraceContext(NamedTuple):
    """Identity of one request as it passes through a service (a tuple: built on every request)."""

    trace_id: str
    """32 hex digits, shared by every hop of one end-to-end call."""
    span_id: str
    """16 hex digits, this service's span; sent as the parent to the layer below."""
    request_id: str
    """Identifier of this request, echoed in ``X-Request-ID``."""
    flags: str = "01"
    """Trace flags, passed on unchanged."""
    scope: dict[str, Any] | None = None
    """The ASGI scope being served; the router writes the matched ``path_template`` into it."""

    @property
    def traceparent(self) -> str:
        """The header value to send to the layer below."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


trace_var: ContextVar[TraceContext | None] = ContextVar("finsync_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context of the request being served, if any."""
    return trace_var.get()


def current_route() -> str | None:
    """Path template of the route being served, once the router has matched it."""
    trace = trace_var.get()
    if trace is None or trace.scope is None:
        return None
    route: str | None = trace.scope.get("path_template")
    return route


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return ``(trace_id, flags)`` from a valid header, else ``None``."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match["trace"] == _INVALID_TRACE or match["parent"] == _INVALID_SPAN:
        return None
    return match["trace"], match["flags"]


def new_trace(
    traceparent: str | None = None, request_id: str | None = None, scope: dict[str, Any] | None = None
) -> TraceContext:
    """Continue the caller's trace when its header is valid, else start one."""
    # One draw of 192 random bits gives the trace id and the span id. W3C asks for
    # randomness, not secrecy, and this runs on every request (5x cheaper than urandom).
    ids = f"{random.getrandbits(192) | 1:048x}"
    span_id = ids[32:]
    if request_id is None or not _REQUEST_ID.match(request_id):
        request_id = span_id
    parsed = parse_traceparent(traceparent) if traceparent else None
    if parsed is None:
        return TraceContext(ids[:32], span_id, request_id, "01", scope)
    return TraceContext(parsed[0], span_id, request_id, parsed[1], scope)


@contextmanager
def continue_trace(trace_id: str, request_id: str) -> Iterator[TraceContext]:
    """Work outside any request (a queued run) continues the trace ``trace_id`` of the request that started
    it, in a span of its own: its logs and its calls to the layer below carry that trace id."""
    trace = new_trace(f"00-{trace_id}-{random.getrandbits(64) | 1:016x}-01", request_id)
    reset = trace_var.set(trace)
    try:
        yield trace
    finally:
        trace_var.reset(reset)
