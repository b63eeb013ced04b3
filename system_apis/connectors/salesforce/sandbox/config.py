"""``CrmSandboxConfig``: what the CRM sandbox is started with, and the secret files it reads or generates.

The config is a frozen msgspec Struct. ``serve_sandbox`` hands it to granian's
worker as JSON in the environment variable :data:`CONFIG_ENVIRONMENT` (not a
``FINSYNC_*`` variable: finsync's own settings refuse unknown keys). It holds
no secret, only the paths of the files that do:

- the connected app's **client secret** (default ``{data_dir}/crm-sandbox/client-secret``, generated once,
  mode 0600);
- the **public key or X.509 certificate** that JWT bearer assertions are verified with (default
  ``{data_dir}/crm-sandbox/jwt-public.pem``; when it does not exist, a key pair is generated once and the
  private half is written beside it as ``jwt-private.pem``, mode 0600, for a local client to sign with).

A configured file must exist.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
from msgspec import Meta

from shared.errors import SettingsError
from system_apis.connectors.salesforce.sandbox.ids import KEY_PREFIXES, canonical, make_id
from system_apis.connectors.salesforce.sandbox.seed import DEFAULT_OPPORTUNITIES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shared.settings import Settings

__all__ = (
    "API_VERSIONS",
    "CONFIG_ENVIRONMENT",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_PORT",
    "DEFAULT_USERNAME",
    "OPPORTUNITY_NOTIFICATION_FIELDS",
    "CrmSandboxConfig",
    "OutboundSettings",
    "SandboxSecrets",
    "load_secrets",
)

CONFIG_ENVIRONMENT = "CRM_SANDBOX_CONFIG"
"""The environment variable that carries the config (JSON) to granian's worker."""
DEFAULT_PORT = 8122
"""The CRM sandbox's port in the local stack (DESIGN.md, "Local ports")."""
DEFAULT_CLIENT_ID = "3MVG9finsync.CRM.sandbox.connected.app.consumer.key.NOT.Salesforce"
"""The connected app's consumer key (Salesforce's start with ``3MVG9``)."""
DEFAULT_USERNAME = "integration@finsync-crm.sandbox"
"""The integration user: ``sub`` of JWT bearer assertions, owner of every record."""
API_VERSIONS = (
    ("58.0", "Summer '23"),
    ("59.0", "Winter '24"),
    ("60.0", "Spring '24"),
    ("61.0", "Summer '24"),
    ("62.0", "Winter '25"),
    ("63.0", "Spring '25"),
    ("64.0", "Summer '25"),
    ("65.0", "Winter '26"),
    ("66.0", "Spring '26"),
)
"""The REST API versions the sandbox serves, with Salesforce's release names; others answer 404."""
OPPORTUNITY_NOTIFICATION_FIELDS = (
    "Name",
    "AccountId",
    "StageName",
    "IsWon",
    "IsClosed",
    "CloseDate",
    "Amount",
    "CurrencyIsoCode",
    "Legal_Entity__c",
    "LastModifiedDate",
)
"""Fields an outbound notification's ``sObject`` carries by default (``Id`` always comes first)."""

Seconds = Annotated[float, Meta(gt=0, le=7 * 86400)]


class OutboundSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The Opportunity outbound message: where it goes, what it carries, how delivery is retried.

    ``PATCH /sandbox/outbound`` changes any of these while the sandbox runs.
    ``forbid_unknown_fields`` so a misspelt setting fails loudly.
    """

    listener_url: str | None = None
    """The endpoint URL notifications are POSTed to. Unset: they wait in the queue (and age)."""
    fields: tuple[str, ...] = OPPORTUNITY_NOTIFICATION_FIELDS
    """Opportunity fields in each notification's ``sObject``, besides ``Id``."""
    batch_size: Annotated[int, Meta(ge=1, le=100)] = 100
    """Notifications per ``notifications`` call, at most Salesforce's 100."""
    batch_window: Annotated[float, Meta(ge=0, le=60)] = 1.0
    """Seconds a new notification waits for others to share its call."""
    retry_initial: Seconds = 30.0
    """Seconds before the first retry of a call that was not acknowledged."""
    retry_factor: Annotated[float, Meta(ge=1, le=10)] = 2.0
    """Each further retry waits this many times longer..."""
    retry_max: Seconds = 7200.0
    """...up to this many seconds (Salesforce: 2 hours)."""
    retry_lifetime: Seconds = 86400.0
    """A notification not acknowledged this long after it was created is dropped (Salesforce: 24 hours)."""
    timeout: Annotated[float, Meta(gt=0, le=600)] = 10.0
    """Seconds to wait for the listener's answer."""
    send_session_id: bool = False
    """Put a live session id in ``SessionId`` ("Send Session ID"); otherwise it is nil."""
    paused: bool = False
    """Hold every delivery (sandbox only: lets a test queue changes, then release them in one batch)."""

    def fast(self) -> OutboundSettings:
        """The same settings with delivery compressed for tests: retries after 0.2 s, then 0.4 s, ... up to 1 s."""
        return msgspec.structs.replace(
            self, batch_window=0.05, retry_initial=0.2, retry_max=1.0, retry_lifetime=60.0, timeout=2.0
        )


class CrmSandboxConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a CRM sandbox starts. ``forbid_unknown_fields`` so a misspelt key fails at start-up."""

    data_dir: str = ".finsync"
    """finsync's data dir; the sandbox's generated secrets go to ``{data_dir}/crm-sandbox/``."""
    log_level: str = "INFO"
    """Level of the sandbox's JSON log lines."""
    organization_id: str = make_id(KEY_PREFIXES["Organization"], 1)
    """The org's id (``00D…``, 15 or 18 characters): in tokens, identity URLs and notifications."""
    instance_url: str | None = None
    """``instance_url`` of token answers. Unset: the URL the client called (one host serves login and API)."""
    login_url: str | None = None
    """The audience JWT assertions name, besides ``https://login.salesforce.com`` and
    ``https://test.salesforce.com``. Unset: the URL the client called."""
    client_id: str = DEFAULT_CLIENT_ID
    """The connected app's consumer key."""
    client_secret_file: str | None = None
    """File holding its consumer secret. Default: ``{data_dir}/crm-sandbox/client-secret``, generated once."""
    username: str = DEFAULT_USERNAME
    """The integration user's username (``sub`` of JWT assertions)."""
    jwt_public_key_file: str | None = None
    """PEM public key or X.509 certificate for JWT bearer assertions. Default:
    ``{data_dir}/crm-sandbox/jwt-public.pem``, generated once with its private key beside it."""
    session_timeout: Annotated[int, Meta(ge=1)] = 7200
    """Seconds of inactivity after which an access token stops working (Salesforce's default: 2 hours)."""
    daily_api_limit: Annotated[int, Meta(ge=0)] = 100_000
    """API requests allowed; past it, REST requests answer 403 ``REQUEST_LIMIT_EXCEEDED``."""
    erp_seed_variant: Annotated[int, Meta(ge=0)] = 1
    """The ERP seed's variant, whose customer names the accounts take (``erp.seed_variant``)."""
    seed_opportunities: Annotated[int, Meta(ge=0, le=50_000)] = DEFAULT_OPPORTUNITIES
    """Opportunities seeded (each with 1 to 3 line items)."""
    max_query_locators: Annotated[int, Meta(ge=1)] = 10
    """Open query locators kept; opening one more closes the oldest (Salesforce: 10 per user)."""
    query_locator_timeout: Annotated[float, Meta(gt=0)] = 900.0
    """Seconds a query locator lives unused (Salesforce: 15 minutes)."""
    outbound: OutboundSettings = msgspec.field(default_factory=OutboundSettings)
    """The Opportunity outbound message at start."""

    def __post_init__(self) -> None:
        """Refuse an organization id that is not one."""
        full = canonical(self.organization_id)
        if full is None or not full.startswith(KEY_PREFIXES["Organization"]):
            raise ValueError(
                f"organization_id is a 15- or 18-character 00D… id, got {self.organization_id!r}"
            )

    @property
    def sandbox_dir(self) -> Path:
        """``{data_dir}/crm-sandbox``."""
        return Path(self.data_dir).resolve() / "crm-sandbox"

    @property
    def client_secret_path(self) -> Path:
        """The client secret's file."""
        return (
            Path(self.client_secret_file) if self.client_secret_file else self.sandbox_dir / "client-secret"
        )

    @property
    def jwt_public_key_path(self) -> Path:
        """The JWT public key's (or certificate's) file."""
        return (
            Path(self.jwt_public_key_file)
            if self.jwt_public_key_file
            else self.sandbox_dir / "jwt-public.pem"
        )

    @property
    def jwt_private_key_path(self) -> Path | None:
        """Where the generated private key is, when the public key is the generated one."""
        return None if self.jwt_public_key_file else self.sandbox_dir / "jwt-private.pem"

    def to_environment(self) -> str:
        """The config as JSON, for :data:`CONFIG_ENVIRONMENT`."""
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CrmSandboxConfig:
        """The config in :data:`CONFIG_ENVIRONMENT`, or the defaults when it is unset.

        Raises:
            SettingsError: the variable does not hold a valid config.
        """
        raw = (os.environ if environ is None else environ).get(CONFIG_ENVIRONMENT)
        if not raw:
            return cls()
        try:
            return msgspec.json.decode(raw, type=cls)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SettingsError(f"{CONFIG_ENVIRONMENT}: {exc}", key=CONFIG_ENVIRONMENT) from exc

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> CrmSandboxConfig:
        """A config for the local stack: finsync's data dir, log level and ERP seed variant, plus ``overrides``.

        Raises:
            SettingsError: an override is unknown or has the wrong type.
        """
        raw = {
            "data_dir": settings.data_dir,
            "log_level": settings.log.level,
            "erp_seed_variant": settings.erp.seed_variant,
            **overrides,
        }
        try:
            return msgspec.convert(raw, cls)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid CRM sandbox setting: {exc}") from exc


