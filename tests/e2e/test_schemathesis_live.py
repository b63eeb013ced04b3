"""Schemathesis against the live services, with the committed configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import REPO

if TYPE_CHECKING:
    from tests.conftest import LiveStack


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
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "failure" not in result.stdout.rsplit("SUMMARY", 1)[-1]
