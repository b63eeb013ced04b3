"""Building ERP databases: modules activated, seeded, kept as PostgreSQL templates, copied per use.

Building from nothing is slow (``trytond-admin`` activating the modules takes
about 30 s, the seed about 20 s per thousand journal lines), so each stage is
kept on the PostgreSQL server as a template database:

1. the **base template**, ``finsync_base_<hash>``: ``trytond-admin --all`` and
   the :data:`MODULES` activated, nothing else. Its hash covers the module list,
   the trytond version and the code of the finsync Tryton module, so changing
   any of them builds a new one.
2. a **seeded template** per seed, ``finsync_seed_<hash>``: a copy of the base,
   seeded (:mod:`system_apis.connectors.tryton.seed`). Its hash adds the seed's
   code and parameters (lines, variant).
3. each **working database** is ``CREATE DATABASE name TEMPLATE finsync_seed_<hash>``,
   about a second, and gets this data dir's passwords for ``admin`` and the
   service user.

A stage is built under a temporary name and renamed when complete, so a build
that died half-way is never taken for a template; a PostgreSQL advisory lock
per template keeps two builders from racing. ``trytond-admin`` and the seed run
as child processes, since trytond configures itself globally at import.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg import sql
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from shared.errors import SettingsError
from shared.postgres import connect, create_database, database_exists, drop_database, rename_database
from shared.processes import die_with_parent
from system_apis.connectors.tryton import seed
from system_apis.connectors.tryton.seed import SERVICE_LOGIN
from system_apis.connectors.tryton.trytond_conf import TrytonPaths, ensure_secret, write_conf

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "MODULES",
    "ErpDatabase",
    "Seed",
    "base_template",
    "build_base",
    "build_seeded",
    "seeded_template",
    "setup_database",
)

MODULES = (
    "account",
    "account_invoice",
    "company",
    "party",
    "currency",
    "product",
    "analytic_account",
    "finsync",
)
"""Tryton modules every ERP database has activated (their dependencies come along)."""

_MODULE_DIR = Path(__file__).parent / "module"
_LOCK_NAMESPACE = 0x46494E53
"""First key of the advisory locks taken while building a template ("FINS")."""


@dataclass(frozen=True)
class Seed:
    """Parameters of a seed: two databases with equal parameters hold the same books."""

    lines: int
    """About how many journal lines are posted."""
    variant: int
    """Which content is drawn (amounts, references, party names)."""


@dataclass(frozen=True)
class ErpDatabase:
    """A working ERP database, as :func:`setup_database` left it."""

    name: str
    """The database."""
    template: str
    """The seeded template it was copied from."""
    created: bool
    """False when it existed already and was kept."""
    seconds: float
    """Time the setup took, building included."""


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:16]


def _module_code() -> Iterator[bytes]:
    for path in sorted(_MODULE_DIR.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".cfg", ".xml"}:
            yield path.relative_to(_MODULE_DIR).as_posix().encode()
            yield path.read_bytes()


def base_template() -> str:
    """Name of the base template: modules activated, no data."""
    return "finsync_base_" + _digest(
        " ".join(MODULES).encode(), importlib.metadata.version("trytond").encode(), *_module_code()
    )


def seeded_template(parameters: Seed) -> str:
    """Name of the seeded template for ``parameters``."""
    return "finsync_seed_" + _digest(
        base_template().encode(),
        Path(seed.__file__).read_bytes(),
        f"{parameters.lines}:{parameters.variant}".encode(),
    )


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


def _run(args: list[str], paths: TrytonPaths, log: Path, what: str) -> None:
    """Run a trytond child process on the build configuration; its output goes to ``log``."""
    env = {
        **os.environ,
        "TRYTOND_CONFIG": str(paths.build_conf),
        "TRYTONPASSFILE": str(paths.admin_password_file),
    }
    with log.open("ab") as sink:
        result = subprocess.run(  # noqa: S603
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # Not the work tree: a stale finsync.egg-info there would hide the module's entry point.
            cwd=paths.directory,
            check=False,
            preexec_fn=die_with_parent,
        )
    if result.returncode != 0:
        raise SettingsError(f"{what} failed (exit {result.returncode}); see {log}")


def _build(server_url: str, name: str, template: str | None, paths: TrytonPaths, step: list[str]) -> None:
    """Build template ``name`` unless it exists: copy ``template`` (or start empty), run ``step`` on it, rename.

    ``step`` is a command line that takes the database's name as its last argument.
    """
    with connect(server_url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (_LOCK_NAMESPACE, _lock_key(name)))
        try:
            if database_exists(server_url, name):
                return
            building = f"{name}_building"
            drop_database(server_url, building)
            create_database(server_url, building, template)
            _run([*step, building], paths, paths.directory / f"{name}.log", f"building {name}")
            conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(building)))
            rename_database(server_url, building, name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_NAMESPACE, _lock_key(name)))


def _prepare(server_url: str, paths: TrytonPaths) -> None:
    ensure_secret(paths.admin_password_file)
    write_conf(paths.build_conf, database_url=server_url, files=paths.files)


def build_base(server_url: str, paths: TrytonPaths) -> str:
    """Build the base template unless the server has it; return its name."""
    _prepare(server_url, paths)
    name = base_template()
    _build(
        server_url,
        name,
        None,
        paths,
        [
            sys.executable,
            "-m",
            "trytond.cli.admin",
            "--all",
            "--activate-dependencies",
            "--email",
            "admin@localhost",
            "-u",
            *MODULES,
            "-d",
        ],
    )
    return name


def build_seeded(server_url: str, parameters: Seed, paths: TrytonPaths) -> str:
    """Build the seeded template for ``parameters`` (and the base first) unless it exists; return its name."""
    base = build_base(server_url, paths)
    name = seeded_template(parameters)
    _build(
        server_url,
        name,
        base,
        paths,
        [
            sys.executable,
            "-m",
            seed.__name__,
            "--lines",
            str(parameters.lines),
            "--variant",
            str(parameters.variant),
        ],
    )
    return name


def _set_passwords(server_url: str, name: str, paths: TrytonPaths) -> None:
    """Give ``admin`` and the service user this data dir's passwords.

    Written straight into ``res_user`` in the hash format Tryton itself uses
    (argon2, through pwdlib), so no Tryton process is needed for a copy.
    """
    hasher = PasswordHash([Argon2Hasher()])
    passwords = {
        "admin": ensure_secret(paths.admin_password_file),
        SERVICE_LOGIN: ensure_secret(paths.service_password_file),
    }
    with connect(server_url, name) as conn:
        for login, password in passwords.items():
            conn.execute(
                "UPDATE res_user SET password_hash = %s WHERE login = %s", (hasher.hash(password), login)
            )


def setup_database(
    server_url: str, name: str, parameters: Seed, paths: TrytonPaths, *, replace: bool = False
) -> ErpDatabase:
    """Make ``name`` a seeded ERP database with this data dir's passwords, building templates as needed.

    An existing database is kept (``replace=True`` drops it and copies the template again).
    """
    started = time.perf_counter()
    template = build_seeded(server_url, parameters, paths)
    created = replace or not database_exists(server_url, name)
    if created:
        drop_database(server_url, name)
        create_database(server_url, name, template)
    _set_passwords(server_url, name, paths)
    return ErpDatabase(name=name, template=template, created=created, seconds=time.perf_counter() - started)
