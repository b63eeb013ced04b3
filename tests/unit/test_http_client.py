"""The client factory for the layer below: retries, trace propagation, error translation."""

from __future__ import annotations

from collections import Counter

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, get, post
from litestar.response import Response

from shared import errors
from shared.http_client import LayerClient, create_http_client
from shared.observability.context import new_trace, trace_var
from shared.pagination import Page


class Flaky:
    """A real ASGI app that fails a set number of times before answering."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures = failures
        self.status = status
        self.calls: Counter[str] = Counter()
        self.traceparents: list[str | None] = []

        @get("/thing", sync_to_thread=False)
        def thing(request: Request) -> Response[dict[str, str]]:
            self.calls["thing"] += 1
            self.traceparents.append(request.headers.get("traceparent"))
            if self.calls["thing"] <= self.failures:
                return Response({"error": "busy"}, status_code=self.status, headers={"retry-after": "0"})
            return Response({"name": "ok"})

        @post("/write", sync_to_thread=False)
        def write() -> Response[dict[str, str]]:
            self.calls["write"] += 1
            return Response({"error": "busy"}, status_code=503)

        @get("/loop", sync_to_thread=False)
        def loop() -> dict[str, object]:
            self.calls["loop"] += 1
            return {"items": [1], "next_cursor": "same"}

        self.app = Litestar([thing, write, loop])


class Thing(msgspec.Struct):
    name: str


def client_for(flaky: Flaky, retries: int = 2) -> httpx.AsyncClient:
    return create_http_client(
        "http://below", service="test", timeout=2, retries=retries, backoff_factor=0.001,
        transport=httpx.ASGITransport(app=flaky.app),
    )  # fmt: skip


async def test_transient_failures_are_retried_then_succeed() -> None:
    flaky = Flaky(failures=2)
    async with client_for(flaky) as http:
        assert await LayerClient(http).get("/thing", Thing) == Thing(name="ok")
    assert flaky.calls["thing"] == 3


async def test_retries_are_bounded_and_end_as_an_upstream_error() -> None:
    flaky = Flaky(failures=10)
    async with client_for(flaky, retries=2) as http:
        with pytest.raises(errors.UpstreamUnavailableError):
            await LayerClient(http).get("/thing", Thing)
    assert flaky.calls["thing"] == 3


async def test_a_client_error_is_not_retried() -> None:
    flaky = Flaky(failures=10, status=400)
    async with client_for(flaky) as http:
        with pytest.raises(errors.UpstreamRejectedError):
            await LayerClient(http).get("/thing", Thing)
    assert flaky.calls["thing"] == 1


async def test_a_post_is_never_retried_blindly() -> None:
    flaky = Flaky(failures=0)
    async with client_for(flaky) as http:
        response = await http.post("/write")
    assert response.status_code == 503
    assert flaky.calls["write"] == 1


async def test_the_callers_trace_goes_to_the_layer_below() -> None:
    flaky = Flaky(failures=0)
    trace = new_trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    token = trace_var.set(trace)
    try:
        async with client_for(flaky) as http:
            await LayerClient(http).get("/thing", Thing)
    finally:
        trace_var.reset(token)
    assert flaky.traceparents == [f"00-0af7651916cd43dd8448eb211c80319c-{trace.span_id}-01"]


async def test_an_off_contract_body_is_a_contract_error() -> None:
    flaky = Flaky(failures=0)

    class Other(msgspec.Struct):
        number: int

    async with client_for(flaky) as http:
        with pytest.raises(errors.UpstreamContractError):
            await LayerClient(http).get("/thing", Other)


async def test_unreachable_and_timeouts_are_translated() -> None:
    async with create_http_client(
        "http://127.0.0.1:1", service="test", timeout=0.5, retries=0, backoff_factor=0
    ) as http:
        with pytest.raises(errors.UpstreamUnavailableError):
            await LayerClient(http).get("/thing", Thing)
        probe = await LayerClient(http).probe("/health/ready")
    assert probe.status == "down"
    assert "ConnectError" in probe.detail


async def test_a_repeated_cursor_is_a_contract_error_not_a_loop() -> None:
    flaky = Flaky(failures=0)
    async with client_for(flaky) as http:
        with pytest.raises(errors.UpstreamContractError, match="repeated the cursor"):
            await LayerClient(http).get_every_page("/loop", Page[int])
    assert flaky.calls["loop"] == 2
