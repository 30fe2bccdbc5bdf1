"""The CLI's AWS-CLI conventions against moto: global options anywhere, formats, --query,
instances by Name, an empty match, pause kept, JSON timestamps, --debug."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import launch
from tests.builders import ScriptedProber

ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
LOOKS_LIKE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@pytest.fixture
def fleet(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ids = launch(aws, subnet, 3)
    aws.ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "Name", "Value": "web-1"}])
    aws.ec2.create_tags(Resources=ids[1:], Tags=[{"Key": "Name", "Value": "twin"}])
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")
    monkeypatch.setenv("ORCH_SAFETY_MAX_UNHEALTHY", "50%")  # one of three down is not a fleet-wide fault here
    return ids


def orch(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--state", str(tmp_path / "state.db")], env=env, catch_exceptions=False)


def timestamps(value: Any) -> list[str]:
    """Every string in a JSON document that looks like a time."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in timestamps(v)]
    return [value] if isinstance(value, str) and LOOKS_LIKE_TIME.match(value) else []


def test_global_options_before_or_after_the_command(fleet, tmp_path):
    after = orch(tmp_path, "status", "--region", "us-east-1", "-o", "json")
    before = CliRunner().invoke(cli, ["--region", "us-east-1", "-o", "json", "status", "--state", str(tmp_path / "state.db")])
    assert after.exit_code == before.exit_code == 0, after.output + before.output
    assert json.loads(after.stdout)["instances"] == json.loads(before.stdout)["instances"] == 3
    # After the command wins, as in the AWS CLI: eu-west-1 before, us-east-1 after.
    both = CliRunner().invoke(cli, ["--region", "eu-west-1", "status", "--region", "us-east-1", "-o", "json", "--state", str(tmp_path / "s.db")])
    assert both.exit_code == 0 and json.loads(both.stdout)["instances"] == 3


def test_a_selector_or_region_matching_nothing_says_so_and_exits_1(fleet, tmp_path):
    for args in (["scan"], ["heal", "--dry-run"], ["status"], ["report"], ["status", "--region", "eu-west-1"]):
        result = orch(tmp_path, *args, "--selector", "team=nobody") if args[-1] != "eu-west-1" else orch(tmp_path, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "no instance matches the selector" in result.stderr and "check --selector" in result.stderr
        assert not result.stdout


def test_aws_default_output_and_query(fleet, tmp_path):
    as_json = orch(tmp_path, "status", env={"AWS_DEFAULT_OUTPUT": "json"})
    assert json.loads(as_json.stdout)["instances"] == 3
    queried = orch(tmp_path, "status", "--query", "instances")
    assert queried.stdout.strip() == "3"
    text = orch(tmp_path, "scan", "-o", "text", "--query", "instances_detail[?verdict=='unreachable'].instance_id")
    assert text.exit_code == 1 and text.stdout.split() == [fleet[0]]


def test_heal_json_lists_every_instance_with_its_verdict(fleet, tmp_path):
    result = orch(tmp_path, "heal", "--dry-run", "-o", "json")
    summary = json.loads(result.stdout)
    detail = summary["instances_detail"]
    assert sorted(i["instance_id"] for i in detail) == sorted(fleet)
    assert detail[0]["instance_id"] == fleet[0] and detail[0]["verdict"] == "unreachable"
    assert {i["verdict"] for i in detail[1:]} == {"healthy"}
    scan = json.loads(orch(tmp_path, "scan", "-o", "json").stdout)["instances_detail"]
    assert [set(i) for i in scan] == [set(i) for i in detail]  # one shape, one name, for both
    assert all(ISO_Z.fullmatch(t) for t in timestamps(summary)) and timestamps(summary)


def test_instances_by_id_or_by_name(fleet, tmp_path):
    by_name = orch(tmp_path, "explain", "web-1", "--no-console", "-o", "json")
    by_id = orch(tmp_path, "explain", fleet[0], "--no-console", "-o", "json")
    assert by_name.exit_code == by_id.exit_code == 0, by_name.output
    assert json.loads(by_name.stdout)["instance_id"] == json.loads(by_id.stdout)["instance_id"] == fleet[0]
    assert all(ISO_Z.fullmatch(t) for t in timestamps(json.loads(by_name.stdout)))
    unknown = orch(tmp_path, "explain", "crawler-5")
    assert unknown.exit_code == 2 and "'crawler-5' is neither an instance id" in unknown.stderr and "{" not in unknown.stderr
    twins = orch(tmp_path, "history", "twin")
    assert twins.exit_code == 2 and "is on 2 instances" in twins.stderr and fleet[1] in twins.stderr
    assert orch(tmp_path, "history", "web-1", "-o", "json").stdout.strip() == "[]"


def test_a_second_pause_keeps_the_first_unless_replaced(fleet, tmp_path):
    first = json.loads(orch(tmp_path, "pause", "--reason", "change freeze", "-o", "json").stdout)
    assert first["changed"] is True and ISO_Z.fullmatch(first["since"])
    again = orch(tmp_path, "pause", "--reason", "oops")
    assert again.exit_code == 0 and "already paused by" in again.stdout and "change freeze" in again.stdout and "--replace" in again.stdout
    status = json.loads(orch(tmp_path, "status", "-o", "json").stdout)
    assert status["paused"]["reason"] == "change freeze" and ISO_Z.fullmatch(status["paused"]["paused_at"])
    replaced = json.loads(orch(tmp_path, "pause", "--reason", "new", "--replace", "-o", "json").stdout)
    assert replaced["changed"] and replaced["replaced"]["reason"] == "change freeze" and replaced["reason"] == "new"
    resumed = json.loads(orch(tmp_path, "resume", "-o", "json").stdout)
    assert resumed == {"paused": False, "was_paused": {"paused_at": replaced["since"], "by": replaced["by"], "reason": "new"}}
    assert "not paused" in orch(tmp_path, "resume").stdout


def test_release_by_name_in_json(fleet, tmp_path):
    assert orch(tmp_path, "heal", "--yes").exit_code == 0  # an action: web-1 now has state
    released = orch(tmp_path, "release", "web-1", "-o", "json")
    assert released.exit_code == 0 and json.loads(released.stdout) == {
        "instance_id": fleet[0], "released": True, "was_quarantined": False, "quarantine_reason": ""
    }
    history = json.loads(orch(tmp_path, "history", "-o", "json").stdout)
    assert [r["instance_id"] for r in history] == [fleet[0]] and all(ISO_Z.fullmatch(t) for t in timestamps(history))


def test_debug_logs_botocore_and_orch_to_stderr(fleet, tmp_path):
    result = orch(tmp_path, "status", "--debug", "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["instances"] == 3
    assert "botocore" in result.stderr and "[DEBUG]" in result.stderr
