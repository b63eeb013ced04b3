"""A test issuer: its own RSA key and JWKS file, minting RFC 9068 tokens the way any IdP would."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from schemathesis.core.parameters import ParameterLocation

if TYPE_CHECKING:
    from pathlib import Path

    from schemathesis import Case

ISSUER = "https://idp.test"


class TestIssuer:
    """Signs tokens with a key whose public half is in ``jwks_file``."""

    __test__ = False

    def __init__(self, directory: Path, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "alg": "RS256", "use": "sig"})
        self.jwks_file = directory / "jwks.json"
        self.jwks_file.write_text(json.dumps(KeySet([self.key]).as_dict(private=False)))

    def claims(self, audience: str, scope: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": "partner-1",
            "client_id": "partner-1",
            "scope": scope,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def token(
        self, audience: str, scope: str, *, header: dict[str, Any] | None = None, **overrides: Any
    ) -> str:
        return jwt.encode(
            {"alg": "RS256", "kid": self.key.kid, "typ": "at+jwt", **(header or {})},
            self.claims(audience, scope, **overrides),
            self.key,
        )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """A token with ``alg`` in its header and no signature."""
    header = b64(json.dumps({"alg": alg, "typ": "at+jwt", "kid": "test-key-1"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def call_system_case(case: Case, issuer: TestIssuer, scopes: str, source: str) -> None:
    """Run one schemathesis case against the system layer as a partner with ``scopes``, pointed at ``source``
    (generated source ids would only ever meet 404), with a fresh ``Idempotency-Key`` on a POST that sets none."""
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta is not None else None
    if case.path_parameters and "source" in case.path_parameters and (path is None or path.mode.is_positive):
        # A path made invalid on purpose keeps its invalid source: the case expects a refusal.
        case.path_parameters["source"] = source
    token = issuer.token("finsync-system", scopes, exp=int(time.time()) + 600)
    headers = {"Authorization": f"Bearer {token}"}
    if case.method == "POST" and not any(name.lower() == "idempotency-key" for name in case.headers or {}):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(headers=headers)
