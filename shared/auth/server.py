"""The built-in OAuth 2.0 authorization server, built on authlib's server classes.

What it serves (``{issuer}`` is ``settings.auth.issuer``):

- ``POST /oauth/token``: the client-credentials grant (RFC 6749 §4.4) with
  ``client_secret_basic``, ``client_secret_post`` and ``private_key_jwt``
  (RFC 7523; each assertion's ``jti`` is kept in Redis until the assertion
  expires, so a replay is refused). Optional ``scope`` (a subset of the client's,
  default all of them), ``resource`` (RFC 8707) or ``audience`` (one of the
  client's audiences, default its first; anything else is ``invalid_target``),
  and ``on_behalf_of`` (internal clients only: the token then carries ``obo``).
  Errors are RFC 6749 JSON (``{"error": ..., "error_description": ...}``).
- ``POST /oauth/revoke`` (RFC 7009) and ``POST /oauth/introspect`` (RFC 7662),
  both client-authenticated. Revocation follows the contract in
  :mod:`shared.auth` (``REVOKED_SET`` and ``REVOKED_CHANNEL``); introspection
  verifies the token with the server's own keys and answers ``active: false``
  for expired, revoked, foreign or malformed tokens.
- ``GET /jwks.json``: the current and the previous signing key (public parts).
- ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata.

Tokens are RFC 9068 JWT access tokens (``typ: at+jwt``, a ``kid`` header)
from :class:`authlib.oauth2.rfc9068.JWTBearerTokenGenerator`, signed with the
current key of :class:`~shared.auth.keys.SigningKeys`, living
``settings.auth_server.token_lifetime`` seconds. Clients come from
``settings.clients`` (``[clients.<id>]`` in the TOML file).

Running it:

- as its own process: ``finsync serve auth`` runs :func:`create_app` (port
  ``settings.ports.auth``, 8100), built by :func:`shared.service.create_service`
  with ``resource_server=False``, so it has health, metrics, logs and Redis;
- inside another service: add ``auth_router(settings)`` to that service's route
  handlers. The host must keep an async Redis client on ``app.state.redis`` (any
  app built by ``create_service`` does) and be reachable at
  ``settings.auth.issuer``, because the metadata and the token ``iss`` name it.
  The routes carry ``opt={"public": True}``: they authenticate clients their own
  way, never with a bearer token. Keys are generated on first use when the keys
  directory is empty.

authlib is synchronous, so each call runs in a worker thread
(``anyio.to_thread``); the few Redis calls authlib's hooks need go back to the
event loop through ``anyio.from_thread``, on the app's own Redis client.
Plain ``http`` is refused (``insecure_transport``) except on loopback, as
authlib decides.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import time
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.from_thread
import anyio.to_thread
import msgspec
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientCredentialsGrant,
    InsecureTransportError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from litestar import MediaType, Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from redis.exceptions import RedisError

from shared.auth import REVOKED_CHANNEL, REVOKED_SET
from shared.auth.hashing import check_secret_hash, verify_secret
from shared.auth.keys import SigningKeys
from shared.errors import SettingsError, UpstreamUnavailableError
from shared.problems import problem_responses
from shared.service import create_service
from shared.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import redis.asyncio as aioredis
    from litestar import Litestar

    from shared.settings import ClientConfig, Settings

__all__ = (
    "AUTH_METHODS",
    "INTROSPECT_PATH",
    "JWKS_PATH",
    "METADATA_PATH",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "FinsyncAuthorizationServer",
    "InvalidTargetError",
    "OAuthClient",
    "auth_router",
    "create_app",
    "mint_token",
    "server_metadata",
)

logger = logging.getLogger("finsync.auth.server")

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
"""Token endpoint."""
REVOKE_PATH = "/oauth/revoke"
"""Revocation endpoint (RFC 7009)."""
INTROSPECT_PATH = "/oauth/introspect"
"""Introspection endpoint (RFC 7662)."""
JWKS_PATH = "/jwks.json"
"""Public signing keys."""
METADATA_PATH = "/.well-known/oauth-authorization-server"
"""Authorization server metadata (RFC 8414)."""
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
"""Client authentication methods, at every endpoint that authenticates clients."""
SIGNING_ALGORITHMS = ("RS256", "ES256")
"""Algorithms of the server's tokens, and of the client assertions it accepts."""
ASSERTION_PREFIX = "finsync:auth:assertion:"
"""Redis keys of seen ``private_key_jwt`` assertion ids (``jti``), kept until the assertion expires."""
ASSERTION_LEEWAY = 60
"""Seconds of clock skew allowed on a client assertion's ``exp``."""
_SINGLE_PARAMETERS = (
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "audience",
    "on_behalf_of",
    "token",
    "token_type_hint",
)
"""Parameters that must not be repeated (RFC 6749 §3.2); ``resource`` may be, per RFC 8707."""
_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def _safe(text: str) -> str:
    """Text allowed in an OAuth ``error_description`` (RFC 6749 §5.2), at most 200 characters."""
    return _UNSAFE.sub("?", text)[:200]


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the requested resource (audience) is not one this client may get tokens for."""

    error = "invalid_target"
    status_code = 400


class OAuthClient:
    """A registered client, as authlib's ``ClientMixin`` sees it."""

    def __init__(self, client_id: str, config: ClientConfig) -> None:
        """Wrap ``settings.clients[client_id]``; its public keys are loaded now.

        Raises:
            SettingsError: the secret hash is malformed, the keys cannot be read, or the
                client has no way to authenticate.
        """
        self.client_id = client_id
        """The client id."""
        self.config = config
        """Its configuration."""
        self.public_keys: KeySet | None = None
        """Keys for ``private_key_jwt``, from ``jwks`` or ``jwks_file``."""
        if config.secret_hash is not None:
            try:
                check_secret_hash(config.secret_hash)
            except ValueError as exc:
                key = f"clients.{client_id}.secret_hash"
                raise SettingsError(f"invalid setting '{key}': {exc}", key=key) from exc
        jwks: Any = config.jwks
        if config.jwks_file is not None:
            try:
                jwks = msgspec.json.decode(Path(config.jwks_file).read_bytes())
            except (OSError, msgspec.DecodeError) as exc:
                key = f"clients.{client_id}.jwks_file"
                raise SettingsError(
                    f"invalid setting '{key}': cannot read {config.jwks_file}: {exc}", key=key
                ) from exc
        if jwks is not None:
            try:
                self.public_keys = KeySet.import_key_set(jwks)
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                key = f"clients.{client_id}.jwks"
                raise SettingsError(f"invalid setting '{key}': not a JWKS: {exc}", key=key) from exc
        if config.secret_hash is None and not self.public_keys:
            key = f"clients.{client_id}"
            raise SettingsError(
                f"invalid setting '{key}': a client needs secret_hash, jwks or jwks_file", key=key
            )

    @property
    def internal(self) -> bool:
        """A finsync layer: may pass ``on_behalf_of``."""
        return self.config.internal

    def get_client_id(self) -> str:
        """The client id."""
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        """No redirects: client credentials only."""
        return

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The scope to grant: all of the client's when none is asked for; ``None`` when too much is."""
        if not scope:
            return " ".join(self.config.scopes)
        requested = list(dict.fromkeys(scope.split()))
        if not set(requested) <= set(self.config.scopes):
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """No redirects: client credentials only."""
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare against the stored scrypt hash, in constant time."""
        return self.config.secret_hash is not None and verify_secret(client_secret, self.config.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Secrets for ``client_secret_*``, public keys for ``private_key_jwt``; nothing else."""
        if method in ("client_secret_basic", "client_secret_post"):
            return self.config.secret_hash is not None
        if method == "private_key_jwt":
            return bool(self.public_keys)
        return False

    def check_response_type(self, response_type: str) -> bool:
        """No authorization endpoint."""
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        """Client credentials only."""
        return bool(grant_type == ClientCredentialsGrant.GRANT_TYPE)


