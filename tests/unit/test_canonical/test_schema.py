"""What the canonical types look like in an OpenAPI spec (Litestar) and a JSON schema (msgspec)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, post
from litestar.params import JSONBody

from shared import canonical as c

SHARED = Path(__file__).parents[3] / "shared"


@post("/journal-entries", sync_to_thread=False)
def _create_entry(data: JSONBody[c.JournalEntryCreate]) -> c.JournalEntry:
    raise NotImplementedError


@post("/payments", sync_to_thread=False)
def _create_payment(data: JSONBody[c.PaymentCreate]) -> list[c.Balance]:
    raise NotImplementedError


def _components() -> dict[str, Any]:
    spec = Litestar([_create_entry, _create_payment]).openapi_schema.to_schema()
    # As `finsync openapi` writes it: no Python-only value (a Decimal default) may hide in the spec.
    components: dict[str, Any] = json.loads(json.dumps(spec))["components"]["schemas"]
    return components


def test_money_is_a_decimal_string_with_a_pattern_in_openapi() -> None:
    schemas = _components()
    for name, field in (("JournalLine", "debit"), ("PaymentCreate", "amount"), ("Balance", "amount")):
        money = schemas[name]["properties"][field]
        assert money["type"] == "string"
        assert money["pattern"] == c.DECIMAL_PATTERN
        assert money["maxLength"] == c.MAX_DECIMAL_LENGTH
        assert re.fullmatch(money["pattern"], money["examples"][0])


def test_the_oversized_entry_limit_is_in_the_spec() -> None:
    lines = _components()["JournalEntryCreate"]["properties"]["lines"]
    assert (lines["minItems"], lines["maxItems"]) == (1, c.MAX_JOURNAL_LINES)


def test_codes_currencies_and_enums_are_constrained_in_the_spec() -> None:
    schemas = _components()
    line = schemas["JournalLine"]["properties"]
    assert line["currency"]["pattern"] == "^[A-Z]{3}$"
    assert line["account_code"]["pattern"] == c.CODE_PATTERN
    entry = schemas["JournalEntry"]
    assert entry["properties"]["modified_at"]["format"] == "date-time"
    assert set(entry["required"]) >= {"id", "source", "source_ref", "modified_at", "mapping_version", "lines"}
    assert schemas["Balance"]["properties"]["kind"] == {"$ref": "#/components/schemas/BalanceKind"}
    assert schemas["BalanceKind"]["enum"] == ["movement", "closing"]
    assert schemas["AccountType"]["enum"] == ["asset", "liability", "equity", "revenue", "expense"]


def test_msgspec_json_schema_has_the_pattern_and_forbids_unknown_fields() -> None:
    (_, components) = msgspec.json.schema_components([c.JournalEntryCreate])
    line = components["JournalLine"]
    assert line["properties"]["debit"]["pattern"] == c.DECIMAL_PATTERN
    assert line["additionalProperties"] is False
    assert components["JournalEntryCreate"]["properties"]["lines"]["maxItems"] == c.MAX_JOURNAL_LINES


def test_the_public_names_are_sorted_and_all_exported() -> None:
    for module in SHARED.joinpath("canonical").glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        exported = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        )
        names = [element.value for element in exported.elts]  # type: ignore[attr-defined]
        assert len(set(names)) == len(names), module.name
        if module.name != "__init__.py":
            missing = set(names) - set(c.__all__)
            assert not missing, (module.name, missing)
    assert all(hasattr(c, name) for name in c.__all__)


def test_shared_imports_no_layer() -> None:
    layers = ("system_apis", "process_apis", "experience_apis")
    for module in SHARED.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = [node.module or ""]
            else:
                continue
            assert not [t for t in targets if t.split(".")[0] in layers], (module, targets)
