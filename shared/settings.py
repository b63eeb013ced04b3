"""Settings: msgspec Structs decoded from ``FINSYNC_*`` environment variables and a TOML file.

Environment variables use the ``FINSYNC_`` prefix and ``__`` for nesting
(``FINSYNC_LOG__LEVEL=DEBUG`` sets ``log.level``). Structured settings (sources,
clients, tiers, schedules) live in the TOML file named by ``FINSYNC_CONFIG``.
Environment values override the file. Every Struct forbids unknown fields, so a
misspelt key stops start-up with a message that names it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from shared.errors import SettingsError

__all__ = (
    "ActualsToPlanSettings",
    "AnaplanSourceConfig",
    "ClientSettings",
    "EventConsumerSettings",
    "EventSettings",
    "FlowsSettings",
    "HttpSettings",
    "HttpSourceConfig",
    "LedgerSettings",
    "LogSettings",
    "MetricsSettings",
    "OrderToCashSettings",
    "PlanningSandboxSettings",
    "PortSettings",
    "SalesforceSourceConfig",
    "Settings",
    "SourceConfig",
    "StripeSourceConfig",
    "WorkbenchSettings",
    "WorkerSettings",
    "duration_seconds",
    "load_settings",
)

ENV_PREFIX = "FINSYNC_"
ENV_NESTING = "__"

Port = Annotated[int, Meta(ge=0, le=65535)]
PositiveFloat = Annotated[float, Meta(gt=0)]
LayerName = Literal["auth", "system", "process", "experience"]


class _Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base for every settings Struct.

    ``kw_only`` so field order never matters, ``forbid_unknown_fields`` so a typo
    fails loudly.
    """


class PortSettings(_Base):
    """Loopback ports of the local stack (DESIGN.md, "Local ports")."""

    auth: Port = 8100
    """Built-in authorization server."""
    system: Port = 8101
    """system_apis."""
    process: Port = 8102
    """process_apis."""
    experience: Port = 8103
    """experience_apis."""
    erp: Port = 8110
    """The local stack's Tryton server."""
    planning_sandbox: Port = 8121
    """The Anaplan-shaped planning sandbox (a local stand-in, not Anaplan)."""
    crm_sandbox: Port = 8122
    """The Salesforce-shaped CRM sandbox (a local stand-in, not Salesforce)."""
    billing_sandbox: Port = 8123
    """The Stripe-shaped billing sandbox (a local stand-in, not Stripe)."""


class LogSettings(_Base):
    """Structured logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Root log level."""
    access: bool = True
    """Write one JSON line per request (method, route, status, duration, trace id)."""


class MetricsSettings(_Base):
    """Prometheus metrics."""

    enabled: bool = True
    """Serve ``GET /metrics`` and record request metrics."""


class HttpSettings(_Base):
    """Inbound HTTP limits."""

    max_body_size: Annotated[int, Meta(gt=0)] = 10 * 1024 * 1024
    """Largest accepted request body, in bytes; larger bodies get 413."""


class ClientSettings(_Base):
    """The client each layer uses to call the layer below."""

    timeout: PositiveFloat = 5.0
    """Seconds for connect, read and write, each."""
    retries: Annotated[int, Meta(ge=0, le=10)] = 2
    """Retries of a transient failure (connect error, timeout, 429, 502, 503, 504)."""
    backoff_factor: Annotated[float, Meta(ge=0)] = 0.1
    """Base of the exponential backoff, in seconds; full jitter is applied."""


class HttpSourceConfig(_Base, tag="http", tag_field="kind"):
    """A generic source watched over HTTP: a base URL and a health path."""

    base_url: str
    """Where the system answers, e.g. ``http://127.0.0.1:9000``."""
    health_path: str = "/"
    """Path answered with a 2xx when the system is healthy."""
    timeout: PositiveFloat = 2.0
    """Seconds before the health probe counts the source as down."""
    description: str = ""
    """Free text shown in listings."""


class TrytonSourceConfig(_Base, tag="tryton", tag_field="kind"):
    """A Tryton ERP: one database of one Tryton server, reached over JSON-RPC as one service user."""

    url: str
    """The Tryton server, e.g. ``http://127.0.0.1:8110``."""
    database: str
    """The Tryton database this source is."""
    login: str = "finsync"
    """The service user's login."""
    password: str | None = None
    """The service user's password; prefer ``password_file``."""
    password_file: str | None = None
    """File holding the service user's password."""
    timeout: PositiveFloat = 30.0
    """Seconds to wait for one JSON-RPC answer before answering 504."""
    concurrency: Annotated[int, Meta(ge=1, le=64)] = 4
    """Calls in flight at once against this ERP."""
    lookback: PositiveFloat = 300.0
    """Seconds incremental reads look back, at least the longest ERP transaction (late commits)."""
    description: str = ""
    """Free text shown in listings."""


