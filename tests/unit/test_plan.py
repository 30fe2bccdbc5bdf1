"""Every safety rule of plan, table-driven, with a fixed clock and no AWS."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from orchestrator.config import Settings
from orchestrator.decide.plan import make_plan
from orchestrator.model import (
    ActionAttempt,
    ActionKind,
    BlockRule,
    Facts,
    InstanceHistory,
    ProbeOutcome,
    ScheduledEvent,
    VerdictKind,
)
from orchestrator.state.store import PauseState
from tests.builders import NOW, actions_at, confirmed, facts, instance, settings, verdict

DOWN = ProbeOutcome.BANNER_TIMEOUT  # the box's kernel answered, sshd did not: the path works
DROPPED = ProbeOutcome.CONNECT_TIMEOUT  # nothing answered: a network fault looks like this
EVIDENCE = ("memory 99% (critical >= 95% for 12 min)",)


@dataclass
class Fleet:
    """A fleet of ``size`` instances; ``down`` ones are unreachable (optionally corroborated)."""

    size: int = 10
    down: tuple[int, ...] = ()
    corroborated: tuple[int, ...] = ()
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")
    asg: dict[int, str] = field(default_factory=dict)
    tags: dict[int, dict[str, str]] = field(default_factory=dict)
    launched: dict[int, timedelta] = field(default_factory=dict)
    lifecycle: dict[int, str] = field(default_factory=dict)
    events: tuple[int, ...] = ()
    history: dict[int, dict[str, object]] = field(default_factory=dict)
    probe: ProbeOutcome = DOWN  # how the down ones fail: the box's kernel answered (banner timeout) or nothing did

    def build(self) -> tuple[dict[str, Facts], list, dict[str, InstanceHistory]]:
        all_facts: dict[str, Facts] = {}
        verdicts = []
        histories: dict[str, InstanceHistory] = {}
        for n in range(self.size):
            inst = instance(
                n,
                az=self.zones[n % len(self.zones)],
                tags=self.tags.get(n),
                asg=self.asg.get(n),
                launched=NOW - self.launched.get(n, timedelta(days=3)),
            )
            status = None
            if n in self.events:
                from tests.builders import status_ok

                status = status_ok(inst.instance_id, (ScheduledEvent("system-reboot", NOW + timedelta(days=2)),))
            f = facts(inst, self.probe if n in self.down else ProbeOutcome.OK, status=status, lifecycle=self.lifecycle.get(n))
            all_facts[inst.instance_id] = f
            if n in self.down:
                verdicts.append(verdict(f, VerdictKind.UNREACHABLE, EVIDENCE if n in self.corroborated else ()))
                histories[inst.instance_id] = confirmed(inst.instance_id, **self.history.get(n, {}))
            else:
                verdicts.append(verdict(f, VerdictKind.HEALTHY))
                if n in self.history:
                    histories[inst.instance_id] = InstanceHistory(inst.instance_id, **self.history[n])  # type: ignore[arg-type]
        return all_facts, verdicts, histories


def iid(n: int) -> str:
    return instance(n).instance_id


CASES = [
    # name, fleet, settings overrides, paused, expected actions {n: kind}, expected blocked {n: substring}
    ("one hung box is rebooted", Fleet(down=(3,)), {}, None, {3: ActionKind.REBOOT}, {}),
    ("opt-out tag is respected", Fleet(down=(3,), tags={3: {"orch:skip": "true"}}), {}, None, {}, {3: "opted out"}),
    ("not debounced yet", Fleet(down=(3,), history={3: {"failed_probes": 2}}), {}, None, {}, {3: "not confirmed yet: 2/3"}),
    ("failures too close together", Fleet(down=(3,), history={3: {"first_failure_at": NOW - timedelta(seconds=5)}}), {}, None, {}, {3: "over 5/20 s"}),
    ("young instance in launch grace", Fleet(down=(3,), launched={3: timedelta(minutes=2)}), {}, None, {}, {3: "launched 2 min ago"}),
    ("ASG member in Standby", Fleet(down=(3,), asg={3: "web"}, lifecycle={3: "Standby"}), {}, None, {}, {3: "lifecycle state is Standby"}),
    ("ASG member Pending:Wait", Fleet(down=(3,), asg={3: "web"}, lifecycle={3: "Pending:Wait"}), {}, None, {}, {3: "Pending:Wait"}),
    ("scheduled EC2 event", Fleet(down=(3,), events=(3,)), {}, None, {}, {3: "scheduled event system-reboot"}),
    ("quarantined", Fleet(down=(3,), history={3: {"quarantined_at": NOW - timedelta(hours=1), "quarantine_reason": "4 actions"}}), {}, None, {}, {3: "quarantined since"}),
    ("action in flight awaits verification", Fleet(down=(3,), history={3: {"in_flight_key": "k", "last_action_at": NOW - timedelta(minutes=2), "last_action": ActionKind.REBOOT}}), {}, None, {}, {3: "awaits verification"}),
    ("second rung is stop/start", Fleet(down=(3,), history={3: {"rung": 1, "actions": actions_at(NOW - timedelta(minutes=20))}}), {}, None, {3: ActionKind.STOP_START}, {}),
    ("third rung replaces an ASG member", Fleet(down=(3,), asg={3: "web"}, history={3: {"rung": 2}}), {"max_group_percent": 100}, None, {3: ActionKind.REPLACE}, {}),
    ("third rung never replaces a standalone box", Fleet(down=(3,), history={3: {"rung": 2}}), {}, None, {}, {3: "escalation reached replace, which orch does only for Auto Scaling members; a human must look"}),
    ("custom ladder: reboot then replace", Fleet(down=(3,), asg={3: "web"}, history={3: {"rung": 1}}), {"ladder": ["reboot", "replace"], "max_group_percent": 100}, None, {3: ActionKind.REPLACE}, {}),
    ("breaker: 3 of 10 uncorroborated > 20%", Fleet(down=(1, 2, 3), probe=DROPPED), {}, None, {}, {1: "too many unhealthy: 3 of 10", 2: "circuit breaker", 3: "circuit breaker"}),
    ("past the breaker, failures the kernel answered get one canary", Fleet(down=(1, 2, 3)), {}, None, {1: ActionKind.REBOOT},
     {2: "waiting for the canary i-", 3: "the rest follow only if it recovers"}),
    ("canary = 0: nothing past the breaker", Fleet(down=(1, 2, 3)), {"canary": 0}, None, {}, {n: "safety.canary = 0" for n in (1, 2, 3)}),
    ("a canary in flight holds the rest", Fleet(down=(1, 2, 3), history={1: {"in_flight_key": "k", "last_action_at": NOW - timedelta(minutes=2), "last_action": ActionKind.REBOOT, "actions": (ActionAttempt(NOW - timedelta(minutes=2), ActionKind.REBOOT, key="k", canary=True),)}}), {}, None,
     {}, {1: "awaits verification", 2: "waiting for the canary i-", 3: "waiting for the canary i-"}),
    ("a canary that recovered lets the rest follow at budget pace", Fleet(down=(1, 2, 3, 4, 5), history={0: {"actions": (ActionAttempt(NOW - timedelta(minutes=30), ActionKind.REBOOT, canary=True, verified_at=NOW - timedelta(minutes=20)),)}}), {}, None,
     {1: ActionKind.REBOOT, 2: ActionKind.REBOOT, 3: ActionKind.REBOOT}, {4: "max 3 actions per sweep", 5: "max 3 actions per sweep"}),
    ("a canary that did not recover stops the rest until released", Fleet(down=(1, 2, 3), history={1: {"rung": 1, "actions": (ActionAttempt(NOW - timedelta(hours=9), ActionKind.REBOOT, canary=True, failed_at=NOW - timedelta(hours=8), failure="SSH still failing 30 min after it (sshd refuses)"),)}}), {}, None,
     {}, {n: "the canary i-" for n in (1, 2, 3)}),
    ("breaker ignores corroborated failures", Fleet(down=(1, 2, 3), corroborated=(1, 2, 3)), {}, None, {1: ActionKind.REBOOT, 2: ActionKind.REBOOT, 3: ActionKind.REBOOT}, {}),
    ("breaker blocks only the uncorroborated", Fleet(size=20, down=(1, 2, 3, 5, 7, 9, 11), corroborated=(1, 2, 3), zones=("a", "b", "c", "d", "e"), probe=DROPPED), {"max_unhealthy": "3", "max_actions_per_sweep": 5}, None,
     {1: ActionKind.REBOOT, 2: ActionKind.REBOOT, 3: ActionKind.REBOOT}, {5: "too many unhealthy: 4 of 20", 7: "circuit breaker", 9: "circuit breaker", 11: "circuit breaker"}),
    ("every probe failed: prober suspect (gardener mcm #482)", Fleet(size=4, down=(0, 1, 2, 3), corroborated=(0, 1, 2, 3), probe=DROPPED), {"max_unhealthy": "100%"}, None, {}, {n: "every probe of this sweep failed without an answer from any box (4/4" for n in range(4)}),
    ("every probe failed, but the kernels answered: not the prober", Fleet(size=4, down=(0, 1, 2, 3), corroborated=(0, 1, 2, 3)), {"max_unhealthy": "100%"}, None, {n: ActionKind.REBOOT for n in range(3)}, {3: "max 3 actions per sweep"}),
    ("one AZ mostly unreachable: network fault there", Fleet(down=(0, 2, 4), probe=DROPPED), {"max_unhealthy": "50%"}, None, {}, {n: "3 of 5 instances unreachable in availability zone us-east-1a" for n in (0, 2, 4)}),
    ("the AZ rule counts only failures nothing answered", Fleet(down=(0, 2, 4)), {"max_unhealthy": "50%"}, None, {0: ActionKind.REBOOT, 2: ActionKind.REBOOT, 4: ActionKind.REBOOT}, {}),
    ("AZ rule spares corroborated instances", Fleet(down=(0, 2, 4), corroborated=(0, 2, 4)), {"max_unhealthy": "50%"}, None, {0: ActionKind.REBOOT, 2: ActionKind.REBOOT, 4: ActionKind.REBOOT}, {}),
    ("per-sweep budget", Fleet(size=40, down=(1, 6, 11, 16, 21), zones=("a", "b", "c", "d")), {}, None,
     {1: ActionKind.REBOOT, 6: ActionKind.REBOOT, 11: ActionKind.REBOOT}, {16: "max 3 actions per sweep", 21: "max 3 actions per sweep"}),
    ("per-hour budget counts earlier actions", Fleet(down=(3,), history={0: {"actions": actions_at(*(NOW - timedelta(minutes=m) for m in range(20, 0, -1)))}}), {}, None, {}, {3: "max 20 actions per hour"}),
    ("per-group cap: 10% of 10 in service = 1", Fleet(size=10, down=(2, 4), asg={n: "web" for n in range(10)}, zones=("a", "b", "c", "d", "e")), {}, None,
     {2: ActionKind.REBOOT}, {4: "already has 1 action(s) in flight (limit 1: 10% of 10 in service)"}),
    ("in-flight actions count toward the group cap (openshift mao #902)", Fleet(size=10, down=(4,), asg={n: "web" for n in range(10)}, history={2: {"in_flight_key": "k", "last_action_at": NOW - timedelta(minutes=1)}}), {}, None,
     {}, {4: "already has 1 action(s) in flight"}),
    ("pause stops everything", Fleet(down=(3,)), {}, PauseState(NOW - timedelta(hours=1), "alice", "maintenance"), {}, {3: "paused since 2026-01-01 11:00 UTC by alice: maintenance"}),
    ("zero actions allowed", Fleet(down=(3,)), {"max_actions_per_sweep": 0}, None, {}, {3: "max 0 actions per sweep"}),
]


@pytest.mark.parametrize("name, fleet, overrides, paused, want_actions, want_blocked", CASES, ids=[c[0] for c in CASES])
def test_plan_rules(name, fleet, overrides, paused, want_actions, want_blocked):
    all_facts, verdicts, histories = fleet.build()
    plan = make_plan(all_facts, verdicts, histories, settings(**overrides), NOW, paused=paused)
    assert {a.instance_id: a.kind for a in plan.actions} == {iid(n): k for n, k in want_actions.items()}
    blocked = {b.instance_id: b.why for b in plan.blocked}
    assert set(blocked) == {iid(n) for n in want_blocked}
    for n, fragment in want_blocked.items():
        assert fragment in blocked[iid(n)], blocked[iid(n)]


def test_healthy_fleet_plans_nothing():
    all_facts, verdicts, histories = Fleet(size=50).build()
    plan = make_plan(all_facts, verdicts, histories, settings(), NOW)
    assert plan.actions == () and plan.blocked == () and plan.notes == ()


def test_unknown_and_impaired_verdicts_never_act():
    all_facts, _, histories = Fleet(size=4, down=(0, 1, 2, 3)).build()
    ids = list(all_facts)
    verdicts = [
        verdict(all_facts[ids[0]], VerdictKind.UNKNOWN),
        verdict(all_facts[ids[1]], VerdictKind.AWS_IMPAIRED),
        verdict(all_facts[ids[2]], VerdictKind.METRICS_STALE),
        verdict(all_facts[ids[3]], VerdictKind.MEMORY_CRITICAL),
    ]
    plan = make_plan(all_facts, verdicts, histories, settings(), NOW)
    assert plan.actions == () and plan.blocked == ()


def test_breaker_says_the_numbers_in_a_note():
    all_facts, verdicts, histories = Fleet(down=(1, 2, 3)).build()
    plan = make_plan(all_facts, verdicts, histories, settings(), NOW)
    assert any("too many unhealthy: 3 of 10" in note and "limit 20% = 2" in note for note in plan.notes)


def test_longest_failing_is_served_first_when_budget_is_short():
    fleet = Fleet(size=40, down=(1, 6, 11), zones=("a", "b", "c", "d"),
                  history={11: {"first_failure_at": NOW - timedelta(hours=2)}, 6: {"first_failure_at": NOW - timedelta(hours=1)}})
    all_facts, verdicts, histories = fleet.build()
    plan = make_plan(all_facts, verdicts, histories, settings(max_actions_per_sweep=2), NOW)
    assert [a.instance_id for a in plan.actions] == [iid(11), iid(6)]


def test_corroborated_action_names_its_evidence():
    all_facts, verdicts, histories = Fleet(down=(3,), corroborated=(3,)).build()
    plan = make_plan(all_facts, verdicts, histories, settings(), NOW)
    assert "corroborated by the agent's memory metric (host-side" in plan.actions[0].reason
    assert plan.actions[0].reason.endswith(": memory 99% (critical >= 95% for 12 min)")


def memory_fleet(kind: VerdictKind, ssm_online: bool | None = None, minutes: float = 5.0):
    from dataclasses import replace as dc_replace

    all_facts, verdicts, histories = Fleet(size=10).build()
    target = iid(3)
    all_facts[target] = dc_replace(all_facts[target], ssm_online=ssm_online)
    text = (f"memory 90% rising 1.4%/min: 97% in ~{minutes:.0f} min",)
    verdicts = [verdict(all_facts[target], kind, text, minutes) if v.instance_id == target else v for v in verdicts]
    return all_facts, verdicts, histories


@pytest.mark.parametrize(
    "proactive, kind, online, want_action, want_blocked, want_note",
    [
        ("off", VerdictKind.MEMORY_FORECAST, None, None, None, None),
        ("notify", VerdictKind.MEMORY_FORECAST, None, None, None, "memory.proactive = notify"),
        ("reboot", VerdictKind.MEMORY_FORECAST, None, ActionKind.REBOOT, None, None),
        ("reboot", VerdictKind.MEMORY_CRITICAL, None, ActionKind.REBOOT, None, None),
        ("ssm", VerdictKind.MEMORY_FORECAST, True, ActionKind.RUN_COMMAND, None, None),
        ("ssm", VerdictKind.MEMORY_FORECAST, False, None, "SSM agent is not online", None),
    ],
)
def test_proactive_memory_action(proactive, kind, online, want_action, want_blocked, want_note):
    all_facts, verdicts, histories = memory_fleet(kind, online)
    memory = {"proactive": proactive, "ssm_commands": ["systemctl restart crawler"]}
    s = Settings.model_validate({"memory": memory})
    plan = make_plan(all_facts, verdicts, histories, s, NOW)
    assert [a.kind for a in plan.actions] == ([want_action] if want_action else [])
    assert [b.why.split(":")[0] for b in plan.blocked] == ([want_blocked] if want_blocked else [])
    assert any(want_note in n for n in plan.notes) if want_note else plan.notes == ()


def test_proactive_actions_respect_opt_out_and_budgets():
    all_facts, verdicts, histories = memory_fleet(VerdictKind.MEMORY_FORECAST)
    s = Settings.model_validate({"memory": {"proactive": "reboot"}, "safety": {"max_actions_per_sweep": 0}})
    plan = make_plan(all_facts, verdicts, histories, s, NOW)
    assert plan.actions == () and "max 0 actions per sweep" in plan.blocked[0].why


def test_proactive_action_waits_for_the_lead_not_the_horizon():
    """A fast leak forecast 20 minutes out still has most of its cycle ahead of it."""
    all_facts, verdicts, histories = memory_fleet(VerdictKind.MEMORY_FORECAST, minutes=20.0)
    s = Settings.model_validate({"memory": {"proactive": "reboot"}})
    assert make_plan(all_facts, verdicts, histories, s, NOW).actions == ()
    later = memory_fleet(VerdictKind.MEMORY_FORECAST, minutes=s.lead_minutes())
    assert [a.kind for a in make_plan(*later, s, NOW).actions] == [ActionKind.REBOOT]


def chronic_history(instance_id: str) -> InstanceHistory:
    """Two verified recoveries from memory exhaustion today: a chronic leak."""
    from orchestrator.model import ActionAttempt, Cause

    def cycle(start_minutes_ago: int) -> ActionAttempt:
        at = NOW - timedelta(minutes=start_minutes_ago)
        return ActionAttempt(
            at=at, kind=ActionKind.REBOOT, cause=Cause.MEMORY, verified_at=at + timedelta(minutes=5),
            recurred_at=at + timedelta(minutes=30), cycle_minutes=33.0, slope_per_min=2.1, process="ruby", process_rss_kb=15310180,
        )

    return InstanceHistory(instance_id, actions=(cycle(70), cycle(35)), chronic_since=NOW - timedelta(minutes=70))


@pytest.mark.parametrize(
    "chronic_settings, memory_settings, online, want",
    [
        ({}, {}, None, ActionKind.REBOOT),  # the default: act ahead of the next exhaustion, by reboot
        ({}, {"ssm_commands": ["systemctl restart crawler"]}, True, ActionKind.RUN_COMMAND),  # keeps the box
        ({}, {"ssm_commands": ["systemctl restart crawler"]}, False, ActionKind.REBOOT),  # SSM cannot reach it
        ({"action": "off"}, {}, None, None),
    ],
)
def test_chronic_instance_is_acted_on_ahead_of_exhaustion(chronic_settings, memory_settings, online, want):
    all_facts, verdicts, histories = memory_fleet(VerdictKind.MEMORY_FORECAST, online, minutes=4.0)
    histories[iid(3)] = chronic_history(iid(3))
    s = Settings.model_validate({"chronic": chronic_settings, "memory": memory_settings})
    plan = make_plan(all_facts, verdicts, histories, s, NOW)
    assert [a.kind for a in plan.actions] == ([want] if want else [])
    if want:
        reason = plan.actions[0].reason
        assert reason.startswith("chronic memory exhaustion: 2 recoveries since 2026-01-01 10:50 UTC")
        assert "memory grows 2.1%/min after boot and runs out about 33 min after boot" in reason
        assert "the kernel killed ruby at 14.6 GiB" in reason and "acting 7.5 min ahead" in reason


def test_memory_breaker_holds_a_fleet_that_shifts_together_but_not_its_chronic_boxes():
    all_facts, verdicts, histories = Fleet(size=10).build()
    critical = {iid(n) for n in range(6)}
    verdicts = [verdict(all_facts[v.instance_id], VerdictKind.MEMORY_CRITICAL, ("memory 96.5%",)) if v.instance_id in critical else v for v in verdicts]
    histories[iid(0)] = chronic_history(iid(0))
    s = Settings.model_validate({"memory": {"proactive": "reboot"}})
    plan = make_plan(all_facts, verdicts, histories, s, NOW)
    assert [a.instance_id for a in plan.actions] == [iid(0)]
    assert {b.instance_id for b in plan.blocked} == critical - {iid(0)}
    assert all("a fleet-wide shift is not 5 simultaneous leaks" in b.why for b in plan.blocked)


def silent_fleet(size: int, down: set[int], silent: set[int], zones: tuple[str, ...]):
    """Unreachable boxes whose agents fell silent at the top, and other silent agents beside them."""
    from orchestrator.model import Corroboration, Verdict

    all_facts: dict[str, Facts] = {}
    verdicts = []
    histories: dict[str, InstanceHistory] = {}
    for n in range(size):
        inst = instance(n, az=zones[n % len(zones)])
        f = facts(inst, DOWN if n in down else ProbeOutcome.OK)
        all_facts[inst.instance_id] = f
        if n in down:
            verdicts.append(Verdict(inst.instance_id, VerdictKind.UNREACHABLE, ("down",), evidence=("memory metric silent",),
                                    corroboration=Corroboration.SILENT_AT_TOP, agent_silent=True))
            histories[inst.instance_id] = confirmed(inst.instance_id)
        else:
            verdicts.append(Verdict(inst.instance_id, VerdictKind.METRICS_STALE if n in silent else VerdictKind.HEALTHY, ("x",),
                                    agent_silent=n in silent))
    return all_facts, verdicts, histories


@pytest.mark.parametrize(
    "name, down, silent, zones, want_actions, want_note",
    [
        ("the incident: three starved at the top, nothing else quiet", {1, 5, 9}, set(), ("a", "b", "c"), 3, None),
        ("a dark AZ: SSH and uploads cut together", {0, 3, 6, 9}, {12, 15}, ("a", "b", "c"), 0, "agents silent together in availability zone a"),
        ("the whole fleet's agents silent, 4 of 10 unreachable", {1, 3, 5, 7}, {0, 2, 4, 6, 8, 9}, ("a", "b"), 0, "agents silent together in the fleet"),
    ],
)
def test_silence_corroborates_only_when_it_is_not_a_place_going_quiet(name, down, silent, zones, want_actions, want_note):
    size = 18 if len(zones) == 3 else 10
    all_facts, verdicts, histories = silent_fleet(size, down, silent, zones)
    plan = make_plan(all_facts, verdicts, histories, settings(max_actions_per_sweep=5), NOW)
    assert len(plan.actions) == want_actions, plan.blocked
    if want_note:
        assert any(want_note in n for n in plan.notes), plan.notes
        assert len(plan.blocked) == len(down)


RULE_CASES = [
    # name, fleet, settings overrides, paused, the rule of instance 3's block
    ("opted out", Fleet(down=(3,), tags={3: {"orch:skip": "true"}}), {}, None, BlockRule.OPT_OUT),
    ("in flight", Fleet(down=(3,), history={3: {"in_flight_key": "k", "last_action": ActionKind.REBOOT, "last_action_at": NOW}}), {}, None,
     BlockRule.IN_FLIGHT),
    ("not confirmed yet", Fleet(down=(3,), history={3: {"failed_probes": 2}}), {}, None, BlockRule.DEBOUNCE),
    ("launch grace", Fleet(down=(3,), launched={3: timedelta(minutes=2)}), {}, None, BlockRule.LAUNCH_GRACE),
    ("scheduled event", Fleet(down=(3,), events=(3,)), {}, None, BlockRule.SCHEDULED_EVENT),
    ("quarantined", Fleet(down=(3,), history={3: {"quarantined_at": NOW, "quarantine_reason": "4 actions"}}), {}, None, BlockRule.QUARANTINE),
    ("budget", Fleet(down=(3,)), {"max_actions_per_sweep": 0}, None, BlockRule.BUDGET_SWEEP),
    ("circuit breaker", Fleet(size=10, down=(1, 2, 3, 4), probe=DROPPED), {"max_unhealthy": "1"}, None, BlockRule.BREAKER),
    ("waiting for the canary", Fleet(size=10, down=(1, 2, 3, 4)), {"max_unhealthy": "1"}, None, BlockRule.CANARY),
    ("paused", Fleet(down=(3,)), {}, PauseState(NOW, "ops@host", "freeze"), BlockRule.PAUSED),
    ("replace on a standalone instance", Fleet(down=(3,), history={3: {"rung": 2}}), {}, None, BlockRule.LADDER),
]


@pytest.mark.parametrize("name, fleet, overrides, paused, rule", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_each_block_says_what_kind_of_rule_it_is(name, fleet, overrides, paused, rule):
    all_facts, verdicts, histories = fleet.build()
    plan = make_plan(all_facts, verdicts, histories, settings(**overrides), NOW, paused=paused)
    (blocked,) = [b for b in plan.blocked if b.instance_id == iid(3)]
    assert blocked.rule is rule, blocked.why