@dataclass(frozen=True, slots=True)
class _Issue:
    """What one token request was granted, beyond what authlib passes to the generator."""

    audience: str
    on_behalf_of: str | None
    key: Key


_ISSUE: ContextVar[_Issue] = ContextVar("finsync_auth_issue")
"""Set around token generation (in the worker thread) for the generator's hooks."""
_REDIS: ContextVar[aioredis.Redis] = ContextVar("finsync_auth_redis")
"""The app's Redis client, for hooks that run in the worker thread."""


class _FormPayload(BasicOAuth2Payload):  # type: ignore[misc]
    """The form body; ``data`` holds each parameter's first value, ``datalist`` all of them."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        first: dict[str, str] = {}
        every: dict[str, list[str]] = {}
        for name, value in items:
            first.setdefault(name, value)
            every.setdefault(name, []).append(value)
        super().__init__(first)
        self._every = every

    @property
    def datalist(self) -> dict[str, list[str]]:
        """Every value of every parameter."""
        return self._every


class _FormRequest(OAuth2Request):  # type: ignore[misc]
    """An authlib request over a Litestar request's method, URL, headers and form."""

    def __init__(self, method: str, uri: str, headers: Any, payload: _FormPayload) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = payload
        self.issue: tuple[str, str | None] | None = None
        """Audience and on-behalf-of granted by :class:`_ClientCredentials`."""

    @property
    def form(self) -> dict[str, str]:
        """authlib reads client credentials and the token from here."""
        data: dict[str, str] = self.payload.data
        return data

    @property
    def args(self) -> dict[str, str]:
        """No query parameters are read."""
        return {}


