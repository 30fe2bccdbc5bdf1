"""The deadline gate asks how long the action may take, not a fixed margin (moto, an injected time left)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.config import Settings
from orchestrator.model import InstanceHistory, VerdictKind
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import launch
from tests.builders import ScriptedProber, actions_at

SETTINGS = Settings.model_validate({"safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}})


@pytest.mark.parametrize(
    "rung, seconds_left, started",
    [
        (0, 60.0, True),  # a reboot takes one call: 30 s margin + 15 s fit in 60 s
        (0, 40.0, False),
        (1, 60.0, False),  # a stop/start waits up to stop_wait_seconds (300) for the stop: not with 60 s left
        (1, 400.0, True),
    ],
)
def test_an_action_starts_only_when_it_fits_before_the_deadline(aws, subnet, store, rung, seconds_left, started):
    ids = launch(aws, subnet, 6)
    now = datetime.now(timezone.utc)
    if rung:
        earlier = InstanceHistory(ids[0], rung=rung, actions=actions_at(now - timedelta(hours=1)), last_verdict=VerdictKind.UNREACHABLE)
        store.put_histories([earlier])
    deps = SweepDeps(clients=aws, store=store, prober=ScriptedProber({ids[0]}), time_left=lambda: seconds_left)
    report = sweep(SETTINGS, deps)
    (action,) = report.summary()["actions"]
    assert action["action"] == ("stop-start" if rung else "reboot")
    assert (action["outcome"] != "skipped") is started, action
    assert report.partial is (not started)
    if not started:
        assert "left before the deadline" in action["detail"] and "may take" in action["detail"]
