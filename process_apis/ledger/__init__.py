"""The control ledger: the durable, auditable record of what the process layer did.

Runs, audit events, exceptions, dead letters, reconciliation results and the event inbox, in
PostgreSQL through SQLAlchemy's asyncio ORM over psycopg 3, with the schema
migrated by Alembic when the ledger opens.

- :mod:`~process_apis.ledger.database`: where the ledger lives (:func:`ledger_url`,
  :func:`ensure_database`) and :class:`Ledger`, the open engine, sessions and store.
- :mod:`~process_apis.ledger.store`: :class:`LedgerStore`, every operation.
- :mod:`~process_apis.ledger.inbox`: :class:`EventInbox`, the source events recorded once each.
- :mod:`~process_apis.ledger.records`: the plain records those operations take and return.
- :mod:`~process_apis.ledger.models`: the tables; ``migrations/`` creates them.

In an app's lifespan::

    ledger = await open_ledger(settings)
    app.state.ledger = ledger.store
    ...
    await ledger.close()
"""

from __future__ import annotations

from process_apis.ledger.database import Ledger, ensure_database, ledger_url, open_ledger
from process_apis.ledger.inbox import EventInbox
from process_apis.ledger.records import (
    FINISHED_RUN_STATUSES,
    AuditEvent,
    AuditEventCreate,
    AuditKind,
    DeadLetter,
    EventState,
    ExceptionCase,
    ExceptionStatus,
    Reconciliation,
    ReconciliationCreate,
    ReconciliationStatus,
    Run,
    RunChanges,
    RunStatus,
    RunStep,
    RunTrigger,
    SourceEventRecord,
    SourceEventStatus,
    new_id,
    payload_hash,
)
from process_apis.ledger.store import UNSET, LedgerStore

__all__ = (
    "FINISHED_RUN_STATUSES",
    "UNSET",
    "AuditEvent",
    "AuditEventCreate",
    "AuditKind",
    "DeadLetter",
    "EventInbox",
    "EventState",
    "ExceptionCase",
    "ExceptionStatus",
    "Ledger",
    "LedgerStore",
    "Reconciliation",
    "ReconciliationCreate",
    "ReconciliationStatus",
    "Run",
    "RunChanges",
    "RunStatus",
    "RunStep",
    "RunTrigger",
    "SourceEventRecord",
    "SourceEventStatus",
    "ensure_database",
    "ledger_url",
    "new_id",
    "open_ledger",
    "payload_hash",
)
