"""``finsync up``: the local stack, one supervisor owning every process it starts.

It starts the embedded Redis (unless ``FINSYNC_REDIS_URL`` names one) and the
embedded PostgreSQL (unless ``FINSYNC_ERP__DATABASE_URL`` names a server), sets
up the ERP database if it is missing (``finsync erp setup``: a copy of a cached
template, built and seeded on first use), then starts the Tryton server
(``finsync serve erp``), the built-in authorization server and each layer, each
as its own process, bottom first, waiting for each to be ready before starting
the next. The vendor-shaped sandboxes (``finsync serve planning-sandbox``, ``crm-sandbox`` and
``billing-sandbox``: Anaplan, Salesforce and Stripe stand-ins) start after the ERP. Once all are ready it runs a first actuals-to-plan sync over the seeded ERP and prints a curl
for budget against actuals (:mod:`shared.first_sync`). SIGINT (Ctrl-C) or SIGTERM stops them all,
top first, PostgreSQL and Redis last. Children also get a parent-death signal, so even a ``kill -9`` of
the supervisor leaves nothing behind.

Before starting anything but Redis it registers the local OAuth clients
(:mod:`shared.auth.local`): their secrets live in
``{data_dir}/auth/local-secrets.json``, and every child reads
``{data_dir}/stack.toml``, the user's configuration plus those clients. The
process and experience layers get their own client's id and secret, and every
child gets the local issuer (``FINSYNC_AUTH__ISSUER``). ``stack.toml`` also
declares the local ERP as the source ``erp`` (kind ``tryton``), the planning
sandbox as the source ``planning`` (kind ``anaplan``), the CRM sandbox as ``crm``
(kind ``salesforce``) and the billing sandbox as ``billing`` (kind ``stripe``),
unless the user's configuration declares a source with that id.

The sandboxes push their changes to the system layer, as their vendors would:
the CRM sandbox's outbound messages go to
``/v1/crm/crm/outbound-messages/{token}`` (the token generated once into
``{data_dir}/crm-sandbox/outbound-token``, mode 0600, and declared on the
``crm`` source with the sandbox's org id), and the billing sandbox's webhooks
to ``/v1/billing/billing/webhooks``, signed with the secret it generates in
``{data_dir}/billing-sandbox/webhook_secret``, which the ``billing`` source
reads. The sandboxes start before the system layer; both retry a delivery that
finds nothing listening.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from shared.auth.local import ensure_local_secrets, write_stack_config
from shared.errors import SettingsError
from shared.layers import BILLING_SANDBOX_CONFIG, CRM_SANDBOX_CONFIG, LAYERS, PLANNING_SANDBOX_CATALOG
from shared.postgres import EmbeddedPostgres
from shared.processes import die_with_parent
from shared.redis import EmbeddedRedis

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.layers import Service
    from shared.settings import Settings

__all__ = (
    "BILLING_SOURCE",
    "CRM_SOURCE",
    "ERP_PASSWORD_FILE",
    "ERP_SOURCE",
    "PLANNING_SOURCE",
    "Stack",
    "StackError",
)

_PUSH_FLAGS = {"crm-sandbox": "--listener-url", "billing-sandbox": "--webhook-url"}
"""The ``finsync serve`` flag that tells each pushing sandbox where to push."""
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
ERP_SOURCE = "erp"
"""Id of the source the local ERP is declared as in ``stack.toml``."""
ERP_PASSWORD_FILE = Path("tryton") / "finsync.password"
"""Under the data dir: the ERP service user's password, written by ``finsync erp setup``."""
PLANNING_SOURCE = "planning"
"""Id of the source the local planning sandbox is declared as in ``stack.toml``."""
CRM_SOURCE = "crm"
"""Id of the source the local CRM sandbox is declared as in ``stack.toml``."""
BILLING_SOURCE = "billing"
"""Id of the source the local billing sandbox is declared as in ``stack.toml``."""


