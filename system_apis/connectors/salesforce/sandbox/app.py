"""``create_app()``: the CRM sandbox as a Litestar app. A sandbox shaped like Salesforce, not Salesforce.

granian imports ``system_apis.connectors.salesforce.sandbox.app:create_app``
as a factory in its one worker (:mod:`~.server`); the config then comes from
the environment (:data:`~.config.CONFIG_ENVIRONMENT`). All state is in that
worker's memory (:class:`~.state.Sandbox`, on ``app.state.sandbox``); the
lifespan starts and stops the outbound dispatcher.

Every answer is JSON in the vendor's shape, never HTML and never a 500 for
bad input, and carries ``X-Sandbox: salesforce`` and ``Sforce-Limit-Info``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from shared.observability.logging import configure_logging
from system_apis.connectors.salesforce.sandbox.config import CrmSandboxConfig, load_secrets
from system_apis.connectors.salesforce.sandbox.control_api import control_router
from system_apis.connectors.salesforce.sandbox.errors import (
    MethodNotAllowedError,
    NotFoundError,
    OAuthError,
    SalesforceError,
    UnknownExceptionError,
)
from system_apis.connectors.salesforce.sandbox.oauth_api import oauth_router
from system_apis.connectors.salesforce.sandbox.outbound import url_origin
from system_apis.connectors.salesforce.sandbox.responses import (
    add_sandbox_headers,
    error_response,
    json_response,
    oauth_error_response,
)
from system_apis.connectors.salesforce.sandbox.rest_api import rest_router, versions
from system_apis.connectors.salesforce.sandbox.state import Sandbox

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("SERVICE", "create_app")

SERVICE = "crm-sandbox"
"""The ``service`` of the sandbox's log lines."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body taken (control API writes and token requests are small)."""

logger = logging.getLogger("finsync.crm_sandbox")


def _salesforce_error(_request: Request[Any, Any, Any], exc: SalesforceError) -> Response[bytes]:
    """A sandbox error as Salesforce's error array."""
    return error_response(exc)


def _oauth_error(_request: Request[Any, Any, Any], exc: OAuthError) -> Response[bytes]:
    """A refused token request in OAuth's shape."""
    return oauth_error_response(exc)


def _http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors (no route, wrong method, body too large) in Salesforce's shape, not Litestar's."""
    if exc.status_code == 404:
        return error_response(NotFoundError("The requested resource does not exist"))
    if exc.status_code == 405:
        return error_response(MethodNotAllowedError(f"HTTP Method not allowed: {exc.detail}"))
    code = "REQUEST_ENTITY_TOO_LARGE" if exc.status_code == 413 else "BAD_REQUEST"
    return json_response(
        [{"message": exc.detail, "errorCode": code, "fields": []}], exc.status_code, exc.headers
    )


def _unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A sandbox bug: logged, and answered 500 ``UNKNOWN_EXCEPTION`` rather than as HTML."""
    logger.error("unhandled error in the CRM sandbox", exc_info=exc)
    return error_response(UnknownExceptionError("An unexpected error occurred in the Salesforce sandbox."))


def create_app(config: CrmSandboxConfig | None = None) -> Litestar:
    """The sandbox app; the config comes from :data:`~.config.CONFIG_ENVIRONMENT` when none is passed.

    Raises:
        SettingsError: the config is invalid, or a secret file is missing, unreadable or empty.
        ValueError: the JWT public key file holds no RSA public key or certificate.
    """
    config = config if config is not None else CrmSandboxConfig.from_environment()
    configure_logging(SERVICE, config.log_level)
    sandbox = Sandbox(config, load_secrets(config))

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        """Say what this is once it serves; start and stop outbound delivery."""
        await sandbox.start()
        logger.warning(
            "CRM sandbox ready: a Salesforce-shaped stand-in for tests, NOT Salesforce; org %s, client id %s, "
            "client secret in %s, %d opportunities seeded, outbound listener %s",
            sandbox.organization_id,
            config.client_id,
            config.client_secret_path,
            sandbox.org.count("Opportunity"),
            url_origin(sandbox.outbound.settings.listener_url),
        )
        try:
            yield
        finally:
            await sandbox.close()

    return Litestar(
        route_handlers=[versions, oauth_router(), rest_router(), control_router()],
        state=State({"sandbox": sandbox}),
        lifespan=[lifespan],
        before_send=[add_sandbox_headers],
        exception_handlers={
            SalesforceError: _salesforce_error,
            OAuthError: _oauth_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        openapi_config=None,
        logging_config=None,  # configure_logging owns the root logger: one JSON format
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
    )
