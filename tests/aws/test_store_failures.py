"""A state store that fails at each write: nothing acted on is said only when true, and what was done survives.

The fleet is moto's; the store is a real SQLite file wrapped to fail one method from its
n-th call on, as a locked, full or read-only disk would.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config import Settings
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import StateError
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import launch
from tests.builders import ScriptedProber

SETTINGS = Settings.model_validate(
    {"safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}, "notify": {"topic_arn": None}}
)


class FailingStore:
    """Fails ``method`` from its ``from_call``-th call on (1-based); everything else passes through."""

    def __init__(self, inner: Any, method: str, from_call: int = 1) -> None:
        self._inner, self._method, self._from = inner, method, from_call
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name != self._method:
            return target

        def maybe_fail(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls >= self._from:
                raise StateError(f"{name}: disk I/O error")
            return target(*args, **kwargs)

        return maybe_fail


def reboots(aws: Any) -> int:
    return aws.counter.snapshot().get("ec2.RebootInstances", 0)


CASES = [
    # failing method, from call, AWS mutated?, what the sweep does
    ("put_action_intent", 1, False, "raises"),
    ("get_pause", 1, False, "raises"),  # read when planning: before any action
    ("update_action", 1, True, "record_error"),
    ("put_histories", 1, True, "record_error"),
    ("get_pause", 3, True, "record_error"),  # read by the gate before the second action
    ("put_sweep", 1, True, "note"),
]


@pytest.mark.parametrize("method, from_call, mutated, result", CASES, ids=[f"{c[0]}-from-{c[1]}" for c in CASES])
def test_the_store_failing_at_each_write(aws, subnet, tmp_path, method, from_call, mutated, result):
    ids = launch(aws, subnet, 6)
    down = set(ids[:2])
    store = FailingStore(SqliteStore(tmp_path / "state.db"), method, from_call)
    deps = SweepDeps(clients=aws, store=store, prober=ScriptedProber(down))  # type: ignore[arg-type]
    if result == "raises":
        with pytest.raises(StateError, match="disk I/O error"):
            sweep(SETTINGS, deps)
        assert reboots(aws) == 0  # "nothing was acted on" is the truth here
        return
    report = sweep(SETTINGS, deps)
    assert (reboots(aws) > 0) is mutated
    taken = {a["instance_id"] for a in report.summary()["actions"] if a["outcome"] == "done"}
    assert taken and taken <= down  # every action taken is in the report, whatever the store did
    if result == "record_error":
        assert report.record_error is not None and "disk I/O error" in report.record_error and report.partial
        assert any("stopped taking records" in n for n in report.summary()["notes"])
    else:
        assert report.record_error is None and report.partial
        assert any("the sweep record could not be written" in n for n in report.summary()["notes"])


def test_no_new_action_is_started_once_the_store_stopped_taking_records(aws, subnet, tmp_path):
    """The intent of the second action cannot be written: it is not started, and says why."""
    ids = launch(aws, subnet, 6)
    store = FailingStore(SqliteStore(tmp_path / "state.db"), "put_action_intent", from_call=2)
    report = sweep(SETTINGS, SweepDeps(clients=aws, store=store, prober=ScriptedProber(set(ids[:2]))))  # type: ignore[arg-type]
    outcomes = {a["instance_id"]: (a["outcome"], a["detail"]) for a in report.summary()["actions"]}
    assert sorted(status for status, _ in outcomes.values()) == ["done", "skipped"]
    (skipped,) = [detail for status, detail in outcomes.values() if status == "skipped"]
    assert "could not be recorded" in skipped or "stopped taking records" in skipped
    assert report.record_error is not None


def test_the_cli_says_what_was_done_and_where_its_record_is(aws, subnet, tmp_path, monkeypatch):
    ids = launch(aws, subnet, 6)
    monkeypatch.setattr("orchestrator.cli.sweep_cmds.SweepDeps", functools.partial(SweepDeps, prober=ScriptedProber({ids[0]})))
    monkeypatch.setattr("orchestrator.cli.common.open_store", lambda spec, factory=None: FailingStore(SqliteStore(spec), "update_action"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    env = {"ORCH_SAFETY_LAUNCH_GRACE_MINUTES": "0", "ORCH_SAFETY_MAX_UNHEALTHY": "50%"}
    result = CliRunner().invoke(cli, ["heal", "--yes", "--state", str(tmp_path / "cli.db"), "-o", "json"], env=env)
    assert result.exit_code == 5, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "nothing was acted on" not in line and f"1 action(s) were taken before it failed: {ids[0]} reboot done" in line
    kept = Path(line.split("what was done is written to ")[1])
    assert kept.is_file() and json.loads(kept.read_text())["actions"][0]["instance_id"] == ids[0]
    assert json.loads(result.stdout)["record_error"]  # stdout has it too


def test_the_lambda_fails_the_invocation_naming_what_was_done_and_keeps_it_in_the_bucket(aws, subnet, monkeypatch, capsys):
    from lambdas import heal
    from orchestrator.state import open_store
    from orchestrator.state.dynamodb import create_table
    from tests.aws.test_lambda_heal import SCHEDULED_EVENT, TABLE, environ, invoke

    ids = launch(aws, subnet, 6)
    create_table(aws.client("dynamodb"), TABLE, wait_delay_s=0, wait_attempts=1)
    aws.client("s3").create_bucket(Bucket="orch-evidence")
    monkeypatch.setattr(heal, "open_store", lambda spec, factory=None: FailingStore(open_store(spec, factory), "update_action"))
    with pytest.raises(heal.HandlerError, match=f"1 action\\(s\\) were taken before it failed: {ids[0]} reboot done"):
        invoke(aws, SCHEDULED_EVENT, ScriptedProber({ids[0]}), environ(ORCH_EVIDENCE_BUCKET="orch-evidence"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line.get("event") == "action" and line["instance_id"] == ids[0] for line in lines)  # the log has it
    (error,) = [line for line in lines if line.get("level") == "error"]
    kept = error["error"].split("what was done is in ")[1]
    bucket, key = kept.removeprefix("s3://").split("/", 1)
    body = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert body["actions"][0]["instance_id"] == ids[0] and body["record_error"]
