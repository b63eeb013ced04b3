"""``finsync up``: the local stack, one supervisor owning every process it starts.

It starts the embedded Redis (unless ``FINSYNC_REDIS_URL`` names one), then each
layer as its own ``finsync serve`` process, bottom first, waiting for each to be
ready before starting the next. SIGINT (Ctrl-C) or SIGTERM stops them all, top
first. Children also get a parent-death signal, so even a ``kill -9`` of the
supervisor leaves nothing behind.
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

from shared.layers import LAYERS
from shared.processes import die_with_parent
from shared.redis import EmbeddedRedis

if TYPE_CHECKING:
    from shared.layers import Layer
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
    _stopping: bool = False

    @property
    def data_dir(self) -> Path:
        """Where the stack keeps Redis, logs and metrics."""
        return Path(self.settings.data_dir).resolve()

    def _environment(self, redis_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env["FINSYNC_DATA_DIR"] = str(self.data_dir)
        env["FINSYNC_REDIS_URL"] = redis_url
        env["FINSYNC_SYSTEM_URL"] = self.settings.below_url("system")
        env["FINSYNC_PROCESS_URL"] = self.settings.below_url("process")
        return env

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
        env = self._environment(redis_url)
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for layer in LAYERS:
            self._start_layer(layer, env, logs)

    def _start_layer(self, layer: Layer, env: dict[str, str], logs: Path) -> None:
        port = getattr(self.settings.ports, layer)
        url = f"http://{self.settings.host}:{port}"
        log = logs / f"{layer}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shared.cli",
                    "serve",
                    layer,
                    "--host",
                    self.settings.host,
                    "--port",
                    str(port),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C reaches only the supervisor, which stops the layers top first.
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only sets the parent-death signal
            )
        child = _Child(layer, process, url, log)
        self.children.append(child)
        self._wait_ready(child)
        print(f"  {layer:<11} {url}  (docs {url}/schema, logs {log})", flush=True)

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
        """Stop every child, top layer first, then Redis."""
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
        print(f"  curl -s http://{settings.host}:{settings.ports.experience}/v1/overview", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        code = stack.wait()
    except StackError as exc:
        print(f"finsync up: {exc}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
        print("stopped.", flush=True)
    return code
