"""Signing keys shared through files, client secret hashing, and the local stack's clients."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import msgspec
import pytest
from joserfc.jwk import KeySet

from shared.auth.hashing import check_secret_hash, hash_secret, verify_secret
from shared.auth.keys import JWKS_FILE, KEYS_FILE, SigningKeys, keys_dir
from shared.auth.local import (
    LOCAL_CLIENTS,
    ensure_local_secrets,
    local_secrets_path,
    read_local_secrets,
    token_url,
    write_stack_config,
)
from shared.cli import main
from shared.settings import Settings, load_settings
from tests.support import REPO

if TYPE_CHECKING:
    from pathlib import Path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- secrets ---------------------------------------------------------------------------------------


def test_a_hashed_secret_verifies_and_a_wrong_one_does_not() -> None:
    encoded = hash_secret("correct horse")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert len(encoded.split("$")) == 6
    assert verify_secret("correct horse", encoded)
    assert not verify_secret("correct horsE", encoded)
    assert not verify_secret("", encoded)


def test_the_same_secret_hashes_differently_each_time() -> None:
    assert hash_secret("s") != hash_secret("s")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain-text-secret",
        "bcrypt$16384$8$1$c2FsdA$aGFzaA",
        "scrypt$abc$8$1$c2FsdA$aGFzaA",
        "scrypt$1000$8$1$c2FsdA$aGFzaA",  # N not a power of two
        "scrypt$1073741824$8$1$c2FsdA$aGFzaA",  # absurd memory
        "scrypt$16384$8$1$$aGFzaA",
        "scrypt$16384$8$1$c2FsdA$!!!",
    ],
)
def test_a_malformed_hash_never_matches_and_is_reported(encoded: str) -> None:
    assert not verify_secret("anything", encoded)
    with pytest.raises(ValueError, match="scrypt"):
        check_secret_hash(encoded)


def test_hash_secret_reads_stdin_and_prints_the_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    assert main(["auth", "hash-secret"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_secret("s3cret", printed)


def test_hash_secret_refuses_an_empty_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert main(["auth", "hash-secret"]) == 1
    assert "empty" in capsys.readouterr().err


# --- signing keys ----------------------------------------------------------------------------------


def test_the_first_key_is_generated_once_with_private_files_private(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys")
    assert keys.ensure()
    assert not keys.ensure()
    assert _mode(tmp_path / "keys" / KEYS_FILE) == 0o600
    assert _mode(tmp_path / "keys") == 0o700
    private = json.loads((tmp_path / "keys" / KEYS_FILE).read_text())
    public = json.loads((tmp_path / "keys" / JWKS_FILE).read_text())
    assert len(private["keys"]) == len(public["keys"]) == 1
    assert "d" in private["keys"][0]
    assert "d" not in public["keys"][0]
    assert "p" not in public["keys"][0]
    key = keys.current()
    assert key.alg == "RS256"
    assert key.kid == key.thumbprint()  # RFC 7638
    assert keys.public_jwks() == public


def test_es256_keys_are_p256_with_thumbprint_kids(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path, "ES256")
    key = keys.current()  # generated on first use
    assert key.alg == "ES256"
    assert key.as_dict()["crv"] == "P-256"
    assert key.kid == key.thumbprint()


def test_threads_starting_together_generate_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        kids = set(pool.map(lambda _: SigningKeys(tmp_path / "keys").current().kid, range(16)))
    assert len(kids) == 1


def test_replicas_starting_together_generate_one_key(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from shared.auth.keys import SigningKeys;"
        "print(SigningKeys(Path(sys.argv[1])).current().kid)"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "keys")], stdout=subprocess.PIPE, cwd=REPO
        )
        for _ in range(4)
    ]
    kids = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert len(kids) == 1
    assert len(json.loads((tmp_path / "keys" / KEYS_FILE).read_text())["keys"]) == 1


def test_rotation_keeps_the_current_and_the_previous_key(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path)
    first = keys.current().kid
    replica = SigningKeys(tmp_path)  # another process sharing the directory
    assert replica.current().kid == first

    second, previous = keys.rotate()
    assert previous == first
    assert [key.kid for key in replica.active()] == [second, first]

    third, previous = keys.rotate()
    assert previous == second
    assert [key.kid for key in replica.active()] == [third, second]
    assert [key["kid"] for key in replica.public_jwks()["keys"]] == [third, second]
    assert _mode(tmp_path / KEYS_FILE) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_rotation_can_change_the_algorithm_of_new_keys(tmp_path: Path) -> None:
    SigningKeys(tmp_path, "RS256").ensure()
    SigningKeys(tmp_path, "ES256").rotate()
    assert [key.alg for key in SigningKeys(tmp_path).active()] == ["ES256", "RS256"]


def test_rotate_keys_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FINSYNC_DATA_DIR", str(tmp_path / "data"))
    directory = keys_dir(load_settings())
    assert directory == tmp_path / "data" / "auth" / "keys"
    assert main(["auth", "rotate-keys"]) == 0  # an empty dir: the first key
    assert "previous (none)" in capsys.readouterr().out
    first = SigningKeys(directory).current().kid
    assert main(["auth", "rotate-keys"]) == 0
    out = capsys.readouterr().out
    new = SigningKeys(directory).current().kid
    assert f"current {new}, previous {first}" in out
    assert {key.kid for key in KeySet.import_key_set(json.loads((directory / JWKS_FILE).read_text()))} == {
        first,
        new,
    }


def test_an_unreadable_key_file_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / KEYS_FILE).write_text("{not json")
    from shared.errors import SettingsError

    with pytest.raises(SettingsError, match=KEYS_FILE):
        SigningKeys(tmp_path).current()


# --- the local stack's clients ---------------------------------------------------------------------


def test_local_secrets_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    secrets = ensure_local_secrets(tmp_path)
    assert set(secrets) == set(LOCAL_CLIENTS) == {"demo", "process", "experience"}
    assert _mode(local_secrets_path(tmp_path)) == 0o600
    assert ensure_local_secrets(tmp_path) == secrets
    assert read_local_secrets(tmp_path) == secrets


def test_the_stack_config_adds_the_local_clients_to_the_users_file(tmp_path: Path) -> None:
    user = tmp_path / "finsync.toml"
    user.write_text(
        '[sources.erp-us]\nkind = "http"\nbase_url = "http://127.0.0.1:1"\n\n'
        '[clients.demo]\nsecret_hash = "scrypt$16384$8$1$c2FsdA$aGFzaA"\nscopes = ["erp:read"]\n'
        'audiences = ["finsync-system"]\n'
    )
    settings = load_settings({"FINSYNC_CONFIG": str(user), "FINSYNC_DATA_DIR": str(tmp_path / "data")})
    secrets = ensure_local_secrets(tmp_path / "data")
    path, overridden = write_stack_config(settings, tmp_path / "data", secrets)
    assert overridden == ["demo"]
    assert path == tmp_path / "data" / "stack.toml"
    assert _mode(path) == 0o600
    merged = tomllib.loads(path.read_text())
    assert merged["sources"]["erp-us"]["base_url"] == "http://127.0.0.1:1"
    assert merged["clients"]["demo"]["scopes"] == ["erp:read"]  # the user's wins
    process = merged["clients"]["process"]
    assert process["internal"] is True
    assert process["audiences"] == ["finsync-system"]
    assert verify_secret(secrets["process"], process["secret_hash"])
    assert merged["clients"]["experience"]["audiences"] == ["finsync-process"]
    # And the result decodes as settings.
    decoded = load_settings({"FINSYNC_CONFIG": str(path)})
    assert decoded.clients["experience"].internal
    assert set(decoded.clients) == {"demo", "process", "experience"}


def test_the_demo_client_holds_every_scope_and_every_audience(tmp_path: Path) -> None:
    settings = msgspec.convert({"data_dir": str(tmp_path)}, Settings)
    path, overridden = write_stack_config(settings, tmp_path, ensure_local_secrets(tmp_path))
    assert overridden == []
    demo = load_settings({"FINSYNC_CONFIG": str(path)}).clients["demo"]
    assert {"erp:read", "erp:write", "flows:run", "flows:read", "workbench:read", "admin"} <= set(demo.scopes)
    assert demo.audiences == ["finsync-experience", "finsync-process", "finsync-system"]
    assert not demo.internal


def test_token_url_follows_the_port_table_unless_an_issuer_is_configured() -> None:
    assert token_url(load_settings({"FINSYNC_PORTS__AUTH": "9100"})) == "http://127.0.0.1:9100/oauth/token"
    assert (
        token_url(load_settings({"FINSYNC_AUTH__ISSUER": "https://idp.example/"}))
        == "https://idp.example/oauth/token"
    )
    assert (
        token_url(load_settings({"FINSYNC_AUTH__TOKEN_URL": "https://idp.example/t"}))
        == "https://idp.example/t"
    )


def test_keys_dir_can_be_configured(tmp_path: Path) -> None:
    settings = load_settings({"FINSYNC_AUTH_SERVER__KEYS_DIR": str(tmp_path / "shared-keys")})
    assert keys_dir(settings) == tmp_path / "shared-keys"
    assert os.fspath(SigningKeys.from_settings(settings).directory) == str(tmp_path / "shared-keys")
