"""``create_app()``: the billing sandbox as a Litestar app. A sandbox shaped like Stripe, not Stripe.

granian imports ``system_apis.connectors.stripe.sandbox.app:create_app`` as a
factory in its one worker (:mod:`~.server`); the configuration comes from
:data:`~.config.CONFIG_ENV`. All state is in that worker's memory
(:class:`~.state.Sandbox`, on ``app.state.sandbox``); the lifespan starts and
stops the webhook dispatcher.

Every answer is JSON in Stripe's shape (``{"error": {...}}`` for errors), never
HTML and never a 500 for bad input, and carries ``X-Sandbox: stripe``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from shared.observability.logging import configure_logging
from system_apis.connectors.stripe.sandbox.api import v1_handler
from system_apis.connectors.stripe.sandbox.config import API_VERSION, BillingSandboxConfig
from system_apis.connectors.stripe.sandbox.control_api import control_router
from system_apis.connectors.stripe.sandbox.errors import ApiError, InvalidRequestError, StripeError
from system_apis.connectors.stripe.sandbox.responses import add_sandbox_header, json_response
from system_apis.connectors.stripe.sandbox.state import Sandbox

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("MAX_BODY_BYTES", "SERVICE", "create_app")

SERVICE = "billing-sandbox"
"""The ``service`` of the sandbox's log lines."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body taken."""

logger = logging.getLogger("finsync.billing_sandbox")


def _stripe_error(_request: Request[Any, Any, Any], exc: StripeError) -> Response[bytes]:
    """A sandbox error (control API) in Stripe's shape."""
    return json_response(exc.body(), exc.status_code)


def _http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors (no route, wrong method, body too large) in Stripe's shape, not Litestar's."""
    error = InvalidRequestError(str(exc.detail), status_code=exc.status_code)
    return json_response(error.body(), exc.status_code, exc.headers)


def _unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A sandbox bug: logged, and answered 500 in Stripe's shape rather than as HTML."""
    logger.error("unhandled error in the billing sandbox", exc_info=exc)
    return json_response(ApiError("An unknown error occurred in the sandbox.").body(), 500)


def create_app(config: BillingSandboxConfig | None = None) -> Litestar:
    """The sandbox app; the configuration is read from the environment when none is passed.

    Raises:
        SettingsError: the configuration is missing or invalid, or a secret file is unusable.
    """
    config = config if config is not None else BillingSandboxConfig.from_env()
    configure_logging(SERVICE, config.log_level)
    sandbox = Sandbox(config)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        """Say what this is once it serves; deliver webhooks while it runs."""
        sandbox.start()
        logger.warning(
            "billing sandbox ready: a Stripe-shaped stand-in for tests (API version %s), NOT Stripe; secret key "
            "in %s, seed variant %d, %d webhook endpoint(s) at start",
            API_VERSION,
            config.secret_key_file,
            config.seed_variant,
            len(config.webhook_endpoints),
        )
        try:
            yield
        finally:
            await sandbox.close()

    return Litestar(
        route_handlers=[v1_handler, control_router()],
        state=State({"sandbox": sandbox}),
        lifespan=[lifespan],
        before_send=[add_sandbox_header],
        exception_handlers={
            StripeError: _stripe_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        openapi_config=None,
        logging_config=None,  # configure_logging owns the root logger: one JSON format
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
    )
