"""The workbench end to end: experience over process over system, the real Tryton, the planning sandbox, the ledger.

The oracle for budget against actuals is the sandbox's own control API
(``sandbox.cells``: members by code, months by name), summed here without any of
the workbench's code; the oracle for freshness is the run the test started.
The pure rules (variance %, freshness objective) are tested first, without
fixtures.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import threading
import uuid
from collections import defaultdict
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
import pytest

from experience_apis.app import create_app as create_experience_app
from experience_apis.clients.process import ProcessClient
from process_apis.app import create_app as create_process_app
from process_apis.workbench.freshness import LoadedSlice, freshness_rows
from process_apis.workbench.variance import variance_pct
from shared.canonical import PeriodState
from shared.errors import NotFoundError
from system_apis.app import create_app as create_system_app
from tests.contract.test_layer_clients import Recorder, assert_exchanges_match_spec, recorded_client
from tests.integration.test_actuals_to_plan import MONTHS, PLAN, Layers, layers, start
from tests.integration.test_erp_api import A, sources
from tests.integration.test_planning_api import planning_source
from tests.support import in_process
from tests.tokens import ISSUER, TestIssuer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from shared.settings import Settings
    from tests.erp_fixtures import Erp
    from tests.planning_fixtures import PlanningSandbox

BVA = "/v1/workbench/budget-vs-actuals"
FRESHNESS = "/v1/workbench/freshness"
PERIODS = ("2026-05", "2026-06")
WINDOW = {"from": PERIODS[0], "to": PERIODS[-1]}
CURRENCIES = {"FS-US": "USD", "FS-EU": "EUR"}
"""The ERP seed's companies and their currencies (``system_apis.connectors.tryton.seed.COMPANIES``)."""
UNALLOCATED_MEMBER = "UNALLOCATED"
"""The planning member of the ERP's unallocated cost centre, canonically ``""``."""
AMOUNTS = ("currency", "actual", "budget", "variance", "variance_pct")


# -- the rules on their own ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variance", "budget", "expected"),
    [
        ("10", "200", "5.00"),
        ("-10", "200", "-5.00"),
        ("10", "-200", "5.00"),  # over |budget|: a negative budget keeps the variance's sign
        ("1", "3", "33.33"),
        ("2", "3", "66.67"),
        ("0.005", "100", "0.01"),  # half up
        ("-0.004", "100", "0.00"),  # never "-0.00"
        ("5", "0", None),
        ("0", "0.00", None),
        ("123456789012345678901234567890.12", "0.01", "1234567890123456789012345678901200.00"),
    ],
)
def test_variance_pct_is_over_the_absolute_budget_to_two_places_and_null_without_a_budget(
    variance: str, budget: str, expected: str | None
) -> None:
    pct = variance_pct(Decimal(variance), Decimal(budget))
    assert (None if pct is None else str(pct)) == expected


def test_freshness_needs_a_reconciled_load_younger_than_the_objective_unless_the_period_closed() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)

    def load(period: str, hours: float, *, reconciled: bool = True, closed: bool = False) -> LoadedSlice:
        return LoadedSlice(
            entity="FS-US",
            period=period,
            run_id=f"run-{period}",
            loaded_at=now - timedelta(hours=hours),
            period_state=PeriodState.CLOSED if closed else PeriodState.OPEN,
            reconciled=reconciled,
        )

    loads = {
        ("FS-US", "2026-01"): load("2026-01", 2),
        ("FS-US", "2026-02"): load("2026-02", 30),
        ("FS-US", "2026-03"): load("2026-03", 2, reconciled=False),
        ("FS-US", "2026-04"): load("2026-04", 900, closed=True),
        ("FS-US", "2026-05"): load("2026-05", 900, closed=True, reconciled=False),
    }
    periods = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    rows = freshness_rows(["FS-US"], periods, loads, timedelta(hours=24), now)
    assert [(row.period, row.meets_objective) for row in rows] == [
        ("2026-01", True),
        ("2026-02", False),  # too old
        ("2026-03", False),  # did not reconcile
        ("2026-04", True),  # loaded after it closed: final
        ("2026-05", False),
        ("2026-06", False),  # never loaded
    ]
    assert rows[0].age_seconds == 7200
    assert rows[-1].last_loaded_at is None
    assert rows[-1].reconciled is False


