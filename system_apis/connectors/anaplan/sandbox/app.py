"""``create_app()``: the planning sandbox as a Litestar app. A sandbox shaped like Anaplan, not Anaplan.

granian imports ``system_apis.connectors.anaplan.sandbox.app:create_app`` as a
factory in its one worker (:mod:`~.server`); the settings come from the
environment, which is how ``--fast-polling`` reaches the worker
(``FINSYNC_PLANNING_SANDBOX__MIN_POLL_INTERVAL=0``). All state is in that
worker's memory (:class:`~.state.Sandbox`, on ``app.state.sandbox``); the
lifespan stops running tasks on shutdown.

Every answer is JSON in the vendor's shape, never HTML and never a 500 for bad
input, and carries ``X-Sandbox: anaplan``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from shared.observability.logging import configure_logging
from shared.settings import MIN_POLL_INTERVAL, load_settings
from system_apis.connectors.anaplan.sandbox.control_api import control_router
from system_apis.connectors.anaplan.sandbox.errors import SandboxError
from system_apis.connectors.anaplan.sandbox.files import MAX_CHUNK_BYTES
from system_apis.connectors.anaplan.sandbox.integration_api import integration_router
from system_apis.connectors.anaplan.sandbox.responses import add_sandbox_header, status_error
from system_apis.connectors.anaplan.sandbox.state import Sandbox, SandboxConfig
from system_apis.connectors.anaplan.sandbox.token_api import token_router

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from shared.settings import Settings

__all__ = ("SERVICE", "create_app")

SERVICE = "planning-sandbox"
"""The ``service`` of the sandbox's log lines."""

logger = logging.getLogger("finsync.planning_sandbox")


def _sandbox_error(_request: Request[Any, Any, Any], exc: SandboxError) -> Response[bytes]:
    """A sandbox error as the vendor's status envelope."""
    return status_error(exc.status_code, exc.message)


def _http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors (no route, wrong method, body too large) in the vendor's shape, not Litestar's."""
    return status_error(exc.status_code, exc.detail, exc.headers)


def _unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A sandbox bug: logged, and answered 500 in the vendor's shape rather than as HTML."""
    logger.error("unhandled error in the planning sandbox", exc_info=exc)
    return status_error(500, "internal error in the sandbox")


def create_app(settings: Settings | None = None) -> Litestar:
    """The sandbox app; settings are loaded from the environment when none are passed.

    Raises:
        SettingsError: the password file is missing, unreadable or empty.
    """
    settings = settings if settings is not None else load_settings()
    configure_logging(SERVICE, settings.log.level)
    config = SandboxConfig.from_settings(settings)
    sandbox = Sandbox(config)

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        """Say what this is once it serves; stop running tasks on shutdown."""
        logger.warning(
            "planning sandbox ready: an Anaplan-shaped stand-in for tests, NOT Anaplan; "
            "user %s, password in %s, minimum poll interval %gs%s",
            config.user,
            config.password_file,
            config.min_poll_interval,
            " (fast polling: test mode)" if config.min_poll_interval < MIN_POLL_INTERVAL else "",
        )
        try:
            yield
        finally:
            await sandbox.close()

    return Litestar(
        route_handlers=[token_router(), integration_router(), control_router()],
        state=State({"sandbox": sandbox}),
        lifespan=[lifespan],
        before_send=[add_sandbox_header],
        exception_handlers={
            SandboxError: _sandbox_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        openapi_config=None,
        logging_config=None,  # configure_logging owns the root logger: one JSON format
        request_max_body_size=MAX_CHUNK_BYTES,
        debug=False,
    )
