"""Alembic's environment for the control ledger: how a migration reaches the database.

Three ways in:

- :func:`process_apis.ledger.database.migrate` passes an open connection, inside
  a transaction and holding the migration lock, in ``config.attributes["connection"]``;
  the migrations join that transaction.
- Alembic's commands with a URL (``alembic_config(url)``, from synchronous code)
  open an async engine of their own and take the lock themselves.
- Offline mode (``sql=True``) prints the SQL for review and touches nothing.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from process_apis.ledger.database import lock_migrations
from process_apis.ledger.models import Base


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations on ``connection``, in the transaction it is in (its owner commits)."""
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_at(url: str) -> None:
    """Run the pending migrations on the database at ``url``, in one transaction, under the migration lock."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lock_migrations)
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def run_offline(url: str | None) -> None:
    """Write the migrations' SQL to Alembic's output instead of running it."""
    context.configure(
        url=url,
        dialect_name="postgresql",
        target_metadata=Base.metadata,
        literal_binds=True,
        # Named parameters, so a % in the SQL (the trigger's RAISE format) is printed as is, not doubled.
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Pick the way in (see the module docstring)."""
    config = context.config
    connection = config.attributes.get("connection")
    if context.is_offline_mode():
        run_offline(config.get_main_option("sqlalchemy.url"))
    elif connection is not None:
        run_migrations(connection)
    else:
        url = config.get_main_option("sqlalchemy.url")
        if url is None:
            raise RuntimeError(
                "no database: pass a URL to alembic_config() or a connection in its attributes"
            )
        asyncio.run(run_migrations_at(url))


main()
