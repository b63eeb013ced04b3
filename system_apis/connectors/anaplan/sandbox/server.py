"""``serve_sandbox``: ``finsync serve planning-sandbox [--fast-polling]`` runs the sandbox under granian.

One granian worker, because all of the sandbox's state is in that worker's
memory: a restart loses it, and the sandbox comes back seeded the same way.
The worker builds the app from the environment, so this process writes what it
resolved there first: the password file (generated once, mode 0600, when the
default one does not exist) and, for ``--fast-polling``, a zero minimum poll
interval. Fast polling is for tests only; Anaplan asks for one poll every 5 s.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from shared.observability.logging import configure_logging
from system_apis.connectors.anaplan.sandbox.tokens import password_file

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = ("APP_FACTORY", "serve_sandbox")

APP_FACTORY = "system_apis.connectors.anaplan.sandbox.app:create_app"
"""What granian imports in its worker."""

logger = logging.getLogger("finsync.planning_sandbox")


def serve_sandbox(settings: Settings, *, host: str, port: int, fast_polling: bool) -> int:
    """Serve the sandbox on ``host:port`` until SIGINT or SIGTERM; 0 when it stopped cleanly.

    Raises:
        SettingsError: a configured password file does not exist.
    """
    from granian import Granian  # noqa: PLC0415 - heavy import, only for this command
    from granian.constants import Interfaces  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415

    configure_logging("planning-sandbox", settings.log.level)
    path = password_file(settings)
    os.environ["FINSYNC_PLANNING_SANDBOX__PASSWORD_FILE"] = str(path)
    if fast_polling:
        os.environ["FINSYNC_PLANNING_SANDBOX__MIN_POLL_INTERVAL"] = "0"
    logger.warning(
        "starting the planning SANDBOX at http://%s:%d: a local stand-in shaped like Anaplan's Integration API "
        "v2 for tests, NOT Anaplan; user %s, password in %s%s",
        host,
        port,
        settings.planning_sandbox.user,
        path,
        "; fast polling (test mode)" if fast_polling else "",
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
