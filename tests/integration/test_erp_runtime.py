"""The real ERP runtime: Tryton on PostgreSQL refuses bad books itself, and the seed is what it says."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from shared.postgres import connect
from system_apis.connectors.tryton.seed import (
    ACCOUNTS,
    CLOSED_MONTHS,
    COMPANIES,
    COST_CENTRES,
    CUSTOMERS,
    DRAFT_MONTH,
    FISCAL_YEAR,
)
from tests.erp_fixtures import RpcError, rpc_date, rpc_decimal

if TYPE_CHECKING:
    from tests.erp_fixtures import Erp

pytestmark = pytest.mark.slow

US, EU = (company.code for company in COMPANIES)


def _ids(erp: Erp, database: str, model: str, domain: list[Any], context: dict[str, Any]) -> list[int]:
    ids: list[int] = erp.rpc(database, f"model.{model}.search", domain, 0, None, None, context)
    return ids


def _move(
    erp: Erp, database: str, company: str, ref: str, debit: str, credit: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values of a two-line move in July (an open period) of ``company``, and the context to send it in."""
    company_id = erp.company_id(database, company)
    context = erp.context(database, company_id)
    date = dt.date(FISCAL_YEAR, 7, 15)
    (journal,) = _ids(erp, database, "account.journal", [("code", "=", "MISC")], context)
    (period,) = _ids(
        erp,
        database,
        "account.period",
        [
            ("company", "=", company_id),
            ("type", "=", "standard"),
            ("start_date", "=", rpc_date(date.replace(day=1))),
        ],
        context,
    )
    accounts = {
        code: account
        for account, code in (
            (row["id"], row["code"])
            for row in erp.rpc(
                database,
                "model.account.account.search_read",
                [("company", "=", company_id), ("code", "in", [ACCOUNTS["sga"], ACCOUNTS["cash"]])],
                0,
                None,
                None,
                ["code"],
                context,
            )
        )
    }
    values = {
        "company": company_id,
        "journal": journal,
        "period": period,
        "date": rpc_date(date),
        "external_ref": ref,
        "lines": [
            [
                "create",
                [
                    {
                        "account": accounts[ACCOUNTS["sga"]],
                        "debit": rpc_decimal(debit),
                        "credit": rpc_decimal("0"),
                    },
                    {
                        "account": accounts[ACCOUNTS["cash"]],
                        "debit": rpc_decimal("0"),
                        "credit": rpc_decimal(credit),
                    },
                ],
            ]
        ],
    }
    return values, context


def test_an_unbalanced_move_is_refused_and_nothing_is_posted(erp: Erp) -> None:
    database = erp.databases[0]
    ref = f"test-unbalanced-{uuid.uuid4().hex}"
    values, context = _move(erp, database, US, ref, "100.00", "90.00")
    (move,) = erp.rpc(database, "model.account.move.create", [values], context)
    with pytest.raises(RpcError) as refused:
        erp.rpc(database, "model.account.move.post", [move], context)
    kind, details = refused.value.error
    assert kind == "UserError"
    assert "balance all its lines" in details[0]
    (row,) = erp.rpc(database, "model.account.move.read", [move], ["state", "external_ref"], context)
    assert row["state"] == "draft"
    assert (
        _ids(erp, database, "account.move", [("external_ref", "=", ref), ("state", "=", "posted")], context)
        == []
    )
    erp.rpc(database, "model.account.move.delete", [move], context)


def test_the_database_enforces_a_unique_external_ref_per_company(erp: Erp) -> None:
    database = erp.databases[0]
    ref = f"test-unique-{uuid.uuid4().hex}"
    us_move, us_context = _move(erp, database, US, ref, "10.00", "10.00")
    (first,) = erp.rpc(database, "model.account.move.create", [us_move], us_context)
    with pytest.raises(RpcError) as refused:
        erp.rpc(database, "model.account.move.create", [us_move], us_context)
    assert "external reference must be unique" in refused.value.error[1][0]
    eu_move, eu_context = _move(erp, database, EU, ref, "10.00", "10.00")
    (other,) = erp.rpc(database, "model.account.move.create", [eu_move], eu_context)
    assert other != first
    # A constraint of PostgreSQL itself, on moves and invoices, with NULLs allowed many times.
    with connect(erp.database_url, database) as conn:
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname LIKE '%company_external_ref_unique' ORDER BY 1"
        ).fetchall()
        unreferenced = conn.execute("SELECT count(*) FROM account_move WHERE external_ref IS NULL").fetchone()
    assert constraints == [
        ("account_invoice", "UNIQUE (company, external_ref)"),
        ("account_move", "UNIQUE (company, external_ref)"),
    ]
    assert unreferenced is not None
    assert unreferenced[0] > 1  # the moves of posted invoices carry no reference of their own
    erp.rpc(database, "model.account.move.delete", [first], us_context)
    erp.rpc(database, "model.account.move.delete", [other], eu_context)


