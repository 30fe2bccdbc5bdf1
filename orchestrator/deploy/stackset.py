"""`orch deploy --stack-set`: the plan (pure) of one stack per (account, region) through CloudFormation StackSets.

One stack watches one VPC (its sweep sees only that VPC's instances), so an estate is
many stacks; AWS's own engine places them: a stack set, with stack instances in each
target account and region. ``plan`` turns the request and what AWS has into the calls;
orchestrator.deploy.stackset_aws makes them. orch adds what StackSets does not:

- **Per-instance parameters.** Each (account, region) has its own VPC and subnets, so
  ``VpcId``/``VpcCidr``/``SubnetIds`` come as ParameterOverrides per stack instance.
  AWS overrides only parameters the stack set itself has ("You can only override the
  parameter values that are specified in the stack set"), so every overridden key also
  gets a stack-set value: the previous one on an update, else the value most instances
  take (a value the template's constraints accept, never used by an instance that has
  its own). CreateStackInstances takes one override list for all its accounts × regions,
  so new instances are grouped by (region, overrides); an existing instance whose
  overrides change goes through UpdateStackInstances (its overrides are kept otherwise:
  a redeploy that does not mention them does not reset them).
- **Previous values kept.** UpdateStackSet resets every parameter it is not given to the
  template default; like the single-stack path, a parameter not passed is sent with
  UsePreviousValue, and a custom administration role and execution role are passed
  again (AWS requires them on every update).
- **Staggered schedules.** Sweeps in one account and region share its EC2 request
  buckets; ``ScheduleOffsetMinutes`` is a hash of (account, region, VPC).
- **Organizations.** ``--ou`` with per-account values deploys those accounts through
  DeploymentTargets (AccountFilterType INTERSECTION); the rest of the OU, and accounts
  joining it later (AutoDeployment), only when the stack-set values suit every account.
  ``CallAs=DELEGATED_ADMIN`` for a delegated administrator account.

Operation preferences: regions in PARALLEL, a failure tolerance per region, a bounded
share of accounts at a time (STRICT mode).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from orchestrator.deploy.errors import DeployUsageError
from orchestrator.deploy.stack import CAPABILITIES
from orchestrator.deploy.template import MANAGED_PARAMETERS

ACCOUNT_ID_LENGTH = 12
OFFSET_PARAMETER = "ScheduleOffsetMinutes"
INTERVAL_PARAMETER = "ScheduleMinutes"
DEFAULT_INTERVAL = 5
ANY = "*"
CALL_AS = ("SELF", "DELEGATED_ADMIN")
Overrides = Mapping[str, str]


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


def is_ou(target: str) -> bool:
    """An organizational unit (ou-...) or a root (r-...), not an account."""
    return target.startswith(("ou-", "r-"))


@dataclass(frozen=True)
class Request:
    """What the person asked for, checked (``check_request``) before any AWS call."""

    name: str
    body: str
    parameters: Mapping[str, str]  # stack-set level: every instance gets these unless overridden
    regions: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()  # service-managed: deploy to these OUs
    instance_parameters: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)  # (account|*, region|*) -> overrides
    administration_role_arn: str | None = None
    execution_role_name: str | None = None
    preferences: Preferences = Preferences()
    call_as: str | None = None  # DELEGATED_ADMIN: from a delegated administrator account (service-managed)

    @property
    def service_managed(self) -> bool:
        return bool(self.ous)

    @property
    def targets(self) -> tuple[str, ...]:
        return self.ous or self.accounts

    @property
    def named_accounts(self) -> tuple[str, ...]:
        """--ou: the accounts given their own values (--instance-parameter ACCOUNT:...), deployed one by one."""
        if not self.service_managed:
            return self.accounts
        return tuple(sorted({a for a, _ in self.instance_parameters if a != ANY and not is_ou(a)}))

    def call_as_api(self) -> dict[str, str]:
        return {"CallAs": self.call_as} if self.call_as else {}


@dataclass(frozen=True)
class InstanceGroup:
    """One CreateStackInstances or UpdateStackInstances call: these targets in this region with these overrides."""

    region: str
    targets: tuple[str, ...]  # account ids (self-managed, or --ou's named accounts), or OU ids
    overrides: tuple[tuple[str, str], ...]
    ous: tuple[str, ...] = ()  # service-managed: the OUs the targets are in (targets are then accounts unless == ous)
    account_filter: str = ""  # INTERSECTION (these accounts of the OUs) | DIFFERENCE (the OUs but these) | "" (the OUs)

    def as_api(self, service_managed: bool, prefs: Preferences, name: str, call_as: str | None = None) -> dict[str, Any]:
        call: dict[str, Any] = {
            "StackSetName": name,
            "Regions": [self.region],
            "ParameterOverrides": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.overrides],
            "OperationPreferences": prefs.as_api([self.region]),
        }
        if service_managed:
            targets: dict[str, Any] = {"OrganizationalUnitIds": list(self.ous or self.targets)}
            if self.account_filter:
                targets.update(Accounts=list(self.targets), AccountFilterType=self.account_filter)
            call["DeploymentTargets"] = targets
        else:
            call["Accounts"] = list(self.targets)
        if call_as:
            call["CallAs"] = call_as
        return call


@dataclass(frozen=True)
class Plan:
    """The calls a deploy makes, in order: data, shown by ``--dry-run`` and run by stackset_aws.run."""

    name: str
    stack_set_action: str  # create | update
    stack_set_call: Mapping[str, Any]
    groups: tuple[InstanceGroup, ...]  # CreateStackInstances
    already: tuple[tuple[str, str], ...]  # (account, region) with a stack instance whose overrides stay as they are
    offsets: Mapping[tuple[str, str], int]  # (target, region) -> the schedule's minute offset
    service_managed: bool
    preferences: Preferences
    updates: tuple[InstanceGroup, ...] = ()  # UpdateStackInstances: existing instances whose overrides change
    call_as: str | None = None
    notes: tuple[str, ...] = ()  # what the person should know (an OU's accounts left out, and why)


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


def schedule_expression(interval_minutes: int, offset: int) -> str:
    """The ScheduleExpression the template builds (cfn/orchestrator.yaml ScheduleRule), mirrored for tests and plans.

    EventBridge's minutes field takes 0-59, so an increment of 60 is refused:
    hourly at minute N is ``cron(N * * * ? *)``, not ``cron(N/60 ...)``.
    """
    if offset:
        if interval_minutes == 60:
            return f"cron({offset} * * * ? *)"
        return f"cron({offset}/{interval_minutes} * * * ? *)"
    return "rate(1 minute)" if interval_minutes == 1 else f"rate({interval_minutes} minutes)"


def overrides_for(request: Request, target: str, region: str) -> dict[str, str]:
    """Instance parameters for (target, region): '*' entries first, the exact ones win."""
    merged: dict[str, str] = {}
    for key in ((ANY, ANY), (ANY, region), (target, ANY), (target, region)):
        merged.update(request.instance_parameters.get(key, {}))
    return merged


def previous_parameters(stack_set: Mapping[str, Any] | None) -> dict[str, str]:
    """The stack set's own parameter values (DescribeStackSet), {} for a new one."""
    return {str(p["ParameterKey"]): str(p.get("ParameterValue", "")) for p in (stack_set or {}).get("Parameters", [])}


