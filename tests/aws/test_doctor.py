"""`orch doctor` under moto with AWS errors injected (tests/faults.py): each failure is one
clear row (FAIL with the fix, or cannot tell with why), never a traceback; exit 1.

Moto does not implement SimulatePrincipalPolicy, so every simulator reply here is
injected: a denial, and a reply in the documented response shape (IAM API Reference,
SimulatePrincipalPolicy: EvaluationResults of EvalActionName / EvalDecision)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator import iam_policy
from orchestrator.cli import cli
from orchestrator.config import load_settings
from orchestrator.state import dynamodb
from orchestrator.sweep import SweepDeps
from tests.aws.conftest import REGION, launch
from tests.builders import ScriptedProber
from tests.faults import FaultPlan, access_denied, raw

TABLE = "orch-state"


@pytest.fixture
def place(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    ids = launch(aws, subnet, 2)
    vpc = aws.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    group = aws.ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=vpc)["GroupId"]
    aws.ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "127.0.0.0/8"}]}])
    for instance_id in ids:
        aws.ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[group])
    dynamodb.create_table(aws.client("dynamodb"), TABLE, wait_delay_s=0)
    iam = aws.client("iam")
    iam.create_user(UserName="operator")
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    prober = ScriptedProber(set())
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=prober))
    monkeypatch.setattr("orchestrator.cli.doctor_cmds.probe_fleet", prober)
    for name, value in {
        "ORCH_STATE": f"dynamodb://{TABLE}",
        "AWS_DEFAULT_REGION": REGION,
        # moto answers GetCallerIdentity with the IAM user these keys belong to
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }.items():
        monkeypatch.setenv(name, value)
    return {"ids": ids, "plan": FaultPlan().install(monkeypatch)}


def doctor() -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["doctor", "-o", "json"], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result, json.loads(result.stdout)


def rows(document: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [r for r in document["checks"] if r["check"] == check]


def simulator_reply(decisions: dict[str, str]) -> Any:
    members = "".join(
        f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>{d}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for a, d in decisions.items()
    )
    body = (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult>"
        "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
    )
    return raw(body.encode(), 200, "text/xml")


def needed() -> frozenset[str]:
    return iam_policy.actions_for(iam_policy.OPERATING, load_settings(None))


def test_the_simulator_denied_is_cannot_tell_and_the_rest_still_runs(place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    result, document = doctor()
    assert result.exit_code == 1
    (row,) = rows(document, "permissions")
    assert row["status"] == "cannot tell" and "iam:SimulatePrincipalPolicy" in row["detail"] and "orch permissions" in row["fix"]
    assert rows(document, "credentials")[0]["subject"] == "arn:aws:iam::123456789012:user/operator"
    assert [r["status"] for r in rows(document, "state store")] == ["ok"]
    assert {r["status"] for r in rows(document, "security group") + rows(document, "route")} == {"ok", "FAIL"}  # no route back: the VPC's local one only
    assert place["plan"].attempts("SimulatePrincipalPolicy") == 1  # one attempt: not retried


def test_an_action_the_simulator_denies_is_named_with_the_fix(place) -> None:
    decisions = {a: "allowed" for a in needed()} | {"ec2:RebootInstances": "implicitDeny"}
    place["plan"].on("SimulatePrincipalPolicy", fault=simulator_reply(decisions))
    _, document = doctor()
    found = {r["subject"]: r for r in rows(document, "permissions")}
    assert found["ec2:RebootInstances"]["status"] == "FAIL" and "grant ec2:RebootInstances" in found["ec2:RebootInstances"]["fix"]
    assert found[f"{len(decisions) - 1} actions"]["status"] == "ok"
    sent = place["plan"].log[[r.operation for r in place["plan"].log].index("SimulatePrincipalPolicy")].params
    assert sent["PolicySourceArn"] == ["arn:aws:iam::123456789012:user/operator"]
    assert sent["ContextEntries.member.1.ContextKeyName"] == ["aws:ResourceTag/orch:managed"]


def test_credentials_refused_is_a_failed_check_not_a_traceback(place) -> None:
    place["plan"].on("GetCallerIdentity", fault=access_denied())
    result, document = doctor()
    assert result.exit_code == 1
    (row,) = rows(document, "credentials")
    assert row["status"] == "FAIL" and "access denied" in row["detail"] and "AWS_PROFILE" in row["fix"]
    assert rows(document, "permissions")[0]["status"] == "cannot tell"
    assert rows(document, "clock")[0]["status"] == "cannot tell"


@pytest.mark.parametrize(
    "operation, detail",
    [("PutItem", "dynamodb:PutItem"), ("DeleteItem", "dynamodb:DeleteItem"), ("GetItem", "dynamodb:GetItem")],
)
def test_a_store_that_refuses_is_a_failed_check(place, operation, detail) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    place["plan"].on(operation, fault=access_denied("AccessDeniedException"), service="dynamodb")
    result, document = doctor()
    assert result.exit_code == 1
    (row,) = rows(document, "state store")
    assert row["status"] == "FAIL" and detail in row["detail"] and "dynamodb:" in row["fix"]


def test_describe_calls_refused_are_cannot_tell(place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    place["plan"].on("DescribeRouteTables", fault=access_denied("UnauthorizedOperation"))
    result, document = doctor()
    (row,) = rows(document, "ssh path")
    assert row["status"] == "cannot tell" and "ec2:DescribeRouteTables" in row["fix"]
    assert result.exit_code == 1


def test_a_pause_in_place_fails_with_who_and_the_fix(place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    assert CliRunner().invoke(cli, ["pause", "--reason", "change freeze"]).exit_code == 0
    _, document = doctor()
    (row,) = rows(document, "pause")
    assert row["status"] == "FAIL" and "change freeze" in row["detail"] and row["fix"].startswith("orch resume")
