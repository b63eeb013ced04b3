"""The kernel, through a small app built by the same service factory as every layer."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import httpx
import msgspec
import pytest
from litestar import get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.testing import AsyncTestClient

from shared import errors
from shared.service import create_service

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from litestar import Litestar

    from shared.settings import Settings


class Posting(msgspec.Struct, forbid_unknown_fields=True):
    account: str
    amount: Annotated[str, msgspec.Meta(pattern=r"^-?\d+(\.\d{1,2})?$")]


ERRORS: dict[str, errors.FinsyncError] = {
    "bad-request": errors.BadRequestError("bad"),
    "unauthenticated": errors.AuthenticationError("who are you"),
    "forbidden": errors.PermissionDeniedError("not yours"),
    "not-found": errors.NotFoundError("nothing here"),
    "conflict": errors.ConflictError("already running"),
    "payload-too-large": errors.PayloadTooLargeError("too big"),
    "unsupported-media-type": errors.UnsupportedMediaTypeError("xml?"),
    "business-rule-violated": errors.BusinessRuleError("unbalanced", line=2),
    "rate-limited": errors.RateLimitedError("slow down", retry_after=7),
    "upstream-error": errors.UpstreamRejectedError("refused"),
    "upstream-unavailable": errors.UpstreamUnavailableError("gone"),
    "upstream-timeout": errors.UpstreamTimeoutError("slow"),
}
STATUS = {
    "bad-request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not-found": 404,
    "conflict": 409,
    "payload-too-large": 413,
    "unsupported-media-type": 415,
    "business-rule-violated": 422,
    "rate-limited": 429,
    "upstream-error": 502,
    "upstream-unavailable": 503,
    "upstream-timeout": 504,
}


@post("/v1/postings", sync_to_thread=False)
def create_posting(data: JSONBody[Posting]) -> Posting:
    return data


@get("/v1/raise/{kind:str}", sync_to_thread=False)
def raise_error(kind: FromPath[str]) -> None:
    raise ERRORS[kind]


@get("/v1/crash", sync_to_thread=False)
def crash() -> None:
    raise RuntimeError("password=hunter2 at /srv/secret/module.py")


@get("/v1/items", sync_to_thread=False)
def items(limit: Annotated[int, Parameter(ge=1, le=10)] = 5) -> list[int]:
    return list(range(limit))


def kernel_app(settings: Settings) -> Litestar:
    return create_service(
        name="kernel-test",
        title="kernel",
        description="test",
        settings=settings,
        route_handlers=[create_posting, raise_error, crash, items],
    )


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = make_settings(
        http={"max_body_size": 1024}, auth={"enabled": False}, rate_limit={"enabled": False}
    )
    async with AsyncTestClient(kernel_app(settings)) as test_client:
        yield test_client


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"/problems/{code}"
    assert body["status"] == status
    assert body["title"]
    return body


async def test_a_valid_body_is_accepted(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/v1/postings", json={"account": "4000", "amount": "12.50"})
    assert response.status_code == 201
    assert response.json() == {"account": "4000", "amount": "12.50"}


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"account": "4000", "amount": ', {"content-type": "application/json"}),
        (b'{"account": 4000, "amount": "1.00"}', {"content-type": "application/json"}),
        (b'{"account": "4000", "amount": "1.00", "extra": true}', {"content-type": "application/json"}),
        (b'{"account": "4000", "amount": "1.001"}', {"content-type": "application/json"}),
        (b"[]", {"content-type": "application/json"}),
        (b"", {"content-type": "application/json"}),
    ],
    ids=["malformed-json", "wrong-type", "unknown-field", "bad-money", "wrong-shape", "empty"],
)
async def test_bad_bodies_get_a_400_problem(
    client: AsyncTestClient[Litestar], content: bytes, headers: dict[str, str]
) -> None:
    body = assert_problem(
        await client.post("/v1/postings", content=content, headers=headers), 400, "bad-request"
    )
    assert body["detail"]


async def test_unsupported_media_type_is_415(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        "/v1/postings",
        content=b"account=4000&amount=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    body = assert_problem(response, 415, "unsupported-media-type")
    assert body["accepted"] == ["application/json"]


async def test_a_body_over_the_limit_is_413_by_length_and_by_stream(
    client: AsyncTestClient[Litestar],
) -> None:
    big = json.dumps({"account": "x" * 2000, "amount": "1.00"}).encode()
    assert_problem(
        await client.post("/v1/postings", content=big, headers={"content-type": "application/json"}),
        413,
        "payload-too-large",
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit must hold while streaming
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://t") as raw:
        response = await raw.post(
            "/v1/postings", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")


async def test_bad_query_values_are_400_and_name_the_parameter(client: AsyncTestClient[Litestar]) -> None:
    for query in ("limit=0", "limit=11", "limit=ten"):
        body = assert_problem(await client.get(f"/v1/items?{query}"), 400, "bad-request")
        assert body["errors"][0]["key"] == "limit"  # type: ignore[index]


async def test_unknown_paths_and_methods_are_problems(client: AsyncTestClient[Litestar]) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    assert_problem(await client.delete("/v1/items"), 405, "method-not-allowed")


@pytest.mark.parametrize("code", sorted(ERRORS))
async def test_every_error_of_the_tree_maps_to_its_status(
    client: AsyncTestClient[Litestar], code: str
) -> None:
    response = await client.get(f"/v1/raise/{code}")
    body = assert_problem(response, STATUS[code], ERRORS[code].code)
    assert body["trace_id"] == response.headers["x-trace-id"]
    assert body["request_id"] == response.headers["x-request-id"]
    if code == "rate-limited":
        assert response.headers["retry-after"] == "7"
    if code == "business-rule-violated":
        assert body["line"] == 2


async def test_a_500_carries_no_internals(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/v1/crash")
    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert "/srv/secret" not in response.text
    assert "RuntimeError" not in response.text
    assert body["trace_id"]


async def test_problem_types_resolve_to_a_page(client: AsyncTestClient[Litestar]) -> None:
    for code in ("not-found", "business-rule-violated", "upstream-timeout", "method-not-allowed"):
        page = await client.get(f"/problems/{code}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
    assert_problem(await client.get("/problems/no-such-thing"), 404, "not-found")


async def test_request_id_and_trace_are_on_every_response(client: AsyncTestClient[Litestar]) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for path in ("/health/live", "/v1/items", "/v1/nothing-here"):
        response = await client.get(path, headers={"traceparent": parent, "x-request-id": "abc-1"})
        assert response.headers["x-request-id"] == "abc-1"
        assert response.headers["x-trace-id"] == "0af7651916cd43dd8448eb211c80319c"
    fresh = await client.get("/health/live")
    assert len(fresh.headers["x-trace-id"]) == 32


async def test_metrics_count_latency_and_errors_per_route_and_status(
    client: AsyncTestClient[Litestar],
) -> None:
    await asyncio.gather(*(client.get("/v1/items") for _ in range(3)), client.get("/v1/raise/conflict"))
    text = (await client.get("/metrics")).text
    assert (
        'finsync_http_request_duration_seconds_count{method="GET",route="/v1/items",service="kernel-test",status="200"} 3.0'
        in text
    )
    assert (
        'finsync_http_errors_total{method="GET",route="/v1/raise/{kind}",service="kernel-test",status="409"} 1.0'
        in text
    )


async def test_readiness_checks_redis(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "up"}


async def test_readiness_is_503_when_redis_is_gone(
    make_settings: Callable[..., Settings], tmp_path: object
) -> None:
    settings = make_settings(redis_url="unix:///nonexistent/redis.sock", auth={"enabled": False})
    async with AsyncTestClient(kernel_app(settings)) as client:
        response = await client.get("/health/ready")
        body = assert_problem(response, 503, "service-unavailable")
        assert body["checks"] == {"redis": "down"}
        assert (await client.get("/health/live")).status_code == 200
