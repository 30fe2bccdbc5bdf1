"""Hostile input to the commands a person runs by hand: heal, status, pause, permissions (issue 20).

Case 9: `orch heal --yes` on a fleet with a Name tag ``web [/x] prod`` crashed after
the reboots (the table is drawn after acting): the reboot must happen and be reported.
Case 10: a --query that compiles but fails on the result is a usage error, one line.
Case 12: `orch permissions reboot|init|agent` are commands of their own, and the policy
of every command holds what `init --asg` and `agent install` call.
Case 13: a lease left by a killed process is not shown held; a 100 kB pause reason is
refused; a 100 kB selector is quoted cut to 200 characters.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.cli.state_cmds import PAUSE_REASON_LIMIT, lease_state
from orchestrator.config import load_settings
from orchestrator.iam import permissions
from orchestrator.iam import policy as iam_policy
from orchestrator.state import lease_scope
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import Lease, PauseState
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import REGION, launch
from tests.builders import ScriptedProber
from tests.faults import FaultPlan

NAME = "web [/x] prod"


@contextlib.contextmanager
def store_of(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> FaultPlan:
    return FaultPlan().install(monkeypatch)


@pytest.fixture
def fleet(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ids = launch(aws, subnet, 4)
    aws.ec2.create_tags(Resources=ids[:2], Tags=[{"Key": "Name", "Value": NAME}])
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")
    monkeypatch.setenv("ORCH_SAFETY_MAX_UNHEALTHY", "50%")
    return ids


def orch(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--state", str(tmp_path / "state.db")], env={"COLUMNS": "200"})


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error")]


# -- case 9 ---------------------------------------------------------------------------------

def test_case_9_heal_yes_reboots_and_reports_a_markup_name(fleet, tmp_path, calls) -> None:
    result = orch(tmp_path, "heal", "--yes")
    no_traceback(result)
    assert result.exit_code == 0, result.output
    assert calls.operations().count("RebootInstances") == 1
    assert NAME in result.stdout and "reboot" in result.stdout and "done" in result.stdout
    again = orch(tmp_path, "heal", "--yes")  # the next sweep verifies it, with the same name in its table
    no_traceback(again)
    assert again.exit_code == 0 and NAME in again.stdout
    with store_of(tmp_path) as store:
        assert [r.instance_id for r in store.list_actions(fleet[0], 10)] == [fleet[0]]


# -- case 10 --------------------------------------------------------------------------------

@pytest.mark.parametrize("query, fragment", [
    ("foo(@)", "--query failed on the result: Unknown function: foo()"),
    ("abs(@)", "--query failed on the result: In function abs(), invalid type"),
    ("sort_by(instances_with_state, &nope)[0]", "--query failed on the result"),
])
def test_case_10_a_query_failing_on_the_data_is_a_usage_error(fleet, tmp_path, query, fragment) -> None:
    result = orch(tmp_path, "status", "-o", "json", "--query", query)
    no_traceback(result)
    if query.startswith("sort_by"):  # an empty list sorts: valid, no error
        assert result.exit_code == 0
        return
    assert result.exit_code == 2 and len(error_lines(result)) == 1 and fragment in error_lines(result)[0], result.output
    assert len(error_lines(result)[0]) < 400


# -- case 12 --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, needed", [
    ("reboot", {"ec2:RebootInstances", "ec2:DescribeInstances", "ssm:GetParametersByPath"}),
    ("stop-start", {"ec2:StopInstances", "ec2:StartInstances"}),
    ("init", {"ec2:DescribeInstances", "ec2:CreateTags", "autoscaling:DescribeAutoScalingGroups", "autoscaling:CreateOrUpdateTags"}),
    ("agent", {"ssm:SendCommand", "ssm:DescribeInstanceInformation", "ssm:PutParameter", "ssm:GetCommandInvocation",
               "cloudwatch:ListMetrics", "cloudwatch:GetMetricData"}),
])
def test_case_12_permissions_of_the_onboarding_and_manual_commands(name, needed) -> None:
    result = CliRunner().invoke(cli, ["permissions", name, "--region", REGION])
    no_traceback(result)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    granted = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert needed <= granted, needed - granted


def test_case_12_every_command_policy_holds_what_onboarding_calls() -> None:
    result = CliRunner().invoke(cli, ["permissions", "--region", REGION])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    granted = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert permissions.ONBOARD <= granted, permissions.ONBOARD - granted
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    # Tagging the fleet: only the selector's tags, on instances and groups not tagged yet.
    tagging = by_sid["TagTheFleet"]
    assert set(tagging["Action"]) == {"ec2:CreateTags", "autoscaling:CreateOrUpdateTags"}
    assert tagging["Condition"]["StringEquals"] == {"aws:RequestTag/orch:managed": "true"}
    assert tagging["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["orch:managed"]}
    # Run Command of the agent's two AWS-owned documents.
    assert by_sid["AgentDocuments"]["Resource"] == [
        f"arn:aws:ssm:{REGION}::document/AWS-ConfigureAWSPackage", f"arn:aws:ssm:{REGION}::document/AmazonCloudWatch-ManageAgent"]


def test_case_12_the_agent_policy_sends_no_shell_and_heal_no_agent_document() -> None:
    settings = load_settings(None, environ={"ORCH_REGION": REGION})
    agent = {s["Sid"] for s in iam_policy.policy_for(["agent"], settings).document["Statement"]}
    heal = {s["Sid"] for s in iam_policy.policy_for(["heal"], settings).document["Statement"]}
    assert "AgentDocuments" in agent and "RunCommandDocument" not in agent  # AWS-RunShellScript is a root shell
    assert "AgentDocuments" not in heal and "TagTheFleet" not in heal


# -- case 13 --------------------------------------------------------------------------------

def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def put_lease(tmp_path: Path, owner: str, expires_in: timedelta) -> None:
    now = datetime.now(timezone.utc)
    with store_of(tmp_path) as store:
        store.acquire_lease(lease_scope("-", REGION, None), owner, timedelta(minutes=10), now - timedelta(minutes=10) + expires_in)


@pytest.mark.parametrize("who, expires_in, state, said", [
    ("dead", timedelta(minutes=4), "stale", "free to take ("),
    ("alive", timedelta(minutes=-1), "expired", "free (the lease of"),
    ("alive", timedelta(minutes=4), "held", "held by"),
])
def test_case_13_status_shows_a_lease_by_its_holder_and_expiry(fleet, tmp_path, who, expires_in, state, said) -> None:
    pid = dead_pid() if who == "dead" else os.getpid()  # this process: alive
    put_lease(tmp_path, f"{socket.gethostname()}:{pid}:deadbeef", expires_in)
    as_json = orch(tmp_path, "status", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["lease_state"] == state
    table = orch(tmp_path, "status")
    assert f"lease: {said}" in table.stdout, table.stdout


def test_case_13_lease_state_is_judged_by_expiry_then_holder() -> None:
    now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    lease = Lease("s", "host:123:abc", now + timedelta(minutes=1), 1)
    assert lease_state(None, now) == "free"
    assert lease_state(lease, now, dead=lambda owner: False) == "held"
    assert lease_state(lease, now, dead=lambda owner: True) == "stale"
    assert lease_state(lease, now + timedelta(minutes=1), dead=lambda owner: False) == "expired"


def test_case_13_a_100_kb_pause_reason_is_refused_and_nothing_paused(fleet, tmp_path) -> None:
    result = orch(tmp_path, "pause", "--reason", "r" * 100_000)
    no_traceback(result)
    assert result.exit_code == 2 and f"give at most {PAUSE_REASON_LIMIT}" in error_lines(result)[0], result.output
    assert json.loads(orch(tmp_path, "status", "-o", "json").stdout)["paused"] is None
    assert orch(tmp_path, "pause", "--reason", "r" * PAUSE_REASON_LIMIT).exit_code == 0


def test_case_13_a_long_stored_pause_reason_is_shown_cut_and_quickly(fleet, tmp_path) -> None:
    with store_of(tmp_path) as store:  # written by an older orch, or by hand
        store.set_pause(PauseState(datetime.now(timezone.utc), "someone", "word " * 20_000))
    started = time.process_time()
    result = orch(tmp_path, "status")
    spent = time.process_time() - started
    assert result.exit_code == 0, result.output
    paused = [line for line in result.stdout.splitlines() if line.startswith("paused:")]
    assert paused and len(result.stdout) < 5_000 and "(100,000 characters)" in result.stdout
    assert spent < 20  # a generous bound: the whole reason took 65 s of CPU (the bench holds the real target)


def test_case_13_a_100_kb_selector_is_quoted_cut_to_200_characters(fleet, tmp_path) -> None:
    value = "v" * 100_000
    for args in (["status"], ["scan"], ["heal", "--dry-run"]):
        result = orch(tmp_path, *args, "--selector", f"team={value}")
        no_traceback(result)
        assert result.exit_code == 1, result.output
        (line,) = error_lines(result)
        assert "no instance matches the selector team=vvv" in line and "(100,005 characters)" in line and len(line) < 600, line[:700]
