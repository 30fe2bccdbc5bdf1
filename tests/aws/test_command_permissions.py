"""`orch permissions COMMAND` covers every call COMMAND makes: each command runs under moto
with every API call recorded (tests/faults.py's plan, with no fault, is the recorder),
and no recorded operation needs an IAM action the command's policy leaves out.

The fleet is set up so the widest paths run: the state in DynamoDB (so the store's calls
are AWS calls), an evidence bucket and an SNS topic (so heal writes and publishes), one
instance down so heal acts, and instances named so the commands look names up."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import load_settings
from orchestrator.doctor import gather
from orchestrator.iam import policy as iam_policy
from orchestrator.state import dynamodb
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import REGION, launch
from tests.builders import ScriptedProber
from tests.faults import FaultPlan, Record

TABLE = "orch-state"
BUCKET = "orch-evidence"

# Hyphenated service id (as in botocore's event names) -> IAM service prefix, where they differ.
IAM_PREFIX = {"auto-scaling": "autoscaling"}
# Operations authorized under an action of another name (AWS's Service Authorization Reference).
AUTHORIZED_AS = {("s3", "HeadBucket"): "s3:ListBucket", ("s3", "HeadObject"): "s3:GetObject"}


def iam_action(record: Record) -> str:
    return AUTHORIZED_AS.get((record.service, record.operation)) or f"{IAM_PREFIX.get(record.service, record.service)}:{record.operation}"


@pytest.fixture
def estate(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    ids = launch(aws, subnet, 3)
    aws.ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "Name", "Value": "web-1"}])
    vpc = aws.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    group = aws.ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=vpc)["GroupId"]
    for instance_id in ids:  # moto launches into no group when none is named; EC2 always has one
        aws.ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[group])
    dynamodb.create_table(aws.client("dynamodb"), TABLE, wait_delay_s=0)
    aws.client("s3").create_bucket(Bucket=BUCKET)
    topic = aws.client("sns").create_topic(Name="orch")["TopicArn"]
    prober = ScriptedProber({ids[0]})
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=prober))
    monkeypatch.setattr("orchestrator.cli.doctor_cmds.probe_fleet", prober)
    env = {
        "ORCH_STATE": f"dynamodb://{TABLE}",
        "ORCH_EVIDENCE_BUCKET": BUCKET,
        "ORCH_NOTIFY_TOPIC_ARN": topic,
        "ORCH_SAFETY_LAUNCH_GRACE_MINUTES": "0",
        "ORCH_SAFETY_MAX_UNHEALTHY": "50%",
        "AWS_DEFAULT_REGION": REGION,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    recorder = FaultPlan().install(monkeypatch)
    return {"ids": ids, "recorder": recorder}


# (command, its arguments, the exit codes it may end with here)
RUNS = [
    ("scan", ["scan"], {1}),
    ("heal", ["heal", "--yes"], {0}),
    ("explain", ["explain", "web-1"], {0}),
    ("report", ["report"], {0}),
    ("status", ["status"], {0}),
    ("history", ["history", "web-1"], {0}),
    ("pause", ["pause", "--reason", "test"], {0}),
    ("resume", ["resume"], {0}),
    ("release", ["release", "web-1"], {0}),
    ("doctor", ["doctor"], {1}),  # the simulator cannot tell under moto, and two instances are silent
    # Issue 20 case 12: the manual actions are commands of their own in `orch permissions`.
    ("reboot", ["reboot", "web-1", "--yes", "--force", "--reason", "test"], {0, 1}),  # skipped: the heal above rebooted it this minute
    ("stop-start", ["stop-start", "web-1", "--yes", "--force", "--reason", "test"], {0, 1}),
]


def test_every_command_calls_only_what_its_policy_grants(estate) -> None:
    recorder: FaultPlan = estate["recorder"]
    settings = load_settings(None)
    seen: dict[str, set[str]] = {}
    for name, args, codes in RUNS:
        start = len(recorder.log)
        result = CliRunner().invoke(cli, [*args, "-o", "json"], catch_exceptions=False)
        assert result.exit_code in codes, (name, result.output)
        assert "Traceback" not in result.output
        called = {iam_action(r) for r in recorder.log[start:]} - gather.NO_PERMISSION_NEEDED
        policy = iam_policy.policy(iam_policy.actions_for([name], settings), iam_policy.Scope.from_settings(settings, REGION))
        missing = called - set(policy.actions)
        assert not missing, f"orch {name} called {sorted(missing)}, which `orch permissions {name}` does not grant"
        seen[name] = called
    # Not vacuous: the widest paths ran.
    assert {"ec2:RebootInstances", "s3:PutObject", "sns:Publish", "dynamodb:PutItem"} <= seen["heal"]
    assert {"ec2:StopInstances", "ec2:StartInstances"} <= seen["stop-start"]
    assert {"dynamodb:DeleteItem"} <= seen["resume"] and "dynamodb:DeleteItem" not in iam_policy.command("pause").actions
    assert {"ec2:DescribeSecurityGroups", "ec2:DescribeRouteTables", "ec2:DescribeNetworkAcls", "dynamodb:DeleteItem", "cloudwatch:ListMetrics"} <= seen["doctor"]
    # The union (no COMMAND) holds every command's.
    union = set(iam_policy.policy(iam_policy.actions_for(iam_policy.NAMES, settings), iam_policy.Scope.from_settings(settings, REGION)).actions)
    assert set().union(*seen.values()) <= union


def test_the_recorder_would_catch_a_command_that_declares_too_little(estate) -> None:
    recorder: FaultPlan = estate["recorder"]
    start = len(recorder.log)
    assert CliRunner().invoke(cli, ["status", "-o", "json"], catch_exceptions=False).exit_code == 0
    called = {iam_action(r) for r in recorder.log[start:]}
    too_little = iam_policy.STORE_READ - {"dynamodb:Query"}
    assert "dynamodb:Query" in called and not called <= too_little | iam_policy.BY_NAME


def test_the_policy_for_a_table_names_it_and_is_valid_json(estate, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["permissions", "heal"], catch_exceptions=False)
    document = json.loads(result.stdout)
    assert document["Version"] == "2012-10-17"
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["StateTable"]["Resource"] == [
        f"arn:aws:dynamodb:{REGION}:*:table/{TABLE}", f"arn:aws:dynamodb:{REGION}:*:table/{TABLE}/index/*"]
    assert by_sid["EvidenceObjects"]["Resource"] == f"arn:aws:s3:::{BUCKET}/*"
    assert by_sid["Notify"]["Resource"].startswith("arn:aws:sns:")
    assert "StateTable is on" not in result.stderr and "AnyResource is on \"*\"" in result.stderr
