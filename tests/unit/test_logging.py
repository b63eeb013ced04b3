from __future__ import annotations

import json
import logging

from shared.observability.context import new_trace, trace_var
from shared.observability.logging import JsonFormatter, redact


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("finsync.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_lines_are_json_with_service_and_trace_id() -> None:
    trace = new_trace()
    token = trace_var.set(trace)
    try:
        line = JsonFormatter("process").format(_record("hello", flow="actuals-to-plan"))
    finally:
        trace_var.reset(token)
    entry = json.loads(line)
    assert entry["service"] == "process"
    assert entry["trace_id"] == trace.trace_id
    assert entry["request_id"] == trace.request_id
    assert entry["message"] == "hello"
    assert entry["flow"] == "actuals-to-plan"
    assert entry["ts"].endswith("Z")


def test_secrets_and_credentials_are_never_logged() -> None:
    line = JsonFormatter("system").format(
        _record(
            "calling with Authorization: Bearer eyJhbGciOi.secret.part",
            headers={"Authorization": "Bearer abc", "accept": "application/json"},
            client_secret="s3cr3t",
        )
    )
    assert "eyJhbGciOi" not in line
    assert "abc" not in line.replace("application", "")
    assert "s3cr3t" not in line
    entry = json.loads(line)
    assert entry["headers"] == {"Authorization": "[redacted]", "accept": "application/json"}


def test_redact_walks_nested_values() -> None:
    assert redact({"outer": [{"password": "p", "ok": "Basic dXNlcjpwYXNz"}]}) == {
        "outer": [{"password": "[redacted]", "ok": "Basic [redacted]"}]
    }
