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
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from process_apis.app import create_app as create_process_app
from process_apis.flows.actuals_to_plan.dimension_map import MAPS
from system_apis.app import create_app as create_system_app
from system_apis.connectors.anaplan.mapping import MONTH_NAMES
from system_apis.connectors.tryton.seed import COST_CENTRE_ROOT
from tests.integration.test_erp_api import A, entry, post, sources, tryton_balance
from tests.integration.test_planning_api import PNL, planning_source
from tests.support import closed_port, in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from litestar import Litestar

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


@dataclass
class Layers:
    """The layers of one test, in-process, auth off."""

    process: httpx.AsyncClient
    """The process layer: runs and the ledger."""
    system: httpx.AsyncClient
    """The system layer: ERP entries and planning loads, as a partner would make them."""
    app: Litestar
    """The process app (its scheduler)."""


@asynccontextmanager
async def layers(
    make_settings: Callable[..., Settings],
    erp: Erp,
    sandbox: PlanningSandbox,
    ledger_url: str,
    erp_url: str | None = None,
    **flow: Any,
) -> AsyncIterator[Layers]:
    """The system layer over the ERP (at ``erp_url``, to point it elsewhere) and the sandbox, and the process
    layer over it with ``flow`` as its actuals-to-plan settings."""
    common = {"auth": {"enabled": False}, "rate_limit": {"enabled": False}}
    system = create_system_app(
        make_settings(**common, sources={**sources(erp, erp_url), **planning_source(sandbox)})
    )
    process = create_process_app(
        make_settings(
            **common,
            ledger={"database_url": ledger_url},
            worker={"claim_after": 5.0, "backoff": 0.1},
            flows={"actuals_to_plan": {"source": A, "planning": PLAN, **flow}},
        ),
        system_transport=httpx.ASGITransport(app=system),
    )
    async with (
        system.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=system), base_url="http://system") as direct,
        in_process(process) as client,
    ):
        yield Layers(process=client, system=direct, app=process)


async def start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Start a run over ``body`` and wait until it ends."""
    response = await client.post(RUNS, json=body)
    assert response.status_code == 202, response.text
    return await finished(client, response.headers["location"])


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


MONTHS = {f"{name} 26": f"2026-{number:02d}" for number, name in enumerate(MONTH_NAMES, 1)}


def planning_totals(sandbox: PlanningSandbox, entity: str) -> dict[tuple[str, str], Decimal]:
    """What planning's Actual version holds per (account, period) of ``entity``."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for cell in sandbox.cells("Actual"):
        if cell["entity"] == entity:
            totals[cell["account"], MONTHS[cell["time"]]] += Decimal(cell["amount"])
    return totals


def planning_cells(sandbox: PlanningSandbox, entity: str, period: str) -> dict[tuple[str, str], Decimal]:
    """What planning's Actual version holds per (account, cost centre) of ``entity`` in ``period``."""
    return {
        (cell["account"], cell["cost_center"]): Decimal(cell["amount"])
        for cell in sandbox.cells("Actual")
        if cell["entity"] == entity and MONTHS[cell["time"]] == period
    }


def assert_planning_is_the_oracle(
    erp: Erp, sandbox: PlanningSandbox, entity: str, periods: list[str]
) -> None:
    want = oracle(erp, entity, periods)
    got = planning_totals(sandbox, entity)
    assert {key: got.get(key, Decimal(0)) for key in want} == want, entity


def add_cost_centre(erp: Erp, entity: str, code: str, name: str) -> None:
    """A new cost centre of ``entity`` in the ERP, made in Tryton by its administrator."""
    erp = erp.as_admin()
    database = erp.databases[0]
    company = erp.company_id(database, entity)
    (admin,) = erp.rpc(database, "model.res.user.search", [("login", "=", "admin")], 0, 1, None, {})
    erp.rpc(database, "model.res.user.write", [admin], {"companies": [("add", [company])]}, {})
    context = erp.context(database, company)
    (root,) = erp.rpc(
        database,
        "model.analytic_account.account.search",
        [("company", "=", company), ("code", "=", COST_CENTRE_ROOT[0]), ("type", "=", "root")],
        0,
        None,
        None,
        context,
    )
    erp.rpc(
        database,
        "model.analytic_account.account.create",
        [{"name": name, "code": code, "type": "normal", "root": root, "parent": root, "company": company}],
        context,
    )


