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
    ({"ec2:RebootInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:GetConsoleOutput"}, f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"),
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
