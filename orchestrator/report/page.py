"""What the HTML report shows, gathered from one scan and the state store's records. Pure.

`orch report --html` draws a page from a `ReportPage`; this module decides what goes on
it (which instances lead, which events make the timeline) from values only, so the page
can be built in a test from literal facts and records, and rendered without AWS.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any, Iterable, Mapping

from orchestrator.decide.patterns import SEVERITY, ChronicPattern, PatternRow
from orchestrator.model import Facts, InstanceHistory, ProbeOutcome, Verdict, VerdictKind
from orchestrator.report.svg_chart import Mark
from orchestrator.state.store import ActionRecord, ActionStatus, SweepRecord

TIMELINE_HOURS = 24  # how far back the timeline reaches
TIMELINE_MAX_EVENTS = 400  # newest kept: a page that still opens at 3 a.m.


class EventKind(str, enum.Enum):
    """What a timeline row is about: the page styles and filters rows by it."""

    SWEEP = "sweep"
    PROBE = "probe"
    VERDICT = "verdict"
    ACTION = "action"
    BLOCKED = "blocked"
    VERIFIED = "verified"
    FAILED = "failed"
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: datetime
    kind: EventKind
    text: str
    instance_id: str = ""
    name: str = ""
    severe: bool = False  # shown in red: something a person should look at


@dataclass(frozen=True, slots=True)
class InstanceView:
    instance_id: str
    name: str
    verdict: VerdictKind
    reasons: tuple[str, ...] = ()
    availability_zone: str = ""
    instance_type: str = ""
    probe: str = "-"
    memory_points: tuple[tuple[datetime, float], ...] = ()
    memory_percent: float | None = None
    slope_per_min: float | None = None
    minutes_to_exhaustion: float | None = None
    opted_out: bool = False
    rung: int = 0
    in_flight: bool = False
    quarantined: str | None = None  # the reason, when quarantined
    chronic: bool = False
    actions: tuple[Mark, ...] = ()  # orch's actions in the window, drawn on the chart

    @property
    def needs_a_look(self) -> bool:
        return self.verdict is not VerdictKind.HEALTHY or self.quarantined is not None


@dataclass(frozen=True, slots=True)
class ChronicView:
    text: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportPage:
    generated_at: datetime
    region: str
    selector: str
    critical_percent: float
    exhaustion_percent: float
    window_minutes: int
    verdict_counts: Mapping[str, int] = field(default_factory=dict)
    instances: tuple[InstanceView, ...] = ()  # worst first
    timeline: tuple[TimelineEvent, ...] = ()  # newest first
    timeline_dropped: int = 0  # older events left off (TIMELINE_MAX_EVENTS)
    chronic: tuple[ChronicView, ...] = ()
    groups: Mapping[str, list[PatternRow]] = field(default_factory=dict)


def instance_views(
    facts: Iterable[Facts],
    verdicts: Mapping[str, Verdict],
    histories: Mapping[str, InstanceHistory],
    opt_out_tag: str,
    window_start: datetime,
) -> list[InstanceView]:
    """One view per instance, worst verdict first, then by Name and id so a group reads together."""
    views = []
    for f in facts:
        i = f.instance
        v = verdicts[i.instance_id]
        h = histories.get(i.instance_id)
        marks = tuple(Mark(a.at, a.kind.value) for a in (h.actions if h else ()) if a.taken and a.at >= window_start)
        views.append(
            InstanceView(
                instance_id=i.instance_id,
                name=i.name,
                verdict=v.kind,
                reasons=v.reasons,
                availability_zone=i.availability_zone or "",
                instance_type=i.instance_type or "",
                probe=_probe_text(f),
                memory_points=f.memory.points if f.memory else (),
                memory_percent=v.memory_percent,
                slope_per_min=v.memory_slope_per_min,
                minutes_to_exhaustion=v.minutes_to_exhaustion,
                opted_out=opt_out_tag in i.tags,
                rung=h.rung if h else 0,
                in_flight=bool(h and h.in_flight_key),
                quarantined=(h.quarantine_reason or "quarantined") if h and h.quarantined_at else None,
                chronic=bool(h and h.chronic_since),
                actions=marks,
            )
        )
    views.sort(key=_worst_first)
    return views


def _probe_text(f: Facts) -> str:
    if f.probe is None:
        return "not probed"
    if f.probe.outcome is ProbeOutcome.OK:
        return f"ok in {1000 * (f.probe.ok_latency_s or 0):.0f} ms"
    return f"{f.probe.outcome.value} ({f.probe.failed_attempts} of {len(f.probe.attempts)} attempts failed)"


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """crawler-2 before crawler-10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


