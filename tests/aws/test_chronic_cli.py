"""The chronic condition said in the same words by `orch status`, `orch report` and `orch heal` (moto)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.model import ActionAttempt, ActionKind, Cause, InstanceHistory
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import SweepDeps
from tests.aws.conftest import launch
from tests.builders import ScriptedProber


def chronic(instance_id: str, now: datetime) -> InstanceHistory:
    def cycle(minutes_ago: int) -> ActionAttempt:
        at = now - timedelta(minutes=minutes_ago)
        return ActionAttempt(at=at, kind=ActionKind.REBOOT, cause=Cause.MEMORY, verified_at=at + timedelta(minutes=5),
                             recurred_at=at + timedelta(minutes=30), cycle_minutes=33.0, slope_per_min=2.1, process="ruby",
                             process_rss_kb=15310180)

    return InstanceHistory(instance_id, actions=(cycle(80), cycle(40)))


def test_status_report_and_heal_tell_the_same_chronic_pattern(aws, subnet, tmp_path, monkeypatch):
    ids = launch(aws, subnet, 3)
    now = datetime.now(timezone.utc)
    state = tmp_path / "state.db"
    store = SqliteStore(state)
    store.put_histories([chronic(i, now) for i in ids[:2]])
    store.close()
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber(set())))
    texts = []
    for args in (["status"], ["report"], ["heal", "--dry-run"]):
        result = CliRunner().invoke(cli, [*args, "--state", str(state), "-o", "json"])
        assert result.exit_code in (0, 1), result.output
        chronic_part = json.loads(result.stdout)["chronic"]
        texts.append([c if isinstance(c, str) else c["text"] for c in chronic_part])
    (first,) = texts[0]
    assert first.startswith("chronic memory leak on 2 of 3 instances") and "runs out about 33 minutes after boot" in first
    assert "the kernel killed ruby at 14.6 GiB" in first
    assert all(t == texts[0] for t in texts)