class StackError(RuntimeError):
    """A process of the stack failed to start or died."""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@dataclass
class Stack:
    """The processes of one local stack."""

    settings: Settings
    """Settings of the stack; children inherit the environment plus the URLs wired here."""
    children: list[_Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    postgres: EmbeddedPostgres | None = None
    """The embedded PostgreSQL, when the stack started it."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Secrets of the local OAuth clients, by client id."""
    overridden: list[str] = field(default_factory=list)
    """Local client ids the user's configuration declares itself (theirs win)."""
    _stopping: bool = False

    @property
    def data_dir(self) -> Path:
        """Where the stack keeps Redis, logs and metrics."""
        return Path(self.settings.data_dir).resolve()

    @property
    def auth_url(self) -> str:
        """The local authorization server, which is also the issuer every layer trusts."""
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard bind is reached on loopback
            host = "127.0.0.1"
        return f"http://{host}:{self.settings.ports.auth}"

    @property
    def process_url(self) -> str:
        """The process layer, as a client on this machine reaches it."""
        return self.auth_url.rsplit(":", 1)[0] + f":{self.settings.ports.process}"

    @property
    def experience_url(self) -> str:
        """The experience layer, as a client on this machine reaches it."""
        return self.auth_url.rsplit(":", 1)[0] + f":{self.settings.ports.experience}"

    @property
    def stopping(self) -> bool:
        """A signal asked the stack to stop."""
        return self._stopping

    @property
    def erp_url(self) -> str:
        """The local Tryton server."""
        return self.auth_url.rsplit(":", 1)[0] + f":{self.settings.ports.erp}"

    def _erp_source(self) -> dict[str, str]:
        """The ``[sources.erp]`` table of ``stack.toml``."""
        return {
            "kind": "tryton",
            "url": self.erp_url,
            "database": self.settings.erp.database,
            "login": "finsync",
            "password_file": str(self.data_dir / ERP_PASSWORD_FILE),
            "description": "the local Tryton ERP (finsync up)",
        }

    def sandbox_url(self, sandbox: str) -> str:
        """Where the local ``planning-sandbox``, ``crm-sandbox`` or ``billing-sandbox`` answers."""
        port = getattr(self.settings.ports, sandbox.replace("-", "_"))
        return self.auth_url.rsplit(":", 1)[0] + f":{port}"

    def _planning_source(self) -> dict[str, str]:
        """The ``[sources.planning]`` table of ``stack.toml``: the sandbox's one model, as its one user."""
        catalog = importlib.import_module(PLANNING_SANDBOX_CATALOG)
        return {
            "kind": "anaplan",
            "url": self.sandbox_url("planning-sandbox"),
            "workspace": catalog.WORKSPACE_ID,
            "model": catalog.MODEL_ID,
            "user": self.settings.planning_sandbox.user,
            "password_file": str(self.settings.planning_sandbox.password_path(self.data_dir)),
            "description": "the local planning SANDBOX, Anaplan-shaped (finsync up), not Anaplan",
        }

    @property
    def outbound_token_path(self) -> Path:
        """The CRM sandbox's listener token file, ``{data_dir}/crm-sandbox/outbound-token``."""
        return self.data_dir / "crm-sandbox" / "outbound-token"

    @property
    def webhook_secret_path(self) -> Path:
        """The billing sandbox's webhook secret file (the sandbox generates it when it has webhook URLs)."""
        return self.data_dir / "billing-sandbox" / "webhook_secret"

    def push_url(self, sandbox: str) -> str:
        """Where ``crm-sandbox`` or ``billing-sandbox`` pushes its changes: the system layer's push route."""
        system = self.settings.below_url("system")
        if sandbox == "crm-sandbox":
            # The same generator as the sandboxes' own secrets: created once, mode 0600, URL-safe characters.
            billing = importlib.import_module(BILLING_SANDBOX_CONFIG)
            token = billing.ensure_secret(self.outbound_token_path, "").read_text(encoding="utf-8").strip()
            return f"{system}/v1/crm/{CRM_SOURCE}/outbound-messages/{token}"
        return f"{system}/v1/billing/{BILLING_SOURCE}/webhooks"

    def _crm_source(self) -> dict[str, str]:
        """The ``[sources.crm]`` table of ``stack.toml``: the CRM sandbox's connected app, client credentials,
        and its outbound messages' listener token and org."""
        config = importlib.import_module(CRM_SANDBOX_CONFIG)
        return {
            "kind": "salesforce",
            "login_url": self.sandbox_url("crm-sandbox"),
            "client_id": config.DEFAULT_CLIENT_ID,
            "client_secret_file": str(self.data_dir / "crm-sandbox" / "client-secret"),
            "outbound_token_file": str(self.outbound_token_path),
            "organization_id": config.CrmSandboxConfig().organization_id,
            "description": "the local CRM SANDBOX, Salesforce-shaped (finsync up), not Salesforce",
        }

    def _billing_source(self) -> dict[str, Any]:
        """The ``[sources.billing]`` table of ``stack.toml``: the billing sandbox with its test key and webhook
        secret; the ERP's companies bill in their own currencies (FS-US in USD, FS-EU in EUR), as the sandbox
        is seeded."""
        config = importlib.import_module(BILLING_SANDBOX_CONFIG)
        return {
            "kind": "stripe",
            "url": self.sandbox_url("billing-sandbox"),
            "secret_key_file": str(config.local_secret_key_path(self.data_dir)),
            "webhook_secret_files": [str(self.webhook_secret_path)],
            "entity_by_currency": {"USD": "FS-US", "EUR": "FS-EU"},
            "description": "the local billing SANDBOX, Stripe-shaped (finsync up), not Stripe",
        }

    def _environment(self, redis_url: str, database_url: str, config: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["FINSYNC_DATA_DIR"] = str(self.data_dir)
        env["FINSYNC_REDIS_URL"] = redis_url
        env["FINSYNC_ERP__DATABASE_URL"] = database_url
        env["FINSYNC_SYSTEM_URL"] = self.settings.below_url("system")
        env["FINSYNC_PROCESS_URL"] = self.settings.below_url("process")
        env["FINSYNC_CONFIG"] = str(config)
        env["FINSYNC_AUTH__ISSUER"] = self.auth_url
        return env

    def _service_environment(self, service: Service, env: dict[str, str]) -> dict[str, str]:
        """A layer that calls the layer below gets its own client (unless the user declared it)."""
        if service not in ("process", "experience") or service in self.overridden:
            return env
        return {
            **env,
            "FINSYNC_AUTH__CLIENT_ID": service,
            "FINSYNC_AUTH__CLIENT_SECRET": self.secrets[service],
        }

    def start(self) -> None:
        """Start Redis, PostgreSQL, the ERP and every layer, each ready before the next starts."""
        redis_url = self.settings.redis_url
        if redis_url is None:
            self.redis = EmbeddedRedis(self.data_dir)
            if not self.redis.start():
                raise StackError(
                    f"an embedded Redis already serves {self.data_dir}; is another stack running there?"
                )
            redis_url = self.redis.url
            print(
                f"  redis       {redis_url}  (embedded, pid {self.redis.process.pid if self.redis.process else '?'})"
            )
        database_url = self._start_postgres()
        try:
            self.secrets = ensure_local_secrets(self.data_dir)
            config, self.overridden = write_stack_config(
                self.settings,
                self.data_dir,
                self.secrets,
                sources={
                    ERP_SOURCE: self._erp_source(),
                    PLANNING_SOURCE: self._planning_source(),
                    CRM_SOURCE: self._crm_source(),
                    BILLING_SOURCE: self._billing_source(),
                },
                # The catch-up sweep reads the sandboxes' change feeds: what a push lost still arrives.
                sections={
                    "event_consumer": {"crm_sources": [CRM_SOURCE], "billing_sources": [BILLING_SOURCE]}
                },
            )
        except SettingsError as exc:
            raise StackError(exc.detail) from exc
        for source in (ERP_SOURCE, PLANNING_SOURCE, CRM_SOURCE, BILLING_SOURCE):
            if source in self.settings.sources:
                print(
                    f"  note: source {source!r} is declared in {self.settings.config}; the stack keeps yours",
                    flush=True,
                )
        for client_id in self.overridden:
            print(
                f"  note: client {client_id!r} is declared in {self.settings.config}; the stack keeps yours, "
                f"so 'finsync token --client-id {client_id}' may not know its secret",
                flush=True,
            )
        env = self._environment(redis_url, database_url, config)
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._setup_erp(env, logs)
        self._start_erp(env, logs)
        self._start_sandbox("planning-sandbox", env, logs, "Anaplan-shaped SANDBOX, API at /2/0")
        self._start_sandbox("crm-sandbox", env, logs, "Salesforce-shaped SANDBOX, API at /services/data")
        self._start_sandbox("billing-sandbox", env, logs, "Stripe-shaped SANDBOX, API at /v1")
        self._start_service("auth", env, logs)
        for layer in LAYERS:
            self._start_service(layer, env, logs)

    def _start_postgres(self) -> str:
        """The ERP's PostgreSQL server URL: the configured one, else the embedded one, started here."""
        if self.settings.erp.database_url is not None:
            return self.settings.erp.database_url
        self.postgres = EmbeddedPostgres(self.data_dir)
        try:
            started = self.postgres.start()
        except SettingsError as exc:
            raise StackError(exc.detail) from exc
        if not started:
            self.postgres = None
            raise StackError(
                f"an embedded PostgreSQL already serves {self.data_dir}; is another stack running there?"
            )
        pid = self.postgres.process.pid if self.postgres.process else "?"
        print(f"  postgres    {self.postgres.directory}  (embedded, unix socket only, pid {pid})", flush=True)
        return self.postgres.url

    def _spawn(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", "shared.cli", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C reaches only the supervisor, which stops the children top first.
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only sets the parent-death signal
            )

    def _setup_erp(self, env: dict[str, str], logs: Path) -> None:
        """``finsync erp setup``: a copy of the cached template, or the first build (minutes), or nothing."""
        log = logs / "erp-setup.log"
        print(
            f"  erp setup   database {self.settings.erp.database!r} (first run builds and seeds it; log {log})",
            flush=True,
        )
        process = self._spawn(["erp", "setup"], env, log)
        while process.poll() is None:
            if self._stopping:
                process.terminate()
                process.wait()
                raise StackError("stopped during the ERP setup")
            time.sleep(0.2)
        if process.returncode != 0:
            raise StackError(f"the ERP setup failed with {process.returncode}; see {log}")

    def _start_erp(self, env: dict[str, str], logs: Path) -> None:
        """``finsync serve erp``: Tryton on ``ports.erp``, ready once it answers JSON-RPC."""
        log = logs / "erp.log"
        args = ["serve", "erp", "--host", self.settings.host, "--port", str(self.settings.ports.erp)]
        child = _Child("erp", self._spawn(args, env, log), self.erp_url, log)
        self.children.append(child)
        self._wait_ready(child, _answers_json_rpc)
        print(
            f"  erp         {child.url}  (Tryton JSON-RPC at /{self.settings.erp.database}/rpc/, logs {log})",
            flush=True,
        )

    def _start_sandbox(self, sandbox: str, env: dict[str, str], logs: Path, what: str) -> None:
        """``finsync serve <sandbox>`` on its port, ready once its control API answers."""
        log = logs / f"{sandbox}.log"
        port = getattr(self.settings.ports, sandbox.replace("-", "_"))
        args = ["serve", sandbox, "--host", self.settings.host, "--port", str(port)]
        if sandbox in _PUSH_FLAGS:
            args += [_PUSH_FLAGS[sandbox], self.push_url(sandbox)]
        child = _Child(sandbox, self._spawn(args, env, log), self.sandbox_url(sandbox), log)
        self.children.append(child)
        self._wait_ready(child, _answers_sandbox)
        print(f"  {sandbox.removesuffix('-sandbox'):<11} {child.url}  ({what}, logs {log})", flush=True)

    def _start_service(self, service: Service, env: dict[str, str], logs: Path) -> None:
        port = getattr(self.settings.ports, service)
        url = f"http://{self.settings.host}:{port}"
        log = logs / f"{service}.log"
        args = ["serve", service, "--host", self.settings.host, "--port", str(port)]
        process = self._spawn(args, self._service_environment(service, env), log)
        child = _Child(service, process, url, log)
        self.children.append(child)
        self._wait_ready(child, _answers_ready)
        if service == "auth":
            print(
                f"  {service:<11} {url}  (metadata {url}/.well-known/oauth-authorization-server, logs {log})",
                flush=True,
            )
        else:
            print(f"  {service:<11} {url}  (docs {url}/schema, logs {log})", flush=True)

    def _wait_ready(self, child: _Child, ready: Callable[[str], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StackError(f"{child.name} exited with {child.process.returncode}; see {child.log}")
            if ready(child.url):
                return
            time.sleep(0.1)
        raise StackError(f"{child.name} was not ready within {READY_TIMEOUT:.0f}s; see {child.log}")

    def wait(self) -> int:
        """Block until a signal asks the stack to stop (0) or a child dies (1)."""
        while not self._stopping:
            for child in self.children:
                if child.process.poll() is not None:
                    print(
                        f"{child.name} exited with {child.process.returncode}; see {child.log}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        return 0

    def request_stop(self, signum: int, _frame: object) -> None:
        """Signal handler: ask :meth:`wait` to return."""
        self._stopping = True

    def stop(self) -> None:
        """Stop every child, top layer first (then the authorization server, then Tryton), then the databases."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()
        if self.postgres is not None:
            self.postgres.stop()
        if self.redis is not None:
            self.redis.stop()


def _answers_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _answers_sandbox(url: str) -> bool:
    """A sandbox answers its control API."""
    try:
        return httpx.get(f"{url}/sandbox/counters", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _answers_json_rpc(url: str) -> bool:
    """Tryton answers ``common.server.version`` (the header is required: Tryton refuses other bodies)."""
    request = {"id": 0, "method": "common.server.version", "params": []}
    try:
        response = httpx.post(f"{url}/rpc/", json=request, timeout=1.0)
        return response.is_success and isinstance(response.json().get("result"), str)
    except (httpx.HTTPError, ValueError):
        return False


def run_stack(settings: Settings, *, first_sync: bool = True) -> int:
    """``finsync up``: start everything, run the first sync, print what to paste, wait for Ctrl-C, stop everything.

    Args:
        settings: The stack's settings.
        first_sync: Sync the seeded ERP's fiscal year into planning once every service is ready
            (:mod:`shared.first_sync`); a sync that fails is reported and the stack stays up.
    """
    from shared.first_sync import ready_lines, run_first_sync  # noqa: PLC0415 - it imports this module

    stack = Stack(settings)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGTERM, stack.request_stop)
    print(f"finsync local stack, data in {stack.data_dir}", flush=True)
    try:
        stack.start()
        if first_sync:
            run_first_sync(stack, out=sys.stdout, err=sys.stderr)
        if not stack.stopping:
            print("\n".join(ready_lines(stack)), flush=True)
            print("Press Ctrl-C to stop.", flush=True)
        code = stack.wait()
    except StackError as exc:
        print(f"finsync up: {exc}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
        print("stopped.", flush=True)
    return code
