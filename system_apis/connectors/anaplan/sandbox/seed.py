"""The seeded model: members that agree with the ERP seed, an empty Actual, and a Budget and a Forecast coherent
with the ERP seed's actuals.

Deterministic: the same ``seed_lines`` always gives the same cells (the noise
comes from SHA-256 of the cell's address, not from Python's salted ``hash``),
so a sandbox that restarts or resets holds the same model again.

Planning sign convention: revenue and expense are both positive amounts.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from system_apis.connectors.anaplan.sandbox.catalog import (
    ACCOUNTS_LIST_ID,
    COST_CENTRES_LIST_ID,
    ENTITIES_LIST_ID,
)
from system_apis.connectors.anaplan.sandbox.model import PlanningList, PlanningModel, Version, month_names
from system_apis.connectors.tryton.seed import (
    ACCOUNTS,
    COMPANIES,
    COST_CENTRES,
    EXPENSE_ROLES,
    REVENUE_ROLES,
)

__all__ = (
    "ACCOUNT_NAMES",
    "BUDGET_NOISE",
    "EXPECTED_MONTHLY_ACTUALS",
    "FORECAST_NOISE",
    "REFERENCE_SEED_LINES",
    "UNALLOCATED",
    "MonthlyActuals",
    "seed_model",
)

REFERENCE_SEED_LINES = 10_000
"""The ERP seed size :data:`EXPECTED_MONTHLY_ACTUALS` is calibrated for; other sizes scale linearly."""
UNALLOCATED = ("UNALLOCATED", "Unallocated")
"""Code and name of the cost centre where the ERP's unallocated remainder lands."""
BUDGET_NOISE = Decimal("0.08")
"""Budget cells deviate from the expected actuals by at most this share, either way."""
FORECAST_NOISE = Decimal("0.05")
"""Forecast cells deviate from the budget by at most this share, either way."""
_CENT = Decimal("0.01")


class MonthlyActuals(msgspec.Struct, kw_only=True, frozen=True):
    """What the ERP seed is expected to post to one profit-and-loss account in one month, for one company."""

    total: Decimal
    """The account's monthly total, at :data:`REFERENCE_SEED_LINES` journal lines."""
    cost_centre_share: Decimal
    """Share of the total on each of the five seeded cost centres; ``UNALLOCATED`` holds the rest."""


EXPECTED_MONTHLY_ACTUALS: dict[str, MonthlyActuals] = {
    "revenue_goods": MonthlyActuals(total=Decimal(72_000), cost_centre_share=Decimal(0)),  # 4.1.1
    "revenue_services": MonthlyActuals(total=Decimal(182_000), cost_centre_share=Decimal("0.077")),  # 4.1.2
    "materials": MonthlyActuals(total=Decimal(193_000), cost_centre_share=Decimal("0.096")),  # 5.1.1
    "services": MonthlyActuals(total=Decimal(193_000), cost_centre_share=Decimal("0.096")),  # 5.1.3
    "rent_depreciation": MonthlyActuals(total=Decimal(145_000), cost_centre_share=Decimal("0.1275")),  # 5.1.4
    "sga": MonthlyActuals(total=Decimal(145_000), cost_centre_share=Decimal("0.1275")),  # 5.2.2
}
"""The expected monthly actuals of the ERP seed, per company and profit-and-loss account role, so that the
seeded budget is coherent with the actuals finsync loads.

These are estimates of what :mod:`system_apis.connectors.tryton.seed` posts at
10,000 lines; recalibrate them here (and only here) when that seed changes. An
account with a zero cost-centre share carries no cost-centre split in the ERP,
so its whole amount lands on ``UNALLOCATED``.
"""

ACCOUNT_NAMES = {
    "cash": "Cash",
    "receivable": "Accounts receivable",
    "prepaid": "Prepaid expenses",
    "payable": "Accounts payable",
    "accrued": "Accrued liabilities",
    "deferred_revenue": "Deferred revenue",
    "revenue_goods": "Revenue from goods",
    "revenue_services": "Revenue from services",
    "materials": "Materials",
    "services": "Purchased services",
    "rent_depreciation": "Rent and depreciation",
    "sga": "Selling general and administrative",
}
"""Readable names of the ERP seed's account roles; an item is named ``{code} {name}``, e.g. ``4.1.1 Revenue from
goods``. A role missing here is named from its key."""


def _noise(kind: str, spread: Decimal, *address: str) -> Decimal:
    """A deterministic share in ``[-spread, +spread]`` drawn from SHA-256 of ``kind`` and the cell's address."""
    digest = hashlib.sha256("|".join((kind, *address)).encode()).digest()
    unit = Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)
    return (unit * 2 - 1) * spread


def _lists() -> tuple[PlanningList, PlanningList, PlanningList]:
    """The three lists, with the ERP seed's members."""
    entities = PlanningList(ENTITIES_LIST_ID, "E1 Entities", 206)
    for company in COMPANIES:
        entities.add(company.name, company.code)
    accounts = PlanningList(ACCOUNTS_LIST_ID, "A1 Accounts", 207)
    for role, code in ACCOUNTS.items():
        accounts.add(f"{code} {ACCOUNT_NAMES.get(role, role.replace('_', ' ').capitalize())}", code)
    cost_centres = PlanningList(COST_CENTRES_LIST_ID, "C1 Cost Centres", 208)
    for code, name in COST_CENTRES:
        cost_centres.add(name, code)
    cost_centres.add(UNALLOCATED[1], UNALLOCATED[0])
    return entities, accounts, cost_centres


def seed_model(seed_lines: int) -> PlanningModel:
    """A fresh seeded model, its budget scaled to an ERP seed of ``seed_lines`` journal lines."""
    entities, accounts, cost_centres = _lists()
    model = PlanningModel(
        entities,
        accounts,
        cost_centres,
        versions=(
            Version(id="107000000001", name="Actual", is_actual=True),
            Version(id="107000000002", name="Budget", is_current=True),
            Version(id="107000000003", name="Forecast"),
        ),
        months=month_names(),
    )
    scale = Decimal(seed_lines) / Decimal(REFERENCE_SEED_LINES)
    budget, forecast = model.cells["Budget"], model.cells["Forecast"]
    unallocated = cost_centres.find(UNALLOCATED[0])
    assert unallocated is not None
    seeded_centres = [item for item in cost_centres.items if item is not unallocated]
    for entity in entities.items:
        for role in (*REVENUE_ROLES, *EXPENSE_ROLES):
            actuals = EXPECTED_MONTHLY_ACTUALS[role]
            account = accounts.find(ACCOUNTS[role])
            assert account is not None
            shares = {item: actuals.cost_centre_share for item in seeded_centres if actuals.cost_centre_share}
            shares[unallocated] = 1 - sum(shares.values(), Decimal(0))
            for centre, share in shares.items():
                for month, month_name in enumerate(model.months):
                    address = (entity.label, account.label, centre.label, month_name)
                    planned = actuals.total * scale * share * (1 + _noise("budget", BUDGET_NOISE, *address))
                    planned = planned.quantize(_CENT, ROUND_HALF_UP)
                    expected = planned * (1 + _noise("forecast", FORECAST_NOISE, *address))
                    key = (entity.id, account.id, centre.id, month)
                    budget[key] = planned
                    forecast[key] = expected.quantize(_CENT, ROUND_HALF_UP)
    return model
