"""The built-in authorization server: real keys, a real Redis, in process and as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis.asyncio as aioredis
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet, RSAKey

from shared.auth import REVOKED_CHANNEL, REVOKED_SET
from shared.auth.hashing import hash_secret
from shared.auth.keys import SigningKeys
from shared.auth.local import ensure_local_secrets, write_stack_config
from shared.auth.server import ASSERTION_PREFIX, auth_router, create_app, mint_token
from shared.cli import main
from shared.settings import Settings
from tests.support import REPO, free_port, processes_with, ready, wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from litestar import Litestar

ISSUER = "http://127.0.0.1:8100"
TOKEN_URL = f"{ISSUER}/oauth/token"
PARTNER = ("partner", "partner-secret")
PROCESS = ("process", "process-secret")
OTHER = ("other", "other-secret")
_HASHES: dict[str, str] = {}


def _hash(secret: str) -> str:
    if secret not in _HASHES:
        _HASHES[secret] = hash_secret(secret)
    return _HASHES[secret]


@pytest.fixture(scope="module")
def client_key() -> RSAKey:
    """The private key of the ``keyed`` client (private_key_jwt)."""
    return RSAKey.generate_key(2048, parameters={"kid": "keyed-1", "alg": "RS256"}, private=True)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], client_key: RSAKey) -> Settings:
    return make_settings(
        auth={"issuer": ISSUER},
        auth_server={"token_lifetime": 120},
        clients={
            "partner": {
                "secret_hash": _hash(PARTNER[1]),
                "scopes": ["erp:read", "flows:read", "workbench:read"],
                "audiences": ["finsync-experience", "finsync-process"],
            },
            "other": {
                "secret_hash": _hash(OTHER[1]),
                "scopes": ["flows:read"],
                "audiences": ["finsync-process"],
            },
            "keyed": {
                "jwks": KeySet([client_key]).as_dict(private=False),
                "scopes": ["flows:read"],
                "audiences": ["finsync-process"],
            },
            "process": {
                "secret_hash": _hash(PROCESS[1]),
                "scopes": ["erp:read", "flows:read"],
                "audiences": ["finsync-system"],
                "internal": True,
            },
        },
    )


@contextlib.asynccontextmanager
async def serving(app: Litestar, base_url: str = ISSUER) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client over ASGI to ``app``, its lifespan held by one task from start to end.

    pytest-asyncio sets a fixture up and tears it down in different tasks, and
    Litestar's lifespan must be left in the task that entered it.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    holder = asyncio.create_task(hold())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({holder, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if holder.done():
        waiter.cancel()
        holder.result()  # raises what failed the start-up
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
            yield client
    finally:
        stop.set()
        await holder


@pytest.fixture
async def auth(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The server in process, behind its issuer URL (loopback, so plain http is allowed)."""
    async with serving(create_app(settings)) as client:
        yield client


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def request_token(
    auth: httpx.AsyncClient, credentials: tuple[str, str] | None = PARTNER, **form: str
) -> httpx.Response:
    return await auth.post(
        "/oauth/token", data={"grant_type": "client_credentials", **form}, auth=credentials
    )


