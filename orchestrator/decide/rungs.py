"""Which rung of the escalation ladder fits an instance. Pure.

The configured ladder (reboot, stop/start, replace) is the same for every instance, but
AWS does not let every instance take every rung (EC2 and Auto Scaling user guides):

- an Auto Scaling group marks a member that is not running unhealthy and terminates
  it: stop/start would become a replacement the group starts on its own, outside
  ``max_group_percent``. A member goes to replace instead (SetInstanceHealth), which
  the plan's budget counts against the group;
- a Spot instance of a one-time request cannot be stopped (only persistent requests'
  can), and one whose request type could not be read is not tried;
- an instance-store root cannot be stopped at all, and a stop erases every
  instance-store volume of an EBS-backed instance: those skip stop/start;
- replace exists only for Auto Scaling members.

``rung_for`` answers for one instance and ladder position: the rung to take (perhaps a
substitute, with the reason), or why none fits; ``fitting_ladder`` the whole ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from orchestrator.model import ActionKind, Facts


@dataclass(frozen=True, slots=True)
class Rung:
    kind: ActionKind
    note: str = ""  # why this rung stands where the configured one was, or what was skipped to reach it


def misfit(kind: ActionKind, facts: Facts) -> str | None:
    """Why ``kind`` cannot be done to this instance, or None when it can."""
    inst = facts.instance
    if kind is ActionKind.START:
        return "start only finishes a stop/start orch began; it is not a rung of the ladder"
    if kind is ActionKind.REPLACE and not inst.asg_name:
        return "escalation reached replace, which orch does only for Auto Scaling members"
    if kind is not ActionKind.STOP_START:
        return None
    if inst.asg_name:
        return (
            f"stop/start is not for a member of Auto Scaling group {inst.asg_name}: the group terminates a stopped "
            "member, a replacement outside max_group_percent"
        )
    if inst.root_device_type == "instance-store":
        return "its root device is instance store, which cannot be stopped"
    if inst.root_device_type == "ebs" and inst.root_device_name and inst.ebs_devices and inst.root_device_name not in inst.ebs_devices:
        return f"its root device {inst.root_device_name} is not among its attached EBS volumes"
    if inst.instance_lifecycle == "spot":
        if facts.spot_request_type == "one-time":
            return "a Spot instance of a one-time request cannot be stopped (only persistent requests' can)"
        if facts.spot_request_type != "persistent":
            return "a Spot instance whose request type (one-time or persistent) could not be read is not stopped"
    if facts.instance_storage:
        return f"its type {inst.instance_type} has instance-store volumes, which a stop erases"
    if facts.instance_storage is None and inst.instance_type:
        return f"whether its type {inst.instance_type} has instance-store volumes (erased by a stop) was not read"
    return None


def substitute(kind: ActionKind, facts: Facts) -> ActionKind | None:
    """The rung that does what ``kind`` meant, where ``kind`` itself does not fit."""
    if kind is ActionKind.STOP_START and facts.instance.asg_name:
        return ActionKind.REPLACE  # new hardware through the group, counted against it
    return None


def rung_for(ladder: Sequence[ActionKind], position: int, facts: Facts) -> tuple[Rung, str | None]:
    """The rung to take at ``position`` (clamped to the ladder), and why not when none fits.

    A rung that does not fit is replaced by its substitute, or skipped for the next one
    up; if nothing from ``position`` on fits, the configured rung is returned with the
    reasons, and the plan blocks it for a human.
    """
    start = min(max(position, 0), len(ladder) - 1)
    skipped: list[str] = []
    for kind in ladder[start:]:
        why = misfit(kind, facts)
        if why is None:
            return Rung(kind, "; ".join(skipped)), None
        instead = substitute(kind, facts)
        if instead is not None and misfit(instead, facts) is None:
            return Rung(instead, "; ".join([*skipped, f"{instead.value} instead of {kind.value}: {why}"])), None
        skipped.append(f"{kind.value} skipped: {why}" if kind is not ActionKind.REPLACE else why)
    return Rung(ladder[start], "; ".join(skipped)), "; ".join(skipped)


def fitting_ladder(ladder: Sequence[ActionKind], facts: Facts) -> tuple[Rung, ...]:
    """The ladder as this instance would climb it: each position's rung, repeats folded."""
    rungs: list[Rung] = []
    for position in range(len(ladder)):
        rung, why_not = rung_for(ladder, position, facts)
        if why_not is None and all(r.kind is not rung.kind for r in rungs):
            rungs.append(rung)
    return tuple(rungs)
