from __future__ import annotations

import pytest

from shared.observability.context import new_trace, parse_traceparent

VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_valid_traceparent_is_continued_with_a_new_span() -> None:
    trace = new_trace(VALID)
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert trace.span_id != "b7ad6b7169203331"
    assert trace.traceparent == f"00-{trace.trace_id}-{trace.span_id}-01"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
        "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ],
)
def test_a_missing_or_invalid_traceparent_starts_a_new_trace(header: str | None) -> None:
    assert parse_traceparent(header) is None
    trace = new_trace(header)
    assert len(trace.trace_id) == 32
    assert trace.trace_id != "0af7651916cd43dd8448eb211c80319c"
    int(trace.trace_id, 16)


def test_request_id_is_kept_when_safe_and_replaced_when_not() -> None:
    assert new_trace(None, "req-123").request_id == "req-123"
    assert new_trace(None, "bad id\n").request_id != "bad id\n"
    assert new_trace(None, "x" * 500).request_id != "x" * 500