def _redis_call(function: Callable[..., Any], *args: Any) -> Any:
    """Run an async Redis call of the app's client from the worker thread."""
    return anyio.from_thread.run(function, _REDIS.get(), *args)


class _TokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 tokens signed with the current key, for the audience the grant chose."""

    def __init__(self, issuer: str, lifetime: int) -> None:
        super().__init__(issuer=issuer, expires_generator=lifetime)

    @property
    def alg(self) -> str:
        """The algorithm of the key this token is signed with."""
        return str(_ISSUE.get().key.alg)

    @alg.setter
    def alg(self, _value: str) -> None:
        """Ignored: the key decides."""

    def get_jwks(self) -> KeySet:
        """Only the current key, so the ``kid`` header names it."""
        return KeySet([_ISSUE.get().key])

    def get_audiences(self, client: OAuthClient, user: object, scope: str) -> str:
        """The audience the grant chose."""
        return _ISSUE.get().audience

    def get_extra_claims(
        self, client: OAuthClient, grant_type: str, user: object, scope: str
    ) -> dict[str, Any]:
        """``obo`` when an internal client relays a call."""
        obo = _ISSUE.get().on_behalf_of
        return {"obo": obo} if obo else {}


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials, plus finsync's scope, audience and on-behalf-of rules."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def validate_token_request(self) -> None:
        """Authenticate the client (authlib), then check scope, audience and on-behalf-of."""
        _refuse_repeated(self.request)
        super().validate_token_request()
        client: OAuthClient = self.request.client
        if client.get_allowed_scope(self.request.payload.scope) is None:
            raise InvalidScopeError(
                description=_safe(
                    f"this client may ask only for: {' '.join(client.config.scopes) or 'no scope'}"
                )
            )
        datalist = self.request.payload.datalist
        targets = set(datalist.get("resource", [])) | set(datalist.get("audience", []))
        if len(targets) > 1:
            raise InvalidTargetError(description="ask for one audience per token")
        audiences = client.config.audiences
        audience = targets.pop() if targets else (audiences[0] if audiences else None)
        if audience is None or audience not in audiences:
            raise InvalidTargetError(
                description=_safe(
                    f"this client may get tokens only for: {' '.join(audiences) or 'no audience'}"
                )
            )
        on_behalf_of = self.request.payload.data.get("on_behalf_of")
        if on_behalf_of is not None:
            if not client.internal:
                raise InvalidRequestError(
                    description="only internal clients may act on behalf of another client"
                )
            if self.server.query_client(on_behalf_of) is None:
                raise InvalidRequestError(description="on_behalf_of must name a registered client")
        self.request.issue = (audience, on_behalf_of)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Issue the token, signed with the current key."""
        assert self.request.issue is not None
        audience, on_behalf_of = self.request.issue
        server: FinsyncAuthorizationServer = self.server
        reset = _ISSUE.set(_Issue(audience, on_behalf_of, server.keys.current()))
        try:
            response: tuple[int, dict[str, Any], list[tuple[str, str]]] = super().create_token_response()
        finally:
            _ISSUE.reset(reset)
        return response


def _refuse_repeated(request: _FormRequest) -> None:
    for name in _SINGLE_PARAMETERS:
        if len(request.payload.datalist.get(name, ())) > 1:
            raise InvalidRequestError(description=f"the parameter {name} is repeated")


