"""The versioned mapping rules of the Tryton connector (``system_apis/mappings/tryton/v*.toml``).

Rules are data, not code: a file names its version, and every record mapped with
it carries that version in ``mapping_version``. :func:`load_rules` reads and
checks a file once; the connector keeps the result.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Literal

import msgspec

from shared.canonical import AccountType, DocumentState, EntryState

__all__ = ("CURRENT", "MAPPINGS", "MappingRules", "load_rules")

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "tryton"
"""Folder of the rule files."""
CURRENT = "v1"
"""The rules the connector uses."""


class _Rules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Base of the rule sections: a typo in a rule file fails loudly."""


class EntityRules(_Rules, kw_only=True, frozen=True):
    """How a Tryton company becomes a legal entity."""

    code_field: Literal["party.code"] = "party.code"
    """Where the entity's code comes from."""
    time_zone_default: str = "UTC"
    """Time zone of a company that has none set."""


class AccountTypeRule(_Rules, kw_only=True, frozen=True):
    """A Tryton account type, by the name of an ancestor type or by its own flags, and the canonical type."""

    ancestor: str | None = None
    """Name of the nearest ancestor type (the type itself included) that decides."""
    when: dict[str, str | bool] = {}
    """Otherwise: fields of ``account.account.type`` and the values they must have."""
    type: AccountType
    """The canonical account type."""


class PartyRules(_Rules, kw_only=True, frozen=True):
    """Which Tryton parties are customers and which suppliers."""

    customer_category: str
    """Name of the party category of customers."""
    supplier_category: str
    """Name of the party category of suppliers."""


class DimensionRules(_Rules, kw_only=True, frozen=True):
    """Which analytic root holds which canonical dimension (by the root's code)."""

    cost_center: str
    department: str
    project: str


class MappingRules(_Rules, kw_only=True, frozen=True):
    """One version of the rules."""

    version: str
    """Stamped on every record as ``mapping_version``, such as ``tryton/v1``."""
    entity: EntityRules
    account_types: tuple[AccountTypeRule, ...]
    parties: PartyRules
    dimensions: DimensionRules
    entry_states: dict[str, EntryState]
    """Tryton move state -> canonical state."""
    document_states: dict[str, DocumentState]
    """Tryton invoice state -> canonical state."""

    def account_type(self, chain: list[dict[str, Any]]) -> AccountType | None:
        """The canonical type of a Tryton account type; ``None`` for off-balance accounts.

        Args:
            chain: The type's fields, then its parent's, up to the root (``name``, ``statement``, flags).
        """
        named = {rule.ancestor: rule.type for rule in self.account_types if rule.ancestor is not None}
        for node in chain:
            if node.get("name") in named:
                return named[node["name"]]
        own = chain[0] if chain else {}
        if own.get("statement") not in ("balance", "income"):
            return None
        for rule in self.account_types:
            if rule.ancestor is None and all(own.get(name) == value for name, value in rule.when.items()):
                return rule.type
        return None


@cache
def load_rules(version: str = CURRENT) -> MappingRules:
    """The rules of ``version`` (such as ``v1``), read and checked once.

    Raises:
        FileNotFoundError: No such version.
        msgspec.ValidationError: The file breaks the rule schema; the message names the key.
    """
    raw = tomllib.loads((MAPPINGS / f"{version}.toml").read_text(encoding="utf-8"))
    return msgspec.convert(raw, MappingRules)