def _worst_first(view: InstanceView) -> tuple[object, ...]:
    """Sick first, by verdict; among the healthy, those orch is busy with (in flight, chronic, on the ladder) first."""
    busy = view.in_flight or view.chronic or view.rung > 0 or bool(view.actions)
    return (not view.needs_a_look, SEVERITY.index(view.verdict), not busy, _natural(view.name), view.instance_id)


def _probe_events(facts: Iterable[Facts], verdicts: Mapping[str, Verdict]) -> list[TimelineEvent]:
    """Every attempt against an instance in trouble; the answering rest as one row, not twenty."""
    events, answered, latencies = [], 0, []
    last_at: datetime | None = None
    for f in facts:
        if f.probe is None:
            continue
        i = f.instance
        if verdicts[i.instance_id].kind is VerdictKind.HEALTHY and f.probe.outcome is ProbeOutcome.OK:
            answered += 1
            latencies.append(f.probe.ok_latency_s or 0.0)
            last_at = max(last_at or f.probe.last.started_at, f.probe.last.started_at)
            continue
        for a in f.probe.attempts:
            said = a.banner or a.detail
            text = f"SSH probe {a.outcome.value} in {a.latency_s * 1000:.0f} ms" + (f": {said}" if said else "")
            events.append(TimelineEvent(a.started_at, EventKind.PROBE, text, i.instance_id, i.name, a.outcome.is_failure))
    if answered and last_at is not None:
        text = f"{answered} healthy instance(s) answered SSH (median {median(latencies) * 1000:.0f} ms)"
        events.append(TimelineEvent(last_at, EventKind.PROBE, text))
    return events


def _verdict_events(facts: Iterable[Facts], verdicts: Mapping[str, Verdict], at: datetime) -> list[TimelineEvent]:
    events = []
    for f in facts:
        v = verdicts[f.instance.instance_id]
        if v.kind is VerdictKind.HEALTHY:
            continue
        why = "; ".join(v.reasons[:2])
        severe = v.kind in (VerdictKind.UNREACHABLE, VerdictKind.AWS_IMPAIRED, VerdictKind.MEMORY_CRITICAL)
        events.append(
            TimelineEvent(at, EventKind.VERDICT, f"{v.kind.value}" + (f": {why}" if why else ""), v.instance_id, f.instance.name, severe)
        )
    return events


def _sweep_events(sweeps: Iterable[SweepRecord], names: Mapping[str, str], since: datetime) -> list[TimelineEvent]:
    """One row per sweep; a block once per instance and rule (its latest), not once per sweep."""
    events: list[TimelineEvent] = []
    latest_block: dict[tuple[str, str], TimelineEvent] = {}
    for s in sorted(sweeps, key=lambda s: s.started_at):
        if s.started_at < since:
            continue
        summary: Mapping[str, Any] = s.summary or {}
        counts = {k: n for k, n in (summary.get("verdicts") or {}).items() if k != "healthy"}
        actions = summary.get("actions") or []
        blocked = summary.get("blocked") or []
        text = f"{s.mode} sweep of {summary.get('instances', '?')} instance(s)"
        text += ": " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) if counts else "all healthy")
        if actions:
            text += f"; {len(actions)} action(s)"
        if blocked:
            text += f"; {summary.get('blocked_total', len(blocked))} blocked"
        if s.partial:
            text += " (partial)"
        events.append(TimelineEvent(s.started_at, EventKind.SWEEP, text, severe=s.partial))
        for b in blocked:
            instance_id = str(b.get("instance_id", ""))
            rule = str(b.get("rule", ""))
            why = str(b.get("why", ""))
            latest_block[(instance_id, rule)] = TimelineEvent(
                s.started_at,
                EventKind.BLOCKED,
                f"{b.get('action', 'action')} held back" + (f" ({rule})" if rule else "") + f": {why}",
                instance_id,
                names.get(instance_id, ""),
            )
    return events + list(latest_block.values())


