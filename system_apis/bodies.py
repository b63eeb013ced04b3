"""Request bodies decoded strictly: money only as decimal strings, never JSON numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from shared.canonical import decode
from shared.errors import BadRequestError

if TYPE_CHECKING:
    from litestar import Request

__all__ = ("strict_payload",)

T = TypeVar("T")


def _whole(value: Any) -> Any:
    """JSON numbers with no fraction as integers (``3.0`` is ``3``), everywhere in ``value``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    return value


async def strict_payload(
    request: Request[Any, Any, Any], type_: type[T], what: str, default: T | None = None
) -> T:
    """The request body decoded again, strictly (Litestar's own decoding, which documents the body,
    takes JSON numbers as decimals too); 400 naming the path of the first bad value.

    Money is taken only as decimal strings (:func:`shared.canonical.decode`). A whole JSON number fills
    an integer field: JSON Schema's ``integer`` is any number without a fraction (``3.0``), which msgspec's
    strict decoding alone refuses. An empty body, or ``null``, is ``default`` when there is one.
    """
    raw = await request.body()
    try:
        value = msgspec.json.decode(raw) if raw.strip() else None
        if value is None and default is not None:
            return default
        return decode(msgspec.json.encode(_whole(value)), type_)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise BadRequestError(f"the {what} is not valid: {exc}") from None
