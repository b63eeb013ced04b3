"""The generated ledger (``kind = "generated"``): an ERP-shaped source whose books are computed.

Its reads go through the same ERP routes as Tryton's; its books balance; and an
actuals-to-plan run streams its balances batch by batch through the process
layer into the planning sandbox, where every cell equals the ledger's own sums
(computed here from the connector, not through the flow).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest

from process_apis.app import create_app as create_process_app
from shared.settings import GeneratedSourceConfig
from system_apis.app import create_app as create_system_app
from system_apis.connectors.generated.ledger import GeneratedLedger
from tests.integration.test_actuals_to_plan import MONTHS, PLAN, RUNS, finished
from tests.integration.test_planning_api import planning_source
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from shared.settings import Settings
    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

GEN = "gen"
SMALL = {
    "kind": "generated",
    "entities": 2,
    "periods": 3,
    "closed_periods": 1,
    "revenue_accounts": 50,
    "expense_accounts": 150,
    "balance_sheet_accounts": 5,
    "cost_centers": 20,
}
"""2 x 3 x ((50 + 150) x 20 + 5) = 24,030 balances: about 9 MB of NDJSON, so several batches."""
NDJSON = {"Accept": "application/x-ndjson"}


def ledger() -> GeneratedLedger:
    return GeneratedLedger(GEN, msgspec.convert(SMALL, GeneratedSourceConfig))


@asynccontextmanager
async def system_api(
    make_settings: Callable[..., Settings], **sources: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        auth={"enabled": False}, rate_limit={"enabled": False}, sources={GEN: SMALL, **sources}
    )
    async with in_process(create_system_app(settings)) as client:
        yield client


async def streamed(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/erp/{GEN}/balances", params=params, headers=NDJSON)
    assert response.status_code == 200, response.text
    return [msgspec.json.decode(line) for line in response.content.splitlines()]


async def test_it_answers_the_erp_reads_with_balanced_deterministic_books(
    make_settings: Callable[..., Settings],
) -> None:
    async with system_api(make_settings) as client:
        sources = (await client.get("/v1/sources")).json()["items"]
        entities = (await client.get(f"/v1/erp/{GEN}/legal-entities")).json()["items"]
        periods = (await client.get(f"/v1/erp/{GEN}/periods", params={"entity": "G02"})).json()["items"]
        rows = await streamed(client, entity="G02")
        again = await streamed(client, entity="G02")
        one_period = await streamed(client, entity="G02", period="2026-02", cost_center="CC-07")
        page = (await client.get(f"/v1/erp/{GEN}/balances", params={"entity": "G01", "limit": 7})).json()
    (gen,) = [source for source in sources if source["id"] == GEN]
    assert (gen["kind"], gen["health"]["status"]) == ("generated", "up")
    assert [(e["code"], e["currency"]) for e in entities] == [("G01", "USD"), ("G02", "EUR")]
    assert [(p["code"], p["state"]) for p in periods] == [
        ("2026-01", "closed"),
        ("2026-02", "open"),
        ("2026-03", "open"),
    ]
    assert len(rows) == 3 * ((50 + 150) * 20 + 5)
    assert rows == again
    assert len({row["id"] for row in rows}) == len(rows)
    assert {(row["period"], row["cost_center"]) for row in one_period} == {("2026-02", "CC-07")}
    assert len(one_period) == 200
    assert len(page["items"]) == 7
    assert page["next_cursor"]
    # Double entry: each period's movements plus the change of the closing balances sum to zero.
    movement: dict[str, Decimal] = defaultdict(Decimal)
    closing: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        side = movement if row["kind"] == "movement" else closing
        side[row["period"]] += Decimal(row["amount"])
    opening = Decimal(0)
    for period in ("2026-01", "2026-02", "2026-03"):
        assert movement[period] + closing[period] - opening == 0, period
        assert movement[period] != 0
        opening = closing[period]


async def test_what_it_does_not_hold_is_refused_clearly(make_settings: Callable[..., Settings]) -> None:
    async with system_api(make_settings) as client:
        unknown = await client.get(f"/v1/erp/{GEN}/balances", params={"entity": "G99"}, headers=NDJSON)
        posting = await client.get(f"/v1/erp/{GEN}/customers")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert "G99" in unknown.json()["detail"]
    assert posting.status_code == 404
    assert "generated ledger" in posting.json()["detail"]


def expected_totals(dimension_map: dict[str, dict[str, str]]) -> dict[tuple[str, str, str, str], Decimal]:
    """Planning's cells straight from the connector: the map applied by hand, signs by account letter."""
    totals: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    source = ledger()
    for entity in ("G01", "G02"):
        for batch in source.balances(entity):
            for balance in batch:
                if balance.kind.value != "movement":
                    continue
                key = (
                    dimension_map["entities"][balance.entity],
                    dimension_map["accounts"][balance.account_code],
                    dimension_map["cost_centers"][balance.cost_center],
                    balance.period,
                )
                totals[key] += -balance.amount if balance.account_code.startswith("R") else balance.amount
    return totals


