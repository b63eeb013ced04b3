"""``serve_sandbox``: run the billing sandbox under granian, in one worker.

One worker, because all of the sandbox's state is in that worker's memory: a
restart loses it, and the sandbox comes back seeded the same way. The worker
builds the app from :data:`~.config.CONFIG_ENV`, which this process sets first.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import msgspec

from shared.observability.logging import configure_logging
from system_apis.connectors.stripe.sandbox.config import (
    API_VERSION,
    CONFIG_ENV,
    BillingSandboxConfig,
    local_config,
    read_secret,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shared.settings import Settings

__all__ = ("APP_FACTORY", "DEFAULT_PORT", "serve_local", "serve_sandbox")

APP_FACTORY = "system_apis.connectors.stripe.sandbox.app:create_app"
"""What granian imports in its worker."""
DEFAULT_PORT = 8123
"""The billing sandbox's port in the local stack (DESIGN.md, "Local ports")."""

logger = logging.getLogger("finsync.billing_sandbox")


def serve_sandbox(config: BillingSandboxConfig, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """Serve the sandbox on ``host:port`` until SIGINT or SIGTERM; 0 when it stopped cleanly.

    Raises:
        SettingsError: the secret key file or a webhook secret file is missing, unreadable, or wrong.
    """
    from granian import Granian  # noqa: PLC0415 - heavy import, only for this command
    from granian.constants import Interfaces  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415

    configure_logging("billing-sandbox", config.log_level)
    read_secret(config.secret_key_file, "sk_test_", "secret key")  # fail here, not in the worker
    for endpoint in config.webhook_endpoints:
        read_secret(endpoint.secret_file, "whsec_", "webhook signing secret")
    os.environ[CONFIG_ENV] = config.to_env()
    logger.warning(
        "starting the billing SANDBOX at http://%s:%d: a local stand-in shaped like Stripe's API (%s) for tests, "
        "NOT Stripe; secret key in %s",
        host,
        port,
        API_VERSION,
        config.secret_key_file,
    )
    server = Granian(
        APP_FACTORY,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        log_access=False,
        log_level=LogLevels.warning,
    )
    server.serve()
    return 0


def serve_local(settings: Settings, *, host: str, port: int, webhook_urls: Sequence[str] = ()) -> int:
    """The local stack's sandbox (``finsync serve billing-sandbox``): secrets in ``{data_dir}/billing-sandbox/``
    (generated once), customer names of ``erp.seed_variant``, the log level of ``log.level``.

    Raises:
        SettingsError: a secret file exists but is unusable.
    """
    config = local_config(
        settings.data_dir, seed_variant=settings.erp.seed_variant, webhook_urls=webhook_urls
    )
    return serve_sandbox(msgspec.structs.replace(config, log_level=settings.log.level), host=host, port=port)
