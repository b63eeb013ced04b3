"""The finsync Tryton module: a unique ``(company, external_ref)`` on moves and invoices, a unique ``external_ref`` on parties.

Tryton loads it through the ``trytond.modules`` entry point named ``finsync``
(``pyproject.toml``); its classes are listed in the ``[register]`` section of
``tryton.cfg``, which replaces the deprecated ``register()`` function in Tryton 8.2.
Writes that carry an external reference are then replay-safe in the ERP itself:
PostgreSQL refuses a second move or invoice with the same reference in the same
company (or a second party with the same reference), whatever the caller did before.
"""
