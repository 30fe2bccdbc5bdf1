"""`orch deploy --stack-set`: one stack per (account, region) through CloudFormation StackSets.

One stack watches one VPC (its sweep sees only that VPC's instances), so an estate is
many stacks; AWS's own engine places them: a stack set, with stack instances in each
target account and region. orch plans the calls (pure: ``plan``) and runs them
(``run``), as the single-stack deploy does, and adds two things StackSets does not:

- **Per-instance parameters.** Each (account, region) has its own VPC and subnets, so
  ``VpcId``/``VpcCidr``/``SubnetIds`` come as ParameterOverrides per stack instance.
  CreateStackInstances takes one override list for all its accounts × regions, so the
  instances are grouped by (region, overrides): one operation per group. The stack set
  is made with ManagedExecution active, so StackSets queues those operations itself
  (no OperationInProgressException) and runs non-conflicting ones concurrently.
- **Staggered schedules.** Sweeps in one account and region share its EC2 request
  buckets; ``ScheduleOffsetMinutes`` (the minute within each interval the schedule
  fires) is a hash of (account, region, VPC), so the same stack always gets the same
  minute and two VPCs of one account and region usually get different ones.

Operation preferences: regions in PARALLEL (stacks in two regions share nothing: each
has its own table, bucket and function), a failure tolerance per region, and a
bounded share of accounts at a time (STRICT mode: CloudFormation lowers concurrency as
failures happen). Moto ignores OperationPreferences, AutoDeployment and
ManagedExecution and finishes every operation at once (see README); the waiting and
the failure paths are tested with botocore's Stubber and AWS's documented shapes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.aws import describe_aws_error, error_code
from orchestrator.deploy.stack import CAPABILITIES, MANAGED_PARAMETERS, DeployError, DeployUsageError

ACCOUNT_ID_LENGTH = 12
OFFSET_PARAMETER = "ScheduleOffsetMinutes"
INTERVAL_PARAMETER = "ScheduleMinutes"
DEFAULT_INTERVAL = 5
BUSY = frozenset({"RUNNING", "QUEUED", "STOPPING"})
Say = Callable[[str], None]


@dataclass(frozen=True)
class Preferences:
    """StackSetOperationPreferences, as AWS documents them."""

    failure_tolerance_percentage: int = 10
    max_concurrent_percentage: int = 25
    region_concurrency: str = "PARALLEL"  # PARALLEL | SEQUENTIAL

    def as_api(self, regions: Sequence[str]) -> dict[str, Any]:
        prefs: dict[str, Any] = {
            "FailureTolerancePercentage": self.failure_tolerance_percentage,
            "MaxConcurrentPercentage": self.max_concurrent_percentage,
            "RegionConcurrencyType": self.region_concurrency,
            "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE",
        }
        if self.region_concurrency == "SEQUENTIAL":
            prefs["RegionOrder"] = list(regions)
        return prefs


@dataclass(frozen=True)
class Request:
    """What the person asked for, checked (``check_request``) before any AWS call."""

    name: str
    body: str
    parameters: Mapping[str, str]  # stack-set level: every instance gets these unless overridden
    regions: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()  # service-managed: deploy to these OUs (AutoDeployment on)
    instance_parameters: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)  # (account|*, region|*) -> overrides
    administration_role_arn: str | None = None
    execution_role_name: str | None = None
    preferences: Preferences = Preferences()

    @property
    def service_managed(self) -> bool:
        return bool(self.ous)

    @property
    def targets(self) -> tuple[str, ...]:
        return self.ous or self.accounts


@dataclass(frozen=True)
class InstanceGroup:
    """One CreateStackInstances call: these targets in this region with these overrides."""

    region: str
    targets: tuple[str, ...]  # account ids, or OU ids (service-managed)
    overrides: tuple[tuple[str, str], ...]

    def as_api(self, service_managed: bool, prefs: Preferences, name: str) -> dict[str, Any]:
        call: dict[str, Any] = {
            "StackSetName": name,
            "Regions": [self.region],
            "ParameterOverrides": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.overrides],
            "OperationPreferences": prefs.as_api([self.region]),
        }
        if service_managed:
            call["DeploymentTargets"] = {"OrganizationalUnitIds": list(self.targets)}
        else:
            call["Accounts"] = list(self.targets)
        return call


@dataclass(frozen=True)
class Plan:
    """The calls a deploy makes, in order: data, shown by ``--dry-run`` and run by ``run``."""

    name: str
    stack_set_action: str  # create | update
    stack_set_call: Mapping[str, Any]
    groups: tuple[InstanceGroup, ...]
    already: tuple[tuple[str, str], ...]  # (account, region) that have a stack instance already
    offsets: Mapping[tuple[str, str], int]  # (target, region) -> the schedule's minute offset
    service_managed: bool
    preferences: Preferences


# -- pure ----------------------------------------------------------------------------------


def schedule_offset(account: str, region: str, vpc_id: str, interval_minutes: int) -> int:
    """The minute within each interval at which this stack's sweep fires; the same for the same stack, always.

    0 when the interval does not divide an hour (an EventBridge cron ``M/N`` restarts
    every hour, so only those intervals stay even): the schedule is then a plain rate.
    """
    if interval_minutes <= 1 or interval_minutes > 60 or 60 % interval_minutes:
        return 0
    digest = hashlib.sha256(f"{account}/{region}/{vpc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % interval_minutes


def overrides_for(request: Request, target: str, region: str) -> dict[str, str]:
    """Instance parameters for (target, region): '*' entries first, the exact ones win."""
    merged: dict[str, str] = {}
    for key in (("*", "*"), ("*", region), (target, "*"), (target, region)):
        merged.update(request.instance_parameters.get(key, {}))
    return merged


def check_request(request: Request, declared: Mapping[str, bool]) -> None:
    """Refuse a request that CloudFormation would fail halfway through; raises DeployUsageError."""
    if not request.regions:
        raise DeployUsageError("--stack-set needs --regions REGION[,REGION...]")
    if bool(request.accounts) == bool(request.ous):
        raise DeployUsageError("--stack-set needs exactly one of --accounts ID[,ID...] (self-managed) or --ou ou-...[,ou-...] (service-managed)")
    for account in request.accounts:
        if not (account.isdigit() and len(account) == ACCOUNT_ID_LENGTH):
            raise DeployUsageError(f"--accounts: {account!r} is not a 12-digit AWS account id")
    for ou in request.ous:
        if not (ou.startswith("ou-") or ou.startswith("r-")):
            raise DeployUsageError(f"--ou: {ou!r} is not an organizational unit id (ou-xxxx-yyyyyyyy) or a root id (r-xxxx)")
    if request.service_managed and (request.administration_role_arn or request.execution_role_name):
        raise DeployUsageError("--administration-role-arn and --execution-role-name are for --accounts (self-managed); --ou uses AWS Organizations' roles")
    prefs = request.preferences
    if not 0 <= prefs.failure_tolerance_percentage <= 100 or not 1 <= prefs.max_concurrent_percentage <= 100:
        raise DeployUsageError("--failure-tolerance-percentage must be 0-100 and --max-concurrent-percentage 1-100")
    given = set(request.parameters) | {k for values in request.instance_parameters.values() for k in values}
    unknown = sorted(given - set(declared))
    if unknown:
        raise DeployUsageError(f"unknown parameter(s) {', '.join(unknown)}: the template takes {', '.join(sorted(set(declared) - MANAGED_PARAMETERS))}")
    if OFFSET_PARAMETER in given:
        raise DeployUsageError(f"{OFFSET_PARAMETER} is chosen by orch per stack instance (staggered schedules); do not pass it")
    required = sorted(k for k, has_default in declared.items() if not has_default and k not in MANAGED_PARAMETERS)
    for target in request.targets:
        for region in request.regions:
            have = set(request.parameters) | set(overrides_for(request, target, region))
            missing = [k for k in required if k not in have]
            if missing:
                raise DeployUsageError(
                    f"stack instance {target} {region} lacks parameter(s) {', '.join(missing)}: pass --parameter KEY=VALUE for all, "
                    f"or --instance-parameter {target}:{region}:{missing[0]}=VALUE"
                )


def plan(request: Request, declared: Mapping[str, bool], stack_set: Mapping[str, Any] | None, existing: set[tuple[str, str]]) -> Plan:
    """The calls, from the request and what exists (DescribeStackSet, ListStackInstances)."""
    check_request(request, declared)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(request.parameters.items())]
    call: dict[str, Any] = {
        "StackSetName": request.name,
        "TemplateBody": request.body,
        "Parameters": parameters,
        "Capabilities": CAPABILITIES,
        "Description": "orch: one healer per VPC (cfn/orchestrator.yaml)",
    }
    if request.service_managed:
        call.update(PermissionModel="SERVICE_MANAGED", AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
    else:
        call["PermissionModel"] = "SELF_MANAGED"
        if request.administration_role_arn:
            call["AdministrationRoleARN"] = request.administration_role_arn
        if request.execution_role_name:
            call["ExecutionRoleName"] = request.execution_role_name
    if stack_set is None:
        action = "create"
        call["ManagedExecution"] = {"Active": True}
    else:
        action = "update"
        if stack_set.get("PermissionModel", "SELF_MANAGED") != call["PermissionModel"]:
            raise DeployUsageError(
                f"stack set {request.name} is {stack_set.get('PermissionModel')}: deploy it with "
                f"{'--ou' if stack_set.get('PermissionModel') == 'SERVICE_MANAGED' else '--accounts'} as before"
            )
        call.pop("PermissionModel")
        call.pop("AutoDeployment", None)
        call["OperationPreferences"] = request.preferences.as_api(request.regions)
    interval = int(request.parameters.get(INTERVAL_PARAMETER, DEFAULT_INTERVAL))
    grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    offsets: dict[tuple[str, str], int] = {}
    already = []
    for region in request.regions:
        for target in request.targets:
            if not request.service_managed and (target, region) in existing:
                already.append((target, region))
                continue
            overrides = overrides_for(request, target, region)
            vpc = overrides.get("VpcId") or request.parameters.get("VpcId") or "-"
            interval_here = int(overrides.get(INTERVAL_PARAMETER, interval))
            offsets[(target, region)] = offset = schedule_offset(target, region, vpc, interval_here)
            overrides[OFFSET_PARAMETER] = str(offset)
            grouped.setdefault((region, tuple(sorted(overrides.items()))), []).append(target)
    groups = tuple(InstanceGroup(region, tuple(targets), key) for (region, key), targets in grouped.items())
    return Plan(request.name, action, call, groups, tuple(already), offsets, request.service_managed, request.preferences)


# -- AWS -----------------------------------------------------------------------------------


def current_stack_set(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        found = cfn.describe_stack_set(StackSetName=name)["StackSet"]
    except ClientError as exc:
        if error_code(exc) == "StackSetNotFoundException":
            return None
        raise
    return None if found.get("Status") == "DELETED" else dict(found)


def list_instances(cfn: Any, name: str) -> list[dict[str, Any]]:
    found = []
    for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=name):
        found.extend(page.get("Summaries", []))
    return sorted(found, key=lambda s: (str(s.get("Account", "")), str(s.get("Region", ""))))


def wait_for_operation(
    cfn: Any, name: str, operation_id: str, say: Say, *, poll_seconds: float = 10.0, timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] | None = None,
) -> str:
    """Poll DescribeStackSetOperation until it leaves RUNNING/QUEUED/STOPPING; says each change of status."""
    last: list[str] = []

    def poll() -> str:
        operation = cfn.describe_stack_set_operation(StackSetName=name, OperationId=operation_id)["StackSetOperation"]
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


def failed_results(cfn: Any, name: str, operation_id: str, limit: int = 5) -> str:
    """The first failed (account, region) of an operation and why, for the error line."""
    reasons = []
    for page in cfn.get_paginator("list_stack_set_operation_results").paginate(StackSetName=name, OperationId=operation_id):
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
    """Make the calls of ``planned`` and wait for each operation; raises DeployError when one fails."""
    done = Outcome()
    waiting: list[tuple[str, str]] = []
    try:
        if planned.stack_set_action == "create":
            cfn.create_stack_set(**planned.stack_set_call)
            say(f"created stack set {planned.name}")
        else:
            try:
                reply = cfn.update_stack_set(**planned.stack_set_call)
                waiting.append((f"update stack set {planned.name}", reply["OperationId"]))
            except ClientError as exc:
                if "No updates" not in str(exc):
                    raise
                say(f"stack set {planned.name}: template and parameters unchanged")
        for group in planned.groups:
            reply = cfn.create_stack_instances(**group.as_api(planned.service_managed, planned.preferences, planned.name))
            waiting.append((f"stack instances {','.join(group.targets)} in {group.region}", reply["OperationId"]))
    except ClientError as exc:
        raise DeployError(f"CloudFormation refused a stack set call: {describe_aws_error(exc)}") from None
    for what, operation_id in waiting:
        status = wait_for_operation(cfn, planned.name, operation_id, say, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds, sleep=sleep)
        done.operations.append((what, operation_id, status))
        if status != "SUCCEEDED":
            raise DeployError(f"{what}: operation {operation_id} ended {status}: {failed_results(cfn, planned.name, operation_id)}")
    done.instances = list_instances(cfn, planned.name)
    return done
