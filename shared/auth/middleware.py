"""Bearer-token authentication, per-operation scopes and rate limiting, in one route middleware.

It runs after routing, so it knows the operation: handlers declare their scopes
with :func:`requires` (which also documents them in OpenAPI), and public
operations (health, problem pages, the schema, metrics when configured, and the
source push routes, which authenticate the push itself: a Stripe signature, a
Salesforce listener's path token) carry ``opt={"public": True}`` or live under
``/schema``. The verified
:class:`~shared.auth.Principal` is kept in ``scope["auth"]`` for handlers,
idempotency and the client for the layer below.

Answers: 401 with ``WWW-Authenticate: Bearer ...`` when the token is missing or
invalid, 403 with ``error="insufficient_scope"`` when a scope is missing (RFC
6750), both problem+json; 429 from the rate limiter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from litestar.enums import ScopeType

from shared.errors import AuthenticationError, PermissionDeniedError
from shared.idempotency import idempotent
from shared.observability.middleware import RESPONSE_HEADERS

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from shared.auth import Principal
    from shared.auth.resource import TokenVerifier

__all__ = ("AUTH_ERRORS", "AccessControl", "AuthMiddleware", "Limiter", "public", "requires")

SECURITY_SCHEME = "oauth2"
AUTH_ERRORS = (401, 403, 429)
"""Statuses every protected operation documents."""


class _Decision(Protocol):
    headers: list[tuple[bytes, bytes]]


class Limiter(Protocol):
    """What the middleware needs of the rate limiter."""

    async def check(self, *, key: str, tier: str, method: str, route: str) -> _Decision:
        """Count one request; raise :class:`~shared.errors.RateLimitedError` when over the limit."""
        ...


def requires(*scopes: str, idempotency: Literal["required", "optional"] | None = None) -> dict[str, Any]:
    """Route-decorator arguments for an operation that needs ``scopes``: ``@get(..., **requires("flows:read"))``.

    Args:
        scopes: Every scope the caller's token must hold.
        idempotency: For effectful writes: whether an ``Idempotency-Key`` is required or optional
            (see :mod:`shared.idempotency`).
    """
    arguments: dict[str, Any] = {"opt": {"scopes": scopes}, "security": [{SECURITY_SCHEME: list(scopes)}]}
    if idempotency is not None:
        keyed = idempotent(idempotency)
        arguments["opt"] |= keyed["opt"]
        arguments["middleware"] = keyed["middleware"]
    return arguments


def public() -> dict[str, Any]:
    """Route-decorator arguments for an operation anyone may call."""
    return {"opt": {"public": True}, "security": []}


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else ""
    return None


@dataclass
class AccessControl:
    """What one service checks on each call; shared by the middleware of every route."""

    verifier: TokenVerifier | None
    """Token verification; ``None`` when auth is off (every caller is anonymous)."""
    tiers: dict[str, str]
    """Rate-limit tier of each known client."""
    anonymous_tier: str
    """Tier of callers without a token."""
    public_metrics: bool
    """``/metrics`` needs no token."""
    rate_limited: bool = False
    """Count calls against the tiers (the limiter itself is opened with Redis)."""
    limiter: Limiter | None = None
    """Set in the lifespan, once Redis is open; ``None`` when rate limiting is off."""

    @property
    def active(self) -> bool:
        """Whether there is anything to check at all; if not, the middleware is left out."""
        return self.verifier is not None or self.rate_limited


class AuthMiddleware:
    """Authenticate, authorize and rate-limit one operation call."""

    def __init__(self, app: ASGIApp, *, access: AccessControl) -> None:
        self.app = app
        self.access = access

    def _is_public(self, scope: Scope) -> bool:
        opt = scope["route_handler"].opt
        if opt.get("public"):
            return True
        path = scope["path"]
        return path.startswith("/schema") or (self.access.public_metrics and path == "/metrics")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or self._is_public(scope):
            await self.app(scope, receive, send)
            return
        access = self.access
        if access.verifier is not None:
            principal: Principal | None = await self._authenticate(scope)
            scope["auth"] = principal
        else:
            # Auth is off: every caller is anonymous, unless something in front (a gateway
            # that authenticated already, or a test) has named the caller.
            principal = scope.setdefault("auth", None)
        if access.limiter is None:
            await self.app(scope, receive, send)
            return
        if principal is not None:
            key, tier = f"client:{principal.client_id}", access.tiers.get(principal.client_id, "default")
        else:
            client = scope.get("client")
            key, tier = f"ip:{client[0] if client else 'unknown'}", access.anonymous_tier
        route = scope.get("path_template", scope["path"])
        decision = await access.limiter.check(key=key, tier=tier, method=scope["method"], route=route)
        # The observability middleware, which already wraps ``send``, adds them to the answer.
        cast("dict[str, Any]", scope)[RESPONSE_HEADERS] = decision.headers
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal:
        verifier = self.access.verifier
        assert verifier is not None
        token = _bearer(scope)
        if token is None:
            raise AuthenticationError(
                "this operation needs a bearer token", headers={"WWW-Authenticate": 'Bearer realm="finsync"'}
            )
        if not token:
            raise AuthenticationError(
                "the Authorization header must be 'Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="finsync", error="invalid_request"'},
            )
        principal = await verifier.verify(token)
        needed = scope["route_handler"].opt.get("scopes", ())
        missing = [name for name in needed if name not in principal.scopes]
        if missing:
            raise PermissionDeniedError(
                f"this operation needs the scope {' '.join(needed)}",
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="finsync", error="insufficient_scope", scope="{" ".join(needed)}"'
                    )
                },
                missing_scopes=missing,
            )
        return principal
