"""Hostile input to the reading commands, `scan`, `explain`, `report` (issue 20, cases 4, 9, 10).

Case 9: a Name tag is AWS-provided text a person chose, and rich reads ``[...]`` as
markup: ``web [/x] prod`` crashed every table. The console orch prints through has
markup off (orchestrator/cli/output.py), so such a tag is shown as it is, wherever it is shown.
Case 4: `report --html PATH` writes only a regular file: a device node, a directory or
a symlink is refused before the scan, with one line, and left as it was.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import launch
from tests.builders import ScriptedProber

MARKUP_NAMES = ("web [/x] prod", "[bold]db[/bold] [/]", "cache :fire: [link=http://127.0.0.1/]x")


@pytest.fixture
def fleet(aws: Any, subnet: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ids = launch(aws, subnet, 4)
    for instance_id, name in zip(ids, MARKUP_NAMES):
        aws.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": name}])
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    monkeypatch.setenv("ORCH_SAFETY_LAUNCH_GRACE_MINUTES", "0")
    monkeypatch.setenv("ORCH_SAFETY_MAX_UNHEALTHY", "50%")
    return ids


def orch(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--state", str(tmp_path / "state.db")], env={"COLUMNS": "200"})


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


# -- case 9 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, code, names_shown", [
    (["scan"], 1, True),  # one instance unreachable: exit 1
    (["report"], 0, False),  # grouped by AMI, type...: names are not a column
    (["report", "--tag", "Name"], 0, True),  # the tag's values are the rows
    (["heal", "--dry-run"], 0, True),
], ids=["scan", "report", "report --tag Name", "heal --dry-run"])
def test_case_9_markup_in_a_name_tag_is_shown_as_text(fleet, tmp_path, args, code, names_shown) -> None:
    result = orch(tmp_path, *args)
    no_traceback(result)
    assert result.exit_code == code, result.output
    shown = result.stdout
    assert "🔥" not in shown  # :fire: is text, not an emoji code
    if names_shown:  # the whole name, brackets and all: nothing swallowed as a style
        assert all(name in shown for name in MARKUP_NAMES), shown


def test_case_9_explain_shows_a_markup_name_whole(fleet, tmp_path) -> None:
    for target in (fleet[0], "web [/x] prod"):  # by id, and by the Name tag itself
        result = orch(tmp_path, "explain", target, "--no-console")
        no_traceback(result)
        assert result.exit_code == 0, result.output
        assert f"{fleet[0]} web [/x] prod" in result.stdout


# -- case 4 ---------------------------------------------------------------------------------

def test_case_4_report_html_refuses_a_device_node(fleet, tmp_path) -> None:
    device = Path("/dev/full")
    if not device.exists() or not stat.S_ISCHR(device.stat().st_mode):
        pytest.skip("no /dev/full here")
    before = device.stat()
    result = orch(tmp_path, "report", "--html", str(device))
    no_traceback(result)
    assert result.exit_code == 2 and "cannot write the HTML report to /dev/full: is not a regular file (a device)" in result.stderr, result.output
    after = device.stat()
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_case_4_report_html_refuses_a_symlink_and_leaves_its_target(fleet, tmp_path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    result = orch(tmp_path, "report", "--html", str(link))
    no_traceback(result)
    assert result.exit_code == 2 and "is a symlink: orch writes only regular files" in result.stderr, result.output
    assert link.is_symlink() and target.read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_case_4_report_html_refuses_a_directory_and_a_missing_one(fleet, tmp_path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    result = orch(tmp_path, "report", "--html", str(folder))
    assert result.exit_code == 2 and "is not a regular file (a directory)" in result.stderr, result.output
    result = orch(tmp_path, "report", "--html", str(tmp_path / "no" / "such" / "r.html"))
    assert result.exit_code == 2 and "does not exist" in result.stderr, result.output
    assert folder.is_dir() and not list(folder.iterdir())


def test_case_4_report_html_replaces_a_regular_file_whole_and_keeps_its_mode(fleet, tmp_path) -> None:
    page = tmp_path / "r.html"
    page.write_text("old")
    os.chmod(page, 0o640)
    result = orch(tmp_path, "report", "--html", str(page), "-o", "json")
    no_traceback(result)
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text != "old" and text.lstrip().lower().startswith("<!doctype html")
    assert stat.S_IMODE(page.stat().st_mode) == 0o640
    assert json.loads(result.stdout)["html"] == str(page)


# -- case 10 --------------------------------------------------------------------------------

def test_case_10_report_html_with_an_empty_path_is_one_line(fleet, tmp_path) -> None:
    result = orch(tmp_path, "report", "--html", "")
    no_traceback(result)
    assert result.exit_code == 2 and "cannot write the HTML report to '': no file path given" in result.stderr, result.output
