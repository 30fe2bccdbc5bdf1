"""Issue 20, cases 19-24: what AWS does and moto does not, tested with botocore Stubber and AWS's documented shapes."""

from __future__ import annotations

import fnmatch
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from orchestrator.config import load_settings
from orchestrator.doctor import gather
from orchestrator.doctor.resources import Where, dynamodb_table
from orchestrator.iam import policy as iam_policy

REGION, ACCOUNT = "us-east-1", "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/orch"
SETTINGS = load_settings(environ={"ORCH_STATE": "dynamodb://orch-state", "ORCH_EVIDENCE_BUCKET": "orch-evidence",
                                  "ORCH_NOTIFY_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:orch", "ORCH_SELECTOR": "orch:managed=true"})
WHERE = Where(REGION, ACCOUNT, table=dynamodb_table(SETTINGS.state), bucket=SETTINGS.evidence.bucket, topic_arn=SETTINGS.notify.topic_arn)

# The least-privileged shape of cfn/orchestrator.yaml's role: reads on *, each mutation on its own resource.
LEAST_PRIVILEGE = [
    ({"ec2:RebootInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:GetConsoleOutput", "ssm:SendCommand"}, f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"),
    ({"ssm:PutParameter", "ssm:DeleteParameter"}, f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orch/lease/*"),
    ({"ssm:DescribeInstanceInformation", "ssm:GetCommandInvocation"}, "*"),
    ({"autoscaling:SetInstanceHealth"}, f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/*"),
    ({"dynamodb:*"}, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orch-state"),
    ({"s3:PutObject"}, "arn:aws:s3:::orch-evidence/*"),
    ({"sns:Publish"}, f"arn:aws:sns:{REGION}:{ACCOUNT}:orch"),
    ({"ssm:GetParametersByPath"}, f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orch/healers"),
    ({"ec2:Describe*", "autoscaling:Describe*", "cloudwatch:GetMetricData", "cloudwatch:ListMetrics", "iam:SimulatePrincipalPolicy"}, "*"),
]


class Simulator:
    """SimulatePrincipalPolicy as AWS documents it: each action on each resource in ResourceArns, ``*`` when none is given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def simulate_principal_policy(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        results = []
        for action in kwargs["ActionNames"]:
            for resource in kwargs.get("ResourceArns", ["*"]):
                allowed = any(any(fnmatch.fnmatchcase(action, a) for a in actions) and fnmatch.fnmatchcase(resource, pattern)
                              for actions, pattern in LEAST_PRIVILEGE)
                results.append({"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": "allowed" if allowed else "implicitDeny"})
        return {"EvaluationResults": results, "IsTruncated": False}


def test_case_19_doctor_passes_a_least_privileged_role_by_simulating_each_action_on_its_resource() -> None:
    needed = iam_policy.actions_for(iam_policy.OPERATING, SETTINGS)
    simulator = Simulator()
    facts = gather.simulate(simulator, ROLE, needed, SETTINGS.selector, WHERE)
    denied = {a: d for a, d in facts.decisions.items() if d != "allowed"}
    assert denied == {} and set(facts.decisions) == set(needed)
    sent = {c.get("ResourceArns", ["*"])[0]: c["ActionNames"] for c in simulator.calls}
    assert "ec2:RebootInstances" in sent[f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"]
    assert "dynamodb:PutItem" in sent[f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orch-state"]
    # What doctor did before: everything on * (no ResourceArns), and a correct role failed.
    before = gather.simulate(Simulator(), ROLE, needed, SETTINGS.selector, None)
    assert before.decisions["ec2:RebootInstances"] == "implicitDeny" and before.decisions["sns:Publish"] == "implicitDeny"


def test_case_19_a_denied_resource_specific_result_fails_the_action() -> None:
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(iam)
    stub.add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "sns:Publish", "EvalResourceName": SETTINGS.notify.topic_arn, "EvalDecision": "allowed",
         "ResourceSpecificResults": [{"EvalResourceName": SETTINGS.notify.topic_arn, "EvalResourceDecision": "explicitDeny"}]}],
        "IsTruncated": False},
        {"PolicySourceArn": ROLE, "ActionNames": ["sns:Publish"], "ContextEntries": ANY, "ResourceArns": [SETTINGS.notify.topic_arn]})
    with stub:
        facts = gather.simulate(iam, ROLE, {"sns:Publish"}, SETTINGS.selector, WHERE)
    assert facts.decisions == {"sns:Publish": "explicitDeny"}


@pytest.mark.parametrize(("state", "table"), [("dynamodb://orch-state", "orch-state"), (None, None), ("/tmp/x.db", None)])
def test_the_state_table_is_read_from_the_spec(state, table) -> None:
    assert dynamodb_table(state) == table


# -- case 20: GetCommandInvocation on a multi-step document needs PluginName -------------------

COMMAND = "11111111-2222-3333-4444-555555555555"
GOOD, BAD = "i-0000000000000000a", "i-0000000000000000b"


def test_case_20_one_failed_instance_of_a_multi_step_document_is_named_with_its_step() -> None:
    from orchestrator.onboard import agent_install

    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(ssm)
    stub.add_response("list_commands", {"Commands": [{"CommandId": COMMAND, "Status": "Failed"}]})
    steps = lambda linux: [{"Name": "ControlCloudWatchAgentWindows", "Status": "Success"},  # noqa: E731  (skipped on Linux: reported Success)
                           {"Name": "ControlCloudWatchAgentLinux", "Status": linux}]
    stub.add_response("list_command_invocations", {"CommandInvocations": [
        {"CommandId": COMMAND, "InstanceId": GOOD, "Status": "Success", "CommandPlugins": steps("Success")},
        {"CommandId": COMMAND, "InstanceId": BAD, "Status": "Failed", "CommandPlugins": steps("Failed")}]},
        {"CommandId": COMMAND, "Details": True})
    stub.add_response("get_command_invocation", {"CommandId": COMMAND, "InstanceId": BAD, "PluginName": "ControlCloudWatchAgentLinux",
                                                 "Status": "Failed", "StandardErrorContent": "ParameterNotFound: AmazonCloudWatch-orch"},
                      {"CommandId": COMMAND, "InstanceId": BAD, "PluginName": "ControlCloudWatchAgentLinux"})
    with stub:
        found = agent_install.wait_for(ssm, COMMAND, [GOOD, BAD], 10, sleep=lambda s: None)
    stub.assert_no_pending_responses()
    assert found == {GOOD: "Success", BAD: "Failed (step ControlCloudWatchAgentLinux: ParameterNotFound: AmazonCloudWatch-orch)"}


def test_case_20_a_refused_step_lookup_still_names_the_failed_instance_only() -> None:
    """GetCommandInvocation's documented errors (InvalidPluginName here) stay on the one instance and step, never the batch."""
    from orchestrator.onboard import agent_install

    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(ssm)
    stub.add_response("list_command_invocations", {"CommandInvocations": [
        {"InstanceId": GOOD, "Status": "Success", "CommandPlugins": [{"Name": "stepA", "Status": "Success"}]},
        {"InstanceId": BAD, "Status": "Failed", "CommandPlugins": [{"Name": "stepB", "Status": "Failed"}]}]})
    stub.add_client_error("get_command_invocation", "InvalidPluginName", expected_params={"CommandId": COMMAND, "InstanceId": BAD, "PluginName": "stepB"})
    with stub:
        found = agent_install.invocation_statuses(ssm, COMMAND, [GOOD, BAD], "Failed")
    assert found[GOOD] == "Success" and found[BAD] == "Failed (step stepB: (InvalidPluginName))"


# -- case 23: cross-account credentials come from a regional STS endpoint ------------------------


@pytest.mark.parametrize("region", ["us-east-1", "af-south-1", "eu-west-1"])
def test_case_23_assumed_credentials_come_from_the_regional_sts_endpoint_even_under_legacy(monkeypatch, region) -> None:
    from orchestrator.aws import Clients
    from orchestrator.estate.accounts import regional_sts

    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")  # what boto3 < 1.40 did by default
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    legacy = Clients(region="us-east-1").client("sts").meta.endpoint_url
    assert legacy == "https://sts.amazonaws.com"  # the global endpoint: tokens an opt-in region refuses
    assert regional_sts(Clients(region=region)).meta.endpoint_url == f"https://sts.{region}.amazonaws.com"


def test_case_23_the_estate_assumes_roles_through_it(monkeypatch) -> None:
    from orchestrator.estate import accounts

    seen: list[str] = []

    class FakeSts:
        def assume_role(self, **kwargs: Any) -> dict[str, Any]:
            return {"Credentials": {"AccessKeyId": "a", "SecretAccessKey": "b", "SessionToken": "c"}}

    def regional(clients: Any) -> FakeSts:
        seen.append(str(clients.region))
        return FakeSts()

    monkeypatch.setattr(accounts, "regional_sts", regional)
    factory = accounts.AssumeRoleFactory(None, "arn:aws:iam::{account}:role/orch")
    factory(accounts.Place("111111111111", "af-south-1"))
    assert seen == ["af-south-1"]


# -- case 24: the agent-config parameter --------------------------------------------------------


def test_case_24_the_config_is_compact_and_many_processes_fit_a_standard_parameter() -> None:
    from orchestrator.config import MemorySettings
    from orchestrator.onboard.agent_config import agent_config, render, tier_for

    patterns = [f"/opt/crawler/worker-{n:02d} --queue q{n}" for n in range(30)]
    text = render(agent_config(MemorySettings(), patterns))
    assert "\n" not in text and ": " not in text
    assert len(text.encode()) <= 4096 and tier_for(text) == "Standard"  # indented, 30 patterns did not fit


def test_case_24_over_4_kb_is_intelligent_tiering_and_over_8_kb_a_clear_error() -> None:
    from orchestrator.onboard.agent_config import ParameterError, tier_for

    assert tier_for("x" * 4096) == "Standard" and tier_for("x" * 4097) == "Intelligent-Tiering"
    with pytest.raises(ParameterError, match="over the 8 KB"):
        tier_for("x" * 8193)


@pytest.mark.parametrize("name", ["aws-cw", "/aws/service/x", "SSM-config", "/ssm/x", "AWSConfig"])
def test_case_24_names_ssm_refuses_are_refused(name) -> None:
    from orchestrator.onboard.agent_config import ParameterError, check_parameter_name

    with pytest.raises(ParameterError, match="begin with aws or ssm"):
        check_parameter_name(name, allow_unreadable=True)


def test_case_24_names_the_agent_policy_cannot_read_are_refused_unless_allowed() -> None:
    from orchestrator.onboard.agent_config import ParameterError, check_parameter_name

    assert check_parameter_name("AmazonCloudWatch-orch") == [] and check_parameter_name("/AmazonCloudWatch-orch") == []
    for name in ("orch-agent", "/team/AmazonCloudWatch-orch"):
        with pytest.raises(ParameterError, match="CloudWatchAgentServerPolicy"):
            check_parameter_name(name)
        (warning,) = check_parameter_name(name, allow_unreadable=True)
        assert "ssm:GetParameter" in warning


def test_case_24_put_parameter_sends_the_tier() -> None:
    from orchestrator.onboard import agent_install

    ssm = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(ssm)
    big = "y" * 5000
    stub.add_response("put_parameter", {"Version": 2, "Tier": "Advanced"},
                      {"Name": "AmazonCloudWatch-orch", "Value": big, "Type": "String", "Overwrite": True, "Tier": "Intelligent-Tiering",
                       "Description": ANY})
    with stub:
        agent_install._put_parameter(ssm, "AmazonCloudWatch-orch", big)
    stub.assert_no_pending_responses()


# -- case 25: doctor reads fail2ban through SSM --------------------------------------------------


def test_case_25_doctor_sends_the_read_only_script_and_waits_for_each_invocation() -> None:
    from orchestrator.doctor import fail2ban

    read = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    mutate = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    reads, sends = Stubber(read), Stubber(mutate)
    reads.add_response("describe_instance_information", {"InstanceInformationList": [
        {"InstanceId": GOOD, "PingStatus": "Online"}, {"InstanceId": BAD, "PingStatus": "ConnectionLost"}]})
    sends.add_response("send_command", {"Command": {"CommandId": COMMAND}},
                       {"InstanceIds": [GOOD], "DocumentName": "AWS-RunShellScript", "Parameters": {"commands": [fail2ban.SCRIPT]},
                        "Comment": ANY, "TimeoutSeconds": 60})
    reads.add_client_error("get_command_invocation", "InvocationDoesNotExist")  # not visible yet: eventually consistent
    reads.add_response("get_command_invocation", {"Status": "InProgress"})
    reads.add_response("get_command_invocation", {"Status": "Success", "StandardOutputContent":
                                                  "orch-fail2ban: present\norch-jail: sshd\norch-ignore: 127.0.0.1/8\norch-ignore: ::1\n"})
    slept: list[float] = []
    with reads, sends:
        found = gather.fail2ban_jails(read, mutate, [GOOD, BAD], slept.append, wait_seconds=10, poll_seconds=2)
    assert isinstance(found, list) and [j.ignored for j in found] == [{"sshd": ("127.0.0.1/8", "::1")}]
    assert slept == [2, 2]
    (row,) = fail2ban.checks(found, {GOOD: "127.20.0.9"}, {})
    assert row.status.value == "ok"  # 127.20.0.9 is inside 127.0.0.1/8
    (row,) = fail2ban.checks(found, {GOOD: "10.1.2.3"}, {})
    assert row.status.value == "FAIL" and "addignoreip 10.1.2.3/32" in row.fix


def test_case_25_a_denied_send_command_is_cannot_tell_and_no_agent_is_no_row() -> None:
    read = boto3.client("ssm", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    reads = Stubber(read)
    reads.add_response("describe_instance_information", {"InstanceInformationList": [{"InstanceId": GOOD, "PingStatus": "Online"}]})
    reads.add_client_error("send_command", "AccessDeniedException", "not authorized")
    with reads:
        found = gather.fail2ban_jails(read, read, [GOOD], lambda s: None)
    assert isinstance(found, str) and "ssm:SendCommand" in found
    none = Stubber(read)
    none.add_response("describe_instance_information", {"InstanceInformationList": []})
    with none:
        assert gather.fail2ban_jails(read, read, [GOOD], lambda s: None) == []
