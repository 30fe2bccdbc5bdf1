"""Fleet patterns: what the unhealthy and leaking instances have in common.

When seven of eight boxes die within hours, the question is "what changed?": an AMI,
a launch template version, an instance type, a group, an app version tag. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from orchestrator.model import Facts, Instance, Verdict, VerdictKind

UNHEALTHY = frozenset({VerdictKind.UNREACHABLE, VerdictKind.AWS_IMPAIRED, VerdictKind.MEMORY_CRITICAL, VerdictKind.METRICS_STALE})
# One definition of "leaking", the verdict's: `orch report`'s leaking column adds up to the
# memory-exhaustion-forecast count in the verdicts line (a rise too slow to forecast
# exhaustion is drift, which diagnose already judged healthy).
LEAKING = frozenset({VerdictKind.MEMORY_FORECAST})


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
