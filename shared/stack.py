"""``finsync up``: the local stack, one supervisor owning every process it starts.

It starts the embedded Redis (unless ``FINSYNC_REDIS_URL`` names one), then the
built-in authorization server, then each layer, each as its own ``finsync
serve`` process, bottom first, waiting for each to be ready before starting the
next. SIGINT (Ctrl-C) or SIGTERM stops them all, top first. Children also get a
parent-death signal, so even a ``kill -9`` of the supervisor leaves nothing
behind.

Before starting anything but Redis it registers the local OAuth clients
(:mod:`shared.auth.local`): their secrets live in
``{data_dir}/auth/local-secrets.json``, and every child reads
``{data_dir}/stack.toml``, the user's configuration plus those clients. The
process and experience layers get their own client's id and secret, and every
child gets the local issuer (``FINSYNC_AUTH__ISSUER``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from shared.auth.local import ensure_local_secrets, write_stack_config
from shared.errors import SettingsError
from shared.layers import LAYERS
from shared.processes import die_with_parent
from shared.redis import EmbeddedRedis

if TYPE_CHECKING:
    from shared.layers import Service
    from shared.settings import Settings

__all__ = ("Stack", "StackError")

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


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

    def _environment(self, redis_url: str, config: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["FINSYNC_DATA_DIR"] = str(self.data_dir)
        env["FINSYNC_REDIS_URL"] = redis_url
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
        """Start Redis and every layer, each ready before the next starts."""
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
        try:
            self.secrets = ensure_local_secrets(self.data_dir)
            config, self.overridden = write_stack_config(self.settings, self.data_dir, self.secrets)
        except SettingsError as exc:
            raise StackError(exc.detail) from exc
        for client_id in self.overridden:
            print(
                f"  note: client {client_id!r} is declared in {self.settings.config}; the stack keeps yours, "
                f"so 'finsync token --client-id {client_id}' may not know its secret",
                flush=True,
            )
        env = self._environment(redis_url, config)
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._start_service("auth", env, logs)
        for layer in LAYERS:
            self._start_service(layer, env, logs)

    def _start_service(self, service: Service, env: dict[str, str], logs: Path) -> None:
        port = getattr(self.settings.ports, service)
        url = f"http://{self.settings.host}:{port}"
        log = logs / f"{service}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shared.cli",
                    "serve",
                    service,
                    "--host",
                    self.settings.host,
                    "--port",
                    str(port),
                ],
                env=self._service_environment(service, env),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C reaches only the supervisor, which stops the layers top first.
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only sets the parent-death signal
            )
        child = _Child(service, process, url, log)
        self.children.append(child)
        self._wait_ready(child)
        if service == "auth":
            print(
                f"  {service:<11} {url}  (metadata {url}/.well-known/oauth-authorization-server, logs {log})",
                flush=True,
            )
        else:
            print(f"  {service:<11} {url}  (docs {url}/schema, logs {log})", flush=True)

    def _wait_ready(self, child: _Child) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StackError(f"{child.name} exited with {child.process.returncode}; see {child.log}")
            try:
                if httpx.get(f"{child.url}/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
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
        """Stop every child, top layer first (the authorization server last), then Redis."""
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
        if self.redis is not None:
            self.redis.stop()


def run_stack(settings: Settings) -> int:
    """``finsync up``: start everything, print the URLs, wait for Ctrl-C, stop everything."""
    stack = Stack(settings)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGTERM, stack.request_stop)
    print(f"finsync local stack, data in {stack.data_dir}", flush=True)
    try:
        stack.start()
        print("ready. Try:", flush=True)
        script = Path(sys.executable).parent / "finsync"
        print(f"  TOKEN=$({script if script.exists() else 'finsync'} token)", flush=True)
        print(
            f'  curl -s -H "Authorization: Bearer $TOKEN" http://{settings.host}:{settings.ports.experience}/v1/overview',
            flush=True,
        )
        print("Press Ctrl-C to stop.", flush=True)
        code = stack.wait()
    except StackError as exc:
        print(f"finsync up: {exc}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
        print("stopped.", flush=True)
    return code
