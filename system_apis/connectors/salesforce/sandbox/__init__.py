"""The CRM sandbox: a local server shaped like Salesforce's REST API and Outbound Messaging. It is a sandbox, not
Salesforce.

finsync's Salesforce connector is tested against it (``python -m
system_apis.connectors.salesforce.sandbox``, or :func:`~.server.serve_sandbox`
from ``finsync serve crm-sandbox``). It serves an org whose accounts and
products agree with the ERP seed, OAuth 2.0 (client credentials and JWT
bearer), a SOQL subset with batches linked by ``nextRecordsUrl``, sObject
reads, Salesforce's error array and API limit, and pushes opportunity changes
as SOAP outbound messages with retries. It misbehaves on request through its
control API (``/sandbox/...``). ``README.md`` beside this file lists what it
implements and where it departs from Salesforce.

Modules, each named for what it does:

- :mod:`~.errors`: the error tree (one base, one subclass per ``errorCode``), and OAuth's error.
- :mod:`~.ids`: 18-character ids with Salesforce's key prefixes and checksum suffix.
- :mod:`~.schema`: the sObject types, their fields and types, the opportunity stages.
- :mod:`~.clock`: the org's clock (whole seconds, only forward).
- :mod:`~.org`: the in-memory records and the writes the seed and the control API make.
- :mod:`~.seed`: the seeded org, coherent with the ERP seed.
- :mod:`~.soql`: the SOQL subset: tokenizer, parser, type checks, evaluator.
- :mod:`~.queries`: query results in batches behind query locators.
- :mod:`~.tokens`: the OAuth grants, the token signature, sessions.
- :mod:`~.faults`: fault injection, the counters, the API usage limit.
- :mod:`~.outbound`: the outbound message queue, its SOAP envelope, delivery and retries.
- :mod:`~.config`: ``CrmSandboxConfig`` and the secret files.
- :mod:`~.state`: everything above, for one app; reset in one call.
- :mod:`~.responses`: the vendor's JSON shapes and the headers on every answer.
- :mod:`~.oauth_api`, :mod:`~.rest_api`, :mod:`~.control_api`: the routes.
- :mod:`~.app`: ``create_app()``; :mod:`~.server`: ``serve_sandbox`` under granian; ``__main__``: the command.
"""
