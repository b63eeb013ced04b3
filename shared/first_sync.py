"""``finsync up``'s first actuals-to-plan sync over the seeded ERP, and the commands it prints once ready.

Once every service is ready, ``finsync up`` syncs the seeded ERP's fiscal year,
every entity, into the planning sandbox's Actual version: the same code as
``finsync run actuals-to-plan`` (:mod:`shared.run_command`), as the ``demo``
client. A sync that fails is reported and the stack stays up. Then it prints a
ready-to-paste token command and a curl for budget against actuals over the
synced range.

The printed commands work from any directory: they name the data dir (where
the local clients' secrets are), the ``finsync`` script by absolute path, and
the token endpoint or the process layer when they are not on their default
ports.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.auth.local import LAYER_AUDIENCES
from shared.run_command import Credentials, RunOptions, run_actuals_to_plan
from shared.stack import ERP_SOURCE, PLANNING_SOURCE

if TYPE_CHECKING:
    from typing import TextIO

    from shared.run_command import RunReport
    from shared.stack import Stack

__all__ = ("ERP_SEED", "FIRST_SYNC_TIMEOUT", "SyncRange", "ready_lines", "run_first_sync", "seeded_range")

ERP_SEED = "system_apis.connectors.tryton.seed"
"""The seeded ERP's constants (``FISCAL_YEAR``, ``COMPANIES``), by import string: the kernel imports no layer."""
FIRST_SYNC_TIMEOUT = 600.0
"""Seconds ``finsync up`` watches its first sync before it stops waiting (the run goes on)."""
CLIENT = "demo"
"""The local client the first sync runs as, and the printed token command asks for."""
DEFAULT_ISSUER = "http://127.0.0.1:8100"
"""The local issuer on its default port: the printed commands then need no ``--url``."""
DEFAULT_PROCESS_URL = "http://127.0.0.1:8102"
"""The process layer on its default port: the printed run command then needs no ``--process-url``."""


@dataclass(frozen=True)
class SyncRange:
    """What the first sync covers, and the entity the printed curl shows."""

    period_from: str
    """First period of the seeded fiscal year."""
    period_to: str
    """Its last period."""
    entity: str
    """The seed's first company: the entity the curl asks for."""


def seeded_range() -> SyncRange:
    """The seeded ERP's fiscal year, January to December, and its first company."""
    seed = importlib.import_module(ERP_SEED)
    year = int(seed.FISCAL_YEAR)
    return SyncRange(f"{year}-01", f"{year}-12", str(seed.COMPANIES[0].code))


def _finsync(stack: Stack, *args: str) -> str:
    """A ``finsync`` command line that works from any directory: the data dir named, the script by path."""
    script = Path(sys.executable).parent / "finsync"
    return shlex.join(
        [f"FINSYNC_DATA_DIR={stack.data_dir}", str(script) if script.exists() else "finsync", *args]
    )


def _token_url(stack: Stack) -> str:
    return f"{stack.auth_url}/oauth/token"


def run_first_sync(stack: Stack, *, out: TextIO, err: TextIO) -> RunReport | None:
    """Sync the seeded fiscal year, every entity, through the process layer; None when it does not apply.

    It does not apply when the user's configuration declares the ``erp`` or the
    ``planning`` source itself: the stack then runs neither the seeded ERP nor
    the sandbox the sync is meant for.
    """
    settings = stack.settings
    theirs = [source for source in (ERP_SOURCE, PLANNING_SOURCE) if source in settings.sources]
    synced = seeded_range()
    if theirs:
        out.write(
            f"first sync skipped: {', '.join(map(repr, theirs))} is declared in {settings.config}, not the "
            "seeded ERP and sandbox; sync with 'finsync run actuals-to-plan'\n"
        )
        out.flush()
        return None
    credentials = (
        Credentials(_token_url(stack), CLIENT, stack.secrets[CLIENT]) if settings.auth.enabled else None
    )
    options = RunOptions(
        process_url=stack.process_url,
        period_from=synced.period_from,
        period_to=synced.period_to,
        source=ERP_SOURCE,
        planning=PLANNING_SOURCE,
        timeout=FIRST_SYNC_TIMEOUT,
        credentials=credentials,
    )
    out.write(
        f"first sync: actuals-to-plan, the seeded ERP's {synced.period_from}..{synced.period_to}, every "
        "entity, into the planning sandbox (the sandbox polls at Anaplan's 5 s pace: about 20 s)\n"
    )
    out.flush()
    report = run_actuals_to_plan(
        options, out=out, err=err, stop=lambda: stack.stopping, label="first sync", prefix="first sync"
    )
    if report.exit_code != 0 and not stack.stopping:
        err.write(
            "first sync: not reconciled, see above; the stack stays up. Once the cause is fixed, sync again:\n"
            f"  {_run_command(stack, synced)}\n"
        )
        err.flush()
    return report


def _run_command(stack: Stack, synced: SyncRange) -> str:
    args = ["run", "actuals-to-plan", "--from", synced.period_from, "--to", synced.period_to]
    if stack.process_url != DEFAULT_PROCESS_URL:
        args += ["--process-url", stack.process_url]
    if stack.auth_url != DEFAULT_ISSUER:
        args += ["--token-url", _token_url(stack)]
    return _finsync(stack, *args)


def ready_lines(stack: Stack) -> list[str]:
    """What ``finsync up`` prints once ready: a token command and the curls to paste, and the sync again."""
    synced = seeded_range()
    experience = stack.experience_url
    query = f"version=Budget&from={synced.period_from}&to={synced.period_to}&entity={synced.entity}&group_by=account"
    lines = [
        (
            f"ready. Budget against actuals, {synced.entity}, {synced.period_from}..{synced.period_to} "
            "(paste into a shell):"
        )
    ]
    header = ""
    if stack.settings.auth.enabled:
        args = ["token", "--audience", LAYER_AUDIENCES["experience"]]
        if stack.auth_url != DEFAULT_ISSUER:
            args += ["--url", _token_url(stack)]
        lines.append(f"  TOKEN=$({_finsync(stack, *args)})")
        header = '-H "Authorization: Bearer $TOKEN" '
    lines += [
        f"  curl -s {header}'{experience}/v1/workbench/budget-vs-actuals?{query}'",
        "The planner's landing page, and the sync again:",
        f"  curl -s {header}{experience}/v1/overview",
        f"  {_run_command(stack, synced)}",
    ]
    return lines
