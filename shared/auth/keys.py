"""The authorization server's signing keys: files every replica shares, rotated in place.

Layout of ``settings.auth_server.keys_dir`` (default ``{data_dir}/auth/keys``):

- ``signing-keys.json``: the private JWKS, mode 0600, the current key first and
  the previous one second. It is only ever replaced whole (written to a temporary
  file, then renamed), so a replica never reads half a rotation.
- ``jwks.json``: the same keys, public parts only, for resource servers that read
  a file (``FINSYNC_AUTH__JWKS_FILE``) instead of ``{issuer}/jwks.json``.
- ``.lock``: ``flock``-ed while the keys are generated or rotated, so two replicas
  starting together generate one first key, not two.

Each key's ``kid`` is its RFC 7638 thumbprint. Replicas notice a rotation by the
file's identity (inode, size, mtime), checked on every use: a ``stat`` per token.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeyParameters, KeySet, RSAKey

from shared.errors import SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shared.settings import Settings

__all__ = ("JWKS_FILE", "KEYS_FILE", "SigningKeys", "generate_signing_key", "keys_dir")

KEYS_FILE = "signing-keys.json"
"""Private JWKS (current key first, then the previous one); mode 0600."""
JWKS_FILE = "jwks.json"
"""Public JWKS of the same keys."""
LOCK_FILE = ".lock"
"""Held with ``flock`` while keys are generated or rotated."""

Algorithm = Literal["RS256", "ES256"]


def keys_dir(settings: Settings) -> Path:
    """Where the signing keys live: ``auth_server.keys_dir``, else ``{data_dir}/auth/keys``."""
    configured = settings.auth_server.keys_dir
    return Path(configured) if configured else Path(settings.data_dir) / "auth" / "keys"


def generate_signing_key(algorithm: Algorithm) -> Key:
    """A new private signing key (RSA 2048 for RS256, P-256 for ES256) whose ``kid`` is its thumbprint."""
    parameters: KeyParameters = {"alg": algorithm, "use": "sig"}
    if algorithm == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters, private=True, auto_kid=True)
    return ECKey.generate_key("P-256", parameters=parameters, private=True, auto_kid=True)


def _write_atomically(path: Path, payload: dict[str, Any], mode: int) -> None:
    """Write ``payload`` as JSON into ``path`` through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            json.dump(payload, sink, indent=2, sort_keys=True)
            sink.write("\n")
            sink.flush()
            os.fsync(sink.fileno())
        temporary.chmod(mode)  # the umask may have narrowed it
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class SigningKeys:
    """The current and previous signing keys in one shared directory.

    Safe to use from several threads and several processes: reads take a
    ``stat`` and reload only when the file changed; writes hold an ``flock``.
    """

    def __init__(self, directory: Path, algorithm: Algorithm = "RS256") -> None:
        """Keys in ``directory``; ``algorithm`` is the one new keys are generated for."""
        self.directory = directory
        """Folder of the key files."""
        self.algorithm: Algorithm = algorithm
        """Algorithm of newly generated keys; existing keys keep their own."""
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._keys: list[Key] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKeys:
        """The keys of ``settings.auth_server``."""
        return cls(keys_dir(settings), settings.auth_server.algorithm)

    @property
    def keys_file(self) -> Path:
        """The private JWKS."""
        return self.directory / KEYS_FILE

    @property
    def jwks_file(self) -> Path:
        """The public JWKS."""
        return self.directory / JWKS_FILE

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> list[Key]:
        try:
            raw = json.loads(self.keys_file.read_text(encoding="utf-8"))
            keys = KeySet.import_key_set(raw).keys
        except (OSError, ValueError, KeyError, TypeError, JoseError) as exc:
            raise SettingsError(f"cannot read the signing keys in {self.keys_file}: {exc}") from exc
        for key in keys:
            if not key.is_private or key.alg not in ("RS256", "ES256") or not key.kid:
                raise SettingsError(
                    f"{self.keys_file}: every key must be a private RS256 or ES256 key with a kid"
                )
        if not keys:
            raise SettingsError(f"{self.keys_file} holds no key")
        return keys

    def _write(self, keys: list[Key]) -> None:
        _write_atomically(self.keys_file, {"keys": [key.as_dict(private=True) for key in keys]}, 0o600)
        _write_atomically(self.jwks_file, {"keys": [key.as_dict(private=False) for key in keys]}, 0o644)

    def ensure(self) -> bool:
        """Generate the first key unless one exists; True when this call generated it."""
        if self.keys_file.exists():
            return False
        with self._exclusive():
            if self.keys_file.exists():  # another replica won the race
                return False
            self._write([generate_signing_key(self.algorithm)])
            return True

    def rotate(self) -> tuple[str, str | None]:
        """Make the current key the previous one and generate a new current key.

        Returns:
            The new current ``kid`` and the ``kid`` that became previous (``None`` on first use).
        """
        with self._exclusive():
            existing = self._read() if self.keys_file.exists() else []
            new = generate_signing_key(self.algorithm)
            self._write([new, *existing[:1]])
        with self._lock:
            self._identity = None
        return str(new.kid), (str(existing[0].kid) if existing else None)

    def active(self) -> list[Key]:
        """Current key first, then the previous one (if any); reloaded when the file changed."""
        try:
            stat = self.keys_file.stat()
        except FileNotFoundError:
            self.ensure()
            stat = self.keys_file.stat()
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if identity != self._identity:
                self._keys = self._read()
                self._identity = identity
            return list(self._keys)

    def current(self) -> Key:
        """The key new tokens are signed with."""
        return self.active()[0]

    def verification_set(self) -> KeySet:
        """Every key a token of ours may be signed with: the current and the previous one."""
        return KeySet(self.active())

    def public_jwks(self) -> dict[str, Any]:
        """The public JWKS the server publishes."""
        return {"keys": [key.as_dict(private=False) for key in self.active()]}
