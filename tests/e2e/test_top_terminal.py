"""`orch top` and `orch explain`'s chart as a person sees them: a real pseudo-terminal
(pexpect) at 80 and 120 columns against a sandbox fleet, as after `source sandbox.env`.

Every line fits, the worst instance comes first, verdicts are whole words; live, `u`
and `q` work and `orch top` exits 0; piped it prints one frame; it never records a
sweep or takes the lease (it reads, it never acts).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Iterator

import pexpect
import pytest

from orchestrator.model import VerdictKind
from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import exports, stage
from orchestrator.state import open_store
from tests.e2e.sandbox_env import in_second_vpc, quick_probes
from tests.e2e.test_terminal_fit import ANSI, ORCH, on_terminal

pytestmark = pytest.mark.e2e

SEVERITY = [VerdictKind.UNREACHABLE, VerdictKind.AWS_IMPAIRED, VerdictKind.MEMORY_CRITICAL, VerdictKind.MEMORY_FORECAST,
            VerdictKind.METRICS_STALE, VerdictKind.UNKNOWN, VerdictKind.HEALTHY]
ROW = re.compile(r"i-[0-9a-f]{17}\b")


@pytest.fixture(scope="module")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One sandbox for the module (moto's state is one per process); the last test heals it."""
    spec = FleetSpec(instances=24, hung=2, refusing=1, leaking=2, opt_out=1, unmanaged=2, seed=5, port=0)
    with Sandbox(in_second_vpc(spec)) as sb:
        env = exports(sb, stage(sb, tmp_path_factory.mktemp("state")))
        yield {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path_factory.mktemp("home")), **quick_probes(env)}


def orch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def verdict_of(row: str) -> VerdictKind:
    words = row.split()
    found = [k for k in VerdictKind if k.value in words]  # a whole word, never a cut one
    assert len(found) == 1, row
    return found[0]


def fleet_ids(env: dict[str, str], verdict: VerdictKind) -> list[str]:
    ran = orch(env, "scan", "-o", "json", "--query", f"instances_detail[?verdict=='{verdict.value}' && !opted_out].instance_id")
    return json.loads(ran.stdout)


@pytest.mark.parametrize("columns", [80, 120])
def test_top_once_fits_is_worst_first_with_whole_verdicts(fleet_env, columns):
    lines = on_terminal("top --once", fleet_env, columns)
    too_wide = [line for line in lines if len(line.rstrip()) > columns]
    assert not too_wide, too_wide[:3]
    rows = [line for line in lines if ROW.match(line)]
    assert len(rows) == 24
    order = [verdict_of(row) for row in rows]
    assert order[0] is VerdictKind.UNREACHABLE and order == sorted(order, key=SEVERITY.index)
    assert not [row for row in rows if "…" in row.split()[1]]
    assert sum(1 for row in rows if " unreachable * " in row + " ") == 1  # the opted-out one, marked
    assert any("opted out by tag orch:skip" in line for line in lines)
    header = next(line for line in lines if line.startswith("instance "))
    assert {"name", "window", "mem"} <= set(header.split())  # the name, and memory's story, at 80 columns too
    if columns >= 120:
        assert "slope" in header.split() and any("/min" in row for row in rows)  # 120 columns show more
    else:
        assert any(line.startswith("too wide to show here:") for line in lines)


def test_top_never_records_a_sweep_nor_takes_the_lease(fleet_env):
    store = open_store(fleet_env["ORCH_STATE"])
    try:
        before = len(store.list_sweeps(1000))
        ran = orch(fleet_env, "top", "--once")
        assert ran.returncode == 0, ran.stderr
        assert len(store.list_sweeps(1000)) == before
        assert store.list_actions(None, 10) == []
    finally:
        store.close()