def _interval(*sources: Mapping[str, str]) -> int:
    for source in sources:
        if INTERVAL_PARAMETER in source:
            try:
                return int(source[INTERVAL_PARAMETER])
            except ValueError:
                raise DeployUsageError(f"{INTERVAL_PARAMETER}={source[INTERVAL_PARAMETER]!r} is not a whole number of minutes") from None
    return DEFAULT_INTERVAL


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
    if request.service_managed:
        for account in request.named_accounts:
            if not (account.isdigit() and len(account) == ACCOUNT_ID_LENGTH):
                raise DeployUsageError(f"--instance-parameter with --ou: {account!r} is not a 12-digit account id, one of --ou's OUs, or *")
        strangers = sorted({t for t, _ in request.instance_parameters if is_ou(t)} - set(request.ous))
        if strangers:
            raise DeployUsageError(f"--instance-parameter names {', '.join(strangers)}, which --ou does not deploy to")
    if request.service_managed and (request.administration_role_arn or request.execution_role_name):
        raise DeployUsageError("--administration-role-arn and --execution-role-name are for --accounts (self-managed); --ou uses AWS Organizations' roles")
    if request.call_as and request.call_as not in CALL_AS:
        raise DeployUsageError(f"--call-as takes {' or '.join(CALL_AS)}")
    if request.call_as == "DELEGATED_ADMIN" and not request.service_managed:
        raise DeployUsageError("--call-as DELEGATED_ADMIN is for --ou (service-managed) stack sets")
    prefs = request.preferences
    if not 0 <= prefs.failure_tolerance_percentage <= 100 or not 1 <= prefs.max_concurrent_percentage <= 100:
        raise DeployUsageError("--failure-tolerance-percentage must be 0-100 and --max-concurrent-percentage 1-100")
    given = set(request.parameters) | {k for values in request.instance_parameters.values() for k in values}
    unknown = sorted(given - set(declared))
    if unknown:
        raise DeployUsageError(f"unknown parameter(s) {', '.join(unknown)}: the template takes {', '.join(sorted(set(declared) - MANAGED_PARAMETERS))}")
    if OFFSET_PARAMETER in given:
        raise DeployUsageError(f"{OFFSET_PARAMETER} is chosen by orch per stack instance (staggered schedules); do not pass it")


