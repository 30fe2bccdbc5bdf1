"""The per-user config file: written as TOML that reads back as written, merged, read by default."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_settings
from orchestrator.onboard import config_file


def test_dumps_reads_back_as_written():
    data = {"region": "eu-west-2", "vpc_id": "vpc-1", "dry_run": False, "selector": {"orch:managed": "true", "team": 'a"b'},
            "probe": {"port": 2222, "retry_window": 3.5}, "safety": {"ladder": ["reboot", "stop-start"]}}
    assert tomllib.loads(config_file.dumps(data)) == data


def test_merge_keeps_other_settings_and_replaces_the_selector_whole():
    existing = {"region": "us-east-1", "selector": {"old": "1"}, "probe": {"port": 2222}, "vpc_id": "vpc-old"}
    merged = config_file.merged(existing, {"region": "eu-west-1", "selector": {"orch:managed": "true"}, "vpc_id": None})
    assert merged == {"region": "eu-west-1", "selector": {"orch:managed": "true"}, "probe": {"port": 2222}}


def test_write_is_atomic_and_creates_the_directory(tmp_path: Path):
    target = tmp_path / "orch" / "config.toml"
    config_file.write(target, {"region": "us-east-1", "selector": {"orch:managed": "true"}})
    assert config_file.read(target) == {"region": "us-east-1", "selector": {"orch:managed": "true"}}
    assert [p.name for p in target.parent.iterdir()] == ["config.toml"]


def test_the_platform_path_follows_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_file.user_config_path() == tmp_path / "orch" / "config.toml"


@pytest.fixture
def default_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    config_file.write(path, {"region": "eu-west-1", "selector": {"team": "web"}, "probe": {"port": 2200, "attempts": 4}})
    return path


def test_precedence_defaults_toml_env_flags(default_file: Path):
    settings = load_settings(environ={"ORCH_PROBE_PORT": "2300"}, overrides={"region": "us-west-2"}, default_path=default_file)
    assert settings.selector == {"team": "web"}  # from the file, over the default
    assert settings.probe.attempts == 4  # the file
    assert settings.probe.port == 2300  # ORCH_* over the file
    assert settings.region == "us-west-2"  # the flag over the file
    assert settings.probe.connect_timeout == 3.0  # the default where nobody said otherwise


def test_a_named_config_replaces_the_default_file(default_file: Path, tmp_path: Path):
    other = tmp_path / "other.toml"
    other.write_text('region = "ap-south-1"\n')
    assert load_settings(other, environ={}, default_path=default_file).selector == {"orch:managed": "true"}
    assert load_settings(environ={"ORCH_CONFIG": str(other)}, default_path=default_file).region == "ap-south-1"


def test_a_missing_default_file_is_no_file(tmp_path: Path):
    assert load_settings(environ={}, default_path=tmp_path / "absent.toml").region is None


def test_a_broken_default_file_is_one_line(tmp_path: Path):
    broken = tmp_path / "config.toml"
    broken.write_text("region = [\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(environ={}, default_path=broken)
