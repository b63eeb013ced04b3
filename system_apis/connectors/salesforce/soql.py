"""SOQL text built from values: datetime and id literals, ``IN`` lists, and the keyset condition of a walk.

Every value put into a query comes through here: ids must look like
Salesforce ids (so nothing else can reach the query text), datetimes are
written in UTC to the second, the precision of Salesforce's system stamps.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = (
    "ID_PATTERN",
    "IN_CHUNK",
    "after",
    "chunks",
    "id_list",
    "id_literal",
    "is_id",
    "moment",
    "select",
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
"""A Salesforce record id: 15 case-sensitive characters, or 18 with the case-safe suffix."""
EARLIEST = datetime(1700, 1, 1, tzinfo=UTC)
"""The earliest datetime Salesforce stores."""
LATEST = datetime(4000, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The latest datetime Salesforce stores."""
IN_CHUNK = 200
"""Ids per ``IN (...)`` list: about 5 KB of query string, well inside the URI length a GET may have."""


def is_id(value: str, key_prefix: str | None = None) -> bool:
    """``value`` is shaped like a Salesforce id (of the object whose ids start with ``key_prefix``)."""
    return ID_PATTERN.match(value) is not None and (key_prefix is None or value.startswith(key_prefix))


def id_literal(value: str) -> str:
    """``'value'``; ``ValueError`` when it is not an id (it would otherwise be written into the query)."""
    if not is_id(value):
        raise ValueError(f"not a Salesforce id: {value!r}")
    return f"'{value}'"


def id_list(values: Iterable[str]) -> str:
    """``('a','b')`` for an ``IN`` condition."""
    return "(" + ",".join(id_literal(value) for value in values) + ")"


def chunks(values: Iterable[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    """``values`` (distinct, in their order) in lists of at most ``size``."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]


def moment(value: datetime) -> str:
    """A datetime literal, UTC, truncated to the second: ``2026-03-31T14:05:09Z``.

    Salesforce takes datetimes from 1700 to 4000 only; a moment outside is written as that range's end, which
    changes no comparison with a stamp the org can hold.
    """
    utc = min(max(value.astimezone(UTC), EARLIEST), LATEST)
    # Written field by field: strftime does not pad years before 1000 on every platform.
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


def after(stamp: datetime, record_id: str) -> str:
    """Records after ``(stamp, record_id)`` in ``ORDER BY LastModifiedDate, Id`` order."""
    at = moment(stamp)
    return f"(LastModifiedDate > {at} OR (LastModifiedDate = {at} AND Id > {id_literal(record_id)}))"


def select(
    fields: str, sobject: str, where: str | None = None, order: str | None = None, limit: int | None = None
) -> str:
    """``SELECT fields FROM sobject [WHERE where] [ORDER BY order] [LIMIT limit]``.

    ``fields``, ``sobject`` and ``order`` are the connector's own constants (or configured field names, checked
    by the settings' pattern); ``where`` holds only literals made by this module.
    """
    query = f"SELECT {fields} FROM {sobject}"  # noqa: S608 - SOQL of checked parts, see the docstring
    if where:
        query += f" WHERE {where}"
    if order:
        query += f" ORDER BY {order}"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    return query
