"""Plan: from verdicts to a list of actions and of actions refused, each with why.

Pure: facts, verdicts, history, settings, pause and ``now`` in; a ``Plan`` out. All
safety lives here so that every rule is a table-driven test, and so that dry run and
heal decide exactly the same thing. The order of the rules matters and is the order
an operator reads them in: fleet-wide stops first (pause, a broken prober, too many
unhealthy, a faulty AZ), then facts about the instance, then budgets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

from orchestrator.config import Settings
from orchestrator.decide import rungs
from orchestrator.decide.budget import Budget
from orchestrator.decide.candidate import IN_SERVICE, Candidate, Stop
from orchestrator.decide.chronic import Chronic, chronic
from orchestrator.decide.diagnose import PATH_NOTE
from orchestrator.decide.fleet_rules import (
    FLEET,
    CanaryState,
    FleetView,
    canary_state,
    correlated_silence,
    fleet_stops,
    fleet_view,
    is_corroborated,
)
from orchestrator.decide.gates import (
    PER_INSTANCE_GATES,
    Gate,
    gate_debounce,
    gate_in_flight,
    gate_launch_grace,
    gate_lifecycle,
    gate_opt_out,
    gate_quarantine,
    gate_rung_fits,
    gate_running,
    gate_scheduled_event,
    gate_ssm_online,
)
from orchestrator.model import (
    Action,
    ActionKind,
    Blocked,
    Cause,
    Facts,
    InstanceHistory,
    PauseState,
    Plan,
    Verdict,
    VerdictKind,
)

__all__ = ["ACTIONABLE", "ANSWERING", "Budget", "CanaryState", "Candidate", "FLEET", "FleetView", "Gate", "IN_SERVICE", "MEMORY_TROUBLE", "PER_INSTANCE_GATES", "PROACTIVE_ACTION", "Stop", "action_reason", "actionable", "canary_state", "candidates", "correlated_silence", "cycle_due", "due", "fleet_stops", "fleet_view", "gate_debounce", "gate_in_flight", "gate_launch_grace", "gate_lifecycle", "gate_opt_out", "gate_quarantine", "gate_rung_fits", "gate_running", "gate_scheduled_event", "gate_ssm_online", "is_corroborated", "ladder_action", "make_plan", "memory_action"]


ACTIONABLE = frozenset({VerdictKind.UNREACHABLE})


def ladder_action(history: InstanceHistory, settings: Settings, facts: Facts) -> tuple[rungs.Rung, str | None]:
    """The rung the history has reached, fitted to this instance (or why none fits)."""
    return rungs.rung_for(settings.safety.ladder, history.rung, facts)


MEMORY_TROUBLE = frozenset({VerdictKind.MEMORY_FORECAST, VerdictKind.MEMORY_CRITICAL})


PROACTIVE_ACTION = {"ssm": ActionKind.RUN_COMMAND, "reboot": ActionKind.REBOOT}


def actionable(settings: Settings) -> frozenset[VerdictKind]:
    """Unreachable always; memory trouble too, for proactive settings and chronic instances."""
    if settings.memory.proactive in PROACTIVE_ACTION or settings.chronic.action != "off":
        return ACTIONABLE | MEMORY_TROUBLE
    return ACTIONABLE


def due(verdict: Verdict, settings: Settings) -> bool:
    """Time to act on memory: critical now, or exhaustion forecast within the lead.

    Timed by the lead (the last sweep before the exhaustion), not by the notification
    horizon: a fast leak forecast 30 minutes out is still a box with most of its cycle
    ahead of it, and a reboot then throws that away.
    """
    if verdict.kind is VerdictKind.MEMORY_CRITICAL:
        return True
    return verdict.minutes_to_exhaustion is not None and verdict.minutes_to_exhaustion <= settings.lead_minutes()


# Verdicts of a box that still answers SSH, on which a chronic cycle may be acted ahead.
ANSWERING = frozenset({VerdictKind.HEALTHY, VerdictKind.METRICS_STALE})


def cycle_due(verdict: Verdict, history: InstanceHistory, condition: Chronic, settings: Settings, now: datetime) -> str | None:
    """Why a chronic box is due now by its own cycle, though no forecast says so (None: not due).

    Noisy metrics veto the forecast, and a box without the agent has none: the cycle
    orch observed (back up to exhausted) still says when the next exhaustion comes. It
    counts only while a real exhaustion was observed within the chronic window (a fixed
    leak ends it within a day), and fresh points that measurably do not climb veto it (the
    reading itself lags by the metric's delivery delay, so its level proves nothing).
    """
    last = history.actions[-1] if history.actions else None
    if (
        settings.chronic.action == "off"
        or condition.up_minutes is None
        or last is None
        or last.verified_at is None
        or history.in_flight_key is not None
    ):
        return None
    if verdict.minutes_to_exhaustion is not None:
        return None  # a clean forecast refines the moment: the memory rules act on it
    slope = verdict.memory_slope_per_min
    if verdict.memory_fresh and slope is not None and slope < settings.memory.min_slope_per_min:
        return None  # memory is measurably not climbing this cycle: the leak is not where the cycle says
    age = (now - last.verified_at).total_seconds() / 60
    lead = settings.lead_minutes()
    if age < condition.up_minutes - lead:
        return None
    return (
        f"back up {age:.0f} min ago and its cycles run out about {condition.up_minutes:.0f} min after that: "
        f"acting {lead:g} min ahead of the next exhaustion"
    )


def memory_action(settings: Settings, facts: Facts, condition: Chronic | None) -> ActionKind | None:
    """What to do ahead of an exhaustion: the chronic setting for chronic instances, else the proactive one."""
    if condition is not None and settings.chronic.action != "off":
        mode = settings.chronic.action
        if mode == "auto":
            return ActionKind.RUN_COMMAND if settings.memory.ssm_commands and facts.ssm_online is True else ActionKind.REBOOT
        return ActionKind.RUN_COMMAND if mode == "ssm" else ActionKind.REBOOT
    return PROACTIVE_ACTION.get(settings.memory.proactive)


def candidates(
    facts: Mapping[str, Facts],
    verdicts: Iterable[Verdict],
    histories: Mapping[str, InstanceHistory],
    settings: Settings,
    now: datetime | None = None,
    corroborated: frozenset[str] = frozenset(),
) -> list[Candidate]:
    found = []
    wanted = actionable(settings)
    for verdict in verdicts:
        iid = verdict.instance_id
        history = histories.get(iid) or InstanceHistory(iid)
        f = facts[iid]
        if verdict.kind not in wanted:
            if now is not None and verdict.kind in ANSWERING and history.chronic_since is not None:
                condition = chronic(history, now, settings)
                note = cycle_due(verdict, history, condition, settings, now) if condition is not None else None
                kind = memory_action(settings, f, condition) if note is not None else None
                if kind is not None:
                    found.append(Candidate(f, verdict, history, kind, condition, iid in corroborated, ahead=True, note=note))
            continue
        condition = chronic(history, now, settings) if now is not None else None
        if verdict.kind in MEMORY_TROUBLE:
            kind = memory_action(settings, f, condition)
            if kind is None or not due(verdict, settings):
                continue
            found.append(Candidate(f, verdict, history, kind, condition, iid in corroborated, ahead=True))
        else:
            rung, misfit = ladder_action(history, settings, f)
            found.append(Candidate(f, verdict, history, rung.kind, condition, iid in corroborated, rung_note=rung.note, misfit=misfit))
    # Down boxes first, longest-failing first, so a budget spends itself where waiting has
    # cost the most; then boxes still answering, soonest exhaustion first.
    found.sort(
        key=lambda c: (
            c.ahead,
            c.history.first_failure_at is None,
            c.history.first_failure_at or datetime.min,
            c.verdict.minutes_to_exhaustion if c.verdict.minutes_to_exhaustion is not None else 0.0,
            c.instance_id,
        )
    )
    return found


def action_reason(c: Candidate, settings: Settings) -> str:
    reason = c.verdict.reasons[0] if c.verdict.reasons else c.verdict.kind.value
    if c.note:
        reason = c.note
    elif c.ahead:
        reason += f"; acting {settings.lead_minutes():g} min ahead of the forecast exhaustion"
    if c.chronic is not None:
        reason = f"{c.chronic.describe()}: {reason}"
    if c.kind in (ActionKind.STOP_START, ActionKind.REPLACE):
        failed = sum(1 for a in c.history.actions if a.counts_as_failure(settings.safety.flap_minutes))
        reason += f" (escalated: rung {c.history.rung + 1} after {failed} failed action(s))"
    if c.rung_note:
        reason += f" ({c.rung_note})"
    if c.corroborated and not c.ahead:
        reason += f"; corroborated by {PATH_NOTE[c.verdict.corroboration]}: {'; '.join(c.verdict.evidence)}"
    return reason


def _paced_by_cycle(c: Candidate) -> bool:
    """A chronic instance's memory action: paced by its own cycle, not by the fleet's budgets.

    The budgets guard against orch being wrong about many boxes at once. A chronic box has
    shown, recovery by recovery, that the action brings it back; it is acted on at most
    once a cycle (the in-flight gate holds it until verified), so a fleet of fast leaks is
    healed at the pace of its leaks, not left wedged because a fixed hourly count ran out.
    An Auto Scaling group's share in flight still applies (``Budget.refuse``'s group rule
    is for replacements and does not apply to reboots of a chronic box).
    """
    return c.chronic is not None and (c.ahead or c.corroborated)


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
    # Awaited actions explain their boxes being down, except a canary's: it still stands for the failure it tests.
    in_flight = frozenset(i for i, h in histories.items() if h.in_flight_key is not None and not (h.actions and h.actions[-1].canary))
    view = fleet_view(facts, by_id, settings, in_flight)
    cands = candidates(facts, verdict_list, histories, settings, now, view.corroborated)
    fleet_why, notes, canaries = fleet_stops(cands, view, settings, paused, canary_state(histories, now, settings))
    budget = Budget.start(settings, now, facts, histories)
    actions: list[Action] = []
    blocked: list[Blocked] = []
    for c in cands:
        stop = fleet_why.get(c.instance_id)
        if stop is None:
            stop = next(((rule, reason) for rule, gate in PER_INSTANCE_GATES if (reason := gate(c, settings, now))), None)
        paced = _paced_by_cycle(c)
        if stop is None and not paced:
            stop = budget.refuse(c)
        if stop is not None:
            blocked.append(Blocked(c.instance_id, c.kind, stop[1], stop[0]))
            continue
        if not paced:
            budget.spend(c)
        canary = c.instance_id in canaries
        reason = action_reason(c, settings) + ("; the canary past the breaker: the rest follow only if it recovers" if canary else "")
        cause = Cause.MEMORY if c.ahead or c.corroborated else None
        actions.append(
            Action(c.instance_id, c.kind, reason, asg_name=c.facts.instance.asg_name, canary=canary, cause=cause, chronic=paced)
        )
    if settings.memory.proactive == "notify":
        for v in verdict_list:
            if v.kind in MEMORY_TROUBLE and settings.opt_out_tag not in facts[v.instance_id].instance.tags:
                notes.append(f"{v.instance_id}: {'; '.join(v.reasons[:1])} (memory.proactive = notify: no action)")
    for instance_id, h in sorted(histories.items()):
        if h.quarantined_at is not None and by_id.get(instance_id) and by_id[instance_id].kind is not VerdictKind.UNREACHABLE:
            notes.append(f"{instance_id} is quarantined ({h.quarantine_reason}); `orch release {instance_id}` when fixed")
    return Plan(actions=tuple(actions), blocked=tuple(blocked), notes=tuple(notes))
