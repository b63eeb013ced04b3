"""Newline-delimited JSON answers for the system layer's large reads (``Accept: application/x-ndjson``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.response import Stream

from shared.canonical import encode

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


def ndjson(records: list[Any], headers: dict[str, str] | None = None) -> Stream:
    """``records`` as newline-delimited JSON (the content type is set as a header: the route's own,
    JSON, would otherwise win over the stream's)."""

    async def lines() -> AsyncIterator[bytes]:
        for start in range(0, len(records), NDJSON_CHUNK):
            yield b"".join(encode(record) + b"\n" for record in records[start : start + NDJSON_CHUNK])

    return Stream(lines(), headers={"content-type": NDJSON, **(headers or {})})