MIN_POLL_INTERVAL = 5.0
"""Anaplan asks for at most one task poll every 5 s; only a source marked ``sandbox`` may poll faster."""


class AnaplanSourceConfig(_Base, tag="anaplan", tag_field="kind"):
    """An Anaplan planning model, reached over its Integration API v2 as one user (HTTP Basic)."""

    url: str
    """The API host, e.g. ``https://api.anaplan.com``; calls go to ``{url}/2/0/...``."""
    workspace: str
    """Workspace id."""
    model: str
    """Model id."""
    user: str
    """The integration user's login (an email address)."""
    auth_url: str | None = None
    """The authentication host, e.g. ``https://auth.anaplan.com``. Default: ``url``."""
    password: str | None = None
    """Its password; prefer ``password_file``."""
    password_file: str | None = None
    """File holding its password."""
    import_name: str = "Planning Data Load"
    """The import action that loads cells from the import file."""
    export_name: str = "Planning Data Export"
    """The export action that writes every cell to its file."""
    mapping: str = "anaplan/v1"
    """Version of the mapping rules (``system_apis/mappings/{mapping}.toml``)."""
    timeout: PositiveFloat = 30.0
    """Seconds to wait for one API answer."""
    retries: Annotated[int, Meta(ge=0, le=20)] = 6
    """Retries of a call answered 409 (model busy), 429 or 5xx, or not answered."""
    backoff: Annotated[float, Meta(ge=0)] = 0.5
    """Base of the exponential backoff in seconds (full jitter); ``Retry-After`` wins when longer."""
    poll_interval: PositiveFloat = MIN_POLL_INTERVAL
    """Seconds between two polls of a task: at least 5, as Anaplan asks, unless ``sandbox`` is set."""
    chunk_size: Annotated[int, Meta(ge=1024, le=50 * 1024 * 1024)] = 8 * 1024 * 1024
    """Bytes per uploaded chunk (Anaplan takes 1 to 50 MB; smaller only makes sense against the sandbox)."""
    sandbox: bool = False
    """The model is finsync's planning sandbox: faster polling is allowed (tests only)."""
    description: str = ""
    """Free text shown in listings."""

    def __post_init__(self) -> None:
        if self.poll_interval < MIN_POLL_INTERVAL and not self.sandbox:
            raise ValueError(
                f"poll_interval below {MIN_POLL_INTERVAL:g}s is only allowed for a sandbox source (sandbox = true)"
            )


class GeneratedSourceConfig(_Base, tag="generated", tag_field="kind"):
    """A generated ledger: an ERP-shaped source whose actuals are computed, not read (load tests, demos).

    It serves legal entities, fiscal periods and balances through the ERP routes, deterministically from its
    cardinalities and ``seed``, balanced like real books. It holds no transactions and takes no writes.
    """

    entities: Annotated[int, Meta(ge=1, le=99)] = 5
    """Legal entities, ``G01``..."""
    periods: Annotated[int, Meta(ge=1, le=12)] = 10
    """Monthly periods from ``first_period``."""
    first_period: Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] = "2026-01"
    """The first period; the periods stay within its year."""
    closed_periods: Annotated[int, Meta(ge=0, le=12)] = 3
    """How many of the first periods are closed."""
    revenue_accounts: Annotated[int, Meta(ge=1, le=9999)] = 199
    """Revenue accounts, ``R0001``..."""
    expense_accounts: Annotated[int, Meta(ge=1, le=9999)] = 800
    """Expense accounts, ``X0001``..."""
    balance_sheet_accounts: Annotated[int, Meta(ge=2, le=99)] = 20
    """Balance-sheet accounts, ``B01``... (assets, liabilities, equity)."""
    cost_centers: Annotated[int, Meta(ge=1, le=99)] = 20
    """Cost centres, ``CC-01``...; every profit-and-loss amount is split over all of them."""
    seed: int = 1
    """Seed of the amounts."""
    description: str = ""
    """Free text shown in listings."""

    def __post_init__(self) -> None:
        month = int(self.first_period[5:7])
        if month + self.periods - 1 > 12:
            raise ValueError(f"{self.periods} periods from {self.first_period} leave the year")


