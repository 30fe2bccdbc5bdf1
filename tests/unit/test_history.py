"""Debounce, verification, recurrence, flapping, escalation, chronic conditions and quarantine, folded sweep by sweep."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from orchestrator.config import Settings
from orchestrator.decide.chronic import chronic
from orchestrator.decide.history import ActionContext, acted, observe, recovered, release
from orchestrator.model import (
    Action,
    ActionKind,
    ActionOutcome,
    Cause,
    Corroboration,
    InstanceHistory,
    OutcomeStatus,
    ProbeOutcome,
    Verdict,
    VerdictKind,
)
from tests.builders import NOW, facts, instance, verdict

SETTINGS = Settings()
SAFETY = SETTINGS.safety
INST = instance(1)
ID = INST.instance_id
ASG_INST = instance(2, asg="web")
DOWN = facts(INST, ProbeOutcome.BANNER_TIMEOUT)
UP = facts(INST, ProbeOutcome.OK)


def minutes(m: float) -> datetime:
    return NOW + timedelta(minutes=m)


def down(prev: InstanceHistory, at: datetime = NOW, inst=INST, memory: float | None = None) -> InstanceHistory:
    f = facts(inst, ProbeOutcome.BANNER_TIMEOUT)
    v = Verdict(inst.instance_id, VerdictKind.UNREACHABLE, ("down",), memory_percent=memory)
    return observe(prev, f, v, at, SETTINGS)


def up(prev: InstanceHistory, at: datetime = NOW, memory: float | None = None, kind: VerdictKind = VerdictKind.HEALTHY) -> InstanceHistory:
    return observe(prev, UP, Verdict(ID, kind, ("up",), memory_percent=memory), at, SETTINGS)


def memory_verdict(percent: float = 99.0) -> Verdict:
    return Verdict(ID, VerdictKind.UNREACHABLE, ("down",), memory_percent=percent, evidence=("memory 99%",), corroboration=Corroboration.MEMORY)


def taken(
    prev: InstanceHistory,
    at: datetime = NOW,
    status: OutcomeStatus = OutcomeStatus.DONE,
    kind: ActionKind = ActionKind.REBOOT,
    context: ActionContext | None = None,
) -> InstanceHistory:
    outcome = ActionOutcome(Action(prev.instance_id, kind, "r"), status, "detail")
    return acted(prev, outcome, f"key-{at:%H%M}", at, SETTINGS, context)


def test_failed_probes_accumulate_across_sweeps():
    h = down(InstanceHistory(ID))
    assert h.failed_probes == 3 and h.first_failure_at == DOWN.probe.attempts[0].started_at
    h2 = down(h, NOW + timedelta(minutes=5))
    assert h2.failed_probes == 6 and h2.first_failure_at == h.first_failure_at


def test_healthy_sweep_clears_failures_and_starts_a_streak():
    h = up(down(InstanceHistory(ID)))
    assert (h.failed_probes, h.first_failure_at, h.healthy_since, h.last_healthy_at) == (0, None, NOW, NOW)


def test_unknown_verdict_changes_nothing():
    prev = down(InstanceHistory(ID))
    assert observe(prev, DOWN, verdict(DOWN, VerdictKind.UNKNOWN), NOW, SETTINGS) == prev


@pytest.mark.parametrize(
    "status, in_flight, recorded",
    [(OutcomeStatus.DONE, True, True), (OutcomeStatus.UNCERTAIN, True, True), (OutcomeStatus.FAILED, False, True), (OutcomeStatus.SKIPPED, False, False)],
)
def test_only_taken_actions_go_in_flight(status, in_flight, recorded):
    h = taken(down(InstanceHistory(ID)), status=status)
    assert (h.in_flight_key is not None) is in_flight
    assert (len(h.actions) == 1) is recorded
    assert h.attempts == ((NOW,) if in_flight else ())  # a failed call is not counted by the budgets


def test_a_failed_call_climbs_the_ladder_instead_of_being_retried_every_window():
    h = taken(down(InstanceHistory(ID)), status=OutcomeStatus.FAILED)
    assert h.rung == 1 and h.actions[0].failed_at == NOW and "the call failed" in h.actions[0].failure


def test_healthy_after_action_verifies_it():
    h = up(taken(down(InstanceHistory(ID))), minutes(5))
    assert h.in_flight_key is None and h.rung == 0 and h.actions[-1].verified_at == minutes(5)


def test_still_down_within_verify_window_stays_in_flight():
    h = down(taken(InstanceHistory(ID)), minutes(SAFETY.verify_minutes - 1))
    assert h.in_flight_key is not None and h.rung == 0 and not h.actions[-1].settled


def test_still_down_after_verify_window_fails_and_escalates_one_rung():
    h = down(taken(InstanceHistory(ID)), minutes(SAFETY.verify_minutes))
    assert h.in_flight_key is None and h.rung == 1 and h.quarantined_at is None
    assert "SSH still failing" in h.actions[-1].failure


def test_ladder_resets_after_staying_healthy():
    h = InstanceHistory(ID, rung=2)
    h = up(h, NOW)
    assert h.rung == 2  # healthy for a moment proves little
    h = up(h, minutes(SAFETY.reset_minutes))
    assert h.rung == 0


def test_a_memory_action_is_verified_only_when_memory_fell():
    before = Verdict(ID, VerdictKind.MEMORY_FORECAST, ("m",), memory_percent=91.0)
    h = taken(InstanceHistory(ID), kind=ActionKind.RUN_COMMAND, context=ActionContext(verdict=before))
    assert h.actions[-1].cause is Cause.MEMORY
    still = up(h, minutes(3), memory=90.0, kind=VerdictKind.MEMORY_FORECAST)
    assert not still.actions[-1].settled  # SSH answers, but the restart has not shown yet
    failed = up(still, minutes(SAFETY.verify_minutes), memory=90.0, kind=VerdictKind.MEMORY_FORECAST)
    assert failed.actions[-1].failed_at is not None and "memory did not fall (91% before, 90% after)" in failed.actions[-1].failure
    fell = up(h, minutes(3), memory=36.0)
    assert fell.actions[-1].verified_at == minutes(3)


# A day of events for one instance: ("down", minute), ("up", minute), ("act", minute), ("fail-call", minute).
Day = list[tuple[str, float]]


def chronic_leak(cycles: int, cycle: float = 35.0) -> Day:
    """Wedges ``cycle`` minutes after each boot; every reboot brings it back for ~30 minutes."""
    events: Day = []
    t = 0.0
    for _ in range(cycles):
        events += [("down", t + cycle), ("down", t + cycle + 1), ("act", t + cycle + 1)]
        events += [("up", t + cycle + 5), ("up", t + cycle + 20)]
        t += cycle + 1
    return events


def flapping(cycles: int) -> Day:
    """Back after each action, for two minutes."""
    events: Day = [("down", 0), ("act", 1)]
    t = 1.0
    for _ in range(cycles):
        events += [("up", t + 5), ("down", t + 7), ("down", t + 8), ("act", t + 8)]
        t += 8
    return events


def never_back(actions: int) -> Day:
    events: Day = [("down", 0)]
    t = 0.0
    for _ in range(actions):
        events += [("act", t + 1), ("down", t + 1 + SAFETY.verify_minutes)]
        t += 1 + SAFETY.verify_minutes
    return events


def replay(events: Day, inst=INST, memory_cause: bool = True) -> InstanceHistory:
    h = InstanceHistory(inst.instance_id)
    for what, at in events:
        if what == "down":
            h = down(h, minutes(at), inst)
        elif what == "up":
            h = up(h, minutes(at), memory=35.0)
        elif what == "act" and h.quarantined_at is None:
            context = ActionContext(verdict=memory_verdict(), exhaustion_minutes=35.0, growth_per_min=2.0) if memory_cause else None
            kind = SAFETY.ladder[min(h.rung, len(SAFETY.ladder) - 1)]  # the rung it stands on
            h = taken(h, minutes(at), kind=kind, context=context)
    return h


@pytest.mark.parametrize(
    "name, events, inst, memory_cause, rung, quarantined, reason",
    [
        ("a chronic leak over a day is recurrence, never quarantine", chronic_leak(40), INST, True, 0, False, ""),
        ("flapping: back for 2 minutes each time, climbs and is quarantined", flapping(5), INST, False, None, True,
         "held for less than 10 min"),
        ("a leak back 2 minutes after each reboot is a fast leak, not a flap", flapping(5), INST, True, 0, False, ""),
        ("never back, standalone: reboot and stop-start, then a human", never_back(3), INST, True, 2, True,
         "reboot, stop-start did not bring it back"),
        ("never back, in a group: the third rung replaces", never_back(2), ASG_INST, True, 2, False, ""),
    ],
)
def test_recurrence_flapping_and_failure_over_time(name, events, inst, memory_cause, rung, quarantined, reason):
    h = replay(events, inst, memory_cause)
    if rung is not None:
        assert h.rung == rung
    assert (h.quarantined_at is not None) is quarantined, h.quarantine_reason
    assert reason in h.quarantine_reason
    if quarantined:
        assert h.quarantine_reason.startswith("remediation failed")


def test_never_back_is_quarantined_after_at_most_the_ladders_rungs_plus_one():
    h = replay(never_back(6))
    assert h.quarantined_at is not None and len(h.actions) <= len(SAFETY.ladder) + 1


def test_chronic_after_two_verified_recoveries_from_memory_exhaustion():
    one = replay(chronic_leak(1))
    assert chronic(one, minutes(60), SETTINGS) is None
    two = replay(chronic_leak(2))
    found = chronic(two, minutes(100), SETTINGS)
    assert found is not None and found.cycles == 2 and found.since == minutes(36)
    assert found.exhaustion_minutes == pytest.approx(35.0) and found.growth_per_min == pytest.approx(2.0)
    assert two.chronic_since == minutes(36)
    assert "memory grows 2.0%/min after boot and runs out about 35 min after boot" in found.describe()


def test_ssh_only_recoveries_are_not_a_memory_condition():
    h = replay(chronic_leak(5), memory_cause=False)
    assert chronic(h, minutes(200), SETTINGS) is None and h.quarantined_at is None


def test_the_process_named_by_the_console_is_kept():
    h = taken(
        down(InstanceHistory(ID)),
        context=ActionContext(verdict=memory_verdict(), evidence={"console_cause": "oom", "process": "ruby", "process_rss_kb": 15310180}),
    )
    assert (h.actions[-1].process, h.actions[-1].process_rss_kb, h.actions[-1].cause) == ("ruby", 15310180, Cause.MEMORY)


def test_console_oom_alone_makes_the_cause_memory():
    h = taken(down(InstanceHistory(ID)), context=ActionContext(evidence={"console_cause": "oom"}))
    assert h.actions[-1].cause is Cause.MEMORY


def test_release_forgives_earlier_failures_and_restarts_the_ladder():
    h = replay(flapping(5), memory_cause=False)
    assert h.quarantined_at is not None
    released = release(h, minutes(60))
    assert (released.quarantined_at, released.rung, released.released_at) == (None, 0, minutes(60))
    again = down(down(released, minutes(61)), minutes(62))
    assert again.quarantined_at is None  # the failures before the release no longer count


def test_old_actions_are_pruned_but_the_last_one_is_kept():
    old = taken(InstanceHistory(ID), NOW - timedelta(days=3))
    h = up(replace(old, in_flight_key=None), NOW)
    assert len(h.actions) == 1 and h.cycle_started_at == NOW - timedelta(days=3)


@pytest.mark.parametrize(
    "stored_at, verified_at, late",
    [
        (0.2, 5, False),  # the first sweep after the action saw it back: known to within a sweep
        (0.2, 7.5, False),  # a sweep and a half: the schedule's jitter
        (0.2, 37, True),  # nothing stored it for half an hour (the sweeps in between died)
        (30, 35, False),  # a sweep saw it still down at 30 min (slow boot): back since then
    ],
)
def test_a_verification_long_after_the_last_sweep_that_stored_the_box_says_not_when_it_came_back(stored_at, verified_at, late):
    """Found by tests/unit/test_sweep_properties.py: sweeps that died for half an hour made the
    next verification look like a box back 5 minutes before its next exhaustion, and the
    chronic rule rebooted it the moment it came back. A late verification measures no cycle
    and no boot time."""
    acted_on = replace(taken(down(InstanceHistory(ID))), written_at=minutes(stored_at))
    h = up(acted_on, minutes(verified_at))
    assert h.actions[-1].verified_at == minutes(verified_at) and h.actions[-1].back_unknown is late
    again = taken(down(replace(h, written_at=minutes(verified_at)), minutes(verified_at + 30)), minutes(verified_at + 31), context=ActionContext(verdict=memory_verdict()))
    assert (again.actions[-1].up_minutes is None) is late


def test_an_action_whose_sweep_died_measures_no_cycle_even_when_verified_in_time():
    """Its intent was written and the process died: the reboot may never have run, and a box
    that still answered looks verified at once; the box then ran out on its old cycle, minutes
    later, which read as a 5-minute cycle (found by the sweep property test)."""
    h = recovered(down(InstanceHistory(ID)), "key-lost", ActionKind.REBOOT, NOW)
    assert h.in_flight_key == "key-lost" and h.actions[-1].back_unknown
    h = up(replace(h, written_at=NOW), minutes(5))
    assert h.actions[-1].verified_at == minutes(5) and h.actions[-1].back_unknown
    again = taken(down(h, minutes(9)), minutes(10), context=ActionContext(verdict=memory_verdict()))
    assert again.actions[-1].up_minutes is None
