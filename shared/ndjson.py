"""Newline-delimited JSON answers for the layers' large reads (``Accept: application/x-ndjson``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litestar.response import Stream

from shared.canonical import encode_lines

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Request

__all__ = ("NDJSON", "NDJSON_CHUNK", "ndjson", "wants_ndjson")

NDJSON = "application/x-ndjson"
NDJSON_CHUNK = 100
"""Records per body chunk of an NDJSON answer: one ASGI message per record cost more than the record."""


def wants_ndjson(request: Request[Any, Any, Any]) -> bool:
    """The caller asked for NDJSON."""
    return NDJSON in request.headers.get("accept", "")


def ndjson(
    records: Sequence[Any] | AsyncIterator[Sequence[Any]], headers: dict[str, str] | None = None
) -> Stream:
    """``records`` (a list, or batches as they are produced) as newline-delimited JSON. The content type is
    set as a header: the route's own, JSON, would otherwise win over the stream's."""
    batches = _chunks(records) if isinstance(records, Sequence) else records

    async def lines() -> AsyncIterator[bytes]:
        async for batch in batches:
            if batch:
                yield encode_lines(batch)

    return Stream(lines(), headers={"content-type": NDJSON, **(headers or {})})


async def _chunks(records: Sequence[Any]) -> AsyncIterator[Sequence[Any]]:
    for start in range(0, len(records), NDJSON_CHUNK):
        yield records[start : start + NDJSON_CHUNK]
