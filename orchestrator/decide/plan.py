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
from orchestrator.decide import rungs
from orchestrator.decide.diagnose import PATH_NOTE
from orchestrator.decide.history import Chronic, chronic, recent_attempts
from orchestrator.model import (
    Action,
    ActionKind,
    Blocked,
    BlockRule,
    Cause,
    Corroboration,
    Facts,
    InstanceHistory,
    PauseState,
    Plan,
    ProbeOutcome,
    Verdict,
    VerdictKind,
)

ACTIONABLE = frozenset({VerdictKind.UNREACHABLE})
IN_SERVICE = "InService"


@dataclass(frozen=True, slots=True)
class Candidate:
    facts: Facts
    verdict: Verdict
    history: InstanceHistory
    kind: ActionKind
    chronic: Chronic | None = None
    corroborated: bool = False  # host-side evidence that no fleet-wide fault explains
    ahead: bool = False  # SSH still answers: acting ahead of a forecast exhaustion
    rung_note: str = ""  # a substitute or skipped rung (orchestrator.decide.rungs), said in the reason
    misfit: str | None = None  # no rung from the ladder's position on fits this instance
    note: str = ""  # why now, when the verdict alone does not say (a chronic cycle's due moment)

    @property
    def instance_id(self) -> str:
        return self.facts.instance.instance_id


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


def gate_rung_fits(c: Candidate, settings: Settings, now: datetime) -> str | None:
    """No rung fits from where the ladder stands (replace for a standalone box, stop/start
    for a one-time Spot one...): see orchestrator.decide.rungs. Actions ahead of an exhaustion
    are not on the ladder."""
    if c.ahead:
        return None
    if c.misfit is not None:
        return f"{c.misfit}; a human must look"
    if c.history.rung >= len(settings.safety.ladder):
        return "every rung of the escalation ladder was tried; a human must look"
    return None