async def test_a_run_streams_its_balances_into_planning_equal_to_the_ledgers_own_sums(
    make_settings: Callable[..., Settings], sandbox: PlanningSandbox, ledger_url: str, tmp_path: Path
) -> None:
    # The sandbox's model has the ERP seed's members: map the generated codes onto them.
    revenue, expense = ("4.1.1", "4.1.2"), ("5.1.1", "5.1.3", "5.1.4", "5.2.2")
    centres = ("CC-100", "CC-200", "CC-300", "CC-400", "CC-500")
    remaps = {
        "entities": {"G01": "FS-US", "G02": "FS-EU"},
        "accounts": {
            **{f"R{n:04d}": revenue[n % len(revenue)] for n in range(1, 51)},
            **{f"X{n:04d}": expense[n % len(expense)] for n in range(1, 151)},
        },
        "cost_centers": {f"CC-{n:02d}": centres[n % len(centres)] for n in range(1, 21)},
    }
    maps = tmp_path / "maps"
    maps.mkdir()
    tables = "\n".join(
        f"[{table}]\n" + "\n".join(f'"{code}" = "{target}"' for code, target in codes.items())
        for table, codes in remaps.items()
    )
    (maps / "gen.toml").write_text(
        f'version = "a2p/gen"\nplanning_version = "Actual"\n\n[signs]\nrevenue = -1\nexpense = 1\n\n{tables}\n',
        encoding="utf-8",
    )
    common = {"auth": {"enabled": False}, "rate_limit": {"enabled": False}}
    system = create_system_app(make_settings(**common, sources={GEN: SMALL, **planning_source(sandbox)}))
    process = create_process_app(
        make_settings(
            **common,
            ledger={"database_url": ledger_url},
            flows={
                "actuals_to_plan": {
                    "source": GEN,
                    "planning": PLAN,
                    "maps_dir": str(maps),
                    "map_version": "gen",
                }
            },
        ),
        system_transport=httpx.ASGITransport(app=system),
    )
    async with system.lifespan(), in_process(process) as client:
        response = await client.post(RUNS, json={"period_from": "2026-01", "period_to": "2026-03"})
        assert response.status_code == 202, response.text
        run = await finished(client, response.headers["location"])
    assert run["status"] == "succeeded", run
    assert run["result"]["reconciled"] is True, run
    assert run["counts"]["balances"] == 24_030
    assert run["counts"]["cells"] == 2 * 3 * len(revenue + expense) * len(centres)
    assert set(run["result"]["seconds"]) >= {"extract", "map", "validate", "aggregate", "load", "reconcile"}
    held = {
        (cell["entity"], cell["account"], cell["cost_center"], MONTHS[cell["time"]]): Decimal(cell["amount"])
        for cell in sandbox.cells("Actual")
        if cell["entity"] in ("FS-US", "FS-EU") and MONTHS[cell["time"]] <= "2026-03"
    }
    assert held == expected_totals(remaps)
