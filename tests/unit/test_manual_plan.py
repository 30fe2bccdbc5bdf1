"""Which rules hold a person's `orch reboot` / `orch stop-start` back, and which --force passes (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from orchestrator.alerting.news import AlertState, Item, Told, decide
from orchestrator.decide.manual import ManualRequest, manual_plan
from orchestrator.model import ActionKind, BlockRule, InstanceHistory, ProbeOutcome, ScheduledEvent, VerdictKind
from orchestrator.state.store import PauseState
from tests.builders import NOW, facts, instance, settings, verdict

FORCE = "INC-42: known wedged"


def fleet(down: int = 0, size: int = 5, probe: ProbeOutcome = ProbeOutcome.BANNER_TIMEOUT, **changes):
    """``size`` instances, the first ``down`` of them unreachable (``probe`` says how); ``changes`` edit instance 1's Instance."""
    made = {}
    for n in range(1, size + 1):
        inst = instance(n)
        if n == 1 and changes:
            inst = replace(inst, **changes)
        made[inst.instance_id] = facts(inst, probe if n <= down else ProbeOutcome.OK)
    return made


def plan_for(kind=ActionKind.REBOOT, force=None, down=0, histories=None, paused=None, config=None, stoppable=True,
             probe=ProbeOutcome.BANNER_TIMEOUT, **changes):
    by_id = fleet(down, probe=probe, **changes)
    if stoppable:  # what AwsFleet.enrich reads for a stop/start
        by_id = {i: replace(f, instance_storage=False) for i, f in by_id.items()}
    verdicts = {i: verdict(f, VerdictKind.UNREACHABLE if f.probe.outcome.is_failure else VerdictKind.HEALTHY) for i, f in by_id.items()}
    first = next(iter(by_id))
    request = ManualRequest(first, kind, "alice@ops", force)
    return first, manual_plan(request, by_id, verdicts, histories or {}, config or settings(launch_grace_minutes=0), NOW, paused)


PAUSE = PauseState(paused_at=NOW - timedelta(minutes=5), by="bob@ops", reason="deploy")


def quarantined(iid):
    return {iid: InstanceHistory(iid, quarantined_at=NOW - timedelta(hours=1), quarantine_reason="4 actions")}


def in_flight(iid):
    return {iid: InstanceHistory(iid, in_flight_key="k", last_action=ActionKind.REBOOT, last_action_at=NOW - timedelta(minutes=2))}


@pytest.mark.parametrize(
    ("name", "kwargs", "histories", "rule", "forceable"),
    [
        ("healthy box, nothing holds it", {}, None, None, None),
        ("unreachable, unconfirmed: debounce is not asked", {"down": 1}, None, None, None),
        ("young instance: launch grace is not asked", {"launch_time": NOW - timedelta(minutes=1)}, None, None, None),
        ("paused", {"paused": PAUSE}, None, BlockRule.PAUSED, False),
        ("not running", {"state": "stopped"}, None, BlockRule.NOT_RUNNING, False),
        ("breaker open: 3 of 5 down, limit 20%", {"down": 3, "probe": ProbeOutcome.CONNECT_TIMEOUT}, None, BlockRule.BREAKER, True),
        ("past the breaker, the kernels answered: the person's reboot is the canary", {"down": 3}, None, None, None),
        ("opted out", {"tags": {"orch:managed": "true", "orch:skip": "true"}}, None, BlockRule.OPT_OUT, True),
        ("quarantined", {}, "quarantine", BlockRule.QUARANTINE, True),
        ("awaiting verification", {}, "in-flight", BlockRule.IN_FLIGHT, True),
        ("hourly budget spent", {"config": settings(launch_grace_minutes=0, max_actions_per_hour=0)}, None, BlockRule.BUDGET, True),
        ("stop/start of instance store", {"kind": ActionKind.STOP_START, "root_device_type": "instance-store"}, None, BlockRule.LADDER, False),
        ("stop/start, storage not read", {"kind": ActionKind.STOP_START, "stoppable": False, "instance_type": "c5d.large"}, None, BlockRule.LADDER, False),
        ("stop/start of an EBS box", {"kind": ActionKind.STOP_START, "root_device_type": "ebs"}, None, None, None),
    ],
)
def test_manual_rules(name, kwargs, histories, rule, forceable):
    iid = next(iter(fleet()))
    history = {"quarantine": quarantined(iid), "in-flight": in_flight(iid), None: None}[histories]
    _, plan = plan_for(histories=history, **kwargs)
    if rule is None:
        (action,) = plan.actions
        assert action.requested_by == "alice@ops" and action.forced == "" and action.reason.startswith("by hand (orch ")
        assert plan.blocked == ()
        return
    (blocked,) = plan.blocked
    assert plan.actions == () and blocked.rule is rule, blocked.why
    assert ("--force --reason TEXT" in blocked.why) is forceable
    _, forced = plan_for(force=FORCE, histories=history, **kwargs)
    if forceable:
        (action,) = forced.actions
        assert action.forced.startswith(f"forced past {rule.value} (") and action.forced.endswith(FORCE)
        assert FORCE in action.reason and FORCE in forced.notes[0]
    else:
        assert forced.actions == () and forced.blocked[0].rule is rule  # --force never passes these


def test_a_scheduled_event_is_forceable():
    by_id = fleet()
    iid = next(iter(by_id))
    event = ScheduledEvent("system-reboot", NOW + timedelta(days=1))
    by_id[iid] = replace(by_id[iid], status=replace(by_id[iid].status, events=(event,)))
    verdicts = {i: verdict(f, VerdictKind.HEALTHY) for i, f in by_id.items()}
    plan = manual_plan(ManualRequest(iid, ActionKind.REBOOT, "a@b"), by_id, verdicts, {}, settings(), NOW, None)
    assert plan.blocked[0].rule is BlockRule.SCHEDULED_EVENT


def test_an_instance_not_selected_is_refused():
    by_id = fleet()
    verdicts = {i: verdict(f, VerdictKind.HEALTHY) for i, f in by_id.items()}
    plan = manual_plan(ManualRequest("i-0000000000000dead", ActionKind.REBOOT, "a@b"), by_id, verdicts, {}, settings(), NOW, None)
    assert plan.actions == () and "is not among the instances selected" in plan.blocked[0].why


@pytest.mark.parametrize(("kind", "force"), [(ActionKind.REPLACE, None), (ActionKind.REBOOT, "  ")])
def test_a_request_is_checked_when_made(kind, force):
    with pytest.raises(ValueError):
        ManualRequest("i-1", kind, "a@b", force)


def test_a_partial_decision_neither_ends_nor_forgets_what_it_does_not_mention():
    told = {"fleet:breaker": Told("fleet:breaker", NOW - timedelta(hours=1), "", "breaker open")}
    action = Item("action:i-1:reboot", "i-1 rebooted: by hand", lasting=False)
    whole = decide([action], AlertState(told), NOW, timedelta(hours=24))
    assert [t.key for t in whole.ended] == ["fleet:breaker"]  # a sweep's view: the breaker closed
    partial = decide([action], AlertState(told), NOW, timedelta(hours=24), complete=False)
    assert partial.ended == () and partial.new == (action,)
    assert partial.state.told == told  # still remembered as told, not told again
