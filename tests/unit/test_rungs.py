"""Which rung fits an instance (orchestrator.decide.rungs), and the plan taking it. Table-driven."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from orchestrator.decide.plan import make_plan
from orchestrator.decide.rungs import Rung, fitting_ladder, misfit, rung_for
from orchestrator.model import ActionKind, Facts, Instance, ProbeOutcome, VerdictKind
from tests.builders import NOW, actions_at, confirmed, facts, instance, settings, verdict

R, S, P = ActionKind.REBOOT, ActionKind.STOP_START, ActionKind.REPLACE
LADDER = (R, S, P)


def box(*, asg: str | None = None, facts_: dict[str, Any] | None = None, **fields: Any) -> Facts:
    inst: Instance = replace(instance(3, asg=asg), **({"instance_type": "t3.large", "root_device_type": "ebs",
                                                        "root_device_name": "/dev/xvda", "ebs_devices": ("/dev/xvda",)} | fields))
    return replace(facts(inst, ProbeOutcome.BANNER_TIMEOUT), **({"instance_storage": False} | (facts_ or {})))


ON_DEMAND = box()
MEMBER = box(asg="web")
ONE_TIME_SPOT = box(instance_lifecycle="spot", spot_request_id="sir-1", facts_={"spot_request_type": "one-time"})
PERSISTENT_SPOT = box(instance_lifecycle="spot", spot_request_id="sir-2", facts_={"spot_request_type": "persistent"})
UNKNOWN_SPOT = box(instance_lifecycle="spot")
STORE_ROOT = box(root_device_type="instance-store", ebs_devices=())
NVME_TYPE = box(instance_type="i3.large", facts_={"instance_storage": True})
UNREAD_TYPE = box(facts_={"instance_storage": None})
DETACHED_ROOT = box(ebs_devices=("/dev/sdf",))

MISFITS = [
    ("on-demand EBS stops", ON_DEMAND, S, None),
    ("group member is not stopped", MEMBER, S, "Auto Scaling group web: the group terminates a stopped member"),
    ("one-time Spot cannot be stopped", ONE_TIME_SPOT, S, "one-time request cannot be stopped"),
    ("persistent Spot can", PERSISTENT_SPOT, S, None),
    ("Spot of an unread request type is not tried", UNKNOWN_SPOT, S, "request type (one-time or persistent) could not be read"),
    ("instance-store root cannot be stopped", STORE_ROOT, S, "root device is instance store"),
    ("instance-store volumes would be erased", NVME_TYPE, S, "i3.large has instance-store volumes, which a stop erases"),
    ("an unread type is not stopped", UNREAD_TYPE, S, "was not read"),
    ("a root not among the EBS volumes", DETACHED_ROOT, S, "not among its attached EBS volumes"),
    ("reboot fits a one-time Spot", ONE_TIME_SPOT, R, None),
    ("replace fits a member", MEMBER, P, None),
    ("replace does not fit a standalone box", ON_DEMAND, P, "only for Auto Scaling members"),
    ("start is never a rung", ON_DEMAND, ActionKind.START, "not a rung"),
]


@pytest.mark.parametrize(("name", "f", "kind", "why"), MISFITS, ids=[m[0] for m in MISFITS])
def test_misfit(name: str, f: Facts, kind: ActionKind, why: str | None) -> None:
    found = misfit(kind, f)
    assert (found is None) if why is None else (found is not None and why in found), found


RUNGS = [
    # name, facts, ladder position, expected kind, note contains, blocked because
    ("rung 0 is a reboot for all", ONE_TIME_SPOT, 0, R, "", None),
    ("stop/start for a plain box", ON_DEMAND, 1, S, "", None),
    ("a member is replaced instead", MEMBER, 1, P, "replace instead of stop-start", None),
    ("one-time Spot skips to replace, which a standalone box cannot take", ONE_TIME_SPOT, 1, S, "stop-start skipped", "only for Auto Scaling members"),
    ("instance-store root: nothing fits past reboot", STORE_ROOT, 1, S, "instance store", "stop-start skipped"),
    ("past the end stays on the last rung", MEMBER, 7, P, "", None),
]


@pytest.mark.parametrize(("name", "f", "position", "kind", "note", "blocked"), RUNGS, ids=[r[0] for r in RUNGS])
def test_rung_for(name: str, f: Facts, position: int, kind: ActionKind, note: str, blocked: str | None) -> None:
    rung, why_not = rung_for(LADDER, position, f)
    assert rung.kind is kind and note in rung.note
    assert (why_not is None) if blocked is None else (why_not is not None and blocked in why_not)


LADDERS = [
    ("plain box: reboot, stop/start (replace is for members)", ON_DEMAND, (Rung(R), Rung(S))),
    ("member: reboot, then replace", MEMBER, (Rung(R), Rung(P, "replace instead of stop-start"))),
    ("one-time Spot: reboot only", ONE_TIME_SPOT, (Rung(R),)),
    ("persistent Spot: reboot, stop/start", PERSISTENT_SPOT, (Rung(R), Rung(S))),
]


@pytest.mark.parametrize(("name", "f", "expected"), LADDERS, ids=[x[0] for x in LADDERS])
def test_fitting_ladder(name: str, f: Facts, expected: tuple[Rung, ...]) -> None:
    got = fitting_ladder(LADDER, f)
    assert [r.kind for r in got] == [r.kind for r in expected]
    assert all(e.note in g.note for g, e in zip(got, expected))


def plan_for(f: Facts, rung: int, **safety: Any) -> Any:
    base = {"launch_grace_minutes": 0, "max_group_percent": 100, "max_unhealthy": "100%", "az_fault_percent": 100} | safety
    healthy = [facts(instance(n)) for n in range(10, 20)]
    everyone = {x.instance.instance_id: x for x in [f, *healthy]}
    verdicts = [verdict(f, VerdictKind.UNREACHABLE)] + [verdict(h, VerdictKind.HEALTHY) for h in healthy]
    history = {f.instance.instance_id: confirmed(f.instance.instance_id, rung=rung, actions=actions_at(NOW - timedelta(minutes=20)))}
    return make_plan(everyone, verdicts, history, settings(**base), NOW)


def test_plan_replaces_a_group_member_at_the_stop_start_rung() -> None:
    plan = plan_for(MEMBER, rung=1)
    (action,) = plan.actions
    assert action.kind is ActionKind.REPLACE and action.asg_name == "web"
    assert "replace instead of stop-start" in action.reason and "terminates a stopped member" in action.reason


def test_plan_blocks_a_one_time_spot_at_the_stop_start_rung_with_why() -> None:
    plan = plan_for(ONE_TIME_SPOT, rung=1)
    assert plan.actions == ()
    (blocked,) = plan.blocked
    assert "one-time request cannot be stopped" in blocked.why and "a human must look" in blocked.why


def test_plan_keeps_stop_start_for_a_box_that_can_take_it() -> None:
    (action,) = plan_for(PERSISTENT_SPOT, rung=1).actions
    assert action.kind is ActionKind.STOP_START


def test_a_member_replaced_instead_of_stopped_counts_against_its_group() -> None:
    """max_group_percent applies: the group's one slot is already taken by an action in flight."""
    other = facts(instance(30, asg="web"))
    busy = confirmed(other.instance.instance_id, in_flight_key="k", last_action=ActionKind.REBOOT, last_action_at=NOW)
    everyone = {MEMBER.instance.instance_id: MEMBER, other.instance.instance_id: other}
    verdicts = [verdict(MEMBER, VerdictKind.UNREACHABLE), verdict(other, VerdictKind.HEALTHY)]
    histories = {MEMBER.instance.instance_id: confirmed(MEMBER.instance.instance_id, rung=1), other.instance.instance_id: busy}
    plan = make_plan(everyone, verdicts, histories, settings(launch_grace_minutes=0, max_group_percent=10, max_unhealthy="100%", az_fault_percent=100), NOW)
    (blocked,) = plan.blocked
    assert blocked.kind is ActionKind.REPLACE and "already has 1 action(s) in flight" in blocked.why
