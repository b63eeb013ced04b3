"""The control ledger on a real PostgreSQL: migrations, and every store operation.

Each test has a database of its own (``ledger_url``), on one embedded server
for the session, reached over its unix socket the way the stack reaches it
(``?host=<socket dir>``).
"""

from __future__ import annotations

import asyncio
import io
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from process_apis.app import create_app as create_process_app
from process_apis.ledger import (
    AuditEventCreate,
    Ledger,
    LedgerStore,
    ReconciliationCreate,
    database,
    ensure_database,
    open_ledger,
    payload_hash,
)
from process_apis.ledger.database import MIGRATION_LOCK, alembic_config
from process_apis.ledger.models import Base
from shared.errors import ConflictError, NotFoundError, SettingsError
from shared.postgres import database_exists, drop_database
from shared.settings import Settings
from tests.support import in_process, wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from sqlalchemy import Connection

    from shared.postgres import EmbeddedPostgres

pytestmark = pytest.mark.slow

TABLES = {
    "alembic_version",
    "audit_events",
    "dead_letters",
    "event_states",
    "exceptions",
    "reconciliations",
    "runs",
    "source_events",
}


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[Ledger]:
    """The ledger on a fresh database, migrated."""
    async with await Ledger.open(ledger_url, pool_size=2) as opened:
        yield opened


@pytest.fixture
def store(ledger: Ledger) -> LedgerStore:
    """The store of ``ledger``."""
    return ledger.store


async def new_run(store: LedgerStore, flow: str = "actuals-to-plan", **overrides: Any) -> str:
    """Create a queued run and return its id."""
    fields: dict[str, Any] = {
        "flow": flow,
        "trigger": "manual",
        "actor": "partner-7",
        "trace_id": "trace-1",
        "params": {"source": "erp", "entities": ["FS-US"], "from": "2026-01", "to": "2026-03"},
        "slice_keys": ["erp:FS-US:2026-03"],
    }
    fields.update(overrides)
    return (await store.create_run(**fields)).id


def settings_for(**raw: Any) -> Settings:
    """Settings from raw values, as the environment would give them."""
    return msgspec.convert(raw, Settings, strict=False)


def tables(connection: Connection) -> set[str]:
    """Names of the tables in the public schema."""
    rows = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {row[0] for row in rows}