OrganizationId = Annotated[str, Meta(pattern=r"^00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")]
"""A Salesforce org id: ``00D`` and 12 more characters, or 15 more (the 18-character form)."""


class SalesforceSourceConfig(_Base, tag="salesforce", tag_field="kind"):
    """A Salesforce org (the CRM), reached over its REST API as a connected app's integration user."""

    login_url: str
    """Where tokens come from: ``https://login.salesforce.com``, ``https://test.salesforce.com``, a My Domain,
    or the CRM sandbox; tokens are asked for at ``{login_url}/services/oauth2/token``."""
    client_id: str
    """The connected app's consumer key."""
    grant: Literal["client_credentials", "jwt_bearer"] = "client_credentials"
    """How the connector gets its token: the client-credentials flow (consumer secret), or the JWT bearer flow
    (an RS256 assertion signed with ``private_key_file``, for ``username``)."""
    client_secret: str | None = None
    """The consumer secret, for ``client_credentials``; prefer ``client_secret_file``."""
    client_secret_file: str | None = None
    """File holding the consumer secret."""
    username: str | None = None
    """The integration user, ``sub`` of JWT bearer assertions."""
    private_key_file: str | None = None
    """PEM private key JWT bearer assertions are signed with."""
    api_version: Annotated[str, Meta(pattern=r"^[0-9]{2}\.0$")] = "62.0"
    """REST API version (``/services/data/v62.0``)."""
    legal_entity_field: Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")] = "Legal_Entity__c"
    """The Opportunity field that names the selling legal entity (a custom field: its code)."""
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] | None = None
    """The org's currency when multi-currency is off (records then have no ``CurrencyIsoCode`` field, and
    asking for it fails); unset: each record's own ``CurrencyIsoCode`` is read."""
    lookback: PositiveFloat = 300.0
    """Seconds incremental reads look back behind the cursor, to catch records committed late."""
    quota_reserve: Annotated[float, Meta(ge=0, lt=1)] = 0.1
    """Share of the org's daily API allowance (``Sforce-Limit-Info``) the connector leaves to other
    integrations: past ``(1 - quota_reserve)`` of it, calls are refused here (503) without reaching the org."""
    timeout: PositiveFloat = 30.0
    """Seconds to wait for one API answer."""
    retries: Annotated[int, Meta(ge=0, le=20)] = 6
    """Retries of a call answered 5xx or ``REQUEST_LIMIT_EXCEEDED``, or not answered."""
    backoff: Annotated[float, Meta(ge=0)] = 0.5
    """Base of the exponential backoff in seconds (full jitter)."""
    concurrency: Annotated[int, Meta(ge=1, le=25)] = 4
    """Calls in flight at once against the org."""
    mapping: str = "salesforce/v1"
    """Version of the mapping rules, recorded on every record."""
    outbound_token: str | None = None
    """The secret path token of the outbound-message listener
    (``/v1/crm/{source}/outbound-messages/{token}``); prefer ``outbound_token_file``. Neither set: the
    listener refuses every call."""
    outbound_token_file: str | None = None
    """File holding the outbound-message path token."""
    organization_id: OrganizationId | None = None
    """The org's id (``00D…``, 15 or 18 characters): outbound messages from another org are refused. Unset:
    not checked (the path token alone admits a call)."""
    description: str = ""
    """Free text shown in listings."""

    def __post_init__(self) -> None:
        if self.grant == "client_credentials" and not (self.client_secret or self.client_secret_file):
            raise ValueError("grant client_credentials needs client_secret or client_secret_file")
        if self.grant == "jwt_bearer" and not (self.username and self.private_key_file):
            raise ValueError("grant jwt_bearer needs username and private_key_file")


