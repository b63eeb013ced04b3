"""The planning system API against the Anaplan-shaped sandbox, a real server process on loopback.

What landed is read from the sandbox itself (its control API), and what
happened on the wire from its counters, never from the connector's own report.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from system_apis.app import create_app
from system_apis.connectors.tryton.seed import ACCOUNTS, COMPANIES, COST_CENTRES
from tests.planning_fixtures import start_sandbox, stop_sandbox
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    import httpx

    from shared.settings import Settings
    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

SOURCE = "plan"
BASE = f"/v1/planning/{SOURCE}"
PNL = ("4.1.1", "4.1.2", "5.1.1", "5.1.3", "5.1.4", "5.2.2")
CENTRES = ("", *(code for code, _name in COST_CENTRES))


def planning_source(sandbox: PlanningSandbox, **overrides: Any) -> dict[str, Any]:
    """The sandbox as an ``anaplan`` source: fast polling (a sandbox may), small chunks, quick retries."""
    return {
        SOURCE: {
            "kind": "anaplan",
            "url": sandbox.url,
            "workspace": sandbox.workspace,
            "model": sandbox.model,
            "user": sandbox.user,
            "password_file": str(sandbox.password_file),
            "sandbox": True,
            "poll_interval": 0.05,
            "chunk_size": 2048,
            "backoff": 0.01,
            "retries": 12,
            **overrides,
        }
    }


@asynccontextmanager
async def planning_api(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The system layer in-process over the sandbox, auth and rate limits off (tested elsewhere)."""
    settings = make_settings(
        auth={"enabled": False}, rate_limit={"enabled": False}, sources=planning_source(sandbox, **overrides)
    )
    async with in_process(create_app(settings)) as client:
        yield client


def rows(months: tuple[str, ...] = ("2026-01", "2026-02", "2026-03")) -> list[dict[str, str]]:
    """One row per cell: both entities, the P&L accounts, every cost centre and ``months``; amounts with cents."""
    out: list[dict[str, str]] = []
    for company in COMPANIES:
        for account in PNL:
            for centre in CENTRES:
                for month in months:
                    number = len(out) + 1
                    amount = Decimal(number * 1013) / 100 * (-1 if number % 7 == 0 else 1)
                    out.append(
                        {
                            "entity": company.code,
                            "account_code": account,
                            "cost_center": centre,
                            "period": month,
                            "amount": str(amount),
                        }
                    )
    return out