async def issued(auth: httpx.AsyncClient, credentials: tuple[str, str] = PARTNER, **form: str) -> str:
    response = await request_token(auth, credentials, **form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def verify(auth: httpx.AsyncClient, token: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a token with joserfc against the server's published JWKS, as a resource server would."""
    keys = KeySet.import_key_set((await auth.get("/jwks.json")).json())
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(
        leeway=5,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        sub={"essential": True},
        client_id={"essential": True},
        scope={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.header), dict(decoded.claims)


def assertion(key: RSAKey, client_id: str = "keyed", audience: str = TOKEN_URL, **claims: Any) -> str:
    return str(private_key_jwt_sign(key, client_id, audience, alg="RS256", claims=claims or None))


def assert_oauth_error(response: httpx.Response, status: int | tuple[int, ...], error: str) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert set(body) <= {"error", "error_description", "error_uri"}


# --- issuing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
async def test_each_client_authentication_method_issues_a_verifiable_token(
    auth: httpx.AsyncClient, settings: Settings, client_key: RSAKey, method: str
) -> None:
    form = {"grant_type": "client_credentials"}
    credentials: tuple[str, str] | None = None
    client_id = "partner"
    if method == "client_secret_basic":
        credentials = PARTNER
    elif method == "client_secret_post":
        form.update(client_id=PARTNER[0], client_secret=PARTNER[1])
    else:
        client_id = "keyed"
        form.update(
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion=assertion(client_key),
        )
    before = int(time.time())
    response = await auth.post("/oauth/token", data=form, auth=credentials)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    audience = settings.clients[client_id].audiences[0]
    header, claims = await verify(auth, body["access_token"], audience)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert header["kid"] == SigningKeys.from_settings(settings).current().kid
    assert claims["iss"] == ISSUER
    assert claims["aud"] == audience
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == " ".join(settings.clients[client_id].scopes) == body["scope"]
    assert claims["exp"] - claims["iat"] == 120
    assert before <= claims["iat"] <= int(time.time())
    assert "obo" not in claims


async def test_every_token_has_its_own_jti(auth: httpx.AsyncClient) -> None:
    tokens = [await issued(auth) for _ in range(3)]
    jtis = {(await verify(auth, token, "finsync-experience"))[1]["jti"] for token in tokens}
    assert len(jtis) == 3


async def test_es256_keys_sign_es256_tokens(
    make_settings: Callable[..., Settings], settings: Settings
) -> None:
    es = make_settings(
        auth={"issuer": ISSUER}, auth_server={"algorithm": "ES256"}, clients=msgspec_clients(settings)
    )
    async with serving(create_app(es)) as client:
        header, _claims = await verify(client, await issued(client), "finsync-experience")
    assert header["alg"] == "ES256"


def msgspec_clients(settings: Settings) -> dict[str, Any]:
    import msgspec

    return {client_id: msgspec.to_builtins(config) for client_id, config in settings.clients.items()}


# --- client authentication --------------------------------------------------------------------------


async def test_a_wrong_secret_is_401_invalid_client(auth: httpx.AsyncClient) -> None:
    response = await request_token(auth, ("partner", "not-the-secret"))
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")
    posted = await auth.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "partner", "client_secret": "nope"},
    )
    assert_oauth_error(posted, 401, "invalid_client")


async def test_an_unknown_client_is_invalid_client(auth: httpx.AsyncClient) -> None:
    assert_oauth_error(await request_token(auth, ("nobody", "x")), 401, "invalid_client")
    posted = await auth.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    )
    assert_oauth_error(posted, (400, 401), "invalid_client")


async def test_no_credentials_and_garbage_credentials_are_invalid_client(auth: httpx.AsyncClient) -> None:
    assert_oauth_error(await request_token(auth, None), 401, "invalid_client")
    garbage = await auth.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": "Basic //79/A=="},  # not UTF-8
    )
    assert_oauth_error(garbage, 401, "invalid_client")


async def test_a_client_without_a_secret_cannot_use_one(auth: httpx.AsyncClient) -> None:
    assert_oauth_error(await request_token(auth, ("keyed", "guess")), 401, "invalid_client")


async def test_other_grant_types_are_unsupported(auth: httpx.AsyncClient) -> None:
    response = await auth.post("/oauth/token", data={"grant_type": "password"}, auth=PARTNER)
    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_repeated_parameters_are_invalid_request(auth: httpx.AsyncClient) -> None:
    response = await auth.post(
        "/oauth/token", content="grant_type=client_credentials&scope=erp:read&scope=flows:read",
        headers={"content-type": "application/x-www-form-urlencoded"}, auth=PARTNER,
    )  # fmt: skip
    assert_oauth_error(response, 400, "invalid_request")


async def test_plain_http_is_refused_off_loopback(settings: Settings) -> None:
    async with serving(create_app(settings), "http://auth.example") as client:
        response = await request_token(client)
    assert_oauth_error(response, 400, "insecure_transport")


