"""Stripe's parameter encoding and the checks each endpoint makes on its parameters.

Stripe takes ``application/x-www-form-urlencoded`` bodies (and query strings) in
which brackets nest: ``metadata[opportunity_id]=006x``, ``expand[]=customer``,
``created[gte]=1700000000``, ``lines[0][amount]=500``. :func:`parse_form`
turns the pairs into nested dicts and lists; a :data:`Spec` then checks the
names and types, so an unknown or malformed parameter answers 400 before the
endpoint does anything (Stripe saves no idempotent result for those).

Empty values mean "unset" where Stripe says so: ``description=`` sets a
nullable field to null, ``metadata[key]=`` removes one key, ``metadata=``
removes them all.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from system_apis.connectors.stripe.sandbox.errors import InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "CURRENCIES",
    "LIST_PARAMS",
    "Bool",
    "Currency",
    "Decimal12",
    "Enum",
    "Int",
    "Metadata",
    "Obj",
    "Param",
    "Range",
    "Spec",
    "Str",
    "StrList",
    "check",
    "parse_form",
)

CURRENCIES = frozenset({"usd", "eur", "gbp", "chf", "cad", "aud", "jpy", "sek", "nok", "dkk"})
"""Currencies the sandbox takes (ISO 4217, lower case, as Stripe writes them)."""

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"^-?\d+$")
_METADATA_KEYS = 50
_METADATA_KEY_LENGTH = 40
_METADATA_VALUE_LENGTH = 500


def _conflict(key: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid array or hash parameter: {key}", param=key)


def parse_form(raw: str) -> dict[str, Any]:
    """Nest the pairs of a form-encoded string: ``a[b]=1`` → ``{"a": {"b": "1"}}``, ``a[]=1`` → ``{"a": ["1"]}``.

    Indexed arrays (``a[0][b]=1``) stay dicts keyed by the index; :class:`StrList`
    and :class:`Obj` read them as lists where a list is expected. A repeated
    scalar keeps its last value.

    Raises:
        InvalidRequestError: a name is malformed, or is both a value and a hash.
    """
    result: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(raw, keep_blank_values=True):
        match = _NAME.match(key)
        if match is None:
            raise InvalidRequestError(f"Invalid parameter name: {key}", param=key)
        path = [match[1], *_SEGMENT.findall(match[2])]
        node: dict[str, Any] = result
        for position, segment in enumerate(path[:-1]):
            following = path[position + 1]
            child = node.get(segment)
            if child is None:
                child = [] if following == "" else {}
                node[segment] = child
            if following == "":
                if not isinstance(child, list) or position + 2 != len(path):
                    raise _conflict(key)
                child.append(value)
                break
            if not isinstance(child, dict):
                raise _conflict(key)
            node = child
        else:
            last = path[-1]
            if last == "" or isinstance(node.get(last), (dict, list)):
                raise _conflict(key)
            node[last] = value
    return result


class Spec:
    """How one parameter is read: :meth:`clean` checks a raw value and returns the typed one."""

    def clean(self, name: str, value: Any) -> Any:
        """The typed value of parameter ``name``.

        Raises:
            InvalidRequestError: the value does not fit.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class Param:
    """A parameter of an endpoint: its :class:`Spec` and whether it is required."""

    spec: Spec
    """How its value is read."""
    required: bool = False
    """Whether a request without it answers ``Missing required param``."""


def _scalar(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"Invalid {name}: expected a single value, not an array or hash", param=name
        )
    return value


