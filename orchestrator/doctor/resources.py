"""The resource each action of orch's policy is simulated on, so resource-scoped statements are judged as AWS judges them.

SimulatePrincipalPolicy evaluates every action on every resource in ResourceArns, and
without ResourceArns on ``*`` (AWS: "If this parameter is not provided, then the value
defaults to * (all resources)"). A least-privileged policy such as the template's
(RebootInstances on ``instance/*`` with a tag condition, PutItem on the state table,
Publish on the topic) allows none of those on ``*``: the simulator says implicitDeny and
doctor would fail a correct role. Each action is simulated on the resource orch calls it
on; actions without resource-level permissions stay on ``*``.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.estate.registry import PREFIX as REGISTRY_PREFIX
from orchestrator.state import DYNAMODB_SCHEME
from orchestrator.state.ssm_lease import PREFIX as LEASE_PREFIX

ANY = "*"
INSTANCE_ACTIONS = frozenset(
    {"ec2:RebootInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:SendDiagnosticInterrupt", "ec2:GetConsoleOutput",
     "ec2:CreateTags", "ssm:SendCommand"}
)
LEASE_ACTIONS = frozenset({"ssm:PutParameter", "ssm:DeleteParameter"})  # the fleet's lease: /orch/lease/...
GROUP_ACTIONS = frozenset({"autoscaling:SetInstanceHealth", "autoscaling:EnterStandby", "autoscaling:ExitStandby", "autoscaling:CreateOrUpdateTags"})


@dataclass(frozen=True)
class Where:
    """Where this orch runs and what it writes to: the parts of every ARN."""

    region: str
    account: str
    partition: str = "aws"
    table: str | None = None  # dynamodb://TABLE
    bucket: str | None = None  # evidence
    topic_arn: str | None = None


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def resource_for(action: str, where: Where) -> str:
    """The ARN ``action`` is simulated on; ``*`` when orch calls it on no one resource or the resource is unknown here."""
    p, r, a = where.partition, where.region, where.account
    service = action.partition(":")[0]
    if action in INSTANCE_ACTIONS:
        return f"arn:{p}:ec2:{r}:{a}:instance/*"
    if action in GROUP_ACTIONS:
        return f"arn:{p}:autoscaling:{r}:{a}:autoScalingGroup:*:autoScalingGroupName/*"
    if service == "dynamodb" and where.table:
        return f"arn:{p}:dynamodb:{r}:{a}:table/{where.table}"
    if action == "s3:PutObject" and where.bucket:
        return f"arn:{p}:s3:::{where.bucket}/*"
    if action == "sns:Publish" and where.topic_arn:
        return where.topic_arn
    if action == "ssm:GetParametersByPath":
        return f"arn:{p}:ssm:{r}:{a}:parameter{REGISTRY_PREFIX.rstrip('/')}"
    if action in LEASE_ACTIONS:
        return f"arn:{p}:ssm:{r}:{a}:parameter{LEASE_PREFIX.rstrip('/')}/*"
    return ANY


def dynamodb_table(state: str | None) -> str | None:
    """The table of a ``dynamodb://TABLE`` state spec, None for SQLite."""
    if state and state.startswith(DYNAMODB_SCHEME):
        return state[len(DYNAMODB_SCHEME):].split("?", 1)[0] or None
    return None


def by_resource(actions: list[str], where: Where | None) -> dict[str, list[str]]:
    """ARN -> the actions simulated on it (one SimulatePrincipalPolicy call per ARN)."""
    grouped: dict[str, list[str]] = {}
    for action in sorted(actions):
        grouped.setdefault(resource_for(action, where) if where else ANY, []).append(action)
    return grouped
