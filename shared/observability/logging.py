"""Structured JSON logs: one object per line, with service, trace id and route, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, ClassVar

import msgspec

from shared.observability.context import current_route, current_trace

__all__ = ("JsonFormatter", "configure_logging", "redact")

_SECRET_KEY = re.compile(r"authorization|password|passwd|secret|token|api[_-]?key|cookie|signature", re.I)
_BEARER = re.compile(r"\b(Bearer|Basic|Session|AnaplanAuthToken)\s+[A-Za-z0-9._~+/=-]+", re.I)
REDACTED = "[redacted]"


def redact(value: Any, key: str = "") -> Any:
    """Replace secrets: values under secret-looking keys, and credentials inside strings."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields become members."""

    _RESERVED: ClassVar[frozenset[str]] = frozenset(
        logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
    )

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        trace = current_trace()
        if trace is not None:
            entry["trace_id"] = trace.trace_id
            entry["span_id"] = trace.span_id
            entry["request_id"] = trace.request_id
        route = current_route()
        if route is not None:
            entry["route"] = route
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return self._encoder.encode(entry).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines tagged with ``service``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing.formatter, JsonFormatter):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Access lines are ours; the server's own would duplicate them without a trace id.
    for noisy in ("granian.access", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
