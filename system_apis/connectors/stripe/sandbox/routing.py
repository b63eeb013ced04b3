"""The ``/v1`` route table: each Stripe endpoint, its parameters and the operation that serves it.

Operations register themselves with :func:`route`; :func:`match` finds the
one for a method and path. The table is the sandbox's own (one Litestar route
catches ``/v1/...`` and hands it here) so that an unknown URL or method gets
Stripe's ``Unrecognized request URL`` answer and every endpoint goes through
the same steps: faults, authentication, parameter checks, idempotency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from system_apis.connectors.stripe.sandbox.forms import Param
    from system_apis.connectors.stripe.sandbox.state import Sandbox

__all__ = ("ROUTES", "Call", "Operation", "Route", "match", "route")


@dataclass(frozen=True)
class Call:
    """One API request, as an operation sees it."""

    params: dict[str, Any]
    """Its checked parameters (query string and body)."""
    path: dict[str, str]
    """Ids from the path, by name (``{"invoice": "in_…"}``)."""
    request_id: str
    """Its ``Request-Id`` (``req_…``), also on the events it causes."""
    idempotency_key: str | None = None
    """Its ``Idempotency-Key``, also on the events it causes."""
    expand: list[str] = field(default_factory=list)
    """Its ``expand[]`` paths."""


Operation: TypeAlias = "Callable[[Sandbox, Call], dict[str, Any]]"
"""What serves an endpoint: takes the sandbox and the call, returns the body of a 200."""


@dataclass(frozen=True)
class Route:
    """One endpoint."""

    method: str
    """``GET``, ``POST`` or ``DELETE``."""
    template: str
    """Its path, with ``{name}`` for ids."""
    pattern: re.Pattern[str]
    """The path as a regular expression."""
    params: Mapping[str, Param]
    """The parameters it takes (``expand`` is always taken)."""
    operation: Operation
    """What serves it."""


ROUTES: list[Route] = []
"""Every endpoint, in the order they are tried: fixed paths are registered before ``{id}`` ones."""


def route(
    method: str, template: str, params: Mapping[str, Param] | None = None
) -> Callable[[Operation], Operation]:
    """Register the decorated operation for ``method template``."""
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")

    def register(operation: Operation) -> Operation:
        ROUTES.append(Route(method, template, pattern, dict(params or {}), operation))
        return operation

    return register


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for ``method path`` and the ids in the path, or None."""
    for candidate in ROUTES:
        if candidate.method == method and (found := candidate.pattern.match(path)) is not None:
            return candidate, found.groupdict()
    return None