@dataclass(frozen=True)
class Str(Spec):
    """A string; the empty string means null when ``nullable``."""

    max_length: int = 5000
    """Longest value taken."""
    nullable: bool = True
    """Whether ``name=`` unsets it (None)."""
    pattern: str | None = None
    """A regular expression the value must match in full."""

    def clean(self, name: str, value: Any) -> str | None:
        """The string, or None for an empty nullable one."""
        text = _scalar(name, value)
        if text == "":
            if self.nullable:
                return None
            raise InvalidRequestError(
                f"You passed an empty string for '{name}'. We assume empty values are an attempt to unset a "
                f"parameter; however '{name}' cannot be unset.",
                code="parameter_invalid_empty",
                param=name,
            )
        if len(text) > self.max_length:
            raise InvalidRequestError(
                f"Invalid {name}: must be at most {self.max_length} characters", param=name
            )
        if self.pattern is not None and re.fullmatch(self.pattern, text) is None:
            raise InvalidRequestError(f"Invalid {name}: {text!r}", param=name)
        return text


@dataclass(frozen=True)
class Int(Spec):
    """An integer within bounds."""

    minimum: int | None = None
    """Smallest value taken."""
    maximum: int | None = None
    """Largest value taken."""

    def clean(self, name: str, value: Any) -> int:
        """The integer."""
        text = _scalar(name, value)
        if _INTEGER.match(text) is None:
            raise InvalidRequestError(
                f"Invalid integer: {text}", code="parameter_invalid_integer", param=name
            )
        number = int(text)
        if self.minimum is not None and number < self.minimum:
            raise InvalidRequestError(
                f"Invalid {name}: must be greater than or equal to {self.minimum}", param=name
            )
        if self.maximum is not None and number > self.maximum:
            raise InvalidRequestError(
                f"Invalid {name}: must be less than or equal to {self.maximum}", param=name
            )
        return number


@dataclass(frozen=True)
class Bool(Spec):
    """``true`` or ``false``."""

    def clean(self, name: str, value: Any) -> bool:
        """The boolean."""
        text = _scalar(name, value)
        if text not in ("true", "false"):
            raise InvalidRequestError(f"Invalid boolean: {text}", param=name)
        return text == "true"


@dataclass(frozen=True)
class Enum(Spec):
    """One of fixed strings."""

    values: tuple[str, ...]
    """The strings taken."""

    def clean(self, name: str, value: Any) -> str:
        """The string."""
        text = _scalar(name, value)
        if text not in self.values:
            raise InvalidRequestError(f"Invalid {name}: must be one of {', '.join(self.values)}", param=name)
        return text


@dataclass(frozen=True)
class Currency(Spec):
    """A three-letter currency code the sandbox supports, lower-cased."""

    def clean(self, name: str, value: Any) -> str:
        """The code in lower case."""
        code = _scalar(name, value).lower()
        if code not in CURRENCIES:
            raise InvalidRequestError(
                f"Invalid currency: {code}. Stripe supports a fixed set of currencies; "
                f"this sandbox takes {', '.join(sorted(CURRENCIES))}.",
                param=name,
            )
        return code


