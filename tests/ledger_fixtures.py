"""The ``ledger_server`` and ``ledger_url`` fixtures: a real embedded PostgreSQL, and a fresh ledger database.

One embedded PostgreSQL (unix socket only) serves the whole session; each test
that asks for ``ledger_url`` gets a database of its own on it, empty (no
schema: opening the ledger migrates it), dropped afterwards::

    async def test_something(ledger_url: str) -> None:
        async with await Ledger.open(ledger_url) as ledger:
            ...
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import pytest

from process_apis.ledger.database import sqlalchemy_url
from shared.postgres import EmbeddedPostgres, create_database, database_url, drop_database

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("ledger_server", "ledger_url")


@pytest.fixture(scope="session")
def ledger_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL for the session, owned by a temporary data dir (``.url`` is its server URL)."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("ledger"))
    assert server.start()
    yield server
    server.stop()


@pytest.fixture
def ledger_url(ledger_server: EmbeddedPostgres) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://...?host=<socket dir>``) of a new, empty database."""
    name = f"ledger_{secrets.token_hex(6)}"
    create_database(ledger_server.url, name)
    yield sqlalchemy_url(database_url(ledger_server.url, name))
    drop_database(ledger_server.url, name)
