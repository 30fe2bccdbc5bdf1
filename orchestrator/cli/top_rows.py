"""`orch top`'s rows: one per instance of a scan, which of them to show and in which order. Pure.

Rows, worst first by default: by verdict severity (unreachable first, healthy last),
then by memory, highest first. ``--sort memory|name|id``, ``--only unhealthy`` and the
``/`` filter (part of a name, id, AZ or verdict) change that; live, the keys do. Names
sort naturally: crawler-2 before crawler-10.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from orchestrator.cli.render import SEVERITY, by_name  # one severity order and one natural order with `orch scan`
from orchestrator.decide.memory import since_cycle
from orchestrator.model import ActionKind, Facts, InstanceHistory, ProbeOutcome, Verdict, VerdictKind


class SortKey(str, enum.Enum):
    WORST = "worst"
    MEMORY = "memory"
    NAME = "name"
    ID = "id"

    def next(self) -> SortKey:
        """The `s` key: worst -> memory -> name -> id -> worst."""
        order = list(SortKey)
        return order[(order.index(self) + 1) % len(order)]


class Only(str, enum.Enum):
    ALL = "all"
    UNHEALTHY = "unhealthy"

    def toggled(self) -> Only:
        return Only.ALL if self is Only.UNHEALTHY else Only.UNHEALTHY


@dataclass(frozen=True, slots=True)
class TopRow:
    """One instance as `orch top` shows it."""

    instance_id: str
    name: str
    az: str
    verdict: VerdictKind
    opted_out: bool = False
    probe: ProbeOutcome | None = None
    latency_ms: float | None = None
    memory_percent: float | None = None
    slope_per_min: float | None = None
    minutes_to_exhaustion: float | None = None
    memory_window: tuple[float, ...] = ()  # the metric window's values, oldest first
    rung: int = 0  # the ladder's next rung (index), as the history says
    next_rung: ActionKind | None = None  # None: past the last rung
    in_flight: ActionKind | None = None  # an action taken, not yet verified
    in_flight_since: datetime | None = None
    chronic: bool = False
    quarantined: bool = False
    quarantine_reason: str = ""


def rows_from(
    facts: Iterable[Facts],
    verdicts: Iterable[Verdict],
    histories: Mapping[str, InstanceHistory],
    chronic_ids: Iterable[str],
    ladder: Sequence[ActionKind],
    opt_out_tag: str,
) -> list[TopRow]:
    """One row per instance of a scan, in the scan's order."""
    by_id = {v.instance_id: v for v in verdicts}
    chronic = frozenset(chronic_ids)
    rows = []
    for f in facts:
        inst = f.instance
        v = by_id[inst.instance_id]
        h = histories.get(inst.instance_id) or InstanceHistory(inst.instance_id)
        in_flight = h.in_flight_key is not None
        rows.append(
            TopRow(
                instance_id=inst.instance_id,
                name=inst.name,
                az=inst.availability_zone,
                verdict=v.kind,
                opted_out=opt_out_tag in inst.tags,
                probe=f.probe.outcome if f.probe else None,
                latency_ms=1000 * f.probe.ok_latency_s if f.probe and f.probe.ok_latency_s is not None else None,
                memory_percent=v.memory_percent,
                slope_per_min=v.memory_slope_per_min,
                minutes_to_exhaustion=v.minutes_to_exhaustion,
                memory_window=_window(f, v, h),
                rung=h.rung,
                next_rung=ladder[h.rung] if h.rung < len(ladder) else None,
                in_flight=h.last_action if in_flight else None,
                in_flight_since=h.last_action_at if in_flight else None,
                chronic=inst.instance_id in chronic,
                quarantined=h.quarantined_at is not None,
                quarantine_reason=h.quarantine_reason,
            )
        )
    return rows


def _window(f: Facts, v: Verdict, h: InstanceHistory) -> tuple[float, ...]:
    """The memory window; when the verdict set every point aside (all from before orch's last
    reboot), only this cycle's, so "-" never stands beside the last cycle's full sparkline."""
    if not f.memory:
        return ()
    points = sorted(f.memory.points)
    if v.memory_percent is None:
        points = since_cycle(points, h.cycle_started_at)
    return tuple(value for _, value in points)


# -- which rows, in which order ------------------------------------------------------


def _memory_first(row: TopRow) -> float:
    return -row.memory_percent if row.memory_percent is not None else 1.0


SORTS: dict[SortKey, Callable[[TopRow], tuple[Any, ...]]] = {
    SortKey.WORST: lambda r: (SEVERITY.index(r.verdict), _memory_first(r), by_name(r.name, r.instance_id)),
    SortKey.MEMORY: lambda r: (_memory_first(r), SEVERITY.index(r.verdict), by_name(r.name, r.instance_id)),
    SortKey.NAME: lambda r: by_name(r.name, r.instance_id),  # crawler-2 before crawler-10
    SortKey.ID: lambda r: (r.instance_id,),
}


def matches(row: TopRow, needle: str) -> bool:
    """The `/` filter: a case-insensitive part of the name, id, AZ or verdict."""
    wanted = needle.strip().lower()
    return not wanted or any(wanted in field.lower() for field in (row.name, row.instance_id, row.az, row.verdict.value))


def arrange(rows: Iterable[TopRow], sort: SortKey, only: Only, needle: str = "") -> list[TopRow]:
    shown = [r for r in rows if (only is Only.ALL or r.verdict is not VerdictKind.HEALTHY) and matches(r, needle)]
    return sorted(shown, key=SORTS[sort])


def row_document(row: TopRow) -> dict[str, Any]:
    """`orch top -o json`: one object per row (timestamps as elsewhere in orch's JSON)."""
    return {
        "instance_id": row.instance_id,
        "name": row.name,
        "az": row.az,
        "verdict": row.verdict.value,
        "opted_out": row.opted_out,
        "probe": row.probe.value if row.probe else None,
        "probe_latency_ms": None if row.latency_ms is None else round(row.latency_ms, 1),
        "memory_percent": _rounded(row.memory_percent, 2),
        "memory_slope_per_min": _rounded(row.slope_per_min, 3),
        "minutes_to_exhaustion": _rounded(row.minutes_to_exhaustion, 1),
        "memory_window": list(row.memory_window),
        "ladder_rung": row.rung,
        "next_rung": row.next_rung.value if row.next_rung else None,
        "in_flight": row.in_flight.value if row.in_flight else None,
        "in_flight_since": row.in_flight_since,
        "chronic": row.chronic,
        "quarantined": row.quarantined,
        "quarantine_reason": row.quarantine_reason or None,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
