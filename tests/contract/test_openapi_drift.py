"""The committed specs in openapi/ (the services' and the event contract) are what the code generates, and the
check catches drift."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

from shared.events import FIELD, STREAMS
from shared.layers import LAYERS
from shared.openapi import EVENTS_FILE, write_or_check
from tests.support import REPO

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_committed_specs_match_the_code() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "openapi", "--check"], cwd=REPO, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()


def test_check_fails_when_a_route_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = tmp_path / "openapi"
    shutil.copytree(REPO / "openapi", specs)
    assert write_or_check(specs, check=True) == []
    monkeypatch.setitem(LAYERS, "system", "tests.contract.drifted_app:create_app")
    problems = write_or_check(specs, check=True)
    assert len(problems) == 1
    assert "/v1/sources-archive" in problems[0]
    assert "system.json" in problems[0]


def test_check_exits_non_zero_when_a_committed_spec_is_edited(tmp_path: Path) -> None:
    specs = tmp_path / "openapi"
    shutil.copytree(REPO / "openapi", specs)
    process = json.loads((specs / "process.json").read_text())
    del process["paths"]["/v1/flows"]
    (specs / "process.json").write_text(json.dumps(process, indent=2, sort_keys=True) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "openapi", "--check", "--dir", str(specs)],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1
    assert b"differ from the code" in result.stderr


def test_specs_are_openapi_3_1_with_pascal_case_operation_ids_and_documented_errors() -> None:
    for layer in ("system", "process", "experience"):
        spec = json.loads((REPO / "openapi" / f"{layer}.json").read_text())
        assert spec["openapi"].startswith("3.1")
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                assert operation["operationId"][0].isupper(), (layer, path, method)
                assert "_" not in operation["operationId"]
                assert operation.get("summary"), (layer, path, method)
                assert "500" in operation["responses"], (layer, path, method)
                for status, response in operation["responses"].items():
                    if status.startswith(("4", "5")):
                        assert "application/problem+json" in response["content"], (layer, path, status)


def test_check_fails_when_the_event_contract_drifts(tmp_path: Path) -> None:
    specs = tmp_path / "openapi"
    shutil.copytree(REPO / "openapi", specs)
    contract = json.loads((specs / EVENTS_FILE).read_text())
    del contract["$defs"]["SourceEvent"]["properties"]["dedupe_key"]
    (specs / EVENTS_FILE).write_text(json.dumps(contract, indent=2, sort_keys=True) + "\n")
    problems = write_or_check(specs, check=True)
    assert len(problems) == 1
    assert "events.json" in problems[0]
    assert "dedupe_key" in problems[0]
    (specs / EVENTS_FILE).unlink()
    assert any("events.json" in problem for problem in write_or_check(specs, check=True))


def test_the_event_contract_names_the_streams_the_entry_field_and_the_delivery_semantics() -> None:
    contract = json.loads((REPO / "openapi" / EVENTS_FILE).read_text())
    assert contract["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert contract["$ref"] == "#/$defs/SourceEvent"
    assert contract["x-finsync-streams"] == STREAMS
    assert contract["x-finsync-entry-field"] == FIELD
    delivery = contract["x-finsync-delivery"]
    assert delivery["guarantee"] == "at-least-once"
    assert {"dedupe_key", "ordering_key", "back_pressure"} <= set(delivery)
    event = contract["$defs"]["SourceEvent"]
    assert {"id", "type", "source", "kind", "dedupe_key", "ordering_key", "occurred_at"} <= set(
        event["required"]
    )
    assert {"BookingChange", "InvoiceChange", "EventType"} <= set(contract["$defs"])
