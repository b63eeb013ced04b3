"""The flow's versioned map (``{maps}/{version}.toml``): the CRM's legal entities and the reversal's accounts.

The packaged maps live beside this file (``maps/``); ``order_to_cash.maps_dir``
points at a directory of the deployment's own, and ``order_to_cash.map_version``
picks the one the flow uses. A map is never edited once postings used it: a
change is a new version, recorded on every audit event of the flow.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import msgspec

from shared.canonical.fields import Code
from shared.errors import SettingsError

__all__ = ("CURRENT", "MAPS", "OrderToCashMap", "load_map")

MAPS = Path(__file__).resolve().parent / "maps"
"""Where the packaged map files live."""
CURRENT = "v1"
"""The map the flow uses unless told otherwise."""


class _Accounts(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    receivable: Code


class _MapFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: str
    entities: dict[str, Code]
    accounts: _Accounts


@dataclass(frozen=True)
class OrderToCashMap:
    """One version of the flow's map."""

    version: str
    """``o2c/v1``: recorded on every audit event."""
    entities: dict[str, str]
    """The CRM's legal-entity values to ERP entity codes."""
    receivable_account: str
    """The ERP's receivable account, credited by a reversal."""

    def entity(self, crm_value: str | None) -> str | None:
        """The ERP entity of a deal's legal-entity value; None when it has none or the map does not list it."""
        return self.entities.get(crm_value) if crm_value is not None else None


@cache
def load_map(version: str = CURRENT, directory: Path | None = None) -> OrderToCashMap:
    """Read and check ``{directory}/{version}.toml`` (default: the packaged maps).

    Raises:
        SettingsError: the file is missing, not TOML, or breaks the map's shape.
    """
    path = (directory or MAPS) / f"{version}.toml"
    try:
        raw = msgspec.convert(tomllib.loads(path.read_text(encoding="utf-8")), _MapFile)
    except OSError as exc:
        raise SettingsError(f"no order-to-cash map {version!r} ({path}): {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"order-to-cash map {version!r} is not valid: {exc}") from exc
    return OrderToCashMap(
        version=raw.version, entities=dict(raw.entities), receivable_account=raw.accounts.receivable
    )