def test_top_piped_prints_one_frame_and_json_gives_the_rows(fleet_env):
    piped = subprocess.run(["bash", "-c", f"{ORCH} top | cat"], env=fleet_env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert sum(1 for line in lines if ROW.match(line)) == 24 and all(len(line) <= 120 for line in lines)
    assert not [line for line in lines if line.startswith("keys:")]
    ran = orch(fleet_env, "top", "-o", "json", "--only", "unhealthy", "--sort", "memory")
    rows = json.loads(ran.stdout)
    assert rows and all(r["verdict"] != "healthy" for r in rows)
    memory = [r["memory_percent"] for r in rows if r["memory_percent"] is not None]
    assert memory == sorted(memory, reverse=True)
    assert {"instance_id", "verdict", "probe", "memory_window", "minutes_to_exhaustion", "ladder_rung", "in_flight", "chronic",
            "quarantined"} <= set(rows[0])


def last_frame(text: str) -> list[str]:
    """What the screen shows last: the text after the last title line, without colour codes."""
    clean = ANSI.sub("", text)
    starts = [m.start() for m in re.finditer(r"(orch top · )?\d+ instances, \d+ unhealthy", clean)]
    assert starts, clean[-2000:]
    return [line.rstrip() for line in re.split(r"\r?\n|\r", clean[starts[-1]:]) if line.strip()]


KEYS = r"\? help  / filter"


def test_live_top_answers_u_then_q_and_exits_0(fleet_env):
    child = pexpect.spawn("bash", ["-c", f"{ORCH} top --interval 2"], env=fleet_env, dimensions=(40, 80), encoding="utf-8",
                          timeout=90, use_poll=True)
    child.expect(KEYS)
    before = last_frame(child.before + child.after)
    assert any(" healthy" in line for line in before if ROW.match(line))
    child.send("u")
    child.expect(r"\d+ instances, \d+ unhealthy[^\n]*unhealthy only[\s\S]*?" + KEYS)
    after = last_frame(child.after)
    rows = [line for line in after if ROW.match(line)]
    assert rows and all(verdict_of(row) is not VerdictKind.HEALTHY for row in rows)
    assert all(len(line) <= 80 for line in after)
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.parametrize("columns", [80, 120])
def test_explain_draws_the_chart_of_a_leaking_instance(fleet_env, columns):
    leaking = fleet_ids(fleet_env, VerdictKind.MEMORY_FORECAST)
    assert leaking
    lines = on_terminal(f"explain {leaking[0]} --no-console", fleet_env, columns)
    assert not [line for line in lines if len(line.rstrip()) > columns]
    chart = [line for line in lines if re.match(r"^[ \d]{3}┤", line)]
    assert len(chart) == 10 and chart[0].startswith("100┤")
    assert any(line.startswith("   └") for line in lines)
    assert any(re.search(r"\b\d\d:\d\d\b.*\b\d\d:\d\d\b", line) for line in lines)  # the time axis
    text = "\n".join(lines)
    assert "exhaustion 97%" in text and "critical 95%" in text
    assert re.search(r"trend: 97% at \d\d:\d\d UTC", text) and "·" in "".join(chart)  # the forecast


def test_live_top_is_driven_like_htop_at_80x24(fleet_env):
    """Every row the terminal holds, scrolling, / filter, Enter into an instance and back, ? help, q."""
    child = pexpect.spawn("bash", ["-c", f"{ORCH} top --interval 60"], env=fleet_env, dimensions=(24, 80), encoding="utf-8",
                          timeout=90, use_poll=True)
    child.expect(KEYS)
    first = last_frame(child.before + child.after)
    rows = [line for line in first if ROW.match(line)]
    # title, counts, header, rule; the keys line; the cursor's line: every other line holds a row
    assert len(rows) == 24 - 6, first
    assert re.search(r"rows 1-18 of 24", first[0]), first[0]
    child.send("G")  # to the last row: the screen scrolls
    child.expect(r"rows 7-24 of 24")
    child.send("/crawler-1\r")
    child.expect(r"\d+ instances, \d+ unhealthy[^\n]*/crawler-1[\s\S]*?" + KEYS)
    filtered = [line for line in last_frame(child.after) if ROW.match(line)]
    assert filtered and all(re.search(r"\bcrawler-1\d*\b", line) for line in filtered), filtered
    child.send("\x1b")  # Esc drops the filter
    child.send("\r")  # Enter: the instance
    child.expect(r"verdict: [a-z-]+")
    child.expect("back to the fleet")
    child.send("q")  # back, not out
    child.expect(KEYS)
    child.send("?")
    child.expect(r"Enter\s+open the selected instance")
    child.send("q")
    child.expect(KEYS)
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


# Last in the module: it heals the shared fleet.
@pytest.mark.parametrize("columns", [80, 120])
def test_explain_marks_where_orch_acted(fleet_env, columns):
    if not orch(fleet_env, "history", "-o", "json").stdout.strip("[]\n "):
        ran = orch(fleet_env, "heal", "--yes", "-o", "json")
        assert ran.returncode in (0, 1), ran.stderr
    acted = json.loads(orch(fleet_env, "history", "-o", "json", "--query", "[?action=='reboot'].instance_id").stdout)
    assert acted
    lines = on_terminal(f"explain {acted[0]} --no-console", fleet_env, columns)
    assert not [line for line in lines if len(line.rstrip()) > columns]
    text = "\n".join(lines)
    assert "R reboot" in text and "┊ orch acted" in text
    assert any(line.strip() == "R" for line in lines)  # the marker under the time axis