# --- private_key_jwt ------------------------------------------------------------------------------------


async def test_a_replayed_client_assertion_is_refused(
    auth: httpx.AsyncClient, client_key: RSAKey, redis: aioredis.Redis
) -> None:
    signed = assertion(client_key, jti="replayed-assertion-id")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }
    first = await auth.post("/oauth/token", data=form)
    assert first.status_code == 200, first.text
    again = await auth.post("/oauth/token", data=form)
    assert_oauth_error(again, (400, 401), "invalid_client")
    assert "used before" in again.json()["error_description"]
    # The seen jti is in Redis, for as long as the assertion could be replayed.
    keys = [key async for key in redis.scan_iter(match=f"{ASSERTION_PREFIX}*")]
    assert keys
    ttls = [await redis.ttl(key) for key in keys]
    assert all(0 < ttl <= 3600 + 60 for ttl in ttls)


async def test_a_fresh_assertion_with_a_new_jti_is_accepted_again(
    auth: httpx.AsyncClient, client_key: RSAKey
) -> None:
    for _ in range(2):
        response = await auth.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion(client_key),
            },
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", ["wrong-key", "wrong-audience", "expired", "no-jti", "other-client"])
async def test_a_bad_client_assertion_is_invalid_client(
    auth: httpx.AsyncClient, client_key: RSAKey, case: str
) -> None:
    if case == "wrong-key":
        impostor = RSAKey.generate_key(2048, parameters={"kid": "keyed-1", "alg": "RS256"}, private=True)
        signed = assertion(impostor)
    elif case == "wrong-audience":
        signed = assertion(client_key, audience="https://elsewhere.example/token")
    elif case == "expired":
        past = int(time.time()) - 3600
        signed = str(
            private_key_jwt_sign(
                client_key, "keyed", TOKEN_URL, alg="RS256", issued_at=past - 60, expires_at=past
            )
        )
    elif case == "no-jti":
        now = int(time.time())
        claims = {"iss": "keyed", "sub": "keyed", "aud": TOKEN_URL, "iat": now, "exp": now + 60}
        signed = jwt.encode({"alg": "RS256", "kid": "keyed-1"}, claims, client_key)
    else:
        signed = assertion(client_key, client_id="partner")  # partner registered no keys
    response = await auth.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        },
    )
    assert_oauth_error(response, (400, 401), "invalid_client")


# --- scope, audience, on-behalf-of -------------------------------------------------------------------------


async def test_scope_defaults_to_all_and_may_be_narrowed(auth: httpx.AsyncClient) -> None:
    everything = await verify(auth, await issued(auth), "finsync-experience")
    assert everything[1]["scope"] == "erp:read flows:read workbench:read"
    narrowed = await verify(auth, await issued(auth, scope="flows:read"), "finsync-experience")
    assert narrowed[1]["scope"] == "flows:read"


@pytest.mark.parametrize("scope", ["erp:write", "flows:read admin", "nonsense"])
async def test_a_scope_outside_the_clients_is_invalid_scope(auth: httpx.AsyncClient, scope: str) -> None:
    assert_oauth_error(await request_token(auth, scope=scope), 400, "invalid_scope")


async def test_audience_defaults_to_the_first_and_may_be_chosen(auth: httpx.AsyncClient) -> None:
    assert (await verify(auth, await issued(auth), "finsync-experience"))[1]["aud"] == "finsync-experience"
    by_resource = await issued(auth, resource="finsync-process")
    assert (await verify(auth, by_resource, "finsync-process"))[1]["aud"] == "finsync-process"
    by_audience = await issued(auth, audience="finsync-process")
    assert (await verify(auth, by_audience, "finsync-process"))[1]["aud"] == "finsync-process"


