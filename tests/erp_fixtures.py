"""The ``erp`` fixture: a real Tryton server on a real embedded PostgreSQL, two databases seeded differently.

One session-scoped set of processes: an :class:`~shared.postgres.EmbeddedPostgres`
in a temporary dir, the base template built once, two working databases
(variants 1 and 2, about :data:`ERP_LINES` journal lines each) seeded side by
side, and one Tryton server on a free loopback port serving both.

    def test_something(erp: Erp) -> None:
        database = erp.databases[0]
        context = erp.context(database, company=erp.company_id(database, "FS-US"))
        moves = erp.rpc(database, "model.account.move.search", [], 0, 10, None, context)
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.postgres import EmbeddedPostgres, database_url, postgres_binary
from system_apis.connectors.tryton.database import Seed, build_base, setup_database
from system_apis.connectors.tryton.seed import SERVICE_LOGIN
from system_apis.connectors.tryton.server import TrytonServer
from system_apis.connectors.tryton.trytond_conf import TrytonPaths, ensure_secret
from tests.support import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ("ERP_LINES", "ERP_VARIANTS", "Erp", "RpcError", "erp", "rpc_date", "rpc_decimal")

ERP_LINES = 2000
"""About how many journal lines each test database holds."""
ERP_VARIANTS = (1, 2)
"""Seed variant of each test database, in the order of :attr:`Erp.databases`."""


class RpcError(Exception):
    """Tryton answered a JSON-RPC call with an error; ``error`` is its ``[kind, details]``."""

    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error


def rpc_decimal(value: str | Decimal) -> dict[str, str]:
    """A Decimal as Tryton's JSON-RPC encodes it."""
    return {"__class__": "Decimal", "decimal": str(value)}


def rpc_date(value: dt.date) -> dict[str, Any]:
    """A date as Tryton's JSON-RPC encodes it."""
    return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}


@dataclass
class Erp:
    """The running ERP, and a JSON-RPC client for tests acting as the service user."""

    url: str
    """The Tryton server; JSON-RPC is at ``{url}/{database}/rpc/``."""
    databases: tuple[str, ...]
    """The working databases, one per :data:`ERP_VARIANTS` entry, in that order."""
    login: str
    """The service user's login."""
    password: str
    """The service user's password."""
    password_file: Path
    """The file that holds it (what a ``tryton`` source's ``password_file`` names)."""
    database_url: str
    """The PostgreSQL server (``FINSYNC_ERP__DATABASE_URL`` for processes that should share it)."""
    seed_lines: int
    """About how many journal lines each database holds."""
    postgres: EmbeddedPostgres
    """The embedded PostgreSQL."""
    admin_password: str = ""
    """Tryton's ``admin`` password, for changes the service user may not make (master data)."""
    _sessions: dict[str, str] = field(default_factory=dict)

    def as_admin(self) -> Erp:
        """The same ERP, acting as Tryton's ``admin``."""
        return replace(self, login="admin", password=self.admin_password, _sessions={})

    def _header(self, database: str) -> str:
        if database not in self._sessions:
            user_id, session = self.call(
                database, "common.db.login", self.login, {"password": self.password}, "en"
            )["result"][:2]
            token = base64.b64encode(f"{self.login}:{user_id}:{session}".encode()).decode()
            self._sessions[database] = f"Session {token}"
        return self._sessions[database]

    def call(self, database: str, method: str, *params: Any) -> dict[str, Any]:
        """One JSON-RPC call; the whole answer (``result`` or ``error``). Logs in first when needed."""
        headers = {} if method == "common.db.login" else {"Authorization": self._header(database)}
        response = httpx.post(
            f"{self.url}/{database}/rpc/",
            json={"id": 1, "method": method, "params": list(params)},
            headers=headers,
            timeout=120,
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def rpc(self, database: str, method: str, *params: Any) -> Any:
        """One JSON-RPC call's ``result``; raises :class:`RpcError` when Tryton answers an error."""
        answer = self.call(database, method, *params)
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer["result"]

    def company_id(self, database: str, code: str) -> int:
        """Id of the company whose party has ``code`` (``FS-US`` or ``FS-EU``)."""
        (company,) = self.rpc(
            database, "model.company.company.search", [("party.code", "=", code)], 0, 1, None, {}
        )
        return int(company)

    def context(self, database: str, company: int | None = None) -> dict[str, Any]:
        """The service user's context, optionally switched to ``company`` (which must be one of the user's)."""
        context: dict[str, Any] = self.rpc(database, "model.res.user.get_preferences", True, {})
        if company is not None:
            # Tryton's record rules follow ``companies``; ``company`` alone changes only defaults.
            context["company"] = company
            context["companies"] = [company]
        return context

    def clone_cluster(self, data_dir: Path) -> None:
        """Copy this PostgreSQL cluster, templates included, to ``data_dir/postgres``.

        A ``finsync up`` on ``data_dir`` then starts its own embedded PostgreSQL
        there and finds the seeded template it needs, instead of building it.
        """
        target = EmbeddedPostgres(data_dir).directory
        data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(postgres_binary("pg_basebackup")),
                "--pgdata",
                str(target),
                "--dbname",
                database_url(self.database_url, "postgres"),
                "--checkpoint",
                "fast",
                "--wal-method",
                "stream",
            ],
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def erp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Erp]:
    """The ERP: embedded PostgreSQL, two databases seeded differently, one Tryton server (stopped at the end)."""
    data_dir = tmp_path_factory.mktemp("erp")
    postgres = EmbeddedPostgres(data_dir)
    assert postgres.start()
    try:
        paths = TrytonPaths(data_dir)
        build_base(postgres.url, paths)
        names = tuple(f"erp_v{variant}" for variant in ERP_VARIANTS)
        with ThreadPoolExecutor(len(names)) as pool:
            list(
                pool.map(
                    lambda name, variant: setup_database(postgres.url, name, Seed(ERP_LINES, variant), paths),
                    names,
                    ERP_VARIANTS,
                )
            )
        server = TrytonServer(data_dir, postgres.url, list(names), port=free_port())
        assert server.start()
        try:
            yield Erp(
                url=server.url,
                databases=names,
                login=SERVICE_LOGIN,
                password=ensure_secret(paths.service_password_file),
                password_file=paths.service_password_file,
                database_url=postgres.url,
                seed_lines=ERP_LINES,
                postgres=postgres,
                admin_password=ensure_secret(paths.admin_password_file),
            )
        finally:
            server.stop()
    finally:
        postgres.stop()
