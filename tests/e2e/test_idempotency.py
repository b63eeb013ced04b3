"""Idempotency-Key on writes, through a real app built by the service factory, on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Response, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from redis.asyncio.connection import AbstractConnection

from shared.auth import Principal
from shared.errors import IdempotencyKeyInvalidError
from shared.idempotency import (
    IDEMPOTENCY_STATUSES,
    REPLAYED_RESPONSE_HEADER,
    IdempotencyKeyOptional,
    IdempotencyKeyRequired,
    idempotent,
    parse_key,
)
from shared.problems import problem_responses
from shared.service import create_service
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import ASGIApp, Receive, Scope, Send

    from shared.settings import Settings


class Entry(msgspec.Struct, forbid_unknown_fields=True):
    account: str
    amount: str


async def count(state: State, name: str) -> int:
    """A real side effect: one INCR in Redis per execution."""
    return int(await state.redis.incr(f"{state.counter_prefix}:{name}"))


@post(
    "/v1/entries",
    **idempotent(),
    responses=problem_responses(*IDEMPOTENCY_STATUSES),
    response_headers=[REPLAYED_RESPONSE_HEADER],
)
async def create_entry(
    state: State, data: JSONBody[Entry], idempotency_key: IdempotencyKeyRequired
) -> Response[dict[str, Any]]:
    executions = await count(state, "entries")
    if state.gate is not None:
        state.entered.set()
        await state.gate.wait()
    await asyncio.sleep(0.02)
    return Response(
        {"execution": executions, "account": data.account, "id": uuid.uuid4().hex},
        status_code=201,
        headers={"Location": f"/v1/entries/{executions}"},
    )


@patch("/v1/entries/{entry_id:str}", **idempotent())
async def amend_entry(
    state: State, entry_id: FromPath[str], data: JSONBody[Entry], idempotency_key: IdempotencyKeyRequired
) -> dict[str, Any]:
    return {"execution": await count(state, "amend"), "id": entry_id}


@post("/v1/optional", **idempotent("optional"), status_code=201)
async def optional_key(state: State, idempotency_key: IdempotencyKeyOptional = None) -> dict[str, int]:
    return {"execution": await count(state, "optional")}


@post("/v1/flaky/{status:int}", **idempotent(), status_code=201)
async def flaky(
    state: State, status: FromPath[int], idempotency_key: IdempotencyKeyRequired
) -> Response[dict[str, int]]:
    """Fails with ``status`` the first time, succeeds after."""
    executions = await count(state, f"flaky-{status}")
    if executions == 1:
        if status == 500:
            raise RuntimeError("boom")
        return Response({"execution": executions}, status_code=status)
    return Response({"execution": executions}, status_code=201)


@post("/v1/plain", status_code=201)
async def plain(state: State) -> dict[str, int]:
    return {"execution": await count(state, "plain")}


@post("/v1/echo", **idempotent(), status_code=201, sync_to_thread=False)
def echo(data: JSONBody[Entry], idempotency_key: IdempotencyKeyRequired) -> Entry:
    return data


@get("/v1/entries", sync_to_thread=False)
def list_entries() -> list[str]:
    return []


def fake_auth(app: ASGIApp) -> ASGIApp:
    """Stands in for an authenticating gateway in front: ``X-Test-Client`` becomes ``scope["auth"]``."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"x-test-client":
                scope["auth"] = Principal(client_id=value.decode(), scopes=frozenset())  # type: ignore[typeddict-unknown-key]
        await app(scope, receive, send)

    return middleware


def idempotent_app(settings: Settings) -> Litestar:
    app = create_service(
        name=f"idem-{uuid.uuid4().hex[:8]}",
        title="idempotency",
        description="test",
        settings=settings,
        route_handlers=[
            create_entry, amend_entry, optional_key, flaky, plain, echo, list_entries,
        ],
    )  # fmt: skip
    app.asgi_handler = fake_auth(app.asgi_handler)
    app.state.counter_prefix = f"test:{app.state.service}"
    app.state.gate = None
    return app


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Litestar:
    return idempotent_app(make_settings(auth={"enabled": False}, rate_limit={"enabled": False}))


