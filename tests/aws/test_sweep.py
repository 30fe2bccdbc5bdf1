"""The whole sweep against moto, with a scripted prober standing in for SSH."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.config import Settings
from orchestrator.model import VerdictKind
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import LeaseHeld, PauseState
from orchestrator.sweep.pipeline import Mode, SweepDeps, sweep
from tests.aws.conftest import launch
from tests.builders import ScriptedProber

MUTATIONS = {"ec2.RebootInstances", "ec2.StopInstances", "ec2.StartInstances", "autoscaling.SetInstanceHealth", "ec2.TerminateInstances"}


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "state.db")
    yield s
    s.close()


SETTINGS = Settings.model_validate({"safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}})


def run(aws, store, prober, **kw):
    return sweep(SETTINGS, SweepDeps(clients=aws, store=store, prober=prober), **kw)


def test_heal_reboots_only_the_unreachable_and_records_it(aws, subnet, store):
    ids = launch(aws, subnet, 6)
    skip = launch(aws, subnet, 1, tags={"orch:managed": "true", "orch:skip": "true"})[0]
    unmanaged = launch(aws, subnet, 1, tags={"team": "other"})[0]
    prober = ScriptedProber({ids[0], skip, unmanaged})
    report = run(aws, store, prober)
    summary = report.summary()
    assert summary["instances"] == 7
    assert summary["verdicts"] == {"healthy": 5, "unreachable": 2}
    assert [(a["instance_id"], a["action"], a["outcome"]) for a in summary["actions"]] == [(ids[0], "reboot", "done")]
    assert [(b["instance_id"], b["why"]) for b in summary["blocked"]] == [(skip, "opted out by tag orch:skip")]
    assert summary["api_calls"]["ec2.RebootInstances"] == 1
    (record,) = store.list_actions(ids[0])
    assert record.status.value == "done" and record.action.value == "reboot"
    assert "console_cause" in record.evidence
    history = store.get_histories([ids[0]])[ids[0]]
    assert history.in_flight_key == record.key and len(history.attempts) == 1


def test_next_sweep_waits_for_verification_instead_of_repeating(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    prober = ScriptedProber({ids[1]})
    run(aws, store, prober)
    second = run(aws, store, prober).summary()
    assert second["actions"] == []
    assert "awaits verification" in second["blocked"][0]["why"]


def test_dry_run_plans_the_same_and_mutates_nothing(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    report = run(aws, store, ScriptedProber({ids[2]}), dry_run=True)
    summary = report.summary()
    assert [(a["instance_id"], a["outcome"]) for a in summary["actions"]] == [(ids[2], "dry-run")]
    assert not MUTATIONS & set(summary["api_calls"])
    assert store.list_actions(ids[2]) == []


def test_scan_never_plans(aws, subnet, store):
    ids = launch(aws, subnet, 3)
    report = run(aws, store, ScriptedProber({ids[0]}), mode=Mode.SCAN)
    assert report.plan.actions == () and report.verdicts[0].kind in (VerdictKind.UNREACHABLE, VerdictKind.HEALTHY)
    assert not MUTATIONS & set(report.api_calls)


def test_pause_blocks_everything(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    store.set_pause(PauseState(datetime.now(timezone.utc), "ops", "incident review"))
    summary = run(aws, store, ScriptedProber({ids[0]})).summary()
    assert summary["actions"] == [] and "paused" in summary["blocked"][0]["why"]


def test_a_held_lease_stops_a_second_healer_before_it_observes(aws, subnet, store):
    launch(aws, subnet, 2)
    from orchestrator.state import lease_scope

    store.acquire_lease(lease_scope("-", "us-east-1", None), "lambda-1", timedelta(minutes=5), datetime.now(timezone.utc))
    prober = ScriptedProber(set())
    with pytest.raises(LeaseHeld, match="lambda-1"):
        run(aws, store, prober)
    assert prober.calls == []


def test_dry_run_needs_no_lease(aws, subnet, store):
    launch(aws, subnet, 2)
    from orchestrator.state import lease_scope

    store.acquire_lease(lease_scope("-", "us-east-1", None), "lambda-1", timedelta(minutes=5), datetime.now(timezone.utc))
    assert run(aws, store, ScriptedProber(set()), dry_run=True).summary()["instances"] == 2


def test_deadline_starts_no_new_action(aws, subnet, store):
    ids = launch(aws, subnet, 4)
    deps = SweepDeps(clients=aws, store=store, prober=ScriptedProber({ids[0]}), time_left=lambda: 5.0)
    report = sweep(SETTINGS, deps)
    summary = report.summary()
    assert summary["partial"] is True
    assert summary["actions"][0]["outcome"] == "skipped" and "deadline" in summary["actions"][0]["detail"]
    assert "ec2.RebootInstances" not in summary["api_calls"]


def test_memory_cadence_reads_the_fleet_every_k_sweeps_and_suspects_every_sweep(aws, subnet, store):
    ids = launch(aws, subnet, 5)
    now = datetime.now(timezone.utc)
    for instance_id in ids:
        aws.cloudwatch.put_metric_data(
            Namespace="CWAgent",
            MetricData=[{"MetricName": "mem_used_percent", "Dimensions": [{"Name": "InstanceId", "Value": instance_id}], "Timestamp": now - timedelta(minutes=2), "Value": 40.0}],
        )
    settings = Settings.model_validate({"safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}, "memory": {"full_read_every": 3}})
    prober = ScriptedProber({ids[0]})
    runs = [sweep(settings, SweepDeps(clients=aws, store=store, prober=prober), dry_run=True).summary() for _ in range(4)]
    assert [r["memory_full_read"] for r in runs] == [True, False, False, True]
    assert [r["metrics_requested"] for r in runs] == [5, 1, 1, 5]
