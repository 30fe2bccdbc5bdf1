"""How the cross-region tables give way on a narrow terminal: pure, no terminal needed
(tests/e2e/test_terminal_fit.py runs the commands in a real pty at 80 and 120 columns;
tests/unit/test_table_fit.py tests the shared fit_columns itself)."""

from __future__ import annotations

import pytest

from orchestrator.cli.estate_cmds import HISTORY_COLUMNS, SCAN_COLUMNS, STATUS_COLUMNS
from orchestrator.cli.tables import GAP, Column, fit_columns

VPC = "vpc-0123456789abcdef0"
INSTANCE = "i-0123456789abcdef0"
STATUS_ROW = {
    "account": "123456789012", "region": "ap-southeast-2", "vpc_id": VPC, "stack": "orch-ap-southeast-2", "instances": 1200,
    "last_sweep_text": "2026-12-01 12:00", "unhealthy_last_sweep": 12, "in_flight": 3, "quarantined": 2,
    "lease": "orch-lambda-ap-southeast-2 until 2026-12-01 12:05 UTC", "paused_text": "yes", "paused_by": "arn:aws:iam::123456789012:user/alice",
}
HISTORY_ROW = {
    "account": "123456789012", "region": "ap-southeast-2", "vpc_id": VPC, "when_text": "2026-12-01 12:03:00", "instance_id": INSTANCE,
    "action": "stop-start", "status": "uncertain", "reason": "SSH banner timeout on 3 of 3 attempts; corroborated by memory 97%",
}
SCAN_ROW = {
    "account": "123456789012", "region": "ap-southeast-2", "vpc_id": VPC, "instances": 1200, "healthy": 1100,
    "not_healthy_text": "memory-forecast 40\nunreachable 60",
}


def width_of(shown: list[Column], row: dict) -> int:
    def need(c: Column) -> int:
        longest = max(len(c.heading), *(len(line) for line in str(row[c.key]).split("\n")))
        return min(longest, c.min_width) if c.cut else longest

    return sum(need(c) for c in shown) + GAP * (len(shown) - 1)


@pytest.mark.parametrize("columns,row", [(STATUS_COLUMNS, STATUS_ROW), (HISTORY_COLUMNS, HISTORY_ROW), (SCAN_COLUMNS, SCAN_ROW)])
@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_what_is_shown_fits_and_the_columns_that_never_leave_stay(columns, row, width):
    fit = fit_columns(columns, [row], width)
    shown, dropped = list(fit.shown), list(fit.dropped)
    assert width_of(shown, row) <= width and fit.total <= width
    assert [c for c in columns if c.drop is None] == [c for c in shown if c.drop is None]
    assert [c for c in columns if c in shown or c in dropped] == columns  # each column shown or said to be left out
    ranks = [c.drop for c in dropped]
    assert ranks == sorted(ranks) and ranks == list(range(1, len(ranks) + 1))  # left out in order, the first first


def test_nothing_leaves_when_everything_fits():
    fit = fit_columns(SCAN_COLUMNS, [SCAN_ROW], 200)
    assert list(fit.shown) == SCAN_COLUMNS and fit.dropped == ()


def test_the_status_table_keeps_what_needs_a_person_at_80_columns():
    fit = fit_columns(STATUS_COLUMNS, [STATUS_ROW], 80)
    shown, dropped = fit.shown, fit.dropped
    keys = [c.key for c in shown]
    assert {"region", "vpc_id", "unhealthy_last_sweep", "paused_text"} <= set(keys)
    assert [c.key for c in dropped][:3] == ["stack", "lease", "paused_by"]


def test_a_multi_line_cell_needs_its_longest_line_not_its_length():
    (column,) = [c for c in SCAN_COLUMNS if c.key == "not_healthy_text"]
    fit = fit_columns([column], [SCAN_ROW], len("memory-forecast 40"))
    assert fit.shown == (column,) and fit.widths[column.key] == len("memory-forecast 40")
