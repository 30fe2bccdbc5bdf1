"""`orch init` on an untagged sandbox fleet, then `orch heal` heals it (issue 13's "done when").

The fleet is launched without any orch tag (``FleetSpec(tagged=False)``): before init,
orch sees nothing. init finds it by its Name glob, leaves the two bystanders in the
same VPC alone, tags the rest with a selector given only to init, and writes the
per-user config file (``XDG_CONFIG_HOME`` points into the test's directory). `orch
heal`, given no --selector and no --config, reads that file and heals the hung ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.sandbox import FleetSpec, Mode, Sandbox
from orchestrator.sandbox.demo import exports, stage
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