class StripeSourceConfig(_Base, tag="stripe", tag_field="kind"):
    """A Stripe account (billing), reached over its REST API with a secret key."""

    url: str = "https://api.stripe.com"
    """The API host; calls go to ``{url}/v1/...``."""
    secret_key: str | None = None
    """The secret (or restricted) key; prefer ``secret_key_file``."""
    secret_key_file: str | None = None
    """File holding the key."""
    api_version: str = "2025-03-31.basil"
    """The ``Stripe-Version`` every call pins."""
    timeout: PositiveFloat = 30.0
    """Seconds to wait for one API answer."""
    retries: Annotated[int, Meta(ge=0, le=20)] = 6
    """Retries of a call Stripe says may be retried (``Stripe-Should-Retry``, 429, 5xx), or not answered."""
    backoff: Annotated[float, Meta(ge=0)] = 0.5
    """Base of the exponential backoff in seconds (full jitter); ``Retry-After`` wins when longer."""
    concurrency: Annotated[int, Meta(ge=1, le=64)] = 8
    """Calls in flight at once against the account."""
    mapping: str = "stripe/v1"
    """Version of the mapping rules, recorded on every record."""
    entity_by_currency: dict[
        Annotated[str, Meta(pattern=r"^[A-Z]{3}$")],
        Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")],
    ] = msgspec.field(default_factory=dict)
    """The legal entity that bills in each currency (``{USD = "FS-US", EUR = "FS-EU"}``): the entity of an
    invoice that carries no ``legal_entity`` metadata (one made outside finsync), and the only entity an
    invoice in that currency may be created for. Empty: such invoices have no entity."""
    webhook_secrets: list[str] = msgspec.field(default_factory=list)
    """Webhook endpoint secrets (``whsec_…``) a ``Stripe-Signature`` may be made with; prefer
    ``webhook_secret_files``. Several while a secret is rotated: a signature by any of them is accepted.
    Neither set: the webhook route refuses every delivery."""
    webhook_secret_files: list[str] = msgspec.field(default_factory=list)
    """Files each holding one webhook endpoint secret (read at each delivery, so a rotation needs no restart)."""
    webhook_tolerance: Annotated[int, Meta(ge=1, le=86400)] = 300
    """Seconds a signature's timestamp may be away from now; an older delivery is a replay (Stripe: 300)."""
    description: str = ""
    """Free text shown in listings."""

    def __post_init__(self) -> None:
        if not (self.secret_key or self.secret_key_file):
            raise ValueError("a stripe source needs secret_key or secret_key_file")


SourceConfig = (
    HttpSourceConfig
    | TrytonSourceConfig
    | AnaplanSourceConfig
    | GeneratedSourceConfig
    | SalesforceSourceConfig
    | StripeSourceConfig
)
"""Union of every source kind, tagged by ``kind``."""
SourceKind = Literal["http", "tryton", "anaplan", "generated", "salesforce", "stripe"]
"""The ``kind`` tags of :data:`SourceConfig`."""

Scope = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_-]*)?$")]
Rate = Annotated[str, Meta(pattern=r"^\d+ ?(/|per) ?(\d+ )?(second|minute|hour|day)s?$")]
"""A rate in the ``limits`` notation, such as ``100/minute`` or ``10 per second``."""


class ClientConfig(_Base):
    """An OAuth client: who it is, how it authenticates, what it may do, how fast."""

    secret_hash: str | None = None
    """``scrypt$...`` hash of the client secret (``finsync auth hash-secret``); for ``client_secret_*``."""
    jwks: dict[str, Any] | None = None
    """Public keys (a JWKS) for ``private_key_jwt`` client authentication."""
    jwks_file: str | None = None
    """Path of a JWKS file, instead of ``jwks``."""
    scopes: list[Scope] = msgspec.field(default_factory=list)
    """Scopes the client may be granted."""
    audiences: list[str] = msgspec.field(default_factory=list)
    """Audiences (services) it may get tokens for; the first is the default."""
    internal: bool = False
    """A finsync layer: may name the original caller (``on_behalf_of``) in its tokens."""
    tier: str = "default"
    """Rate-limit tier (``tiers.<name>``)."""


class AuthSettings(_Base):
    """This service as an OAuth resource server, and as a client of the layer below."""

    enabled: bool = True
    """Require a bearer token on every route but health, metrics, the schema and problem pages."""
    issuer: str = "http://127.0.0.1:8100"
    """Expected ``iss``; also where the built-in server says it lives."""
    audience: str | None = None
    """Expected ``aud``. Default: ``finsync-{service}``, so a token for one layer fails at another."""
    jwks_url: str | None = None
    """Where the issuer's keys are. Default: ``{issuer}/jwks.json`` unless ``jwks_file`` is set."""
    jwks_file: str | None = None
    """A local JWKS file instead of a URL."""
    algorithms: list[Literal["RS256", "ES256"]] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    """Allowed token signature algorithms."""
    leeway: Annotated[int, Meta(ge=0, le=300)] = 30
    """Seconds of clock skew allowed on ``exp`` and ``nbf``."""
    jwks_refetch_interval: Annotated[float, Meta(ge=0)] = 30.0
    """Least seconds between two refetches of the JWKS for an unknown ``kid``."""
    public_metrics: bool = True
    """Serve ``/metrics`` without a token."""
    client_id: str | None = None
    """This layer's own client, for calling the layer below."""
    client_secret: str | None = None
    """Its secret."""
    token_url: str | None = None
    """Token endpoint. Default: ``{issuer}/oauth/token``."""


