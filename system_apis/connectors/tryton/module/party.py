"""``party.party`` with an ``external_ref``, unique across the database: customers and suppliers created by reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trytond.model import Unique, fields
from trytond.pool import PoolMeta

__all__ = ("Party",)

if TYPE_CHECKING:
    # Extends a Tryton model, whose attributes mypy cannot know.
    _Model = Any
else:
    _Model = object


class Party(_Model, metaclass=PoolMeta):
    """Parties, unique by ``external_ref``.

    Parties belong to no company (every company of the database shares them),
    so the reference is unique in the whole database. NULL is allowed any number
    of times (parties made inside Tryton have none); copies start without one.
    """

    __name__ = "party.party"

    external_ref = fields.Char("External Reference")
    """Reference given by the writer; PostgreSQL enforces it unique."""

    @classmethod
    def __setup__(cls) -> None:
        """Add the SQL constraint to the party table."""
        super().__setup__()
        table = cls.__table__()
        cls._sql_constraints += [
            (
                "external_ref_unique",
                Unique(table, table.external_ref),
                "finsync.msg_party_external_ref_unique",
            ),
        ]

    @classmethod
    def copy(cls, parties: list[Any], default: dict[str, Any] | None = None) -> list[Any]:
        """Copy without the external reference."""
        default = dict(default or {})
        default.setdefault("external_ref", None)
        copies: list[Any] = super().copy(parties, default=default)
        return copies
