"""What a billing sandbox starts with: :class:`BillingSandboxConfig`, its secret key and its webhook endpoints.

The sandbox's settings are its own Struct rather than a section of
``shared.settings``: the caller (``finsync serve billing-sandbox``, the tests,
``python -m system_apis.connectors.stripe.sandbox``) builds one and hands it to
:func:`~.server.serve_sandbox`, which passes it to granian's worker as JSON in
:data:`CONFIG_ENV` (a name outside ``FINSYNC_*``, so it never trips the
settings loader's unknown-key check).

The Structs are keyword-only, frozen, and forbid unknown fields, so a
misspelt key fails loudly. Secrets stay in files: the secret key (``sk_test_…``) and each webhook
endpoint's signing secret (``whsec_…``). A key that looks live (``sk_live_…``)
is refused, so a real Stripe key pasted by mistake never serves a sandbox.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
from msgspec import Meta

from shared.errors import SettingsError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "API_VERSION",
    "CONFIG_ENV",
    "BillingSandboxConfig",
    "WebhookEndpointConfig",
    "WebhookTimings",
    "ensure_secret",
    "ensure_secret_key",
    "local_config",
    "local_secret_key_path",
    "read_secret",
)

API_VERSION = "2025-03-31.basil"
"""The one Stripe API version the sandbox speaks (``Stripe-Version``); see the README for why this one."""
CONFIG_ENV = "STRIPE_SANDBOX_CONFIG_JSON"
"""Environment variable that carries the configuration, as JSON, to granian's worker."""

Seconds = Annotated[float, Meta(ge=0)]


class WebhookEndpointConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A webhook endpoint the sandbox has from the start (more can be added through the API)."""

    url: str
    """Where events are POSTed."""
    secret_file: str
    """File holding the endpoint's signing secret (``whsec_…``)."""
    enabled_events: tuple[str, ...] = ("*",)
    """Event types sent there; ``*`` is every type."""
    description: str | None = None
    """Shown on the endpoint object."""


class WebhookTimings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How deliveries are retried. Stripe's live mode retries with exponential backoff for up to three days and
    does not publish the intervals; tests compress them (``retry_base=0.05``, ``retry_horizon=2``)."""

    retry_base: Annotated[float, Meta(gt=0)] = 60.0
    """Seconds from a failed first attempt to the first retry."""
    retry_factor: Annotated[float, Meta(ge=1)] = 2.0
    """Each further retry waits this many times longer."""
    retry_horizon: Seconds = 3 * 86400.0
    """No retry is scheduled later than this many seconds after the first attempt."""
    timeout: Annotated[float, Meta(gt=0)] = 10.0
    """Seconds an endpoint has to answer one attempt; a timeout counts as a failed attempt."""


class BillingSandboxConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything a billing sandbox starts with."""

    secret_key_file: str
    """File holding the one secret key (``sk_test_…``) the API accepts."""
    seed_variant: Annotated[int, Meta(ge=0)] = 1
    """The ERP seed variant whose customer names the seeded customers take (``erp.seed_variant``)."""
    webhook_endpoints: tuple[WebhookEndpointConfig, ...] = ()
    """Endpoints configured at start."""
    webhooks: WebhookTimings = WebhookTimings()
    """Delivery retry timings (the control API can change them)."""
    log_level: str = "INFO"
    """Level of the sandbox's JSON log lines."""

    def to_env(self) -> str:
        """The configuration as the JSON :data:`CONFIG_ENV` carries."""
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BillingSandboxConfig:
        """The configuration from :data:`CONFIG_ENV`.

        Raises:
            SettingsError: the variable is missing or does not decode.
        """
        raw = (os.environ if environ is None else environ).get(CONFIG_ENV)
        if not raw:
            raise SettingsError(f"{CONFIG_ENV} is not set: start the billing sandbox with serve_sandbox()")
        try:
            return msgspec.json.decode(raw, type=cls)
        except msgspec.DecodeError as exc:
            raise SettingsError(f"{CONFIG_ENV} is not a valid billing sandbox configuration: {exc}") from exc


def read_secret(path: str | Path, prefix: str, what: str) -> str:
    """The secret in ``path`` (first line, stripped), which must start with ``prefix``.

    Raises:
        SettingsError: the file cannot be read, is empty, looks like a live key, or lacks the prefix.
    """
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the billing sandbox's {what} from {path}: {exc}") from exc
    if text.startswith(("sk_live_", "rk_live_")):
        raise SettingsError(
            f"{path} holds a live Stripe key; the billing sandbox only takes test keys (sk_test_…)"
        )
    if not text.startswith(prefix) or len(text) <= len(prefix):
        raise SettingsError(f"the billing sandbox's {what} in {path} must start with {prefix!r}")
    return text


def ensure_secret(path: str | Path, prefix: str) -> Path:
    """``path``, holding a generated ``{prefix}…`` secret (mode 0600) if the file does not exist yet."""
    target = Path(path)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two processes starting at once do not overwrite each other's secret
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return target
    with os.fdopen(descriptor, "w", encoding="utf-8") as sink:
        sink.write(f"{prefix}{secrets.token_urlsafe(24)}\n")
    return target


def ensure_secret_key(path: str | Path) -> Path:
    """``path``, holding a generated ``sk_test_…`` key (mode 0600) if the file does not exist yet."""
    return ensure_secret(path, "sk_test_")


def local_secret_key_path(data_dir: str | Path) -> Path:
    """The local stack's secret key file, ``{data_dir}/billing-sandbox/secret_key``: the sandbox's and the
    connector's."""
    return Path(data_dir) / "billing-sandbox" / "secret_key"


def local_config(
    data_dir: str | Path, *, seed_variant: int = 1, webhook_urls: Sequence[str] = ()
) -> BillingSandboxConfig:
    """The configuration of the local stack's sandbox: secrets in ``{data_dir}/billing-sandbox/``.

    ``secret_key`` (``sk_test_…``) and, when there are webhook URLs,
    ``webhook_secret`` (``whsec_…``, shared by those endpoints) are generated
    once and kept; the connector reads the same files.
    """
    key = ensure_secret_key(local_secret_key_path(data_dir))
    folder = key.parent
    endpoints: tuple[WebhookEndpointConfig, ...] = ()
    if webhook_urls:
        secret = ensure_secret(folder / "webhook_secret", "whsec_")
        endpoints = tuple(WebhookEndpointConfig(url=url, secret_file=str(secret)) for url in webhook_urls)
    return BillingSandboxConfig(
        secret_key_file=str(key), seed_variant=seed_variant, webhook_endpoints=endpoints
    )
