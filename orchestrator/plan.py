"""Plan: from verdicts to a list of actions and of actions refused, each with why.

Pure: facts, verdicts, history, settings, pause and ``now`` in; a ``Plan`` out. All
safety lives here so that every rule is a table-driven test, and so that dry run and
heal decide exactly the same thing. The order of the rules matters and is the order
an operator reads them in: fleet-wide stops first (pause, a broken prober, too many
unhealthy, a faulty AZ), then facts about the instance, then budgets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping

from orchestrator.config import Settings
from orchestrator.history import recent_attempts
from orchestrator.model import (
    Action,
    ActionKind,
    Blocked,
    BlockRule,
    Facts,
    InstanceHistory,
    Plan,
    ProbeOutcome,
    Verdict,
    VerdictKind,
)
from orchestrator.state.store import PauseState

ACTIONABLE = frozenset({VerdictKind.UNREACHABLE})
IN_SERVICE = "InService"


@dataclass(frozen=True, slots=True)
class Candidate:
    facts: Facts
    verdict: Verdict
    history: InstanceHistory
    kind: ActionKind

    @property
    def instance_id(self) -> str:
        return self.facts.instance.instance_id

    @property
    def corroborated(self) -> bool:
        return bool(self.verdict.evidence)


Gate = Callable[[Candidate, Settings, datetime], str | None]


def gate_opt_out(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if settings.opt_out_tag in c.facts.instance.tags:
        return f"opted out by tag {settings.opt_out_tag}"
    return None


def gate_running(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.facts.instance.state != "running":
        return f"instance is {c.facts.instance.state}, not running"
    return None


def gate_quarantine(c: Candidate, settings: Settings, now: datetime) -> str | None:
    h = c.history
    if h.quarantined_at is not None:
        return f"quarantined since {h.quarantined_at:%Y-%m-%d %H:%M} UTC ({h.quarantine_reason}); a human releases it with `orch release {c.instance_id}`"
    return None


def gate_in_flight(c: Candidate, settings: Settings, now: datetime) -> str | None:
    h = c.history
    if h.in_flight_key is not None and h.last_action_at is not None:
        due = h.last_action_at + timedelta(minutes=settings.safety.verify_minutes)
        action = h.last_action.value if h.last_action else "action"
        return f"{action} at {h.last_action_at:%H:%M:%S} UTC awaits verification until {due:%H:%M:%S} UTC"
    return None


def gate_debounce(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.verdict.kind is not VerdictKind.UNREACHABLE:
        return None  # memory verdicts are debounced by their own duration and trend rules
    s = settings.safety
    h = c.history
    span = (now - h.first_failure_at).total_seconds() if h.first_failure_at else 0.0
    if h.failed_probes < s.debounce_probes or span < s.debounce_seconds:
        return (
            f"not confirmed yet: {h.failed_probes}/{s.debounce_probes} failed probes over "
            f"{span:.0f}/{s.debounce_seconds:.0f} s"
        )
    return None


def gate_launch_grace(c: Candidate, settings: Settings, now: datetime) -> str | None:
    age = now - c.facts.instance.launch_time
    grace = timedelta(minutes=settings.safety.launch_grace_minutes)
    if age < grace:
        return f"launched {age.total_seconds() / 60:.0f} min ago (grace {settings.safety.launch_grace_minutes:g} min)"
    return None


def gate_lifecycle(c: Candidate, settings: Settings, now: datetime) -> str | None:
    state = c.facts.lifecycle_state
    if c.facts.instance.asg_name and state is not None and state != IN_SERVICE:
        return f"Auto Scaling lifecycle state is {state}, not {IN_SERVICE}"
    return None


def gate_scheduled_event(c: Candidate, settings: Settings, now: datetime) -> str | None:
    status = c.facts.status
    if status is not None and status.events:
        event = status.events[0]
        when = f" on {event.not_before:%Y-%m-%d %H:%M} UTC" if event.not_before else ""
        return f"EC2 scheduled event {event.code}{when}: left to AWS"
    return None


def gate_replace_possible(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.kind is ActionKind.REPLACE and not c.facts.instance.asg_name:
        return "escalation reached replace, which orch does only for Auto Scaling members; a human must look"
    return None


def gate_ssm_online(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.kind is ActionKind.RUN_COMMAND and c.facts.ssm_online is not True:
        return "SSM agent is not online: the command could not run"
    return None


PER_INSTANCE_GATES: tuple[Gate, ...] = (
    gate_opt_out,
    gate_running,
    gate_quarantine,
    gate_in_flight,
    gate_scheduled_event,
    gate_lifecycle,
    gate_launch_grace,
    gate_debounce,
    gate_replace_possible,
    gate_ssm_online,
)


# What kind of rule each gate is (decides `orch heal`'s exit code); a gate not listed
# counts as needing a human, the safe default for a rule added later.
GATE_RULES: Mapping[Gate, BlockRule] = {
    gate_opt_out: BlockRule.OPTED_OUT,
    gate_running: BlockRule.WAITING,
    gate_quarantine: BlockRule.QUARANTINED,
    gate_in_flight: BlockRule.IN_FLIGHT,
    gate_scheduled_event: BlockRule.WAITING,
    gate_lifecycle: BlockRule.WAITING,
    gate_launch_grace: BlockRule.WAITING,
    gate_debounce: BlockRule.WAITING,
}


def first_refusal(c: Candidate, settings: Settings, now: datetime) -> tuple[BlockRule, str | None]:
    for gate in PER_INSTANCE_GATES:
        reason = gate(c, settings, now)
        if reason:
            return GATE_RULES.get(gate, BlockRule.NEEDS_HUMAN), reason
    return BlockRule.NEEDS_HUMAN, None


def ladder_action(history: InstanceHistory, settings: Settings) -> ActionKind:
    ladder = settings.safety.ladder
    return ladder[min(history.rung, len(ladder) - 1)]


MEMORY_TROUBLE = frozenset({VerdictKind.MEMORY_FORECAST, VerdictKind.MEMORY_CRITICAL})
PROACTIVE_ACTION = {"ssm": ActionKind.RUN_COMMAND, "reboot": ActionKind.REBOOT}


def actionable(settings: Settings) -> frozenset[VerdictKind]:
    """Unreachable always; memory trouble too when proactive action is configured."""
    return ACTIONABLE | MEMORY_TROUBLE if settings.memory.proactive in PROACTIVE_ACTION else ACTIONABLE


def candidates(
    facts: Mapping[str, Facts], verdicts: Iterable[Verdict], histories: Mapping[str, InstanceHistory], settings: Settings
) -> list[Candidate]:
    found = []
    wanted = actionable(settings)
    for verdict in verdicts:
        if verdict.kind not in wanted:
            continue
        history = histories.get(verdict.instance_id) or InstanceHistory(verdict.instance_id)
        kind = PROACTIVE_ACTION[settings.memory.proactive] if verdict.kind in MEMORY_TROUBLE else ladder_action(history, settings)
        found.append(Candidate(facts[verdict.instance_id], verdict, history, kind))
    # Longest-failing first, so a budget spends itself where waiting has cost the most.
    found.sort(key=lambda c: (c.history.first_failure_at is None, c.history.first_failure_at or datetime.min, c.instance_id))
    return found


@dataclass(frozen=True, slots=True)
class FleetView:
    """Counts over the whole selected fleet that the fleet-wide rules need."""

    running: int
    probed: int
    probes_failed: int
    uncorroborated: int
    by_zone: Mapping[str, tuple[int, int]]  # zone -> (running, uncorroborated unreachable)
    by_subnet: Mapping[str, tuple[int, int]]


def fleet_view(facts: Mapping[str, Facts], verdicts: Mapping[str, Verdict]) -> FleetView:
    running = [f for f in facts.values() if f.instance.state == "running"]
    # Only probes that ran count: no address or a local error says nothing of the network.
    probed = [f for f in running if f.probe is not None and (f.probe.outcome.is_failure or f.probe.outcome is ProbeOutcome.OK)]
    failed = [f for f in probed if f.probe is not None and f.probe.outcome.is_failure]
    zones: Counter[str] = Counter(f.instance.availability_zone for f in running)
    subnets: Counter[str] = Counter(f.instance.subnet_id or "-" for f in running)
    bad = [
        f
        for f in running
        if verdicts[f.instance.instance_id].kind is VerdictKind.UNREACHABLE and not verdicts[f.instance.instance_id].evidence
    ]
    bad_zones: Counter[str] = Counter(f.instance.availability_zone for f in bad)
    bad_subnets: Counter[str] = Counter(f.instance.subnet_id or "-" for f in bad)
    return FleetView(
        running=len(running),
        probed=len(probed),
        probes_failed=len(failed),
        uncorroborated=len(bad),
        by_zone={z: (n, bad_zones[z]) for z, n in zones.items()},
        by_subnet={s: (n, bad_subnets[s]) for s, n in subnets.items()},
    )


def _faulty_places(counts: Mapping[str, tuple[int, int]], settings: Settings) -> set[str]:
    s = settings.safety
    return {
        place
        for place, (total, bad) in counts.items()
        if bad >= s.az_fault_min and 100.0 * bad / total >= s.az_fault_percent
    }


def fleet_stops(cands: list[Candidate], view: FleetView, settings: Settings, paused: PauseState | None) -> tuple[dict[str, str], list[str]]:
    """Fleet-wide reasons not to act, per candidate, and the notes that explain them."""
    why: dict[str, str] = {}
    notes: list[str] = []
    if paused is not None:
        reason = f"orch is paused since {paused.paused_at:%Y-%m-%d %H:%M} UTC by {paused.by}" + (f": {paused.reason}" if paused.reason else "") + " (`orch resume`)"
        notes.append(reason)
        return {c.instance_id: reason for c in cands}, notes
    if view.probed >= 2 and view.probes_failed == view.probed:
        reason = f"every probe of this sweep failed ({view.probed}/{view.probed}): the prober's network is suspect, not the fleet"
        notes.append(reason)
        return {c.instance_id: reason for c in cands}, notes
    limit = settings.safety.unhealthy_limit(view.running)
    if view.uncorroborated > limit:
        reason = (
            f"too many unhealthy: {view.uncorroborated} of {view.running} unreachable without host-side evidence "
            f"(limit {settings.safety.max_unhealthy} = {limit}); circuit breaker open"
        )
        notes.append(reason)
        for c in cands:
            if not c.corroborated:
                why[c.instance_id] = reason
    for label, counts, key in (
        ("availability zone", view.by_zone, lambda c: c.facts.instance.availability_zone),
        ("subnet", view.by_subnet, lambda c: c.facts.instance.subnet_id or "-"),
    ):
        for place in sorted(_faulty_places(counts, settings)):
            total, bad = counts[place]
            reason = f"{bad} of {total} instances unreachable in {label} {place}: treated as a network fault there"
            notes.append(reason)
            for c in cands:
                if not c.corroborated and key(c) == place:
                    why.setdefault(c.instance_id, reason)
    return why, notes


@dataclass
class Budget:
    """Actions this sweep may still take, counting actions still in flight."""

    settings: Settings
    now: datetime
    per_sweep_left: int
    per_hour_left: int
    group_in_flight: Counter[str]
    group_size: Mapping[str, int]

    @classmethod
    def start(cls, settings: Settings, now: datetime, facts: Mapping[str, Facts], histories: Mapping[str, InstanceHistory]) -> Budget:
        hour = timedelta(hours=1)
        taken_last_hour = sum(recent_attempts(h, now, hour) for h in histories.values())
        in_flight: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for instance_id, f in facts.items():
            group = f.instance.asg_name
            if not group:
                continue
            if f.instance.state == "running" and (f.lifecycle_state in (None, IN_SERVICE)):
                sizes[group] += 1
            h = histories.get(instance_id)
            if h is not None and h.in_flight_key is not None:
                in_flight[group] += 1
        return cls(
            settings,
            now,
            settings.safety.max_actions_per_sweep,
            settings.safety.max_actions_per_hour - taken_last_hour,
            in_flight,
            sizes,
        )

    def group_limit(self, group: str) -> int:
        size = self.group_size.get(group, 0)
        return max(1, int(size * self.settings.safety.max_group_percent / 100))

    def refuse(self, c: Candidate) -> str | None:
        s = self.settings.safety
        if self.per_sweep_left <= 0:
            return f"max {s.max_actions_per_sweep} actions per sweep reached"
        if self.per_hour_left <= 0:
            return f"max {s.max_actions_per_hour} actions per hour reached (in-flight included)"
        group = c.facts.instance.asg_name
        if group and self.group_in_flight[group] >= self.group_limit(group):
            return (
                f"Auto Scaling group {group} already has {self.group_in_flight[group]} action(s) in flight "
                f"(limit {self.group_limit(group)}: {s.max_group_percent:g}% of {self.group_size.get(group, 0)} in service)"
            )
        return None

    def spend(self, c: Candidate) -> None:
        self.per_sweep_left -= 1
        self.per_hour_left -= 1
        if c.facts.instance.asg_name:
            self.group_in_flight[c.facts.instance.asg_name] += 1


def action_reason(c: Candidate) -> str:
    reason = c.verdict.reasons[0] if c.verdict.reasons else c.verdict.kind.value
    if c.kind in (ActionKind.STOP_START, ActionKind.REPLACE):
        reason += f" (escalated: rung {c.history.rung + 1} after {len(c.history.attempts)} earlier action(s))"
    if c.corroborated:
        reason += f"; corroborated by {'; '.join(c.verdict.evidence)}"
    return reason


def make_plan(
    facts: Mapping[str, Facts],
    verdicts: Iterable[Verdict],
    histories: Mapping[str, InstanceHistory],
    settings: Settings,
    now: datetime,
    paused: PauseState | None = None,
) -> Plan:
    verdict_list = list(verdicts)
    by_id = {v.instance_id: v for v in verdict_list}
    cands = candidates(facts, verdict_list, histories, settings)
    fleet_why, notes = fleet_stops(cands, fleet_view(facts, by_id), settings, paused)
    budget = Budget.start(settings, now, facts, histories)
    actions: list[Action] = []
    blocked: list[Blocked] = []
    for c in cands:
        why = fleet_why.get(c.instance_id)
        rule = BlockRule.PAUSED if paused is not None else BlockRule.FLEET_STOP
        if why is None:
            rule, why = first_refusal(c, settings, now)
        if why is None:
            rule, why = BlockRule.BUDGET, budget.refuse(c)
        if why is not None:
            blocked.append(Blocked(c.instance_id, c.kind, why, rule))
            continue
        budget.spend(c)
        actions.append(Action(c.instance_id, c.kind, action_reason(c), asg_name=c.facts.instance.asg_name))
    if settings.memory.proactive == "notify":
        for v in verdict_list:
            if v.kind in MEMORY_TROUBLE and settings.opt_out_tag not in facts[v.instance_id].instance.tags:
                notes.append(f"{v.instance_id}: {'; '.join(v.reasons[:1])} (memory.proactive = notify: no action)")
    for instance_id, h in sorted(histories.items()):
        if h.quarantined_at is not None and by_id.get(instance_id) and by_id[instance_id].kind is not VerdictKind.UNREACHABLE:
            notes.append(f"{instance_id} is quarantined ({h.quarantine_reason}); `orch release {instance_id}` when fixed")
    return Plan(actions=tuple(actions), blocked=tuple(blocked), notes=tuple(notes))