def schema_diff(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models (types and defaults too)."""
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def check_constraints(connection: Connection) -> set[tuple[str, str | None]]:
    """The check constraints on the ledger's tables, by table and name (autogenerate does not compare them)."""
    inspector = inspect(connection)
    return {
        (table, check["name"])
        for table in Base.metadata.tables
        for check in inspector.get_check_constraints(table)
    }


# Where the ledger lives.


def test_ledger_url_rewrites_the_scheme_for_psycopg() -> None:
    for given in ("postgresql://ledger:s%40cret@db:5432/ledger", "postgres://ledger:s%40cret@db:5432/ledger"):
        settings = settings_for(ledger={"database_url": given})
        assert database.ledger_url(settings) == "postgresql+psycopg://ledger:s%40cret@db:5432/ledger"
    kept = "postgresql+psycopg://db/ledger?sslmode=require"
    assert database.ledger_url(settings_for(ledger={"database_url": kept})) == kept
    with pytest.raises(SettingsError, match="must start with"):
        database.ledger_url(settings_for(ledger={"database_url": "mysql://db/ledger"}))


def test_ledger_url_defaults_to_the_embedded_server_of_the_data_dir(tmp_path: Path) -> None:
    url = database.ledger_url(settings_for(data_dir=str(tmp_path / "data"), ledger={"database": "books"}))
    assert url == f"postgresql+psycopg://postgres@/books?host={tmp_path.resolve()}/data/postgres"


async def test_open_ledger_creates_the_embedded_database_and_migrates_it(
    ledger_server: EmbeddedPostgres,
) -> None:
    name = "ledger_embedded"
    settings = settings_for(data_dir=str(ledger_server.data_dir), ledger={"database": name, "pool_size": 2})
    try:
        async with await open_ledger(settings) as ledger:
            await ledger.ping()
            assert await ledger.store.get_run("nothing") is None
        assert database_exists(ledger_server.url, name)
        ensure_database(settings)  # already there: nothing to do
    finally:
        drop_database(ledger_server.url, name)


def test_ensure_database_explains_a_server_that_is_not_running(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not answer"):
        ensure_database(settings_for(data_dir=str(tmp_path)))


# Migrations.


async def test_migrations_build_the_models_schema_and_run_once(ledger_url: str) -> None:
    async with await Ledger.open(ledger_url) as ledger, ledger.engine.connect() as connection:
        assert await connection.run_sync(tables) == TABLES
        assert await connection.run_sync(schema_diff) == []
        assert await connection.run_sync(check_constraints) == {
            (table.name, str(constraint.name))
            for table in Base.metadata.tables.values()
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == "0002"
    # Opening again finds the schema current: no error, same version.
    async with await Ledger.open(ledger_url) as ledger, ledger.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1


async def test_migrations_downgrade_cleanly_and_print_their_sql(ledger_url: str) -> None:
    async with await Ledger.open(ledger_url) as ledger:
        await ledger.store.create_run(flow="f", trigger="manual", actor="a", trace_id="t")
    # Alembic's own commands, on a URL, from synchronous code (a thread: they run their own event loop).
    await asyncio.to_thread(command.downgrade, alembic_config(ledger_url), "base")
    engine = create_engine(ledger_url)
    with engine.connect() as connection:
        assert tables(connection) == {"alembic_version"}
        assert connection.scalar(text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'audit_events%'")) == 0
    engine.dispose()
    await asyncio.to_thread(command.upgrade, alembic_config(ledger_url), "head")
    offline = alembic_config(ledger_url)
    offline.output_buffer = io.StringIO()
    command.upgrade(offline, "head", sql=True)
    script = offline.output_buffer.getvalue()
    assert "CREATE TABLE runs" in script
    assert "NULLS NOT DISTINCT" in script
    assert "CREATE TRIGGER audit_events_append_only" in script
    assert "append-only: % refused" in script


REPLICA = """
import asyncio, sys
from process_apis.ledger import Ledger

async def main() -> None:
    ledger = await Ledger.open(sys.argv[1], pool_size=1)
    await ledger.close()

asyncio.run(main())
"""
"""A replica's start, as far as the ledger goes: open it (migrating it), then close it."""


def test_replica_processes_starting_together_migrate_once(ledger_url: str) -> None:
    # Hold the migration lock while three replica processes start, so that all three are queued on it
    # at once; then let them go. One migrates, the others wait and find the schema current.
    with psycopg.connect(ledger_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as blocker:
        blocker.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        replicas = [subprocess.Popen([sys.executable, "-c", REPLICA, ledger_url]) for _ in range(3)]
        try:
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            assert wait_until(lambda: blocker.execute(waiting).fetchone() == (3,), 20)
            assert all(replica.poll() is None for replica in replicas)
        finally:
            blocker.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        assert [replica.wait(30) for replica in replicas] == [0, 0, 0]
        assert blocker.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]


async def test_concurrent_opens_in_one_process_both_succeed(ledger_url: str) -> None:
    opened = await asyncio.gather(*(Ledger.open(ledger_url, pool_size=1) for _ in range(3)))
    for ledger in opened:
        assert await ledger.store.list_runs() == []
        await ledger.close()


# Runs.


async def test_run_lifecycle(store: LedgerStore) -> None:
    run_id = await new_run(store)
    run = await store.get_run(run_id)
    assert run is not None
    assert (run.status, run.progress, run.step, run.started_at) == ("queued", 0.0, None, None)
    assert run.params["entities"] == ["FS-US"]
    assert run.slice_keys == ["erp:FS-US:2026-03"]
    assert run.created_at.tzinfo is UTC

    claimed = await store.update_run(run_id, from_status=("queued",), status="running", worker="worker-1")
    assert claimed.status == "running"
    assert claimed.worker == "worker-1"
    assert claimed.started_at is not None
    assert claimed.heartbeat_at is not None
    with pytest.raises(ConflictError, match="is running, not queued"):
        await store.update_run(run_id, from_status=("queued",), status="running", worker="worker-2")

    beat = await store.heartbeat(run_id, step="load", progress=0.5)
    assert (beat.step, beat.progress) == ("load", 0.5)
    assert beat.heartbeat_at is not None
    assert beat.heartbeat_at >= claimed.heartbeat_at
    with pytest.raises(ValueError, match="between 0 and 1"):
        await store.heartbeat(run_id, progress=1.5)

    done = await store.update_run(
        run_id,
        status="succeeded",
        step="reconcile",
        progress=1.0,
        counts={"read": 2000, "loaded": 1998, "rejected": 2},
        result={"load_id": "L-1"},
    )
    assert done.finished_at is not None
    assert done.started_at == claimed.started_at
    assert done.counts == {"read": 2000, "loaded": 1998, "rejected": 2}
    assert await store.get_run(run_id) == done
    with pytest.raises(ConflictError):
        await store.heartbeat(run_id)
    with pytest.raises(NotFoundError):
        await store.update_run("missing", status="failed")
    assert await store.get_run("missing") is None


async def test_runs_list_newest_first_by_keyset(store: LedgerStore) -> None:
    ids = [await new_run(store, "actuals-to-plan" if i % 3 else "invoices") for i in range(10)]
    mine = [run_id for i, run_id in enumerate(ids) if i % 3]
    await store.update_run(mine[0], status="running")

    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.list_runs(flow="actuals-to-plan", limit=3, after_id=after)
        pages.append([run.id for run in page])
        if len(page) < 3:
            break
        after = page[-1].id
    assert [len(page) for page in pages] == [3, 3, 0]
    assert [run_id for page in pages for run_id in page] == sorted(mine, reverse=True) == mine[::-1]

    assert [run.id for run in await store.list_runs(status="running")] == [mine[0]]
    assert len(await store.list_runs(status=("queued", "running"))) == 10
    assert len(await store.list_runs(slice_key="erp:FS-US:2026-03")) == 10
    assert await store.list_runs(slice_key="erp:FS-EU:2026-03") == []
    with pytest.raises(ValueError, match="limit"):
        await store.list_runs(limit=0)


async def test_abandon_stale_runs(store: LedgerStore) -> None:
    stale, fresh, queued = [await new_run(store) for _ in range(3)]
    now = datetime.now(UTC)
    await store.update_run(stale, status="running", heartbeat_at=now - timedelta(minutes=10))
    await store.update_run(fresh, status="running")

    assert await store.abandon_stale_runs(timedelta(minutes=5)) == [stale]
    assert await store.abandon_stale_runs(timedelta(minutes=5)) == []
    abandoned = await store.get_run(stale)
    assert abandoned is not None
    assert abandoned.status == "abandoned"
    assert abandoned.finished_at is not None
    assert abandoned.error == "abandoned: no heartbeat for 300 s"
    # Its worker learns it at its next heartbeat, and cannot finish it any more.
    with pytest.raises(ConflictError, match="abandoned"):
        await store.heartbeat(stale)
    with pytest.raises(ConflictError):
        await store.update_run(stale, from_status=("running",), status="succeeded")
    statuses = {run.id: run.status for run in await store.list_runs()}
    assert statuses == {stale: "abandoned", fresh: "running", queued: "queued"}


# Audit events.


async def test_audit_events_bulk_insert_and_trace_order(ledger: Ledger, store: LedgerStore) -> None:
    run_id = await new_run(store, trace_id="trace-bulk")
    start = datetime(2026, 3, 31, 12, tzinfo=UTC)
    events = [
        AuditEventCreate(
            trace_id="trace-bulk",
            run_id=run_id,
            step="load",
            kind="intent" if i % 2 == 0 else "outcome",
            source_ref=f"move-{i // 2}",
            target_ref=f"cell-{i // 2}" if i % 2 else None,
            mapping_version="2026.03.1",
            actor="partner-7",
            payload_hash=payload_hash({"line": i // 2, "amount": "10.00"}),
            detail={"i": i},
            # Each intent and its outcome share an instant: insertion order (the id) keeps them in order.
            at=start + timedelta(milliseconds=i // 2),
        )
        for i in range(5000)
    ]
    pairs = [events[i : i + 2] for i in range(0, len(events), 2)]
    random.Random(7).shuffle(pairs)
    shuffled = [event for pair in pairs for event in pair]
    other = AuditEventCreate(
        trace_id="trace-other",
        step="post-journal",
        kind="intent",
        actor="demo",
        payload_hash=payload_hash(b"x"),
    )
    began = time.perf_counter()
    assert await store.add_audit_events([*shuffled[:2500], other, *shuffled[2500:]]) == 5001
    elapsed = time.perf_counter() - began
    # One multi-row insert takes a few hundred milliseconds; a row at a time, tens of seconds. The bound
    # tells the two apart with room for a loaded CI machine.
    assert elapsed < 3.0, f"5,000 audit events took {elapsed:.3f} s"

    trace = await store.trace("trace-bulk")
    assert len(trace) == 5000
    assert [event.detail for event in trace] == [{"i": i} for i in range(5000)]
    assert [event.at for event in trace] == [event.at for event in events]
    first = trace[0]
    assert first.at.tzinfo is UTC
    assert first.payload_hash == payload_hash({"amount": "10.00", "line": 0})
    (stamped,) = await store.trace("trace-other")
    assert stamped.run_id is None
    assert abs(stamped.at - datetime.now(UTC)) < timedelta(minutes=1)
    assert await store.add_audit_events([]) == 0

    # The trail is append-only, whoever asks.
    async with ledger.engine.connect() as connection:
        for operation, statement in (
            ("UPDATE", "UPDATE audit_events SET actor = 'x'"),
            ("DELETE", "DELETE FROM audit_events"),
            ("TRUNCATE", "TRUNCATE audit_events"),
        ):
            with pytest.raises(DBAPIError, match=f"audit_events is append-only: {operation} refused"):
                await connection.execute(text(statement))
            await connection.rollback()
        assert await connection.scalar(select(func.count()).select_from(text("audit_events"))) == 5001
        # A missing detail is SQL NULL, not the JSON value null.
        assert await connection.scalar(text("SELECT count(*) FROM audit_events WHERE detail IS NULL")) == 1


# Exceptions.


async def test_exception_upsert_assign_resolve_and_recur(store: LedgerStore) -> None:
    run_1, run_2 = await new_run(store), await new_run(store)
    slice_key = "erp:FS-US:2026-03"
    problem = {"flow": "actuals-to-plan", "reason_code": "unmapped-member", "slice_key": slice_key}

    first = await store.record_exception(**problem, fingerprint="CC-900", detail={"seen": 1}, run_id=run_1)
    again = await store.record_exception(**problem, fingerprint="CC-900", detail={"seen": 2}, run_id=run_2)
    assert again.id == first.id
    assert (again.occurrences, again.status, again.detail, again.run_id) == (2, "open", {"seen": 2}, run_2)
    assert again.first_seen == first.first_seen
    assert again.last_seen >= first.last_seen
    other = await store.record_exception(**problem, fingerprint="CC-901")
    assert other.id != first.id
    assert len(await store.list_exceptions(slice_key=slice_key)) == 2

    assigned = await store.update_exception(first.id, owner="ana@finance")
    assert (assigned.owner, assigned.status) == ("ana@finance", "assigned")
    assert (await store.record_exception(**problem, fingerprint="CC-900")).occurrences == 3  # still the one
    resolved = await store.update_exception(first.id, status="resolved")
    assert resolved.resolved_at is not None
    assert resolved.owner == "ana@finance"
    with pytest.raises(ConflictError, match="resolved"):
        await store.update_exception(first.id, status="open")
    with pytest.raises(NotFoundError):
        await store.update_exception("missing", owner="bob")
    assert await store.update_exception(first.id) == resolved

    recurred = await store.record_exception(**problem, fingerprint="CC-900")
    assert recurred.id != first.id
    assert (recurred.occurrences, recurred.status, recurred.owner) == (1, "open", None)
    assert await store.get_exception(first.id) == resolved

    # A later run finds the slice clean.
    assert await store.resolve_exceptions("actuals-to-plan", slice_key, ["unbalanced-period"]) == []
    assert await store.resolve_exceptions("actuals-to-plan", slice_key) == sorted([other.id, recurred.id])
    assert await store.list_exceptions(status=("open", "assigned")) == []
    listed = await store.list_exceptions(
        flow="actuals-to-plan", status="resolved", reason_code="unmapped-member"
    )
    assert [case.id for case in listed] == sorted([first.id, other.id, recurred.id], reverse=True)
    page = await store.list_exceptions(limit=1, after_id=listed[0].id)
    assert [case.id for case in page] == [listed[1].id]


async def test_exceptions_without_a_slice_and_concurrent_recording(store: LedgerStore) -> None:
    problem = {"flow": "invoices", "reason_code": "source-unreachable", "slice_key": None}
    cases = await asyncio.gather(*(store.record_exception(**problem) for _ in range(10)))
    assert len({case.id for case in cases}) == 1
    (case,) = await store.list_exceptions(flow="invoices")
    assert case.occurrences == 10
    assert case.slice_key is None
    assert await store.resolve_exceptions("invoices", None) == [case.id]


# Dead letters.


async def test_dead_letters_and_replay(store: LedgerStore) -> None:
    letters = [
        await store.add_dead_letter(
            flow="actuals-to-plan",
            job_kind="load-slice",
            job_id=f"1700000000000-{i}",
            payload={"slice_key": f"erp:FS-US:2026-0{i + 1}", "amount": "12.30"},
            reason="UpstreamTimeoutError: planning did not answer in 30 s",
            attempts=5,
        )
        for i in range(3)
    ]
    assert await store.get_dead_letter(letters[0].id) == letters[0]
    # The worker handed the same failed job over twice (its acknowledgement was lost): one dead letter.
    again = await store.add_dead_letter(
        flow="actuals-to-plan",
        job_kind="load-slice",
        job_id="1700000000000-0",
        payload={},
        reason="the second hand-over",
        attempts=5,
    )
    assert again == letters[0]
    assert await store.get_dead_letter("missing") is None
    assert [d.id for d in await store.list_dead_letters(replayed=False)] == [d.id for d in reversed(letters)]

    replay_run = await new_run(store, trigger="replay")
    replayed = await store.mark_dead_letter_replayed(letters[1].id, replay_run)
    assert replayed.replay_run_id == replay_run
    assert replayed.replayed_at is not None
    with pytest.raises(ConflictError, match=replay_run):
        await store.mark_dead_letter_replayed(letters[1].id, "another-run")
    with pytest.raises(NotFoundError):
        await store.mark_dead_letter_replayed("missing", replay_run)

    assert await store.list_dead_letters(replayed=True) == [replayed]
    assert [d.id for d in await store.list_dead_letters(flow="actuals-to-plan", replayed=False)] == [
        letters[2].id,
        letters[0].id,
    ]
    assert [d.id for d in await store.list_dead_letters(limit=2, after_id=letters[2].id)] == [
        letters[1].id,
        letters[0].id,
    ]
    assert await store.list_dead_letters(flow="invoices") == []
    # Replayed, the job failed again: that is a new dead letter.
    recurred = await store.add_dead_letter(
        flow="actuals-to-plan",
        job_kind="load-slice",
        job_id="1700000000000-1",
        payload={},
        reason="again",
        attempts=5,
    )
    assert recurred.id != letters[1].id
    assert recurred.replayed_at is None


# Reconciliations.


async def test_reconciliations_keep_decimals_exactly(store: LedgerStore) -> None:
    run_id = await new_run(store)
    line = {
        "run_id": run_id,
        "flow": "actuals-to-plan",
        "source": "erp",
        "entity": "FS-US",
        "period": "2026-03",
    }
    rows = [
        ReconciliationCreate(
            **line,
            account="4.1.1",
            erp_count=120,
            erp_total=Decimal("12345678.91"),
            planning_count=120,
            planning_total=Decimal("12345678.90"),
            difference=Decimal("0.01"),
            status="mismatched",
        ),
        ReconciliationCreate(
            **line,
            account="5.1.1",
            erp_count=3,
            erp_total=Decimal("-0.10"),
            planning_count=3,
            planning_total=Decimal("-0.10"),
            difference=Decimal(0),
            status="matched",
        ),
        ReconciliationCreate(
            **line,
            erp_count=123,
            erp_total=Decimal("9999999999999999999999.999999"),
            planning_count=123,
            planning_total=Decimal("9999999999999999999999.999999"),
            difference=Decimal(0),
            status="matched",
        ),
    ]
    assert await store.add_reconciliations(rows) == 3
    assert await store.add_reconciliations([]) == 0

    stored = await store.list_reconciliations(flow="actuals-to-plan", entity="FS-US", period="2026-03")
    assert [row.account for row in stored] == [None, "5.1.1", "4.1.1"]
    mismatch = stored[2]
    assert isinstance(mismatch.erp_total, Decimal)
    assert mismatch.erp_total == Decimal("12345678.91")
    assert mismatch.erp_total - mismatch.planning_total == mismatch.difference == Decimal("0.01")
    assert mismatch.erp_total.quantize(Decimal("0.01")) == Decimal("12345678.91")
    assert stored[0].erp_total == Decimal("9999999999999999999999.999999")
    assert stored[1].erp_total == Decimal("-0.10")

    assert [row.id for row in await store.list_reconciliations(status="mismatched")] == [mismatch.id]
    assert await store.list_reconciliations(run_id=run_id, limit=1, after=stored[0].id) == [stored[1]]
    assert await store.list_reconciliations(period="2026-04") == []
    assert msgspec.json.decode(msgspec.json.encode(mismatch))["erp_total"] == "12345678.910000"


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "/v1/dead-letters", {"cursor": "AG5"}, None),  # base64 of bytes that are no ledger id
        ("GET", "/v1/runs", {"cursor": "eHl6"}, None),  # "xyz"
        ("GET", "/v1/reconciliations", {"flow": "a\x00b"}, None),
        ("GET", "/v1/reconciliations", {"entity": "FS\x00US"}, None),
        ("GET", "/v1/exceptions", {"reason_code": "x\x00"}, None),
        ("GET", "/v1/exceptions", {"slice_key": "erp:FS-US:2026-13"}, None),
        ("PATCH", "/v1/exceptions/0123456789abcdef01234567", {}, {"owner": "ali\x00ce"}),
    ],
)
async def test_ledger_routes_refuse_what_postgresql_could_not_take_with_a_400(
    make_settings: Callable[..., Settings],
    ledger_url: str,
    method: str,
    path: str,
    params: dict[str, str],
    body: dict[str, str] | None,
) -> None:
    settings = make_settings(
        auth={"enabled": False}, rate_limit={"enabled": False}, ledger={"database_url": ledger_url}
    )
    async with in_process(create_process_app(settings)) as client:
        response = await client.request(method, path, params=params, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
