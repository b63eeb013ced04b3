"""The planning sandbox: a local server shaped like Anaplan's Integration API v2. It is a sandbox, not Anaplan.

finsync's Anaplan connector is tested against it (``finsync serve
planning-sandbox``). It serves one workspace with one model whose lists agree
with the ERP seed, takes chunked uploads, runs import and export tasks with the
vendor's semantics, and misbehaves on request through its control API
(``/sandbox/...``). ``README.md`` beside this file lists what it implements and
where it had to choose because the vendor's behaviour is unverified.

Modules, each named for what it does:

- :mod:`~.errors`: the sandbox's error tree (one base, one subclass per status).
- :mod:`~.catalog`: the fixed ids and names of the workspace, model, lists, files, import and export.
- :mod:`~.model`: the in-memory planning model (lists, versions, time, cells).
- :mod:`~.seed`: the seeded model (budget and forecast coherent with the ERP seed's actuals).
- :mod:`~.files`: files and their chunked uploads.
- :mod:`~.tokens`: the one user's password and its tokens.
- :mod:`~.faults`: fault injection and the counters of what happened.
- :mod:`~.tasks`: the task lifecycle shared by imports and exports (states, progress, cancel, polling speed).
- :mod:`~.importing` and :mod:`~.exporting`: what an import task and an export task do.
- :mod:`~.state`: everything above, for one app; reset in one call.
- :mod:`~.responses`: the vendor's JSON envelope, and errors in its shape.
- :mod:`~.token_api`, :mod:`~.integration_api`, :mod:`~.control_api`: the routes.
- :mod:`~.app`: ``create_app()``; :mod:`~.server`: ``serve_sandbox`` under granian.
"""
