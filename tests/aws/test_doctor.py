"""`orch doctor` under moto with AWS errors injected (tests/faults.py): each failure is one
clear row (FAIL with the fix, or cannot tell with why), never a traceback; exit 1.

Moto does not implement SimulatePrincipalPolicy, so every simulator reply here is
injected: a denial, and a reply in the documented response shape (IAM API Reference,
SimulatePrincipalPolicy: EvaluationResults of EvalActionName / EvalDecision)."""

from __future__ import annotations

import functools
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.config import load_settings
from orchestrator.doctor import gather
from orchestrator.doctor.nacl import acl_for
from orchestrator.iam import policy as iam_policy
from orchestrator.state import dynamodb
from orchestrator.sweep.pipeline import SweepDeps
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


# -- network ACLs ---------------------------------------------------------------------------
# Moto answers DescribeNetworkAcls' documented filters (association.subnet-id, default,
# vpc-id) and, as EC2 does, associates a new subnet with its VPC's default ACL (allow all
# at rule 100). Unlike EC2, moto gives a new custom ACL no rule 32767 (*) entries; orch
# denies what no rule matches either way, as the * rule does.


def custom_acl(aws: Any, subnet: str, entries: list[dict[str, Any]]) -> str:
    """A custom ACL with ``entries`` replacing the subnet's association (the default ACL's)."""
    ec2 = aws.ec2
    vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    acl_id = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    for e in entries:
        ec2.create_network_acl_entry(NetworkAclId=acl_id, CidrBlock=e.pop("CidrBlock", "0.0.0.0/0"), **e)
    (current,) = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    association = next(a["NetworkAclAssociationId"] for a in current["Associations"] if a["SubnetId"] == subnet)
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)
    return acl_id


ALLOW_IN = {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": False}
ALLOW_OUT = {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": True}


def test_the_default_acl_lets_the_probe_in_and_its_reply_out(place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    _, document = doctor()
    assert [(r["subject"], r["status"]) for r in rows(document, "network acl")] == [("all 2 instances", "ok")]
    assert place["plan"].attempts("DescribeNetworkAcls") == 1  # one filtered call for the fleet's subnet


def test_an_acl_denying_ssh_in_is_named_with_its_rule_and_the_fix(aws, subnet, place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    acl_id = custom_acl(aws, subnet, [
        {"RuleNumber": 90, "Protocol": "6", "RuleAction": "deny", "Egress": False, "CidrBlock": "127.0.0.0/8", "PortRange": {"From": 22, "To": 22}},
        dict(ALLOW_IN), dict(ALLOW_OUT)])
    result, document = doctor()
    assert result.exit_code == 1
    found = rows(document, "network acl")
    assert sorted(r["subject"] for r in found) == sorted(place["ids"]) and {r["status"] for r in found} == {"FAIL"}
    row = found[0]
    assert f"{acl_id} rule 90 denies tcp/22 in from 127.0.0.1" in row["detail"]
    assert f"allow TCP 22 in from 127.0.0.1/32 in {acl_id} before rule 90" in row["fix"] and "--rule-number 89" in row["fix"]


def test_an_acl_dropping_the_reply_to_ephemeral_ports_is_named(aws, subnet, place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    acl_id = custom_acl(aws, subnet, [
        dict(ALLOW_IN),
        {"RuleNumber": 100, "Protocol": "6", "RuleAction": "deny", "Egress": True, "CidrBlock": "127.0.0.0/8", "PortRange": {"From": 1024, "To": 65535}},
        {"RuleNumber": 200, "Protocol": "-1", "RuleAction": "allow", "Egress": True}])
    _, document = doctor()
    found = rows(document, "network acl")
    assert {r["status"] for r in found} == {"FAIL"} and len(found) == 2
    assert all(f"{acl_id} rule 100 denies replies out to 127.0.0.1" in r["detail"] for r in found)
    assert "allow TCP" in found[0]["fix"] and "out to 127.0.0.1/32" in found[0]["fix"] and "--egress" in found[0]["fix"]
    assert {r["status"] for r in rows(document, "security group")} == {"ok"}  # the group is not blamed


def test_network_acls_refused_are_cannot_tell_and_the_rest_still_runs(place) -> None:
    place["plan"].on("SimulatePrincipalPolicy", fault=access_denied())
    place["plan"].on("DescribeNetworkAcls", fault=access_denied("UnauthorizedOperation"))
    result, document = doctor()
    assert result.exit_code == 1
    (row,) = rows(document, "network acl")
    assert row["status"] == "cannot tell" and "ec2:DescribeNetworkAcls" in row["detail"] and row["fix"] == "grant ec2:DescribeNetworkAcls"
    assert {r["status"] for r in rows(document, "security group")} == {"ok"} and rows(document, "route")


def test_the_acl_lookup_pages_batches_and_falls_back_to_the_default_acl(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's documented shapes through botocore's Stubber: a paginated reply (NextToken),
    filter values batched, and a subnet no association names judged by its VPC's default
    ACL (EC2 shows every subnet in some association, so moto cannot produce this)."""
    monkeypatch.setattr(gather, "FILTER_VALUES", 2)
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")

    def acl(acl_id: str, subnets: list[str], default: bool = False) -> dict[str, Any]:
        return {"NetworkAclId": acl_id, "VpcId": "vpc-1", "IsDefault": default, "OwnerId": "123456789012", "Tags": [],
                "Associations": [{"NetworkAclAssociationId": f"aclassoc-{s}", "NetworkAclId": acl_id, "SubnetId": s} for s in subnets],
                "Entries": [{"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": e, "CidrBlock": "0.0.0.0/0"} for e in (False, True)]}

    by_subnet = lambda values: {"Filters": [{"Name": "association.subnet-id", "Values": values}]}  # noqa: E731
    with Stubber(ec2) as stub:
        stub.add_response("describe_network_acls", {"NetworkAcls": [acl("acl-a", ["subnet-a"])], "NextToken": "t1"}, by_subnet(["subnet-a", "subnet-b"]))
        stub.add_response("describe_network_acls", {"NetworkAcls": [acl("acl-b", ["subnet-b"])]}, {**by_subnet(["subnet-a", "subnet-b"]), "NextToken": "t1"})
        stub.add_response("describe_network_acls", {"NetworkAcls": []}, by_subnet(["subnet-c"]))
        stub.add_response("describe_network_acls", {"NetworkAcls": [acl("acl-default", [], default=True)]},
                          {"Filters": [{"Name": "default", "Values": ["true"]}, {"Name": "vpc-id", "Values": ["vpc-1"]}]})
        acls, error = gather.network_acls(ec2, {"subnet-a": "vpc-1", "subnet-b": "vpc-1", "subnet-c": "vpc-1"})
        stub.assert_no_pending_responses()
    assert error is None and acls is not None
    assert [acl_for(s, "vpc-1", acls).acl_id for s in ("subnet-a", "subnet-b", "subnet-c")] == ["acl-a", "acl-b", "acl-default"]
