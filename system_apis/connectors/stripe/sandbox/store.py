"""Where the objects live: the clock, ids, the store, Stripe's list paging and the (lagging) search index.

- :class:`Clock`: the sandbox's "now" in Unix seconds, which the control API
  can move forward (to age idempotency keys and events, or to skew webhook
  timestamps); it never runs backwards.
- :func:`new_id` and :func:`seeded_id`: Stripe-style ids (``prefix_`` + 24
  base-62 characters), random at run time, derived from a name in the seed.
- :class:`Store`: every object by id, and each kind in order of creation.
- :func:`page`: ``limit`` (1-100, default 10), ``starting_after`` and
  ``ending_before`` over a newest-first list, answered as
  ``{"object": "list", "url", "has_more", "data"}``.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from typing import TYPE_CHECKING, Any, TypeVar

from system_apis.connectors.stripe.sandbox.errors import InvalidRequestError, ResourceMissingError
from system_apis.connectors.stripe.sandbox.objects import Record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ("DEFAULT_LIMIT", "Clock", "Store", "in_range", "new_id", "page", "seeded_id")

DEFAULT_LIMIT = 10
"""Page size of a list when the request gives no ``limit``."""
_ALPHABET = string.digits + string.ascii_letters
_ID_LENGTH = 24

_R = TypeVar("_R", bound=Record)


def new_id(prefix: str) -> str:
    """A fresh random id such as ``in_3Q0x…``."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_ID_LENGTH))


def seeded_id(prefix: str, name: str) -> str:
    """The seed's id for ``name``: the same on every start, and distinct from random ones only by chance."""
    number = int.from_bytes(hashlib.sha256(f"{prefix}:{name}".encode()).digest(), "big")
    chars = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)


class Clock:
    """The sandbox's time: the wall clock plus an offset that only grows."""

    def __init__(self) -> None:
        """Wall-clock time, no offset."""
        self.offset = 0
        """Seconds added to the wall clock."""

    def now(self) -> int:
        """Now, in Unix seconds."""
        return int(time.time()) + self.offset

    def advance(self, seconds: int) -> int:
        """Move the clock ``seconds`` forward; answers the new now."""
        self.offset += max(seconds, 0)
        return self.now()


class Store:
    """Every object by id, each kind in order of creation, and the snapshots search reads."""

    def __init__(self) -> None:
        """Empty."""
        self.objects: dict[str, Record] = {}
        """Every object (deleted ones too), by id."""
        self._kinds: dict[type[Record], list[Record]] = {}
        self._seq = 0
        self._searchable: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    def add(self, record: _R) -> _R:
        """Keep ``record``, after every object created before it."""
        self._seq += 1
        record.seq = self._seq
        self.objects[record.id] = record
        self._kinds.setdefault(type(record), []).append(record)
        return record

    def get(
        self, kind: type[_R], object_id: str, *, param: str | None = None, allow_deleted: bool = False
    ) -> _R:
        """The ``kind`` object ``object_id``.

        Raises:
            ResourceMissingError: there is none (404), or none for the request parameter ``param`` (400).
        """
        record = self.objects.get(object_id)
        if not isinstance(record, kind) or (record.deleted and not allow_deleted):
            raise ResourceMissingError(kind.KIND, object_id, param=param)
        return record

    def newest_first(self, kind: type[_R]) -> list[_R]:
        """The live ``kind`` objects, newest first."""
        records: list[Any] = self._kinds.get(kind, [])
        live: list[_R] = [record for record in records if not record.deleted]
        live.sort(key=lambda record: record.sort_key(), reverse=True)
        return live

    # Search sees each object as it was when it was last indexed, and only once the lag has passed.

    def index(self, record: Record, snapshot: dict[str, Any], lag: float) -> None:
        """Make ``snapshot`` of ``record`` searchable ``lag`` seconds from now."""
        versions = self._searchable.setdefault(record.id, [])
        versions.append((time.monotonic() + lag, snapshot))

    def searchable(self, record: Record) -> dict[str, Any] | None:
        """The newest snapshot of ``record`` that search may see now, or None while it is not indexed yet."""
        versions = self._searchable.get(record.id)
        if not versions:
            return None
        now = time.monotonic()
        visible = [snapshot for ready, snapshot in versions if ready <= now]
        if len(visible) > 1:  # older versions can never be seen again
            self._searchable[record.id] = [
                entry for entry in versions if entry[0] > now or entry[1] is visible[-1]
            ]
        return visible[-1] if visible else None


def in_range(value: int | None, bounds: Mapping[str, int] | None) -> bool:
    """Whether ``value`` is within ``{"gt", "gte", "lt", "lte"}`` bounds (no bounds: always)."""
    if not bounds:
        return True
    if value is None:
        return False
    checks: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return all(checks[op](value, bound) for op, bound in bounds.items())


def page(
    store: Store,
    records: Iterable[_R],
    params: Mapping[str, Any],
    url: str,
    render: Callable[[_R], dict[str, Any]],
) -> dict[str, Any]:
    """One page of newest-first ``records`` as Stripe's list object.

    ``starting_after`` answers the objects older than the one named,
    ``ending_before`` the ``limit`` objects just newer than it (still newest
    first); ``has_more`` says whether the list goes on in that direction. The
    cursor object need not match the filters; it only marks a place.

    Raises:
        InvalidRequestError: both cursors at once.
        ResourceMissingError: a cursor names no object (400, ``param`` the cursor).
    """
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise InvalidRequestError(
            "You may only specify one of these parameters: starting_after, ending_before.",
            code="parameters_exclusive",
            param="ending_before",
        )
    limit = int(params.get("limit") or DEFAULT_LIMIT)
    items = list(records)
    if after or before:
        cursor_id = str(after or before)
        cursor = store.objects.get(cursor_id)
        if cursor is None:
            kind = type(items[0]).KIND if items else "object"
            raise ResourceMissingError(kind, cursor_id, param="starting_after" if after else "ending_before")
        mark = cursor.sort_key()
        if after:
            items = [record for record in items if record.sort_key() < mark]
            selected, has_more = items[:limit], len(items) > limit
        else:
            items = [record for record in items if record.sort_key() > mark]
            selected, has_more = items[-limit:], len(items) > limit
    else:
        selected, has_more = items[:limit], len(items) > limit
    return {
        "object": "list",
        "data": [render(record) for record in selected],
        "has_more": has_more,
        "url": url,
    }
