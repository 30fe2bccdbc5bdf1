"""`orch guard` against moto, every call recorded (tests/faults.py), and the SSM adapter against a
botocore Stubber fed SSM's documented shapes.

moto has no DescribeInstanceInformation and answers every invocation ``Success`` with empty
output at once, so the agents' ping status and each box's output are answered as AWS
documents them: ``InstanceInformationList[].PingStatus`` (an unregistered instance is
absent), GetCommandInvocation's ``Status``, ``ResponseCode`` and ``StandardOutputContent``
for one ``PluginName``; right after SendCommand, ``InvocationDoesNotExist`` (the API
reference: "the command ID and instance ID you specified did not match any invocations").
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from orchestrator.cli import cli, guard_cmds
from orchestrator.guard import ssm as guard_ssm
from orchestrator.guard.plan import GuardSpec
from orchestrator.guard.script import Action, commands
from orchestrator.model import ActionAttempt, ActionKind, Cause, Instance, InstanceHistory
from orchestrator.state.sqlite import SqliteStore
from tests.aws.conftest import launch
from tests.faults import FaultPlan, succeed

CID = "7d0f5f5b-8f1d-4d1c-9f0e-0123456789ab"  # a command id is a UUID (36 characters)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
APPLIED = ("ORCH_GUARD state applied=yes changed=yes version=1\n"
           "ORCH_GUARD service process=ruby running=yes pid=812 unit=crawler.service cgroup=/sys/fs/cgroup/system.slice/crawler.service "
           "limit_bytes=6039797760 oom_kills=0 restarts=0\n")


@pytest.fixture
def fleet(aws, subnet) -> dict[str, str]:
    names = ("online-1", "online-2", "lost", "unregistered", "stopped")
    ids = launch(aws, subnet, len(names))
    by_name = dict(zip(names, ids))
    for name, instance_id in by_name.items():
        aws.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": name}])
    aws.ec2.stop_instances(InstanceIds=[by_name["stopped"]])
    return by_name


def ssm_agents(fleet: dict[str, str]) -> dict[str, Any]:
    status = {"online-1": "Online", "online-2": "Online", "lost": "ConnectionLost", "stopped": "Online"}
    return {"InstanceInformationList": [{"InstanceId": fleet[n], "PingStatus": s, "PlatformType": "Linux"} for n, s in status.items()]}


@pytest.fixture
def calls(monkeypatch, fleet) -> FaultPlan:
    monkeypatch.setattr(guard_cmds, "clock", lambda: NOW)
    monkeypatch.setattr(guard_cmds, "sleep", lambda s: None)
    recorder = FaultPlan().install(monkeypatch)
    recorder.on("DescribeInstanceInformation", fault=succeed(ssm_agents(fleet)))
    recorder.on("GetCommandInvocation", fault=succeed({"Status": "Success", "ResponseCode": 0, "StandardOutputContent": APPLIED,
                                                         "PluginName": guard_ssm.PLUGIN}))
    return recorder


@pytest.fixture
def state(tmp_path, fleet) -> str:
    """online-1 is chronic: two verified reboots for memory, ruby named by the console."""
    def cycle(minutes_ago: int) -> ActionAttempt:
        at = NOW - timedelta(minutes=minutes_ago)
        return ActionAttempt(at=at, kind=ActionKind.REBOOT, cause=Cause.MEMORY, verified_at=at + timedelta(minutes=5),
                             recurred_at=at + timedelta(minutes=30), cycle_minutes=33.0, slope_per_min=2.1, process="ruby")
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.put_histories([InstanceHistory(fleet["online-1"], actions=(cycle(80), cycle(40)))])
    store.close()
    return str(path)


def orch(*args: str) -> Result:
    return CliRunner().invoke(cli, ["guard", *args, "--region", "us-east-1"], catch_exceptions=False)


def sent(calls: FaultPlan, operation: str) -> list[dict[str, Any]]:
    return [r.params for r in calls.log if r.operation == operation and r.reached_server]


def asked(calls: FaultPlan, operation: str) -> list[dict[str, Any]]:
    """Every attempt, answered by moto or by the plan."""
    return [r.params for r in calls.log if r.operation == operation]


def test_plan_sends_nothing_and_takes_the_process_from_the_chronic_condition(calls, fleet, state):
    result = orch("plan", "--chronic", "--state", state, "-o", "json")
    assert result.exit_code == 0, result.output
    [only] = json.loads(result.stdout)["instances"]
    assert only["instance_id"] == fleet["online-1"] and only["process"] == "ruby"
    assert only["limit_percent"] == 20.0  # t3.micro: 1 GiB, so the headroom floor (moto describes the type)
    assert any("about every 7 min" in r for r in only["reasons"])  # 33 min x 20%
    assert not sent(calls, "SendCommand")


def test_apply_goes_to_online_instances_only_and_reads_each_answer_per_plugin(calls, fleet, state):
    result = orch("apply", "--all", "--process", "ruby", "--yes", "--state", state, "-o", "json")
    assert result.exit_code == 1  # three were refused: a person should look
    document = json.loads(result.stdout)
    online = sorted([fleet["online-1"], fleet["online-2"]])
    [send] = sent(calls, "SendCommand")
    assert send["DocumentName"] == "AWS-RunShellScript" and sorted(send["InstanceIds"]) == online
    assert send["Parameters"]["commands"] == commands(GuardSpec(process="ruby", limit_percent=20.0, high_percent=15.0), Action.APPLY)
    reads = asked(calls, "GetCommandInvocation")
    assert sorted(r["InstanceId"] for r in reads) == online and all(r["PluginName"] == "aws:runShellScript" for r in reads)
    refused = {r["instance_id"]: r["why"] for r in document["refused"]}
    assert "ConnectionLost" in refused[fleet["lost"]] and "not registered with SSM" in refused[fleet["unregistered"]]
    assert refused[fleet["stopped"]].startswith("stopped")
    assert [a["applied"] for a in document["answers"]] == [True, True]
    assert document["answers"][0]["service"]["limit_bytes"] == "6039797760"


def test_dry_run_sends_nothing(calls, state):
    result = orch("apply", "--all", "--dry-run", "--state", state, "-o", "json")
    assert not asked(calls, "SendCommand") and not asked(calls, "GetCommandInvocation")
    assert json.loads(result.stdout)["dry_run"] is True and json.loads(result.stdout)["batches"]


def test_off_a_terminal_apply_and_remove_need_yes_and_send_nothing(calls, state):
    for verb in ("apply", "remove"):
        result = orch(verb, "--all", "--state", state)
        assert result.exit_code == 2 and "--yes" in result.output and "--dry-run" in result.output
    assert not sent(calls, "SendCommand")


def test_apply_without_a_choice_is_refused(calls, state):
    result = orch("apply", "--yes", "--state", state)
    assert result.exit_code == 2 and "--chronic or --all" in result.output
    assert not sent(calls, "SendCommand")


def test_a_bad_process_name_is_one_line_and_exit_2(calls, state):
    result = orch("plan", "--process", "ruby; reboot", "--state", state)
    assert result.exit_code == 2 and "not a process name" in result.output and "Traceback" not in result.output


def test_remove_sends_the_remove_script(calls, fleet, state):
    calls.on("GetCommandInvocation", fault=succeed({"Status": "Success", "ResponseCode": 0, "PluginName": guard_ssm.PLUGIN,
                                                    "StandardOutputContent": "ORCH_GUARD removed path=/etc/x\n"
                                                                             "ORCH_GUARD state applied=no removed=yes\n"}))
    calls.rules.insert(0, calls.rules.pop())  # first matching rule wins: the remove answer before the apply one
    result = orch("remove", fleet["online-1"], "--process", "ruby", "--yes", "--state", state, "-o", "json")
    assert result.exit_code == 0, result.output
    [send] = sent(calls, "SendCommand")
    assert send["Parameters"]["commands"][1].startswith("# orch guard remove")
    assert json.loads(result.stdout)["answers"][0]["removed"] is True


def test_status_reports_limits_restarts_and_whether_the_guard_works(calls, fleet, state):
    since = int((NOW - timedelta(hours=2)).timestamp())
    calls.on("GetCommandInvocation", fault=succeed({"Status": "Success", "ResponseCode": 0, "PluginName": guard_ssm.PLUGIN,
                                                    "StandardOutputContent": f"ORCH_GUARD state applied=yes entries=4 since={since}\n"
                                                    + APPLIED.splitlines()[1].replace("restarts=0", "restarts=5") + "\n"}))
    calls.rules.insert(0, calls.rules.pop())
    result = orch("status", fleet["online-1"], fleet["online-2"], "--process", "ruby", "--state", state, "-o", "json")
    [send] = sent(calls, "SendCommand")
    assert send["Parameters"]["commands"][1].startswith("# orch guard status")
    guard = {a["instance_id"]: a["guard"] for a in json.loads(result.stdout)["answers"]}
    # online-1 was rebooted 80 and 40 minutes ago, after the guard began: it did not work there
    assert guard[fleet["online-1"]]["judgement"] == "did not work" and guard[fleet["online-1"]]["actions_since"] == 2
    assert guard[fleet["online-2"]]["judgement"] == "works" and guard[fleet["online-2"]]["kills"] == 5
    assert result.exit_code == 1  # a guard that did not work needs a look


def test_permissions_guard_lists_what_it_calls(calls, state):
    result = CliRunner().invoke(cli, ["permissions", "guard"], catch_exceptions=False)
    actions = {a for s in json.loads(result.stdout)["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    orch("apply", "--all", "--process", "ruby", "--yes", "--state", state)
    called = {f"{r.service}:{r.operation}" for r in calls.log} - {"ssm:GetParametersByPath"}
    assert called <= actions, called - actions
    assert {"ssm:SendCommand", "ssm:GetCommandInvocation", "ssm:DescribeInstanceInformation", "ec2:DescribeInstanceTypes"} <= actions


# -- the adapter against SSM's documented shapes (botocore Stubber) -------------------------------------


def _instances(n: int) -> list[Instance]:
    return [Instance(instance_id=f"i-{k:017x}", state="running", availability_zone="us-east-1a", launch_time=NOW) for k in range(n)]


@pytest.mark.parametrize(("count", "batch_size", "sizes"), [(120, 50, [50, 50, 20]), (3, 1, [1, 1, 1]), (50, 50, [50])])
def test_sendcommand_batches_hold_at_most_50_ids(count, batch_size, sizes):
    fleet = _instances(count)
    spec = GuardSpec(process="ruby")
    delivery = guard_ssm.plan_delivery(fleet, {i.instance_id: spec for i in fleet}, {i.instance_id: "Online" for i in fleet}, 10000, batch_size)
    assert [len(b.instance_ids) for b in delivery.batches] == sizes


def test_instances_with_different_scripts_never_share_a_command():
    fleet = _instances(4)
    specs = {i.instance_id: GuardSpec(process="ruby" if n % 2 else "java") for n, i in enumerate(fleet)}
    delivery = guard_ssm.plan_delivery(fleet, specs, {i.instance_id: "Online" for i in fleet}, 10, 50)
    assert sorted(b.spec.process for b in delivery.batches) == ["java", "ruby"]
    assert all({specs[i] for i in b.instance_ids} == {b.spec} for b in delivery.batches)


def test_batch_size_over_50_is_refused():
    with pytest.raises(ValueError, match="SendCommand"):
        guard_ssm.plan_delivery([], {}, {}, 10, 51)


def test_run_sends_each_batch_and_follows_each_invocation_per_plugin():
    ssm = boto3.client("ssm", region_name="us-east-1")
    fleet = _instances(2)
    spec = GuardSpec(process="ruby")
    delivery = guard_ssm.plan_delivery(fleet, {i.instance_id: spec for i in fleet}, {i.instance_id: "Online" for i in fleet}, 10, 50)
    ids = [i.instance_id for i in fleet]
    with Stubber(ssm) as stub:
        stub.add_response("send_command", {"Command": {"CommandId": CID, "InstanceIds": ids, "Status": "Pending"}},
                          {"InstanceIds": ids, "DocumentName": "AWS-RunShellScript", "Parameters": {"commands": commands(spec, Action.APPLY)},
                           "Comment": "orch guard apply", "TimeoutSeconds": 120})
        first = {"CommandId": CID, "InstanceId": ids[0], "PluginName": "aws:runShellScript"}
        stub.add_client_error("get_command_invocation", "InvocationDoesNotExist", expected_params=first)  # not registered yet
        stub.add_response("get_command_invocation", {"CommandId": CID, "InstanceId": ids[0], "Status": "InProgress",
                                                     "StatusDetails": "InProgress", "ResponseCode": -1}, first)
        stub.add_response("get_command_invocation", {"CommandId": CID, "InstanceId": ids[0], "Status": "Success", "ResponseCode": 0,
                                                     "StandardOutputContent": APPLIED, "PluginName": "aws:runShellScript"}, first)
        second = {"CommandId": CID, "InstanceId": ids[1], "PluginName": "aws:runShellScript"}
        stub.add_response("get_command_invocation", {"CommandId": CID, "InstanceId": ids[1], "Status": "Failed", "ResponseCode": 1,
                                                     "StandardOutputContent": "ORCH_GUARD error reason=process-not-running process=ruby\n",
                                                     "StandardErrorContent": "", "PluginName": "aws:runShellScript"}, second)
        slept: list[float] = []
        answers = guard_ssm.run(ssm, ssm, delivery, Action.APPLY, sleep=slept.append)
        stub.assert_no_pending_responses()
    assert [a.status for a in answers] == ["Success", "Failed"]
    assert answers[0].box.applied and answers[1].box.errors == [{"reason": "process-not-running", "process": "ruby"}]
    assert len(slept) == 2  # two polls waited, through the injected sleep


def test_an_invocation_that_outlives_the_wait_is_called_timed_out():
    ssm = boto3.client("ssm", region_name="us-east-1")
    with Stubber(ssm) as stub:
        for _ in range(3):
            stub.add_response("get_command_invocation", {"CommandId": CID, "InstanceId": "i-0123456789abcdef0", "Status": "InProgress"},
                              {"CommandId": CID, "InstanceId": "i-0123456789abcdef0", "PluginName": "aws:runShellScript"})
        answer = guard_ssm.follow(ssm, CID, "i-0123456789abcdef0", wait_seconds=6, sleep=lambda s: None)
    assert answer.status.startswith("TimedOut") and answer.box.applied is None
