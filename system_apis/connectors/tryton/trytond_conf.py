"""The ERP runtime's files under the data dir: trytond configuration files and the two secrets.

Everything lives in ``{data_dir}/tryton``:

- ``trytond.conf``: the server's configuration (database server, listen address, sessions);
- ``build.conf``: the same database server, for ``trytond-admin`` and the seed;
- ``admin.password`` and ``finsync.password``: the passwords of Tryton's ``admin``
  and of the connector's service user, generated once (mode 0600);
- ``files/``: Tryton's file store (attachments).

The configuration files hold the database URL, which may carry a password, so
they are written with mode 0600 too.
"""

from __future__ import annotations

import configparser
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ("TrytonPaths", "ensure_secret", "write_conf")

SESSION_TIMEOUT = 3600
"""Seconds a Tryton session may stay idle (Tryton's default is 300)."""


@dataclass(frozen=True)
class TrytonPaths:
    """Where one data dir keeps its ERP runtime files."""

    data_dir: Path
    """The stack's data dir."""

    @property
    def directory(self) -> Path:
        """``{data_dir}/tryton``."""
        return self.data_dir / "tryton"

    @property
    def server_conf(self) -> Path:
        """The Tryton server's configuration."""
        return self.directory / "trytond.conf"

    @property
    def build_conf(self) -> Path:
        """Configuration of ``trytond-admin`` and the seed."""
        return self.directory / "build.conf"

    @property
    def admin_password_file(self) -> Path:
        """Password of Tryton's ``admin`` user in the databases this data dir sets up."""
        return self.directory / "admin.password"

    @property
    def service_password_file(self) -> Path:
        """Password of the connector's service user (``finsync``)."""
        return self.directory / "finsync.password"

    @property
    def files(self) -> Path:
        """Tryton's file store."""
        return self.directory / "files"

    @property
    def log(self) -> Path:
        """The Tryton server's output."""
        return self.directory / "trytond.log"


def ensure_secret(path: Path) -> str:
    """The secret in ``path``; generated (mode 0600) when the file does not exist yet."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        sink.write(secret + "\n")
    return secret


def write_conf(path: Path, *, database_url: str, files: Path, listen: str | None = None) -> Path:
    """Write a trytond configuration file (mode 0600) and return its path.

    Args:
        path: The file to write.
        database_url: The PostgreSQL server; Tryton replaces its path with each database's name.
        files: Tryton's file store.
        listen: ``host:port`` the server listens on; omitted for ``trytond-admin`` and the seed.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser["database"] = {"uri": database_url, "path": str(files), "list": "False"}
    parser["session"] = {"timeout": str(SESSION_TIMEOUT)}
    if listen is not None:
        parser["web"] = {"listen": listen}
    text = io.StringIO()
    parser.write(text)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        sink.write(text.getvalue())
    return path
