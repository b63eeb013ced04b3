"""The three services as real processes, called through experience."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import httpx

from tests.support import read_json_lines, wait_until

if TYPE_CHECKING:
    from tests.conftest import LiveStack


def auth(stack: LiveStack, layer: str) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.token(f'finsync-{layer}')}"}


def traced_overview(stack: LiveStack, trace_id: str) -> httpx.Response:
    """``GET /v1/overview`` as ``demo``, continuing the trace ``trace_id``."""
    return httpx.get(
        f"{stack.urls['experience']}/v1/overview",
        headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01", **auth(stack, "experience")},
        timeout=10,
    )


def test_one_trace_id_runs_through_all_three_services(live_stack: LiveStack) -> None:
    trace_id = os.urandom(16).hex()
    response = traced_overview(live_stack, trace_id)
    assert response.status_code == 200
    assert response.headers["x-trace-id"] == trace_id

    def logged_everywhere() -> bool:
        return all(
            any(line.get("trace_id") == trace_id for line in read_json_lines(live_stack.log(layer)))
            for layer in ("experience", "process", "system")
        )

    assert wait_until(logged_everywhere, 10)
    for layer in ("experience", "process", "system"):
        lines = [line for line in read_json_lines(live_stack.log(layer)) if line.get("trace_id") == trace_id]
        assert {line["service"] for line in lines} == {layer}
        assert all(line.get("route") for line in lines)
    # Each hop has its own span, so the parent each layer received came from the layer above.
    spans = {
        layer: {
            line["span_id"]
            for line in read_json_lines(live_stack.log(layer))
            if line.get("trace_id") == trace_id
        }
        for layer in ("experience", "process", "system")
    }
    assert spans["experience"].isdisjoint(spans["process"])
    assert spans["process"].isdisjoint(spans["system"])


def test_the_original_caller_reaches_the_system_layer(live_stack: LiveStack) -> None:
    trace_id = os.urandom(16).hex()
    response = traced_overview(live_stack, trace_id)
    assert response.status_code == 200

    def callers(layer: str) -> set[tuple[object, object]]:
        return {
            (line.get("client_id"), line.get("on_behalf_of"))
            for line in read_json_lines(live_stack.log(layer))
            if line.get("trace_id") == trace_id
            and line.get("logger") == "finsync.access"
            and str(line.get("route")).startswith("/v1/")  # not the public readiness probes
        }

    assert wait_until(lambda: bool(callers("system")), 10)
    assert callers("experience") == {("demo", None)}
    assert callers("process") == {("experience", "demo")}
    assert callers("system") == {("process", "demo")}


def test_a_layer_refuses_calls_without_a_token(live_stack: LiveStack) -> None:
    for layer, path in (("experience", "/v1/overview"), ("process", "/v1/flows"), ("system", "/v1/sources")):
        response = httpx.get(f"{live_stack.urls[layer]}{path}", timeout=5)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_for_one_layer_is_refused_by_another(live_stack: LiveStack) -> None:
    token = live_stack.token("finsync-experience")
    response = httpx.get(
        f"{live_stack.urls['system']}/v1/sources", headers={"authorization": f"Bearer {token}"}, timeout=5
    )
    assert response.status_code == 401


def test_overview_reports_layers_sources_and_flows(live_stack: LiveStack) -> None:
    overview = httpx.get(
        f"{live_stack.urls['experience']}/v1/overview", headers=auth(live_stack, "experience"), timeout=10
    ).json()
    assert {layer["name"]: layer["status"] for layer in overview["layers"]} == {
        "process": "up",
        "system": "up",
    }
    assert {source["id"]: source["status"] for source in overview["sources"]} == {
        "erp": "up",  # the stack's own Tryton
        "planning": "up",  # the stack's own planning sandbox
        "crm": "up",  # its CRM sandbox
        "billing": "up",  # its billing sandbox
        "erp-gone": "down",
        "ledger-watch": "up",
    }
    assert overview["status"] == "degraded"
    assert "actuals-to-plan" in {flow["id"] for flow in overview["flows"]}


def test_a_source_on_a_closed_port_is_reported_down(live_stack: LiveStack) -> None:
    system = live_stack.urls["system"]
    headers = auth(live_stack, "system")
    listing = httpx.get(f"{system}/v1/sources", headers=headers, timeout=10).json()
    assert listing["next_cursor"] is None
    by_id = {source["id"]: source for source in listing["items"]}
    assert by_id["erp-gone"]["health"]["status"] == "down"
    assert "ConnectError" in by_id["erp-gone"]["health"]["detail"]
    assert by_id["ledger-watch"]["health"]["status"] == "up"
    assert by_id["ledger-watch"]["kind"] == "http"

    down = httpx.get(f"{system}/v1/sources", params={"status": "down"}, headers=headers, timeout=10).json()
    assert [source["id"] for source in down["items"]] == ["erp-gone"]

    assert by_id["erp"]["kind"] == "tryton"
    assert by_id["erp"]["health"]["status"] == "up"

    first = httpx.get(
        f"{system}/v1/sources", params={"kind": "http", "limit": 1}, headers=headers, timeout=10
    ).json()
    assert [source["id"] for source in first["items"]] == ["erp-gone"]
    second = httpx.get(
        f"{system}/v1/sources",
        params={"kind": "http", "limit": 1, "cursor": first["next_cursor"]},
        headers=headers,
        timeout=10,
    )
    assert [source["id"] for source in second.json()["items"]] == ["ledger-watch"]
    assert second.json()["next_cursor"] is None


def test_readiness_never_checks_the_layers_below(live_stack: LiveStack) -> None:
    for layer in ("system", "process", "experience"):
        body = httpx.get(f"{live_stack.urls[layer]}/health/ready", timeout=5).json()
        assert body == {"service": layer, "status": "up", "checks": {"redis": "up"}}


def test_metrics_are_served_by_every_service(live_stack: LiveStack) -> None:
    for layer in ("system", "process", "experience"):
        text = httpx.get(f"{live_stack.urls[layer]}/metrics", timeout=5).text
        assert "finsync_http_request_duration_seconds_bucket" in text


def test_a_queued_run_calls_the_system_layer_as_its_starter_under_its_trace(live_stack: LiveStack) -> None:
    trace_id = os.urandom(16).hex()
    headers = {"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01", **auth(live_stack, "process")}
    process = live_stack.urls["process"]
    response = httpx.post(
        f"{process}/v1/flows/actuals-to-plan/runs",
        json={"period_from": "2026-05", "period_to": "2026-05", "entities": ["FS-US"]},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 202, response.text
    location = f"{process}{response.headers['location']}"

    def run() -> dict[str, object]:
        answer: dict[str, object] = httpx.get(location, headers=headers, timeout=10).json()
        return answer

    assert wait_until(lambda: run()["status"] not in ("queued", "running"), 120)
    assert run()["status"] == "succeeded", run()
    assert run()["trace_id"] == trace_id
    calls = {
        (line.get("client_id"), line.get("on_behalf_of"), line.get("route"))
        for line in read_json_lines(live_stack.log("system"))
        if line.get("trace_id") == trace_id and line.get("logger") == "finsync.access"
    }
    # The worker ran it after the request ended, yet the ERP reads and the planning loads name the client that
    # started it and carry the run's trace.
    routes = {route for _client, _obo, route in calls}
    assert "/v1/erp/{source}/balances" in routes, routes
    assert "/v1/planning/{source}/loads" in routes, routes
    assert {(client, obo) for client, obo, _route in calls} == {("process", "demo")}
