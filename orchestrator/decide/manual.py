"""A person's `orch reboot` / `orch stop-start`: the console click, held to a sweep's rules.

Pure: the request, the observed fleet, the histories and the pause in; a ``Plan`` out,
with the one action or the one block that says why not. The plan then goes through the
sweep's own executor (lease, gate, evidence, journal, history, alerts): there is no
second way to mutate an instance.

Which of a sweep's rules hold a manual action back:

- never passed: a pause (``orch resume`` first), an instance that is not running, a
  stop/start the instance cannot take (instance store, Auto Scaling member, one-time
  Spot...), someone else's Auto Scaling lifecycle state;
- passed only with ``--force --reason TEXT`` (the reason is kept in the action's record
  and its history): the fleet-wide stops (the circuit breaker, a broken prober, a
  network fault in its place), the budgets, quarantine, an action awaiting
  verification, an EC2 scheduled event, the opt-out tag;
- not asked at all: debounce and launch grace (the person has judged the box), and
  whether SSH answers (a healthy box may be rebooted by hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from orchestrator.config import Settings
from orchestrator.decide import plan as rules
from orchestrator.decide import rungs
from orchestrator.model import Action, ActionKind, Blocked, BlockRule, Facts, InstanceHistory, PauseState, Plan, Verdict, VerdictKind

MANUAL_KINDS = frozenset({ActionKind.REBOOT, ActionKind.STOP_START})
COMMAND = {ActionKind.REBOOT: "orch reboot", ActionKind.STOP_START: "orch stop-start"}

FORCEABLE = frozenset(
    {
        BlockRule.PROBER,
        BlockRule.BREAKER,
        BlockRule.MEMORY_BREAKER,
        BlockRule.NETWORK_FAULT,
        BlockRule.BUDGET,
        BlockRule.BUDGET_SWEEP,
        BlockRule.QUARANTINE,
        BlockRule.IN_FLIGHT,
        BlockRule.SCHEDULED_EVENT,
        BlockRule.OPT_OUT,
    }
)
# The per-instance rules a manual action answers to, in the sweep's order.
MANUAL_GATES: tuple[tuple[BlockRule, rules.Gate], ...] = (
    (BlockRule.NOT_RUNNING, rules.gate_running),
    (BlockRule.LIFECYCLE, rules.gate_lifecycle),
    (BlockRule.OPT_OUT, rules.gate_opt_out),
    (BlockRule.QUARANTINE, rules.gate_quarantine),
    (BlockRule.IN_FLIGHT, rules.gate_in_flight),
    (BlockRule.SCHEDULED_EVENT, rules.gate_scheduled_event),
)


@dataclass(frozen=True, slots=True)
class ManualRequest:
    instance_id: str
    kind: ActionKind
    requested_by: str  # user@host
    force_reason: str | None = None  # --force --reason TEXT

    def __post_init__(self) -> None:
        if self.kind not in MANUAL_KINDS:
            raise ValueError(f"{self.kind.value} is not a manual action (reboot or stop-start)")
        if self.force_reason is not None and not self.force_reason.strip():
            raise ValueError("--force needs a reason that says why")


def _verdict_words(verdict: Verdict | None) -> str:
    if verdict is None:
        return "no verdict"
    if verdict.kind is VerdictKind.HEALTHY:
        return "healthy at the time (SSH answered)"
    return verdict.reasons[0] if verdict.reasons else verdict.kind.value


def manual_plan(
    request: ManualRequest,
    facts: Mapping[str, Facts],
    verdicts: Mapping[str, Verdict],
    histories: Mapping[str, InstanceHistory],
    settings: Settings,
    now: datetime,
    paused: PauseState | None,
) -> Plan:
    """The one action a person asked for, or the block that says why not (and how to force it, when it may be)."""
    iid, kind = request.instance_id, request.kind
    command = COMMAND[kind]
    f = facts.get(iid)
    if f is None:
        why = "is not among the instances selected (check the instance, --selector and --region)"
        return Plan(blocked=(Blocked(iid, kind, f"{iid} {why}", BlockRule.NOT_RUNNING),))
    verdict = verdicts.get(iid) or Verdict(iid, VerdictKind.HEALTHY, ())
    history = histories.get(iid) or InstanceHistory(iid)
    candidate = rules.Candidate(f, verdict, history, kind)
    stop = _stop(candidate, facts, verdicts, histories, settings, now, paused)
    reason = f"by hand ({command} by {request.requested_by}): {_verdict_words(verdict)}"
    forced = ""
    if stop is not None:
        rule, why = stop
        if rule not in FORCEABLE:
            return Plan(blocked=(Blocked(iid, kind, why, rule),))
        if request.force_reason is None:
            hint = f"; `{command} {iid} --force --reason TEXT` acts anyway and records why"
            return Plan(blocked=(Blocked(iid, kind, why + hint, rule),))
        forced = f"forced past {rule.value} ({why}): {request.force_reason.strip()}"
        reason += f"; {forced}"
    action = Action(iid, kind, reason, asg_name=f.instance.asg_name, requested_by=request.requested_by, forced=forced)
    note = f"{command} {iid} by {request.requested_by}" + (f", {forced}" if forced else "")
    return Plan(actions=(action,), notes=(note,))


def _stop(
    c: rules.Candidate,
    facts: Mapping[str, Facts],
    verdicts: Mapping[str, Verdict],
    histories: Mapping[str, InstanceHistory],
    settings: Settings,
    now: datetime,
    paused: PauseState | None,
) -> rules.Stop | None:
    """The first rule that holds this action back, in the order a sweep asks them."""
    in_flight = frozenset(i for i, h in histories.items() if h.in_flight_key is not None)
    view = rules.fleet_view(facts, verdicts, settings, in_flight)
    fleet, _, _ = rules.fleet_stops([c], view, settings, paused)
    if c.instance_id in fleet and fleet[c.instance_id][0] is BlockRule.PAUSED:
        return fleet[c.instance_id]
    for rule, gate in MANUAL_GATES[:2]:  # not running, someone else's lifecycle: never forced
        why = gate(c, settings, now)
        if why is not None:
            return rule, why
    misfit = rungs.misfit(c.kind, c.facts)
    if misfit is not None:
        return BlockRule.LADDER, misfit
    if c.instance_id in fleet:
        return fleet[c.instance_id]
    for rule, gate in MANUAL_GATES[2:]:
        why = gate(c, settings, now)
        if why is not None:
            return rule, why
    return rules.Budget.start(settings, now, facts, histories).refuse(c)
