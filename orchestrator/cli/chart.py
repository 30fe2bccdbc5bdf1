"""Memory over time as a chart in the terminal, for `orch explain`. Pure: data in, lines out.

A sparkline says "it went up"; a person deciding whether to trust a reboot wants to see
how fast, against which line, and what orch did when. So the chart draws:

- memory % as a filled area (one column per time bucket, the bucket's highest point:
  exhaustion is about peaks), with a labelled y axis whose top is always 100% and whose
  bottom is fitted below the data and the critical line (so a box pinned at 98% shows
  where 95% is);
- a time axis labelled HH:MM UTC at round minutes;
- the critical line (``╌``) and the exhaustion line (``━``) across the plot; when both
  fall in one text row the exhaustion line is drawn and the legend says so;
- the forecast (``·``) from now along the trend to where it meets exhaustion, as
  orchestrator.decide.memory assessed it (the x axis extends past now to show it, at most by
  the window's length again);
- a marker (``┊`` in the plot, a letter under the axis) at each moment orch acted, and
  ``B`` where the box booted again (memory fell after the action: a new cycle).

A gap in the area is a gap in the data: an agent that fell silent shows as silence.
Every line is at most ``width`` characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from orchestrator.model import ActionKind

EIGHTHS = " ▁▂▃▄▅▆▇█"
CRITICAL_GLYPH = "╌"
EXHAUSTION_GLYPH = "━"
FORECAST_GLYPH = "·"
ACTION_GLYPH = "┊"
MANY_ACTIONS = "+"  # two or more actions fall in one column
ACTION_LETTERS: dict[ActionKind, str] = {
    ActionKind.REBOOT: "R",
    ActionKind.STOP_START: "S",
    ActionKind.REPLACE: "X",
    ActionKind.RUN_COMMAND: "C",
    ActionKind.START: "T",
}
AXIS_WIDTH = 4  # "100┤": three digits and the axis
TICK_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
LABEL = 5  # "HH:MM"
MIN_PLOT = 10

ColumnOf = Callable[[datetime], "int | None"]


@dataclass(frozen=True, slots=True)
class ActionMark:
    at: datetime
    kind: ActionKind


@dataclass(frozen=True, slots=True)
class MemoryChart:
    """What the chart shows; every time is UTC."""

    points: Sequence[tuple[datetime, float]]
    start: datetime  # left edge: the metric window's start
    now: datetime
    critical_percent: float
    exhaustion_percent: float
    slope_per_min: float | None = None
    minutes_to_exhaustion: float | None = None  # from orchestrator.decide.memory's assessment
    actions: Sequence[ActionMark] = ()
    boots: Sequence[datetime] = ()  # where a new cycle began (memory fell after a reboot): B under the axis


BOOT_LETTER = "B"


def render_chart(chart: MemoryChart, width: int, height: int = 10) -> list[str]:
    """The chart as lines of at most ``width`` characters (plot, axes, markers, legend)."""
    height = max(3, height)
    plot_width = max(MIN_PLOT, width - AXIS_WIDTH - 1)
    end = _right_edge(chart)
    span = max(60.0, (end - chart.start).total_seconds())
    column_s = span / plot_width

    def column_of(at: datetime) -> int | None:
        x = (at - chart.start).total_seconds() / column_s
        return int(x) if 0 <= x < plot_width + 1e-9 else None

    values = _buckets(chart.points, column_of, plot_width)
    low = fitted_floor([v for v in values if v is not None], chart.critical_percent)
    step = (100.0 - low) / height
    grid = [[" "] * plot_width for _ in range(height)]

    def row_of(value: float) -> int:
        """The row (0 at the top) whose band [low + k*step, low + (k+1)*step) holds ``value``."""
        band = min(height - 1, max(0, int((value - low) / step)))
        return height - 1 - band

    critical_row = row_of(chart.critical_percent) if chart.critical_percent >= low else None
    exhaustion_row = row_of(chart.exhaustion_percent)
    for row, glyph in ((critical_row, CRITICAL_GLYPH), (exhaustion_row, EXHAUSTION_GLYPH)):
        if row is not None:
            grid[row] = [glyph] * plot_width
    marks = _action_columns(chart.actions, column_of)
    for boot in chart.boots:
        col = column_of(boot)
        if col is not None:
            marks[col] = BOOT_LETTER if marks.get(col, BOOT_LETTER) == BOOT_LETTER else MANY_ACTIONS
    for col in marks:
        for row in range(height):
            grid[row][col] = ACTION_GLYPH
    now_col = column_of(chart.now)
    forecast_end = _forecast_end(chart)
    if forecast_end is not None and now_col is not None:
        # The assessment's own line: it meets exhaustion minutes_to_exhaustion after now.
        slope, eta = chart.slope_per_min or 0.0, chart.minutes_to_exhaustion or 0.0
        since_start = (chart.now - chart.start).total_seconds() / 60
        for col in range(now_col + 1, plot_width):
            minutes = (col + 0.5) * column_s / 60 - since_start
            level = min(chart.exhaustion_percent, chart.exhaustion_percent - slope * (eta - minutes))
            if level >= low:
                grid[row_of(level)][col] = FORECAST_GLYPH
    for col, value in enumerate(values):
        if value is None:
            continue
        for row in range(height):
            bottom = low + (height - 1 - row) * step
            filled = (value - bottom) / step
            if filled >= 1:
                grid[row][col] = EIGHTHS[-1]
            elif filled > 0:
                eighth = max(1, round(filled * 8))
                grid[row][col] = EIGHTHS[eighth]
    labels = _y_labels(height, low, row_of, chart, critical_row)
    lines = [f"{labels[row]:>3}┤{''.join(grid[row])}" for row in range(height)]
    ticks = _ticks(chart.start, column_s, plot_width)
    axis = ["─"] * plot_width
    for col, _ in ticks:
        axis[col] = "┬"
    lines.append("   └" + "".join(axis))
    lines.append(_place(" " * (AXIS_WIDTH + plot_width), [(AXIS_WIDTH + col - LABEL // 2, f"{at:%H:%M}") for col, at in ticks]))
    if marks:
        lines.append(_place(" " * (AXIS_WIDTH + plot_width), [(AXIS_WIDTH + col, letter) for col, letter in marks.items()]))
    lines.extend(_wrap(_legend(chart, critical_row, exhaustion_row, marks, forecast_end, end), width))
    return [line.rstrip()[:width] for line in lines]


def fitted_floor(values: Sequence[float], critical_percent: float) -> float:
    """The y axis's bottom: a multiple of 10 at least 10 points below the data and the
    critical line, so the area has a floor and the lines near the top have room."""
    lowest = min([*values, critical_percent])
    return max(0.0, math.floor((lowest - 10) / 10) * 10)


def _right_edge(chart: MemoryChart) -> datetime:
    """Now, or past it to where the forecast meets exhaustion (at most the window's length again)."""
    end = _forecast_end(chart)
    window = chart.now - chart.start
    if end is None:
        return chart.now
    return min(end + (end - chart.now) / 20, chart.now + window)


def _forecast_end(chart: MemoryChart) -> datetime | None:
    if chart.minutes_to_exhaustion is None or chart.slope_per_min is None or chart.slope_per_min <= 0:
        return None
    return chart.now + timedelta(minutes=max(0.0, chart.minutes_to_exhaustion))


def _buckets(points: Sequence[tuple[datetime, float]], column_of: ColumnOf, plot_width: int) -> list[float | None]:
    """Each column's highest point; a column between two points no further apart than
    twice the usual spacing takes the line between them (columns finer than the metric's
    period are not gaps), a longer silence stays blank."""
    usable = sorted((at, min(100.0, max(0.0, v))) for at, v in points if math.isfinite(v))
    values: list[float | None] = [None] * plot_width
    placed: list[tuple[int, float]] = []
    for at, value in usable:
        col = column_of(at)
        if col is None:
            continue
        col = min(col, plot_width - 1)
        current = values[col]
        values[col] = value if current is None else max(current, value)
        placed.append((col, value))
    gaps = sorted(b[0] - a[0] for a, b in zip(usable, usable[1:]) if b[0] > a[0])
    if not gaps:
        return values
    longest = 2 * gaps[len(gaps) // 2]
    for (c0, v0), (c1, v1), (t0, _), (t1, _) in zip(placed, placed[1:], usable, usable[1:]):
        if c1 - c0 < 2 or t1 - t0 > longest:
            continue
        for col in range(c0 + 1, c1):
            if values[col] is None:
                values[col] = v0 + (v1 - v0) * (col - c0) / (c1 - c0)
    return values


def _action_columns(actions: Sequence[ActionMark], column_of: ColumnOf) -> dict[int, str]:
    marks: dict[int, str] = {}
    for action in actions:
        col = column_of(action.at)
        if col is None:
            continue
        letter = ACTION_LETTERS[action.kind]
        marks[col] = letter if marks.get(col, letter) == letter else MANY_ACTIONS
    return marks


def _y_labels(height: int, low: float, row_of: Callable[[float], int], chart: MemoryChart, critical_row: int | None) -> list[str]:
    """100 at the top and the floor at the bottom always; the lines' values on their rows."""
    labels = [""] * height
    if critical_row is not None:
        labels[critical_row] = f"{chart.critical_percent:.0f}"
    labels[row_of(chart.exhaustion_percent)] = f"{chart.exhaustion_percent:.0f}"
    labels[0] = "100"
    labels[height - 1] = f"{low:.0f}"
    return labels


def _ticks(start: datetime, column_s: float, plot_width: int) -> list[tuple[int, datetime]]:
    """Round times (HH:MM) far enough apart for their labels, as (column, time)."""
    span_min = column_s * plot_width / 60
    every = next((m for m in TICK_MINUTES if span_min / m * (LABEL + 3) <= plot_width), TICK_MINUTES[-1])
    first = start.replace(second=0, microsecond=0)
    minute = first.hour * 60 + first.minute
    first += timedelta(minutes=(-minute) % every)
    if first < start:
        first += timedelta(minutes=every)
    ticks = []
    at = first
    while True:
        col = int((at - start).total_seconds() / column_s)
        if col >= plot_width:
            break
        if LABEL // 2 <= col + AXIS_WIDTH and col + LABEL - LABEL // 2 <= plot_width:
            ticks.append((col, at))
        at += timedelta(minutes=every)
    return ticks


def _place(blank: str, items: list[tuple[int, str]]) -> str:
    line = list(blank)
    for pos, text in items:
        pos = max(0, min(len(line) - len(text), pos))
        line[pos : pos + len(text)] = text
    return "".join(line)


def _legend(
    chart: MemoryChart,
    critical_row: int | None,
    exhaustion_row: int,
    marks: dict[int, str],
    forecast_end: datetime | None,
    end: datetime,
) -> list[str]:
    entries = [f"{EIGHTHS[-1]} memory % (UTC)", f"{EXHAUSTION_GLYPH} exhaustion {chart.exhaustion_percent:g}%"]
    if critical_row is not None and critical_row == exhaustion_row:
        entries.append(f"critical {chart.critical_percent:g}% (in the row of exhaustion)")
    else:
        entries.append(f"{CRITICAL_GLYPH} critical {chart.critical_percent:g}%")
    if forecast_end is not None:
        beyond = " (beyond the chart)" if forecast_end > end else ""
        entries.append(f"{FORECAST_GLYPH} trend: {chart.exhaustion_percent:g}% at {forecast_end:%H:%M} UTC{beyond}")
    letters = sorted(set(marks.values()))
    for kind, letter in ACTION_LETTERS.items():
        if letter in letters:
            entries.append(f"{letter} {kind.value}")
    if BOOT_LETTER in letters:
        entries.append(f"{BOOT_LETTER} boot: memory fell, a new cycle")
    if MANY_ACTIONS in letters:
        entries.append(f"{MANY_ACTIONS} several actions")
    if set(letters) - {BOOT_LETTER}:
        entries.append(f"{ACTION_GLYPH} orch acted")
    return entries


def _wrap(entries: list[str], width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for entry in entries:
        candidate = f"{current}  {entry}" if current else entry
        if len(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = entry
    if current:
        lines.append(current)
    return lines