async def post_entry(
    system: httpx.AsyncClient, day: str, account: str, debit: str, credit: str, centre: str
) -> None:
    """Post an FS-US entry in the ERP through the system layer: ``account`` (with ``centre``) against cash."""
    amount = max(Decimal(debit), Decimal(credit))
    lines = [
        {"account_code": account, "debit": debit, "credit": credit, "currency": "USD", "cost_center": centre},
        {"account_code": "1.1.1", "debit": credit, "credit": debit, "currency": "USD"},
    ]
    body = entry(f"a2p-{uuid.uuid4().hex[:12]}", amount=str(amount), posting_date=day, lines=lines)
    response = await post(system, body)
    assert response.status_code == 201, response.text


def write_maps(directory: Path, **cost_centers: str) -> Path:
    """A maps directory holding the packaged ``v1`` and a ``v2`` that remaps ``cost_centers``."""
    directory.mkdir()
    (directory / "v1.toml").write_text((MAPS / "v1.toml").read_text(encoding="utf-8"), encoding="utf-8")
    remaps = "\n".join(f'"{code}" = "{target}"' for code, target in cost_centers.items())
    (directory / "v2.toml").write_text(
        f"""version = "a2p/v2"
planning_version = "Actual"

[signs]
revenue = -1
expense = 1

[cost_centers]
{remaps}
""",
        encoding="utf-8",
    )
    return directory


