"""Stripe's JSON answers and the ``X-Sandbox: stripe`` header on every answer.

Bodies are JSON indented by two spaces, as Stripe sends them. Every answer,
errors and 404s included, carries ``X-Sandbox: stripe`` so nobody mistakes the
sandbox for Stripe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from litestar.types import Message, Scope

__all__ = ("SANDBOX_HEADER", "add_sandbox_header", "encode", "json_response")

SANDBOX_HEADER = ("X-Sandbox", "stripe")
"""Header on every answer: this is a sandbox shaped like Stripe, not Stripe."""
_HEADER_BYTES = (SANDBOX_HEADER[0].lower().encode(), SANDBOX_HEADER[1].encode())
_encoder = msgspec.json.Encoder()


def encode(body: Any) -> bytes:
    """``body`` as Stripe-style JSON (two-space indent, trailing newline)."""
    return msgspec.json.format(_encoder.encode(body), indent=2) + b"\n"


async def add_sandbox_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: add ``X-Sandbox`` to every response start, error answers and 404s included."""
    if message["type"] == "http.response.start":
        message["headers"] = [*message.get("headers", []), _HEADER_BYTES]


def json_response(
    content: bytes | Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """A JSON answer; ``content`` is encoded unless it is bytes already."""
    return Response(
        content=content if isinstance(content, bytes) else encode(content),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers or {}),
    )
