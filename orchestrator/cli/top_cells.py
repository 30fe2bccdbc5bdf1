"""`orch top`'s cell text: what each column says about one row, and the memory sparkline. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from orchestrator.cli.top_rows import TopRow
from orchestrator.model import ProbeOutcome

LEVELS = "▁▂▃▄▅▆▇"  # below the critical line, in seven steps from 0%
OVER = "█"  # at or above the critical line
OPTED_MARK = " *"
EMPTY = "-"


def verdict_cell(row: TopRow) -> str:
    return row.verdict.value + (OPTED_MARK if row.opted_out else "")


def ssh_cell(row: TopRow) -> str:
    """Latency when sshd answered, else how it failed."""
    if row.probe is None:
        return EMPTY
    if row.probe is ProbeOutcome.OK:
        return f"{row.latency_ms:.0f}ms" if row.latency_ms is not None else "ok"
    return row.probe.value


def memory_cell(row: TopRow) -> str:
    return EMPTY if row.memory_percent is None else f"{row.memory_percent:.0f}%"


def slope_cell(row: TopRow) -> str:
    if row.slope_per_min is None or abs(row.slope_per_min) < 0.05:
        return EMPTY
    return f"{row.slope_per_min:+.1f}/min"


def full_cell(row: TopRow) -> str:
    """Minutes until memory reaches exhaustion at the current trend."""
    m = row.minutes_to_exhaustion
    if m is None:
        return EMPTY
    if m <= 0:
        return "now"
    if m < 60:
        return f"{m:.0f}m"
    if m < 24 * 60:
        hours, minutes = divmod(round(m), 60)
        return f"{hours}h{minutes:02d}"
    return ">1d"


def ladder_cell(row: TopRow) -> str:
    """The rung the next action would take, once the ladder has moved."""
    if row.rung == 0:
        return EMPTY
    return f"{row.rung} {row.next_rung.value if row.next_rung else 'none left'}"


def acting_cell(row: TopRow, now: datetime) -> str:
    if row.in_flight is None:
        return EMPTY
    if row.in_flight_since is None:
        return row.in_flight.value
    minutes = max(0, int((now - row.in_flight_since).total_seconds() // 60))
    return f"{row.in_flight.value} {minutes}m"


def flags_cell(row: TopRow) -> str:
    words = [w for w, on in (("quarantined", row.quarantined), ("chronic", row.chronic)) if on]
    return " ".join(words) or EMPTY


def sparkline(values: Sequence[float], width: int, critical_percent: float) -> str:
    """The window in ``width`` cells (each its part's highest value), right-aligned.

    Below the critical line a cell is one of seven steps from 0%; at or above it the cell
    is full (``█``): the critical line is the top of the ``▇``.
    """
    if width <= 0 or not values:
        return ""
    n = len(values)
    cells = min(width, n)
    out = []
    for i in range(cells):
        part = values[i * n // cells : max(i * n // cells + 1, (i + 1) * n // cells)]
        peak = max(part)
        if peak >= critical_percent:
            out.append(OVER)
        else:
            out.append(LEVELS[min(len(LEVELS) - 1, max(0, int(peak / critical_percent * len(LEVELS))))])
    return "".join(out).rjust(width)
