"""The planning sandbox's seeded budget is coherent with the ERP's actuals: same members, same scale.

Both sides are read through the system API: the ERP's actuals from the real
Tryton of the ``erp`` fixture, the budget from the sandbox seeded at the same
number of journal lines.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from system_apis.app import create_app
from tests.integration.test_erp_api import A, sources
from tests.integration.test_planning_api import PNL, SOURCE, planning_source
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.settings import Settings
    from tests.erp_fixtures import Erp
    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

BAND = (Decimal("0.5"), Decimal("2.0"))
"""Budget over actuals, per entity and profit-and-loss account over the year: within this band. Measured at
the fixture's 2,000 lines: 0.85 to 1.19, except goods revenue, which only a few dozen invoices carry (up to
1.73); a budget within a factor of two of actuals is a plan, not noise."""


async def test_the_budget_is_on_the_scale_of_the_erp_actuals(
    make_settings: Callable[..., Settings], erp: Erp, sandbox: PlanningSandbox
) -> None:
    settings = make_settings(
        auth={"enabled": False},
        rate_limit={"enabled": False},
        sources={**sources(erp), **planning_source(sandbox)},
    )
    actual: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    budget: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    ndjson = {"Accept": "application/x-ndjson"}
    async with in_process(create_app(settings)) as client:
        for entity in ("FS-US", "FS-EU"):
            response = await client.get(f"/v1/erp/{A}/balances", params={"entity": entity}, headers=ndjson)
            for line in response.text.splitlines():
                row = json.loads(line)
                if row["account_code"] in PNL:
                    actual[entity, row["account_code"]] += abs(Decimal(row["amount"]))
            response = await client.get(
                f"/v1/planning/{SOURCE}/cells", params={"version": "Budget", "entity": entity}, headers=ndjson
            )
            for line in response.text.splitlines():
                cell = json.loads(line)
                budget[entity, cell["account_code"]] += Decimal(cell["amount"])
    ratios = {key: budget[key] / actual[key] for key in actual if actual[key]}
    assert set(budget) == set(actual)
    assert all(BAND[0] <= ratio <= BAND[1] for ratio in ratios.values()), ratios
