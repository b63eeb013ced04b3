"""Salesforce-style record ids: 15 case-sensitive characters, plus the 3-character suffix of the 18-character form.

An id starts with its object's three-character key prefix (``001`` Account,
``006`` Opportunity, ``00k`` OpportunityLineItem, ...). The sandbox's ids then
hold a two-character pod (:data:`POD`), a reserved ``0`` and a base-62 counter,
so ids of one object sort in creation order.

The suffix makes the id safe for case-insensitive systems: each of its
characters encodes which of five characters of the 15-character id are upper
case. Salesforce accepts both forms wherever it takes an id and always answers
with the 18-character form; so does the sandbox (:func:`canonical`).
"""

from __future__ import annotations

import itertools
import time

__all__ = (
    "KEY_PREFIXES",
    "NOTIFICATION_PREFIX",
    "OUTBOUND_MESSAGE_PREFIX",
    "POD",
    "QUERY_LOCATOR_PREFIX",
    "IdFactory",
    "canonical",
    "make_id",
    "transient_counter",
)

KEY_PREFIXES = {
    "Organization": "00D",
    "User": "005",
    "Account": "001",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Product2": "01t",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
}
"""Salesforce's key prefix of each object the sandbox knows."""
QUERY_LOCATOR_PREFIX = "01g"
"""Prefix of a query locator (the id in a ``nextRecordsUrl``)."""
OUTBOUND_MESSAGE_PREFIX = "04k"
"""Prefix of an outbound message definition (the ``ActionId`` of a ``notifications`` call)."""
NOTIFICATION_PREFIX = "04l"
"""Prefix of one outbound notification (its ``Id``, what a listener dedupes on)."""
POD = "Sb"
"""Characters 4 and 5 of every sandbox id (Salesforce puts the pod or instance there)."""

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_COUNTER_WIDTH = 9


def _suffix(id15: str) -> str:
    """The three checksum characters of a 15-character id."""
    chars = []
    for start in (0, 5, 10):
        bits = sum(1 << offset for offset, char in enumerate(id15[start : start + 5]) if "A" <= char <= "Z")
        chars.append(_SUFFIX[bits])
    return "".join(chars)


def _base62(number: int) -> str:
    """``number`` in base 62, zero-padded to the counter's width."""
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits)).rjust(_COUNTER_WIDTH, "0")


def make_id(prefix: str, number: int) -> str:
    """The 18-character id number ``number`` with key prefix ``prefix``."""
    if not 0 < number < 62**_COUNTER_WIDTH:
        raise ValueError(f"id number out of range: {number}")
    id15 = f"{prefix}{POD}0{_base62(number)}"
    return id15 + _suffix(id15)


def canonical(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or ``None`` when ``value`` is not an id.

    An 18-character id may come in any case: its suffix restores the case of
    the first 15 characters, as Salesforce does.
    """
    if not value.isascii() or not value.isalnum():
        return None
    if len(value) == 15:
        return value + _suffix(value)
    if len(value) != 18:
        return None
    chars = list(value[:15])
    for block, code in enumerate(value[15:].upper()):
        bits = _SUFFIX.find(code)
        if bits < 0:
            return None
        for offset in range(5):
            index = block * 5 + offset
            chars[index] = chars[index].upper() if bits >> offset & 1 else chars[index].lower()
    id15 = "".join(chars)
    return id15 + _suffix(id15)


class IdFactory:
    """Hands out ids per key prefix, 1, 2, 3, ... in creation order (deterministic: the seed relies on it)."""

    def __init__(self) -> None:
        """No id handed out yet."""
        self._next: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        """The next id with ``prefix``."""
        number = self._next.get(prefix, 1)
        self._next[prefix] = number + 1
        return make_id(prefix, number)


def transient_counter() -> itertools.count[int]:
    """Numbers for ids that must never repeat in this process nor after a restart (query locators, notifications).

    They start at the current time in microseconds, so a listener that dedupes
    on a notification's ``Id`` never drops a new one after a sandbox restart or
    reset.
    """
    return itertools.count(time.time_ns() // 1000)