class _PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` (RFC 7523): an assertion signed with a key of the client's JWKS."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, audiences: list[str]) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY)
        self._audiences = audiences

    def get_audiences(self) -> list[str]:
        """The issuer and this server's endpoint URLs."""
        return self._audiences

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet | None:
        """The client's configured JWKS."""
        return client.public_keys

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """True the first time an assertion id is seen; it is remembered in Redis until the assertion expires."""
        ttl = max(int(float(claims["exp"]) - time.time()) + ASSERTION_LEEWAY, 1)
        digest = hashlib.sha256(f"{claims['sub']}\x00{jti}".encode()).hexdigest()
        first = _redis_call(_set_once, f"{ASSERTION_PREFIX}{digest}", ttl)
        return bool(first)


async def _set_once(redis: aioredis.Redis, key: str, ttl: int) -> bool:
    return bool(await redis.set(key, b"1", nx=True, ex=ttl))


class _IssuedToken:
    """One of our tokens, as revocation and introspection see it."""

    def __init__(self, claims: dict[str, Any], *, revoked: bool = False) -> None:
        self.claims = claims
        self.revoked = revoked

    def check_client(self, client: OAuthClient) -> bool:
        """Issued to ``client``."""
        return bool(self.claims.get("client_id") == client.get_client_id())

    def is_expired(self) -> bool:
        """Past its ``exp``."""
        return float(self.claims["exp"]) <= time.time()

    def is_revoked(self) -> bool:
        """In the revoked set (known only to introspection)."""
        return self.revoked


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: a client revokes one of its own tokens."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> _IssuedToken | None:
        """One of our unexpired tokens; anything else is ignored (200, per RFC 7009 §2.2)."""
        server: FinsyncAuthorizationServer = self.server
        claims = server.read_token(token_string)
        return _IssuedToken(claims) if claims is not None else None

    def revoke_token(self, token: _IssuedToken, request: _FormRequest) -> None:
        """Add the ``jti`` to :data:`~shared.auth.REVOKED_SET` and announce it on the channel."""
        if token.is_expired():
            return  # nothing left to deny
        jti, exp = str(token.claims["jti"]), int(token.claims["exp"])
        _redis_call(_revoke, jti, exp)
        logger.info("token revoked", extra={"client_id": token.claims.get("client_id"), "jti": jti})


async def _revoke(redis: aioredis.Redis, jti: str, exp: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(REVOKED_SET, {jti: exp})
        pipe.zremrangebyscore(REVOKED_SET, "-inf", f"({time.time()}")
        pipe.publish(REVOKED_CHANNEL, f"{jti} {exp}")
        await pipe.execute()


async def _is_revoked(redis: aioredis.Redis, jti: str) -> bool:
    return await redis.zscore(REVOKED_SET, jti) is not None


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662: a client asks whether a token is active. Its own tokens, or any token for an internal client."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> _IssuedToken | None:
        """One of our unexpired tokens, with whether it was revoked."""
        server: FinsyncAuthorizationServer = self.server
        claims = server.read_token(token_string)
        if claims is None:
            return None
        return _IssuedToken(claims, revoked=bool(_redis_call(_is_revoked, str(claims["jti"]))))

    def check_permission(self, token: _IssuedToken, client: OAuthClient, request: _FormRequest) -> bool:
        """A client sees its own tokens; an internal client sees any."""
        return client.internal or token.check_client(client)

    def introspect_token(self, token: _IssuedToken) -> dict[str, Any]:
        """RFC 7662 §2.2 members, from the token's claims."""
        claims = token.claims
        payload = {"active": True, "token_type": "Bearer"}
        for name in ("client_id", "scope", "sub", "aud", "iss", "exp", "iat", "jti", "obo"):
            if name in claims:
                payload[name] = claims[name]
        return payload


class _TokenReader(JWTBearerTokenValidator):  # type: ignore[misc]
    """authlib's RFC 9068 validator over the server's own keys, for any audience."""

    def __init__(self, issuer: str, keys: SigningKeys) -> None:
        super().__init__(issuer=issuer, resource_server=None)
        self._keys = keys

    def get_jwks(self) -> KeySet:
        """The current and the previous key."""
        return self._keys.verification_set()


class FinsyncAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's ``AuthorizationServer`` over finsync settings, signing keys and Redis."""

    def __init__(self, settings: Settings, keys: SigningKeys | None = None) -> None:
        """Build the server; clients are checked and their keys loaded now.

        Raises:
            SettingsError: a client's configuration is unusable.
        """
        super().__init__(scopes_supported=None)  # scopes are checked per client
        self.settings = settings
        """The settings it was built from."""
        self.issuer = settings.auth.issuer.rstrip("/")
        """``iss`` of every token, and the base of every endpoint URL."""
        self.keys = keys or SigningKeys.from_settings(settings)
        """Signing keys."""
        self.clients = {
            client_id: OAuthClient(client_id, config) for client_id, config in settings.clients.items()
        }
        """Registered clients, by id."""
        self.generator = _TokenGenerator(self.issuer, settings.auth_server.token_lifetime)
        """RFC 9068 token generator."""
        self._reader = _TokenReader(self.issuer, self.keys)
        self.register_token_generator("default", self.generator)
        self.register_grant(_ClientCredentials)
        self.register_client_auth_method(
            "private_key_jwt",
            _PrivateKeyJWT(
                [self.issuer, *(self.issuer + path for path in (TOKEN_PATH, REVOKE_PATH, INTROSPECT_PATH))]
            ),
        )
        self.register_endpoint(_Revocation)
        self.register_endpoint(_Introspection)

    def query_client(self, client_id: str) -> OAuthClient | None:
        """The registered client with this id."""
        return self.clients.get(client_id) if isinstance(client_id, str) else None

    def save_token(self, token: dict[str, Any], request: _FormRequest) -> None:
        """Tokens are self-contained JWTs: nothing is stored, the issue is logged (never the token)."""
        audience, obo = request.issue or ("", None)
        logger.info(
            "access token issued",
            extra={
                "client_id": request.client.get_client_id(),
                "audience": audience,
                "scope": token.get("scope", ""),
                "on_behalf_of": obo,
                "auth_method": request.auth_method,
            },
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system."""

    def create_oauth2_request(self, request: _FormRequest) -> _FormRequest:
        """Requests are built by the route handlers before authlib sees them."""
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        """Hand the answer back to the route handler unchanged."""
        return status, body, headers

    def read_token(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this server issued and that has not expired, else ``None``.

        The signature is checked against the current and previous keys, and ``iss``
        and ``typ`` against this server, by authlib's RFC 9068 validator.
        """
        try:
            claims = self._reader.authenticate_token(token)
            claims.validate()
        except (InvalidTokenError, JoseError, ValueError, TypeError, KeyError):
            return None
        result: dict[str, Any] = dict(claims)
        if not isinstance(result.get("jti"), str) or not isinstance(result.get("exp"), int | float):
            return None
        return result

    def issue(
        self,
        client_id: str,
        *,
        audience: str | None = None,
        scope: str | None = None,
        on_behalf_of: str | None = None,
    ) -> str:
        """Sign a token for a registered client without a token request (tests, tools).

        The client's scope and audience rules apply as at the token endpoint, but it
        does not authenticate. Returns the access token.

        Raises:
            ValueError: unknown client, or a scope or audience it may not have.
        """
        client = self.query_client(client_id)
        if client is None:
            raise ValueError(f"no client {client_id!r}")
        granted = client.get_allowed_scope(scope)
        if granted is None:
            raise ValueError(f"client {client_id!r} may not have scope {scope!r}")
        audience = audience or (client.config.audiences[0] if client.config.audiences else None)
        if audience is None or audience not in client.config.audiences:
            raise ValueError(f"client {client_id!r} may not have audience {audience!r}")
        reset = _ISSUE.set(_Issue(audience, on_behalf_of, self.keys.current()))
        try:
            token: dict[str, Any] = self.generator(
                grant_type=ClientCredentialsGrant.GRANT_TYPE,
                client=client,
                scope=granted,
                include_refresh_token=False,
            )
        finally:
            _ISSUE.reset(reset)
        return str(token["access_token"])


def server_metadata(server: FinsyncAuthorizationServer) -> dict[str, Any]:
    """The RFC 8414 metadata document."""
    issuer = server.issuer
    methods = list(AUTH_METHODS)
    algorithms = list(SIGNING_ALGORITHMS)
    scopes = sorted({scope for client in server.clients.values() for scope in client.config.scopes})
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}{TOKEN_PATH}",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "revocation_endpoint": f"{issuer}{REVOKE_PATH}",
        "introspection_endpoint": f"{issuer}{INTROSPECT_PATH}",
        "grant_types_supported": [ClientCredentialsGrant.GRANT_TYPE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
        "scopes_supported": scopes,
        "access_token_signing_alg_values_supported": algorithms,
    }


class TokenAnswer(msgspec.Struct, kw_only=True):
    """A successful token response (RFC 6749 §5.1)."""

    access_token: str
    """An RFC 9068 JWT."""
    token_type: str
    """Always ``Bearer``."""
    expires_in: int
    """Seconds the token lives."""
    scope: str | None = None
    """Granted scopes, space-separated."""


class OAuthErrorAnswer(msgspec.Struct, kw_only=True):
    """An error response of the OAuth endpoints (RFC 6749 §5.2)."""

    error: str
    """``invalid_request``, ``invalid_client``, ``invalid_scope``, ``invalid_target``, ``unsupported_grant_type``, ..."""
    error_description: str | None = None
    """What went wrong."""


class IntrospectionAnswer(msgspec.Struct, kw_only=True):
    """RFC 7662 §2.2; the claims are present only when ``active``."""

    active: bool
    """The token is ours, unexpired, unrevoked, and the caller may see it."""
    token_type: str | None = None
    """``Bearer``."""
    client_id: str | None = None
    """Client the token was issued to."""
    scope: str | None = None
    """Granted scopes."""
    sub: str | None = None
    """Subject (the client)."""
    aud: str | None = None
    """Audience."""
    iss: str | None = None
    """Issuer."""
    exp: int | None = None
    """Expiry, unix seconds."""
    iat: int | None = None
    """Issue time, unix seconds."""
    jti: str | None = None
    """Token id."""
    obo: str | None = None
    """The original caller, when an internal client relayed a call."""


_PUBLIC = {"public": True}
"""Route option the resource-server middleware reads: no bearer token on these routes."""


def _oauth_errors(*statuses: int) -> dict[int, ResponseSpec]:
    specs = {
        status: ResponseSpec(
            data_container=OAuthErrorAnswer,
            description="OAuth error (RFC 6749 §5.2)",
            generate_examples=False,
        )
        for status in statuses
    }
    return {**problem_responses(503), **specs}


async def _call_authlib(
    request: Request[Any, Any, Any],
    run: Callable[[_FormRequest], tuple[int, Any, list[tuple[str, str]]] | None],
) -> Response[Any]:
    """Hand the request to authlib in a worker thread and turn its answer into a response."""
    form = await request.form()
    payload = _FormPayload([(name, value) for name, value in form.multi_items() if isinstance(value, str)])
    try:
        oauth_request = _FormRequest(request.method, str(request.url), request.headers, payload)
    except InsecureTransportError as error:
        return _answer(*error())
    reset = _REDIS.set(request.app.state.redis)
    try:
        result = await anyio.to_thread.run_sync(run, oauth_request)
    except RedisError as exc:
        raise UpstreamUnavailableError("the token store (Redis) is unavailable") from exc
    finally:
        _REDIS.reset(reset)
    if result is None:
        return _answer(200, {"active": False}, [])
    return _answer(*result)


def _answer(status: int, body: Any, headers: list[tuple[str, str]]) -> Response[Any]:
    extra = {name: value for name, value in headers if name.lower() != "content-type"}
    extra.setdefault("Cache-Control", "no-store")
    return Response(body, status_code=status, headers=extra, media_type=MediaType.JSON)


def _checked_basic_auth(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """A Basic header authlib cannot decode would raise inside it; answer ``invalid_client`` instead."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        body = {"error": "invalid_client", "error_description": "malformed Basic credentials"}
        return _answer(401, body, [("WWW-Authenticate", 'Basic error="invalid_client"')])
    return None


def auth_router(settings: Settings, *, keys: SigningKeys | None = None) -> Router:
    """The authorization server's routes, for :func:`create_app` or any host service.

    Args:
        settings: Settings; ``auth.issuer``, ``auth_server`` and ``clients`` are read.
        keys: Signing keys; default those of ``settings.auth_server``.

    Raises:
        SettingsError: a client's configuration is unusable.
    """
    server = FinsyncAuthorizationServer(settings, keys)

    @post(
        TOKEN_PATH,
        status_code=200,
        opt=_PUBLIC,
        security=[],
        operation_id="IssueToken",
        summary="Issue an access token (client credentials)",
        tags=["oauth"],
        responses=_oauth_errors(400, 401),
    )
    async def token(request: Request[Any, Any, Any]) -> Response[TokenAnswer]:
        """Form parameters: ``grant_type=client_credentials``, optional ``scope``, ``resource`` or
        ``audience``, ``on_behalf_of`` (internal clients), and the client's credentials (Basic
        header, ``client_id``/``client_secret``, or ``client_assertion_type``/``client_assertion``).
        """
        refused = _checked_basic_auth(request)
        return refused or await _call_authlib(request, server.create_token_response)

    @post(
        REVOKE_PATH,
        status_code=200,
        opt=_PUBLIC,
        security=[],
        operation_id="RevokeToken",
        summary="Revoke an access token (RFC 7009)",
        tags=["oauth"],
        responses=_oauth_errors(400, 401),
    )
    async def revoke(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Form parameters: ``token``, optional ``token_type_hint``, and the client's credentials.
        A token that is unknown, malformed or already expired is answered 200 too (RFC 7009 §2.2).
        """
        refused = _checked_basic_auth(request)
        return refused or await _call_authlib(
            request, lambda oauth: server.create_endpoint_response(_Revocation.ENDPOINT_NAME, oauth)
        )

    @post(
        INTROSPECT_PATH,
        status_code=200,
        opt=_PUBLIC,
        security=[],
        operation_id="IntrospectToken",
        summary="Introspect an access token (RFC 7662)",
        tags=["oauth"],
        responses=_oauth_errors(400, 401),
    )
    async def introspect(request: Request[Any, Any, Any]) -> Response[IntrospectionAnswer]:
        """Form parameters: ``token``, optional ``token_type_hint``, and the client's credentials."""
        refused = _checked_basic_auth(request)
        return refused or await _call_authlib(
            request, lambda oauth: server.create_endpoint_response(_Introspection.ENDPOINT_NAME, oauth)
        )

    @get(
        JWKS_PATH,
        opt=_PUBLIC,
        security=[],
        operation_id="GetJwks",
        summary="The public signing keys: current and previous",
        tags=["oauth"],
        responses=problem_responses(),
    )
    async def jwks() -> Response[dict[str, Any]]:
        """RFC 7517 key set; each ``kid`` is the key's RFC 7638 thumbprint."""
        document = await anyio.to_thread.run_sync(server.keys.public_jwks)
        return Response(document, headers={"Cache-Control": "public, max-age=60"}, media_type=MediaType.JSON)

    @get(
        METADATA_PATH,
        opt=_PUBLIC,
        security=[],
        operation_id="GetAuthorizationServerMetadata",
        summary="Authorization server metadata (RFC 8414)",
        tags=["oauth"],
        responses=problem_responses(),
        sync_to_thread=False,
    )
    def metadata() -> dict[str, Any]:
        """Issuer, endpoints, grant types, client authentication methods, algorithms and scopes."""
        return server_metadata(server)

    return Router(path="/", route_handlers=[token, revoke, introspect, jwks, metadata])


def create_app(settings: Settings | None = None) -> Litestar:
    """The authorization server as its own service (``finsync serve auth``).

    Settings are loaded from the environment only when none are passed. The first
    signing key is generated at start-up when the keys directory is empty.
    """
    settings = settings or load_settings()
    keys = SigningKeys.from_settings(settings)

    @asynccontextmanager
    async def signing_keys(_app: Litestar) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(keys.ensure)
        yield

    return create_service(
        name="auth",
        title="finsync authorization server",
        description=(
            "OAuth 2.0 client credentials with RFC 9068 JWT access tokens, RFC 7523 private_key_jwt, "
            "RFC 7009 revocation, RFC 7662 introspection and RFC 8414 metadata."
        ),
        settings=settings,
        route_handlers=[auth_router(settings, keys=keys)],
        resources=[signing_keys],
        resource_server=False,
    )


def mint_token(
    settings: Settings,
    client_id: str,
    *,
    audience: str | None = None,
    scope: str | None = None,
    on_behalf_of: str | None = None,
) -> str:
    """Sign an access token exactly as the token endpoint would, without HTTP or client authentication.

    For tests and tools that share the keys directory: point a resource server at
    ``{keys_dir}/jwks.json`` (``auth.jwks_file``) or at a running server's
    ``/jwks.json``. Generates the first key when the directory is empty.

    Raises:
        ValueError: unknown client, or a scope or audience it may not have.
    """
    return FinsyncAuthorizationServer(settings).issue(
        client_id, audience=audience, scope=scope, on_behalf_of=on_behalf_of
    )
