"""Memory over time as inline SVG, drawn by hand: no library, no script, nothing fetched.

Every chart has the same axes (the report's window, 0-100%), so a column of charts
compares at a glance; the critical and exhaustion levels are drawn as lines and orch's
actions as marks at the moment they were taken. Text is escaped here; callers pass
plain strings. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Iterable, Sequence


@dataclass(frozen=True, slots=True)
class Mark:
    at: datetime
    label: str


@dataclass(frozen=True, slots=True)
class Frame:
    """Where the plot sits inside the SVG and what it spans."""

    start: datetime
    end: datetime
    width: int = 420
    height: int = 130
    left: int = 34  # room for the y labels
    right: int = 8
    top: int = 8
    bottom: int = 18  # room for the time labels

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        share = min(1.0, max(0.0, (at - self.start).total_seconds() / span))
        return self.left + share * (self.width - self.left - self.right)

    def y(self, percent: float) -> float:
        share = min(100.0, max(0.0, percent)) / 100.0
        return self.top + (1.0 - share) * (self.height - self.top - self.bottom)


def _n(value: float) -> str:
    return f"{value:.1f}"


def memory_chart(
    points: Sequence[tuple[datetime, float]],
    frame: Frame,
    *,
    chart_id: str,
    css_class: str = "",
    critical_percent: float = 95.0,
    exhaustion_percent: float | None = None,
    marks: Iterable[Mark] = (),
    title: str = "",
) -> str:
    """One ``<svg>`` element: grid, critical line, the memory curve and area, action marks."""
    f = frame
    x0, x1 = f.left, f.width - f.right
    y_bottom = f.y(0)
    parts = [
        f'<svg id="{escape(chart_id)}" class="memory-chart {escape(css_class)}" viewBox="0 0 {f.width} {f.height}" '
        f'width="{f.width}" height="{f.height}" role="img" aria-label="{escape(title or "memory")}">',
        f"<title>{escape(title or 'memory')}</title>",
    ]
    for level in (0, 50, 100):
        y = _n(f.y(level))
        parts.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="axis" x="{x0 - 4}" y="{_n(f.y(level) + 3)}" text-anchor="end">{level}%</text>')
    parts.append(f'<text class="axis" x="{x0}" y="{f.height - 4}">{f.start:%H:%M}</text>')
    parts.append(f'<text class="axis" x="{x1}" y="{f.height - 4}" text-anchor="end">{f.end:%H:%M} UTC</text>')
    if exhaustion_percent is not None and exhaustion_percent != critical_percent:
        y = _n(f.y(exhaustion_percent))
        parts.append(
            f'<line class="exhaustion" x1="{x0}" x2="{x1}" y1="{y}" y2="{y}"><title>exhaustion {exhaustion_percent:g}%</title></line>'
        )
    y = _n(f.y(critical_percent))
    parts.append(f'<line class="critical" x1="{x0}" x2="{x1}" y1="{y}" y2="{y}"><title>critical {critical_percent:g}%</title></line>')
    parts.append(f'<text class="critical-label" x="{x0 + 3}" y="{_n(f.y(critical_percent) - 3)}">critical {critical_percent:g}%</text>')
    shown = [(at, v) for at, v in points if f.start <= at <= f.end]
    if shown:
        line = " ".join(f"{_n(f.x(at))},{_n(f.y(v))}" for at, v in shown)
        area = f"{_n(f.x(shown[0][0]))},{_n(y_bottom)} {line} {_n(f.x(shown[-1][0]))},{_n(y_bottom)}"
        parts.append(f'<polygon class="area" points="{area}"/>')
        parts.append(f'<polyline class="memory" points="{line}"/>')
        at, last = shown[-1]
        parts.append(
            f'<circle class="now" cx="{_n(f.x(at))}" cy="{_n(f.y(last))}" r="2.5"><title>{last:.1f}% at {at:%H:%M} UTC</title></circle>'
        )
    else:
        parts.append(
            f'<text class="no-data" x="{_n((x0 + x1) / 2)}" y="{_n(f.y(50) + 4)}" text-anchor="middle">no memory data in the window</text>'
        )
    for m in marks:
        if not f.start <= m.at <= f.end:
            continue
        x = _n(f.x(m.at))
        parts.append(
            f'<g class="action-mark"><line x1="{x}" x2="{x}" y1="{f.top}" y2="{_n(y_bottom)}"/>'
            f'<text x="{x}" y="{f.top + 8}" text-anchor="middle">{escape(m.label)}</text>'
            f"<title>{escape(m.label)} at {m.at:%H:%M:%S} UTC</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
