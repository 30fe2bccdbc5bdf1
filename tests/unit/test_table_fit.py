"""orchestrator.cli.tables.fit_columns, the one way every orch table fits a terminal: pure,
table-driven; tests/e2e/test_table_fit.py checks the commands in a real pty."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.text import Text

from orchestrator.cli.render import FLEET_COLUMNS
from orchestrator.cli.state_cmds import HISTORY_COLUMNS, STATE_COLUMNS
from orchestrator.cli.tables import ELLIPSIS, GAP, Column, cell_width, clip, fit_columns, fitted_table

INSTANCE = "i-0123456789abcdef0"
FLEET_ROW = {
    "instance": INSTANCE, "name": "crawler-eu-west-1-batch-17", "az": "eu-west-1a", "checks": "ok/ok", "ssh": "banner-timeout",
    "tries": "3/3", "memory": "98% +1.2/min", "verdict": Text.assemble(("memory-exhaustion-forecast", "magenta"), (" *", "dim")),
}
HISTORY_ROW = {
    "when": "2026-12-01 12:03:00", "instance": INSTANCE, "name": "crawler-eu-west-1-batch-17", "action": "stop-start", "status": "uncertain",
    "reason": "SSH banner timeout after 2.0 s (TCP accepted); 3/3 attempts failed over 4 s; corroborated by memory 98.5%",
    "detail": "StopInstances accepted; StartInstances timed out after 600 s; oom-killer killed ruby pid 38695",
}
STATE_ROW = {
    "instance": INSTANCE, "name": "crawler-eu-west-1-batch-17", "failed": "3", "rung": "2", "action": "stop-start", "at": "2026-12-01 12:03", "in_flight": "yes",
    "quarantined": "2026-12-01 12:40", "why": "3 actions in 6 h without SSH coming back healthy",
}


def keys(columns) -> list[str]:
    return [c.key for c in columns]


# width -> (shown, dropped in the order they left)
FLEET = {  # az, status checks, the failed tries, then ssh and memory leave; the name last; instance and verdict stay
    60: (["instance", "verdict"], ["az", "checks", "tries", "ssh", "memory", "name"]),
    80: (["instance", "name", "memory", "verdict"], ["az", "checks", "tries", "ssh"]),
    100: (["instance", "name", "ssh", "tries", "memory", "verdict"], ["az", "checks"]),
    120: (keys(FLEET_COLUMNS), []),
    160: (keys(FLEET_COLUMNS), []),
}
HISTORY = {  # a stop-start left uncertain: the widest action and status words; the name stays longest of the optional
    60: (["when", "instance", "action", "status"], ["detail", "reason", "name"]),  # 63 columns: wider than 60, nothing cut
    80: (["when", "instance", "name", "action", "status"], ["detail", "reason"]),
    100: (["when", "instance", "name", "action", "status", "reason"], ["detail"]),
    120: (["when", "instance", "name", "action", "status", "reason"], ["detail"]),
    160: (keys(HISTORY_COLUMNS), []),
}
STATE = {  # the quarantine and the action in flight stay: they are what needs a person; then the name
    60: (["instance", "action", "in_flight", "quarantined"], ["why", "rung", "at", "failed", "name"]),
    80: (["instance", "name", "action", "in_flight", "quarantined"], ["why", "rung", "at", "failed"]),
    100: (["instance", "name", "failed", "action", "in_flight", "quarantined"], ["why", "rung", "at"]),
    120: (["instance", "name", "failed", "rung", "action", "at", "in_flight", "quarantined"], ["why"]),
    160: (keys(STATE_COLUMNS), []),
}


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160])
@pytest.mark.parametrize("columns,row,expected", [
    (FLEET_COLUMNS, FLEET_ROW, FLEET), (HISTORY_COLUMNS, HISTORY_ROW, HISTORY), (STATE_COLUMNS, STATE_ROW, STATE),
], ids=["fleet", "history", "state"])
def test_which_columns_leave_at_which_width_and_in_which_order(columns, row, expected, width):
    fit = fit_columns(columns, [row], width)
    shown, dropped = expected[width]
    assert keys(fit.shown) == shown
    assert keys(fit.dropped) == dropped
    assert [c.drop for c in fit.dropped] == sorted(c.drop for c in fit.dropped)  # the first to leave first
    never = [c.key for c in columns if c.drop is None]
    assert all(k in keys(fit.shown) for k in never)
    for c in fit.shown:  # an id, a time, a status word: shown at its full width or not at all
        if not c.cut:
            assert fit.widths[c.key] == cell_width(row[c.key]) or fit.widths[c.key] == cell_width(c.heading)
    least = sum(max(cell_width(row[c.key]), cell_width(c.heading)) for c in columns if c.drop is None) + GAP * (len(never) - 1)
    assert fit.total <= max(width, least)


def test_the_columns_that_never_leave_are_kept_even_when_they_do_not_fit():
    fit = fit_columns(FLEET_COLUMNS, [FLEET_ROW], 30)
    assert keys(fit.shown) == ["instance", "verdict"] and fit.total > 30  # wider than asked, rather than a cut id


def test_prose_shares_what_is_left_up_to_its_longest_line():
    fit = fit_columns(HISTORY_COLUMNS, [HISTORY_ROW], 300)
    assert fit.widths["reason"] == len(HISTORY_ROW["reason"]) and fit.widths["detail"] == len(HISTORY_ROW["detail"])
    narrow = fit_columns(HISTORY_COLUMNS, [HISTORY_ROW], 140)
    assert narrow.total == 140 and narrow.widths["reason"] >= 20 and narrow.widths["detail"] >= 24
    assert abs((narrow.widths["reason"] - 20) - (narrow.widths["detail"] - 24)) <= 1  # what is left, shared alike


def test_styles_are_not_counted_and_a_plain_cell_is_text_as_given():
    assert cell_width(Text.assemble(("memory-exhaustion-forecast", "magenta"), (" *", "dim"))) == len("memory-exhaustion-forecast *")
    # A str cell is text, not markup: an AWS Name tag with brackets is measured, cut and shown as it is.
    assert cell_width("web [/x] prod") == len("web [/x] prod")
    assert clip("web [/x] prod [red]x[/] and more", 12).plain == "web [/x]…"


def test_a_column_of_several_lines_needs_its_longest_line():
    column = Column("n", "not healthy")
    fit = fit_columns([column], [{"n": "memory-forecast 40\nunreachable 60"}], 18)
    assert fit.widths["n"] == len("memory-forecast 40")


@pytest.mark.parametrize("text,width,expected", [
    ("SSH banner timeout after 2.0 s", 20, "SSH banner timeout…"),  # at a word
    ("i-0123456789abcdef0 i-0123456789abcdef1 i-0123456789abcdef2", 45, "i-0123456789abcdef0 i-0123456789abcdef1…"),  # between ids
    ("arn:aws:iam::123456789012:user/alice", 16, "arn:aws:iam::12…"),  # one long word: mid-word, it is prose
    ("short", 20, "short"),
])
def test_clip_cuts_prose_at_a_word(text, width, expected):
    clipped = clip(text, width).plain
    assert clipped == expected and len(clipped) <= width


def render(table, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_a_fitted_table_is_a_line_a_row_and_says_what_it_left_out(width):
    rows = [HISTORY_ROW, {**HISTORY_ROW, "instance": "i-0123456789abcdef1", "status": "done"}]
    lines = render(fitted_table("actions", HISTORY_COLUMNS, rows, width), width)
    assert all(len(line) <= width for line in lines)
    with_ids = [line for line in lines if "i-0123456789abcdef" in line]
    assert len(with_ids) == 2 and all(INSTANCE[:-1] in line and "2026-12-01 12:03:00" in line for line in with_ids)
    assert all(re.search(r"\b(uncertain|done)\b", line) for line in with_ids)
    fit = fit_columns(HISTORY_COLUMNS, rows, width)
    caption = " ".join(lines[lines.index(with_ids[-1]) + 1:])
    if fit.dropped:
        assert "left out to fit" in caption and all(c.heading in caption for c in fit.dropped)
    if "reason" in keys(fit.shown):  # never wide enough for this reason here: cut at a word, and the caption says so
        assert all(line.rstrip().endswith(ELLIPSIS) for line in with_ids) and f"{ELLIPSIS}: text cut" in caption


def test_status_across_regions_at_100_columns_never_folds_a_long_stack_name():
    """The adopt walk: a StackSet's stack name and who paused, at 100 columns."""
    from orchestrator.cli.estate_cmds import STATUS_COLUMNS

    row = {"account": "123456789012", "region": "eu-west-1", "vpc_id": "vpc-0123456789abcdef0",
           "stack": "StackSet-orch-healer-3f1c2a9e-8d4b-4e1a-9c2f-5b6a7d8e9f01", "instances": "3", "last_sweep_text": "2026-12-01 12:00",
           "unhealthy_last_sweep": "1", "in_flight": "0", "quarantined": "0", "lease": "free", "paused_text": "yes",
           "paused_by": "arn:aws:iam::123456789012:user/alice"}
    lines = render(fitted_table("orch across regions", STATUS_COLUMNS, [row], 100), 100)
    rows = [line for line in lines if line.startswith("123456789012")]
    assert len(rows) == 1 and "vpc-0123456789abcdef0" in rows[0] and rows[0].rstrip().endswith("yes")
    assert all(len(line) <= 100 for line in lines)
    assert row["stack"] in rows[0] or "stack" in " ".join(lines[-2:])  # whole, or said to be left out

