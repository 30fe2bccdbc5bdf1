"""Fleet patterns: what the unhealthy and leaking instances have in common.

When seven of eight boxes die within hours, the question is "what changed?": an AMI,
a launch template version, an instance type, a group, an app version tag. Pure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Callable, Iterable, Mapping

from orchestrator.decide.chronic import Chronic
from orchestrator.model import ActionAttempt, Facts, Instance, InstanceHistory, Verdict, VerdictKind

UNHEALTHY = frozenset({VerdictKind.UNREACHABLE, VerdictKind.AWS_IMPAIRED, VerdictKind.MEMORY_CRITICAL, VerdictKind.METRICS_STALE})
# One definition of "leaking", the verdict's: `orch report`'s leaking column adds up to the
# memory-exhaustion-forecast count in the verdicts line (a rise too slow to forecast
# exhaustion is drift, which diagnose already judged healthy).
LEAKING = frozenset({VerdictKind.MEMORY_FORECAST})
# Worst first: what needs a look leads the fleet table and the HTML report.
SEVERITY = (
    VerdictKind.UNREACHABLE,
    VerdictKind.AWS_IMPAIRED,
    VerdictKind.MEMORY_CRITICAL,
    VerdictKind.MEMORY_FORECAST,
    VerdictKind.METRICS_STALE,
    VerdictKind.UNKNOWN,
    VerdictKind.HEALTHY,
)


@dataclass(frozen=True, slots=True)
class PatternRow:
    value: str
    total: int
    unhealthy: int
    leaking: int
    instance_ids: tuple[str, ...]  # the unhealthy or leaking ones

    @property
    def share(self) -> float:
        return (self.unhealthy + self.leaking) / self.total if self.total else 0.0


def _template(i: Instance) -> str:
    if not i.launch_template_id:
        return "-"
    return f"{i.launch_template_id} v{i.launch_template_version or '?'}"


def dimensions(tag: str | None) -> dict[str, Callable[[Instance], str]]:
    dims: dict[str, Callable[[Instance], str]] = {
        "ami": lambda i: i.image_id or "-",
        "launch template": _template,
        "instance type": lambda i: i.instance_type or "-",
        "auto scaling group": lambda i: i.asg_name or "-",
        "availability zone": lambda i: i.availability_zone or "-",
    }
    if tag:
        dims[f"tag {tag}"] = lambda i: i.tags.get(tag, "-")
    return dims


def patterns(facts: Iterable[Facts], verdicts: Mapping[str, Verdict], tag: str | None = None) -> dict[str, list[PatternRow]]:
    """Per dimension, its values with counts, most troubled share first."""
    running = [f for f in facts if f.instance.state == "running"]
    result: dict[str, list[PatternRow]] = {}
    for name, key in dimensions(tag).items():
        groups: dict[str, list[Facts]] = defaultdict(list)
        for f in running:
            groups[key(f.instance)].append(f)
        rows = []
        for value, members in groups.items():
            vs = [verdicts[m.instance.instance_id] for m in members]
            unhealthy = [v for v in vs if v.kind in UNHEALTHY]
            leaking = [v for v in vs if v.kind in LEAKING]
            rows.append(
                PatternRow(value, len(members), len(unhealthy), len(leaking), tuple(sorted(v.instance_id for v in unhealthy + leaking)))
            )
        rows.sort(key=lambda r: (-r.share, -r.total, r.value))
        result[name] = rows
    return result


# -- chronic patterns --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChronicPattern:
    """Instances with the same chronic condition and what they have in common: "what changed?"."""

    shared: tuple[tuple[str, str], ...]  # (dimension, value) every member shares, e.g. ("ami", "ami-0abc")
    members: tuple[str, ...]  # the chronic instances
    alike: int  # running instances that share those values, chronic or not
    since: datetime
    exhaustion_minutes: float | None
    growth_per_min: float | None
    process: str
    process_rss_kb: int | None
    actions_24h: int  # actions orch took on the members in the last 24 hours
    ahead_24h: int  # of which while SSH still answered, ahead of the exhaustion
    ssh_lost_minutes: float | None = None  # median, per action in 24 h, from the action to SSH seen answering again

    @property
    def key(self) -> str:
        """Stable across sweeps while the pattern holds: what alerts deduplicate on."""
        return "chronic:" + ",".join(f"{d}={v}" for d, v in self.shared)

    def describe(self, ssm_configured: bool) -> str:
        where = ", ".join(f"{d} {v}" if d != "ami" else v for d, v in self.shared)
        text = f"chronic memory leak on {len(self.members)} of {self.alike} instances"
        text += f" ({where}, since {self.since:%Y-%m-%d %H:%M} UTC)" if where else f" (since {self.since:%Y-%m-%d %H:%M} UTC)"
        shape = []
        if self.growth_per_min is not None:
            shape.append(f"memory grows {self.growth_per_min:.1f}%/min after boot")
        if self.exhaustion_minutes is not None:
            shape.append(f"runs out about {self.exhaustion_minutes:.0f} minutes after boot")
        if shape:
            text += ": " + " and ".join(shape)
        if self.process:
            size = f" at {self.process_rss_kb / 1024 / 1024:.1f} GiB" if self.process_rss_kb else ""
            text += f"; the kernel killed {self.process}{size}"
        if self.actions_24h:
            ahead = f", {self.ahead_24h} of them ahead of exhaustion" if self.ahead_24h else ""
            lost = f", about {max(1, round(self.ssh_lost_minutes))} min of SSH lost each" if self.ssh_lost_minutes is not None else ""
            text += f"; orch acted on them {self.actions_24h} times in 24 h{ahead}{lost}"
        return text + f". Reboots treat the symptom: fix the leak, or {self.guard_advice(ssm_configured)}."

    def guard_advice(self, ssm_configured: bool) -> str:
        """The guard (docs/guard.md): the kernel kills the service inside a limit and it restarts; sshd keeps its room."""
        if self.process:
            return f"`orch guard apply --chronic` would restart {self.process} in seconds instead"
        if ssm_configured:
            return "`orch guard apply --chronic --process NAME` would restart the service in seconds instead"
        return "`orch guard apply --chronic --process NAME` (or memory.ssm_commands) would restart the service instead"


def _ssh_lost_minutes(actions: list[ActionAttempt]) -> float | None:
    """Median minutes from each verified action to the sweep that saw SSH answer again.

    A lower bound of what SSH cost for an action taken after SSH died (the minutes before
    it are not in the attempt), and at the sweep's granularity."""
    spans = [(a.verified_at - a.at).total_seconds() / 60 for a in actions if a.verified_at is not None and a.verified_at >= a.at]
    return median(spans) if spans else None