# -- the oracle ----------------------------------------------------------------------------------------


def cell_keys(cell: dict[str, str]) -> dict[str, str]:
    """A sandbox cell's keys in canonical terms."""
    centre = cell["cost_center"]
    return {
        "entity": cell["entity"],
        "period": MONTHS[cell["time"]],
        "account": cell["account"],
        "cost_center": "" if centre == UNALLOCATED_MEMBER else centre,
    }


def expected_rows(
    sandbox: PlanningSandbox, group_by: list[str], entities: tuple[str, ...] = ("FS-US", "FS-EU")
) -> dict[tuple[str, ...], dict[str, Any]]:
    """What budget against actuals must answer over :data:`PERIODS`, by (group keys..., currency)."""
    sums: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for side, version in enumerate(("Actual", "Budget")):
        for cell in sandbox.cells(version):
            keys = cell_keys(cell)
            if keys["entity"] in entities and keys["period"] in PERIODS:
                row = (*(keys[k] for k in group_by), CURRENCIES[keys["entity"]])
                sums[row][side] += Decimal(cell["amount"])
    rows = {}
    for key, (actual, budget) in sums.items():
        variance = actual - budget
        pct = (
            None
            if budget == 0
            else (variance / abs(budget) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        )
        rows[key] = {"actual": actual, "budget": budget, "variance": variance, "variance_pct": pct}
    return rows


def as_found(items: list[dict[str, Any]], group_by: list[str]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Answered rows, keyed like :func:`expected_rows`, amounts as Decimals; asserts each key comes once."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in items:
        key = (*(item[k] for k in group_by), item["currency"])
        assert key not in found, key
        assert all(
            item[k] is None for k in ("entity", "period", "account", "cost_center") if k not in group_by
        )
        pct = item["variance_pct"]
        found[key] = {
            "actual": Decimal(item["actual"]),
            "budget": Decimal(item["budget"]),
            "variance": Decimal(item["variance"]),
            "variance_pct": None if pct is None else Decimal(pct),
        }
        assert all(isinstance(item[k], str) for k in ("actual", "budget", "variance"))  # money as strings
    return found


# -- the layers ----------------------------------------------------------------------------------------


@dataclass
class Workbench:
    """Experience over the process and system layers of :func:`layers`, auth off."""

    experience: httpx.AsyncClient
    layers: Layers


@asynccontextmanager
async def workbench(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> AsyncIterator[Workbench]:
    async with layers(make_settings, erp, sandbox, ledger_url) as stack:
        experience = create_experience_app(
            make_settings(auth={"enabled": False}, rate_limit={"enabled": False}),
            process_transport=httpx.ASGITransport(app=stack.app),
        )
        async with in_process(experience) as client:
            yield Workbench(experience=client, layers=stack)


async def load_cells(system: httpx.AsyncClient, version: str, rows: list[dict[str, str]]) -> None:
    """Load ``rows`` into ``version`` through the system layer and wait until the load completes."""
    accepted = await system.post(
        f"/v1/planning/{PLAN}/loads",
        json={"version": version, "rows": rows},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert accepted.status_code == 202, accepted.text
    for _ in range(600):
        load = (await system.get(accepted.headers["location"])).json()
        if load["status"] == "complete":
            return
        assert load["status"] in ("queued", "uploading", "importing"), load
        await asyncio.sleep(0.05)
    pytest.fail(f"load {accepted.headers['location']} did not complete")


async def every_page(client: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(BVA, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= params["limit"]
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == type_, problem
    assert problem["detail"]
    return problem


async def assert_fresh_after(client: httpx.AsyncClient, run: dict[str, Any]) -> None:
    """Every entity and period of the window was loaded by ``run``, reconciled, and is fresh."""
    after = (await client.get(FRESHNESS, params=WINDOW)).json()
    assert after["objective"] == "24h"
    assert after["objective_seconds"] == 86400
    assert after["entities_from"] == "erp"
    assert len(after["items"]) == 4
    for row in after["items"]:
        assert row["run_id"] == run["id"], row
        assert row["reconciled"] is True, row
        assert row["meets_objective"] is True, row
        assert row["period_state"] == "open", row
        assert 0 <= row["age_seconds"] < 600, row
        assert datetime.fromisoformat(row["last_loaded_at"]) <= datetime.now(UTC)


async def assert_one_entity_is_what_planning_holds(
    client: httpx.AsyncClient, sandbox: PlanningSandbox, params: dict[str, Any], group_by: list[str]
) -> dict[str, Any]:
    """By ``group_by`` for FS-US: every row is what the sandbox holds; the zero budget has a null %."""
    answer = await client.get(BVA, params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    assert page["next_cursor"] is None
    assert (page["version"], page["actual_version"]) == ("Budget", "Actual")
    assert (page["period_from"], page["period_to"], page["group_by"]) == (*PERIODS, group_by)
    assert page["planning_currency"] == "USD"
    assert page["currencies"] == {"FS-US": "USD"}
    assert {row["currency"] for row in page["items"]} == {"USD"}
    want = expected_rows(sandbox, group_by, ("FS-US",))
    assert as_found(page["items"], group_by) == want
    assert any(row["actual"] for row in want.values())  # the run loaded actuals
    (zero,) = (
        row
        for row in page["items"]
        if (row["account"], row["cost_center"], row["period"]) == ("5.2.2", "CC-200", "2026-06")
    )
    assert Decimal(zero["budget"]) == 0
    assert Decimal(zero["actual"]) != 0
    assert zero["variance_pct"] is None
    keys = [tuple(row[k] for k in group_by) for row in page["items"]]
    assert keys == sorted(keys)
    return page


async def assert_csv_is_every_row(
    client: httpx.AsyncClient, params: dict[str, Any], page: dict[str, Any], group_by: list[str]
) -> None:
    """``Accept: text/csv``: the same rows, every one of them (``limit`` does not apply), as a file."""
    sheet = await client.get(BVA, params={**params, "limit": 3}, headers={"Accept": "text/csv"})
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"].startswith("text/csv")
    assert "charset=utf-8" in sheet.headers["content-type"]
    assert (
        sheet.headers["content-disposition"]
        == 'attachment; filename="budget-vs-actuals_Budget_2026-05_2026-06.csv"'
    )
    assert sheet.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert table[0] == [*group_by, *AMOUNTS]
    assert [dict(zip(table[0], line, strict=True)) for line in table[1:]] == [
        {**{k: row[k] for k in group_by}, **{k: row[k] or "" for k in AMOUNTS}} for row in page["items"]
    ]


@pytest.mark.slow
async def test_budget_against_actuals_and_freshness_after_a_run(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    async with workbench(make_settings, erp, sandbox, ledger_url) as wb:
        client = wb.experience

        # Before any run: every entity and period is listed, none loaded, none fresh.
        before = await client.get(FRESHNESS, params=WINDOW)
        assert before.status_code == 200, before.text
        assert [(r["entity"], r["period"]) for r in before.json()["items"]] == [
            (entity, period) for entity in ("FS-EU", "FS-US") for period in PERIODS
        ]
        assert not any(
            r["last_loaded_at"] or r["reconciled"] or r["meets_objective"] for r in before.json()["items"]
        )

        run = await start(wb.layers.process, period_from=PERIODS[0], period_to=PERIODS[-1])
        assert run["status"] == "succeeded", run
        assert run["result"]["reconciled"] is True, run
        # A cost centre with no budget this month: its variance % must be null.
        no_budget = {"entity": "FS-US", "account_code": "5.2.2", "cost_center": "CC-200", "period": "2026-06"}
        await load_cells(wb.layers.system, "Budget", [{**no_budget, "amount": "0"}])
        await assert_fresh_after(client, run)

        group_by = ["account", "cost_center", "period"]
        one = {**WINDOW, "entity": "FS-US", "group_by": ",".join(group_by), "limit": 500}
        page = await assert_one_entity_is_what_planning_holds(client, sandbox, one, group_by)
        await assert_csv_is_every_row(client, one, page, group_by)

        # By account over both entities: USD and EUR are never added up, and the answer says so.
        by_account = (await client.get(BVA, params=WINDOW)).json()
        assert by_account["group_by"] == ["account"]
        assert by_account["planning_currency"] is None
        assert by_account["currencies"] == CURRENCIES
        assert as_found(by_account["items"], ["account"]) == expected_rows(sandbox, ["account"])
        assert {row["currency"] for row in by_account["items"]} == {"USD", "EUR"}

        # Paging with the cursor returns every row exactly once.
        finest = ["entity", "account", "cost_center", "period"]
        paged = await every_page(client, {**WINDOW, "group_by": ",".join(finest), "limit": 25})
        assert len(paged) > 50
        assert as_found(paged, finest) == expected_rows(sandbox, finest)

        # The process layer answers the same rows, and streams them all as NDJSON.
        direct = await wb.layers.process.get(BVA, params=one)
        assert direct.json() == page
        lines = await wb.layers.process.get(BVA, params=one, headers={"Accept": "application/x-ndjson"})
        assert lines.headers["content-type"].startswith("application/x-ndjson")
        assert [json.loads(line) for line in lines.text.splitlines()] == page["items"]

        # Every read is in the audit trail under its trace, with the caller (anonymous: auth is off here).
        trace_id = os.urandom(16).hex()
        traced = await client.get(
            FRESHNESS, params=WINDOW, headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"}
        )
        assert traced.status_code == 200
        events = (await wb.layers.process.get(f"/v1/audit/traces/{trace_id}")).json()["events"]
        assert [(e["step"], e["kind"], e["actor"], e["detail"]["operation"]) for e in events] == [
            ("workbench.read", "outcome", "anonymous", "ListFreshness")
        ]


@pytest.mark.slow
async def test_bad_input_gets_a_clear_problem_never_a_5xx(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    bad = [
        (BVA, {"group_by": "account,colour"}, 400, "/problems/bad-request"),
        (BVA, {"group_by": ""}, 400, "/problems/bad-request"),
        (BVA, {"from": "2026-13"}, 400, "/problems/bad-request"),
        (BVA, {"from": "2026-06", "to": "2026-05"}, 400, "/problems/bad-request"),
        (BVA, {"from": "2025-01", "to": "2027-01"}, 400, "/problems/bad-request"),
        (BVA, {"limit": 0}, 400, "/problems/bad-request"),
        (BVA, {"cursor": "not a cursor"}, 400, "/problems/bad-request"),
        (BVA, {"cursor": "A"}, 400, "/problems/bad-request"),  # the right alphabet, not base64
        (BVA, {"entity": "FS-XX"}, 404, "/problems/not-found"),
        (BVA, {"version": "Stretch"}, 404, "/problems/not-found"),
        (FRESHNESS, {"to": "26-01"}, 400, "/problems/bad-request"),
        (FRESHNESS, {"from": "2026-06", "to": "2026-01"}, 400, "/problems/bad-request"),
        (FRESHNESS, {"entity": "FS-XX"}, 404, "/problems/not-found"),
    ]
    async with workbench(make_settings, erp, sandbox, ledger_url) as wb:
        for path, params, status, type_ in bad:
            for client in (wb.experience, wb.layers.process):
                problem = assert_problem(await client.get(path, params=params), status, type_)
                if status == 404:
                    assert problem["field"] in ("entity", "version"), problem
        csv_refused = await wb.experience.get(
            BVA, params={"from": "2026-06", "to": "2026-05"}, headers={"Accept": "text/csv"}
        )
        assert_problem(csv_refused, 400, "/problems/bad-request")


@pytest.mark.slow
async def test_the_experience_layers_client_speaks_the_committed_process_spec(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox, ledger_url: str
) -> None:
    recorder = Recorder()
    query = {"from": "2026-01", "to": "2026-03", "entity": "FS-EU", "group_by": "period,account", "limit": 10}
    async with (
        layers(make_settings, erp, sandbox, ledger_url) as stack,
        recorded_client(stack.app, recorder) as http,
    ):
        client = ProcessClient(http)
        page = await client.budget_vs_actuals(query, timeout=30)
        rows = await client.budget_vs_actuals_rows(query, timeout=30)
        fresh = await client.freshness({"from": "2026-01", "to": "2026-02"}, timeout=30)
        with pytest.raises(NotFoundError) as refused:
            await client.freshness({"entity": "FS-XX"}, timeout=30)
    assert page.next_cursor is not None
    assert rows[: len(page.items)] == page.items
    assert len(rows) == 3 * 6  # three months of six planned accounts
    assert {row.currency for row in rows} == {"EUR"}
    assert len(fresh.items) == 4
    assert refused.value.extra["field"] == "entity"  # relayed as the caller's mistake, with its members
    used = assert_exchanges_match_spec("process", recorder.responses)
    assert used == {"ListBudgetVsActuals", "ListFreshness"}


# -- auth: the scope, and the original caller in the audit ------------------------------------------------


@contextmanager
def token_endpoint(issuer: TestIssuer, secrets: dict[str, str]) -> Iterator[str]:
    """A real token endpoint on loopback: client credentials, ``resource`` as the audience, and
    ``on_behalf_of`` as the ``obo`` claim, the way the built-in authorization server grants internal clients."""

    class Token(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = {
                k: v[0]
                for k, v in parse_qs(self.rfile.read(int(self.headers["content-length"])).decode()).items()
            }
            client = form.get("client_id", "")
            if secrets.get(client) != form.get("client_secret"):
                self.answer(401, {"error": "invalid_client"})
                return
            token = issuer.token(
                form["resource"],
                "workbench:read flows:read",
                client_id=client,
                sub=client,
                obo=form.get("on_behalf_of"),
            )
            self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})

        def answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/oauth/token"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
async def test_the_workbench_needs_its_scope_and_the_audit_names_the_original_caller(
    make_settings: Callable[..., Settings],
    erp: Erp,
    sandbox: PlanningSandbox,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    issuer = TestIssuer(tmp_path)
    trust = {"enabled": True, "issuer": ISSUER, "jwks_file": str(issuer.jwks_file)}
    off = {"rate_limit": {"enabled": False}}
    system = create_system_app(
        make_settings(auth={"enabled": False}, sources={**sources(erp), **planning_source(sandbox)}, **off)
    )
    process = create_process_app(
        make_settings(
            auth=trust,
            clients={"experience": {"internal": True}},
            ledger={"database_url": ledger_url},
            flows={"actuals_to_plan": {"source": A, "planning": PLAN}},
            **off,
        ),
        system_transport=httpx.ASGITransport(app=system),
    )
    with token_endpoint(issuer, {"experience": "experience-secret"}) as token_url:
        experience = create_experience_app(
            make_settings(
                auth={
                    **trust,
                    "client_id": "experience",
                    "client_secret": "experience-secret",
                    "token_url": token_url,
                },
                **off,
            ),
            process_transport=httpx.ASGITransport(app=process),
        )
        async with system.lifespan(), in_process(process) as below, in_process(experience) as client:

            def bearer(audience: str, scope: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {issuer.token(audience, scope)}"}

            params = {"from": "2026-01", "to": "2026-02", "entity": "FS-US"}
            assert_problem(await client.get(BVA, params=params), 401, "/problems/unauthenticated")
            for path in (BVA, FRESHNESS):
                refused = await client.get(
                    path, params=params, headers=bearer("finsync-experience", "flows:read")
                )
                problem = assert_problem(refused, 403, "/problems/forbidden")
                assert problem["missing_scopes"] == ["workbench:read"]
                refused = await below.get(
                    path, params=params, headers=bearer("finsync-process", "flows:read")
                )
                assert_problem(refused, 403, "/problems/forbidden")

            trace_id = os.urandom(16).hex()
            traced = {"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"}
            allowed = bearer("finsync-experience", "workbench:read")
            answer = await client.get(BVA, params=params, headers={**allowed, **traced})
            assert answer.status_code == 200, answer.text
            assert answer.json()["items"]  # the budget, against no actuals yet
            sheet = await client.get(BVA, params=params, headers={**allowed, **traced, "Accept": "text/csv"})
            assert sheet.status_code == 200, sheet.text
            fresh = await client.get(FRESHNESS, params=params, headers={**allowed, **traced})
            assert fresh.status_code == 200, fresh.text
            trail = await below.get(
                f"/v1/audit/traces/{trace_id}", headers=bearer("finsync-process", "flows:read")
            )
            assert trail.status_code == 200, trail.text
    events = trail.json()["events"]
    assert [(e["step"], e["actor"], e["detail"]["operation"], e["detail"]["format"]) for e in events] == [
        ("workbench.read", "partner-1", "ListBudgetVsActuals", "json"),
        ("workbench.read", "partner-1", "ListBudgetVsActuals", "ndjson"),
        ("workbench.read", "partner-1", "ListFreshness", "json"),
    ]
    assert all(e["trace_id"] == trace_id and len(e["payload_hash"]) == 64 for e in events)