async def executions(app: Litestar, name: str) -> int:
    return int(await app.state.redis.get(f"{app.state.counter_prefix}:{name}") or 0)


def key_header(key: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": key or uuid.uuid4().hex}


ENTRY = {"account": "4000", "amount": "12.50"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{code}"
    return body


async def test_fifty_identical_requests_run_the_handler_once(app: Litestar) -> None:
    async with in_process(app) as client:
        headers = key_header()
        responses = await asyncio.gather(
            *(client.post("/v1/entries", json=ENTRY, headers=headers) for _ in range(50))
        )
        assert await executions(app, "entries") == 1
        first = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
        assert len(first) == 1
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, "idempotency-key-in-use")
                assert response.headers["retry-after"] == "1"
            else:
                assert response.status_code == 201
                assert response.content == first[0].content
        # Once answered, every repeat is the replay.
        again = await asyncio.gather(
            *(client.post("/v1/entries", json=ENTRY, headers=headers) for _ in range(10))
        )
        assert all(r.status_code == 201 and r.headers["idempotent-replayed"] == "true" for r in again)
        assert {r.content for r in again} == {first[0].content}
        assert await executions(app, "entries") == 1


async def test_a_completed_write_is_replayed_with_its_status_headers_and_body(app: Litestar) -> None:
    async with in_process(app) as client:
        headers = key_header()
        original = await client.post("/v1/entries", json=ENTRY, headers=headers)
        assert original.status_code == 201
        assert "idempotent-replayed" not in original.headers
        replay = await client.post("/v1/entries", json=ENTRY, headers=headers)
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == original.content
        for name in ("content-type", "location", "content-length"):
            assert replay.headers[name] == original.headers[name]
        assert replay.headers["x-request-id"] != original.headers["x-request-id"]
        assert await executions(app, "entries") == 1


async def test_patch_is_idempotent_too(app: Litestar) -> None:
    async with in_process(app) as client:
        headers = key_header()
        first = await client.patch("/v1/entries/e1", json=ENTRY, headers=headers)
        second = await client.patch("/v1/entries/e1", json=ENTRY, headers=headers)
        assert first.status_code == second.status_code == 200
        assert second.content == first.content
        assert second.headers["idempotent-replayed"] == "true"
        assert await executions(app, "amend") == 1


async def test_the_same_key_with_another_request_is_422(app: Litestar) -> None:
    async with in_process(app) as client:
        headers = key_header()
        assert (await client.post("/v1/entries", json=ENTRY, headers=headers)).status_code == 201
        other_body = await client.post("/v1/entries", json={**ENTRY, "amount": "99.00"}, headers=headers)
        body = assert_problem(other_body, 422, "idempotency-key-reused")
        assert "different request" in body["detail"]
        other_path = await client.patch("/v1/entries/e1", json=ENTRY, headers=headers)
        assert_problem(other_path, 422, "idempotency-key-reused")
        other_query = await client.post("/v1/entries?x=1", json=ENTRY, headers=headers)
        assert_problem(other_query, 422, "idempotency-key-reused")
        assert await executions(app, "entries") == 1


async def test_the_same_key_while_the_first_runs_is_409_then_replayed(app: Litestar) -> None:
    async with in_process(app) as client:
        app.state.gate = asyncio.Event()
        app.state.entered = asyncio.Event()
        headers = key_header()
        first = asyncio.create_task(client.post("/v1/entries", json=ENTRY, headers=headers))
        await asyncio.wait_for(app.state.entered.wait(), 5)
        concurrent = await client.post("/v1/entries", json=ENTRY, headers=headers)
        body = assert_problem(concurrent, 409, "idempotency-key-in-use")
        assert concurrent.headers["retry-after"] == "1"
        assert "still running" in body["detail"]
        # A different payload under the held key is still the more precise 422.
        assert_problem(
            await client.post("/v1/entries", json={**ENTRY, "account": "5000"}, headers=headers),
            422,
            "idempotency-key-reused",
        )
        app.state.gate.set()
        original = await first
        assert original.status_code == 201
        replay = await client.post("/v1/entries", json=ENTRY, headers=headers)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == original.content
        assert await executions(app, "entries") == 1


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_a_failed_answer_is_never_stored_so_the_retry_runs_again(app: Litestar, status: int) -> None:
    async with in_process(app) as client:
        headers = key_header()
        failed = await client.post(f"/v1/flaky/{status}", headers=headers)
        assert failed.status_code == status
        retried = await client.post(f"/v1/flaky/{status}", headers=headers)
        assert retried.status_code == 201
        assert "idempotent-replayed" not in retried.headers
        assert retried.json() == {"execution": 2}
        replay = await client.post(f"/v1/flaky/{status}", headers=headers)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == {"execution": 2}
        assert await executions(app, f"flaky-{status}") == 2


async def test_a_client_error_answer_is_final_and_replayed(app: Litestar) -> None:
    async with in_process(app) as client:
        headers = key_header()
        bad = await client.post("/v1/echo", json={"account": 4000}, headers=headers)
        assert_problem(bad, 400, "bad-request")
        replay = await client.post("/v1/echo", json={"account": 4000}, headers=headers)
        assert replay.status_code == 400
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["content-type"].startswith("application/problem+json")
        assert replay.content == bad.content


async def test_a_missing_key_where_required_is_400(app: Litestar) -> None:
    async with in_process(app) as client:
        body = assert_problem(await client.post("/v1/entries", json=ENTRY), 400, "idempotency-key-missing")
        assert "Idempotency-Key" in body["detail"]
        assert await executions(app, "entries") == 0


async def test_an_optional_key_may_be_left_out(app: Litestar) -> None:
    async with in_process(app) as client:
        assert (await client.post("/v1/optional")).json() == {"execution": 1}
        assert (await client.post("/v1/optional")).json() == {"execution": 2}
        headers = key_header()
        assert (await client.post("/v1/optional", headers=headers)).json() == {"execution": 3}
        replay = await client.post("/v1/optional", headers=headers)
        assert replay.json() == {"execution": 3}
        assert replay.headers["idempotent-replayed"] == "true"


async def test_operations_that_do_not_opt_in_ignore_the_key(app: Litestar) -> None:
    async with in_process(app) as client:
        headers = key_header()
        assert (await client.post("/v1/plain", headers=headers)).json() == {"execution": 1}
        second = await client.post("/v1/plain", headers=headers)
        assert second.json() == {"execution": 2}
        assert "idempotent-replayed" not in second.headers
        assert (await client.get("/v1/entries", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("k" * 256, "idempotency-key-invalid"),
        ("caf\u00e9", "idempotency-key-invalid"),
        ("   ", "idempotency-key-invalid"),
    ],
    ids=["too-long", "not-ascii", "blank"],
)
async def test_a_bad_key_is_400(app: Litestar, value: str, code: str) -> None:
    async with in_process(app) as client:
        response = await client.post(
            "/v1/entries", json=ENTRY, headers=[("Idempotency-Key", value.encode("latin-1"))]
        )
        assert_problem(response, 400, code)
        assert await executions(app, "entries") == 0


async def test_a_key_of_255_characters_is_accepted(app: Litestar) -> None:
    async with in_process(app) as client:
        response = await client.post("/v1/entries", json=ENTRY, headers=key_header("k" * 255))
        assert response.status_code == 201


def test_the_key_is_a_structured_field_string_or_a_bare_value() -> None:
    assert parse_key(b'"8e03978e-40d5"') == "8e03978e-40d5"
    assert parse_key(b"8e03978e-40d5") == "8e03978e-40d5"
    assert parse_key(b'"a\\"b"') == 'a"b'
    assert parse_key(b'"a"b"') == '"a"b"'  # not a valid sf-string: taken as sent
    assert parse_key(b'""') == '""'
    with pytest.raises(IdempotencyKeyInvalidError):
        parse_key(b"")


async def test_keys_are_scoped_per_client(app: Litestar) -> None:
    async with in_process(app) as client:
        key = uuid.uuid4().hex
        alice = {"Idempotency-Key": key, "X-Test-Client": "alice"}
        bob = {"Idempotency-Key": key, "X-Test-Client": "bob"}
        first_alice = await client.post("/v1/entries", json=ENTRY, headers=alice)
        first_bob = await client.post("/v1/entries", json=ENTRY, headers=bob)
        assert first_alice.status_code == first_bob.status_code == 201
        assert first_alice.json()["id"] != first_bob.json()["id"]
        assert await executions(app, "entries") == 2
        assert (await client.post("/v1/entries", json=ENTRY, headers=bob)).content == first_bob.content
        # An anonymous caller with the same key is a third scope.
        assert (
            await client.post("/v1/entries", json=ENTRY, headers={"Idempotency-Key": key})
        ).status_code == 201
        assert await executions(app, "entries") == 3
        service = app.state.service
        assert (
            await app.state.redis.exists(
                f"finsync:idem:{service}:alice:{key}",
                f"finsync:idem:{service}:bob:{key}",
                f"finsync:idem:{service}:anonymous:{key}",
            )
            == 3
        )


async def test_records_expire_after_the_retention(app: Litestar) -> None:
    async with in_process(app) as client:
        key = uuid.uuid4().hex
        await client.post("/v1/entries", json=ENTRY, headers=key_header(key))
        ttl = await app.state.redis.ttl(f"finsync:idem:{app.state.service}:anonymous:{key}")
        assert 86400 - 5 <= ttl <= 86400


async def test_redis_round_trips(app: Litestar, monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process(app) as client:
        sent = [0]
        original = AbstractConnection.send_packed_command

        async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
            sent[0] += 1
            await original(self, command, check_health)

        await client.post("/v1/echo", json=ENTRY, headers=key_header())  # connect, load the scripts
        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
        headers = key_header()
        await client.post("/v1/echo", json=ENTRY, headers=headers)
        assert sent[0] == 2  # claim, then record the answer
        await client.post("/v1/echo", json=ENTRY, headers=headers)
        assert sent[0] == 3  # the replay: one
        await client.get("/v1/entries", headers=headers)
        await client.post("/v1/echo", json=ENTRY)  # refused before Redis: no key
        assert sent[0] == 3


async def test_redis_down_refuses_keyed_writes_with_503(make_settings: Callable[..., Settings]) -> None:
    app = idempotent_app(
        make_settings(
            auth={"enabled": False}, rate_limit={"enabled": False}, redis_url="unix:///nonexistent/redis.sock"
        )
    )
    async with in_process(app) as client:
        body = assert_problem(
            await client.post("/v1/echo", json=ENTRY, headers=key_header()), 503, "service-unavailable"
        )
        assert "not run" in body["detail"]
        assert "nonexistent" not in str(body)


def test_the_spec_documents_the_header_and_the_answers(app: Litestar) -> None:
    operation = app.openapi_schema.to_schema()["paths"]["/v1/entries"]["post"]
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert parameter["in"] == "header"
    assert parameter["required"] is True
    assert parameter["schema"]["maxLength"] == 255
    assert {"400", "409", "422"} <= set(operation["responses"])
    assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]


async def test_every_idempotency_problem_type_has_its_page(app: Litestar) -> None:
    async with in_process(app) as client:
        for code in (
            "idempotency-key-missing",
            "idempotency-key-invalid",
            "idempotency-key-reused",
            "idempotency-key-in-use",
            "service-unavailable",
        ):
            page = await client.get(f"/problems/{code}")
            assert page.status_code == 200, code
            assert f"/problems/{code}" in page.text
