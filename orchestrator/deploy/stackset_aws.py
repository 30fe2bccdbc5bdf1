"""The AWS side of `orch deploy --stack-set`: read what exists, make a plan's calls, wait for each operation.

Moto ignores OperationPreferences, AutoDeployment and ManagedExecution and finishes every
operation at once (see README); the waiting, the order and the failure paths are tested
with botocore's Stubber and AWS's documented shapes (tests/aws/test_stackset.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.aws import describe_aws_error, error_code
from orchestrator.deploy.errors import DeployError
from orchestrator.deploy.stackset import Plan, Request

BUSY = frozenset({"RUNNING", "QUEUED", "STOPPING"})
Say = Callable[[str], None]

PERMISSIONS = frozenset(
    {
        "cloudformation:DescribeStackSet", "cloudformation:ListStackInstances", "cloudformation:DescribeStackInstance",
        "cloudformation:CreateStackSet", "cloudformation:UpdateStackSet", "cloudformation:CreateStackInstances",
        "cloudformation:UpdateStackInstances", "cloudformation:DescribeStackSetOperation",
        "cloudformation:ListStackSetOperationResults", "cloudformation:GetTemplateSummary",
        "iam:PassRole",  # a custom --administration-role-arn
    }
)


def _as(call_as: str | None) -> dict[str, str]:
    return {"CallAs": call_as} if call_as else {}


def current_stack_set(cfn: Any, name: str, call_as: str | None = None) -> dict[str, Any] | None:
    try:
        found = cfn.describe_stack_set(StackSetName=name, **_as(call_as))["StackSet"]
    except ClientError as exc:
        if error_code(exc) == "StackSetNotFoundException":
            return None
        raise
    return None if found.get("Status") == "DELETED" else dict(found)


def list_instances(cfn: Any, name: str, call_as: str | None = None) -> list[dict[str, Any]]:
    found = []
    for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=name, **_as(call_as)):
        found.extend(page.get("Summaries", []))
    return sorted(found, key=lambda s: (str(s.get("Account", "")), str(s.get("Region", ""))))


def instance_overrides(cfn: Any, name: str, account: str, region: str, call_as: str | None = None) -> dict[str, str]:
    """One stack instance's ParameterOverrides (DescribeStackInstance: ListStackInstances does not give them)."""
    found = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=account, StackInstanceRegion=region, **_as(call_as))
    return {str(p["ParameterKey"]): str(p.get("ParameterValue", "")) for p in found["StackInstance"].get("ParameterOverrides", [])}


def existing_instances(cfn: Any, request: Request, stack_set: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, str]]:
    """(account, region) -> current overrides, for the instances this request names (its accounts, or --ou's named accounts)."""
    if stack_set is None:
        return {}
    wanted = {(a, r) for a in request.named_accounts for r in request.regions}
    found = {(str(i["Account"]), str(i["Region"])) for i in list_instances(cfn, request.name, request.call_as)}
    return {key: instance_overrides(cfn, request.name, *key, request.call_as) for key in sorted(found & wanted)}


def wait_for_operation(
    cfn: Any, name: str, operation_id: str, say: Say, *, poll_seconds: float = 10.0, timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] | None = None, call_as: str | None = None,
) -> str:
    """Poll DescribeStackSetOperation until it leaves RUNNING/QUEUED/STOPPING; says each change of status."""
    last: list[str] = []

    def poll() -> str:
        operation = cfn.describe_stack_set_operation(StackSetName=name, OperationId=operation_id, **_as(call_as))["StackSetOperation"]
        status = str(operation.get("Status", "UNKNOWN"))
        if not last or last[-1] != status:
            last.append(status)
            say(f"operation {operation_id} ({operation.get('Action', '?')}): {status}")
        return status

    extra = {"sleep": sleep} if sleep is not None else {}
    status = str(
        Retrying(
            retry=retry_if_result(lambda s: s in BUSY), wait=wait_fixed(poll_seconds), stop=stop_after_delay(timeout_seconds),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else "UNKNOWN", **extra,
        )(poll)
    )
    if status in BUSY:
        raise DeployError(f"stack set operation {operation_id} still {status} after {timeout_seconds:.0f} s; follow it with "
                          f"aws cloudformation describe-stack-set-operation --stack-set-name {name} --operation-id {operation_id}")
    return status


def failed_results(cfn: Any, name: str, operation_id: str, limit: int = 5, call_as: str | None = None) -> str:
    """The first failed (account, region) of an operation and why, for the error line."""
    reasons = []
    for page in cfn.get_paginator("list_stack_set_operation_results").paginate(StackSetName=name, OperationId=operation_id, **_as(call_as)):
        for result in page.get("Summaries", []):
            if result.get("Status") in ("FAILED", "CANCELLED"):
                reasons.append(f"{result.get('Account')} {result.get('Region')}: {result.get('StatusReason') or result.get('Status')}")
    return "; ".join(reasons[:limit]) or "no per-instance reason given"


@dataclass
class Outcome:
    operations: list[tuple[str, str, str]] = field(default_factory=list)  # (what, operation id, final status)
    instances: list[dict[str, Any]] = field(default_factory=list)


def run(cfn: Any, planned: Plan, say: Say, *, poll_seconds: float = 10.0, timeout_seconds: float = 3600.0,
        sleep: Callable[[float], None] | None = None) -> Outcome:
    """Make the calls of ``planned`` and wait for each operation; raises DeployError when one fails.

    The stack set update is waited for before any instance call: AWS overrides only
    parameters its instances already have ("you must first use UpdateStackSet to update
    all stack instances with the updated template and parameter value").
    """
    done = Outcome()
    call_as = planned.call_as

    def settle(what: str, operation_id: str) -> None:
        status = wait_for_operation(cfn, planned.name, operation_id, say, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds,
                                    sleep=sleep, call_as=call_as)
        done.operations.append((what, operation_id, status))
        if status != "SUCCEEDED":
            raise DeployError(f"{what}: operation {operation_id} ended {status}: {failed_results(cfn, planned.name, operation_id, call_as=call_as)}")

    waiting: list[tuple[str, str]] = []
    try:
        if planned.stack_set_action == "create":
            cfn.create_stack_set(**planned.stack_set_call)
            say(f"created stack set {planned.name}")
        else:
            reply = cfn.update_stack_set(**planned.stack_set_call)
            settle(f"update stack set {planned.name}", reply["OperationId"])
        for group in planned.groups:
            reply = cfn.create_stack_instances(**group.as_api(planned.service_managed, planned.preferences, planned.name, call_as))
            waiting.append((f"stack instances {','.join(group.targets)} in {group.region}", reply["OperationId"]))
        for group in planned.updates:
            reply = cfn.update_stack_instances(**group.as_api(planned.service_managed, planned.preferences, planned.name, call_as))
            waiting.append((f"new parameters for {','.join(group.targets)} in {group.region}", reply["OperationId"]))
    except ClientError as exc:
        raise DeployError(f"CloudFormation refused a stack set call: {describe_aws_error(exc)}") from None
    for what, operation_id in waiting:
        settle(what, operation_id)
    done.instances = list_instances(cfn, planned.name, call_as)
    return done
