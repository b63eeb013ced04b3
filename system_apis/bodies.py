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


async def strict_payload(request: Request[Any, Any, Any], type_: type[T], what: str) -> T:
    """The request body decoded again, strictly (Litestar's own decoding, which documents the body,
    takes JSON numbers as decimals too); 400 naming the path of the first bad value."""
    try:
        return decode(await request.body(), type_)
    except msgspec.ValidationError as exc:
        raise BadRequestError(f"the {what} is not valid: {exc}") from None