@dataclass(frozen=True)
class SandboxSecrets:
    """The secrets the config's files hold."""

    client_secret: str = field(repr=False)
    """The connected app's consumer secret."""
    public_key_pem: bytes = field(repr=False)
    """The PEM (public key or certificate) JWT assertions are checked against."""


def _create_private(path: Path, content: bytes) -> None:
    """Write ``content`` to a new file readable by its owner only; leave an existing file alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once do not overwrite each other's secret.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as sink:
        sink.write(content)


def _read(path: Path, what: str, key: str) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise SettingsError(
            f"invalid setting '{key}': cannot read the {what} {path}: {exc.strerror}", key=key
        ) from exc
    if not content.strip():
        raise SettingsError(f"invalid setting '{key}': the {what} {path} is empty", key=key)
    return content


def load_secrets(config: CrmSandboxConfig) -> SandboxSecrets:
    """Read the client secret and the JWT public key, generating the default files the first time.

    Raises:
        SettingsError: a configured file does not exist, or a file is unreadable or empty.
    """
    secret_path = config.client_secret_path
    if config.client_secret_file is None and not secret_path.exists():
        _create_private(secret_path, (secrets.token_hex(32).upper() + "\n").encode())
    public_path = config.jwt_public_key_path
    private_path = config.jwt_private_key_path
    if private_path is not None and not public_path.exists():
        from joserfc.jwk import RSAKey  # noqa: PLC0415 - only when a key pair must be made

        key = RSAKey.generate_key(2048)
        _create_private(private_path, key.as_pem(private=True))
        public_path.parent.mkdir(parents=True, exist_ok=True)
        public_path.write_bytes(key.as_pem(private=False))
    client_secret = _read(secret_path, "client secret file", "client_secret_file").decode().strip()
    public_key = _read(public_path, "JWT public key file", "jwt_public_key_file")
    return SandboxSecrets(client_secret=client_secret, public_key_pem=public_key)
