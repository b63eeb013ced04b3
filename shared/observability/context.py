"""W3C trace context for the request being served, held in a context variable.

The inbound middleware sets it; logs, problem bodies and the client for the layer
below read it. Parsing follows W3C Trace Context level 1: ``version-traceid-parentid-flags``.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = (
    "TraceContext",
    "current_route",
    "current_trace",
    "new_trace",
    "parse_traceparent",
    "scope_var",
    "trace_var",
)

_TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(slots=True, frozen=True)
class TraceContext:
    """Identity of one request as it passes through a service."""

    trace_id: str
    """32 hex digits, shared by every hop of one end-to-end call."""
    span_id: str
    """16 hex digits, this service's span; sent as the parent to the layer below."""
    request_id: str
    """Identifier of this request, echoed in ``X-Request-ID``."""
    flags: str = "01"
    """Trace flags, passed on unchanged."""

    @property
    def traceparent(self) -> str:
        """The header value to send to the layer below."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


trace_var: ContextVar[TraceContext | None] = ContextVar("finsync_trace", default=None)
scope_var: ContextVar[dict[str, Any] | None] = ContextVar("finsync_scope", default=None)
"""The ASGI scope being served; the router writes the matched ``path_template`` into it."""


def current_trace() -> TraceContext | None:
    """The trace context of the request being served, if any."""
    return trace_var.get()


def current_route() -> str | None:
    """Path template of the route being served, once the router has matched it."""
    scope = scope_var.get()
    return None if scope is None else scope.get("path_template")


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return ``(trace_id, flags)`` from a valid header, else ``None``."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match["trace"] == _INVALID_TRACE or match["parent"] == _INVALID_SPAN:
        return None
    return match["trace"], match["flags"]


def new_trace(traceparent: str | None = None, request_id: str | None = None) -> TraceContext:
    """Continue the caller's trace when its header is valid, else start one."""
    parsed = parse_traceparent(traceparent)
    span_id = os.urandom(8).hex()
    if request_id is None or not _REQUEST_ID.match(request_id):
        request_id = span_id
    if parsed is None:
        return TraceContext(trace_id=os.urandom(16).hex(), span_id=span_id, request_id=request_id)
    return TraceContext(trace_id=parsed[0], span_id=span_id, request_id=request_id, flags=parsed[1])
