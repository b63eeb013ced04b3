"""``/v1``: every request goes through the same steps, in Stripe's order.

1. Count it; draw the injected faults (a faulted request does nothing else:
   429 ``rate_limit`` or a 5xx ``api_error``, both with
   ``Stripe-Should-Retry: true``; nothing is saved under its key).
2. Authenticate: ``Authorization: Bearer sk_test_…`` (or HTTP Basic with the
   key as user name, as Stripe also takes); else 401.
3. ``Stripe-Version``, when sent, must be :data:`~.config.API_VERSION`.
4. Find the route (else 404 ``Unrecognized request URL``); read the
   parameters from the query string and, for ``POST``, the form-encoded body
   (another content type is refused); check them against the route (400).
5. ``POST`` with ``Idempotency-Key``: replay, refuse, or mark the key running.
6. Run the operation; apply ``expand[]``; save the answer under the key.
7. The ``write_delay`` fault holds the answer back; then answer, with
   ``Request-Id``, ``Stripe-Version`` and, for keyed writes,
   ``Idempotency-Key`` (and ``Idempotent-Replayed``/``Original-Request`` on
   replays).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, route

from system_apis.connectors.stripe.sandbox import invoicing, resources  # noqa: F401 - they register the routes
from system_apis.connectors.stripe.sandbox.config import API_VERSION
from system_apis.connectors.stripe.sandbox.errors import (
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    RateLimitError,
    StripeError,
    UnrecognizedUrlError,
)
from system_apis.connectors.stripe.sandbox.forms import check, parse_form
from system_apis.connectors.stripe.sandbox.objects import Invoice
from system_apis.connectors.stripe.sandbox.responses import encode, json_response
from system_apis.connectors.stripe.sandbox.routing import Call, match
from system_apis.connectors.stripe.sandbox.state import Sandbox, sandbox_of
from system_apis.connectors.stripe.sandbox.store import new_id

if TYPE_CHECKING:
    from system_apis.connectors.stripe.sandbox.routing import Route

__all__ = ("EXPANDABLE", "MAX_EXPAND_DEPTH", "v1_handler")

EXPANDABLE = frozenset(
    {"customer", "invoice", "payment_intent", "latest_charge", "charge", "product", "price", "default_price"}
)
"""Fields holding an id that ``expand[]`` can replace with the object."""
MAX_EXPAND_DEPTH = 4
"""Levels an ``expand[]`` path may have."""
_FORM = "application/x-www-form-urlencoded"

logger = logging.getLogger("finsync.billing_sandbox")


def _error(exc: StripeError, headers: dict[str, str]) -> Response[bytes]:
    return json_response(exc.body(), exc.status_code, headers)


def _authenticate(sandbox: Sandbox, header: str | None) -> None:
    """Accept the sandbox's secret key as a bearer token or as HTTP Basic user name.

    Raises:
        AuthenticationError: no key, or another one.
    """
    if not header:
        raise AuthenticationError(
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
            "https://stripe.com/docs/api#authentication for details, or we can help at "
            "https://support.stripe.com/."
        )
    scheme, _, value = header.partition(" ")
    key = value.strip()
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = ""
    if not key or not hmac.compare_digest(key.encode(), sandbox.secret_key.encode()):
        shown = f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}" if len(key) > 12 else "*" * len(key)
        raise AuthenticationError(f"Invalid API Key provided: {shown}")


async def _params(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The query string and, for ``POST``, the form body, merged (the body wins).

    Raises:
        InvalidRequestError: a body that is not form-encoded, or malformed parameter names.
    """
    params = parse_form(request.scope["query_string"].decode("latin-1"))
    if request.method == "POST":
        body = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and content_type != _FORM:
            raise InvalidRequestError(
                f"Invalid request: unsupported Content-Type {content_type or '(none)'}. Stripe takes "
                f"{_FORM} bodies."
            )
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise InvalidRequestError("Invalid request: the body is not UTF-8.") from None
        params.update(parse_form(text))
    return params


def _expand(sandbox: Sandbox, node: Any, path: list[str], whole: str) -> None:
    """Replace, along ``path``, an id with its object (or add an includable list such as ``payments``).

    Raises:
        InvalidRequestError: the path names a field that cannot be expanded.
    """
    if not path or not isinstance(node, dict):
        return
    head, rest = path[0], path[1:]
    if node.get("object") in ("list", "search_result") and head == "data":
        for item in node["data"]:
            _expand(sandbox, item, rest, whole)
        return
    if node.get("object") == "invoice" and head == "payments":
        invoice = sandbox.store.get(Invoice, node["id"])
        node["payments"] = invoice.render_payments(sandbox.store)
        _expand(sandbox, node["payments"], rest, whole)
        return
    if node.get("object") == "search_result" and head == "total_count":
        return
    value = node.get(head)
    if isinstance(value, str) and head in EXPANDABLE and value in sandbox.store.objects:
        node[head] = sandbox.render(sandbox.store.objects[value])
        _expand(sandbox, node[head], rest, whole)
    elif isinstance(value, dict) and rest:
        _expand(sandbox, value, rest, whole)
    elif value is None and head in node:
        return
    else:
        raise InvalidRequestError(f"This property cannot be expanded ({whole}).", param="expand")