async def start(client: httpx.AsyncClient, version: str, body_rows: list[dict[str, str]]) -> httpx.Response:
    return await client.post(
        f"{BASE}/loads",
        json={"version": version, "rows": body_rows},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


async def finished(client: httpx.AsyncClient, location: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the load until it ends."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        load: dict[str, Any] = (await client.get(location)).json()
        if load["status"] in ("complete", "failed", "interrupted"):
            return load
        assert asyncio.get_running_loop().time() < deadline, f"load still {load['status']}"
        await asyncio.sleep(0.05)


def landed(sandbox: PlanningSandbox, version: str) -> dict[tuple[str, str, str, str], Decimal]:
    """The version's cells as the sandbox holds them, by (entity, account, cost centre member, month member)."""
    return {
        (cell["entity"], cell["account"], cell["cost_center"], cell["time"]): Decimal(cell["amount"])
        for cell in sandbox.cells(version)
    }


def expected(body_rows: list[dict[str, str]]) -> dict[tuple[str, str, str, str], Decimal]:
    months = {f"2026-{m:02d}": name for m, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun"), 1)}
    return {
        (
            row["entity"],
            row["account_code"],
            row["cost_center"] or "UNALLOCATED",
            f"{months[row['period']]} 26",
        ): Decimal(row["amount"])
        for row in body_rows
    }


async def every_cell(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{BASE}/cells", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        cells.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return cells


async def test_a_full_load_lands_every_cell_to_the_cent_and_reads_back(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    body_rows = rows()
    async with planning_api(make_settings, sandbox) as client:
        response = await start(client, "Actual", body_rows)
        assert response.status_code == 202, response.text
        location = response.headers["location"]
        assert location == f"{BASE}/loads/{response.json()['id']}"
        load = await finished(client, location)
        assert load["status"] == "complete", load
        assert load["counts"]["success_rows"] == len(body_rows)
        assert load["counts"]["total_rows"] == len(body_rows)
        assert load["counts"]["failed_rows"] == 0
        assert load["failures"] == []
        assert load["progress"] == 1.0
        assert load["mapping_version"] == "anaplan/v1"
        assert landed(sandbox, "Actual") == expected(body_rows)

        cells = await every_cell(client, version="Actual")
        read_back = {
            (c["entity"], c["account_code"], c["cost_center"], c["period"]): Decimal(c["amount"])
            for c in cells
        }
        sent = {
            (r["entity"], r["account_code"], r["cost_center"], r["period"]): Decimal(r["amount"])
            for r in body_rows
        }
        assert read_back == sent
        assert sum(read_back.values()) == sum(sent.values())

        listed = (await client.get(f"{BASE}/loads")).json()["items"]
        assert listed[0]["id"] == load["id"]

    counters = sandbox.counters()
    assert counters["chunks_uploaded"] > 1, "the file went up in several chunks"
    assert counters["tasks_started"]["imports"] == 1
    assert counters["authentications"] == 1, "one login for the whole session"


async def test_a_token_expiring_mid_load_costs_a_login_not_a_second_import(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    sandbox.faults(task_delay=1.5)
    body_rows = rows(("2026-04",))
    async with planning_api(make_settings, sandbox) as client:
        response = await start(client, "Actual", body_rows)
        location = response.headers["location"]
        while (await client.get(location)).json()["status"] != "importing":
            await asyncio.sleep(0.02)
        sandbox.expire_tokens()
        load = await finished(client, location)
    assert load["status"] == "complete", load
    assert load["counts"]["success_rows"] == len(body_rows)
    counters = sandbox.counters()
    assert counters["tasks_started"]["imports"] == 1
    assert counters["authentications"] == 2
    assert landed(sandbox, "Actual") == expected(body_rows)


async def test_a_load_completes_under_injected_429s_and_5xx(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    sandbox.faults(rate_429=0.1, rate_5xx=0.1, retry_after=1, seed=11)
    body_rows = rows(("2026-05",))
    async with planning_api(make_settings, sandbox) as client:
        response = await start(client, "Actual", body_rows)
        assert response.status_code == 202, response.text
        load = await finished(client, response.headers["location"], timeout=120)
    assert load["status"] == "complete", load
    assert landed(sandbox, "Actual") == expected(body_rows)
    injected = sandbox.counters()
    assert injected["429"] > 0
    assert injected["5xx"] > 0


async def test_a_busy_model_is_waited_for(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    sandbox.faults(busy_seconds=1.0)
    body_rows = rows(("2026-06",))[:10]
    async with planning_api(make_settings, sandbox, backoff=0.2) as client:
        load = await finished(client, (await start(client, "Actual", body_rows)).headers["location"])
    assert load["status"] == "complete", load
    assert sandbox.counters()["busy"] > 0
    assert landed(sandbox, "Actual") == expected(body_rows)


async def test_failed_rows_are_reported_each_with_its_row(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    sandbox.faults(failed_rows=0.2, seed=3)
    body_rows = rows(("2026-01",))
    async with planning_api(make_settings, sandbox) as client:
        load = await finished(client, (await start(client, "Actual", body_rows)).headers["location"])
    assert load["status"] == "complete", load
    counts, failures = load["counts"], load["failures"]
    assert counts["failed_rows"] == len(failures) == sandbox.counters()["failed_rows"] > 0
    assert counts["success_rows"] + counts["failed_rows"] == len(body_rows)
    failed = {failure["row"] for failure in failures}
    assert None not in failed
    want = expected([row for number, row in enumerate(body_rows) if number not in failed])
    assert landed(sandbox, "Actual") == want


async def test_values_without_a_member_are_refused_per_row_and_nothing_is_loaded(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    body_rows = rows(("2026-01",))[:5]
    body_rows[1] = {**body_rows[1], "cost_center": "CC-999"}
    body_rows[3] = {**body_rows[3], "period": "2027-01", "entity": "FS-XX"}
    async with planning_api(make_settings, sandbox) as client:
        response = await start(client, "Actual", body_rows)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/unknown-member"
    assert {(v["line"], v["field"]) for v in problem["violations"]} == {
        (1, "cost_center"),
        (3, "entity"),
        (3, "period"),
    }
    assert sandbox.counters()["chunks_uploaded"] == 0
    assert landed(sandbox, "Actual") == {}


async def test_two_rows_for_one_cell_are_refused(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    body_rows = rows(("2026-01",))[:3]
    body_rows.append({**body_rows[0], "amount": "1.00"})
    async with planning_api(make_settings, sandbox) as client:
        response = await start(client, "Actual", body_rows)
        unknown = await start(client, "Plan B", body_rows[:1])
        numbers = await client.post(
            f"{BASE}/loads",
            json={"version": "Actual", "rows": [{**body_rows[0], "amount": 1.5}]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/duplicate-cell"
    assert [v["line"] for v in problem["violations"]] == [3]
    assert unknown.status_code == 422
    assert unknown.json()["violations"][0]["field"] == "version"
    assert numbers.status_code == 400, "money is a decimal string, never a JSON number"
    assert sandbox.counters()["chunks_uploaded"] == 0


async def test_a_repeated_key_answers_the_same_load_and_a_dry_run_loads_nothing(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    body = {"version": "Forecast", "rows": rows(("2026-02",))[:4]}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    async with planning_api(make_settings, sandbox) as client:
        dry = await client.post(
            f"{BASE}/loads",
            params={"dry_run": "true"},
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert dry.status_code == 200
        assert sandbox.counters()["chunks_uploaded"] == 0
        first = await client.post(f"{BASE}/loads", json=body, headers=headers)
        again = await client.post(f"{BASE}/loads", json=body, headers=headers)
        assert first.status_code == again.status_code == 202
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["location"] == first.headers["location"]
        await finished(client, first.headers["location"])
    assert sandbox.counters()["tasks_started"]["imports"] == 1


async def test_versions_members_and_budget_agree_with_the_erp_seed(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox
) -> None:
    async with planning_api(make_settings, sandbox) as client:
        versions = (await client.get(f"{BASE}/versions")).json()["items"]
        members = {
            dimension: (
                await client.get(f"{BASE}/dimensions/{dimension}/members", params={"limit": 500})
            ).json()["items"]
            for dimension in ("entity", "account", "cost_center", "month")
        }
        budget = await every_cell(client, version="Budget", entity="FS-US", account="5.2.2")
        unknown_dimension = await client.get(f"{BASE}/dimensions/region/members")
        unknown_source = await client.get("/v1/planning/nope/versions")
        health = (await client.get("/v1/sources")).json()
    assert {v["name"] for v in versions} == {"Actual", "Budget", "Forecast"}
    assert [v["name"] for v in versions if v["is_actual"]] == ["Actual"]
    assert {m["canonical"] for m in members["entity"]} == {company.code for company in COMPANIES}
    assert set(ACCOUNTS.values()) <= {m["canonical"] for m in members["account"]}
    assert {m["canonical"] for m in members["cost_center"]} == set(CENTRES)
    assert [m["canonical"] for m in members["month"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert members["month"][0]["name"] == "Jan 26"
    assert {c["period"] for c in budget} == {f"2026-{m:02d}" for m in range(1, 13)}
    assert {c["cost_center"] for c in budget} == set(CENTRES)
    assert all(Decimal(c["amount"]) > 0 for c in budget)
    assert unknown_dimension.status_code == 400
    assert unknown_source.status_code == 404
    assert [s["health"]["status"] for s in health["items"] if s["id"] == SOURCE] == ["up"]
    assert sandbox.counters()["authentications"] == 1


async def test_the_session_renews_its_token_before_it_expires(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    short = start_sandbox(tmp_path, FINSYNC_PLANNING_SANDBOX__TOKEN_LIFETIME="3")
    try:
        async with planning_api(make_settings, short) as client:
            for _ in range(12):  # 3.6 s: through the last fifth of the first token's life
                response = await client.get(f"{BASE}/versions")
                assert response.status_code == 200, response.text
                await asyncio.sleep(0.3)
        counters = short.counters()
    finally:
        stop_sandbox(short)
    assert counters["refreshes"] >= 1, counters
    assert counters["authentications"] == 1, "renewed with /token/refresh, never a second login"
    assert counters["unauthorized"] == 0, "no call was made with an expired token"