@pytest.mark.parametrize(
    "form",
    [
        {"resource": "finsync-system"},
        {"audience": "https://somewhere.example"},
        {"resource": "finsync-process", "audience": "finsync-experience"},
    ],
    ids=["not-the-clients", "unknown", "two-at-once"],
)
async def test_an_audience_outside_the_clients_is_invalid_target(
    auth: httpx.AsyncClient, form: dict[str, str]
) -> None:
    assert_oauth_error(await request_token(auth, **form), 400, "invalid_target")


async def test_an_internal_client_may_act_on_behalf_of_a_caller(auth: httpx.AsyncClient) -> None:
    token = await issued(auth, PROCESS, on_behalf_of="partner")
    _header, claims = await verify(auth, token, "finsync-system")
    assert claims["obo"] == "partner"
    assert claims["client_id"] == claims["sub"] == "process"


async def test_only_internal_clients_may_act_on_behalf_of_another(auth: httpx.AsyncClient) -> None:
    response = await request_token(auth, PARTNER, on_behalf_of="other")
    assert_oauth_error(response, 400, "invalid_request")
    assert "internal" in response.json()["error_description"]


async def test_on_behalf_of_must_name_a_registered_client(auth: httpx.AsyncClient) -> None:
    assert_oauth_error(await request_token(auth, PROCESS, on_behalf_of="nobody"), 400, "invalid_request")


# --- keys and rotation -------------------------------------------------------------------------------------