def _expand_all(sandbox: Sandbox, body: dict[str, Any], paths: list[str]) -> None:
    """Apply every ``expand[]`` path to ``body``.

    Raises:
        InvalidRequestError: a path is too deep, or names a field that cannot be expanded.
    """
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise InvalidRequestError(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property ({path}).",
                param="expand",
            )
        _expand(sandbox, body, parts, path)


def _run(sandbox: Sandbox, found: Route, call: Call) -> tuple[int, bytes]:
    """Run the operation and expand its answer: ``(status, body)``, errors included."""
    try:
        body = found.operation(sandbox, call)
        _expand_all(sandbox, body, call.expand)
        return 200, encode(body)
    except StripeError as exc:
        return exc.status_code, encode(exc.body())
    except Exception:  # a sandbox bug: answered as Stripe answers its own, and saved like one
        logger.exception("unhandled error in the billing sandbox on %s %s", found.method, found.template)
        return 500, encode(ApiError("An unknown error occurred in the sandbox.").body())


def _fault(sandbox: Sandbox, headers: dict[str, str]) -> Response[bytes] | None:
    """The answer of an injected fault (429 or 5xx, ``Stripe-Should-Retry: true``), or None."""
    fault = sandbox.faults.request_fault()
    if fault is None:
        return None
    headers["Stripe-Should-Retry"] = "true"
    if fault != 429:
        return _error(
            ApiError(f"An unknown error occurred (sandbox fault: rate_5xx, {fault}).", status_code=fault),
            headers,
        )
    if sandbox.faults.config.retry_after is not None:
        headers["Retry-After"] = str(sandbox.faults.config.retry_after)
    limited = RateLimitError(
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits. "
        "(sandbox fault: rate_429)",
        code="rate_limit",
    )
    return _error(limited, headers)


async def _prepare(
    request: Request[Any, Any, Any], sandbox: Sandbox, request_id: str, headers: dict[str, str]
) -> tuple[Route, Call, dict[str, Any]]:
    """Steps 3 and 4: the version, the route, the checked parameters; also the raw ones (for the key).

    Raises:
        StripeError: a wrong version, an unknown URL, or bad parameters.
    """
    method, path = request.method, request.url.path
    version = request.headers.get("stripe-version")
    if version is not None and version != API_VERSION:
        raise InvalidRequestError(
            f"This sandbox speaks only Stripe API version {API_VERSION}, not {version!r}.",
            param="Stripe-Version",
        )
    found_route = match(method, path)
    if found_route is None:
        raise UnrecognizedUrlError(method, path)
    found, ids = found_route
    raw = await _params(request)
    params = check(found.params, raw)
    key = request.headers.get("idempotency-key") if method == "POST" else None
    if key is not None:
        headers["Idempotency-Key"] = key
    call = Call(
        params={name: value for name, value in params.items() if name != "expand"},
        path=ids,
        request_id=request_id,
        idempotency_key=key,
        expand=params.get("expand", []),
    )
    return found, call, raw


async def serve(request: Request[Any, Any, Any]) -> Response[bytes]:
    """One ``/v1`` request, through the steps in the module's docstring."""
    sandbox = sandbox_of(request)
    sandbox.counters.requests += 1
    request_id = new_id("req")
    headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
    if (faulted := _fault(sandbox, headers)) is not None:
        return faulted
    try:
        _authenticate(sandbox, request.headers.get("authorization"))
    except AuthenticationError as refused:
        sandbox.counters.unauthorized += 1
        return _error(refused, headers)
    try:
        found, call, raw = await _prepare(request, sandbox, request_id, headers)
        key = call.idempotency_key
        if key is not None:
            saved = sandbox.idempotency.begin(key, f"{request.method} {request.url.path}", raw, request_id)
            if saved is not None:
                assert saved.status is not None
                headers.update({"Idempotent-Replayed": "true", "Original-Request": saved.request_id})
                return json_response(saved.body, saved.status, headers)
    except StripeError as refused:
        return _error(refused, headers)
    if request.method in ("POST", "DELETE"):
        sandbox.counters.writes += 1
    try:
        status, body = _run(sandbox, found, call)
        if key is not None:
            sandbox.idempotency.save(key, status, body)
        if request.method == "POST" and (delay := sandbox.faults.write_delay()):
            await asyncio.sleep(delay)
    finally:
        if key is not None:
            sandbox.idempotency.finish(key)
    return json_response(body, status, headers)


@route("/v1/{rest:path}", http_method=["GET", "POST", "DELETE", "PUT", "PATCH"], name="v1")
async def v1_handler(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every ``/v1`` route (the table in :mod:`~.routing`)."""
    return await serve(request)
