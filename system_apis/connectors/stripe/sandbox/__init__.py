"""The billing sandbox: a local server shaped like Stripe's API (``2025-03-31.basil``). It is a sandbox, not Stripe.

finsync's Stripe connector is tested against it. It holds one account seeded
coherently with the ERP seed (customers, products and prices, a year of
invoices and payments), runs invoices through Stripe's state machine, pages
lists newest first, honours ``Idempotency-Key``, keeps events for catch-up,
delivers signed webhooks with retries, and misbehaves on request through its
control API (``/sandbox/...``). ``README.md`` beside this file lists what it
implements and where it had to choose because Stripe's behaviour is
unverified.

Modules, each named for what it does:

- :mod:`~.errors`: Stripe's error tree (one base, one subclass per status and type).
- :mod:`~.config`: :class:`~.config.BillingSandboxConfig`, the pinned API version, secret files.
- :mod:`~.forms`: form-encoded parameters (``a[b]=1``, ``a[]=1``) and the checks on them.
- :mod:`~.objects`: the objects and their JSON; :mod:`~.store`: clock, ids, store, list paging.
- :mod:`~.search`: Stripe's search query language; :mod:`~.seed`: the seeded account.
- :mod:`~.idempotency`: ``Idempotency-Key``; :mod:`~.webhooks`: signed deliveries and their retries.
- :mod:`~.faults`: fault injection and the counters of what happened.
- :mod:`~.state`: everything above, for one app; reset in one call.
- :mod:`~.routing`, :mod:`~.resources`, :mod:`~.invoicing`, :mod:`~.api`: the ``/v1`` routes and their pipeline.
- :mod:`~.control_api`: the ``/sandbox`` routes.
- :mod:`~.app`: ``create_app()``; :mod:`~.server`: ``serve_sandbox`` under granian; ``__main__``: the command.
"""
