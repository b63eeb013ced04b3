"""Clients of the local stack, their secrets, and fetching a token from the local issuer.

``finsync up`` registers three clients with the built-in authorization server:

- ``demo``: every scope, every layer's audience (``finsync-experience`` first),
  for a person with curl (``finsync token``);
- ``process`` and ``experience``: internal clients, one per layer that calls the
  layer below, with that layer's audience only.

Their secrets are generated once per data dir into
``{data_dir}/auth/local-secrets.json`` (mode 0600). Each ``finsync up`` writes
``{data_dir}/stack.toml``: the user's ``FINSYNC_CONFIG`` file, plus these
clients with hashed secrets, unless the user's file already declares a client
with the same id (the user's wins), and the sources the stack runs itself (the
local ERP as ``[sources.erp]``), again unless the user declares the same id.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from shared.auth import SCOPES
from shared.auth.hashing import generate_secret, hash_secret
from shared.errors import SettingsError
from shared.settings import AuthSettings, ClientConfig

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shared.settings import Settings

__all__ = (
    "DEFAULT_AUDIENCE",
    "LAYER_AUDIENCES",
    "LOCAL_CLIENTS",
    "LOCAL_SECRETS_FILE",
    "STACK_CONFIG_FILE",
    "TokenError",
    "ensure_local_secrets",
    "fetch_token",
    "local_secrets_path",
    "read_local_secrets",
    "token_url",
    "write_stack_config",
)

LOCAL_SECRETS_FILE = "local-secrets.json"
"""Under ``{data_dir}/auth``: ``{client_id: secret}`` of the local clients, mode 0600."""
STACK_CONFIG_FILE = "stack.toml"
"""Under ``{data_dir}``: the configuration every process of ``finsync up`` reads."""

LAYER_AUDIENCES = {
    "system": "finsync-system",
    "process": "finsync-process",
    "experience": "finsync-experience",
}
"""Each layer's token audience."""
DEFAULT_AUDIENCE = LAYER_AUDIENCES["experience"]
"""Audience of ``finsync token`` unless ``--audience`` says otherwise: the layer partners call."""

LOCAL_CLIENTS: dict[str, ClientConfig] = {
    "demo": ClientConfig(
        scopes=list(SCOPES),
        audiences=[LAYER_AUDIENCES["experience"], LAYER_AUDIENCES["process"], LAYER_AUDIENCES["system"]],
    ),
    "process": ClientConfig(
        scopes=[
            "erp:read",
            "erp:write",
            "planning:read",
            "planning:write",
            "crm:read",
            "billing:read",
            "billing:write",
            "flows:run",
            "flows:read",
            "admin",
            "sources:read",
        ],
        audiences=[LAYER_AUDIENCES["system"]],
        internal=True,
    ),
    "experience": ClientConfig(
        scopes=["flows:read", "flows:run", "workbench:read", "admin"],
        audiences=[LAYER_AUDIENCES["process"]],
        internal=True,
    ),
}
"""The clients ``finsync up`` registers (secrets aside)."""


class TokenError(Exception):
    """The token endpoint refused, or could not be reached."""


def local_secrets_path(data_dir: Path) -> Path:
    """``{data_dir}/auth/local-secrets.json``."""
    return data_dir / "auth" / LOCAL_SECRETS_FILE


