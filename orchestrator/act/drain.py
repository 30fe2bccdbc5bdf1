"""Drain a load-balanced instance before it is rebooted, and put it back once it answers again.

A reboot fails the instance's load-balancer health checks while it boots: an Auto Scaling
group whose health check type is ELB may terminate it mid-reboot, and the load balancer
cuts the requests in flight. AWS's ways out (EC2 Auto Scaling user guide, "Temporarily
remove instances from your Auto Scaling group"; ELB user guide, "Deregistration delay"):

- a group member goes to ``Standby`` (EnterStandby): no load-balancer traffic, no health
  checks, no scale-in; ``ShouldDecrementDesiredCapacity`` so the group launches nothing in
  its place. ExitStandby puts it back;
- an instance registered in target groups is deregistered (DeregisterTargets); the load
  balancer lets its connections finish for the group's deregistration delay
  (``draining``). RegisterTargets puts it back, and the load balancer sends it nothing
  until its own health checks pass.

The policy of *when* is data and pure (``plan_drain``: from the instance's membership
and ``DrainPolicy``); the functions below it only read membership and carry a
``DrainStep`` out. Every wait is bounded (attempts with an injected sleep, cut to the
deadline by the executor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from orchestrator.aws import retry_throttled

PERMISSIONS = frozenset(
    {
        "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances", "autoscaling:EnterStandby",
        "autoscaling:ExitStandby", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:RegisterTargets",
    }
)
DEFAULT_DELAY_SECONDS = 300.0  # ELB's default deregistration delay
GONE = frozenset({"unused"})  # DescribeTargetHealth: deregistered and drained (or never there)
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Registration:
    target_group_arn: str
    port: int | None
    delay_seconds: float = DEFAULT_DELAY_SECONDS


@dataclass(frozen=True, slots=True)
class Membership:
    """What AWS says this instance belongs to (read by ``memberships``)."""

    instance_id: str
    asg_name: str | None = None
    asg_health_check: str | None = None  # EC2 | ELB (| VPC_LATTICE ...)
    asg_target_groups: tuple[str, ...] = ()
    asg_load_balancers: tuple[str, ...] = ()  # Classic
    registrations: tuple[Registration, ...] = ()


@dataclass(frozen=True, slots=True)
class DrainPolicy:
    """When and how long: data, from settings. ``enabled`` off reboots as before."""

    enabled: bool = True
    max_drain_seconds: float = 120.0  # the deregistration delay is waited for up to this
    verify_seconds: float = 300.0  # how long the executor waits for the instance to answer before putting it back
    poll_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class DrainStep:
    """What to do around one reboot: standby in a group, deregister from target groups, or both."""

    instance_id: str
    standby_group: str | None
    deregister: tuple[Registration, ...]
    wait_seconds: float

    def describe(self) -> str:
        parts = [f"Standby in {self.standby_group}"] if self.standby_group else []
        if self.deregister:
            parts.append(f"deregistered from {len(self.deregister)} target group(s)")
        return " and ".join(parts)

    def put_back_hint(self) -> str:
        hints = []
        if self.standby_group:
            hints.append(f"aws autoscaling exit-standby --instance-ids {self.instance_id} --auto-scaling-group-name {self.standby_group}")
        for r in self.deregister:
            port = f",Port={r.port}" if r.port else ""
            hints.append(f"aws elbv2 register-targets --target-group-arn {r.target_group_arn} --targets Id={self.instance_id}{port}")
        return "; ".join(hints)


# -- pure: the policy of when ----------------------------------------------------------------


def plan_drain(member: Membership, policy: DrainPolicy) -> DrainStep | None:
    """Standby for a group member behind a load balancer or judged by ELB; deregistering for target groups outside a group's."""
    if not policy.enabled:
        return None
    behind = bool(member.asg_target_groups or member.asg_load_balancers)
    standby = member.asg_name if member.asg_name and (member.asg_health_check == "ELB" or behind) else None
    # EnterStandby deregisters from the group's own target groups; any other registration is ours to undo.
    own = set(member.asg_target_groups) if standby else set()
    deregister = tuple(r for r in member.registrations if r.target_group_arn not in own)
    if standby is None and not deregister:
        return None
    delays = [r.delay_seconds for r in (*member.registrations, *deregister)] or [0.0]
    return DrainStep(member.instance_id, standby, deregister, min(max(delays), policy.max_drain_seconds))


# -- AWS -------------------------------------------------------------------------------------


def memberships(autoscaling: Any, elbv2: Any, instances: Mapping[str, str | None]) -> dict[str, Membership]:
    """instance id -> Membership, for these instances (id -> their group, from the aws:autoscaling:groupName tag)."""
    groups = sorted({g for g in instances.values() if g})
    described: dict[str, Mapping[str, Any]] = {}
    for start in range(0, len(groups), 50):
        for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=groups[start:start + 50]):
            for group in page.get("AutoScalingGroups", []):
                described[str(group["AutoScalingGroupName"])] = group
    registrations = target_registrations(elbv2, instances)
    found = {}
    for instance_id, group_name in instances.items():
        group = described.get(group_name or "")
        found[instance_id] = Membership(
            instance_id,
            asg_name=group_name if group else None,
            asg_health_check=str(group.get("HealthCheckType")) if group else None,
            asg_target_groups=tuple(group.get("TargetGroupARNs", [])) if group else (),
            asg_load_balancers=tuple(group.get("LoadBalancerNames", [])) if group else (),
            registrations=tuple(registrations.get(instance_id, ())),
        )
    return found


