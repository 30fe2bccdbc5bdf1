"""`orch agent install` against moto, every call recorded by the before-send hook (tests/faults.py).

moto has no DescribeInstanceInformation (it answers "not implemented") and runs every
command to ``Success`` at once, so the SSM agents' ping status and failed invocations are
answered as AWS documents them: DescribeInstanceInformation's ``InstanceInformationList``
with ``PingStatus`` Online / ConnectionLost / Inactive (an unregistered instance is simply
absent), ListCommands' ``Commands[].Status`` and GetCommandInvocation's ``Status``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import agent_cmds, cli
from orchestrator.config import MemorySettings
from orchestrator.onboard.agent_config import agent_config, render
from tests.aws.conftest import launch
from tests.faults import FaultPlan, succeed


@pytest.fixture
def fleet(aws, subnet) -> dict[str, str]:
    """online-1, online-2 (Online), lost (ConnectionLost), unregistered, stopped (Online when it ran)."""
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
    recorder = FaultPlan().install(monkeypatch)
    recorder.on("DescribeInstanceInformation", fault=succeed(ssm_agents(fleet)))
    return recorder


def orch(*args: str) -> Result:
    return CliRunner().invoke(cli, ["agent", "install", "--region", "us-east-1", *args], catch_exceptions=False)


def sent(calls: FaultPlan, operation: str) -> list[dict[str, Any]]:
    return [r.params for r in calls.log if r.operation == operation and r.reached_server]


def test_the_right_commands_go_to_the_online_instances_only(calls, fleet, aws):
    result = orch("--yes", "-o", "json", "--process", "crawler")
    assert result.exit_code == 1  # three instances were refused: a person should look
    document = json.loads(result.stdout)
    online = sorted([fleet["online-1"], fleet["online-2"]])

    # 1. the config goes to the parameter first, exactly the JSON derived from the settings
    [put] = sent(calls, "PutParameter")
    assert put["Name"] == "AmazonCloudWatch-orch" and put["Type"] == "String" and put["Overwrite"] is True
    assert json.loads(put["Value"]) == agent_config(MemorySettings(), ["crawler"])
    assert calls.operations().index("PutParameter") < calls.operations().index("SendCommand")

    # 2. install, then 3. configure from that parameter, to the Online instances only
    install, configure = sent(calls, "SendCommand")
    assert install["DocumentName"] == "AWS-ConfigureAWSPackage"
    assert install["Parameters"] == {"action": ["Install"], "name": ["AmazonCloudWatchAgent"]}
    assert sorted(install["InstanceIds"]) == online
    assert configure["DocumentName"] == "AmazonCloudWatch-ManageAgent"
    assert configure["Parameters"] == {
        "action": ["configure"],
        "mode": ["ec2"],
        "optionalConfigurationSource": ["ssm"],
        "optionalConfigurationLocation": ["AmazonCloudWatch-orch"],
        "optionalRestart": ["yes"],
    }
    assert sorted(configure["InstanceIds"]) == online

    refused = {r["instance_id"]: r["why"] for r in document["refused"]}
    assert set(refused) == {fleet["lost"], fleet["unregistered"], fleet["stopped"]}
    assert "ConnectionLost" in refused[fleet["lost"]]
    assert "not registered with SSM" in refused[fleet["unregistered"]]
    assert refused[fleet["stopped"]].startswith("stopped")
    assert document["installed"] == {i: "Success" for i in online} == document["configured"]
    stored = aws.client("ssm").get_parameter(Name="AmazonCloudWatch-orch")["Parameter"]["Value"]
    assert stored == render(agent_config(MemorySettings(), ["crawler"]))


def test_dry_run_makes_no_mutating_call(calls, fleet):
    result = orch("--dry-run", "-o", "json")
    document = json.loads(result.stdout)
    assert not sent(calls, "PutParameter") and not sent(calls, "SendCommand")
    assert document["parameter"]["changed"] is True
    assert sorted(document["batches"][0]) == sorted([fleet["online-1"], fleet["online-2"]])


def test_off_a_terminal_it_needs_yes_and_sends_nothing(calls):
    result = orch()
    assert result.exit_code == 2 and "--yes" in result.output
    assert not sent(calls, "PutParameter") and not sent(calls, "SendCommand")


def test_batches_and_the_budget(calls, fleet):
    orch("--yes", "--batch-size", "1")
    assert [p["InstanceIds"] for p in sent(calls, "SendCommand")] == [
        [a] for a in sorted([fleet["online-1"], fleet["online-2"]]) for _ in ("install", "configure")
    ]
    calls.log.clear()
    document = json.loads(orch("--yes", "--max-instances", "1", "-o", "json").stdout)
    [first] = sorted([fleet["online-1"], fleet["online-2"]])[:1]
    assert [p["InstanceIds"] for p in sent(calls, "SendCommand")] == [[first], [first]]
    assert any("over the budget of 1" in r["why"] for r in document["refused"])


def test_an_unchanged_parameter_is_not_written_again(calls):
    orch("--yes")
    calls.log.clear()
    orch("--yes")
    assert not sent(calls, "PutParameter") and len(sent(calls, "SendCommand")) == 2


def test_only_instances_whose_install_succeeded_are_configured(calls, fleet):
    failing = fleet["online-2"]
    calls.on("ListCommands", fault=succeed({"Commands": [{"CommandId": "x", "Status": "Failed"}]}), calls={1})
    calls.on("ListCommandInvocations", fault=succeed({"CommandInvocations": [
        {"InstanceId": fleet["online-1"], "Status": "Success", "CommandPlugins": [{"Name": "configurePackage", "Status": "Success"}]},
        {"InstanceId": failing, "Status": "Failed", "CommandPlugins": [{"Name": "configurePackage", "Status": "Failed"}]}]}))
    calls.on("GetCommandInvocation", fault=succeed({"Status": "Failed", "InstanceId": failing, "PluginName": "configurePackage",
                                                    "StandardErrorContent": "no space left on device\nmore"}),
             when=lambda call: call.params().get("InstanceId") == failing)
    document = json.loads(orch("--yes", "-o", "json").stdout)
    install, configure = sent(calls, "SendCommand")
    assert failing in install["InstanceIds"] and configure["InstanceIds"] == [fleet["online-1"]]
    assert document["installed"][failing] == "Failed (step configurePackage: no space left on device)" and failing not in document["configured"]
    assert [r.params["PluginName"] for r in calls.log if r.operation == "GetCommandInvocation"] == ["configurePackage"]


def test_named_instances_outside_the_fleet_are_refused(calls, aws, subnet):
    [stranger] = launch(aws, subnet, 1, tags={})
    result = orch("--yes", stranger)
    assert result.exit_code == 2 and "not among the instances selected" in result.output
    assert not sent(calls, "SendCommand")


def test_a_command_still_running_after_the_wait_is_timed_out_not_success(calls, fleet, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(agent_cmds, "sleep", slept.append)  # the polls' sleep, injected: no test waits
    calls.on("ListCommands", fault=succeed({"Commands": [{"CommandId": "x", "Status": "InProgress"}]}))
    result = orch("--yes", "--wait", "10", "-o", "json")
    document = json.loads(result.stdout)
    assert result.exit_code == 1
    assert set(document["installed"].values()) == {"TimedOut (orch stopped waiting)"}
    assert [p["DocumentName"] for p in sent(calls, "SendCommand")] == ["AWS-ConfigureAWSPackage"]  # no configure after it
    assert slept == [5.0, 5.0]  # polled every 5 s for the 10 s asked, then gave up


def declared(record) -> str:
    return f"{record.service.replace('-', '')}:{record.operation}"


def test_every_call_made_is_declared_for_the_persons_policy(calls):
    from orchestrator.iam import permissions

    orch("--yes", "--process", "crawler")
    made = {declared(r) for r in calls.log}
    assert {"ssm:PutParameter", "ssm:SendCommand", "ssm:DescribeInstanceInformation", "ssm:GetParameter"} <= made
    assert made <= permissions.AGENT_INSTALL, made - permissions.AGENT_INSTALL
