"""The flow's versioned dimension maps (``{maps}/{version}.toml``): signs per account type and code remaps.

The packaged maps live beside this file (``maps/``); ``flows.actuals_to_plan.maps_dir``
points at a directory of the deployment's own, and ``map_version`` picks the one
new runs (and replays) use. A map is never edited once runs used it: a change is
a new version, so every run's record names the map that produced its numbers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import msgspec

from shared.canonical import AccountType
from shared.errors import SettingsError

__all__ = ("CURRENT", "MAPS", "DimensionMap", "load_map")

MAPS = Path(__file__).resolve().parent / "maps"
"""Where the map files live."""
CURRENT = "v1"
"""The map a run uses unless told otherwise."""


class _MapFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: str
    planning_version: str
    signs: dict[AccountType, Literal[-1, 1]]
    entities: dict[str, str] = msgspec.field(default_factory=dict)
    accounts: dict[str, str] = msgspec.field(default_factory=dict)
    cost_centers: dict[str, str] = msgspec.field(default_factory=dict)


@dataclass(frozen=True)
class DimensionMap:
    """One version of the flow's map."""

    version: str
    """``a2p/v1``: recorded on every run and audit event."""
    planning_version: str
    """The planning version actuals land in."""
    signs: dict[str, int]
    """Account types that are planned (``AccountType`` values), with the sign applied to the ERP's
    debit-minus-credit."""
    entities: dict[str, str]
    """Entity remaps."""
    accounts: dict[str, str]
    """Account remaps."""
    cost_centers: dict[str, str]
    """Cost-centre remaps."""

    def entity(self, code: str) -> str:
        """The planning entity of an ERP entity."""
        return self.entities.get(code, code)

    def account(self, code: str) -> str:
        """The planning account of an ERP account."""
        return self.accounts.get(code, code)

    def cost_center(self, code: str) -> str:
        """The planning cost centre of an ERP cost centre (``""``, unallocated, included)."""
        return self.cost_centers.get(code, code)


@cache
def load_map(version: str = CURRENT, directory: Path | None = None) -> DimensionMap:
    """Read and check ``{directory}/{version}.toml`` (default: the packaged maps).

    Raises:
        SettingsError: the file is missing, not TOML, or breaks the map's shape.
    """
    path = (directory or MAPS) / f"{version}.toml"
    try:
        raw = msgspec.convert(tomllib.loads(path.read_text(encoding="utf-8")), _MapFile)
    except OSError as exc:
        raise SettingsError(f"no actuals-to-plan map {version!r} ({path}): {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"actuals-to-plan map {version!r} is not valid: {exc}") from exc
    return DimensionMap(
        version=raw.version,
        planning_version=raw.planning_version,
        signs={str(account_type): sign for account_type, sign in raw.signs.items()},
        entities=raw.entities,
        accounts=raw.accounts,
        cost_centers=raw.cost_centers,
    )
