"""The in-memory planning model: lists of members, versions, months and the cells of each version.

A cell is addressed by one member of each list and one month; its key holds
member ids (not codes), so an item added without a code is addressed the same
way. Amounts are ``Decimal``; a cell exists once something wrote it, a zero
included, and only existing cells are exported.

The model is plain dicts keyed by tuples: an import of 50,000 rows is 50,000
dict look-ups per dimension and one dict update at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from system_apis.connectors.tryton.seed import FISCAL_YEAR

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from decimal import Decimal

__all__ = (
    "MAX_ITEMS_PER_ADD",
    "MAX_NAME_LENGTH",
    "MONTH_ABBREVIATIONS",
    "CellKey",
    "ListItem",
    "PlanningList",
    "PlanningModel",
    "Version",
    "month_names",
)

MAX_ITEMS_PER_ADD = 100_000
"""Anaplan takes at most this many items in one ``POST …/items?action=add``."""
MAX_NAME_LENGTH = 60
"""Anaplan's limit on a list item's name and code."""
MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""English month abbreviations, spelt out rather than taken from ``strftime`` (which follows the locale)."""

CellKey = tuple[str, str, str, int]
"""Entity item id, account item id, cost-centre item id and month index (0 for January)."""


def month_names(year: int = FISCAL_YEAR) -> tuple[str, ...]:
    """The months of a calendar fiscal year as Anaplan names them: ``Jan 26`` … ``Dec 26``."""
    return tuple(f"{month} {year % 100:02d}" for month in MONTH_ABBREVIATIONS)


class ListItem(msgspec.Struct, kw_only=True, frozen=True):
    """A member of a list. Frozen: items are never edited, only added."""

    id: str
    """Anaplan-like numeric id, unique in the model."""
    name: str
    """Its name, unique in the list."""
    code: str | None = None
    """Its code, unique in the list when present (the ERP seed's code)."""
    parent: str | None = None
    """Name of its parent item, if it has one."""
    parent_id: str | None = None
    """Id of its parent item, if it has one."""

    @property
    def label(self) -> str:
        """How exports and the control API name it: its code, else its name."""
        return self.code if self.code is not None else self.name


class PlanningList:
    """A flat or hierarchical list of members, found by code or by name."""

    def __init__(self, list_id: str, name: str, id_prefix: int) -> None:
        """An empty list; its items get ids ``{id_prefix}000000001``, ``…002`` and so on."""
        self.id = list_id
        """Anaplan-like id of the list."""
        self.name = name
        """Its name, e.g. ``E1 Entities``."""
        self.items: list[ListItem] = []
        """Members in list order."""
        self._id_prefix = id_prefix
        self._by_code: dict[str, ListItem] = {}
        self._by_name: dict[str, ListItem] = {}
        self._positions: dict[str, int] = {}

    def find(self, key: str) -> ListItem | None:
        """The member whose code is ``key``, else whose name is ``key`` (both exact), else ``None``."""
        return self._by_code.get(key) or self._by_name.get(key)

    def position(self, item_id: str) -> int:
        """Index of a member in list order."""
        return self._positions[item_id]

    def add(self, name: str, code: str | None = None, parent: ListItem | None = None) -> ListItem:
        """Append a member; the caller has checked that its name and code are free."""
        item = ListItem(
            id=f"{self._id_prefix}{len(self.items) + 1:09d}",
            name=name,
            code=code,
            parent=parent.name if parent is not None else None,
            parent_id=parent.id if parent is not None else None,
        )
        self._positions[item.id] = len(self.items)
        self.items.append(item)
        self._by_name[name] = item
        if code is not None:
            self._by_code[code] = item
        return item

    def add_items(self, requests: Iterable[Any]) -> dict[str, Any]:
        """``POST …/items?action=add``: add each requested item whose code is new, as Anaplan answers it.

        An item whose code (or, without a code, whose name) exists is ignored;
        one that cannot be added is reported in ``failures`` by its index in the
        request, and the others are still added.
        """
        added = ignored = total = 0
        failures: list[dict[str, Any]] = []

        def fail(index: int, failure_type: str, details: str) -> None:
            """Report the item at ``index`` as not added."""
            failures.append(
                {"requestIndex": index, "failureType": failure_type, "failureMessageDetails": details}
            )

        for index, request in enumerate(requests):
            total += 1
            if not isinstance(request, dict):
                fail(index, "INVALID_ITEM", "an item is a JSON object with name, code and parent")
                continue
            name, code, parent_key = request.get("name"), request.get("code"), request.get("parent")
            if code == "":
                code = None
            if not isinstance(name, str) or not name.strip():
                fail(index, "MISSING_NAME", "the item has no name")
                continue
            if not isinstance(code, str | None) or not isinstance(parent_key, str | None):
                fail(index, "INVALID_ITEM", "code and parent are strings")
                continue
            if len(name) > MAX_NAME_LENGTH or (code is not None and len(code) > MAX_NAME_LENGTH):
                fail(index, "NAME_TOO_LONG", f"names and codes have at most {MAX_NAME_LENGTH} characters")
                continue
            if code is not None and code in self._by_code:
                ignored += 1
                continue
            if name in self._by_name:
                if code is None:
                    ignored += 1
                else:
                    fail(index, "DUPLICATE_NAME", f"{self.name} already has an item named {name!r}")
                continue
            parent = None
            if parent_key:
                parent = self.find(parent_key)
                if parent is None:
                    fail(index, "PARENT_NOT_FOUND", f"Item not found in {self.name}: {parent_key}")
                    continue
            self.add(name, code, parent)
            added += 1
        return {"added": added, "ignored": ignored, "total": total, "failures": failures}


