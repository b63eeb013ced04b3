from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shared.errors import SettingsError
from shared.settings import HttpSourceConfig, load_settings

if TYPE_CHECKING:
    from pathlib import Path


def test_defaults_follow_the_port_table() -> None:
    settings = load_settings({})
    assert (settings.ports.system, settings.ports.process, settings.ports.experience) == (8101, 8102, 8103)
    assert settings.data_dir == ".finsync"
    assert settings.redis_url is None
    assert settings.http.max_body_size == 10 * 1024 * 1024
    assert settings.below_url("system") == "http://127.0.0.1:8101"


def test_environment_nests_with_double_underscore_and_converts_types() -> None:
    settings = load_settings(
        {
            "FINSYNC_PORTS__SYSTEM": "9001",
            "FINSYNC_LOG__ACCESS": "false",
            "FINSYNC_REDIS_URL": "redis://127.0.0.1:6390/0",
            "FINSYNC_SYSTEM_URL": "http://10.0.0.5:8101",
            "UNRELATED": "ignored",
        }
    )
    assert settings.ports.system == 9001
    assert settings.log.access is False
    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.below_url("system") == "http://10.0.0.5:8101"
    assert settings.below_url("process") == "http://127.0.0.1:8102"


def test_toml_declares_sources_and_environment_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "finsync.toml"
    config.write_text(
        '[ports]\nsystem = 7000\n[sources.erp-us]\nkind = "http"\nbase_url = "http://127.0.0.1:1"\n',
        encoding="utf-8",
    )
    settings = load_settings({"FINSYNC_CONFIG": str(config), "FINSYNC_PORTS__SYSTEM": "7001"})
    assert settings.ports.system == 7001
    assert settings.sources == {"erp-us": HttpSourceConfig(base_url="http://127.0.0.1:1")}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FINSYNC_LOG__COLOUR": "red"}, "FINSYNC_LOG__COLOUR"),
        ({"FINSYNC_PORTS__SYSTEM": "eighty"}, "FINSYNC_PORTS__SYSTEM"),
        ({"FINSYNC_PORTS__SYSTEM": "70000"}, "ports.system"),
        ({"FINSYNC_REDIS_ULR": "redis://x"}, "redis_ulr"),
    ],
)
def test_a_wrong_environment_key_or_type_names_the_key(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert named in caught.value.detail


def test_a_wrong_toml_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "finsync.toml"
    config.write_text(
        '[sources.erp-us]\nkind = "http"\nbase_url = "http://x"\nhealth_pth = "/"\n', encoding="utf-8"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings({"FINSYNC_CONFIG": str(config)})
    assert "sources.erp-us.health_pth" in caught.value.detail
    assert str(config) in caught.value.detail


def test_an_unknown_source_kind_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "finsync.toml"
    config.write_text('[sources.crm]\nkind = "carrier-pigeon"\nbase_url = "http://x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="carrier-pigeon"):
        load_settings({"FINSYNC_CONFIG": str(config)})


def test_unreadable_or_invalid_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"FINSYNC_CONFIG": str(tmp_path / "missing.toml")})
    broken = tmp_path / "broken.toml"
    broken.write_text("[sources\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({"FINSYNC_CONFIG": str(broken)})
