"""Configuration: precedence, and one clear line naming the field for every mistake."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.config import ConfigError, Settings, load_settings


def test_precedence_defaults_file_env_flags(tmp_path: Path):
    config = tmp_path / "orch.toml"
    config.write_text('region = "eu-west-1"\n[probe]\nport = 2200\nbanner_timeout = 7.5\n[safety]\nmax_unhealthy = "5"\n')
    env = {"ORCH_PROBE_PORT": "2201", "ORCH_CONFIG": str(config)}
    s = load_settings(environ=env, overrides={"region": "us-west-2"})
    assert (s.region, s.probe.port, s.probe.banner_timeout, s.safety.max_unhealthy) == ("us-west-2", 2201, 7.5, "5")
    assert s.probe.connect_timeout == 3.0  # untouched default


@pytest.mark.parametrize(
    "source, fragment",
    [
        ({"selector": {}}, "selector: must name at least one tag"),
        ({"selector": {"  ": "x"}}, "tag keys must not be blank"),
        ({"probe": {"port": 0}}, "probe.port"),
        ({"probe": {"port": 70000}}, "probe.port"),
        ({"probe": {"concurrency": 5000}}, "probe.concurrency"),
        ({"probe": {"address": "elastic"}}, "probe.address"),
        ({"probe": {"bogus": 1}}, "probe.bogus: unknown setting"),
        ({"nonsense": True}, "nonsense: unknown setting"),
        ({"memory": {"period_seconds": 3600, "window_minutes": 30}}, "period_seconds must not exceed"),
        ({"memory": {"trend_minutes": 90, "window_minutes": 60}}, "trend_minutes must not exceed"),
        ({"memory": {"proactive": "ssm"}}, "needs memory.ssm_commands"),
        ({"memory": {"proactive": "maybe"}}, "memory.proactive"),
        ({"safety": {"max_unhealthy": "lots"}}, "count like 5 or a percent like 20%"),
        ({"safety": {"max_unhealthy": "150%"}}, "percent from 0% to 100%"),
        ({"safety": {"max_unhealthy": "2.5"}}, "whole count"),
        ({"safety": {"ladder": ["reboot", "reboot"]}}, "a step appears twice"),
        ({"safety": {"ladder": ["nuke"]}}, "safety.ladder.0"),
        ({"safety": {"ladder": []}}, "safety.ladder"),
        ({"safety": {"max_actions_per_sweep": -1}}, "safety.max_actions_per_sweep"),
    ],
)
def test_bad_values_name_the_field(source, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(environ={}, overrides=source)
    message = str(err.value)
    assert fragment in message and "\n" not in message


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"ORCH_PROBE_PORTT": "22"}, "did you mean ORCH_PROBE_PORT?"),
        ({"ORCH_SELECTOR": "novalue"}, "is not KEY=VALUE"),
        ({"ORCH_SELECTOR": ""}, "must name at least one tag"),
        ({"ORCH_DRY_RUN": "perhaps"}, "dry_run"),
    ],
)
def test_bad_environment_names_the_variable(env, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("?", r"\?")):
        load_settings(environ=env)


def test_bad_toml_and_missing_file(tmp_path: Path):
    broken = tmp_path / "bad.toml"
    broken.write_text("[probe\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


@settings(max_examples=150, deadline=None)
@given(
    section=st.sampled_from(["probe", "memory", "safety"]),
    key=st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20),
    value=st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=10), st.booleans(), st.none()),
)
def test_any_input_is_settings_or_one_clear_line(section, key, value):
    """Never a traceback: either valid settings, or a ConfigError naming the section."""
    try:
        s = load_settings(environ={}, overrides={section: {key: value}})
    except ConfigError as exc:
        assert section in str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(s, Settings)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-10, max_value=10**6))
def test_numbers_out_of_range_are_rejected_not_clamped(port):
    try:
        s = load_settings(environ={}, overrides={"probe": {"port": port}})
    except ConfigError as exc:
        assert not 1 <= port <= 65535 and "probe.port" in str(exc)
    else:
        assert s.probe.port == port and 1 <= port <= 65535
