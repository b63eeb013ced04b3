"""JSON for the canonical model: msgspec's encoding, and a decoding that takes money only as strings.

msgspec writes a ``Decimal`` as a JSON string, but reads one from a JSON number
as well (``1.5`` decodes to ``Decimal("1.5")``), and no option turns that off.
A float on the wire is a rounding bug waiting to happen, so
:func:`decode` and :class:`Decoder` are strict: every ``Decimal`` in the target
type, however deeply nested, must be a JSON string matching
:data:`~shared.canonical.money.DECIMAL_PATTERN` (no exponent, no ``NaN``).

How: beside the real type, a mirror type is built once per type, with each
``Decimal`` replaced by a pattern-checked ``str``; a payload must decode as both.
So a plain ``msgspec.json.decode(data, type=JournalEntryCreate)`` (and a Litestar
``data: JSONBody[...]`` parameter) still takes numbers: wherever money comes in
from outside, decode it here.

Failures raise ``msgspec.ValidationError`` (or ``msgspec.DecodeError`` for bad
JSON), naming the path (``$.lines[3].debit``); the caller decides what they mean:
a bad request at the API's edge, a broken contract in a client of the layer below.
"""

from __future__ import annotations

import types
import typing
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, cast

import msgspec
from msgspec import Meta

from shared.canonical.money import DECIMAL_PATTERN, MAX_DECIMAL_LENGTH

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("Decoder", "decode", "encode", "encode_lines")

T = TypeVar("T")

_DECIMAL_TEXT = Annotated[str, Meta(pattern=DECIMAL_PATTERN, max_length=MAX_DECIMAL_LENGTH)]
_CONTAINERS = (list, tuple, set, frozenset, dict)
_HINT = 'decimals are JSON strings such as "12.50", never JSON numbers'

_encoder = msgspec.json.Encoder()
_mirrors: dict[type[msgspec.Struct], Any] = {}
_decoders: dict[Any, Decoder[Any]] = {}


def encode(value: object) -> bytes:
    """JSON of a canonical value (or anything msgspec encodes); money comes out as decimal strings."""
    return _encoder.encode(value)


def encode_lines(values: Iterable[object]) -> bytes:
    """Newline-delimited JSON of canonical values, each line ending in ``\n``."""
    return _encoder.encode_lines(values)


class Decoder(Generic[T]):
    """A JSON decoder for one type that accepts each ``Decimal`` only as a decimal string.

    Build one per type and keep it (or call :func:`decode`, which keeps them).
    """

    __slots__ = ("_check", "_decode", "type")

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        """The type decoded to."""
        self._decode = msgspec.json.Decoder(type_).decode
        mirror = _mirror(type_)
        self._check = None if mirror is type_ else msgspec.json.Decoder(mirror).decode

    def decode(self, data: bytes | str) -> T:
        """Decode ``data``, refusing a Decimal written as a JSON number.

        Raises:
            msgspec.ValidationError: the JSON does not fit the type.
            msgspec.DecodeError: the data is not JSON.
        """
        value = self._decode(data)
        if self._check is not None:
            # The real decode passed, so the mirror can only fail where a Decimal is not a decimal string.
            try:
                self._check(data)
            except msgspec.ValidationError as exc:
                raise msgspec.ValidationError(f"{exc}; {_HINT}") from None
        return value


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode JSON ``data`` into ``type_``, money only from strings; the decoder is built once per type.

    Raises:
        msgspec.ValidationError: the JSON does not fit the type.
        msgspec.DecodeError: the data is not JSON.
    """
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders.setdefault(type_, Decoder(type_))
    return cast("T", decoder.decode(data))


def _mirror(annotation: Any) -> Any:
    """``annotation`` with every ``Decimal`` replaced by a pattern-checked ``str``; itself when it has none."""
    if annotation is Decimal:
        return _DECIMAL_TEXT
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return _mirror_struct(annotation)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = typing.get_args(annotation)
        if inner is Decimal:
            # Constraints written for a Decimal (a description, examples) mean nothing to the text.
            return _DECIMAL_TEXT
        mirrored = _mirror(inner)
        return annotation if mirrored is inner else Annotated[(mirrored, *metadata)]
    if origin is typing.Union or origin is types.UnionType or origin in _CONTAINERS:
        return _mirror_generic(annotation, origin)
    return annotation


def _mirror_generic(annotation: Any, origin: Any) -> Any:
    """A union or a container, with its arguments mirrored."""
    args = typing.get_args(annotation)
    mirrored = tuple(arg if arg is Ellipsis else _mirror(arg) for arg in args)
    if all(new is old for new, old in zip(mirrored, args, strict=True)):
        return annotation
    if origin in _CONTAINERS:
        return origin[mirrored]
    return typing.Union[mirrored]  # noqa: UP007  # built at run time from a tuple


def _mirror_struct(cls: type[msgspec.Struct]) -> Any:
    if cls in _mirrors:
        return _mirrors[cls]
    fields = msgspec.structs.fields(cls)
    mirrored = [(field, _mirror(field.type)) for field in fields]
    if all(new is field.type for field, new in mirrored):
        _mirrors[cls] = cls
        return cls
    config = cls.__struct_config__
    mirror = msgspec.defstruct(
        f"{cls.__name__}Wire",
        # Defaults only mark a field optional here; the real type supplies the values.
        [(field.name, new) if field.required else (field.name, new, None) for field, new in mirrored],
        kw_only=True,
        forbid_unknown_fields=config.forbid_unknown_fields,
        rename={field.name: field.encode_name for field in fields},
        tag=config.tag,
        tag_field=config.tag_field,
        array_like=config.array_like,
    )
    _mirrors[cls] = mirror
    return mirror
