"""Where the ledger lives and how it is opened: the URL, the database, the engine and the migrations.

The ledger has its own database. An operator names it with
``FINSYNC_LEDGER__DATABASE_URL``; otherwise it is database
``settings.ledger.database`` on the embedded PostgreSQL of the data dir (the
stack starts that server, and :func:`ensure_database` creates the database).

:meth:`Ledger.open` migrates the schema to the latest revision before it hands
out sessions. Migrations run inside one transaction under a PostgreSQL advisory
lock, so when several replicas start at once one migrates and the others wait,
then find nothing left to do. A failed migration rolls back whole.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import func, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from process_apis.ledger.inbox import EventInbox
from process_apis.ledger.store import LedgerStore
from shared.errors import SettingsError
from shared.postgres import EmbeddedPostgres, create_database, database_exists, database_url

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy import Connection

    from shared.settings import Settings

__all__ = (
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "Ledger",
    "alembic_config",
    "create_ledger_engine",
    "ensure_database",
    "ledger_url",
    "lock_migrations",
    "migrate",
    "open_ledger",
    "sqlalchemy_url",
)

MIGRATIONS = Path(__file__).with_name("migrations")
"""Alembic's script folder: ``env.py`` and ``versions/``."""
MIGRATION_LOCK = 0x66696E73_796E634C
"""Key of the advisory lock migrations run under (``finsyncL`` in ASCII); advisory locks are per database."""
_DRIVER = "postgresql+psycopg"
_APPLICATION_NAME = "finsync-ledger"


def sqlalchemy_url(url: str) -> str:
    """``url`` with SQLAlchemy's psycopg 3 scheme: ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``.

    Raises:
        SettingsError: ``url`` is not a PostgreSQL URL, or names another driver.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("postgresql", "postgres", _DRIVER):
        raise SettingsError(
            f"the ledger's database URL must start with postgresql:// or {_DRIVER}://, not {scheme or url!r}",
            key="ledger.database_url",
        )
    return f"{_DRIVER}://{rest}"


def _embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(Path(settings.data_dir).resolve())


def ledger_url(settings: Settings) -> str:
    """SQLAlchemy URL of the ledger: ``settings.ledger.database_url``, else the embedded server's database.

    The embedded server listens on a unix socket only; its URL carries the socket
    folder as ``?host=...``, which SQLAlchemy hands to psycopg as a connection
    parameter.
    """
    if settings.ledger.database_url:
        return sqlalchemy_url(settings.ledger.database_url)
    return sqlalchemy_url(database_url(_embedded(settings).url, settings.ledger.database))


def ensure_database(settings: Settings) -> None:
    """Create the ledger's database on the embedded PostgreSQL if it is missing. Blocking: call it in a thread.

    A configured ``database_url`` names a database its operator provides, so
    nothing is created there.

    Raises:
        SettingsError: the embedded PostgreSQL of the data dir does not answer.
    """
    if settings.ledger.database_url:
        return
    server = _embedded(settings)
    name = settings.ledger.database
    try:
        if not database_exists(server.url, name):
            create_database(server.url, name)
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        # Another replica created it between our check and our CREATE; the unique violation is how
        # PostgreSQL reports the two CREATEs racing inside the catalog.
        pass
    except psycopg.OperationalError as exc:
        raise SettingsError(
            f"the embedded PostgreSQL of {settings.data_dir} does not answer ({exc}); "
            "start the stack, or set FINSYNC_LEDGER__DATABASE_URL",
            key="ledger.database_url",
        ) from exc


def _json_dumps(value: Any) -> str:
    # msgspec rather than json: faster, and it encodes the Decimals and datetimes a payload may carry.
    return msgspec.json.encode(value).decode()


def create_ledger_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """The ledger's async engine on psycopg 3: ``pool_size`` kept connections, checked before use."""
    url = sqlalchemy_url(url)
    connect_args: dict[str, Any] = {}
    if "application_name" not in make_url(url).query:
        # Lets a DBA tell the ledger's connections apart in pg_stat_activity.
        connect_args["application_name"] = _APPLICATION_NAME
    return create_async_engine(
        url,
        pool_size=pool_size,
        # A server restart or failover leaves dead connections in the pool; test each before use.
        pool_pre_ping=True,
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
        connect_args=connect_args,
    )


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration, built here rather than read from an ``alembic.ini``.

    With ``url``, Alembic's own commands (``command.upgrade(alembic_config(url), "head")``,
    ``command.history``...) work on that database; with ``sql=True`` they print
    the SQL for review instead of running it.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # New revisions are named like 0001_control_ledger.py (pass rev_id="0002" to command.revision).
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        # The option goes through configparser, which reads % as interpolation (URL-encoded passwords have %).
        config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def lock_migrations(connection: Connection) -> None:
    """Take :data:`MIGRATION_LOCK` until ``connection``'s transaction ends; wait while another holds it.

    Replicas starting together queue here, and each one after the first finds
    the schema current. The lock is transaction-scoped: it goes with the commit
    or rollback, or with the connection if the process dies mid-way.
    """
    connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


_local_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _local_lock() -> asyncio.Lock:
    """This event loop's migration lock (an asyncio lock belongs to one loop)."""
    return _local_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` in one transaction, under the migration lock."""
    # Alembic keeps the running migration in module globals (``context``, ``op``), so two migrations of one
    # process must not interleave, even on two databases: the local lock queues them. The database lock,
    # taken before Alembic starts, queues the other processes.
    async with _local_lock(), engine.begin() as connection:
        await connection.run_sync(lock_migrations)
        await connection.run_sync(_upgrade, revision)


@dataclass(frozen=True, slots=True)
class Ledger:
    """The open ledger: its engine, a session factory and the store over it. Keep one per process."""

    engine: AsyncEngine
    """The connection pool."""
    sessions: async_sessionmaker[AsyncSession]
    """Sessions on the ledger; most code uses :attr:`store` instead."""
    store: LedgerStore
    """The operations the rest of the process layer uses."""
    inbox: EventInbox
    """The event inbox and the newest state per business object."""

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 5, migrate_schema: bool = True) -> Ledger:
        """Connect to the ledger at ``url`` and, unless told not to, migrate it to the latest revision.

        Raises:
            SettingsError: ``url`` is not a PostgreSQL URL.
        """
        engine = create_ledger_engine(url, pool_size=pool_size)
        try:
            if migrate_schema:
                await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        # Records are built inside each operation, so nothing reads an expired attribute after commit.
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        return cls(engine=engine, sessions=sessions, store=LedgerStore(sessions), inbox=EventInbox(sessions))

    async def ping(self) -> None:
        """Raise unless the database answers a query (for readiness probes)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Ledger:
        """The ledger itself; ``close`` runs on exit."""
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Close the ledger."""
        await self.close()


async def open_ledger(settings: Settings) -> Ledger:
    """The ledger ``settings`` name, created if embedded and missing, migrated and open (for an app's lifespan)."""
    await asyncio.to_thread(ensure_database, settings)
    return await Ledger.open(ledger_url(settings), pool_size=settings.ledger.pool_size)
