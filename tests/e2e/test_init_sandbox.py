"""`orch init` on an untagged sandbox fleet, then `orch heal` heals it (issue 13's "done when").

The fleet is launched without any orch tag (``FleetSpec(tagged=False)``): before init,
orch sees nothing. init finds it by its Name glob, leaves the two bystanders in the
same VPC alone, tags the rest with a selector given only to init, and writes the
per-user config file (``XDG_CONFIG_HOME`` points into the test's directory). `orch
heal`, given no --selector and no --config, reads that file and heals the hung ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pexpect
import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.sandbox import FleetSpec, Mode, Sandbox
from orchestrator.sandbox.demo import exports, stage
from tests.e2e.test_terminal_fit import ANSI, ORCH, on_terminal
from tests.faults import FaultPlan

pytestmark = pytest.mark.e2e

SELECTOR = "crawlers:adopted=yes"  # not the default: heal finds the fleet only through init's config file


@pytest.fixture
def untagged(tmp_path: Path) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    spec = FleetSpec(instances=10, hung=2, refusing=0, leaking=0, opt_out=1, unmanaged=2, tagged=False, seed=4, port=0)
    with Sandbox(spec) as sb:
        env = {**exports(sb, stage(sb, tmp_path)), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        yield sb, env


def orch(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_init_adopts_an_untagged_fleet_and_heal_heals_it(untagged, tmp_path, monkeypatch):
    sb, env = untagged
    managed = {s.instance_id for s in sb.instances if s.managed}
    bystanders = {s.instance_id for s in sb.instances if not s.managed}
    assert len(managed) == 10 and len(bystanders) == 2

    before = orch(env, "scan", "--selector", SELECTOR)
    assert before.exit_code == 1 and "no instance matches" in before.output

    dry = orch(env, "init", "--name-pattern", "crawler-*", "--selector", SELECTOR, "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.output
    config_path = tmp_path / "xdg" / "orch" / "config.toml"
    assert not config_path.exists()  # a dry run writes nothing...
    assert {r["instance_id"] for r in json.loads(dry.stdout)["to_tag"]} == managed
    assert not any(t.get("Key") == "crawlers:adopted" for t in _tags(sb))  # ...and tags nothing

    refused = orch(env, "init", "--name-pattern", "crawler-*", "--selector", SELECTOR)
    assert refused.exit_code == 2 and "--yes" in refused.output  # off a terminal, tagging needs --yes

    done = orch(env, "init", "--name-pattern", "crawler-*", "--selector", SELECTOR, "--yes", "-o", "json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert set(result["tagged"]) == managed
    assert {r["instance_id"] for r in result["unmanaged"]} == bystanders  # shown, never tagged
    assert result["config"]["written"] and result["config"]["path"] == str(config_path)
    assert result["vpcs"] == [sb.vpc_id]
    written = config_path.read_text()
    assert '"crawlers:adopted" = "yes"' in written and f'vpc_id = "{sb.vpc_id}"' in written

    # Idempotent: the second run finds them tagged, makes no CreateTags call and keeps the file.
    calls = FaultPlan().install(monkeypatch)
    mtime = config_path.stat().st_mtime_ns
    again = json.loads(orch(env, "init", "--name-pattern", "crawler-*", "--selector", SELECTOR, "--yes", "-o", "json").stdout)
    assert again["to_tag"] == [] and {r["instance_id"] for r in again["already_tagged"]} == managed
    assert again["config"]["changed"] is False and config_path.stat().st_mtime_ns == mtime
    assert calls.attempts("CreateTags") == 0

    # heal, with neither --selector nor --config: the per-user file names the fleet.
    hung = {s.instance_id for s in sb.instances if s.managed and not s.opt_out and s.mode is Mode.HUNG}
    assert len(hung) == 2
    heal = orch(env, "heal", "--yes", "-o", "json")
    summary = json.loads(heal.stdout)
    assert summary["instances"] == 10
    assert {a["instance_id"] for a in summary["actions"]} == hung
    assert all(a["outcome"] == "done" for a in summary["actions"])
    assert sb.acted_on() == hung  # the bystanders (hung too) and the opted-out one were never touched


def _tags(sb: Sandbox) -> list[dict[str, str]]:
    return sb.client("ec2").describe_tags()["Tags"]


# -- at a terminal: what init shows at 80 and 120 columns, and its question answered ----------

INIT = f"init --name-pattern 'crawler-*' --selector {SELECTOR}"
ID = re.compile(r"\b(?:vpc|i)-[0-9a-f]+")


def terminal_env(env: dict[str, str], home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(home), **env}


@pytest.mark.parametrize("columns", [80, 120])
def test_init_at_a_terminal_fits_it(untagged, tmp_path, columns):
    sb, env = untagged
    for command in (f"{INIT} --dry-run", "init --name-pattern 'nothing-*' --dry-run"):
        lines = on_terminal(command, terminal_env(env, tmp_path), columns, stderr_too=True)
        text = "\n".join(lines)
        assert text.strip() and "Traceback" not in text, text
        too_wide = [line for line in lines if len(line.rstrip()) > columns]
        assert not too_wide, f"{command} at {columns} columns: {too_wide[:3]}"
        cut = [m.group(0) for m in ID.finditer(text) if not re.fullmatch(r"(?:vpc|i)-[0-9a-f]{17}", m.group(0))]
        assert not cut, f"an id was cut: {cut[:3]}"
    plan = on_terminal(f"{INIT} --dry-run", terminal_env(env, tmp_path), columns, stderr_too=True)
    rows = [line for line in plan if re.match(r"\s*i-[0-9a-f]{17}\b", line)]
    assert len(rows) == 12  # the ten to tag and the two bystanders, one line each
    assert sum(bool(re.search(r"\btag\s*$", row)) for row in rows) == 10
    assert not (tmp_path / "xdg" / "orch" / "config.toml").exists()


def ask(env: dict[str, str], home: Path, answer: str) -> tuple[str, int]:
    """Run init at a terminal, wait for its question, answer it; (what it showed, exit status)."""
    child = pexpect.spawn("bash", ["-c", f"{ORCH} {INIT}"], env=terminal_env(env, home), dimensions=(40, 100), encoding="utf-8",
                          timeout=120, use_poll=True)
    child.expect(r"tag 10 instance\(s\) with crawlers:adopted=yes; 2 other instance\(s\) in vpc-[0-9a-f]{17} stay unmanaged\? \[y/N\]")
    shown = child.before + child.after
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    return ANSI.sub("", shown + (child.before or "")), child.exitstatus


def test_init_asks_before_tagging_and_no_means_nothing_done(untagged, tmp_path):
    sb, env = untagged
    config_path = tmp_path / "xdg" / "orch" / "config.toml"
    shown, status = ask(env, tmp_path, "n")
    assert status == 1 and "nothing tagged, no config written (you said no)" in shown
    assert sum(bool(re.search(r"\btag\s*$", line)) for line in shown.splitlines()) == 10  # the plan was shown before the question
    assert not any(t.get("Key") == "crawlers:adopted" for t in _tags(sb)) and not config_path.exists()

    shown, status = ask(env, tmp_path, "y")
    assert status == 0, shown
    managed = {s.instance_id for s in sb.instances if s.managed}
    adopted = {t["ResourceId"] for t in _tags(sb) if t.get("Key") == "crawlers:adopted" and t.get("Value") == "yes"}
    assert adopted == managed  # the ten, never the bystanders
    assert '"crawlers:adopted" = "yes"' in config_path.read_text()
