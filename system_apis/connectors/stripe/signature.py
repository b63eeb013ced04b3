"""Verifying ``Stripe-Signature``, the header Stripe signs each webhook delivery with.

The header is ``t=<unix>,v1=<hex>[,v1=<hex>...]`` (other schemes, such as the
test-mode ``v0``, are ignored). Each ``v1`` is HMAC-SHA256 of
``"{t}.{raw body}"`` under an endpoint secret (``whsec_…``); a delivery is
authentic when any ``v1`` matches under any configured secret (several while a
secret is rotated), every comparison in constant time. A ``t`` further than
the tolerance from now is a replay of an old delivery, and refused even when
its signature matches.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("MAX_HEADER", "SignatureError", "verify")

MAX_HEADER: Final = 4096
"""Longest header looked at; anything longer is refused unparsed."""


class SignatureError(Exception):
    """The delivery is not authentic, or is a replay; ``reason`` says which."""

    def __init__(self, reason: Literal["signature", "replay"], detail: str) -> None:
        super().__init__(detail)
        self.reason: Literal["signature", "replay"] = reason
        """``signature`` (missing, malformed, or matching no secret) or ``replay`` (too old)."""
        self.detail = detail
        """What was wrong, for the log and the answer (never a secret)."""


def _parse(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.encode("ascii", "replace"))
    if timestamp is None or not signatures:
        raise SignatureError("signature", "Stripe-Signature has no t= timestamp or no v1= signature")
    return timestamp, signatures


def verify(header: str | None, body: bytes, secrets: Sequence[str], *, tolerance: int, now: float) -> int:
    """Check a delivery's ``Stripe-Signature``; answers its timestamp.

    Args:
        header: the ``Stripe-Signature`` header, or ``None`` when the request had none.
        body: the raw body, byte for byte as received.
        secrets: every secret a signature may be made with.
        tolerance: seconds ``t`` may be from ``now``.
        now: the current Unix time.

    Raises:
        SignatureError: no header, a malformed one, no ``v1`` matching any secret, or ``t`` out of tolerance.
    """
    if not header or len(header) > MAX_HEADER:
        raise SignatureError("signature", "no Stripe-Signature header, or one too long")
    timestamp, signatures = _parse(header)
    signed = f"{timestamp}.".encode() + body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, sha256).hexdigest().encode()
        for signature in signatures:
            # Every pair is compared, so the time taken says nothing about which one came close.
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureError("signature", "no v1 signature matches a configured webhook secret")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            "replay", f"the signature's timestamp is {int(now - timestamp)}s from now, over {tolerance}s"
        )
    return timestamp
