"""Alerts on change, not on every sweep: a table of sweeps and what each one tells."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.alerting.news import AlertState, Item, decide, items, pattern_item
from orchestrator.decide.patterns import ChronicPattern
from orchestrator.model import Action, ActionKind, ActionOutcome, Blocked, BlockRule, OutcomeStatus, Plan
from tests.builders import NOW

REMIND = timedelta(hours=24)
OPT_OUT = Blocked("i-skip", ActionKind.REBOOT, "opted out by tag orch:skip", BlockRule.OPT_OUT)
IN_FLIGHT = Blocked("i-1", ActionKind.REBOOT, "reboot at 12:00 awaits verification", BlockRule.IN_FLIGHT)
BREAKER = Blocked("i-2", ActionKind.REBOOT, "too many unhealthy: 4 of 10 ...; circuit breaker open", BlockRule.BREAKER)
BREAKER_TOO = Blocked("i-3", ActionKind.REBOOT, "too many unhealthy: 4 of 10 ...; circuit breaker open", BlockRule.BREAKER)
NO_RUNG = Blocked("i-4", ActionKind.REPLACE, "no rung of the escalation ladder left", BlockRule.LADDER)


def pattern(members: int, minutes: float = 33.0) -> ChronicPattern:
    return ChronicPattern(
        shared=(("ami", "ami-0abc"), ("launch template", "lt-1 v12")),
        members=tuple(f"i-{n}" for n in range(members)),
        alike=8,
        since=NOW - timedelta(hours=3),
        exhaustion_minutes=minutes,
        growth_per_min=2.1,
        process="ruby",
        process_rss_kb=15310180,
        actions_24h=41,
        ahead_24h=37,
    )


def reboot(instance_id: str, status: OutcomeStatus = OutcomeStatus.DONE) -> tuple[Action, ActionOutcome]:
    action = Action(instance_id, ActionKind.REBOOT, "SSH banner timeout")
    return action, ActionOutcome(action, status, "")


def sweep_items(blocked=(), acted=(), patterns=(), chronic=frozenset(), quarantined=None, dry_run=False) -> list[Item]:
    plan = Plan(actions=tuple(a for a, _ in acted), blocked=tuple(blocked))
    lines = {a.instance_id: f"{a.instance_id} rebooted" for a, _ in acted}
    return items(plan, [o for _, o in acted], patterns, frozenset(chronic), quarantined or {}, lines, False, dry_run)


def run(sweeps: list[list[Item]], every: timedelta = timedelta(minutes=5)) -> list[tuple[int, int, int]]:
    """(new, reminders, ended) for each sweep in turn."""
    state = AlertState()
    told = []
    for n, found in enumerate(sweeps):
        decision = decide(found, state, NOW + n * every, REMIND)
        state = decision.state
        told.append((len(decision.new), len(decision.reminders), len(decision.ended)))
    return told


CASES = [
    ("an opted-out sick box is never news", [sweep_items(blocked=[OPT_OUT])] * 288, [(0, 0, 0)] * 288),
    ("in flight, awaiting verification, is not news", [sweep_items(blocked=[IN_FLIGHT])] * 3, [(0, 0, 0)] * 3),
    ("every action on an ordinary box is news", [sweep_items(acted=[reboot("i-1")]), sweep_items(acted=[reboot("i-2")])], [(1, 0, 0), (1, 0, 0)]),
    (
        "the breaker: told when it opens (once for all it holds), and when it closes",
        [sweep_items(blocked=[BREAKER, BREAKER_TOO])] * 3 + [sweep_items()],
        [(1, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 1)],
    ),
    (
        "a chronic pattern: told once, not per action on its members",
        [sweep_items(patterns=[pattern(7)], acted=[reboot("i-1")], chronic={"i-1"})] * 5,
        [(1, 0, 0)] + [(0, 0, 0)] * 4,
    ),
    (
        "a chronic pattern is told again when it changes",
        [sweep_items(patterns=[pattern(7)]), sweep_items(patterns=[pattern(7, 34.0)]), sweep_items(patterns=[pattern(8)])],
        [(1, 0, 0), (0, 0, 0), (1, 0, 0)],
    ),
    (
        "a chronic instance's failed action is news even so",
        [sweep_items(patterns=[pattern(7)], acted=[reboot("i-1", OutcomeStatus.FAILED)], chronic={"i-1"})],
        [(2, 0, 0)],
    ),
    ("a block that needs a human: once", [sweep_items(blocked=[NO_RUNG])] * 3, [(1, 0, 0), (0, 0, 0), (0, 0, 0)]),
    (
        "a quarantine: once, then its reminder a day later",
        [sweep_items(quarantined={"i-9": "remediation failed"})] * 289,
        [(1, 0, 0)] + [(0, 0, 0)] * 287 + [(0, 1, 0)],
    ),
    (
        "a dry run's would-be action: once while it stays planned",
        [sweep_items(acted=[(Action("i-1", ActionKind.REBOOT, "r"), ActionOutcome(Action("i-1", ActionKind.REBOOT, "r"), OutcomeStatus.DRY_RUN))], dry_run=True)] * 3,
        [(1, 0, 0), (0, 0, 0), (0, 0, 0)],
    ),
]


@pytest.mark.parametrize("name, sweeps, want", CASES, ids=[c[0] for c in CASES])
def test_what_each_sweep_tells(name: str, sweeps: list[list[Item]], want: list[tuple[int, int, int]]) -> None:
    assert run(sweeps) == want


def test_a_day_of_a_chronic_fleet_is_one_message_and_its_reminder():
    day = [sweep_items(patterns=[pattern(7)], acted=[reboot(f"i-{n % 7}")], chronic={f"i-{n}" for n in range(7)}) for n in range(289)]
    told = run(day)
    assert sum(new + reminded for new, reminded, _ in told) == 2  # the first sweep, and 24 h later


def test_the_chronic_text_says_what_the_issue_asks():
    text = pattern_item(pattern(7), ssm_configured=False).text
    assert text == (
        "chronic memory leak on 7 of 8 instances (ami-0abc, launch template lt-1 v12, since 2026-01-01 09:00 UTC): "
        "memory grows 2.1%/min after boot and runs out about 33 minutes after boot; the kernel killed ruby at 14.6 GiB; "
        "orch acted on them 41 times in 24 h, 37 of them ahead of exhaustion. "
        "Reboots treat the symptom: fix the leak, or `orch guard apply --chronic` would restart ruby in seconds instead."
    )


def test_the_chronic_text_proposes_the_guard_with_its_numbers():
    from dataclasses import replace

    lost = replace(pattern(7), ssh_lost_minutes=2.6)
    text = pattern_item(lost, ssm_configured=True).text
    assert "orch acted on them 41 times in 24 h, 37 of them ahead of exhaustion, about 3 min of SSH lost each." in text
    assert text.endswith("`orch guard apply --chronic` would restart ruby in seconds instead.")
    unnamed = pattern_item(replace(pattern(7), process=""), ssm_configured=False).text
    assert unnamed.endswith("`orch guard apply --chronic --process NAME` (or memory.ssm_commands) would restart the service instead.")


def test_state_round_trips_through_the_store_shape():
    state = decide(sweep_items(blocked=[NO_RUNG], quarantined={"i-9": "x"}), AlertState(), NOW, REMIND).state
    assert AlertState.from_book(state.to_book("scope")) == state


@pytest.mark.parametrize(
    ("spans", "expected"),
    [([3.0, 5.0, 4.0], 4.0), ([], None), ([2.0, None], 2.0)],  # None: not verified, left out
)
def test_ssh_lost_is_the_median_from_action_to_ssh_back(spans, expected):
    from orchestrator.decide.patterns import _ssh_lost_minutes
    from orchestrator.model import ActionAttempt

    actions = [ActionAttempt(at=NOW, kind=ActionKind.REBOOT, verified_at=None if s is None else NOW + timedelta(minutes=s)) for s in spans]
    assert _ssh_lost_minutes(actions) == expected
