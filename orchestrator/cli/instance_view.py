"""One instance for people: its memory chart, the figure its verdict judged, its evidence. Pure.

Shared by `orch explain` and `orch top`'s instance screen (Enter), so both say the same
thing in the same words, and neither contradicts the verdict after a reboot.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from typing import Sequence

from orchestrator.cli.chart import ActionMark, MemoryChart, render_chart
from orchestrator.config import MemorySettings
from orchestrator.decide.memory import since_cycle
from orchestrator.model import Facts, InstanceHistory, Verdict
from orchestrator.state.store import ActionRecord

CHART_HEIGHT = 10
CHART_MAX_WIDTH = 120


def boot_at(points: Sequence[tuple[datetime, float]], cycle_start: datetime | None) -> datetime | None:
    """Where the current cycle began after orch's last action: the first point after memory fell
    (orchestrator.decide.memory.since_cycle, the judgement's own rule), if one came yet."""
    if cycle_start is None:
        return None
    kept = since_cycle(list(points), cycle_start)
    return kept[0][0] if kept else None


def memory_chart(facts: Facts, verdict: Verdict, actions: list[ActionRecord], now: datetime, memory: MemorySettings,
                 cycle_start: datetime | None = None) -> MemoryChart:
    """What `orch explain` draws: the window, the lines, the assessment's forecast, orch's actions, the boot after them."""
    points = facts.memory.points if facts.memory else ()
    boot = boot_at(points, cycle_start)
    start = now - timedelta(minutes=memory.window_minutes)
    if points:
        start = min(start, points[0][0])
    return MemoryChart(
        points=points,
        start=start,
        now=now,
        critical_percent=memory.critical_percent,
        exhaustion_percent=memory.exhaustion_percent,
        slope_per_min=verdict.memory_slope_per_min,
        minutes_to_exhaustion=verdict.minutes_to_exhaustion,
        actions=[ActionMark(r.created_at, r.action) for r in actions],
        boots=(boot,) if boot is not None else (),
    )


def memory_now(verdict: Verdict, last: tuple[datetime, float], history: InstanceHistory | None) -> str:
    """The figure the verdict judged, never one it set aside: after a reboot the points before
    it belong to the last cycle, and saying "now 35%" beside "no memory data" contradicts."""
    if verdict.memory_percent is not None:
        return f"now {verdict.memory_percent:.1f}%"
    cycle = history.cycle_started_at if history else None
    if cycle is not None:
        action = history.last_action.value if history and history.last_action else "action"
        return (f"no point of this cycle yet: orch's {action} at {cycle:%H:%M} UTC began it, and the box has not reported "
                f"since it came back (before: {last[1]:.1f}% at {last[0]:%H:%M})")
    return f"no usable point (last: {last[1]:.1f}% at {last[0]:%H:%M})"


def detail_lines(facts: Facts, verdict: Verdict, history: InstanceHistory | None, actions: Sequence[ActionRecord], now: datetime,
                 memory: MemorySettings, width: int, chart_height: int = CHART_HEIGHT) -> list[str]:
    """What `orch top` shows on Enter: explain's header, reasons and evidence wrapped whole,
    the chart with orch's actions and the boot, the probe's attempts and the last actions."""
    inst = facts.instance
    lines = [f"{inst.instance_id} {inst.name}  {inst.instance_type or ''} {inst.availability_zone}  {inst.private_ip or 'no private ip'}"
             f"  {inst.state}"[:width], f"verdict: {verdict.kind.value}"]
    for reason in verdict.reasons:
        lines += _wrapped(f"- {reason}", width, "  ")
    if verdict.evidence:
        lines += _wrapped(f"host-side evidence: {'; '.join(verdict.evidence)}", width, "  ")
    points = facts.memory.points if facts.memory else ()
    if points:
        first, last = points[0], points[-1]
        lines += _wrapped(f"memory %, {first[0]:%H:%M}-{last[0]:%H:%M} UTC: {memory_now(verdict, last, history)}", width, "  ")
        cycle = history.cycle_started_at if history else None
        lines += render_chart(memory_chart(facts, verdict, list(actions), now, memory, cycle), min(width, CHART_MAX_WIDTH), chart_height)
    else:
        lines.append("memory: no data")
    if facts.probe:
        for a in facts.probe.attempts:
            lines += _wrapped(f"probe {a.started_at:%H:%M:%S}: {a.outcome.value} in {a.latency_s * 1000:.0f} ms {a.banner or a.detail}",
                              width, "  ")
    if history:
        lines += _wrapped(f"ladder rung {history.rung}, {len(history.attempts)} action(s) recorded, in flight: "
                          f"{'yes' if history.in_flight_key else 'no'}"
                          + (f", quarantined: {history.quarantine_reason}" if history.quarantined_at else ""), width, "  ")
    for r in list(actions)[:5]:
        lines += _wrapped(f"{r.created_at:%Y-%m-%d %H:%M} {r.action.value} {r.status.value}: {r.reason}", width, "  ")
    return lines


def _wrapped(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(text, width=max(20, width), subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [""]
