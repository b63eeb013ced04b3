"""Actuals-to-plan end to end: the real Tryton, the planning sandbox, the system and process layers, the ledger.

The oracle is Tryton itself: each profit-and-loss account's posted movement per
period, read over JSON-RPC (``tryton_balance``), never through the mapping code.
What planning holds is read from the sandbox's control API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from process_apis.app import create_app as create_process_app
from system_apis.app import create_app as create_system_app
from system_apis.connectors.anaplan.mapping import MONTH_NAMES
from tests.integration.test_erp_api import A, sources, tryton_balance
from tests.integration.test_planning_api import PNL, planning_source
from tests.support import closed_port, in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from shared.settings import Settings
    from tests.erp_fixtures import Erp
    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

PLAN = "plan"
SIGN = {
    "4.1.1": -1,
    "4.1.2": -1,
}  # revenue: the ERP's credit is planning's positive; expenses keep their sign
RUNS = "/v1/flows/actuals-to-plan/runs"


@asynccontextmanager
async def layers(
    make_settings: Callable[..., Settings],
    erp: Erp,
    sandbox: PlanningSandbox,
    ledger_url: str,
    erp_url: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The system layer over the ERP (at ``erp_url``, to point it elsewhere) and the sandbox, and the process
    layer over it, in-process, auth off."""
    common = {"auth": {"enabled": False}, "rate_limit": {"enabled": False}}
    system = create_system_app(
        make_settings(**common, sources={**sources(erp, erp_url), **planning_source(sandbox)})
    )
    process = create_process_app(
        make_settings(
            **common,
            ledger={"database_url": ledger_url},
            worker={"claim_after": 5.0, "backoff": 0.1},
            flows={"actuals_to_plan": {"source": A, "planning": PLAN}},
        ),
        system_transport=httpx.ASGITransport(app=system),
    )
    async with system.lifespan(), in_process(process) as client:
        yield client


async def finished(client: httpx.AsyncClient, location: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run: dict[str, Any] = (await client.get(location)).json()
        if run["status"] not in ("queued", "running"):
            return run
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.1)


def period_id(erp: Erp, entity: str, period: str) -> int:
    name = erp.databases[0]
    company = erp.company_id(name, entity)
    (found,) = erp.rpc(
        name,
        "model.account.period.search",
        [("company", "=", company), ("name", "=", period)],
        0,
        1,
        None,
        {},
    )
    return int(found)


def oracle(erp: Erp, entity: str, periods: list[str]) -> dict[tuple[str, str], Decimal]:
    """Planning's expected total per (account, period), from Tryton's own posted movements."""
    expected = {}
    for period in periods:
        context = {"periods": [period_id(erp, entity, period)]}
        for code in PNL:
            balance = tryton_balance(erp, code, context, entity=entity)
            expected[code, period] = balance * SIGN.get(code, 1)
    return expected


def planning_totals(sandbox: PlanningSandbox, entity: str) -> dict[tuple[str, str], Decimal]:
    """What planning's Actual version holds per (account, period) of ``entity``."""
    months = {f"{name} 26": f"2026-{number:02d}" for number, name in enumerate(MONTH_NAMES, 1)}
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for cell in sandbox.cells("Actual"):
        if cell["entity"] == entity:
            totals[cell["account"], months[cell["time"]]] += Decimal(cell["amount"])
    return totals