async def test_a_run_loads_every_slice_equal_to_tryton_and_reconciles(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    periods = ["2026-02", "2026-03", "2026-04"]  # a closed period and open ones
    async with layers(make_settings, erp, sandbox, ledger_url) as stack:
        client = stack.process
        run = await start(client, period_from=periods[0], period_to=periods[-1])
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
        assert_planning_is_the_oracle(erp, sandbox, entity, periods)
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
    async with layers(make_settings, erp, sandbox, ledger_url) as stack:
        first = await start(stack.process, period_from="2026-05", period_to="2026-05")
        assert first["status"] == "succeeded", first
        # A cell planning holds that the ERP does not (loaded by hand, say):
        accepted = await stack.system.post(
            f"/v1/planning/{PLAN}/loads",
            json={"version": "Actual", "rows": [stale]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        while (await stack.system.get(accepted.headers["location"])).json()["status"] != "complete":
            await asyncio.sleep(0.05)
        second = await start(stack.process, period_from="2026-05", period_to="2026-05")
    assert second["status"] == "succeeded", second
    assert second["result"]["reconciled"] is True, second
    assert second["counts"]["zeros"] >= 1
    for entity in ("FS-US", "FS-EU"):
        assert_planning_is_the_oracle(erp, sandbox, entity, ["2026-05"])


async def test_two_runs_over_one_slice_end_as_one_run_and_one_conflict(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    sandbox.faults(task_delay=1.0)
    body = {"period_from": "2026-06", "period_to": "2026-06", "entities": ["FS-US"]}
    async with layers(make_settings, erp, sandbox, ledger_url) as stack:
        client = stack.process
        one, two = await asyncio.gather(client.post(RUNS, json=body), client.post(RUNS, json=body))
        runs = [await finished(client, r.headers["location"]) for r in (one, two)]
    assert sorted(run["status"] for run in runs) == ["conflict", "succeeded"], runs


async def test_a_run_completes_and_reconciles_under_planning_faults(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    sandbox.faults(rate_429=0.15, rate_5xx=0.15, retry_after=0, seed=5)
    async with layers(make_settings, erp, sandbox, ledger_url) as stack:
        run = await start(stack.process, period_from="2026-07", period_to="2026-07")
    assert run["status"] == "succeeded", run
    assert run["result"]["reconciled"] is True, run
    counters = sandbox.counters()
    assert counters["429"] > 0
    assert counters["5xx"] > 0
    for entity in ("FS-US", "FS-EU"):
        assert_planning_is_the_oracle(erp, sandbox, entity, ["2026-07"])


async def test_an_unreachable_erp_fails_the_run_clearly_and_never_reconciles(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    async with layers(
        make_settings, erp, sandbox, ledger_url, erp_url=f"http://127.0.0.1:{closed_port()}"
    ) as stack:
        run = await start(stack.process, period_from="2026-08", period_to="2026-08", entities=["FS-US"])
        exceptions = (
            await stack.process.get("/v1/exceptions", params={"reason_code": "source-unreachable"})
        ).json()["items"]
    assert run["status"] == "failed", run
    assert run["result"]["reconciled"] is False
    assert run["error"]
    assert [e["exception"]["slice_key"] for e in exceptions] == [f"{A}:FS-US:2026-08"]
    assert exceptions[0]["exception"]["run_id"] == run["id"]
    assert exceptions[0]["age_seconds"] >= 0


async def test_an_unmapped_cost_centre_is_an_aged_exception_until_a_new_map_and_a_replay_load_it(
    make_settings: Callable[..., Settings],
    erp: Erp,
    sandbox: PlanningSandbox,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    period, missing = "2026-09", Decimal("1234.56")
    maps = write_maps(tmp_path / "maps", **{"CC-600": "CC-500"})
    add_cost_centre(erp, "FS-US", "CC-600", "Customer Success")
    body = {"period_from": period, "period_to": period, "entities": ["FS-US"]}
    async with layers(make_settings, erp, sandbox, ledger_url, maps_dir=str(maps)) as stack:
        await post_entry(stack.system, "2026-09-14", "5.2.2", str(missing), "0", "CC-600")
        run = await start(stack.process, **body)
        cases = (await stack.process.get("/v1/exceptions", params={"reason_code": "unmapped-member"})).json()[
            "items"
        ]
    assert run["status"] == "succeeded", run
    assert run["result"]["reconciled"] is False
    assert run["counts"]["unmapped"] == 1
    (case,) = cases
    assert case["exception"]["fingerprint"] == "cost_center:CC-600"
    assert case["exception"]["slice_key"] == f"{A}:FS-US:{period}"
    assert Decimal(case["exception"]["detail"]["amount"]) == missing
    assert case["exception"]["status"] == "open"
    assert case["age_seconds"] >= 0
    before = planning_cells(sandbox, "FS-US", period)
    want = oracle(erp, "FS-US", [period])
    got = planning_totals(sandbox, "FS-US")
    assert want["5.2.2", period] - got["5.2.2", period] == missing  # the rest of the slice is loaded

    # The map is added (a new version, deployed), and the exception replayed.
    async with layers(make_settings, erp, sandbox, ledger_url, maps_dir=str(maps), map_version="v2") as stack:
        replay = await stack.process.post(f"/v1/exceptions/{case['exception']['id']}/replay")
        assert replay.status_code == 202, replay.text
        again = await finished(stack.process, replay.headers["location"])
        (resolved,) = (
            await stack.process.get("/v1/exceptions", params={"reason_code": "unmapped-member"})
        ).json()["items"]
    assert again["status"] == "succeeded", again
    assert again["result"]["reconciled"] is True, again
    assert again["params"]["map_version"] == "v2"
    assert resolved["exception"]["status"] == "resolved"
    after = planning_cells(sandbox, "FS-US", period)
    changed = {
        cell: after.get(cell, Decimal(0)) - before.get(cell, Decimal(0))
        for cell in before.keys() | after.keys()
        if after.get(cell, Decimal(0)) != before.get(cell, Decimal(0))
    }
    assert changed == {("5.2.2", "CC-500"): missing}
    assert_planning_is_the_oracle(erp, sandbox, "FS-US", [period])


async def test_after_a_reversal_and_after_a_remap_a_rerun_leaves_stale_cells_zero(
    make_settings: Callable[..., Settings],
    erp: Erp,
    sandbox: PlanningSandbox,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    period = "2026-10"
    body = {"period_from": period, "period_to": period, "entities": ["FS-US"]}
    maps = write_maps(tmp_path / "maps", **{"CC-200": "CC-100"})
    odd = ("4.1.1", "CC-300")  # goods revenue carries no cost-centre split in the seed
    async with layers(make_settings, erp, sandbox, ledger_url, maps_dir=str(maps)) as stack:
        await post_entry(stack.system, "2026-10-12", odd[0], "0", "500.00", odd[1])
        first = await start(stack.process, **body)
        assert first["result"]["reconciled"] is True, first
        assert planning_cells(sandbox, "FS-US", period)[odd] == Decimal("500.00")
        assert_planning_is_the_oracle(erp, sandbox, "FS-US", [period])

        await post_entry(stack.system, "2026-10-13", odd[0], "500.00", "0", odd[1])  # its reversal
        second = await start(stack.process, **body)
    assert second["result"]["reconciled"] is True, second
    cells = planning_cells(sandbox, "FS-US", period)
    assert cells.get(odd, Decimal(0)) == 0
    assert_planning_is_the_oracle(erp, sandbox, "FS-US", [period])

    async with layers(make_settings, erp, sandbox, ledger_url, maps_dir=str(maps), map_version="v2") as stack:
        third = await start(stack.process, **body)
    assert third["result"]["reconciled"] is True, third
    remapped = planning_cells(sandbox, "FS-US", period)
    moved = {account for account, centre in cells if centre == "CC-200" and cells[account, centre]}
    assert moved, cells  # the seed allocates expenses to CC-200 in every month
    for account in moved:
        assert remapped[account, "CC-200"] == 0
        assert (
            remapped[account, "CC-100"]
            == cells.get((account, "CC-100"), Decimal(0)) + cells[account, "CC-200"]
        )
    assert third["counts"]["zeros"] >= len(moved)
    assert_planning_is_the_oracle(erp, sandbox, "FS-US", [period])


async def test_the_schedule_starts_a_run_over_its_months_that_reconciles(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    schedule = {"schedule": "0 2 * * *", "entities": ["FS-US"], "months_back": 1}
    async with layers(make_settings, erp, sandbox, ledger_url, **schedule) as stack:
        fired = await stack.app.state.scheduler.tick(datetime(2026, 4, 1, 2, 0, tzinfo=UTC))
        assert fired == ["actuals-to-plan"]
        (queued,) = (await stack.process.get("/v1/runs", params={"flow": "actuals-to-plan"})).json()["items"]
        run = await finished(stack.process, f"{RUNS}/{queued['id']}")
        # A second replica's tick for the same time starts nothing.
        assert await stack.app.state.scheduler.tick(datetime(2026, 4, 1, 2, 0, tzinfo=UTC)) == []
    assert run["trigger"] == "schedule"
    assert run["actor"] == "schedule"
    assert (run["params"]["period_from"], run["params"]["period_to"]) == ("2026-03", "2026-04")
    assert run["status"] == "succeeded", run
    assert run["result"]["reconciled"] is True, run
    assert_planning_is_the_oracle(erp, sandbox, "FS-US", ["2026-03", "2026-04"])


async def test_an_entity_the_erp_does_not_have_is_refused_before_anything_is_queued(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    body = {"period_from": "2026-06", "period_to": "2026-06", "entities": ["FS-US", "XX-NOPE"]}
    async with layers(make_settings, erp, sandbox, ledger_url) as stack:
        refused = await stack.process.post(RUNS, json=body)
        runs = (await stack.process.get("/v1/runs")).json()["items"]
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "XX-NOPE" in refused.json()["detail"]
    assert runs == []
