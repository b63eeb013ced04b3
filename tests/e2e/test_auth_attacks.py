"""The attack table: each case starts from a token shown to work, then changes one thing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from joserfc.jwk import RSAKey

from shared.auth import REVOKED_CHANNEL, REVOKED_SET
from system_apis.app import create_app as create_system_app
from tests.support import in_process
from tests.tokens import TestIssuer, b64, unsigned

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from litestar import Litestar

    from shared.settings import Settings

AUDIENCE = "finsync-system"
SCOPE = "sources:read"


@pytest.fixture
def issuer(tmp_path: Path) -> TestIssuer:
    return TestIssuer(tmp_path)


@pytest.fixture
def system_app(make_settings: Callable[..., Settings], issuer: TestIssuer) -> Litestar:
    return create_system_app(
        make_settings(auth={"issuer": issuer.issuer, "jwks_file": str(issuer.jwks_file)})
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_refused(response: httpx.Response, status: int, error: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    if error is not None:
        assert f'error="{error}"' in challenge


async def test_the_starting_token_works(system_app: Litestar, issuer: TestIssuer) -> None:
    async with in_process(system_app) as client:
        response = await client.get("/v1/sources", headers=bearer(issuer.token(AUDIENCE, SCOPE)))
    assert response.status_code == 200, response.text


async def test_public_routes_need_no_token(system_app: Litestar) -> None:
    async with in_process(system_app) as client:
        for path in (
            "/health/live",
            "/health/ready",
            "/metrics",
            "/schema/openapi.json",
            "/problems/not-found",
        ):
            assert (await client.get(path)).status_code == 200, path


def _forged_hs256(issuer: TestIssuer) -> str:
    """HS256 with the RSA public key as the shared secret: the classic key confusion."""
    public_pem = issuer.key.as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": issuer.key.kid}).encode())
    payload = b64(json.dumps(issuer.claims(AUDIENCE, SCOPE)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _tampered(issuer: TestIssuer) -> str:
    header, payload, signature = issuer.token(AUDIENCE, "flows:read").split(".")
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = SCOPE
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def _other_key(issuer: TestIssuer) -> str:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger", "alg": "RS256"})
    from joserfc import jwt

    return jwt.encode({"alg": "RS256", "kid": "stranger"}, issuer.claims(AUDIENCE, SCOPE), stranger)


CASES: dict[str, tuple[Callable[[TestIssuer], str | None], int, str | None]] = {
    "no token": (lambda _: None, 401, None),
    "garbage": (lambda _: "not-a-jwt", 401, "invalid_token"),
    "alg none": (lambda i: unsigned(i.claims(AUDIENCE, SCOPE)), 401, "invalid_token"),
    "hs256 with the rsa public key": (_forged_hs256, 401, "invalid_token"),
    "expired": (
        lambda i: i.token(AUDIENCE, SCOPE, exp=int(time.time()) - 120, iat=int(time.time()) - 600),
        401,
        "invalid_token",
    ),
    "nbf in the future": (
        lambda i: i.token(AUDIENCE, SCOPE, nbf=int(time.time()) + 600),
        401,
        "invalid_token",
    ),
    "wrong iss": (lambda i: i.token(AUDIENCE, SCOPE, iss="https://evil.test"), 401, "invalid_token"),
    "wrong aud": (lambda i: i.token("someone-else", SCOPE), 401, "invalid_token"),
    "token for another layer": (lambda i: i.token("finsync-experience", SCOPE), 401, "invalid_token"),
    "missing scope": (lambda i: i.token(AUDIENCE, "flows:read"), 403, "insufficient_scope"),
    "unknown kid": (_other_key, 401, "invalid_token"),
    "tampered payload": (_tampered, 401, "invalid_token"),
    "no exp": (lambda i: i.token(AUDIENCE, SCOPE, exp=None), 401, "invalid_token"),
    "no aud": (lambda i: i.token(AUDIENCE, SCOPE, aud=None), 401, "invalid_token"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_attack_is_refused(system_app: Litestar, issuer: TestIssuer, case: str) -> None:
    make, status, error = CASES[case]
    token = make(issuer)
    headers = {} if token is None else bearer(token)
    async with in_process(system_app) as client:
        assert_refused(await client.get("/v1/sources", headers=headers), status, error)


async def test_a_revoked_token_is_refused_without_a_redis_call_per_request(
    system_app: Litestar, issuer: TestIssuer
) -> None:
    claims = issuer.claims(AUDIENCE, SCOPE)
    token = issuer.token(AUDIENCE, SCOPE, jti=claims["jti"])
    async with in_process(system_app) as client:
        assert (await client.get("/v1/sources", headers=bearer(token))).status_code == 200
        redis = system_app.state.redis
        await redis.zadd(REVOKED_SET, {claims["jti"]: claims["exp"]})
        await redis.publish(REVOKED_CHANNEL, f"{claims['jti']} {claims['exp']}")
        for _ in range(50):
            response = await client.get("/v1/sources", headers=bearer(token))
            if response.status_code == 401:
                break
            await asyncio.sleep(0.05)
    assert_refused(response, 401, "invalid_token")
    assert "revoked" in response.json()["detail"]


async def test_revocations_made_before_start_are_loaded(
    make_settings: Callable[..., Settings], issuer: TestIssuer, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    claims = issuer.claims(AUDIENCE, SCOPE)
    token = issuer.token(AUDIENCE, SCOPE, jti=claims["jti"])
    client = aioredis.Redis.from_url(redis_url)
    await client.zadd(REVOKED_SET, {claims["jti"]: claims["exp"]})
    await client.aclose()
    app = create_system_app(make_settings(auth={"issuer": issuer.issuer, "jwks_file": str(issuer.jwks_file)}))
    async with in_process(app) as http:
        assert_refused(await http.get("/v1/sources", headers=bearer(token)), 401, "invalid_token")
