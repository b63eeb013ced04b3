"""Each layer's client for the layer below, checked against that layer's committed spec.

The client runs against the real app of the layer below (in-process, real Redis);
every request it makes must match an operation of the committed spec, with only
documented query parameters, and every answer it decodes must validate against
that operation. Its Structs must not ask for fields the spec does not promise.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
import schemathesis

from experience_apis.clients import process as process_client
from process_apis.app import create_app as create_process_app
from process_apis.clients import system as system_client
from shared.http_client import create_http_client
from system_apis.app import create_app as create_system_app
from tests.support import REPO, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar

    from shared.settings import Settings

SPECS = REPO / "openapi"


class Recorder:
    """Collects every exchange the client makes."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)


def recorded_client(app: Litestar, recorder: Recorder) -> httpx.AsyncClient:
    """The kernel's client for a layer below, over ASGI to ``app``, recording every answer."""
    http = create_http_client(
        "http://below", service="test", timeout=5, retries=0, backoff_factor=0,
        transport=httpx.ASGITransport(app=app),
    )  # fmt: skip
    http.event_hooks["response"].append(recorder)
    return http


def assert_exchanges_match_spec(layer: str, responses: list[httpx.Response]) -> set[str]:
    schema = schemathesis.openapi.from_path(SPECS / f"{layer}.json")
    raw = json.loads((SPECS / f"{layer}.json").read_text())
    used: set[str] = set()
    assert responses
    for response in responses:
        request = response.request
        operation = schema.find_operation_by_path(request.method, request.url.path)
        assert operation is not None, f"{request.method} {request.url.path} is not in openapi/{layer}.json"
        spec_operation = raw["paths"][operation.path][request.method.lower()]
        documented = {p["name"] for p in spec_operation.get("parameters", []) if p["in"] == "query"}
        assert set(request.url.params) <= documented, (operation.path, set(request.url.params) - documented)
        operation.validate_response(response)
        used.add(spec_operation["operationId"])
    return used


def assert_struct_fits_schema(struct: type[msgspec.Struct], layer: str, name: str) -> None:
    schema = json.loads((SPECS / f"{layer}.json").read_text())["components"]["schemas"][name]
    properties = set(schema["properties"])
    required = set(schema.get("required", []))
    fields = msgspec.structs.fields(struct)
    assert {f.name for f in fields} <= properties, f"{struct.__name__} reads fields {name} does not have"
    needed = {f.name for f in fields if f.required}
    assert needed <= required, f"{struct.__name__} needs fields {name} may omit: {needed - required}"


@pytest.mark.parametrize(
    ("struct", "name"),
    [
        (system_client.Source, "Source"),
        (system_client.SourceHealth, "SourceHealth"),
        (system_client.SourcePage, "SourcePage"),
        (system_client.BookingPage, "BookingPage"),
        (system_client.SourceEventPage, "BillingEventPage"),
    ],
)
def test_system_client_structs_fit_the_system_spec(struct: type[msgspec.Struct], name: str) -> None:
    assert_struct_fits_schema(struct, "system", name)


@pytest.mark.parametrize(
    ("struct", "name"),
    [
        (process_client.Flow, "Flow"),
        (process_client.FlowPage, "FlowPage"),
        (process_client.SourceStatus, "SourceStatus"),
        (process_client.SystemHealth, "SystemHealth"),
        (process_client.BudgetVsActualsRow, "BudgetVsActualsRow"),
        (process_client.BudgetVsActualsPage, "BudgetVsActualsPage"),
        (process_client.FreshnessRow, "FreshnessRow"),
        (process_client.FreshnessPage, "FreshnessPage"),
    ],
)
def test_process_client_structs_fit_the_process_spec(struct: type[msgspec.Struct], name: str) -> None:
    assert_struct_fits_schema(struct, "process", name)


def _sources(count: int) -> dict[str, Any]:
    return {
        f"src-{n:02d}": {"kind": "http", "base_url": f"http://127.0.0.1:{closed_port()}"}
        for n in range(count)
    }


async def test_system_client_pages_through_the_real_system_layer(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(sources=_sources(5), auth={"enabled": False})
    recorder = Recorder()
    system = create_system_app(settings)
    async with system.lifespan(), recorded_client(system, recorder) as http:
        client = system_client.SystemClient(http)
        client.page_size = 2
        sources = await client.list_sources()
        probe = await client.ready()
    assert [source.id for source in sources] == [f"src-{n:02d}" for n in range(5)]
    assert all(source.health.status == "down" for source in sources)
    assert probe.status == "up"
    assert assert_exchanges_match_spec("system", recorder.responses) == {"ListSources", "GetReadiness"}
    assert len(recorder.responses) == 4  # three pages and one readiness call


async def test_process_client_calls_the_real_process_layer(
    make_settings: Callable[..., Settings], ledger_url: str
) -> None:
    settings = make_settings(
        sources=_sources(2), auth={"enabled": False}, ledger={"database_url": ledger_url}
    )
    recorder = Recorder()
    system = create_system_app(settings)
    process = create_process_app(settings, system_transport=httpx.ASGITransport(app=system))
    async with system.lifespan(), process.lifespan(), recorded_client(process, recorder) as http:
        client = process_client.ProcessClient(http)
        client.page_size = 4
        flows = await client.list_flows()
        health = await client.system_health()
        probe = await client.ready()
    assert len(flows) == 6
    assert len({flow.id for flow in flows}) == 6
    assert health.status == "up"
    assert health.sources is not None
    assert {source.id for source in health.sources} == {"src-00", "src-01"}
    assert probe.status == "up"
    used = assert_exchanges_match_spec("process", recorder.responses)
    assert used == {"ListFlows", "GetSystemHealth", "GetReadiness"}