PATTERN_DIMENSIONS = ("ami", "launch template", "instance type", "auto scaling group")


def chronic_patterns(
    facts: Iterable[Facts],
    conditions: Mapping[str, Chronic],
    histories: Mapping[str, InstanceHistory],
    now: datetime,
    tag: str | None = None,
) -> list[ChronicPattern]:
    """Chronic instances grouped by AMI and launch template (what most often changed), with what else they share."""
    running = [f for f in facts if f.instance.state == "running"]
    dims = dimensions(tag)
    groups: dict[tuple[str, str], list[Facts]] = defaultdict(list)
    for f in running:
        if f.instance.instance_id in conditions:
            groups[(dims["ami"](f.instance), dims["launch template"](f.instance))].append(f)
    found = []
    day = timedelta(hours=24)
    for members in groups.values():
        names = [n for n in (*PATTERN_DIMENSIONS, *(d for d in dims if d.startswith("tag "))) if n in dims]
        shared = []
        for name in names:
            values = {dims[name](m.instance) for m in members}
            if len(values) == 1 and (value := values.pop()) != "-":
                shared.append((name, value))
        alike = [f for f in running if all(dims[d](f.instance) == v for d, v in shared)]
        ids = tuple(sorted(m.instance.instance_id for m in members))
        cs = [conditions[i] for i in ids]
        recent = [a for i in ids for a in histories[i].actions if a.taken and now - a.at < day] if histories else []
        minutes = [c.exhaustion_minutes for c in cs if c.exhaustion_minutes is not None]
        growth = [c.growth_per_min for c in cs if c.growth_per_min is not None]
        processes = Counter(c.process for c in cs if c.process)
        process = processes.most_common(1)[0][0] if processes else ""
        found.append(
            ChronicPattern(
                shared=tuple(shared),
                members=ids,
                alike=len(alike),
                since=min(c.since for c in cs),
                exhaustion_minutes=median(minutes) if minutes else None,
                growth_per_min=median(growth) if growth else None,
                process=process,
                process_rss_kb=max((c.process_rss_kb for c in cs if c.process == process and c.process_rss_kb), default=None),
                actions_24h=len(recent),
                ahead_24h=sum(1 for a in recent if a.proactive),
                ssh_lost_minutes=_ssh_lost_minutes(recent),
            )
        )
    found.sort(key=lambda p: (-len(p.members), p.key))
    return found
