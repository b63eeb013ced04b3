"""The one user's password file and its tokens (``/token/authenticate``, ``refresh``, ``logout``, ``validate``).

Tokens are opaque random strings held in memory; each lives
``token_lifetime`` seconds of wall-clock time, because ``expiresAt`` is an
epoch timestamp the client compares with its own clock. Refreshing a token
replaces it: the old value stops working at once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from shared.errors import SettingsError

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = (
    "TOKEN_SCHEME",
    "Token",
    "TokenStore",
    "basic_credentials",
    "password_file",
    "read_password",
    "token_value",
)

TOKEN_SCHEME = "AnaplanAuthToken"  # noqa: S105 - a scheme name, not a secret
"""The ``Authorization`` scheme of every call after authentication."""


def password_file(settings: Settings) -> Path:
    """The user's password file: ``planning_sandbox.password_file``, else ``{data_dir}/planning-sandbox/password``.

    The default file is generated (``secrets.token_urlsafe``, mode 0600) when it
    does not exist; a configured file must exist.

    Raises:
        SettingsError: the configured file does not exist.
    """
    sandbox = settings.planning_sandbox
    path = sandbox.password_path(Path(settings.data_dir).resolve()).resolve()
    if sandbox.password_file:
        if not path.is_file():
            key = "planning_sandbox.password_file"
            raise SettingsError(f"invalid setting '{key}': {path} does not exist", key=key)
        return path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once do not overwrite each other's password.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(descriptor, "w", encoding="utf-8") as sink:
            sink.write(secrets.token_urlsafe(24) + "\n")
    return path


def read_password(path: Path) -> str:
    """The password in ``path``, without its line end.

    Raises:
        SettingsError: the file cannot be read, or is empty.
    """
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the planning sandbox's password file {path}: {exc}") from exc
    if not password:
        raise SettingsError(f"the planning sandbox's password file {path} is empty")
    return password


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """User and password of an HTTP Basic ``Authorization`` header, or ``None`` when it is not one."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def token_value(authorization: str | None) -> str | None:
    """The token of an ``AnaplanAuthToken <value>`` header, or ``None`` when it is not one."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    return value if scheme == TOKEN_SCHEME and value else None


class Token(msgspec.Struct, kw_only=True):
    """An issued token."""

    token_id: str
    """Its id (a UUID)."""
    value: str
    """What the client sends after ``AnaplanAuthToken``."""
    expires_at: float
    """Epoch seconds when it stops working."""
    refresh_token_id: str
    """Id of its refresh token (a UUID; refreshing uses the token itself, as Anaplan does)."""

    def info(self) -> dict[str, Any]:
        """The ``tokenInfo`` object of an authenticate or refresh answer."""
        return {
            "tokenId": self.token_id,
            "tokenValue": self.value,
            "expiresAt": int(self.expires_at * 1000),
            "refreshTokenId": self.refresh_token_id,
        }


class TokenStore:
    """The one user's credentials and live tokens."""

    def __init__(self, user: str, password: str, lifetime: float) -> None:
        """Tokens for ``user``, each living ``lifetime`` seconds."""
        self.user = user
        """The one login."""
        self._password = password
        self._lifetime = lifetime
        self._tokens: dict[str, Token] = {}

    def _issue(self) -> Token:
        """A new live token (expired ones are dropped first)."""
        # Expired tokens are otherwise dropped only when presented; a client that never comes back would keep
        # its tokens in memory for good.
        now = time.time()
        for value in [value for value, token in self._tokens.items() if token.expires_at <= now]:
            del self._tokens[value]
        token = Token(
            token_id=str(uuid.uuid4()),
            value=secrets.token_urlsafe(48),
            expires_at=now + self._lifetime,
            refresh_token_id=str(uuid.uuid4()),
        )
        self._tokens[token.value] = token
        return token

    def authenticate(self, user: str, password: str) -> Token | None:
        """A new token when ``user`` and ``password`` are right (compared in constant time), else ``None``."""
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        password_ok = hmac.compare_digest(password.encode(), self._password.encode())
        return self._issue() if user_ok and password_ok else None

    def valid(self, value: str | None) -> Token | None:
        """The live token ``value`` names, or ``None`` when it is unknown or expired (expired ones are dropped)."""
        if value is None:
            return None
        token = self._tokens.get(value)
        if token is None:
            return None
        if token.expires_at <= time.time():
            del self._tokens[value]
            return None
        return token

    def refresh(self, value: str | None) -> Token | None:
        """A new token in place of the live token ``value``, or ``None`` when that one is not live."""
        if self.valid(value) is None:
            return None
        assert value is not None
        del self._tokens[value]
        return self._issue()

    def logout(self, value: str | None) -> bool:
        """End the live token ``value``; False when it was not live."""
        if self.valid(value) is None:
            return False
        assert value is not None
        del self._tokens[value]
        return True

    def expire_all(self) -> int:
        """Make every token expire now (the control API's ``tokens/expire``); how many there were."""
        count = len(self._tokens)
        self._tokens.clear()
        return count