def target_registrations(elbv2: Any, instance_ids: Iterable[str]) -> dict[str, list[Registration]]:
    """Which instance target groups hold these instances (ELB has no reverse lookup: each group is asked once)."""
    wanted = set(instance_ids)
    found: dict[str, list[Registration]] = {}
    for page in elbv2.get_paginator("describe_target_groups").paginate():
        for group in page.get("TargetGroups", []):
            if group.get("TargetType", "instance") != "instance":
                continue
            arn = str(group["TargetGroupArn"])
            held = [d for d in elbv2.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", [])
                    if d.get("Target", {}).get("Id") in wanted and d.get("TargetHealth", {}).get("State") not in GONE]
            if not held:
                continue
            delay = deregistration_delay(elbv2, arn)
            for d in held:
                found.setdefault(d["Target"]["Id"], []).append(Registration(arn, d["Target"].get("Port"), delay))
    return found


def deregistration_delay(elbv2: Any, target_group_arn: str) -> float:
    for attribute in elbv2.describe_target_group_attributes(TargetGroupArn=target_group_arn).get("Attributes", []):
        if attribute.get("Key") == "deregistration_delay.timeout_seconds":
            try:
                return float(attribute.get("Value", DEFAULT_DELAY_SECONDS))
            except ValueError:
                return DEFAULT_DELAY_SECONDS
    return DEFAULT_DELAY_SECONDS


def _target(instance_id: str, registration: Registration) -> dict[str, Any]:
    return {"Id": instance_id, **({"Port": registration.port} if registration.port else {})}


@retry_throttled
def _enter_standby(autoscaling: Any, instance_id: str, group: str) -> None:
    autoscaling.enter_standby(InstanceIds=[instance_id], AutoScalingGroupName=group, ShouldDecrementDesiredCapacity=True)


@retry_throttled
def _deregister(elbv2: Any, instance_id: str, registration: Registration) -> None:
    elbv2.deregister_targets(TargetGroupArn=registration.target_group_arn, Targets=[_target(instance_id, registration)])


@retry_throttled
def _exit_standby(autoscaling: Any, instance_id: str, group: str) -> None:
    autoscaling.exit_standby(InstanceIds=[instance_id], AutoScalingGroupName=group)


@retry_throttled
def _register(elbv2: Any, instance_id: str, registration: Registration) -> None:
    elbv2.register_targets(TargetGroupArn=registration.target_group_arn, Targets=[_target(instance_id, registration)])


def start(autoscaling: Any, elbv2: Any, step: DrainStep) -> None:
    """EnterStandby and/or DeregisterTargets (each call retried alone); raises the AWS error: the executor then does not reboot."""
    if step.standby_group:
        _enter_standby(autoscaling, step.instance_id, step.standby_group)
    for registration in step.deregister:
        _deregister(elbv2, step.instance_id, registration)


def wait_drained(autoscaling: Any, elbv2: Any, steps: Sequence[DrainStep], seconds: float, sleep: Sleep, poll_seconds: float) -> list[str]:
    """Wait (bounded) until each instance is in Standby and out of draining; returns those still draining at the end."""

    def pending() -> list[str]:
        left = []
        standby = [s for s in steps if s.standby_group]
        if standby:
            states = {}
            for page in autoscaling.get_paginator("describe_auto_scaling_instances").paginate(InstanceIds=[s.instance_id for s in standby]):
                for item in page.get("AutoScalingInstances", []):
                    states[item["InstanceId"]] = item.get("LifecycleState")
            left += [s.instance_id for s in standby if states.get(s.instance_id) != "Standby"]
        for step in steps:
            for registration in step.deregister:
                health = elbv2.describe_target_health(TargetGroupArn=registration.target_group_arn,
                                                      Targets=[_target(step.instance_id, registration)]).get("TargetHealthDescriptions", [])
                if any(d.get("TargetHealth", {}).get("State") not in GONE for d in health) and step.instance_id not in left:
                    left.append(step.instance_id)
        return left

    return _poll(pending, lambda left: bool(left), seconds, sleep, poll_seconds)


def wait_answering(verify: Callable[[str], bool], instance_id: str, seconds: float, sleep: Sleep, poll_seconds: float) -> bool:
    """Poll ``verify`` (the probe: sshd answers) until it says yes or ``seconds`` pass."""
    return bool(_poll(lambda: verify(instance_id), lambda ok: not ok, seconds, sleep, poll_seconds))


def _poll(read: Callable[[], Any], again: Callable[[Any], bool], seconds: float, sleep: Sleep, poll_seconds: float) -> Any:
    # Attempts, not elapsed time, bound the wait: with the sleep injected a test runs it instantly.
    attempts = max(1, math.ceil(max(0.0, seconds) / poll_seconds)) + 1 if poll_seconds > 0 else 1
    return Retrying(retry=retry_if_result(again), stop=stop_after_attempt(attempts), wait=wait_fixed(poll_seconds), sleep=sleep,
                    retry_error_callback=lambda state: state.outcome.result() if state.outcome else None)(read)


def put_back(autoscaling: Any, elbv2: Any, step: DrainStep) -> None:
    """ExitStandby and/or RegisterTargets, as they were."""
    if step.standby_group:
        _exit_standby(autoscaling, step.instance_id, step.standby_group)
    for registration in step.deregister:
        _register(elbv2, step.instance_id, registration)
