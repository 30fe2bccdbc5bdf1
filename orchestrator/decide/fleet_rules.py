"""The fleet-wide rules: what the whole fleet's facts say about a place, the prober, the breaker and its canary.

Every rule against a network fault counts path-ambiguous failures only (a box whose kernel
answered the probe was reached); failures with a host-side cause are healed at budget pace
however many; failures of unknown cause past the breaker get a canary (docs/evidence.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from orchestrator.config import Settings
from orchestrator.decide.candidate import Candidate, Stop
from orchestrator.model import (
    BlockRule,
    Corroboration,
    Facts,
    InstanceHistory,
    PauseState,
    ProbeOutcome,
    Verdict,
    VerdictKind,
)


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
    for place, quiet in sorted(silent.items()):
        if quiet < s.az_fault_min or publishing[place]:
            continue
        share = 100.0 * quiet / totals[place]
        if answering[place] or share >= s.az_fault_percent:
            found.add(place)
    # One note per condition. Of two quiet places one inside the other (a subnet in a zone,
    # anything in the fleet), the wider one's note is the condition when it counts more silent
    # agents; when both count the same, the silence is all in one place: say it once, by zone
    # before subnet before the fleet.
    zone_of = {f.instance.subnet_id or "-": f.instance.availability_zone for f in running}
    rank = {"availability zone": 0, "subnet": 1, FLEET: 2}

    def contains(outer: tuple[str, str], inner: tuple[str, str]) -> bool:
        if outer == inner:
            return False
        if outer[0] == FLEET:
            return True
        return outer[0] == "availability zone" and inner[0] == "subnet" and zone_of.get(inner[1]) == outer[1]

    def said_by_another(place: tuple[str, str]) -> bool:
        for other in found:
            if contains(other, place) and silent[other] > silent[place]:
                return True
            if (contains(other, place) or contains(place, other)) and silent[other] == silent[place] and rank[other[0]] < rank[place[0]]:
                return True
        return False

    notes: list[str] = []
    for place in sorted(found):
        if said_by_another(place):
            continue
        label, name = place
        where = FLEET if label == FLEET else f"{label} {name}"
        also = f", {answering[place]} of them still answering SSH" if answering[place] else ""
        notes.append(
            f"{silent[place]} of {totals[place]} agents silent together in {where}{also} and none publishing: a network or "
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
    # Said only where some silence is not explained otherwise: agents of boxes whose console
    # or memory already shows a cause on the host went quiet with their box, not with a place.
    unexplained = any(verdicts[f.instance.instance_id].agent_silent and f.instance.instance_id not in corroborated for f in running)
    silence_notes = silence_notes if unexplained else []
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
