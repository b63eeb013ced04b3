from __future__ import annotations

import json
from typing import TYPE_CHECKING

from shared.observability.access import MAX_BUFFERED, AccessLog
from shared.observability.context import new_trace

if TYPE_CHECKING:
    import pytest


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_line_has_the_shared_members_and_the_route_not_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog("system")
    trace = new_trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "req-7")
    log.record(
        "POST",
        "/v1/crm/{source}/outbound-messages/{path_token}",
        "/v1/crm/x/outbound-messages/s3cr3t",
        200,
        0.0125,
        trace,
    )
    log.flush()
    (line,) = _lines(capsys)
    assert line["service"] == "system"
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == trace.span_id
    assert line["request_id"] == "req-7"
    assert line["route"] == "/v1/crm/{source}/outbound-messages/{path_token}"
    assert line["status"] == 200
    assert line["duration_ms"] == 12.5
    assert line["level"] == "info"
    assert str(line["ts"]).endswith("Z")
    assert "s3cr3t" not in json.dumps(line)


def test_an_unmatched_path_is_logged_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog("process")
    log.record("GET", None, '/odd"path\n', 404, 0.001, new_trace())
    log.flush()
    (line,) = _lines(capsys)
    assert line["route"] == "unmatched"
    assert line["path"] == '/odd"path\n'


async def test_lines_are_written_in_batches_and_on_flush(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog("experience")
    trace = new_trace()
    for _ in range(MAX_BUFFERED - 1):
        log.record("GET", "/v1/overview", "/v1/overview", 200, 0.001, trace)
    assert capsys.readouterr().err == ""
    log.record("GET", "/v1/overview", "/v1/overview", 200, 0.001, trace)
    assert len(_lines(capsys)) == MAX_BUFFERED
    log.record("GET", "/v1/overview", "/v1/overview", 200, 0.001, trace)
    log.flush()
    assert len(_lines(capsys)) == 1


async def test_a_quiet_service_still_writes_within_the_flush_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    log = AccessLog("system")
    log.record("GET", "/health/live", "/health/live", 200, 0.001, new_trace())
    assert capsys.readouterr().err == ""
    await asyncio.sleep(0.3)
    assert len(_lines(capsys)) == 1


def test_outside_an_event_loop_each_line_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    AccessLog("system").record("GET", "/v1/sources", "/v1/sources", 200, 0.001, new_trace())
    assert len(_lines(capsys)) == 1
