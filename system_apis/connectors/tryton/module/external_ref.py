"""The ``external_ref`` field and its unique ``(company, external_ref)`` constraint, for any model with a company."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sql import Null
from trytond.model import Unique, fields
from trytond.tools import grouped_slice, reduce_ids
from trytond.transaction import Transaction

__all__ = ("ExternalRefMixin",)

if TYPE_CHECKING:
    # Mixed into Tryton models, whose attributes mypy cannot know.
    _Model = Any
else:
    _Model = object


class ExternalRefMixin(_Model):
    """Adds ``external_ref``: the business identity of a record written from outside, unique per company.

    NULL is allowed any number of times (records made inside Tryton have none).
    Copies (reversals, duplicates) start without one, or copying would always fail.
    """

    external_ref = fields.Char("External Reference")
    """Reference given by the writer; PostgreSQL enforces it unique per company."""

    @classmethod
    def __setup__(cls) -> None:
        """Add the SQL constraint to the model's table."""
        super().__setup__()
        table = cls.__table__()
        cls._sql_constraints += [
            (
                "company_external_ref_unique",
                Unique(table, table.company, table.external_ref),
                "finsync.msg_external_ref_unique",
            ),
        ]

    @classmethod
    def create(cls, vlist: list[dict[str, Any]]) -> list[Any]:
        """Create, and stamp ``write_date`` with ``create_date``.

        Tryton leaves ``write_date`` empty until a record is first written; the
        connector's incremental reads follow ``(write_date, id)``, so every record
        needs one. The stamp is the same transaction time Tryton gives any write.
        """
        records: list[Any] = super().create(vlist)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        for ids in grouped_slice([record.id for record in records]):
            cursor.execute(
                *table.update(
                    [table.write_date],
                    [table.create_date],
                    where=reduce_ids(table.id, list(ids)) & (table.write_date == Null),
                )
            )
        return records

    @classmethod
    def copy(cls, records: list[Any], default: dict[str, Any] | None = None) -> list[Any]:
        """Copy without the external reference."""
        default = dict(default or {})
        default.setdefault("external_ref", None)
        copies: list[Any] = super().copy(records, default=default)
        return copies
