"""The versioned rules that turn canonical dimension values into planning members, and members back.

Rules live in ``system_apis/mappings/anaplan/{version}.toml``; every load
records the version it was mapped with. A dimension's rule names its list and
how a value finds its member: an explicit ``members`` table first, then the
member whose code (or name) is the value itself. Months are the model's time
dimension, named by a format (``%b %y``: ``2026-01`` is ``Jan 26``), always in
English whatever the process locale.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from shared.canonical import PlanningDimension
from shared.errors import SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from system_apis.connectors.anaplan.wire import ListItem

__all__ = ("MAPPINGS", "DimensionRule", "MemberIndex", "PlanningMapping", "load_mapping")

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
"""Where mapping rule files live: ``{MAPPINGS}/{version}.toml`` (``anaplan/v1``)."""
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""English month abbreviations, as Anaplan names its time periods."""
_FORMAT_TOKEN = re.compile(r"%[bmYy%]")


class _Rules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of the rule file's tables: a misspelt key stops start-up."""


class DimensionRule(_Rules):
    """How one list dimension finds its members."""

    list: str
    """Name of the list holding the members."""
    match: Literal["code", "name"] = "code"
    """A value not in ``members`` finds the member whose code (or name) is the value."""
    members: dict[str, str] = msgspec.field(default_factory=dict)
    """Explicit canonical value -> member code (or name, per ``match``)."""


class MonthRule(_Rules):
    """How a period code names its month member."""

    format: str = "%b %y"
    """``%b`` English month abbreviation, ``%m`` two-digit month, ``%Y``/``%y`` year."""


class FileRule(_Rules):
    """The import file's layout."""

    columns: list[str]
    """Header names: entity, account, cost centre, month, amount."""


class _RuleFile(_Rules):
    version: str
    entity: DimensionRule
    account: DimensionRule
    cost_center: DimensionRule
    month: MonthRule
    file: FileRule


@dataclass(frozen=True)
class MemberIndex:
    """The members of one list, found by code and by name."""

    items: tuple[ListItem, ...]
    """Every member, as listed."""

    @cached_property
    def by_code(self) -> dict[str, ListItem]:
        """Members by code."""
        return {item.code: item for item in self.items if item.code}

    @cached_property
    def by_name(self) -> dict[str, ListItem]:
        """Members by name."""
        return {item.name: item for item in self.items}


@dataclass(frozen=True)
class PlanningMapping:
    """One version of the rules."""

    version: str
    """``anaplan/v1``: recorded on every load."""
    rules: _RuleFile

    def rule(self, dimension: PlanningDimension) -> DimensionRule:
        """The rule of a list dimension (every dimension but the month)."""
        if dimension is PlanningDimension.MONTH:
            raise ValueError("the month is the time dimension, not a list")
        rule: DimensionRule = getattr(self.rules, dimension.value)
        return rule

    @property
    def columns(self) -> list[str]:
        """The import file's header."""
        return self.rules.file.columns

    def member(self, dimension: PlanningDimension, value: str, index: MemberIndex) -> ListItem | None:
        """The member ``value`` maps to, or None when the model has none."""
        rule = self.rule(dimension)
        key = rule.members.get(value, value)
        lookup = index.by_code if rule.match == "code" else index.by_name
        return lookup.get(key)

    def canonical(self, dimension: PlanningDimension, item: ListItem) -> str | None:
        """The canonical value that maps to ``item``, or None when none does."""
        rule = self.rule(dimension)
        key = item.code if rule.match == "code" else item.name
        for value, member in rule.members.items():
            if member == key:
                return value
        if key is None or key in rule.members.values():
            return None
        return key

    def month(self, period: str) -> str:
        """The month member of a period code: ``2026-01`` -> ``Jan 26``."""
        year, month = int(period[:4]), int(period[5:7])
        tokens = {
            "%b": MONTH_NAMES[month - 1],
            "%m": f"{month:02d}",
            "%Y": f"{year:04d}",
            "%y": f"{year % 100:02d}",
        }
        return _FORMAT_TOKEN.sub(lambda match: tokens.get(match.group(), "%"), self.rules.month.format)

    def periods(self, periods: Iterable[str]) -> dict[str, str]:
        """Month member -> period code, for the periods given (the inverse of :meth:`month`)."""
        return {self.month(period): period for period in periods}


@cache
def load_mapping(version: str) -> PlanningMapping:
    """Read and check ``{MAPPINGS}/{version}.toml``.

    Raises:
        SettingsError: the file is missing, not TOML, or breaks the rules' shape.
    """
    path = MAPPINGS / f"{version}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        rules = msgspec.convert(raw, _RuleFile)
    except OSError as exc:
        raise SettingsError(f"no planning mapping rules {version!r} ({path}): {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SettingsError(f"planning mapping rules {version!r} are not valid: {exc}") from exc
    if rules.version != version:
        raise SettingsError(f"{path} declares version {rules.version!r}, not {version!r}")
    if len(rules.file.columns) != 5:
        raise SettingsError(
            f"{path}: file.columns must name 5 columns (entity, account, cost centre, month, amount)"
        )
    return PlanningMapping(version=version, rules=rules)
