"""Tryton's JSON-RPC wire format: typed values as ``{"__class__": ...}`` objects.

Tryton sends and expects ``Decimal``, ``date`` and ``datetime`` as objects such as
``{"__class__": "Decimal", "decimal": "1.00"}``. Requests are encoded with msgspec
and an ``enc_hook`` for those types. Answers are decoded straight into Structs
(:class:`WireDecimal`, :class:`WireDate`, :class:`WireDateTime` in row types) on the
hot reads, which keeps a journal line at a few microseconds; :func:`plain` turns
an untyped answer into Python values for everything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec

__all__ = (
    "WireDate",
    "WireDateTime",
    "WireDecimal",
    "decoder",
    "encode",
    "plain",
)


class WireDecimal(msgspec.Struct, frozen=True, gc=False, rename={"kind": "__class__"}):
    """``{"__class__": "Decimal", "decimal": "1.00"}``."""

    kind: str
    decimal: str

    def value(self) -> Decimal:
        """The amount as a ``Decimal``."""
        return Decimal(self.decimal)


class WireDate(msgspec.Struct, frozen=True, gc=False, rename={"kind": "__class__"}):
    """``{"__class__": "date", "year": ..., "month": ..., "day": ...}``."""

    kind: str
    year: int
    month: int
    day: int

    def value(self) -> dt.date:
        """The date."""
        return dt.date(self.year, self.month, self.day)


class WireDateTime(msgspec.Struct, frozen=True, gc=False, rename={"kind": "__class__"}):
    """A naive datetime, which Tryton keeps in UTC."""

    kind: str
    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    microsecond: int = 0

    def value(self) -> dt.datetime:
        """The moment, in UTC."""
        return dt.datetime(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.microsecond,
            tzinfo=dt.UTC,
        )


def _tryton_object(value: Any) -> Any:
    """A ``Decimal``, ``date``, ``datetime`` or set as Tryton's JSON-RPC expects it."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise NotImplementedError(f"cannot send {type(value).__name__} to Tryton")


_ENCODER = msgspec.json.Encoder()


def encode(payload: Any) -> bytes:
    """JSON for Tryton, with ``Decimal``, ``date`` and ``datetime`` as Tryton's objects.

    Datetimes are sent naive in UTC, as Tryton stores them. Those values are converted
    before encoding (:func:`_typed`), since msgspec would encode them natively as strings.
    """
    return _ENCODER.encode(_typed(payload))


_PLAIN = frozenset({int, str, bool, float, type(None)})


def _typed(value: Any) -> Any:
    """Replace the values msgspec would encode natively (dates, Decimals) by Tryton's objects."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(item) in _PLAIN for item in value):
            return value  # ids and names, the bulk of a large domain: nothing to convert
        return [_typed(item) for item in value]
    if isinstance(value, (Decimal, dt.date, set, frozenset)):
        return _tryton_object(value)
    return value


@cache
def decoder(row_type: Any) -> msgspec.json.Decoder[Any]:
    """A (cached) decoder of a JSON-RPC answer whose ``result`` is ``row_type``."""
    return msgspec.json.Decoder(_answer_type(row_type))


@cache
def _answer_type(result_type: Any) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        "Answer",
        [("id", Any, None), ("result", result_type | None, None), ("error", Any, None)],
    )


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Decimal": lambda obj: Decimal(obj["decimal"]),
    "date": lambda obj: dt.date(obj["year"], obj["month"], obj["day"]),
    "datetime": lambda obj: dt.datetime(
        obj["year"],
        obj["month"],
        obj["day"],
        obj.get("hour", 0),
        obj.get("minute", 0),
        obj.get("second", 0),
        obj.get("microsecond", 0),
        tzinfo=dt.UTC,
    ),
    "bytes": lambda obj: obj.get("base64", ""),
}


def plain(value: Any) -> Any:
    """An untyped answer with Tryton's objects turned into ``Decimal``, ``date`` and ``datetime``."""
    if isinstance(value, dict):
        kind = value.get("__class__")
        if kind is not None and kind in _DECODERS:
            return _DECODERS[kind](value)
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