@pytest.mark.parametrize("index", [0, 1], ids=["variant-1", "variant-2"])
def test_the_seed_posts_twelve_months_keeps_a_draft_and_closes_the_first_months(erp: Erp, index: int) -> None:
    database = erp.databases[index]
    for company in COMPANIES:
        company_id = erp.company_id(database, company.code)
        context = erp.context(database, company_id)
        periods = erp.rpc(
            database,
            "model.account.period.search_read",
            [("company", "=", company_id), ("type", "=", "standard")],
            0,
            None,
            [("start_date", "ASC")],
            ["id", "start_date", "state"],
            context,
        )
        assert [period["start_date"]["month"] for period in periods] == list(range(1, 13))
        assert [period["state"] == "closed" for period in periods] == [
            month in CLOSED_MONTHS for month in range(1, 13)
        ]
        for period in periods:
            posted = _ids(
                erp,
                database,
                "account.move",
                [("period", "=", period["id"]), ("state", "=", "posted")],
                context,
            )
            assert posted, f"{company.code}: nothing posted in {period['start_date']}"
        drafts = erp.rpc(
            database,
            "model.account.move.search_read",
            # The seed's own records: other tests write to this database too.
            [("company", "=", company_id), ("state", "=", "draft"), ("external_ref", "like", "seed-%")],
            0,
            None,
            None,
            ["external_ref", "date"],
            context,
        )
        assert [draft["date"]["month"] for draft in drafts] == [DRAFT_MONTH]
        assert drafts[0]["external_ref"].endswith("-DRAFT-00001")
        invoices = erp.rpc(
            database,
            "model.account.invoice.search_read",
            [("company", "=", company_id), ("external_ref", "like", "seed-%")],
            0,
            None,
            None,
            ["state", "external_ref"],
            context,
        )
        assert invoices
        assert {invoice["state"] for invoice in invoices} == {"posted"}
        assert all(invoice["external_ref"] for invoice in invoices)
        lines = erp.rpc(
            database,
            "model.account.move.line.search_count",
            [("move.company", "=", company_id), ("move.state", "=", "posted")],
            context,
        )
        assert lines >= erp.seed_lines // len(COMPANIES)
        centres = erp.rpc(
            database,
            "model.analytic_account.account.search_read",
            [("company", "=", company_id), ("type", "=", "normal")],
            0,
            None,
            [("code", "ASC")],
            ["code"],
            context,
        )
        # Other tests add cost centres of their own to this shared ERP; the seed's must all be there.
        assert {centre["code"] for centre in centres} >= {code for code, _name in COST_CENTRES}


def _fingerprint(erp: Erp, database: str) -> dict[str, Any]:
    context = erp.context(database, erp.company_id(database, US))
    customers = erp.rpc(
        database,
        "model.party.party.search_read",
        [("code", "like", "C-%")],
        0,
        None,
        [("code", "ASC")],
        ["code", "name"],
        context,
    )
    refs = erp.rpc(
        database,
        "model.account.move.search_read",
        [("external_ref", "!=", None)],
        0,
        5,
        [("id", "ASC")],
        ["external_ref"],
        context,
    )
    accounts = erp.rpc(
        database,
        "model.account.account.search_read",
        [("code", "in", list(ACCOUNTS.values()))],
        0,
        None,
        [("code", "ASC")],
        ["code"],
        context,
    )
    lines = erp.rpc(
        database,
        "model.account.move.line.search_read",
        [("move.state", "=", "posted"), ("account.code", "=", ACCOUNTS["sga"])],
        0,
        None,
        None,
        ["debit"],
        context,
    )
    return {
        "codes": [customer["code"] for customer in customers],
        "names": [customer["name"] for customer in customers],
        "refs": [row["external_ref"] for row in refs],
        "accounts": [account["code"] for account in accounts],
        "sga": sum(Decimal(line["debit"]["decimal"]) for line in lines),
    }


def test_the_two_databases_hold_different_books_of_the_same_shape(erp: Erp) -> None:
    first, second = (_fingerprint(erp, database) for database in erp.databases)
    assert first["codes"] == second["codes"] == [f"C-{number:03d}" for number in range(1, CUSTOMERS + 1)]
    assert first["accounts"] == second["accounts"]
    assert first["names"] != second["names"]
    assert first["refs"] != second["refs"]
    assert first["refs"][0].startswith("seed-v1-")
    assert second["refs"][0].startswith("seed-v2-")
    assert first["sga"] != second["sga"]
