"""`orch permissions`' policy documents: scoped as the CloudFormation role is, from the same declarations."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import load_settings
from orchestrator.iam import deploy as deploy_permissions
from orchestrator.iam import permissions
from orchestrator.iam import policy as iam_policy
from tests.unit.test_cfn_template import STAR_ONLY_ACTIONS

DOCTOR_STAR_ONLY = frozenset({"ec2:DescribeSecurityGroups", "ec2:DescribeRouteTables", "ec2:DescribeNetworkAcls"})
# Onboarding reads (and the agent's config parameter, whose name the person chooses) accept no narrower resource here.
ONBOARD_STAR_ONLY = frozenset({"autoscaling:DescribeAutoScalingGroups", "ssm:DescribeInstanceInformation", "ssm:GetParameter", "ssm:PutParameter",
                               "ssm:ListCommands", "ssm:ListCommandInvocations", "ssm:GetCommandInvocation"})


def settings(**env: str):
    return load_settings(None, environ={"ORCH_REGION": "eu-west-1", **env})


def statements(names=iam_policy.NAMES, **env: str) -> list[dict]:
    s = settings(**env)
    return iam_policy.policy(iam_policy.actions_for(names, s), iam_policy.Scope.from_settings(s)).document["Statement"]


def test_each_action_is_granted_once_and_all_are_granted() -> None:
    s = settings(ORCH_MEMORY_PROACTIVE="ssm", ORCH_MEMORY_SSM_COMMANDS='["systemctl restart app"]', ORCH_EVIDENCE_DIAGNOSTIC_INTERRUPT="true")
    made = iam_policy.policy_for(iam_policy.NAMES, s)
    granted = [a for st in made.document["Statement"] if st["Sid"] not in ("RunCommandDocument", "AgentDocuments", "CodeUpload") for a in st["Action"]]
    assert len(granted) == len(set(granted))
    assert set(made.actions) == iam_policy.actions_for(iam_policy.NAMES, s)
    assert permissions.for_settings(s) <= set(made.actions)  # heal by hand needs what the stack's role has


def test_mutations_only_on_instances_and_groups_carrying_the_selector() -> None:
    found = statements(ORCH_SELECTOR="team=web,env=prod", ORCH_EVIDENCE_DIAGNOSTIC_INTERRUPT="true")
    condition = {"StringEquals": {"aws:ResourceTag/env": "prod", "aws:ResourceTag/team": "web"}}
    mutating = permissions.MUTATE | permissions.DIAGNOSTIC_INTERRUPT
    seen = set()
    for st in found:
        acts = set(st["Action"]) & mutating
        if acts:
            assert st["Condition"] == condition and st["Resource"].startswith("arn:aws:")
            assert st["Resource"].endswith(":instance/*") or ":autoScalingGroup:" in st["Resource"]
            seen |= acts
    assert seen == mutating


def test_star_only_for_what_accepts_nothing_narrower_unless_the_settings_name_nothing() -> None:
    for st in statements():
        if st["Resource"] == "*" and st["Sid"] == "AnyResource":
            assert set(st["Action"]) <= STAR_ONLY_ACTIONS | DOCTOR_STAR_ONLY | ONBOARD_STAR_ONLY | deploy_permissions.DEPLOY | deploy_permissions.DESTROY, st
    for st in statements(iam_policy.OPERATING):
        if st["Resource"] == "*" and st["Sid"] == "AnyResource":
            assert set(st["Action"]) <= STAR_ONLY_ACTIONS | DOCTOR_STAR_ONLY, st
    named = {st["Sid"]: st["Resource"] for st in statements(
        ORCH_STATE="dynamodb://t1", ORCH_EVIDENCE_BUCKET="b1", ORCH_NOTIFY_TOPIC_ARN="arn:aws:sns:eu-west-1:1:t")}
    assert named["StateTable"] == ["arn:aws:dynamodb:eu-west-1:*:table/t1", "arn:aws:dynamodb:eu-west-1:*:table/t1/index/*"]
    assert named["EvidenceObjects"] == "arn:aws:s3:::b1/*" and named["Notify"] == "arn:aws:sns:eu-west-1:1:t"


@pytest.mark.parametrize(
    "name, has, lacks",
    [
        ("status", {"ec2:DescribeInstances", "dynamodb:Query"}, {"ec2:RebootInstances", "dynamodb:PutItem"}),
        ("pause", {"dynamodb:PutItem"}, {"dynamodb:DeleteItem", "ec2:DescribeInstances"}),
        ("resume", {"dynamodb:DeleteItem"}, {"dynamodb:PutItem"}),
        ("scan", {"cloudwatch:GetMetricData", "dynamodb:PutItem"}, {"ec2:RebootInstances", "sns:Publish"}),
        ("heal", {"ec2:RebootInstances", "sns:Publish", "s3:PutObject"}, {"dynamodb:DeleteItem", "ssm:SendCommand"}),
        ("doctor", {"iam:SimulatePrincipalPolicy", "ec2:DescribeRouteTables", "ec2:DescribeNetworkAcls", "dynamodb:DeleteItem"}, {"ec2:RebootInstances"}),
    ],
)
def test_per_command(name, has, lacks) -> None:
    got = iam_policy.actions_for([name], settings())
    assert has <= got and not lacks & got


def test_deploy_lists_every_resource_type_of_the_template() -> None:
    from cfnlint.decode import cfn_yaml

    from tests.unit.test_cfn_template import TEMPLATE

    types = {r["Type"] for r in cfn_yaml.load(str(TEMPLATE))["Resources"].values()}
    assert types == set(deploy_permissions.STACK_RESOURCES)
    deploy = iam_policy.policy_for(["deploy"], settings())
    assert {"iam:PassRole", "cloudformation:ExecuteChangeSet", "lambda:CreateFunction"} <= set(deploy.actions)
    (upload,) = [st for st in deploy.document["Statement"] if st["Sid"] == "CodeUpload"]
    assert set(upload["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:ListBucket"} and any("--bucket" in n for n in deploy.notes)


def test_the_cli_prints_the_document_by_default_and_a_table_when_asked() -> None:
    env = {"ORCH_REGION": "eu-west-1", "AWS_DEFAULT_OUTPUT": "table"}
    document = CliRunner().invoke(cli, ["permissions", "resume"], env=env)
    assert document.exit_code == 0 and '"Version": "2012-10-17"' in document.stdout
    table = CliRunner().invoke(cli, ["permissions", "resume", "--output", "table"], env={**env, "COLUMNS": "120"})
    assert table.exit_code == 0 and "dynamodb:DeleteItem" in table.stdout and "{" not in table.stdout.split("\n")[0]
    queried = CliRunner().invoke(cli, ["permissions", "resume", "--query", "Statement[].Sid", "-o", "text"], env=env)
    assert queried.stdout.split() == ["HealerRegistry", "StateTable"]
    bad = CliRunner().invoke(cli, ["permissions", "sandbox"], env=env)
    assert bad.exit_code == 2 and "'sandbox' is not one of" in bad.stderr
