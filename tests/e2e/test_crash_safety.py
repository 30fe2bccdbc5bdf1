"""The real `orch heal` killed with SIGKILL at each step of the act phase, then the next sweep.

Whatever the step: no action is repeated inside its verify window, none is missing from
the history, the lease of the dead process is taken over at once (same host, pid gone),
and `orch status` tells the truth in between. The fleet is the sandbox's (moto over HTTP,
loopback sshd fakes); the killed process is a real subprocess (tests/e2e/crash_harness.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.sandbox import EventKind, FleetSpec, Mode, Sandbox
from orchestrator.sandbox.demo import exports, stage
from orchestrator.state.sqlite import SqliteStore
from tests.e2e.crash_harness import STEPS

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SPEC = FleetSpec(instances=10, hung=3, refusing=0, leaking=0, opt_out=0, unmanaged=0, seed=11, port=0)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    with Sandbox(SPEC) as sb:
        env = exports(sb, stage(sb, tmp_path))
        yield sb, env


def killed_heal(env: dict[str, str], step: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORCH_"))} | env
    return subprocess.run(
        [sys.executable, "-m", "tests.e2e.crash_harness", step, "heal", "--yes", "-o", "json"],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=300,
    )


def orch(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "-o", "json"], env=env, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def reboots(sb: Sandbox) -> list[str]:
    return sorted(e.instance_id for e in sb.events if e.what == EventKind.REBOOT)


@pytest.mark.parametrize("step", STEPS)
def test_a_heal_killed_at_any_step_is_neither_repeated_nor_lost(fleet, step):
    sb, env = fleet
    hung = sorted(s.instance_id for s in sb.instances if s.managed and s.mode is Mode.HUNG)
    assert len(hung) == 3

    died = killed_heal(env, step)
    assert died.returncode == -9, died.stderr[-2000:]
    called = step != "after-intent"
    assert reboots(sb) == (hung if called else [])  # one batched RebootInstances, or none yet

    # In between: status says what may have been done, and who holds the lease.
    code, status = orch(env, "status")
    dangling = sorted(r["instance_id"] for r in status["intents_without_outcome"])
    expected = {"after-intent": 1, "during-call": 3, "after-call": 3, "before-history": 2}[step]
    assert len(dangling) == expected and set(dangling) <= set(hung), status["intents_without_outcome"]
    assert status["lease"] is not None and status["lease"]["owner"].split(":")[1].isdigit()

    # The next sweep: takes the dead process's lease at once, repeats nothing, loses nothing.
    code, healed = orch(env, "heal", "--yes")
    assert code in (0, 1), healed
    acted_now = sorted(a["instance_id"] for a in healed["actions"])
    assert acted_now == ([i for i in hung if i not in dangling] if not called else [])  # only what was never attempted
    assert sorted(reboots(sb)) == sorted(set(reboots(sb))), "an action was repeated inside its verify window"
    assert set(reboots(sb)) == set(hung) - (set(dangling) if not called else set())
    assert any(n.startswith("recovered") for n in healed["notes"]), healed["notes"]
    if step == "before-history":
        assert any("missing from their instance's history" in n for n in healed["notes"]), healed["notes"]

    code, history = orch(env, "history")
    assert sorted(r["instance_id"] for r in history) == hung and all(r["status"] == "done" for r in history)
    code, status = orch(env, "status")
    assert status["intents_without_outcome"] == []
    assert status["lease"] is None  # released by the sweep that took it over
    store = SqliteStore(env["ORCH_STATE"])
    try:
        histories = store.get_histories(hung)
    finally:
        store.close()
    keys = {r["instance_id"]: r["key"] for r in history}
    for instance_id in hung:
        (attempt,) = histories[instance_id].actions  # in the history once: counted by budgets, ladder, quarantine
        assert attempt.key == keys[instance_id]
        back = called  # rebooted by the dead process and answering again: verified; else just taken, in flight
        assert (attempt.verified_at is not None) is back and (histories[instance_id].in_flight_key is None) is back