@dataclass(frozen=True)
class Decimal12(Spec):
    """A decimal string with at most 12 decimal places (``unit_amount_decimal``)."""

    def clean(self, name: str, value: Any) -> Decimal:
        """The Decimal."""
        text = _scalar(name, value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidRequestError(f"Invalid decimal: {text}", param=name) from None
        exponent = number.as_tuple().exponent
        if not number.is_finite() or (isinstance(exponent, int) and exponent < -12):
            raise InvalidRequestError(f"Invalid decimal: {text}", param=name)
        return number


@dataclass(frozen=True)
class Metadata(Spec):
    """``metadata[key]=value``: up to 50 keys of at most 40 characters, values of at most 500.

    The result maps keys to values, with ``""`` for a key to unset; an empty
    ``metadata=`` is ``{}`` plus the marker key ``""`` (unset every key).
    """

    def clean(self, name: str, value: Any) -> dict[str, str]:
        """Keys to values (``""``: unset)."""
        if value == "":
            return {"": ""}
        if not isinstance(value, dict):
            raise InvalidRequestError(f"Invalid {name}: expected a hash (metadata[key]=value)", param=name)
        if len(value) > _METADATA_KEYS:
            raise InvalidRequestError(f"Invalid {name}: at most {_METADATA_KEYS} keys", param=name)
        result: dict[str, str] = {}
        for key, item in value.items():
            text = _scalar(f"{name}[{key}]", item)
            if len(key) > _METADATA_KEY_LENGTH:
                raise InvalidRequestError(
                    f"Metadata keys can have up to {_METADATA_KEY_LENGTH} characters: {key}",
                    param=f"{name}[{key}]",
                )
            if len(text) > _METADATA_VALUE_LENGTH:
                raise InvalidRequestError(
                    f"Metadata values can have up to {_METADATA_VALUE_LENGTH} characters",
                    param=f"{name}[{key}]",
                )
            result[key] = text
        return result


def _as_list(name: str, value: Any) -> list[Any]:
    """A list from ``a[]=`` (a list) or ``a[0]=`` (a dict keyed by index)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(key.isdigit() for key in value):
        return [value[key] for key in sorted(value, key=int)]
    raise InvalidRequestError(f"Invalid array: {name}", param=name)


@dataclass(frozen=True)
class StrList(Spec):
    """An array of strings (``expand[]=a&expand[]=b``)."""

    max_items: int = 100
    """Longest array taken."""

    def clean(self, name: str, value: Any) -> list[str]:
        """The strings."""
        items = _as_list(name, value)
        if len(items) > self.max_items:
            raise InvalidRequestError(f"Invalid {name}: at most {self.max_items} items", param=name)
        return [_scalar(f"{name}[]", item) for item in items]


@dataclass(frozen=True)
class Obj(Spec):
    """A hash with known keys (``invoice_settings[default_payment_method]=...``)."""

    fields: Mapping[str, Param]
    """Its keys."""

    def clean(self, name: str, value: Any) -> dict[str, Any]:
        """The checked hash."""
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise InvalidRequestError(f"Invalid {name}: expected a hash", param=name)
        return check(self.fields, value, prefix=name)


@dataclass(frozen=True)
class Range(Spec):
    """A timestamp filter: ``created=T`` or ``created[gt|gte|lt|lte]=T``; the result is a dict of bounds."""

    def clean(self, name: str, value: Any) -> dict[str, int]:
        """``{"gte": T, "lte": T}`` for an exact value, else the bounds given."""
        if isinstance(value, str):
            exact = Int().clean(name, value)
            return {"gte": exact, "lte": exact}
        if not isinstance(value, dict):
            raise InvalidRequestError(f"Invalid {name}: expected an integer or a hash", param=name)
        bounds: dict[str, int] = {}
        for key, item in value.items():
            if key not in ("gt", "gte", "lt", "lte"):
                raise InvalidRequestError(
                    f"Received unknown parameter: {name}[{key}]",
                    code="parameter_unknown",
                    param=f"{name}[{key}]",
                )
            bounds[key] = Int().clean(f"{name}[{key}]", item)
        return bounds


def check(spec: Mapping[str, Param], raw: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """The parameters of ``raw`` read by ``spec``; ``expand`` is taken everywhere at the top level.

    Raises:
        InvalidRequestError: an unknown parameter, a missing required one, or a value that does not fit.
    """
    result: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}[{key}]" if prefix else key
        param = spec.get(key)
        if param is None and not prefix and key == "expand":
            param = _EXPAND
        if param is None:
            raise InvalidRequestError(
                f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )
        result[key] = param.spec.clean(name, value)
    for key, param in spec.items():
        if param.required and result.get(key) is None:
            name = f"{prefix}[{key}]" if prefix else key
            raise InvalidRequestError(
                f"Missing required param: {name}.", code="parameter_missing", param=name
            )
    return result


_EXPAND = Param(StrList(max_items=20))

LIST_PARAMS: dict[str, Param] = {
    "limit": Param(Int(1, 100)),
    "starting_after": Param(Str(nullable=False)),
    "ending_before": Param(Str(nullable=False)),
}
"""Paging parameters every list endpoint takes."""
