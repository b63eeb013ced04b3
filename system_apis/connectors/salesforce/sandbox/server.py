"""``serve_sandbox``: the CRM sandbox under granian, in one worker.

One granian worker, because all of the sandbox's state is in that worker's
memory: a restart loses it, and the sandbox comes back seeded the same way.
The worker builds the app from the environment, so this process resolves
everything first: it generates the default secret files (so a missing
configured file fails here, with a clear message), fills in the instance URL
from the address it binds, and hands the config over as JSON in
:data:`~.config.CONFIG_ENVIRONMENT`.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import msgspec

from shared.observability.logging import configure_logging
from system_apis.connectors.salesforce.sandbox.config import (
    CONFIG_ENVIRONMENT,
    CrmSandboxConfig,
    load_secrets,
)
from system_apis.connectors.salesforce.sandbox.outbound import url_origin

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = ("APP_FACTORY", "serve_config", "serve_sandbox")

APP_FACTORY = "system_apis.connectors.salesforce.sandbox.app:create_app"
"""What granian imports in its worker."""
_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names of wildcard addresses, nothing binds to them here

logger = logging.getLogger("finsync.crm_sandbox")


def serve_config(config: CrmSandboxConfig, *, host: str, port: int) -> int:
    """Serve the sandbox with ``config`` on ``host:port`` until SIGINT or SIGTERM; 0 when it stopped cleanly.

    Raises:
        SettingsError: a configured secret file is missing, unreadable or empty.
    """
    from granian import Granian  # noqa: PLC0415 - heavy import, only for this command
    from granian.constants import Interfaces  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415

    configure_logging("crm-sandbox", config.log_level)
    load_secrets(config)
    if config.instance_url is None:
        reachable = "127.0.0.1" if host in _WILDCARDS else host
        config = msgspec.structs.replace(config, instance_url=f"http://{reachable}:{port}")
    os.environ[CONFIG_ENVIRONMENT] = config.to_environment()
    logger.warning(
        "starting the CRM SANDBOX at http://%s:%d: a local stand-in shaped like Salesforce's REST API and "
        "Outbound Messaging for tests, NOT Salesforce; client id %s, client secret in %s, outbound listener %s",
        host,
        port,
        config.client_id,
        config.client_secret_path,
        url_origin(config.outbound.listener_url),
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


def serve_sandbox(
    settings: Settings,
    *,
    host: str,
    port: int,
    listener_url: str | None = None,
    fast_retries: bool = False,
) -> int:
    """``finsync serve crm-sandbox``: serve a sandbox configured from finsync's settings.

    The data dir, log level and ERP seed variant come from ``settings``;
    ``listener_url`` is where outbound messages go (the system layer's
    outbound-message route); ``fast_retries`` compresses redelivery for tests.

    Raises:
        SettingsError: a configured secret file is missing, unreadable or empty.
    """
    config = CrmSandboxConfig.from_settings(settings)
    outbound = config.outbound
    if listener_url is not None:
        outbound = msgspec.structs.replace(outbound, listener_url=listener_url)
    if fast_retries:
        outbound = outbound.fast()
    return serve_config(msgspec.structs.replace(config, outbound=outbound), host=host, port=port)
