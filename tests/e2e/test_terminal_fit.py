"""What a person sees: the commands in a real pseudo-terminal at 80 and 120 columns.

Each command runs under pexpect with the terminal's size set, against a sandbox fleet,
exactly as after `source sandbox.env`. Every line of what it prints must fit the
terminal, the fleet table must be worst first with every verdict whole (columns are
dropped, verdicts never cut), and on a terminal the sweep shows its progress with n/N.
"""

from __future__ import annotations

import re
import sys
from typing import Iterator

import pexpect
import pytest

from orchestrator.model import VerdictKind
from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import exports, stage

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ORCH = f"{sys.executable} -c 'from orchestrator.cli import main; main()'"
VERDICTS = [k.value for k in VerdictKind]


@pytest.fixture(scope="module")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    spec = FleetSpec(instances=24, hung=2, refusing=1, leaking=2, opt_out=1, unmanaged=2, seed=5, port=0)
    with Sandbox(spec) as sb:
        env = exports(sb, stage(sb, tmp_path_factory.mktemp("state")))
        yield {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(tmp_path_factory.mktemp("home")), **env}


def on_terminal(command: str, env: dict[str, str], columns: int, stderr_too: bool = False) -> list[str]:
    """The lines a terminal of this width shows (stderr to a file unless ``stderr_too``).

    poll, not select: late in a full run this process's descriptors are numbered past 1024.
    """
    redirect = "" if stderr_too else " 2>/dev/null"
    child = pexpect.spawn("bash", ["-c", f"{ORCH} {command}{redirect}"], env=env, dimensions=(40, columns), encoding="utf-8", timeout=120, use_poll=True)
    child.expect(pexpect.EOF)
    child.close()
    text = ANSI.sub("", child.before or "")
    return [line for line in re.split(r"\r?\n|\r", text)]


COMMANDS = [
    "scan",
    "heal --dry-run",
    "status",
    "report",
    "explain crawler-1 --no-console",
    "history",
    "pause --reason 'change freeze'",
    "pause --reason again",
    "resume",
    "--help",
    "heal --help",
    "probe 127.0.0.1:1 --connect-timeout 0.5",
    "doctor",
    "doctor --help",
    "permissions heal --output table",
    "permissions --help",
]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_line_fits_the_terminal(fleet_env, command, columns):
    lines = on_terminal(command, fleet_env, columns)
    assert any(line.strip() for line in lines), f"{command} printed nothing"
    too_wide = [line for line in lines if len(line.rstrip()) > columns]
    assert not too_wide, f"{command} at {columns} columns: {too_wide[:3]}"


@pytest.mark.parametrize("columns", [80, 120])
def test_the_fleet_table_is_worst_first_with_whole_verdicts(fleet_env, columns):
    lines = on_terminal("scan", fleet_env, columns)
    rows = [line for line in lines if re.match(r"\s*i-[0-9a-f]{17}\b", line)]
    assert any(line.startswith(f"{len(rows)} instances, worst first") for line in lines)
    assert len(rows) == 24  # the managed ones (the opted-out one among them); the unmanaged are not selected
    verdicts = [next(v for v in VERDICTS if re.search(rf"\b{re.escape(v)}\b", row)) for row in rows]
    order = [VerdictKind(v) for v in verdicts]
    severity = [VerdictKind.UNREACHABLE, VerdictKind.AWS_IMPAIRED, VerdictKind.MEMORY_CRITICAL, VerdictKind.MEMORY_FORECAST,
                VerdictKind.METRICS_STALE, VerdictKind.UNKNOWN, VerdictKind.HEALTHY]
    assert order == sorted(order, key=severity.index) and order[0] is VerdictKind.UNREACHABLE
    assert not [row for row in rows if "…" in row.split()[-1]], "a verdict was cut"
    opted = [row for row in rows if row.rstrip().endswith("*")]
    assert len(opted) == 1 and any("opted out by tag orch:skip" in line for line in lines)
    if columns >= 120:
        assert any("crawler-" in row for row in rows)  # the name column is there when it fits


def test_a_sweep_on_a_terminal_shows_progress_with_counts(fleet_env):
    text = "\n".join(on_terminal("scan", fleet_env, 120, stderr_too=True))
    assert "probing SSH" in text and re.search(r"\b\d+/\d+\b", text), text[-2000:]


def test_no_color_means_no_colour_codes(fleet_env):
    env = {**fleet_env, "NO_COLOR": "1"}
    child = pexpect.spawn("bash", ["-c", f"{ORCH} status"], env=env, dimensions=(40, 100), encoding="utf-8", timeout=120, use_poll=True)
    child.expect(pexpect.EOF)
    assert "\x1b[3" not in (child.before or "") and "selected instances" in (child.before or "")
    flagged = pexpect.spawn("bash", ["-c", f"{ORCH} status --no-color"], env=fleet_env, dimensions=(40, 100), encoding="utf-8", timeout=120, use_poll=True)
    flagged.expect(pexpect.EOF)
    assert "\x1b[3" not in (flagged.before or "")
