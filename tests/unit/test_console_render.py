"""-o wide, natural order, the boot on the chart, explain's memory line: the console's pure parts."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from orchestrator.cli.chart import MemoryChart, render_chart
from orchestrator.cli.instance_view import boot_at, memory_now
from orchestrator.cli.render import by_name
from orchestrator.cli.state_cmds import HISTORY_COLUMNS
from orchestrator.cli.tables import WIDE, fitted_table
from orchestrator.model import ActionAttempt, ActionKind, InstanceHistory, Verdict, VerdictKind

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
REASON = "SSH banner timeout after 2.0 s (TCP accepted); 3/3 attempts failed over 4 s; corroborated by memory 98.5% and the console's oom-killer"
ROW = {"when": "2026-12-01 12:03:00", "instance": "i-0123456789abcdef0", "name": "crawler-7", "action": "stop-start",
       "status": "uncertain", "reason": REASON, "detail": "StopInstances accepted; StartInstances timed out after 600 s"}


def rendered(width: int, wide: bool | None) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True).print(fitted_table(None, HISTORY_COLUMNS, [ROW], width, wide=wide))
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_wide_keeps_every_column_and_wraps_prose_whole(width):
    lines = rendered(width, True)
    assert all(len(line) <= width for line in lines)
    text = " ".join(" ".join(lines).split())
    assert "…" not in text and "left out" not in text
    for word in REASON.split() + ROW["detail"].split() + ["i-0123456789abcdef0", "crawler-7", "uncertain"]:
        assert word in text.split(), word
    narrow = rendered(width, False)
    assert len(narrow) < len(lines) and ("…" in "".join(narrow) or "left out" in "".join(narrow))


def test_wide_follows_the_output_option():
    token = WIDE.set(True)
    try:
        assert rendered(80, None) == rendered(80, True)
    finally:
        WIDE.reset(token)
    assert rendered(80, None) == rendered(80, False)


def test_natural_order_by_name_then_unnamed_by_id():
    names = {"i-3": "crawler-10", "i-1": "crawler-2", "i-2": "Crawler-1", "i-9": None, "i-0": None}
    order = sorted(names, key=lambda i: by_name(names[i], i))
    assert [names[i] or i for i in order] == ["Crawler-1", "crawler-2", "crawler-10", "i-0", "i-9"]


def climb_and_reboot() -> tuple[list[tuple[datetime, float]], datetime]:
    """Memory climbs to 97%, orch reboots at -20 min, the box comes back at 35% five minutes later."""
    rebooted = NOW - timedelta(minutes=20)
    points = [(NOW - timedelta(minutes=60 - m), 60 + m) for m in range(38)]
    points += [(rebooted + timedelta(minutes=5 + m), 35.0 + 0.1 * m) for m in range(15)]
    return points, rebooted


def test_the_boot_after_a_reboot_is_marked_on_the_chart():
    points, rebooted = climb_and_reboot()
    boot = boot_at(points, rebooted)
    assert boot == rebooted + timedelta(minutes=5)
    from orchestrator.cli.chart import ActionMark

    chart = MemoryChart(points, NOW - timedelta(minutes=60), NOW, 95.0, 97.0, actions=[ActionMark(rebooted, ActionKind.REBOOT)],
                        boots=[boot])
    lines = render_chart(chart, 80)
    marks = next(line for line in lines if line.strip().startswith("R"))
    assert marks.index("B") > marks.index("R")  # the boot after the action, on the same line of marks
    assert "B boot: memory fell, a new cycle" in "\n".join(lines) and "R reboot" in "\n".join(lines)
    assert boot_at(points, None) is None


def test_explain_says_the_figure_it_judged_and_never_a_set_aside_one():
    points, rebooted = climb_and_reboot()
    history = InstanceHistory("i-1", last_action=ActionKind.REBOOT, last_action_at=rebooted,
                              actions=(ActionAttempt(rebooted, ActionKind.REBOOT, key="k"),))
    judged = Verdict("i-1", VerdictKind.HEALTHY, ("ok",), memory_percent=36.4)
    assert memory_now(judged, points[-1], history) == "now 36.4%"
    blind = Verdict("i-1", VerdictKind.UNKNOWN, ("no memory data",))
    said = memory_now(blind, points[37], history)
    assert "now" not in said.split()[0] and "reboot at 11:40 UTC" in said and "97.0%" in said


def test_the_cli_imports_no_boto3_until_a_session_is_made():
    """`orch --help` and the pure commands never pay for boto3 (docs/performance.md has the figures)."""
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-c", "import orchestrator.cli, sys; print('boto3' in sys.modules, 'moto' in sys.modules)"],
                         capture_output=True, text=True, timeout=60)
    assert ran.stdout.split() == ["False", "False"], ran.stderr
