"""The list envelope every layer answers: ``{"items": [...], "next_cursor": "..." | null}``.

Cursors are opaque to callers: url-safe base64 of the sort key of the last item
returned. A cursor that does not decode is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from shared.errors import BadRequestError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("CursorParam", "LimitParam", "Page", "decode_cursor", "encode_cursor", "paginate")

T = TypeVar("T")
P = TypeVar("P", bound="Page[Any]")

MAX_LIMIT = 500
DEFAULT_LIMIT = 100

LimitParam = Annotated[
    int, Parameter(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
]
CursorParam = Annotated[
    str | None,
    Parameter(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next_cursor` of the previous page.",
    ),
]


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """One page of a list."""

    items: list[T]
    """The items of this page, in the list's order."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


def encode_cursor(key: str) -> str:
    """Opaque cursor for the sort key ``key``."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key inside ``cursor``.

    Raises:
        BadRequestError: the cursor was not made by :func:`encode_cursor`.
    """
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequestError("cursor is not valid; pass a next_cursor unchanged", field="cursor") from exc


def paginate(
    items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None, page_type: type[P]
) -> P:
    """Page through ``items`` sorted by the unique string ``key``.

    ``page_type`` is the list's own subclass of :class:`Page` (``SourcePage``), so
    each list has a named schema in the OpenAPI spec.
    """
    ordered = sorted(items, key=key)
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:limit]
    next_cursor = encode_cursor(key(page[-1])) if len(ordered) > limit else None
    return page_type(items=page, next_cursor=next_cursor)