def gate_ssm_online(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.kind is ActionKind.RUN_COMMAND and c.facts.ssm_online is not True:
        return "SSM agent is not online: the command could not run"
    return None


PER_INSTANCE_GATES: tuple[tuple[BlockRule, Gate], ...] = (
    (BlockRule.OPT_OUT, gate_opt_out),
    (BlockRule.NOT_RUNNING, gate_running),
    (BlockRule.QUARANTINE, gate_quarantine),
    (BlockRule.IN_FLIGHT, gate_in_flight),
    (BlockRule.SCHEDULED_EVENT, gate_scheduled_event),
    (BlockRule.LIFECYCLE, gate_lifecycle),
    (BlockRule.LAUNCH_GRACE, gate_launch_grace),
    (BlockRule.DEBOUNCE, gate_debounce),
    (BlockRule.LADDER, gate_rung_fits),
    (BlockRule.SSM_OFFLINE, gate_ssm_online),
)


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


@dataclass(frozen=True, slots=True)
class FleetView:
    """Counts over the whole selected fleet that the fleet-wide rules need.

    Every rule against a network fault counts path-ambiguous failures only (connect
    timeouts): a box whose kernel refused the probe or held it without a banner was
    reached, so no network fault explains it.
    """

    running: int
    probed: int
    probes_failed: int
    ambiguous_failed: int  # failed probes that got no answer at all from the box
    uncorroborated: int  # unreachable without host-side evidence (path-ambiguous or not)
    by_zone: Mapping[str, tuple[int, int]]  # zone -> (running, uncorroborated path-ambiguous unreachable)
    by_subnet: Mapping[str, tuple[int, int]]
    corroborated: frozenset[str]  # instances whose host-side evidence no fleet-wide fault explains
    silence_notes: tuple[str, ...] = ()


FLEET = "the fleet"


def _places(f: Facts) -> tuple[tuple[str, str], ...]:
    return (("availability zone", f.instance.availability_zone), ("subnet", f.instance.subnet_id or "-"), (FLEET, FLEET))


def correlated_silence(running: list[Facts], verdicts: Mapping[str, Verdict], settings: Settings) -> tuple[set[tuple[str, str]], list[str]]:
    """Places (zone, subnet, the whole fleet) where agents fell silent together and nobody publishes.

    Silence travels the network: a subnet ACL, a NAT or a CloudWatch outage silences a
    healthy agent exactly as starvation silences a full one. Where at least
    ``safety.az_fault_min`` agents of a place are silent and either some of them still
    answer SSH (so their boxes are fine) or they are ``safety.az_fault_percent`` of the
    place, the place may have gone quiet, not its boxes: unless a neighbour in that place
    still publishes fresh points. Then the place's network and the metrics pipeline
    work, and each silence is the box's own.
    """
    s = settings.safety
    totals: Counter[tuple[str, str]] = Counter()
    silent: Counter[tuple[str, str]] = Counter()
    answering: Counter[tuple[str, str]] = Counter()
    publishing: Counter[tuple[str, str]] = Counter()
    for f in running:
        v = verdicts[f.instance.instance_id]
        for place in _places(f):
            totals[place] += 1
            if v.memory_fresh:
                publishing[place] += 1
            if v.agent_silent:
                silent[place] += 1
                if f.probe is not None and f.probe.outcome is ProbeOutcome.OK:
                    answering[place] += 1
    found: set[tuple[str, str]] = set()
    notes: list[str] = []
    for place, quiet in sorted(silent.items()):
        if quiet < s.az_fault_min or publishing[place]:
            continue
        share = 100.0 * quiet / totals[place]
        if answering[place] or share >= s.az_fault_percent:
            found.add(place)
            label, name = place
            where = FLEET if label == FLEET else f"{label} {name}"
            also = f", {answering[place]} of them still answering SSH" if answering[place] else ""
            notes.append(
                f"{quiet} of {totals[place]} agents silent together in {where}{also} and none publishing: a network or "
                "metrics-pipeline fault there is possible, so their silence corroborates nothing"
            )
    return found, notes


def is_corroborated(f: Facts, v: Verdict, quiet_places: set[tuple[str, str]]) -> bool:
    if v.corroboration in (Corroboration.MEMORY, Corroboration.CONSOLE):
        return True
    if v.corroboration is Corroboration.SILENT_AT_TOP:
        return not any(place in quiet_places for place in _places(f))
    return False


def fleet_view(
    facts: Mapping[str, Facts],
    verdicts: Mapping[str, Verdict],
    settings: Settings | None = None,
    in_flight: frozenset[str] = frozenset(),
) -> FleetView:
    """``in_flight``: instances orch acted on and awaits: their being down is explained by that action."""
    settings = settings or Settings()
    running = [f for f in facts.values() if f.instance.state == "running"]
    # Only probes that ran count: no address or a local error says nothing of the network.
    probed = [f for f in running if f.probe is not None and (f.probe.outcome.is_failure or f.probe.outcome is ProbeOutcome.OK)]
    failed = [f for f in probed if f.probe is not None and f.probe.outcome.is_failure]
    ambiguous = [f for f in failed if f.probe is not None and not f.probe.path_proven]
    quiet, silence_notes = correlated_silence(running, verdicts, settings)
    corroborated = frozenset(
        f.instance.instance_id for f in running if is_corroborated(f, verdicts[f.instance.instance_id], quiet)
    )
    # Said only where it held something back: silence that was an unreachable box's only evidence.
    discounted = any(
        verdicts[f.instance.instance_id].kind is VerdictKind.UNREACHABLE
        and verdicts[f.instance.instance_id].corroboration is Corroboration.SILENT_AT_TOP
        and f.instance.instance_id not in corroborated
        for f in running
    )
    silence_notes = silence_notes if discounted else []
    zones: Counter[str] = Counter(f.instance.availability_zone for f in running)
    subnets: Counter[str] = Counter(f.instance.subnet_id or "-" for f in running)
    bad = [
        f
        for f in running
        if verdicts[f.instance.instance_id].kind is VerdictKind.UNREACHABLE
        and f.instance.instance_id not in corroborated
        and f.instance.instance_id not in in_flight
    ]
    dropped = [f for f in bad if not verdicts[f.instance.instance_id].path_proven]
    bad_zones: Counter[str] = Counter(f.instance.availability_zone for f in dropped)
    bad_subnets: Counter[str] = Counter(f.instance.subnet_id or "-" for f in dropped)
    return FleetView(
        running=len(running),
        probed=len(probed),
        probes_failed=len(failed),
        ambiguous_failed=len(ambiguous),
        uncorroborated=len(bad),
        by_zone={z: (n, bad_zones[z]) for z, n in zones.items()},
        by_subnet={s: (n, bad_subnets[s]) for s, n in subnets.items()},
        corroborated=corroborated,
        silence_notes=tuple(silence_notes),
    )


def _faulty_places(counts: Mapping[str, tuple[int, int]], settings: Settings) -> set[str]:
    s = settings.safety
    return {
        place
        for place, (total, bad) in counts.items()
        if bad >= s.az_fault_min and 100.0 * bad / total >= s.az_fault_percent
    }


Stop = tuple[BlockRule, str]


@dataclass(frozen=True, slots=True)
class CanaryState:
    """Past the breaker, what earlier canaries showed (from the histories: no state of its own)."""

    verified: tuple[str, ...] = ()  # recovered: the rest may follow at budget pace
    in_flight: tuple[str, ...] = ()  # acted on, not judged yet
    failed: tuple[tuple[str, str], ...] = ()  # (instance, why): a reboot does not fix this failure


def canary_state(histories: Mapping[str, InstanceHistory], now: datetime, settings: Settings) -> CanaryState:
    """What each instance's latest canary showed (a released instance's earlier ones no longer count).

    A failed canary stands until a person releases it or the box answers again by itself:
    trying a new canary every few hours on a fault a reboot cannot fix would reboot the
    fleet one box at a time. A recovery counts within ``safety.quarantine_hours``: a new
    episode after that needs a canary of its own.
    """
    window = timedelta(hours=settings.safety.quarantine_hours)
    verified, in_flight, failed = [], [], []
    for iid, h in sorted(histories.items()):
        latest = next((a for a in reversed(h.actions) if a.canary), None)
        if latest is None or (h.released_at is not None and latest.at < h.released_at):
            continue
        if latest.failed_at is not None:
            if h.last_healthy_at is None or h.last_healthy_at <= latest.failed_at:
                failed.append((iid, latest.failure))
        elif latest.verified_at is not None:
            if now - latest.at < window:
                verified.append(iid)
        else:
            in_flight.append(iid)
    return CanaryState(tuple(verified), tuple(in_flight), tuple(failed))


def _canary_stops(proven: list[Candidate], state: CanaryState, settings: Settings) -> tuple[dict[str, Stop], frozenset[str], list[str]]:
    """Which path-proven failures of unknown cause wait, which are the canaries, and what to say.

    A failure the box's own kernel answered is no network fault, and no cause is known:
    acting on all of them risks a fleet-wide reboot that fixes nothing (a config push
    broke sshd everywhere). So ``safety.canary`` of them go first and are verified; only
    if one recovered does the rest follow, at budget pace. If a canary did not recover,
    the rest stay untouched until a person releases it (``orch release``) or the window ends.
    """
    why: dict[str, Stop] = {}
    notes: list[str] = []
    if state.failed:
        iid, failure = state.failed[0]
        reason = (
            f"the canary {iid} did not recover ({failure}): acting cannot fix these failures, so the rest are left alone; "
            f"a human must look (`orch release {iid}` to try another canary)"
        )
        notes.append(reason)
        return {c.instance_id: (BlockRule.CANARY, reason) for c in proven}, frozenset(), notes
    if state.verified:
        notes.append(f"the canary {state.verified[-1]} recovered: the rest follow at budget pace")
        return why, frozenset(), notes
    if state.in_flight:
        reason = f"waiting for the canary {', '.join(state.in_flight)} to be verified before acting on the rest"
        notes.append(reason)
        return {c.instance_id: (BlockRule.CANARY, reason) for c in proven if c.instance_id not in state.in_flight}, frozenset(), notes
    canaries = frozenset(c.instance_id for c in proven[: settings.safety.canary])
    if not canaries:
        reason = "safety.canary = 0: no canary is tried past the breaker"
        return {c.instance_id: (BlockRule.CANARY, reason) for c in proven}, frozenset(), [reason]
    reason = f"waiting for the canary {', '.join(sorted(canaries))}: acted on first, the rest follow only if it recovers"
    notes.append(reason)
    return {c.instance_id: (BlockRule.CANARY, reason) for c in proven if c.instance_id not in canaries}, canaries, notes


def fleet_stops(
    cands: list[Candidate], view: FleetView, settings: Settings, paused: PauseState | None, canary: CanaryState | None = None
) -> tuple[dict[str, Stop], list[str], frozenset[str]]:
    """Fleet-wide reasons not to act, per candidate, the notes that explain them, and the canaries chosen."""
    why: dict[str, Stop] = {}
    notes: list[str] = []
    if paused is not None:
        reason = f"orch is paused since {paused.paused_at:%Y-%m-%d %H:%M} UTC by {paused.by}" + (f": {paused.reason}" if paused.reason else "") + " (`orch resume`)"
        notes.append(reason)
        return {c.instance_id: (BlockRule.PAUSED, reason) for c in cands}, notes, frozenset()
    if view.probed >= 2 and view.ambiguous_failed == view.probed:
        reason = (
            f"every probe of this sweep failed without an answer from any box ({view.probed}/{view.probed} connect timeouts): "
            "the prober's network is suspect, not the fleet"
        )
        notes.append(reason)
        return {c.instance_id: (BlockRule.PROBER, reason) for c in cands}, notes, frozenset()
    notes.extend(view.silence_notes)
    limit = settings.safety.unhealthy_limit(view.running)
    down = [c for c in cands if not c.ahead]
    canaries: frozenset[str] = frozenset()
    if view.uncorroborated > limit:
        reason = (
            f"too many unhealthy: {view.uncorroborated} of {view.running} unreachable without host-side evidence "
            f"(limit {settings.safety.max_unhealthy} = {limit}); circuit breaker open until at most {limit} are, "
            "or their consoles or agents show a cause on the host"
        )
        notes.append(reason)
        proven = [c for c in down if not c.corroborated and c.verdict.path_proven]
        for c in down:
            if not c.corroborated and not c.verdict.path_proven:
                why[c.instance_id] = (BlockRule.BREAKER, reason)
        waits, canaries, canary_notes = _canary_stops(proven, canary or CanaryState(), settings)
        why.update(waits)
        notes.extend(canary_notes)
    # Memory verdicts on boxes that still answer have a breaker of their own: a fleet
    # shifting together (a new baseline, an agent or metric change) is not that many
    # simultaneous leaks. A chronic instance has shown, box by box, that acting works.
    ahead = [c for c in cands if c.ahead and c.chronic is None]
    if len(ahead) > limit:
        reason = (
            f"too many at once: {len(ahead)} of {view.running} instances near memory exhaustion while SSH answers "
            f"(limit {settings.safety.max_unhealthy} = {limit}): a fleet-wide shift is not {len(ahead)} simultaneous "
            "leaks; actions ahead of exhaustion held, SSH failures are still handled"
        )
        notes.append(reason)
        for c in ahead:
            why[c.instance_id] = (BlockRule.MEMORY_BREAKER, reason)
    for label, counts, key in (
        ("availability zone", view.by_zone, lambda c: c.facts.instance.availability_zone),
        ("subnet", view.by_subnet, lambda c: c.facts.instance.subnet_id or "-"),
    ):
        for place in sorted(_faulty_places(counts, settings)):
            total, bad = counts[place]
            reason = (
                f"{bad} of {total} instances unreachable in {label} {place} with no answer from their kernels: treated as a "
                "network fault there until they answer or show a cause on the host"
            )
            notes.append(reason)
            for c in down:
                if not c.corroborated and not c.verdict.path_proven and key(c) == place:
                    why.setdefault(c.instance_id, (BlockRule.NETWORK_FAULT, reason))
    return why, notes, canaries


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

    def refuse(self, c: Candidate) -> Stop | None:
        s = self.settings.safety
        if self.per_sweep_left <= 0:
            return BlockRule.BUDGET_SWEEP, f"max {s.max_actions_per_sweep} actions per sweep reached"
        if self.per_hour_left <= 0:
            return BlockRule.BUDGET, f"max {s.max_actions_per_hour} actions per hour reached (in-flight included)"
        group = c.facts.instance.asg_name
        if group and self.group_in_flight[group] >= self.group_limit(group):
            return BlockRule.BUDGET, (
                f"Auto Scaling group {group} already has {self.group_in_flight[group]} action(s) in flight "
                f"(limit {self.group_limit(group)}: {s.max_group_percent:g}% of {self.group_size.get(group, 0)} in service)"
            )
        return None

    def spend(self, c: Candidate) -> None:
        self.per_sweep_left -= 1
        self.per_hour_left -= 1
        if c.facts.instance.asg_name:
            self.group_in_flight[c.facts.instance.asg_name] += 1


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
