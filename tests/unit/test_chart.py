"""The memory chart of `orch explain`: pure, fixed timestamps, every line inside the width."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.cli.chart import (
    ACTION_GLYPH,
    AXIS_WIDTH,
    CRITICAL_GLYPH,
    EXHAUSTION_GLYPH,
    FORECAST_GLYPH,
    ActionMark,
    MemoryChart,
    fitted_floor,
    render_chart,
)
from orchestrator.model import ActionKind

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
START = NOW - timedelta(minutes=60)


def minute(m: float) -> datetime:
    return START + timedelta(minutes=m)


def series(values: list[float | None]) -> list[tuple[datetime, float]]:
    """One point a minute from START; None leaves the minute out (the agent was silent)."""
    return [(minute(i), v) for i, v in enumerate(values) if v is not None]


LEAK = series([40 + 0.8 * i for i in range(60)])  # 40% -> 87%, 0.8/min
PINNED = series([98.5] * 45)  # hung at the top, silent for the last quarter hour
FLAT = series([30.0] * 60)
GAPPY = series([50.0] * 20 + [None] * 20 + [50.0] * 20)


def chart(points, **kw) -> MemoryChart:
    kw.setdefault("critical_percent", 95.0)
    kw.setdefault("exhaustion_percent", 97.0)
    return MemoryChart(points=points, start=START, now=NOW, **kw)


def plot_rows(lines: list[str], height: int) -> list[str]:
    return lines[:height]


CASES = {
    "empty": chart([]),
    "flat": chart(FLAT),
    "leak with forecast and a reboot": chart(LEAK, slope_per_min=0.8, minutes_to_exhaustion=12, actions=[ActionMark(minute(20), ActionKind.REBOOT)]),
    "pinned": chart(PINNED),
    "gappy": chart(GAPPY, actions=[ActionMark(minute(5), ActionKind.REBOOT), ActionMark(minute(5.1), ActionKind.STOP_START)]),
    "forecast far beyond": chart(LEAK, slope_per_min=0.01, minutes_to_exhaustion=900),
}


@pytest.mark.parametrize("width", [30, 60, 80, 120, 200])
@pytest.mark.parametrize("height", [3, 8, 10, 20])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_line_fits_the_width(name, width, height):
    lines = render_chart(CASES[name], width, height)
    assert len(lines) >= height + 2
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]


@pytest.mark.parametrize(
    "values, critical, floor",
    [
        ([], 95, 80),  # nothing yet: room under the critical line
        ([98.5, 99.0], 95, 80),  # pinned at the top: the lines still have room
        ([40, 87], 95, 30),  # a climb from 40%: its start is on the chart
        ([5, 20], 95, 0),  # never below 0
        ([55], 60, 40),
    ],
)
def test_the_y_axis_is_fitted_below_the_data_and_the_critical_line(values, critical, floor):
    assert fitted_floor(values, critical) == floor


def test_the_y_axis_is_labelled_100_at_the_top_and_its_floor_at_the_bottom():
    lines = render_chart(chart(LEAK), 80, 10)
    assert lines[0].startswith("100┤") and lines[9].startswith(" 30┤")
    assert all(line[AXIS_WIDTH - 1] == "┤" for line in lines[:10])
    assert lines[10].startswith("   └")


def test_the_lines_stand_on_their_own_rows_and_are_labelled():
    # floor 40 (data 50-70, critical 80), 6 points a row: 80% in row 3, 97% in the top row
    points = series([50 + i / 3 for i in range(60)])
    lines = render_chart(chart(points, critical_percent=80), 80, 10)
    assert lines[3].startswith(" 80┤") and CRITICAL_GLYPH * 20 in lines[3]
    assert EXHAUSTION_GLYPH * 20 in lines[0]
    assert not any(CRITICAL_GLYPH in line for i, line in enumerate(lines[:10]) if i != 3)
    legend = "\n".join(lines[12:])
    assert f"{CRITICAL_GLYPH} critical 80%" in legend and f"{EXHAUSTION_GLYPH} exhaustion 97%" in legend


def test_lines_in_one_row_are_said_in_the_legend():
    lines = render_chart(chart(LEAK), 80, 10)  # 7 points a row: 95% and 97% share the top row
    assert "critical 95% (in the row of exhaustion)" in "\n".join(lines)


def test_the_time_axis_has_round_hh_mm_labels_under_their_ticks():
    lines = render_chart(chart(FLAT), 80, 10)
    axis, labels = lines[10], lines[11]
    ticks = [i for i, ch in enumerate(axis) if ch == "┬"]
    assert len(ticks) >= 4
    shown = labels.split()
    assert shown[:3] == ["09:00", "09:10", "09:20"]
    for tick, text in zip(ticks, shown):
        assert labels[tick - 2 : tick + 3] == text  # centred under its tick


def test_a_filled_area_shows_the_memory_and_a_gap_shows_silence():
    lines = render_chart(chart(GAPPY), 65, 10)  # 60 plot columns, one a minute
    bottom = lines[9][AXIS_WIDTH:]
    assert bottom[:20] == "█" * 20 and bottom[20:40].strip() == "" and bottom[40:60] == "█" * 20


def test_the_forecast_runs_from_now_to_exhaustion_and_says_when():
    c = chart(LEAK, slope_per_min=0.8, minutes_to_exhaustion=12)
    lines = render_chart(c, 80, 10)
    plot = [line[AXIS_WIDTH:] for line in lines[:10]]
    columns = [col for row in plot for col, ch in enumerate(row) if ch == FORECAST_GLYPH]
    last_data = max(col for row in plot for col, ch in enumerate(row) if ch in "▁▂▃▄▅▆▇█")
    assert columns and min(columns) > last_data  # only after now
    assert FORECAST_GLYPH in plot[0]  # it reaches the exhaustion row
    assert "trend: 97% at 10:12 UTC" in "\n".join(lines)
    assert "10:10" in lines[11]  # the x axis goes past now to show it


def test_a_forecast_beyond_the_chart_says_so_and_no_trend_draws_none():
    far = "\n".join(render_chart(CASES["forecast far beyond"], 80, 10))
    assert "trend: 97% at 01:00 UTC (beyond the chart)" in far
    none = render_chart(chart(LEAK), 80, 10)
    assert not any(FORECAST_GLYPH in line for line in none)


def test_orch_s_actions_are_marked_where_they_happened():
    lines = render_chart(CASES["leak with forecast and a reboot"], 80, 10)
    marker_row = next(line for line in lines[12:] if line.strip() == "R")
    col = marker_row.index("R")
    assert lines[0][col] == ACTION_GLYPH  # the mark runs down the empty part of the plot
    # 20 minutes into a chart whose right edge is the forecast's end (about 72.6 min over 75 columns)
    assert 20 <= col - AXIS_WIDTH <= 21
    assert "R reboot" in "\n".join(lines) and f"{ACTION_GLYPH} orch acted" in "\n".join(lines)


def test_two_kinds_of_action_in_one_column_show_as_several():
    lines = render_chart(CASES["gappy"], 65, 10)
    assert any(line.strip() == "+" for line in lines) and "+ several actions" in "\n".join(lines)


def test_actions_outside_the_window_are_not_drawn():
    c = chart(FLAT, actions=[ActionMark(START - timedelta(hours=2), ActionKind.REBOOT)])
    text = "\n".join(render_chart(c, 80, 10))
    assert ACTION_GLYPH not in text and "R reboot" not in text
