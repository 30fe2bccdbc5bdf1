"""`orch reboot` / `orch stop-start` under moto: a sweep's care for a person's click."""

from __future__ import annotations

import contextlib
import functools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.model import InstanceHistory, ProbeOutcome
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import PauseState
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import launch
from tests.builders import ScriptedProber
from tests.faults import FaultPlan
from tests.webhook_server import webhook_server

MUTATIONS = {"RebootInstances", "StopInstances", "StartInstances", "SetInstanceHealth", "TerminateInstances", "SendDiagnosticInterrupt"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> FaultPlan:
    """Every AWS call the CLI makes, seen by the before-send hook (tests/faults.py)."""
    return FaultPlan().install(monkeypatch)


@pytest.fixture
def fleet(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ids = launch(aws, subnet, 4)
    aws.ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "Name", "Value": "crawler-1"}])
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")
    monkeypatch.setenv("ORCH_SAFETY_MAX_UNHEALTHY", "50%")
    return ids


def orch(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--state", str(tmp_path / "state.db")], env=env, catch_exceptions=False)


@contextlib.contextmanager
def store_of(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    try:
        yield store
    finally:
        store.close()


def mutations(calls: FaultPlan) -> list[str]:
    return [op for op in calls.operations() if op in MUTATIONS]


def test_refused_off_a_terminal_without_yes_before_any_aws_call(fleet, tmp_path, calls):
    result = orch(tmp_path, "reboot", fleet[0])
    assert result.exit_code == 2
    assert "refused: orch reboot is not on a terminal to ask; pass --yes" in result.stderr
    assert calls.operations() == []


def test_reboot_by_name_captures_evidence_records_and_updates_history(fleet, tmp_path, calls):
    result = orch(tmp_path, "reboot", "crawler-1", "--yes", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["instance_id"], doc["action"], doc["outcome"]) == (fleet[0], "reboot", "done")
    assert doc["reason"].startswith("by hand (orch reboot by ") and doc["requested_by"]
    assert doc["evidence"] is not None and "console_cause" in doc["evidence"]
    assert mutations(calls) == ["RebootInstances"]
    assert calls.reached_server("RebootInstances")[0].instance_ids() == [fleet[0]]  # only the one asked for
    with store_of(tmp_path) as store:
        (record,) = store.list_actions(fleet[0])
        assert record.status.value == "done" and record.reason == doc["reason"]
        assert "console_cause" in record.evidence
        history = store.get_histories([fleet[0]])[fleet[0]]
        assert history.in_flight_key == record.key
        assert history.actions[-1].requested_by == doc["requested_by"] and history.actions[-1].forced == ""
        (sweep,) = store.list_sweeps(1)
        assert sweep.summary["manual"]["instance_id"] == fleet[0]
    # the sweep's own unreachable instance is not acted on by a manual command: only the one asked for
    with store_of(tmp_path) as store:
        assert store.list_actions(fleet[1]) == []


def test_reboot_of_a_healthy_instance_is_done_too(fleet, tmp_path, calls):
    result = orch(tmp_path, "reboot", fleet[2], "--yes", "-o", "json")
    assert result.exit_code == 0, result.output
    assert "healthy at the time" in json.loads(result.stdout)["reason"]
    assert mutations(calls) == ["RebootInstances"]


def test_dry_run_makes_no_mutating_call_and_records_no_action(fleet, tmp_path, calls):
    result = orch(tmp_path, "stop-start", fleet[0], "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "dry-run"
    assert mutations(calls) == [] and calls.operations()  # it observed, and mutated nothing
    with store_of(tmp_path) as store:
        assert store.list_actions(fleet[0]) == []


def test_refused_while_paused_even_with_force(fleet, tmp_path, calls):
    with store_of(tmp_path) as store:
        store.set_pause(PauseState(paused_at=datetime.now(timezone.utc), by="alice@ops", reason="maintenance"))
    for extra in ((), ("--force", "--reason", "it is on fire")):
        result = orch(tmp_path, "reboot", fleet[0], "--yes", *extra, "-o", "json")
        assert result.exit_code == 1
        doc = json.loads(result.stdout)
        assert (doc["outcome"], doc["rule"], doc["forceable"]) == ("refused", "paused", False)
        assert "paused" in doc["detail"] and "alice@ops" in doc["detail"]
    assert mutations(calls) == []


def test_a_lease_held_by_another_sweep_is_refused(fleet, tmp_path, calls, aws):
    from orchestrator.state import lease_scope
    from orchestrator.state.lease import LeaseKeeper

    with store_of(tmp_path) as store:
        LeaseKeeper(store, lease_scope("-", "us-east-1", None), owner="other-host:1:abc").acquire()
        result = orch(tmp_path, "reboot", fleet[0], "--yes")
    assert result.exit_code == 4
    assert "not acting" in result.stderr
    assert mutations(calls) == []


def test_the_breaker_refuses_unless_forced_with_a_reason_that_is_recorded(aws, subnet, tmp_path, calls, monkeypatch):
    ids = launch(aws, subnet, 4)
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber(set(ids[:3]), ProbeOutcome.CONNECT_TIMEOUT)))
    monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")  # 3 of 4 down, limit 20%: the breaker is open
    refused = orch(tmp_path, "reboot", ids[0], "--yes", "-o", "json")
    assert refused.exit_code == 1
    doc = json.loads(refused.stdout)
    assert (doc["outcome"], doc["rule"], doc["forceable"]) == ("refused", "breaker", True)
    assert "--force --reason TEXT" in doc["detail"]
    assert mutations(calls) == []
    forced = orch(tmp_path, "reboot", ids[0], "--yes", "--force", "--reason", "INC-42: the DB host, known wedged", "-o", "json")
    assert forced.exit_code == 0, forced.output
    doc = json.loads(forced.stdout)
    assert doc["outcome"] == "done" and doc["force_reason"] == "INC-42: the DB host, known wedged"
    assert doc["forced"].startswith("forced past breaker (too many unhealthy")
    assert mutations(calls) == ["RebootInstances"]
    with store_of(tmp_path) as store:
        (record,) = store.list_actions(ids[0])
        assert "INC-42: the DB host, known wedged" in record.reason
        assert store.get_histories([ids[0]])[ids[0]].actions[-1].forced == doc["forced"]


def test_the_hourly_budget_refuses_unless_forced(fleet, tmp_path, calls):
    env = {"ORCH_SAFETY_MAX_ACTIONS_PER_HOUR": "0"}
    result = orch(tmp_path, "reboot", fleet[2], "--yes", "-o", "json", env=env)
    assert result.exit_code == 1 and json.loads(result.stdout)["rule"] == "budget"
    forced = orch(tmp_path, "reboot", fleet[2], "--yes", "--force", "--reason", "change CHG-7", "-o", "json", env=env)
    assert forced.exit_code == 0 and json.loads(forced.stdout)["outcome"] == "done"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--force",), "--force needs --reason TEXT"),
        (("--force", "--reason", "  "), "--force needs --reason TEXT"),
        (("--reason", "x"), "--reason goes with --force"),
    ],
)
def test_force_and_reason_go_together(fleet, tmp_path, calls, args, message):
    result = orch(tmp_path, "reboot", fleet[0], "--yes", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert calls.operations() == []


def test_stop_start_of_an_auto_scaling_member_is_refused_even_forced(fleet, tmp_path, calls, aws):
    aws.client("autoscaling").create_launch_configuration(LaunchConfigurationName="lc", ImageId="ami-12c6146b", InstanceType="t3.micro")
    subnet = aws.ec2.describe_instances(InstanceIds=[fleet[3]])["Reservations"][0]["Instances"][0]["SubnetId"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchConfigurationName="lc", MinSize=0, MaxSize=5, VPCZoneIdentifier=subnet
    )
    aws.client("autoscaling").attach_instances(InstanceIds=[fleet[3]], AutoScalingGroupName="web")
    result = orch(tmp_path, "stop-start", fleet[3], "--yes", "--force", "--reason", "try", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["rule"] == "ladder" and "Auto Scaling group web" in doc["detail"] and doc["forceable"] is False
    assert mutations(calls) == []


def test_stop_start_stops_and_starts_and_the_next_sweep_awaits_verification(fleet, tmp_path, calls, monkeypatch):
    monkeypatch.setenv("ORCH_SAFETY_STOP_WAIT_SECONDS", "0")
    result = orch(tmp_path, "stop-start", fleet[0], "--yes", "-o", "json")
    assert result.exit_code == 0, result.output
    assert {"StopInstances", "StartInstances"} <= set(mutations(calls))
    again = orch(tmp_path, "reboot", fleet[0], "--yes", "-o", "json")
    doc = json.loads(again.stdout)
    assert again.exit_code == 1 and doc["rule"] == "in-flight" and "awaits verification" in doc["detail"]


def test_a_quarantined_instance_needs_force(fleet, tmp_path, calls):
    now = datetime.now(timezone.utc)
    with store_of(tmp_path) as store:
        store.put_histories([InstanceHistory(fleet[2], quarantined_at=now - timedelta(hours=1), quarantine_reason="4 actions in 6 h")])
    result = orch(tmp_path, "reboot", fleet[2], "--yes", "-o", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["rule"] == "quarantine"


def test_the_action_is_told_to_sns_and_webhooks_in_a_sweeps_words(fleet, tmp_path, calls, aws):
    topic = aws.client("sns").create_topic(Name="orch")["TopicArn"]
    with webhook_server([(200, {})]) as server:
        env = {"ORCH_NOTIFY_TOPIC_ARN": topic, "ORCH_NOTIFY_WEBHOOKS": json.dumps([{"url": server.url, "format": "json"}])}
        result = orch(tmp_path, "reboot", fleet[0], "--yes", "-o", "json", env=env)
        (body,) = server.bodies
    assert result.exit_code == 0, result.output
    assert len(calls.reached_server("Publish")) == 1
    (item,) = body["new"]
    assert item["key"] == f"action:{fleet[0]}:reboot"
    assert item["text"].startswith(f"{fleet[0]} (crawler-1) rebooted: by hand (orch reboot by ")


def test_a_manual_action_does_not_end_what_the_sweeps_told(aws, subnet, tmp_path, calls, monkeypatch):
    """The breaker told by a sweep is not 'over now' because a person rebooted one box past it."""
    ids = launch(aws, subnet, 4)
    with webhook_server([(202, {})]) as server:
        hook = json.dumps([{"url": server.url, "format": "pagerduty", "routing_key": "K"}])
        monkeypatch.setenv("ORCH_NOTIFY_WEBHOOKS", hook)
        monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")
        monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber(set(ids[:3]), ProbeOutcome.CONNECT_TIMEOUT)))
        assert orch(tmp_path, "heal", "--yes").exit_code == 1  # the breaker opens: paged
        assert orch(tmp_path, "reboot", ids[0], "--yes", "--force", "--reason", "INC-1").exit_code == 0
        actions = [b["event_action"] for b in server.bodies]
    assert actions == ["trigger"]  # no resolve: the breaker is still open
