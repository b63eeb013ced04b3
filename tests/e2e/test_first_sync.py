"""``finsync up`` syncs the seeded ERP's year into planning, then prints a token command and a curl that work.

The session's ``live_stack`` ran that first sync while starting; its output
(``up.out``: stdout and stderr, not a terminal) is what a user sees.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from system_apis.connectors.tryton.seed import COMPANIES, FISCAL_YEAR

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import LiveStack

pytestmark = pytest.mark.slow

STEPS = ("extract", "map", "validate", "aggregate", "load", "reconcile")
PERIODS = [f"{FISCAL_YEAR}-{month:02d}" for month in range(1, 13)]
ENTITIES = sorted(company.code for company in COMPANIES)


def _claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified (the services verify it; this only reads its audience)."""
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_up_runs_a_first_sync_that_reconciles_the_seeded_year(live_stack: LiveStack) -> None:
    printed = live_stack.output.read_text()
    # Progress, one line per step seen (the output is no terminal); steps quicker than a poll go unseen, but
    # loading and reconciling wait on planning tasks polled every 5 s.
    seen = [s for s in re.findall(r"^first sync: (\w+) \d+% \(\d+s\)$", printed, re.M) if s in STEPS]
    assert seen == sorted(seen, key=STEPS.index), printed
    assert seen[-2:] == ["load", "reconcile"], printed
    done = re.search(
        rf"^run ([0-9a-f]{{24}}) succeeded and reconciled: {len(ENTITIES) * 12} slice\(s\), "
        rf"{', '.join(ENTITIES)}, {PERIODS[0]}\.\.{PERIODS[-1]}, \d+ row\(s\) loaded in \d+ s$",
        printed,
        re.MULTILINE,
    )
    assert done, printed
    # The summary: every entity and month of the seeded year, no mismatch, no difference.
    for entity in ENTITIES:
        for period in PERIODS:
            row = re.search(
                rf"^  {entity}\s+{period}\s+(open|closed)\s+(\d+)\s+(\d+)\s+0\s.*\s0\.00$", printed, re.M
            )
            assert row, (entity, period, printed)
            assert row.group(2) == row.group(3)
    assert printed.index("first sync: reconcile") < printed.index("reconciliation, ERP erp") < done.start()
    assert done.start() < printed.index("ready. Budget against actuals")
    # The ledger agrees with what was printed.
    run = httpx.get(
        f"{live_stack.urls['process']}/v1/flows/actuals-to-plan/runs/{done.group(1)}",
        headers={"Authorization": f"Bearer {live_stack.token('finsync-process')}"},
        timeout=10,
    ).json()
    assert (run["status"], run["result"]["reconciled"], run["trigger"]) == ("succeeded", True, "manual")
    assert sorted(run["params"]["entities"]) == ENTITIES


def test_up_prints_a_curl_for_budget_against_actuals_with_a_token_command_that_works(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    lines = live_stack.output.read_text().splitlines()
    token_line = next(line.strip() for line in lines if line.startswith("  TOKEN=$("))
    curl = next(line.strip() for line in lines if "/v1/workbench/budget-vs-actuals" in line)
    assert curl.startswith('curl -s -H "Authorization: Bearer $TOKEN" '), curl
    url = urlsplit(curl.split("'")[1])
    assert f"{url.scheme}://{url.netloc}" == live_stack.urls["experience"]
    assert url.path == "/v1/workbench/budget-vs-actuals"
    assert parse_qs(url.query) == {
        "version": ["Budget"],
        "from": [PERIODS[0]],
        "to": [PERIODS[-1]],
        "entity": [COMPANIES[0].code],
        "group_by": ["account"],
    }
    # Pasted as printed into a shell elsewhere, with none of the stack's environment, the two lines get a
    # token for the experience layer and budget against actuals of the synced year.
    pasted = subprocess.run(
        ["bash", "-c", f"{token_line}\n{curl}"],
        env={key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pasted.returncode == 0, pasted.stderr
    answer = json.loads(pasted.stdout)
    assert answer["items"], answer
    assert answer["planning_currency"] == "USD"
    assert {row["account"] for row in answer["items"]} >= {"4.1.1", "5.2.2"}
    assert all(Decimal(row["actual"]) != 0 for row in answer["items"] if row["account"] == "4.1.1")
    shell = subprocess.run(
        ["bash", "-c", f'{token_line}\nprintf %s "$TOKEN"'],
        env={key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    token = shell.stdout
    assert _claims(token)["aud"] == "finsync-experience"
    overview = httpx.get(
        f"{live_stack.urls['experience']}/v1/overview",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert overview.status_code == 200, overview.text