class AuthServerSettings(_Base):
    """The built-in authorization server (``finsync serve auth``)."""

    keys_dir: str | None = None
    """Signing keys shared by every replica. Default: ``{data_dir}/auth/keys``."""
    algorithm: Literal["RS256", "ES256"] = "RS256"
    """Algorithm of newly generated keys."""
    token_lifetime: Annotated[int, Meta(ge=30, le=86400)] = 300
    """Seconds an access token lives."""


class TierConfig(_Base):
    """A rate-limit tier."""

    limit: Rate = "600/minute"
    """Default rate for every route."""
    routes: dict[str, Rate] = msgspec.field(default_factory=dict)
    """Per-route rates, keyed ``"METHOD /path/template"``."""


class RateLimitSettings(_Base):
    """Rate limiting with ``limits`` on the shared Redis."""

    enabled: bool = True
    """Limit every authenticated or anonymous caller."""
    strategy: Literal["moving-window", "sliding-window-counter"] = "sliding-window-counter"
    """Window algorithm."""
    failure_policy: Literal["open", "closed"] = "open"
    """When Redis is down: let requests through (open) or answer 503 (closed)."""
    anonymous_tier: str = "anonymous"
    """Tier of callers without a token, keyed by client IP."""


class ErpSettings(_Base):
    """The local stack's ERP: Tryton on PostgreSQL."""

    database_url: str | None = None
    """PostgreSQL server holding the ERP databases (``FINSYNC_ERP__DATABASE_URL``). Unset: an embedded
    PostgreSQL in ``data_dir``, owned by the stack."""
    seed_lines: Annotated[int, Meta(ge=0)] = 10_000
    """About how many journal lines the seed script posts."""
    seed_variant: Annotated[int, Meta(ge=0)] = 1
    """Which content the seed draws: databases seeded with different variants hold different books."""
    database: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "erp"
    """The working database ``finsync up`` serves, copied from the seeded template."""


class PlanningSandboxSettings(_Base):
    """The Anaplan-shaped planning sandbox (``finsync serve planning-sandbox``): a local stand-in, not Anaplan."""

    user: str = "integration@finsync.sandbox"
    """The one user it knows (HTTP Basic login)."""
    password_file: str | None = None
    """File holding that user's password. Default: ``{data_dir}/planning-sandbox/password``, generated once."""
    token_lifetime: Annotated[int, Meta(ge=1)] = 35 * 60
    """Seconds a token lives (Anaplan: 35 minutes)."""
    min_poll_interval: Annotated[float, Meta(ge=0)] = 5.0
    """Polls of one task closer than this answer 429 (Anaplan asks for 5 s); ``--fast-polling`` sets 0."""
    export_chunk_size: Annotated[int, Meta(ge=1)] = 1024 * 1024
    """Bytes per chunk of an export's file."""
    seed_lines: Annotated[int, Meta(ge=0)] | None = None
    """Scale of the seeded budget: the ERP seed's journal lines. Default: ``erp.seed_lines``."""

    def password_path(self, data_dir: Path) -> Path:
        """``password_file``, or ``{data_dir}/planning-sandbox/password``."""
        return Path(self.password_file) if self.password_file else data_dir / "planning-sandbox" / "password"


class LedgerSettings(_Base):
    """The process layer's control ledger: PostgreSQL through SQLAlchemy (async), migrated by Alembic."""

    database_url: str | None = None
    """SQLAlchemy URL of the ledger's own database (``postgresql+psycopg://...``,
    ``FINSYNC_LEDGER__DATABASE_URL``). Unset: database ``database`` on the embedded PostgreSQL of ``data_dir``."""
    database: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "finsync_ledger"
    """Name of the ledger's database on the embedded PostgreSQL."""
    pool_size: Annotated[int, Meta(ge=1, le=100)] = 5
    """Connections each process keeps to the ledger."""


