"""OAuth 2.0 at ``/services/oauth2/token`` (client credentials and the JWT bearer grant) and the sessions it opens.

- **Client credentials:** ``grant_type=client_credentials`` with ``client_id`` and ``client_secret`` in the
  form, or as HTTP Basic. An unknown client answers ``invalid_client_id``, a wrong secret ``invalid_client``.
- **JWT bearer:** ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…``. The assertion is
  verified with joserfc (Authlib's JOSE library; ``authlib.jose`` itself is deprecated) against the
  configured public key or certificate, RS256 only. Then ``iss`` must be the consumer key, ``sub`` the
  integration user, ``aud`` a login URL, and ``exp`` in the future but at most 3 minutes ahead.

The answer holds ``access_token``, ``signature``, ``scope``, ``instance_url``,
``id``, ``token_type`` and ``issued_at`` (epoch milliseconds, a string), no
``expires_in`` and no refresh token, as Salesforce answers. ``signature`` is
the Base64 HMAC-SHA256 of ``id`` + ``issued_at`` keyed with the client secret,
so a client can check that the identity URL came from the server.

An access token is ``{15-character org id}!{random}``, like Salesforce's
session ids. It stops working after ``session_timeout`` seconds without use
(Salesforce's sessions time out on inactivity), or when the control API
expires every session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from system_apis.connectors.salesforce.sandbox.errors import OAuthError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

__all__ = (
    "JWT_BEARER",
    "MAX_ASSERTION_LIFETIME",
    "Credentials",
    "Session",
    "SessionStore",
    "access_token_of",
    "check_client_credentials",
    "check_jwt_assertion",
    "load_public_key",
    "signature",
)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""The JWT bearer grant type (RFC 7523)."""
MAX_ASSERTION_LIFETIME = 180
"""A JWT assertion's ``exp`` is at most this many seconds ahead (Salesforce: 3 minutes)."""
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"  # noqa: S105 - an alphabet


def load_public_key(pem: bytes) -> RSAKey:
    """An RSA public key from a PEM public key or a PEM X.509 certificate (what a connected app is given).

    Raises:
        ValueError: it is neither, or not RSA.
    """
    if b"BEGIN CERTIFICATE" in pem:
        from cryptography import x509  # noqa: PLC0415 - certificates only
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

        public = x509.load_pem_x509_certificate(pem).public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        return RSAKey.import_key(pem)
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"not an RSA public key or certificate: {exc}") from exc


@dataclass(frozen=True)
class Credentials:
    """The connected app and the integration user the token endpoint knows."""

    client_id: str
    """The consumer key."""
    client_secret: str = field(repr=False)
    """The consumer secret."""
    username: str
    """The integration user (``sub`` of assertions)."""
    public_key: RSAKey = field(repr=False)
    """What assertions are verified with."""


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """Client id and secret of an HTTP Basic header, or ``None``."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def check_client_credentials(
    credentials: Credentials, form: Mapping[str, str], authorization: str | None
) -> None:
    """Accept a client credentials request, or refuse it as Salesforce does.

    Raises:
        OAuthError: ``invalid_client_id`` for an unknown client, ``invalid_client`` for a wrong secret.
    """
    basic = _basic(authorization)
    client_id, secret = (
        basic if basic is not None else (form.get("client_id", ""), form.get("client_secret", ""))
    )
    if not hmac.compare_digest(client_id.encode(), credentials.client_id.encode()):
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not hmac.compare_digest(secret.encode(), credentials.client_secret.encode()):
        raise OAuthError("invalid_client", "invalid client credentials")


def check_jwt_assertion(credentials: Credentials, assertion: str, audiences: Collection[str]) -> None:
    """Accept a JWT bearer assertion, or refuse it with Salesforce's ``invalid_grant`` descriptions.

    Raises:
        OAuthError: the signature, algorithm, issuer, subject, audience or expiry is wrong.
    """
    if not assertion:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        token = jwt.decode(assertion, credentials.public_key, algorithms=["RS256"])
    except JoseError as exc:
        raise OAuthError("invalid_grant", "invalid assertion") from exc
    claims = token.claims
    if claims.get("iss") != credentials.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    audience = claims.get("aud")
    named = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(aud, str) and aud.rstrip("/") in audiences for aud in named):
        raise OAuthError("invalid_grant", "audience is invalid")
    expires = claims.get("exp")
    now = time.time()
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= now:
        raise OAuthError("invalid_grant", "expired authorization code")
    if expires > now + MAX_ASSERTION_LIFETIME:
        raise OAuthError("invalid_grant", "invalid assertion: exp is more than 3 minutes ahead")
    if claims.get("sub") != credentials.username:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")


def signature(client_secret: str, identity_url: str, issued_at: str) -> str:
    """Salesforce's token ``signature``: Base64 of HMAC-SHA256(``id`` + ``issued_at``), keyed with the secret."""
    digest = hmac.new(client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def access_token_of(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` (or Salesforce's older ``OAuth …``) header, or ``None``."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    return value if scheme.lower() in ("bearer", "oauth") and value else None


@dataclass
class Session:
    """An open session (what an access token names)."""

    token: str = field(repr=False)
    """The access token."""
    grant: str
    """``client_credentials`` or ``jwt_bearer``, or ``outbound`` for a notification's ``SessionId``."""
    issued_at: int
    """Epoch milliseconds."""
    last_used: float
    """``time.monotonic()`` of its last use."""


class SessionStore:
    """Open sessions, each ending after ``timeout`` seconds without use."""

    def __init__(self, org_id: str, timeout: float) -> None:
        """No sessions; tokens start with the 15-character ``org_id``."""
        self._prefix = org_id[:15]
        self._timeout = timeout
        self._sessions: dict[str, Session] = {}

    def open(self, grant: str) -> Session:
        """A new session (timed-out ones are dropped first, so a client that never comes back costs nothing)."""
        now = time.monotonic()
        for token in [
            token for token, session in self._sessions.items() if now - session.last_used > self._timeout
        ]:
            del self._sessions[token]
        token = f"{self._prefix}!" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(96))
        session = Session(token=token, grant=grant, issued_at=int(time.time() * 1000), last_used=now)
        self._sessions[token] = session
        return session

    def use(self, token: str | None) -> Session | None:
        """The live session ``token`` names, its inactivity timer restarted; ``None`` when unknown or timed out."""
        if token is None:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_used > self._timeout:
            del self._sessions[token]
            return None
        session.last_used = now
        return session

    def expire_all(self) -> int:
        """End every session (the control API); how many there were."""
        count = len(self._sessions)
        self._sessions.clear()
        return count
