"""``finsync erp setup`` and ``finsync serve erp``: the local ERP from the command line.

Both use the PostgreSQL server named by ``FINSYNC_ERP__DATABASE_URL`` or, when
it is unset, the embedded one of the data dir: a running one is reused, else
this command starts it and stops it when done.
"""

from __future__ import annotations

import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import SettingsError
from shared.postgres import EmbeddedPostgres, database_exists
from system_apis.connectors.tryton.database import Seed, setup_database
from system_apis.connectors.tryton.seed import SERVICE_LOGIN
from system_apis.connectors.tryton.server import TrytonServer
from system_apis.connectors.tryton.trytond_conf import TrytonPaths

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shared.settings import Settings

__all__ = ("serve_erp", "setup_erp")


@contextmanager
def _database_server(settings: Settings) -> Iterator[str]:
    """The PostgreSQL server URL; an embedded server this call had to start is stopped on exit."""
    if settings.erp.database_url is not None:
        yield settings.erp.database_url
        return
    postgres = EmbeddedPostgres(Path(settings.data_dir).resolve())
    started = postgres.start()
    try:
        yield postgres.url
    finally:
        if started:
            postgres.stop()


def setup_erp(settings: Settings, *, lines: int, variant: int, database: str, replace: bool) -> int:
    """Build (or reuse) the templates and make ``database`` a seeded copy; print what was done."""
    paths = TrytonPaths(Path(settings.data_dir).resolve())
    with _database_server(settings) as server_url:
        result = setup_database(
            server_url, database, Seed(lines=lines, variant=variant), paths, replace=replace
        )
    state = "created from" if result.created else "kept (exists); template"
    print(f"erp database {result.name!r} {state} {result.template} in {result.seconds:.1f}s", flush=True)  # noqa: T201
    print(f"  service user {SERVICE_LOGIN!r}, password in {paths.service_password_file}", flush=True)  # noqa: T201
    return 0


def serve_erp(settings: Settings, *, host: str, port: int) -> int:
    """Run the Tryton server on ``erp.database`` until SIGINT or SIGTERM; 1 if the server dies."""
    data_dir = Path(settings.data_dir).resolve()
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with _database_server(settings) as server_url:
        if not database_exists(server_url, settings.erp.database):
            raise SettingsError(
                f"the ERP database {settings.erp.database!r} does not exist: run 'finsync erp setup'"
            )
        server = TrytonServer(data_dir, server_url, [settings.erp.database], host=host, port=port)
        if not server.start():
            raise SettingsError(f"a Tryton server already serves {data_dir}")
        try:
            while not stopping:
                if server.process is None or server.process.poll() is not None:
                    print(f"the Tryton server exited; see {server.paths.log}", file=sys.stderr)  # noqa: T201
                    return 1
                time.sleep(0.2)
        finally:
            server.stop()
    return 0