class WorkerSettings(_Base):
    """The process layer's durable work: Redis Streams with a consumer group, retries, dead letters."""

    concurrency: Annotated[int, Meta(ge=1, le=64)] = 4
    """Jobs one process runs at once."""
    attempts: Annotated[int, Meta(ge=1, le=50)] = 5
    """Tries of a job before it goes to the dead letters in the ledger."""
    backoff: Annotated[float, Meta(ge=0)] = 2.0
    """Base of the exponential backoff between tries, in seconds; full jitter."""
    backoff_max: Annotated[float, Meta(gt=0)] = 300.0
    """Longest wait before a retry, in seconds."""
    claim_after: Annotated[float, Meta(gt=0)] = 60.0
    """Seconds a job may stay unacknowledged before another consumer claims it (its consumer died)."""


Duration = Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,5}[smhd]$")]
"""A duration: a whole number and a unit, ``s``, ``m``, ``h`` or ``d`` (``"90m"``, ``"24h"``, ``"2d"``)."""
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(duration: str) -> int:
    """Seconds in a :data:`Duration` such as ``"24h"``."""
    return int(duration[:-1]) * _DURATION_UNITS[duration[-1]]


class ActualsToPlanSettings(_Base):
    """The actuals-to-plan flow: which sources, and when it runs on its own."""

    source: str = "erp"
    """The ERP source runs read by default."""
    planning: str = "planning"
    """The planning source runs load into by default."""
    schedule: str | None = None
    """A cron expression (UTC, five fields, such as ``"0 2 * * *"``) for scheduled runs; unset: on demand only."""
    entities: list[str] = msgspec.field(default_factory=list)
    """Entities of a scheduled run; empty: every entity of the ERP."""
    months_back: Annotated[int, Meta(ge=0, le=36)] = 2
    """A scheduled run covers the current month and this many before it."""
    map_version: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = "v1"
    """The dimension map new runs and replays use (``{maps_dir}/{map_version}.toml``)."""
    maps_dir: str | None = None
    """A directory of the deployment's own dimension maps; unset: the maps packaged with the flow."""
    freshness_objective: Duration = "24h"
    """How old an (entity, period)'s last reconciled load may be and still meet the freshness objective
    (``GET /v1/workbench/freshness``): ``"24h"``, ``"90m"``, ``"2d"``. A period loaded after it closed meets
    it at any age: its actuals can no longer change."""


class FlowsSettings(_Base):
    """The process layer's flows."""

    actuals_to_plan: ActualsToPlanSettings = msgspec.field(default_factory=ActualsToPlanSettings)
    """Actuals to plan."""


class WorkbenchSettings(_Base):
    """The planner's workbench (``/v1/workbench/...`` on the process and experience layers)."""

    timeout: Annotated[float, Meta(ge=1, le=3600)] = 120.0
    """Seconds a workbench read may take: the experience layer waits this long for the process layer, which
    gives each read of the planning platform half of it (a read runs the platform's export, seconds to
    minutes), so that one retry still fits."""


class IdempotencySettings(_Base):
    """Idempotency-Key handling on effectful writes."""

    retention: Annotated[int, Meta(ge=60)] = 86400
    """Seconds a completed answer is kept for replay (24 h)."""
    in_flight_timeout: Annotated[int, Meta(ge=1)] = 60
    """Seconds an unfinished request holds its key before another may run."""


class EventSettings(_Base):
    """Pushes from sources (webhooks, outbound messages) turned into events on the published streams."""

    max_backlog: Annotated[int, Meta(ge=1)] = 10_000
    """Entries a source kind's stream may hold (``XLEN``: the consumer deletes what it has acknowledged);
    at or past it, pushes are turned away (503) and the source retries later."""
    dedupe_window: Annotated[int, Meta(ge=60)] = 7 * 86400
    """Seconds a pushed event's ``dedupe_key`` is remembered: a delivery repeated within it is acknowledged
    and not appended again. Longer than the sources retry (Stripe: 3 days, Salesforce: 24 hours)."""
    retry_after: Annotated[int, Meta(ge=1, le=3600)] = 5
    """``Retry-After`` seconds of a push turned away."""


