"""Debounce, verification, escalation and quarantine, folded sweep by sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.config import SafetySettings
from orchestrator.history import acted, observe, release
from orchestrator.model import (
    Action,
    ActionKind,
    ActionOutcome,
    InstanceHistory,
    OutcomeStatus,
    ProbeOutcome,
    VerdictKind,
)
from tests.builders import NOW, facts, instance, verdict

SAFETY = SafetySettings()
INST = instance(1)
ID = INST.instance_id
DOWN = facts(INST, ProbeOutcome.BANNER_TIMEOUT)
UP = facts(INST, ProbeOutcome.OK)


def down(prev: InstanceHistory, at=NOW) -> InstanceHistory:
    return observe(prev, DOWN, verdict(DOWN, VerdictKind.UNREACHABLE), at, SAFETY)


def up(prev: InstanceHistory, at=NOW) -> InstanceHistory:
    return observe(prev, UP, verdict(UP, VerdictKind.HEALTHY), at, SAFETY)


def reboot_taken(prev: InstanceHistory, at=NOW, status=OutcomeStatus.DONE) -> InstanceHistory:
    outcome = ActionOutcome(Action(ID, ActionKind.REBOOT, "r"), status)
    return acted(prev, outcome, "key-1", at)


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
    assert observe(prev, DOWN, verdict(DOWN, VerdictKind.UNKNOWN), NOW, SAFETY) == prev


@pytest.mark.parametrize("status, taken", [(OutcomeStatus.DONE, True), (OutcomeStatus.UNCERTAIN, True),
                                           (OutcomeStatus.FAILED, False), (OutcomeStatus.SKIPPED, False)])
def test_only_taken_actions_go_in_flight(status, taken):
    h = reboot_taken(down(InstanceHistory(ID)), status=status)
    assert (h.in_flight_key == "key-1") is taken
    assert (len(h.attempts) == 1) is taken


def test_healthy_after_action_verifies_it():
    h = up(reboot_taken(down(InstanceHistory(ID))), NOW + timedelta(minutes=5))
    assert h.in_flight_key is None and h.rung == 0


def test_still_down_within_verify_window_stays_in_flight():
    h = down(reboot_taken(InstanceHistory(ID)), NOW + timedelta(minutes=SAFETY.verify_minutes - 1))
    assert h.in_flight_key == "key-1" and h.rung == 0


def test_still_down_after_verify_window_escalates_one_rung():
    h = down(reboot_taken(InstanceHistory(ID)), NOW + timedelta(minutes=SAFETY.verify_minutes))
    assert h.in_flight_key is None and h.rung == 1 and h.quarantined_at is None


def test_ladder_resets_after_staying_healthy():
    h = InstanceHistory(ID, rung=2)
    h = up(h, NOW)
    assert h.rung == 2  # healthy for a moment proves little
    h = up(h, NOW + timedelta(minutes=SAFETY.reset_minutes))
    assert h.rung == 0


def test_loop_ends_in_quarantine_not_forever():
    """pfnet node-operation-controller #31: remediation must not loop forever."""
    h = InstanceHistory(ID)
    t = NOW
    for _ in range(SAFETY.quarantine_attempts):
        h = reboot_taken(down(h, t), t)
        t += timedelta(minutes=SAFETY.verify_minutes)
        h = up(h, t)  # comes back for a while, then dies again
        t += timedelta(minutes=1)
    h = down(h, t)
    assert h.quarantined_at == t and "4 actions in 6 h" in h.quarantine_reason


def test_exhausted_ladder_quarantines():
    h = down(InstanceHistory(ID, rung=len(SAFETY.ladder)))
    assert h.quarantined_at == NOW and h.quarantine_reason == "escalation ladder exhausted"


def test_release_clears_quarantine_and_ladder():
    h = release(InstanceHistory(ID, rung=3, quarantined_at=NOW, quarantine_reason="x", attempts=(NOW,)))
    assert (h.quarantined_at, h.rung, h.attempts) == (None, 0, ())
