"""`orch top`'s layout: rows, order, columns that fit, cell text. Pure, fixed timestamps."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from orchestrator.cli.top_cells import OVER, full_cell, sparkline
from orchestrator.cli.top_layout import COLUMNS, DROP_ORDER, NEVER_DROPPED, View, cells, fit_columns, frame, plain_text
from orchestrator.cli.top_rows import Only, SortKey, TopRow, arrange, row_document, rows_from
from orchestrator.model import ActionAttempt, ActionKind, InstanceHistory, ProbeOutcome, Verdict, VerdictKind
from tests.builders import NOW, facts, flat_memory, instance

V = VerdictKind


def row(n: int, kind: VerdictKind = V.HEALTHY, memory: float | None = 40.0, **kw) -> TopRow:
    base = dict(
        instance_id=f"i-{n:017x}",
        name=f"crawler-{n}",
        az="us-east-1a",
        verdict=kind,
        probe=ProbeOutcome.OK if kind is not V.UNREACHABLE else ProbeOutcome.BANNER_TIMEOUT,
        latency_ms=4.0 if kind is not V.UNREACHABLE else None,
        memory_percent=memory,
        memory_window=tuple([30.0, 50.0, 70.0, 90.0, 99.0] if memory and memory > 90 else [40.0] * 5),
    )
    base.update(kw)
    return TopRow(**base)


FLEET = [
    row(1),
    row(2, V.MEMORY_FORECAST, 82.0, slope_per_min=1.05, minutes_to_exhaustion=13.2),
    row(3, V.UNREACHABLE, 99.0, opted_out=True, minutes_to_exhaustion=0.0),
    row(4, memory=None, in_flight=ActionKind.REBOOT, in_flight_since=NOW - timedelta(minutes=3)),
    row(5, V.UNREACHABLE, 44.0, rung=1, next_rung=ActionKind.STOP_START),
    row(6, V.METRICS_STALE, None, quarantined=True, chronic=True, name="a-name-far-too-long-for-the-column"),
    row(7, memory=60.0),
]
VIEW = View(now=NOW)


def ids(rows) -> list[int]:
    return [int(r.instance_id[2:], 16) for r in rows]


@pytest.mark.parametrize(
    "sort, only, expected",
    [
        # worst: severity first (unreachable ... healthy), then memory, highest first; no memory last
        (SortKey.WORST, Only.ALL, [3, 5, 2, 6, 7, 1, 4]),
        (SortKey.WORST, Only.UNHEALTHY, [3, 5, 2, 6]),
        (SortKey.MEMORY, Only.ALL, [3, 2, 7, 5, 1, 6, 4]),
        (SortKey.NAME, Only.ALL, [6, 1, 2, 3, 4, 5, 7]),
        (SortKey.ID, Only.ALL, [1, 2, 3, 4, 5, 6, 7]),
        (SortKey.ID, Only.UNHEALTHY, [2, 3, 5, 6]),
    ],
)
def test_rows_are_ordered_and_filtered(sort, only, expected):
    assert ids(arrange(FLEET, sort, only)) == expected


def test_the_s_key_cycles_every_sort_and_u_toggles():
    seen, key = [], SortKey.WORST
    for _ in range(4):
        seen.append(key)
        key = key.next()
    assert seen == list(SortKey) and key is SortKey.WORST
    assert Only.ALL.toggled() is Only.UNHEALTHY and Only.UNHEALTHY.toggled() is Only.ALL


@pytest.mark.parametrize(
    "r, column, text",
    [
        (row(1), "ssh", "4ms"),
        (row(3, V.UNREACHABLE), "ssh", "banner-timeout"),
        (row(1, probe=None), "ssh", "-"),
        (row(3, V.UNREACHABLE, opted_out=True), "verdict", "unreachable *"),
        (row(1, memory=82.4), "memory", "82%"),
        (row(1, memory=None), "memory", "-"),
        (row(1, slope_per_min=1.05), "slope", "+1.1/min"),
        (row(1, slope_per_min=0.01), "slope", "-"),  # drift is not a slope worth showing
        (row(1, rung=1, next_rung=ActionKind.STOP_START), "ladder", "1 stop-start"),
        (row(1, rung=3, next_rung=None), "ladder", "3 none left"),
        (row(1), "ladder", "-"),
        (row(1, in_flight=ActionKind.REBOOT, in_flight_since=NOW - timedelta(minutes=3, seconds=50)), "acting", "reboot 3m"),
        (row(1, quarantined=True, chronic=True), "flags", "quarantined chronic"),
        (row(1, chronic=True), "flags", "chronic"),
        (row(1, name="a-name-far-too-long-for-the-column"), "name", "a-name-far-too-lo…"),
    ],
)
def test_cell_text(r, column, text):
    assert cells(r, NOW)[column] == text


@pytest.mark.parametrize(
    "minutes, text",
    [(None, "-"), (-1.0, "now"), (0.0, "now"), (13.4, "13m"), (59.4, "59m"), (61.0, "1h01"), (600.0, "10h00"), (3000.0, ">1d")],
)
def test_time_to_exhaustion(minutes, text):
    assert full_cell(row(1, minutes_to_exhaustion=minutes)) == text


@pytest.mark.parametrize(
    "values, width, critical, text",
    [
        ([0.0, 47.5, 94.9, 95.0, 100.0], 5, 95.0, "▁▄▇██"),  # full only at or above the critical line
        ([10.0] * 4, 8, 95.0, "    ▁▁▁▁"),  # fewer points than cells: right-aligned
        ([10.0, 96.0, 10.0, 10.0], 2, 95.0, "█▁"),  # each cell its part's highest value
        ([], 6, 95.0, ""),
        ([80.0], 1, 80.0, OVER),
    ],
)
def test_sparkline(values, width, critical, text):
    assert sparkline(values, width, critical) == text


def table(rows):
    return [cells(r, NOW) for r in rows]


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 160, 200])
def test_columns_fit_the_width_and_keep_instance_and_verdict(width):
    layout = fit_columns(table(FLEET), width)
    keys = [c.key for c in layout.columns]
    assert all(k in keys for k in NEVER_DROPPED)
    if width >= 80:
        assert layout.total <= width
    assert layout.widths["verdict"] == len("memory-exhaustion-forecast")  # never cut


def test_columns_are_dropped_in_the_documented_order():
    kept_at = {w: {c.key for c in fit_columns(table(FLEET), w).columns} for w in range(40, 200)}
    for key in DROP_ORDER:
        present = [w for w, keys in kept_at.items() if key in keys]
        assert present, key
        later = DROP_ORDER[DROP_ORDER.index(key) + 1 :]
        # whenever this column is shown, every column dropped after it is shown too
        assert all(all(k in kept_at[w] for k in later) for w in present), key


def test_empty_columns_are_dropped_first():
    healthy = [row(1), row(7, memory=60.0)]
    keys = {c.key for c in fit_columns(table(healthy), 200).columns}
    assert {"ladder", "acting", "flags", "slope", "full"}.isdisjoint(keys)
    assert {"instance", "name", "az", "verdict", "ssh", "memory", "window"} <= keys


@pytest.mark.parametrize("width, expected", [
    (80, ["instance", "name", "verdict", "memory", "full"]),  # the name stays longest of the optional columns
    (120, ["instance", "name", "verdict", "ssh", "memory", "window", "full", "acting"]),
    (160, [c.key for c in COLUMNS]),
])
def test_what_80_and_120_columns_show(width, expected):
    assert [c.key for c in fit_columns(table(FLEET), width).columns] == expected


def test_the_window_takes_the_width_left_over():
    narrow, wide = fit_columns(table(FLEET), 100), fit_columns(table(FLEET), 200)
    assert 6 <= narrow.widths["window"] < wide.widths["window"] == 30
    assert narrow.total <= 100


@pytest.mark.parametrize("width", [80, 120])
def test_the_frame_fits_is_worst_first_and_says_what_it_left_out(width):
    lines = plain_text(frame(FLEET, VIEW, width))
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    rows = [line for line in lines if line.startswith("i-")]
    assert [int(r.split()[0][2:], 16) for r in rows] == [3, 5, 2, 6, 7, 1, 4]
    assert "unreachable *" in rows[0]
    assert any("opted out by tag orch:skip" in line for line in lines)
    assert lines[0].startswith("orch top · 7 instances, 4 unhealthy · 12:00:00 UTC · sort worst · all")
    assert "2 unreachable, 1 memory-exhaustion-forecast, 1 metrics-stale, 3 healthy" in lines[1]
    if width == 80:
        assert any(line.startswith("too wide to show here: az, ladder, slope, flags, acting, ssh, window") for line in lines)
    else:
        assert any(line == "too wide to show here: az, ladder, slope, flags" for line in lines)
    assert all(" crawler-" in r or " a-name-far" in r for r in rows)  # names at every width


def test_a_live_frame_fits_the_height_and_shows_the_keys():
    fleet = [row(n, V.UNREACHABLE if n < 3 else V.HEALTHY) for n in range(40, 0, -1)]
    lines = plain_text(frame(fleet, replace(VIEW, live=True), 80, 24))
    assert len(lines) == 24  # every line of the terminal used
    rows = [line for line in lines if line.startswith("i-")]
    assert len(rows) == 24 - 5  # title, counts, header, rule above; the keys line below: nothing else
    assert f"rows 1-{len(rows)} of 40" in lines[0]
    assert lines[-1].startswith("? help  / filter")
    assert " unreachable " in rows[0] and " unreachable " in rows[1] and " healthy " in rows[2]
    assert [r.split()[1] for r in rows[2:5]] == ["crawler-3", "crawler-4", "crawler-5"]  # then by name, naturally


def test_unhealthy_only_with_a_healthy_fleet_says_so():
    lines = plain_text(frame([row(1)], replace(VIEW, only=Only.UNHEALTHY), 80))
    assert any("every instance is healthy" in line for line in lines)
    assert "unhealthy only" in lines[0]


def test_the_title_drops_its_least_needed_parts_first():
    lines = plain_text(frame(FLEET, replace(VIEW, sort=SortKey.MEMORY, only=Only.UNHEALTHY), 72))
    assert lines[0] == "7 instances, 4 unhealthy · 12:00:00 UTC · sort memory · unhealthy only"
    assert plain_text(frame(FLEET, VIEW, 30))[0] == "7 instances, 4 unhealthy"


def test_verdicts_are_styled_and_the_window_over_critical_is_red():
    lines = frame([row(3, V.UNREACHABLE, 99.0)], VIEW, 120)
    table_line = next(line for line in lines if line[0][0].startswith("i-"))
    styles = {text.strip(): style for text, style in table_line}
    assert styles["unreachable"] == "bold red"
    assert (OVER, "red") in table_line and table_line[-2][1] == "cyan"


def test_rows_from_a_scan():
    a, b = instance(1), instance(2, tags={"orch:skip": "true"})
    fa, fb = facts(a), facts(b, ProbeOutcome.BANNER_TIMEOUT, memory=flat_memory(b.instance_id, 98.0, 10))
    verdicts = [
        Verdict(a.instance_id, V.HEALTHY, ("ok",), memory_percent=40.0),
        Verdict(b.instance_id, V.UNREACHABLE, ("no banner",), memory_percent=98.0, memory_slope_per_min=0.3, minutes_to_exhaustion=0.0),
    ]
    took = NOW - timedelta(minutes=4)
    histories = {
        b.instance_id: InstanceHistory(
            b.instance_id, rung=1, in_flight_key="k", last_action=ActionKind.REBOOT, last_action_at=took,
            actions=(ActionAttempt(took, ActionKind.REBOOT, key="k"),),
        )
    }
    ladder = (ActionKind.REBOOT, ActionKind.STOP_START, ActionKind.REPLACE)
    ra, rb = rows_from([fa, fb], verdicts, histories, [b.instance_id], ladder, "orch:skip")
    assert (ra.verdict, ra.opted_out, ra.probe, ra.rung, ra.in_flight, ra.chronic) == (V.HEALTHY, False, ProbeOutcome.OK, 0, None, False)
    assert ra.latency_ms == pytest.approx(10.0) and len(ra.memory_window) == 60
    assert rb.opted_out and rb.probe is ProbeOutcome.BANNER_TIMEOUT and rb.latency_ms is None
    assert (rb.rung, rb.next_rung, rb.in_flight, rb.in_flight_since, rb.chronic) == (1, ActionKind.STOP_START, ActionKind.REBOOT, took, True)
    assert rb.memory_window == (98.0,) * 10
    document = row_document(rb)
    assert document["in_flight"] == "reboot" and document["next_rung"] == "stop-start" and document["chronic"] is True
    assert document["verdict"] == "unreachable" and document["memory_window"] == [98.0] * 10
    # The verdict set the points aside (before the reboot): the window shows this cycle's only, not the last cycle.
    blind = [verdicts[0], Verdict(b.instance_id, V.UNREACHABLE, ("no memory data",))]
    _, after = rows_from([fa, fb], blind, histories, [], ladder, "orch:skip")
    since = [v for t, v in sorted(fb.memory.points) if t >= took]
    assert after.memory_percent is None and after.memory_window == tuple(since) and len(since) < 10