class EventConsumerSettings(_Base):
    """The process layer's consumption of the system layer's event streams, and its catch-up sweep.

    Consumption is always on: an idle stream costs one blocked read per second.
    The sweep runs only for the sources listed here, on ``sweep_schedule``.
    """

    group: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]{0,62}$")] = "process"
    """The consumer group every replica joins on each stream."""
    batch: Annotated[int, Meta(ge=1, le=1000)] = 100
    """Stream entries read at once."""
    claim_after: Annotated[float, Meta(gt=0)] = 60.0
    """Seconds an entry or an event job may stay unacknowledged before another consumer claims it."""
    attempts: Annotated[int, Meta(ge=1, le=50)] = 5
    """Tries of an event's handlers before the event goes to the dead letters in the ledger."""
    backoff: Annotated[float, Meta(ge=0)] = 1.0
    """Base of the exponential backoff between tries, in seconds; full jitter."""
    backoff_max: Annotated[float, Meta(gt=0)] = 300.0
    """Longest wait before a retry, in seconds."""
    concurrency: Annotated[int, Meta(ge=1, le=64)] = 8
    """Event jobs one process runs at once."""
    sweep_schedule: str = "*/5 * * * *"
    """Cron expression (UTC, five fields) of the catch-up sweep; it fires on one replica per tick."""
    crm_sources: list[str] = msgspec.field(default_factory=list)
    """CRM sources the sweep reads bookings of (``GET /v1/crm/{source}/bookings``)."""
    billing_sources: list[str] = msgspec.field(default_factory=list)
    """Billing sources the sweep reads events of (``GET /v1/billing/{source}/events``)."""
    sweep_since: Duration = "1d"
    """How far back the first sweep of a source reads; later sweeps go on from where the last one ended."""
    sweep_overlap: Annotated[float, Meta(ge=0)] = 300.0
    """Seconds each billing sweep reads again before the newest event it saw (late commits; dedupe absorbs)."""
    metrics_interval: Annotated[float, Meta(gt=0)] = 15.0
    """Seconds between samples of stream depth, pending entries and lag for ``/metrics``."""


class OrderToCashSettings(_Base):
    """The order-to-cash flow: which sources it joins, and the map it reads legal entities and accounts from."""

    enabled: bool = False
    """Subscribe the flow to the event path at start. Off (the default), its events are recorded and nothing
    else: turn it on where its CRM, billing and ERP sources are the company's own."""
    crm: str = "crm"
    """The CRM source whose closed-won deals are billed."""
    billing: str = "billing"
    """The billing source invoices are created in."""
    erp: str = "erp"
    """The ERP source receivables and payments are posted to."""
    map_version: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = "v1"
    """The flow's map (``{maps_dir}/{map_version}.toml``): legal entities and the accounts of a reversal."""
    maps_dir: str | None = None
    """A directory of the deployment's own maps; unset: the maps packaged with the flow."""


class Settings(_Base):
    """Everything a finsync process can be configured with."""

    config: str | None = None
    """Path of the TOML file (``FINSYNC_CONFIG``)."""
    data_dir: str = ".finsync"
    """Where embedded state lives: Redis socket and append-only file, logs, metrics."""
    redis_url: str | None = None
    """Any Redis URL. Unset: the stack starts an embedded Redis in ``data_dir``."""
    host: str = "127.0.0.1"
    """Interface the services bind to."""
    ports: PortSettings = msgspec.field(default_factory=PortSettings)
    """Service ports."""
    system_url: str | None = None
    """Base URL of system_apis, used by process_apis. Default: ``http://{host}:{ports.system}``."""
    process_url: str | None = None
    """Base URL of process_apis, used by experience_apis. Default: ``http://{host}:{ports.process}``."""
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    """Logging."""
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    """Metrics."""
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    """Inbound HTTP limits."""
    client: ClientSettings = msgspec.field(default_factory=ClientSettings)
    """Outbound client to the layer below."""
    sources: dict[Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]{0,62}$")], SourceConfig] = msgspec.field(
        default_factory=dict
    )
    """Source systems, by id (TOML only: ids such as ``erp-us`` are not environment names)."""
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    """OAuth resource server and layer-below client."""
    auth_server: AuthServerSettings = msgspec.field(default_factory=AuthServerSettings)
    """Built-in authorization server."""
    clients: dict[str, ClientConfig] = msgspec.field(default_factory=dict)
    """OAuth clients, by client id (TOML)."""
    tiers: dict[str, TierConfig] = msgspec.field(
        default_factory=lambda: {"default": TierConfig(), "anonymous": TierConfig(limit="60/minute")}
    )
    """Rate-limit tiers, by name (TOML)."""
    rate_limit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    """Rate limiting."""
    idempotency: IdempotencySettings = msgspec.field(default_factory=IdempotencySettings)
    """Idempotency keys."""
    erp: ErpSettings = msgspec.field(default_factory=ErpSettings)
    """The local stack's ERP."""
    planning_sandbox: PlanningSandboxSettings = msgspec.field(default_factory=PlanningSandboxSettings)
    """The local stack's planning sandbox."""
    ledger: LedgerSettings = msgspec.field(default_factory=LedgerSettings)
    """The process layer's control ledger."""
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    """The process layer's durable work."""
    flows: FlowsSettings = msgspec.field(default_factory=FlowsSettings)
    """The process layer's flows."""
    workbench: WorkbenchSettings = msgspec.field(default_factory=WorkbenchSettings)
    """The planner's workbench."""
    events: EventSettings = msgspec.field(default_factory=EventSettings)
    """Pushed source events and their streams."""
    event_consumer: EventConsumerSettings = msgspec.field(default_factory=EventConsumerSettings)
    """The process layer's consumption of the event streams, and its catch-up sweep."""
    order_to_cash: OrderToCashSettings = msgspec.field(default_factory=OrderToCashSettings)
    """The order-to-cash flow."""

    def below_url(self, layer: LayerName) -> str:
        """Base URL of ``layer``, from its explicit setting or the local port table."""
        explicit = {"system": self.system_url, "process": self.process_url}.get(layer)
        return explicit or f"http://{self.host}:{getattr(self.ports, layer)}"