def read_local_secrets(data_dir: Path) -> dict[str, str]:
    """The local clients' secrets, or an empty dict when none were generated yet."""
    try:
        raw = json.loads(local_secrets_path(data_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {local_secrets_path(data_dir)}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"{local_secrets_path(data_dir)} is not a JSON object")
    return {str(key): str(value) for key, value in raw.items()}


def ensure_local_secrets(data_dir: Path) -> dict[str, str]:
    """Generate a secret for each local client that has none yet; return them all.

    The file is written with mode 0600 (through a temporary file and a rename).
    """
    path = local_secrets_path(data_dir)
    secrets = read_local_secrets(data_dir)
    missing = [client_id for client_id in LOCAL_CLIENTS if client_id not in secrets]
    if not missing:
        return secrets
    for client_id in missing:
        secrets[client_id] = generate_secret()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            json.dump(secrets, sink, indent=2, sort_keys=True)
            sink.write("\n")
        temporary.chmod(0o600)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return secrets


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table
        return (
            "{" + ", ".join(f"{json.dumps(key)} = {_toml_value(item)}" for key, item in value.items()) + "}"
        )
    return json.dumps(str(value))  # a TOML basic string, for the ASCII values written here


def _client_table(client_id: str, config: ClientConfig, secret_hash: str) -> str:
    lines = [
        f"[clients.{json.dumps(client_id)}]",
        f"secret_hash = {_toml_value(secret_hash)}",
        f"scopes = {_toml_value(config.scopes)}",
        f"audiences = {_toml_value(config.audiences)}",
        f"internal = {_toml_value(config.internal)}",
    ]
    return "\n".join(lines) + "\n"


def _source_table(source_id: str, values: Mapping[str, Any]) -> str:
    lines = [f"[sources.{json.dumps(source_id)}]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write_stack_config(
    settings: Settings,
    data_dir: Path,
    secrets: dict[str, str],
    *,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Path, list[str]]:
    """Write ``{data_dir}/stack.toml``: the user's configuration file plus the local clients and sources.

    ``sources`` are the sources the stack itself runs (the local ERP), each as its
    TOML keys; one whose id the user's configuration declares is left as the user
    wrote it. ``sections`` are settings sections (``event_consumer``) the stack
    sets for its own sources; a section the user's file has is left as written.

    Returns:
        The file written, and the local client ids the user's configuration already
        declares (those are left as the user wrote them).

    Raises:
        SettingsError: the user's file cannot be read, or the result is not valid TOML.
    """
    target = data_dir / STACK_CONFIG_FILE
    user_text = ""
    if settings.config:
        source = Path(settings.config)
        if source.resolve() == target.resolve():
            raise SettingsError(f"FINSYNC_CONFIG must not be {target}: finsync up writes that file")
        try:
            user_text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"FINSYNC_CONFIG: cannot read {source}: {exc.strerror}") from exc
    overridden = [client_id for client_id in LOCAL_CLIENTS if client_id in settings.clients]
    parts = [user_text.rstrip("\n") + "\n"] if user_text.strip() else []
    parts.append("# Added by finsync up: the local stack's clients (secrets in auth/local-secrets.json).\n")
    for client_id, config in LOCAL_CLIENTS.items():
        if client_id not in overridden:
            parts.append("\n" + _client_table(client_id, config, hash_secret(secrets[client_id])))
    local_sources = {key: value for key, value in (sources or {}).items() if key not in settings.sources}
    if local_sources:
        parts.append("\n# Added by finsync up: the sources the local stack runs.\n")
        parts.extend("\n" + _source_table(source_id, values) for source_id, values in local_sources.items())
    try:
        declared = tomllib.loads(user_text)
    except tomllib.TOMLDecodeError:
        declared = {}  # reported below, with the whole file
    local_sections = {name: values for name, values in (sections or {}).items() if name not in declared}
    if local_sections:
        parts.append("\n# Added by finsync up: settings for the sources the local stack runs.\n")
        parts.extend(
            f"\n[{name}]\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())
            for name, values in local_sections.items()
        )
    text = "".join(parts)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"cannot add the local clients and sources to {settings.config}: {exc}; "
            "declare clients as [clients.<id>] tables and sources as [sources.<id>] tables"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        sink.write(text)
    return target, overridden


def token_url(settings: Settings) -> str:
    """Where ``finsync token`` asks: ``auth.token_url``, else the configured issuer, else the local port."""
    if settings.auth.token_url:
        return settings.auth.token_url
    issuer = settings.auth.issuer
    if issuer == AuthSettings().issuer:  # not configured: follow the port table
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
        issuer = f"http://{host}:{settings.ports.auth}"
    return f"{issuer.rstrip('/')}/oauth/token"


def fetch_token(
    url: str,
    client_id: str,
    client_secret: str,
    *,
    scope: str | None = None,
    audience: str | None = None,
    on_behalf_of: str | None = None,
    method: str = "client_secret_basic",
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Ask a token endpoint for a client-credentials token; return the token response.

    Args:
        url: The token endpoint.
        client_id: The client.
        client_secret: Its secret.
        scope: Space-separated scopes; default all of the client's.
        audience: The audience (``resource``); default the client's first.
        on_behalf_of: The original caller (internal clients only).
        method: ``client_secret_basic`` or ``client_secret_post``.
        timeout: Seconds for the whole exchange.

    Raises:
        TokenError: the endpoint refused (its ``error`` and ``error_description``) or is unreachable.
    """
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    if audience:
        form["resource"] = audience
    if on_behalf_of:
        form["on_behalf_of"] = on_behalf_of
    auth: tuple[str, str] | None = None
    if method == "client_secret_basic":
        auth = (client_id, client_secret)
    elif method == "client_secret_post":
        form.update(client_id=client_id, client_secret=client_secret)
    else:
        raise ValueError(f"unsupported client authentication method {method!r}")
    try:
        response = httpx.post(url, data=form, auth=auth, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TokenError(f"cannot reach {url}: {exc}") from exc
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error", f"HTTP {response.status_code}")
        description = body.get("error_description") or body.get("detail") or ""
        raise TokenError(f"{error}: {description}" if description else str(error))
    return body