def _action_events(records: Iterable[ActionRecord], names: Mapping[str, str], since: datetime) -> list[TimelineEvent]:
    events = []
    for r in records:
        if r.created_at < since:
            continue
        text = f"{r.action.value} {r.status.value}: {r.reason}" + (f" ({r.detail})" if r.detail else "")
        cause = r.evidence.get("console_summary") if isinstance(r.evidence, dict) else None
        if cause:
            text += f"; console: {cause}"
        severe = r.status in (ActionStatus.FAILED, ActionStatus.INTENT)
        events.append(TimelineEvent(r.created_at, EventKind.ACTION, text, r.instance_id, names.get(r.instance_id, ""), severe))
    return events


def _history_events(histories: Mapping[str, InstanceHistory], names: Mapping[str, str], since: datetime) -> list[TimelineEvent]:
    events = []
    for instance_id, h in histories.items():
        name = names.get(instance_id, "")
        for a in h.actions:
            if a.verified_at and a.verified_at >= since:
                events.append(
                    TimelineEvent(
                        a.verified_at, EventKind.VERIFIED, f"{a.kind.value} verified: the instance answered SSH again", instance_id, name
                    )
                )
            if a.failed_at and a.failed_at >= since:
                events.append(
                    TimelineEvent(
                        a.failed_at, EventKind.FAILED, f"{a.kind.value} failed: {a.failure or 'not back in time'}", instance_id, name, True
                    )
                )
            if a.recurred_at and a.recurred_at >= since:
                events.append(
                    TimelineEvent(a.recurred_at, EventKind.FAILED, f"trouble came back after the {a.kind.value}", instance_id, name, True)
                )
        if h.quarantined_at and h.quarantined_at >= since:
            events.append(
                TimelineEvent(h.quarantined_at, EventKind.QUARANTINE, f"quarantined: {h.quarantine_reason}", instance_id, name, True)
            )
    return events


def timeline(
    facts: list[Facts],
    verdicts: Mapping[str, Verdict],
    histories: Mapping[str, InstanceHistory],
    actions: Iterable[ActionRecord],
    sweeps: Iterable[SweepRecord],
    now: datetime,
    hours: float = TIMELINE_HOURS,
    limit: int = TIMELINE_MAX_EVENTS,
) -> tuple[list[TimelineEvent], int]:
    """Probes and verdicts of this scan, earlier sweeps, actions and what became of them: newest first, and how many were left off."""
    since = now - timedelta(hours=hours)
    names = {f.instance.instance_id: f.instance.name for f in facts}
    events = (
        _probe_events(facts, verdicts)
        + _verdict_events(facts, verdicts, now)
        + _sweep_events(sweeps, names, since)
        + _action_events(actions, names, since)
        + _history_events(histories, names, since)
    )
    order = list(EventKind)
    events.sort(key=lambda e: (e.at, order.index(e.kind), e.instance_id, e.text), reverse=True)
    return events[:limit], max(0, len(events) - limit)


def build_page(
    *,
    facts: list[Facts],
    verdicts: list[Verdict],
    histories: Mapping[str, InstanceHistory],
    actions: Iterable[ActionRecord],
    sweeps: Iterable[SweepRecord],
    chronic: Iterable[ChronicPattern],
    groups: Mapping[str, list[PatternRow]],
    now: datetime,
    region: str,
    selector: str,
    opt_out_tag: str,
    critical_percent: float,
    exhaustion_percent: float,
    window_minutes: int,
    ssm_configured: bool = False,
) -> ReportPage:
    by_id = {v.instance_id: v for v in verdicts}
    events, dropped = timeline(facts, by_id, histories, actions, sweeps, now)
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.kind.value] = counts.get(v.kind.value, 0) + 1
    return ReportPage(
        generated_at=now,
        region=region,
        selector=selector,
        critical_percent=critical_percent,
        exhaustion_percent=exhaustion_percent,
        window_minutes=window_minutes,
        verdict_counts={k.value: counts[k.value] for k in SEVERITY if k.value in counts},
        instances=tuple(instance_views(facts, by_id, histories, opt_out_tag, now - timedelta(minutes=window_minutes))),
        timeline=tuple(events),
        timeline_dropped=dropped,
        chronic=tuple(ChronicView(p.describe(ssm_configured), p.members) for p in chronic),
        groups=groups,
    )