def _env_tree(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nest ``FINSYNC_A__B=v`` into ``{"a": {"b": "v"}}``; also return dotted key -> variable name."""
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split(ENV_NESTING)
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SettingsError(f"{name}: '{part}' is a value, not a section")
            node = child
        node[parts[-1]] = value
        origins[".".join(parts)] = name
    return tree, origins


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_PATH = re.compile(r"at `\$(?P<path>[^`]*)`")
_UNKNOWN = re.compile(r"unknown field `(?P<field>[^`]+)`")


def _dotted_key(message: str) -> str:
    """Turn msgspec's ``... at `$.log.level``` into ``log.level``."""
    match = _PATH.search(message)
    path = match["path"] if match else ""
    parts = [p for p in re.split(r"\.|\[|\]", path) if p and not p.isdigit()]
    parts = [p.strip("'\"") for p in parts]
    if unknown := _UNKNOWN.search(message):
        parts.append(unknown["field"])
    return ".".join(parts)


_KEYED_SECTIONS: dict[str, Any] = {"sources": SourceConfig, "clients": ClientConfig, "tiers": TierConfig}
"""Sections that map ids to Structs; msgspec hides dict keys in its error paths, so these are checked entry by entry."""


def _check_keyed_sections(tree: dict[str, Any], origin: str) -> None:
    for section, entry_type in _KEYED_SECTIONS.items():
        entries = tree.get(section)
        if not isinstance(entries, dict):
            continue
        for entry_id, entry in entries.items():
            try:
                msgspec.convert(entry, entry_type, strict=False)
            except msgspec.ValidationError as exc:
                key = ".".join(filter(None, (section, str(entry_id), _dotted_key(str(exc)))))
                raise SettingsError(f"invalid setting '{key}' (from {origin}): {exc}", key=key) from exc


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Decode settings from the environment and the TOML file it names.

    Raises:
        SettingsError: a key is unknown, a value has the wrong type, or the file is unreadable.
    """
    env = dict(os.environ if environ is None else environ)
    env_tree, origins = _env_tree(env)
    file_tree: dict[str, Any] = {}
    config_path = env_tree.get("config")
    if config_path:
        try:
            file_tree = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"FINSYNC_CONFIG: cannot read {config_path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"FINSYNC_CONFIG: {config_path} is not valid TOML: {exc}") from exc
    _check_keyed_sections(file_tree, config_path or "settings")
    try:
        return msgspec.convert(_merge(file_tree, env_tree), Settings, strict=False)
    except msgspec.ValidationError as exc:
        key = _dotted_key(str(exc))
        origin = origins.get(key) or (f"{config_path}" if config_path else "settings")
        raise SettingsError(f"invalid setting '{key}' (from {origin}): {exc}", key=key) from exc
