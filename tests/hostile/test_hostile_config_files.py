"""Hostile configuration: files, values and environments (issue 20, cases 4, 10, 13).

Case 4: `orch init --config PATH` writes only a regular file: a symlink or a device is
refused before any instance is tagged. Case 10: a TOML file nested 50,000 deep is a
config error; `init --config /proc/x.toml` is one line; an emoji in an existing config
or in --selector is written as valid TOML, and what init will write is checked before
it tags anything. Case 13: sweep_interval_minutes has a floor; the Lambda refuses to
run without ORCH_STATE instead of using a file that dies with its container.
"""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lambdas import heal
from orchestrator.cli import cli
from orchestrator.config import ConfigError, load_settings
from orchestrator.onboard import config_file
from tests.aws.conftest import REGION, launch
from tests.faults import FaultPlan


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> FaultPlan:
    return FaultPlan().install(monkeypatch)


def init(config: Path | str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["init", "--region", REGION, "--config", str(config), *args])


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def tagged(calls: FaultPlan) -> list[str]:
    return [op for op in calls.operations() if op in ("CreateTags", "CreateOrUpdateTags")]


def tags_of(aws: Any, instance_id: str) -> dict[str, str]:
    reply = aws.ec2.describe_instances(InstanceIds=[instance_id])
    return {t["Key"]: t["Value"] for t in reply["Reservations"][0]["Instances"][0].get("Tags", [])}


# -- case 10: files that are not TOML a parser survives ------------------------------------------

def test_case_10_a_toml_file_nested_50000_deep_is_a_config_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("region = " + "[" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_settings(deep, environ={})
    result = CliRunner().invoke(cli, ["status", "--config", str(deep)])
    no_traceback(result)
    assert result.exit_code == 2 and "is not valid TOML: arrays or tables nested too deeply" in result.stderr, result.output


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "yes"])
def test_case_10_init_config_in_proc_is_one_line_and_tags_nothing(aws, subnet, calls, dry) -> None:
    launch(aws, subnet, 2, tags={"app": "web"})
    result = init("/proc/x.toml", "--tag", "app=web", "--dry-run" if dry else "--yes")
    no_traceback(result)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "/proc/x.toml" in errors[0] and "nothing tagged" in errors[0], result.stderr
    assert tagged(calls) == []


def test_case_10_an_emoji_in_an_existing_config_is_written_back_as_valid_toml(aws, subnet, tmp_path, calls) -> None:
    ids = launch(aws, subnet, 2, tags={"app": "web"})
    config = tmp_path / "c.toml"
    config.write_text('# mine\nopt_out_tag = "skip-🔥"\n\n[probe]\nport = 22\n', encoding="utf-8")
    result = init(config, "--tag", "app=web", "--yes", "--selector", "team=🔥")
    no_traceback(result)
    assert result.exit_code == 0, result.output
    written = tomllib.loads(config.read_text(encoding="utf-8"))
    assert written["opt_out_tag"] == "skip-🔥" and written["selector"] == {"team": "🔥"} and written["probe"] == {"port": 22}
    assert load_settings(config, environ={}).selector == {"team": "🔥"}  # what later commands read
    assert all(tags_of(aws, i)["team"] == "🔥" for i in ids)


@pytest.mark.parametrize("value", ["a\x7fb", "tab\there", 'quote"and\\slash', "line\nbreak", "\u2028sep"])
def test_case_10_any_text_init_writes_reads_back_as_written(tmp_path: Path, value: str) -> None:
    data = {"region": "eu-west-1", "selector": {"team": value, f"key {value}": "v"}}
    text = config_file.render(data)
    assert tomllib.loads(text) == data


def test_case_10_a_value_toml_cannot_hold_is_refused_before_tagging(aws, subnet, tmp_path, calls, monkeypatch) -> None:
    launch(aws, subnet, 2, tags={"app": "web"})
    config = tmp_path / "c.toml"
    monkeypatch.setenv("ORCH_SELECTOR", "team=bad\udcffbyte")  # an undecodable byte kept by surrogateescape: not text
    result = init(config, "--tag", "app=web", "--yes")
    no_traceback(result)
    assert result.exit_code == 2 and "cannot be written as TOML" in result.stderr and "nothing tagged" in result.stderr, result.output
    assert tagged(calls) == [] and not config.exists()


# -- case 4: init writes files as files ------------------------------------------------------------

def test_case_4_init_refuses_a_symlinked_config_and_leaves_its_target(aws, subnet, tmp_path, calls) -> None:
    launch(aws, subnet, 2, tags={"app": "web"})
    target = tmp_path / "elsewhere.txt"
    target.write_text('region = "eu-west-1"\n')
    link = tmp_path / "c.toml"
    link.symlink_to(target)
    result = init(link, "--tag", "app=web", "--yes")
    no_traceback(result)
    assert result.exit_code == 2 and "is a symlink" in result.stderr and "nothing tagged" in result.stderr, result.output
    assert link.is_symlink() and target.read_text() == 'region = "eu-west-1"\n' and tagged(calls) == []


def test_case_4_init_refuses_a_device_node(aws, subnet, calls) -> None:
    device = Path("/dev/full")
    if not device.exists() or not stat.S_ISCHR(device.stat().st_mode):
        pytest.skip("no /dev/full here")
    launch(aws, subnet, 1, tags={"app": "web"})
    result = init(device, "--tag", "app=web", "--yes")
    no_traceback(result)
    assert result.exit_code == 2 and "is not a regular file (a device)" in result.stderr, result.output
    assert stat.S_ISCHR(device.stat().st_mode) and tagged(calls) == []


def test_case_4_a_config_file_is_replaced_whole_keeping_its_mode(aws, subnet, tmp_path) -> None:
    launch(aws, subnet, 1, tags={"app": "web"})
    config = tmp_path / "c.toml"
    config.write_text('region = "us-east-1"\n')
    config.chmod(0o600)
    assert init(config, "--tag", "app=web", "--yes").exit_code == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and tomllib.loads(config.read_text())["selector"] == {"orch:managed": "true"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


# -- case 13 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0.0001", "0", "0.5"])
def test_case_13_the_sweep_interval_has_a_floor(value: str) -> None:
    with pytest.raises(ConfigError, match="sweep_interval_minutes: Input should be greater than or equal to 1"):
        load_settings(None, environ={"ORCH_SWEEP_INTERVAL_MINUTES": value})
    assert load_settings(None, environ={"ORCH_SWEEP_INTERVAL_MINUTES": "1"}).sweep_interval_minutes == 1.0


class _Context:
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orch"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


def test_case_13_the_lambda_refuses_to_run_without_orch_state(capsys: pytest.CaptureFixture[str]) -> None:
    made: list[Any] = []
    hooks = heal.Hooks(clients=lambda settings: made.append(settings), environ={"ORCH_REGION": REGION, "ORCH_DRY_RUN": "false"})
    with pytest.raises(heal.HandlerError, match="ORCH_STATE is not set"):
        heal.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, _Context(), hooks)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines[-1]["level"] == "error" and lines[-1]["event"] == "state" and "nothing was acted on" in lines[-1]["error"]
    assert made == []  # no AWS client made: nothing read, nothing acted on
