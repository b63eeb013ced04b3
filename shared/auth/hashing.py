"""Client secrets: generated at random, stored only as scrypt hashes, compared in constant time.

The stored form is ``scrypt$N$r$p$salt$hash``: the scrypt cost parameters, then
the salt and the derived key in unpadded url-safe base64. ``finsync auth
hash-secret`` prints it; a client's ``secret_hash`` holds it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = (
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "check_secret_hash",
    "generate_secret",
    "hash_secret",
    "verify_secret",
)

SCRYPT_N = 2**14
"""CPU and memory cost (16 MiB with ``r = 8``); about 40 ms a hash on the reference machine."""
SCRYPT_R = 8
"""Block size."""
SCRYPT_P = 1
"""Parallelism."""
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_MEMORY = 256 * 1024 * 1024
"""Refuse parameters that would need more memory than this (``128 * r * N * p`` bytes)."""
_PREFIX = "scrypt"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def generate_secret() -> str:
    """A new client secret: 32 random bytes, url-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Hash ``secret`` with scrypt and a fresh random salt, in the ``scrypt$N$r$p$salt$hash`` form."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES, maxmem=_MAX_MEMORY
    )
    return f"{_PREFIX}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError("expected scrypt$N$r$p$salt$hash")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error) as exc:
        raise ValueError(
            "expected scrypt$N$r$p$salt$hash with integer costs and base64 salt and hash"
        ) from exc
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * r * n * p > _MAX_MEMORY:
        raise ValueError("scrypt costs out of range (N a power of two, r and p positive, at most 256 MiB)")
    if not salt or not key:
        raise ValueError("not a scrypt hash: empty salt or hash")
    return n, r, p, salt, key


def check_secret_hash(encoded: str) -> None:
    """Raise ``ValueError`` when ``encoded`` is not a well-formed ``scrypt$...`` hash (checked at start-up)."""
    _parse(encoded)


def verify_secret(secret: str, encoded: str) -> bool:
    """True when ``secret`` hashes to ``encoded``; the comparison takes constant time.

    A malformed ``encoded`` never matches.
    """
    try:
        n, r, p, salt, expected = _parse(encoded)
    except ValueError:
        return False
    actual = hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=_MAX_MEMORY
    )
    return hmac.compare_digest(actual, expected)