async def test_a_run_loads_every_slice_equal_to_tryton_and_reconciles(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    periods = ["2026-02", "2026-03", "2026-04"]  # a closed period and open ones
    async with layers(make_settings, erp, sandbox, ledger_url) as client:
        response = await client.post(RUNS, json={"period_from": periods[0], "period_to": periods[-1]})
        assert response.status_code == 202, response.text
        run = await finished(client, response.headers["location"])
        assert run["status"] == "succeeded", run
        assert run["result"]["reconciled"] is True, run
        assert run["counts"]["rows_loaded"] > 0
        states = {key: value["period_state"] for key, value in run["result"]["slices"].items()}
        assert states[f"{A}:FS-US:2026-03"] == "closed"
        assert states[f"{A}:FS-US:2026-04"] == "open"
        lines = (await client.get("/v1/reconciliations", params={"run_id": run["id"], "limit": 500})).json()[
            "items"
        ]
        trace = (await client.get(f"/v1/audit/traces/{run['trace_id']}")).json()["events"]
        runs = (await client.get("/v1/runs", params={"flow": "actuals-to-plan"})).json()["items"]
    for entity in ("FS-US", "FS-EU"):
        want = oracle(erp, entity, periods)
        got = planning_totals(sandbox, entity)
        assert {key: got.get(key, Decimal(0)) for key in want} == want, entity
    assert lines
    assert all(line["status"] == "matched" for line in lines)
    assert {(event["step"], event["kind"]) for event in trace} >= {
        ("extract", "intent"),
        ("load", "intent"),
        ("load", "outcome"),
        ("reconcile", "outcome"),
    }
    assert [r["id"] for r in runs] == [run["id"]]


async def test_a_rerun_replaces_the_slice_and_never_adds_to_it(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    stale = {  # goods revenue carries no cost-centre split in the ERP: this cell has no actuals
        "entity": "FS-US",
        "account_code": "4.1.1",
        "cost_center": "CC-300",
        "period": "2026-05",
        "amount": "777.77",
    }
    async with layers(make_settings, erp, sandbox, ledger_url) as client:
        first = await finished(
            client,
            (await client.post(RUNS, json={"period_from": "2026-05", "period_to": "2026-05"})).headers[
                "location"
            ],
        )
        assert first["status"] == "succeeded", first
        # A cell planning holds that the ERP no longer has (a reversal, a remapped cost centre):
        system = create_system_app(
            make_settings(
                auth={"enabled": False}, rate_limit={"enabled": False}, sources=planning_source(sandbox)
            )
        )
        async with in_process(system) as direct:
            accepted = await direct.post(
                f"/v1/planning/{PLAN}/loads",
                json={"version": "Actual", "rows": [stale]},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            while (await direct.get(accepted.headers["location"])).json()["status"] != "complete":
                await asyncio.sleep(0.05)
        second = await finished(
            client,
            (await client.post(RUNS, json={"period_from": "2026-05", "period_to": "2026-05"})).headers[
                "location"
            ],
        )
    assert second["status"] == "succeeded", second
    assert second["result"]["reconciled"] is True, second
    assert second["counts"]["zeros"] >= 1
    for entity in ("FS-US", "FS-EU"):
        want = oracle(erp, entity, ["2026-05"])
        got = planning_totals(sandbox, entity)
        assert {key: got.get(key, Decimal(0)) for key in want} == want, entity


async def test_two_runs_over_one_slice_end_as_one_run_and_one_conflict(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    sandbox.faults(task_delay=1.0)
    body = {"period_from": "2026-06", "period_to": "2026-06", "entities": ["FS-US"]}
    async with layers(make_settings, erp, sandbox, ledger_url) as client:
        one, two = await asyncio.gather(client.post(RUNS, json=body), client.post(RUNS, json=body))
        runs = [await finished(client, r.headers["location"]) for r in (one, two)]
    assert sorted(run["status"] for run in runs) == ["conflict", "succeeded"], runs


async def test_a_run_completes_and_reconciles_under_planning_faults(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    sandbox.faults(rate_429=0.15, rate_5xx=0.15, retry_after=0, seed=5)
    async with layers(make_settings, erp, sandbox, ledger_url) as client:
        response = await client.post(RUNS, json={"period_from": "2026-07", "period_to": "2026-07"})
        run = await finished(client, response.headers["location"])
    assert run["status"] == "succeeded", run
    assert run["result"]["reconciled"] is True, run
    counters = sandbox.counters()
    assert counters["429"] > 0
    assert counters["5xx"] > 0
    for entity in ("FS-US", "FS-EU"):
        want = oracle(erp, entity, ["2026-07"])
        got = planning_totals(sandbox, entity)
        assert {key: got.get(key, Decimal(0)) for key in want} == want, entity


async def test_an_unreachable_erp_fails_the_run_clearly_and_never_reconciles(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    async with layers(
        make_settings, erp, sandbox, ledger_url, erp_url=f"http://127.0.0.1:{closed_port()}"
    ) as client:
        response = await client.post(
            RUNS, json={"period_from": "2026-08", "period_to": "2026-08", "entities": ["FS-US"]}
        )
        assert response.status_code == 202, response.text
        run = await finished(client, response.headers["location"])
        exceptions = (
            await client.get("/v1/exceptions", params={"reason_code": "source-unreachable"})
        ).json()["items"]
    assert run["status"] == "failed", run
    assert run["result"]["reconciled"] is False
    assert run["error"]
    assert [e["exception"]["slice_key"] for e in exceptions] == [f"{A}:FS-US:2026-08"]
    assert exceptions[0]["exception"]["run_id"] == run["id"]
    assert exceptions[0]["age_seconds"] >= 0