async def test_after_rotation_the_jwks_has_both_keys_and_old_tokens_still_verify(
    auth: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_token = await issued(auth)
    old_kid = (await verify(auth, old_token, "finsync-experience"))[0]["kid"]
    assert [key["kid"] for key in (await auth.get("/jwks.json")).json()["keys"]] == [old_kid]

    monkeypatch.setenv("FINSYNC_DATA_DIR", settings.data_dir)
    assert main(["auth", "rotate-keys"]) == 0

    jwks = (await auth.get("/jwks.json")).json()
    new_kid = jwks["keys"][0]["kid"]
    assert [key["kid"] for key in jwks["keys"]] == [new_kid, old_kid]
    assert all("d" not in key for key in jwks["keys"])
    new_token = await issued(auth)
    assert (await verify(auth, new_token, "finsync-experience"))[0]["kid"] == new_kid
    assert (await verify(auth, old_token, "finsync-experience"))[0]["kid"] == old_kid
    introspected = await auth.post("/oauth/introspect", data={"token": old_token}, auth=PARTNER)
    assert introspected.json()["active"] is True

    # A second rotation drops the oldest key: its tokens no longer verify.
    assert main(["auth", "rotate-keys"]) == 0
    with pytest.raises(InvalidKeyIdError):
        await verify(auth, old_token, "finsync-experience")
    introspected = await auth.post("/oauth/introspect", data={"token": old_token}, auth=PARTNER)
    assert introspected.json() == {"active": False}


async def test_a_forged_signature_does_not_verify(auth: httpx.AsyncClient) -> None:
    token = await issued(auth)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(BadSignatureError):
        await verify(auth, forged, "finsync-experience")


# --- metadata --------------------------------------------------------------------------------------


async def test_the_metadata_document(auth: httpx.AsyncClient) -> None:
    response = await auth.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert metadata["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert metadata["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert metadata["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    assert metadata["token_endpoint_auth_methods_supported"] == methods
    assert metadata["revocation_endpoint_auth_methods_supported"] == methods
    assert metadata["introspection_endpoint_auth_methods_supported"] == methods
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert metadata["scopes_supported"] == ["erp:read", "flows:read", "workbench:read"]
    # Everything the server serves is reachable where the metadata says.
    for name in ("jwks_uri",):
        assert (await auth.get(metadata[name])).status_code == 200


async def test_the_service_basics_are_there(auth: httpx.AsyncClient) -> None:
    assert (await auth.get("/health/ready")).json()["checks"] == {"redis": "up"}
    spec = (await auth.get("/schema/openapi.json")).json()
    assert {"/oauth/token", "/oauth/revoke", "/oauth/introspect", "/jwks.json"} <= set(spec["paths"])
    assert "finsync_http_request_duration_seconds" in (await auth.get("/metrics")).text
    assert "post" in spec["paths"]["/oauth/token"]
    assert "200" in spec["paths"]["/oauth/token"]["post"]["responses"]


# --- revocation and introspection ---------------------------------------------------------------------


async def test_introspecting_a_valid_token_reports_its_claims(auth: httpx.AsyncClient) -> None:
    token = await issued(auth, scope="flows:read")
    _header, claims = await verify(auth, token, "finsync-experience")
    response = await auth.post("/oauth/introspect", data={"token": token}, auth=PARTNER)
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    for name in ("client_id", "scope", "sub", "aud", "iss", "exp", "iat", "jti"):
        assert body[name] == claims[name]


async def test_introspection_needs_client_authentication(auth: httpx.AsyncClient) -> None:
    token = await issued(auth)
    response = await auth.post("/oauth/introspect", data={"token": token})
    assert_oauth_error(response, 401, "invalid_client")
    wrong = await auth.post("/oauth/introspect", data={"token": token}, auth=("partner", "wrong"))
    assert_oauth_error(wrong, 401, "invalid_client")


async def test_introspection_of_garbage_expired_and_foreign_tokens_is_inactive(
    auth: httpx.AsyncClient, settings: Settings
) -> None:
    key = SigningKeys.from_settings(settings).current()
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": "finsync-experience", "sub": "partner", "client_id": "partner",
        "scope": "flows:read", "jti": "expired-1", "iat": now - 600, "exp": now - 300,
    }  # fmt: skip
    expired = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key)
    foreign_key = RSAKey.generate_key(2048, parameters={"kid": key.kid, "alg": "RS256"}, private=True)
    foreign = jwt.encode(
        {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, {**claims, "exp": now + 300}, foreign_key
    )
    other_issuer = jwt.encode(
        {"alg": "RS256", "typ": "at+jwt", "kid": key.kid},
        {**claims, "exp": now + 300, "iss": "https://idp.example"},
        key,
    )
    for token in ("garbage", "a.b.c", "", expired, foreign, other_issuer):
        response = await auth.post("/oauth/introspect", data={"token": token}, auth=PARTNER)
        if token == "":
            assert response.status_code in (200, 400)
            continue
        assert response.status_code == 200, (token, response.text)
        assert response.json() == {"active": False}, token


async def test_a_client_sees_only_its_own_tokens_unless_internal(auth: httpx.AsyncClient) -> None:
    token = await issued(auth)
    response = await auth.post("/oauth/introspect", data={"token": token}, auth=OTHER)
    assert response.json() == {"active": False}
    internal = await auth.post("/oauth/introspect", data={"token": token}, auth=PROCESS)
    assert internal.json()["active"] is True
    assert internal.json()["client_id"] == "partner"


async def test_revocation_follows_the_contract_and_introspection_agrees(
    auth: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    token = await issued(auth)
    _header, claims = await verify(auth, token, "finsync-experience")
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(REVOKED_CHANNEL)
    try:
        response = await auth.post(
            "/oauth/revoke", data={"token": token, "token_type_hint": "access_token"}, auth=PARTNER
        )
        assert response.status_code == 200
        assert response.json() == {}
        assert await redis.zscore(REVOKED_SET, claims["jti"]) == claims["exp"]
        message = await _next_message(pubsub)
        assert message == f"{claims['jti']} {claims['exp']}"
    finally:
        await pubsub.aclose()
    introspected = await auth.post("/oauth/introspect", data={"token": token}, auth=PARTNER)
    assert introspected.json() == {"active": False}


async def _next_message(pubsub: Any) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = await pubsub.get_message(timeout=1.0)
        if message is not None:
            data = message["data"]
            return data.decode() if isinstance(data, bytes) else str(data)
        await asyncio.sleep(0)
    raise AssertionError("no revocation was published")


async def test_a_client_cannot_revoke_another_clients_token(
    auth: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    token = await issued(auth)
    _header, claims = await verify(auth, token, "finsync-experience")
    response = await auth.post("/oauth/revoke", data={"token": token}, auth=OTHER)
    assert_oauth_error(response, 400, "invalid_grant")
    assert await redis.zscore(REVOKED_SET, claims["jti"]) is None
    introspected = await auth.post("/oauth/introspect", data={"token": token}, auth=PARTNER)
    assert introspected.json()["active"] is True


async def test_revoking_garbage_is_a_quiet_200_and_needs_credentials(auth: httpx.AsyncClient) -> None:
    response = await auth.post("/oauth/revoke", data={"token": "not-a-token"}, auth=PARTNER)
    assert response.status_code == 200
    assert_oauth_error(await auth.post("/oauth/revoke", data={"token": "x"}), 401, "invalid_client")
    assert_oauth_error(await auth.post("/oauth/revoke", data={}, auth=PARTNER), 400, "invalid_request")


# --- mounting and minting ---------------------------------------------------------------------------------


async def test_the_router_mounts_in_another_service_and_mint_token_matches(settings: Settings) -> None:
    from shared.service import create_service

    host = create_service(
        name="host",
        title="host",
        description="a service that also serves the authorization server",
        settings=settings,
        route_handlers=[auth_router(settings)],
    )
    async with serving(host) as client:
        token = await issued(client, scope="flows:read")
        _header, claims = await verify(client, token, "finsync-experience")
        assert claims["client_id"] == "partner"
        minted = mint_token(settings, "process", on_behalf_of="partner")
        _header, minted_claims = await verify(client, minted, "finsync-system")
    assert minted_claims["obo"] == "partner"
    assert minted_claims["scope"] == "erp:read flows:read"
    with pytest.raises(ValueError, match="audience"):
        mint_token(settings, "partner", audience="finsync-system")


# --- real processes --------------------------------------------------------------------------------------


def test_finsync_serve_auth_and_finsync_token_as_real_processes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secrets = ensure_local_secrets(data)
    config, _overridden = write_stack_config(Settings(data_dir=str(data)), data, secrets)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    env.update(
        FINSYNC_DATA_DIR=str(data),
        FINSYNC_CONFIG=str(config),
        FINSYNC_PORTS__AUTH=str(port),
        FINSYNC_AUTH__ISSUER=url,
    )
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", "auth"], env=env, stdout=log, stderr=log, cwd=REPO
        )
    try:
        assert wait_until(lambda: ready(url) or server.poll() is not None, 60)
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        result = subprocess.run(
            [sys.executable, "-m", "shared.cli", "token", "--scope", "flows:read workbench:read"],
            env=env, capture_output=True, timeout=60, check=False, cwd=REPO,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        token = result.stdout.decode().strip()
        keys = KeySet.import_key_set(httpx.get(f"{url}/jwks.json", timeout=5).json())
        claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
        assert claims["iss"] == url
        assert claims["aud"] == "finsync-experience"
        assert claims["client_id"] == "demo"
        assert claims["scope"] == "flows:read workbench:read"
        posted = subprocess.run(
            [sys.executable, "-m", "shared.cli", "token", "--client-id", "process",
             "--auth-method", "client_secret_post", "--audience", "finsync-system"],
            env=env, capture_output=True, timeout=60, check=False, cwd=REPO,
        )  # fmt: skip
        assert posted.returncode == 0, posted.stderr
        assert jwt.decode(posted.stdout.decode().strip(), keys).claims["aud"] == "finsync-system"
        refused = subprocess.run(
            [sys.executable, "-m", "shared.cli", "token", "--client-secret", "wrong"],
            env=env, capture_output=True, timeout=60, check=False, cwd=REPO,
        )  # fmt: skip
        assert refused.returncode == 1
        assert b"invalid_client" in refused.stderr
        assert refused.stdout == b""
        metadata = httpx.get(f"{url}/.well-known/oauth-authorization-server", timeout=5).json()
        assert metadata["token_endpoint"] == f"{url}/oauth/token"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    assert wait_until(lambda: not processes_with(str(data)), 15), processes_with(str(data))
