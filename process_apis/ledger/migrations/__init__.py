"""Alembic's migrations of the control ledger: ``env.py`` and the revisions in ``versions/``.

A package so that the migrations ship with ``process_apis``; Alembic itself
loads these files by path, through :func:`process_apis.ledger.database.alembic_config`.
"""
