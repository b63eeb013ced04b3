"""Schemathesis against the live services, with the committed configuration.

The live run proves the deployed processes (real sockets, real tokens, the stack's own sources) keep their
specs; it runs every phase with a smaller example budget than the committed one, which the in-process runs
(``tests/contract``, ``tests/integration/test_system_schemathesis.py``) spend in full, to keep the suite's
time in check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import REPO

if TYPE_CHECKING:
    from tests.conftest import LiveStack

LIVE_EXAMPLES = 10
"""Examples per operation and phase in the live runs (the committed budget is 25)."""


@pytest.mark.parametrize("layer", ["system", "process", "experience"])
def test_live_service_conforms_to_its_spec(live_stack: LiveStack, layer: str) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "--config-file", str(REPO / "schemathesis.toml"),
            "run", f"{live_stack.urls[layer]}/schema/openapi.json",
            "--header", f"Authorization: Bearer {live_stack.token(f'finsync-{layer}')}",
            "--checks", "all",
            "--max-failures", "5",
            "--max-examples", str(LIVE_EXAMPLES),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "failure" not in result.stdout.rsplit("SUMMARY", 1)[-1]
