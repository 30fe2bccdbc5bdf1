"""Hostile input to `orch top` (issue 20, cases 9 and 10).

Case 9: a Name tag with rich markup (``web [/x] prod``) crashed the column fitting
every table shares (orchestrator/cli/tables.py, then part of render.py, read each cell as markup).
Case 10: `orch top` on a terminal with stdin closed (``<&-``: Python's sys.stdin is None)
crashed before its first frame; a terminal that hangs up (end of input) must not make
the key reader spin.
"""

from __future__ import annotations

import functools
import os
import pty
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli, common, top_cmd
from orchestrator.cli.top_layout import TopRow, View, frame, plain_text
from orchestrator.model import VerdictKind
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import launch
from tests.aws.test_deploy import moto_endpoint  # noqa: F401  (fixture)
from tests.builders import ScriptedProber

NAMES = ("web [/x] prod", "[bold red]db[/]", "x :fire: [link=http://127.0.0.1/]y")
ROOT = Path(__file__).resolve().parents[2]


# -- case 9 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [80, 120, 200])
def test_case_9_the_frame_shows_markup_names_as_text(width: int) -> None:
    now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    rows = [TopRow(f"i-{n:017x}", name, "us-east-1a", VerdictKind.HEALTHY if n else VerdictKind.UNREACHABLE) for n, name in enumerate(NAMES)]
    text = "\n".join(plain_text(frame(rows, View(now=now), width)))
    assert all(f"i-{n:017x}" in text for n in range(len(NAMES)))
    if width >= 120:  # the name column is shown: each name as typed (top cuts a long one at its column's width)
        assert all(name[:17] in text for name in NAMES), text


def test_case_9_top_once_under_moto_with_markup_names(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ids = launch(aws, subnet, 3)
    for instance_id, name in zip(ids, NAMES):
        aws.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": name}])
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    result = CliRunner().invoke(cli, ["top", "--once", "--state", str(tmp_path / "s.db")], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit)), repr(result.exception)
    assert result.exit_code == 0, result.output
    assert all(name[:17] in result.stdout for name in NAMES), result.stdout
    assert "🔥" not in result.stdout


# -- case 10 --------------------------------------------------------------------------------

def test_case_10_a_closed_or_absent_stdin_is_no_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    assert common.stdin_is_terminal() is False
    with top_cmd.keys() as read:
        assert read(0) == []
    closed = (tmp_path / "f").open("w")
    closed.close()
    monkeypatch.setattr(sys, "stdin", closed)  # isatty() on a closed file raises ValueError
    assert common.stdin_is_terminal() is False


def test_case_10_a_terminal_that_hangs_up_ends_the_keys_without_spinning(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    stdin = os.fdopen(slave, "r", closefd=True)
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        with top_cmd.keys() as read:
            os.write(master, b"u")
            assert read(5) == ["u"]  # a key still works
            os.close(master)  # the terminal hangs up: the end of input, select "ready" forever
            assert read(5) == []
            calls = []
            monkeypatch.setattr(top_cmd.select, "select", lambda *a: calls.append(a) or ([], [], []))
            assert read(0) == [] and read(0) == [] and calls == []  # no more polling of a dead terminal
    finally:
        stdin.close()


def test_case_10_top_on_a_terminal_with_stdin_closed_is_one_line(moto_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    """The real process: stdout a pseudo-terminal (so top goes live), fd 0 closed; no instance matches, exit 1."""
    master, slave = pty.openpty()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "HOME": os.environ.get("HOME", "/tmp"),
        "TERM": "xterm", "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "COLUMNS": "100", "LINES": "30",
    }
    try:
        ran = subprocess.run(
            ["sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-c", "from orchestrator.cli import main; main()", "top",
             "--selector", "team=nobody-at-all", "--state", str(tmp_path / "s.db")],
            stdout=slave, stderr=subprocess.PIPE, env=env, timeout=120, text=True,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == 1 and "no instance matches the selector team=nobody-at-all" in ran.stderr, ran.stderr