def required(declared: Mapping[str, bool]) -> list[str]:
    """Parameters without a default that the person must give (orch sets the code's)."""
    return sorted(k for k, has_default in declared.items() if not has_default and k not in MANAGED_PARAMETERS)


def _missing(have: set[str], needed: list[str], target: str, region: str) -> None:
    missing = [k for k in needed if k not in have]
    if missing:
        raise DeployUsageError(
            f"stack instance {target} {region} lacks parameter(s) {', '.join(missing)}: pass --parameter KEY=VALUE for all, "
            f"or --instance-parameter {target}:{region}:{missing[0]}=VALUE"
        )


def _stack_set_parameters(
    request: Request, declared: Mapping[str, bool], previous: Mapping[str, str], overridden: Mapping[str, Counter[str]],
) -> list[dict[str, Any]]:
    """UpdateStackSet/CreateStackSet Parameters: the given values, UsePreviousValue for the rest, a value for each overridden key."""
    result = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(request.parameters.items())]
    kept = sorted((set(previous) & set(declared)) - set(request.parameters))
    result += [{"ParameterKey": k, "UsePreviousValue": True} for k in kept]
    for key in sorted(set(overridden) - set(request.parameters) - set(kept)):
        value = "0" if key == OFFSET_PARAMETER else min(overridden[key].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        result.append({"ParameterKey": key, "ParameterValue": value})
    return sorted(result, key=lambda p: str(p["ParameterKey"]))


def plan(
    request: Request, declared: Mapping[str, bool], stack_set: Mapping[str, Any] | None, existing: Mapping[tuple[str, str], Overrides],
) -> Plan:
    """The calls, from the request and what exists: DescribeStackSet, and each existing instance's overrides (DescribeStackInstance)."""
    check_request(request, declared)
    previous = previous_parameters(stack_set)
    needed = required(declared)
    service = request.service_managed
    # Keys that differ per instance here: asked now, or overridden on an instance already.
    per_instance = {k for v in request.instance_parameters.values() for k in v} | {k for v in existing.values() for k in v}
    per_instance -= MANAGED_PARAMETERS | {OFFSET_PARAMETER}
    # Values a new instance may take from the stack set: given now, or kept from before unless they are per-instance.
    shared = set(request.parameters) | MANAGED_PARAMETERS | (set(previous) - per_instance)

    notes: list[str] = []
    ou_wide = auto = False
    if service:
        named = request.named_accounts
        # The whole OU now: when every account of it has what it needs, from the stack set or the OU's ('*') overrides.
        ou_wide = all(k in shared or k in overrides_for(request, ou, r) for ou in request.ous for r in request.regions for k in needed)
        # Accounts that join an OU later get the stack set's own values, never overrides (UpdateStackInstances: "Accounts
        # added to the target OUs ... in the future won't use the overridden values"): AutoDeployment only when those suit all.
        per_region = sorted({k for ou in request.ous for r in request.regions for k in overrides_for(request, ou, r)
                             if k in needed or k in MANAGED_PARAMETERS})
        auto = ou_wide and all(k in shared for k in needed) and not per_region
        lacking = [k for k in needed if k not in shared] + per_region
        if not named and not ou_wide:
            _missing(shared, needed, ANY, request.regions[0])
        if not ou_wide:
            notes.append(
                f"only the accounts given their own values ({', '.join(named)}) get a stack instance: {', '.join(lacking)} differ per account, "
                f"so the other accounts of {', '.join(request.ous)}, and accounts that join later, get none (AutoDeployment off); "
                f"add one with --instance-parameter ACCOUNT:REGION:{lacking[0]}=VALUE"
            )
        elif not auto:
            notes.append(
                f"accounts that join {', '.join(request.ous)} later get no stack instance (AutoDeployment off): they would take the stack set's "
                f"own {', '.join(lacking)}, which differ per account or region; deploy again when one joins"
            )
        scope = [(a, r) for r in request.regions for a in named]
    else:
        scope = [(a, r) for r in request.regions for a in request.accounts]

    creates: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    updates: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    offsets: dict[tuple[str, str], int] = {}
    already: list[tuple[str, str]] = []
    overridden: dict[str, Counter[str]] = {}

    def want(target: str, region: str, base: Overrides) -> dict[str, str]:
        wanted = {**base, **overrides_for(request, target, region)}
        wanted.pop(OFFSET_PARAMETER, None)
        vpc = wanted.get("VpcId") or request.parameters.get("VpcId") or previous.get("VpcId") or "-"
        offsets[(target, region)] = offset = schedule_offset(target, region, vpc, _interval(wanted, request.parameters, previous))
        wanted[OFFSET_PARAMETER] = str(offset)
        for key, value in wanted.items():
            overridden.setdefault(key, Counter())[value] += 1
        return wanted

    for target, region in scope:
        current = existing.get((target, region))
        if current is None:
            wanted = want(target, region, {})
            _missing(shared | set(wanted), needed, target, region)
            creates.setdefault((region, tuple(sorted(wanted.items()))), []).append(target)
            continue
        wanted = want(target, region, current)
        _missing(set(request.parameters) | set(previous) | set(wanted) | MANAGED_PARAMETERS, needed, target, region)
        if wanted == dict(current):
            already.append((target, region))
        else:
            updates.setdefault((region, tuple(sorted(wanted.items()))), []).append(target)

    named_filter = "INTERSECTION" if service else ""
    groups = [InstanceGroup(region, tuple(t), key, request.ous, named_filter) for (region, key), t in creates.items()]
    update_groups = [InstanceGroup(region, tuple(t), key, request.ous, named_filter) for (region, key), t in updates.items()]
    if ou_wide:  # each OU's other accounts (all of them when none is named)
        others = tuple(request.named_accounts)
        for region in request.regions:
            for ou in request.ous:
                wanted = overrides_for(request, ou, region)
                vpc = wanted.get("VpcId") or request.parameters.get("VpcId") or "-"
                offsets[(ou, region)] = offset = schedule_offset(ou, region, vpc, _interval(wanted, request.parameters, previous))
                wanted[OFFSET_PARAMETER] = str(offset)
                for key, value in wanted.items():
                    overridden.setdefault(key, Counter())[value] += 1
                groups.append(InstanceGroup(region, others or (ou,), tuple(sorted(wanted.items())), (ou,), "DIFFERENCE" if others else ""))

    call: dict[str, Any] = {
        "StackSetName": request.name,
        "TemplateBody": request.body,
        "Parameters": _stack_set_parameters(request, declared, previous if stack_set is not None else {}, overridden),
        "Capabilities": CAPABILITIES,
        "Description": "orch: one healer per VPC (cfn/orchestrator.yaml)",
        **request.call_as_api(),
    }
    if service:
        call.update(PermissionModel="SERVICE_MANAGED", AutoDeployment={"Enabled": auto, **({"RetainStacksOnAccountRemoval": False} if auto else {})})
    else:
        call["PermissionModel"] = "SELF_MANAGED"
        admin = request.administration_role_arn or (stack_set or {}).get("AdministrationRoleARN")
        execution = request.execution_role_name or (stack_set or {}).get("ExecutionRoleName")
        if admin:
            call["AdministrationRoleARN"] = admin
        if execution:
            call["ExecutionRoleName"] = execution
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
        call["OperationPreferences"] = request.preferences.as_api(request.regions)
    return Plan(request.name, action, call, tuple(groups), tuple(already), offsets, service, request.preferences,
                tuple(update_groups), request.call_as, tuple(notes))