class Version(msgspec.Struct, kw_only=True, frozen=True):
    """A version of the model's data (Actual, Budget, Forecast)."""

    id: str
    """Anaplan-like id."""
    name: str
    """Its name, the value of the ``Version`` mapping parameter."""
    is_actual: bool = False
    """The version that holds actuals."""
    is_current: bool = False
    """The version planners currently work on."""


class PlanningModel:
    """Lists, versions, months and cells: everything an import writes and an export reads."""

    def __init__(
        self,
        entities: PlanningList,
        accounts: PlanningList,
        cost_centres: PlanningList,
        versions: tuple[Version, ...],
        months: tuple[str, ...],
    ) -> None:
        """A model with no cells; :mod:`~.seed` builds the seeded one."""
        self.entities = entities
        """``E1 Entities``."""
        self.accounts = accounts
        """``A1 Accounts``."""
        self.cost_centres = cost_centres
        """``C1 Cost Centres``."""
        self.lists = {item.id: item for item in (entities, accounts, cost_centres)}
        """Every list, by id, in the order the API lists them."""
        self.versions = versions
        """Every version, in the order the API lists them."""
        self.months = months
        """Month members, in calendar order."""
        self.month_index = {name: index for index, name in enumerate(months)}
        """Index of each month, by its name."""
        self.cells: dict[str, dict[CellKey, Decimal]] = {version.name: {} for version in versions}
        """Each version's cells, by version name."""

    def version(self, name: str) -> Version | None:
        """The version named ``name`` (exact), or ``None``."""
        return next((version for version in self.versions if version.name == name), None)

    def cell_count(self) -> int:
        """How many cells hold a value, in every version."""
        return sum(len(cells) for cells in self.cells.values())

    def rows(self, version: str) -> Iterator[tuple[str, str, str, str, Decimal]]:
        """A version's cells as (entity, account, cost centre, month, amount), members by label, in model order.

        Model order is list order for each list and calendar order for months,
        the order Anaplan lays out a module's dimensions.
        """
        entities, accounts, cost_centres = self.entities, self.accounts, self.cost_centres

        def order(key: CellKey) -> tuple[int, int, int, int]:
            """Sort key of a cell: list positions, then the month."""
            entity, account, cost_centre, month = key
            return (
                entities.position(entity),
                accounts.position(account),
                cost_centres.position(cost_centre),
                month,
            )

        labels = {item.id: item.label for items in self.lists.values() for item in items.items}
        cells = self.cells[version]
        for key in sorted(cells, key=order):
            entity, account, cost_centre, month = key
            yield labels[entity], labels[account], labels[cost_centre], self.months[month], cells[key]
