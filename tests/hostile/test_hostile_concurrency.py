"""Two healers of one fleet with two state stores (issue 20, case 3): never both act.

The fleet's lease lives in Parameter Store (moto here), which every healer of the fleet
sees whatever its store: a laptop's SQLite file, another laptop's, the Lambda's table.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.cli.common import Exit
from orchestrator.config import Settings
from orchestrator.state import LeaseHeld, LeaseLost, StateError, lease_scope
from orchestrator.state.lease import LeaseKeeper
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.ssm_lease import SsmLeases, parameter_path
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import REGION, launch
from tests.builders import ScriptedProber

CONFIG = Settings.model_validate({"safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}})


class HeldProber(ScriptedProber):
    """Probes like ScriptedProber once the test lets it: the sweep holds its lease meanwhile."""

    def __init__(self, down: set[str]) -> None:
        super().__init__(down)
        self.inside = threading.Event()
        self.go_on = threading.Event()

    def __call__(self, *args, **kwargs):
        self.inside.set()
        assert self.go_on.wait(30)
        return super().__call__(*args, **kwargs)


def test_case_3_two_heals_with_two_state_files_do_not_both_act(aws, subnet, tmp_path, monkeypatch):
    ids = launch(aws, subnet, 4)
    first_store, second_store = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "b.db")
    held = HeldProber({ids[0]})
    done: dict[str, object] = {}
    first = threading.Thread(target=lambda: done.update(a=sweep(CONFIG, SweepDeps(clients=aws, store=first_store, prober=held))))
    first.start()
    try:
        assert held.inside.wait(30)  # the first sweep holds its leases and is observing
        with pytest.raises(LeaseHeld):
            sweep(CONFIG, SweepDeps(clients=aws, store=second_store, prober=ScriptedProber({ids[0]})))
        # `orch heal --yes --state c.db` in the same moment: exit 4, nothing done
        for name in ("AWS_ENDPOINT_URL", "ORCH_CONFIG"):
            monkeypatch.delenv(name, raising=False)
        env = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "XDG_CONFIG_HOME": str(tmp_path)}
        ran = CliRunner().invoke(cli, ["heal", "--yes", "--state", str(tmp_path / "c.db")], env=env)
        assert ran.exit_code == Exit.LEASE_HELD, ran.output
        assert "another sweep holds the lease" in ran.output
    finally:
        held.go_on.set()
        first.join(60)
    assert [a.status.value for a in first_store.list_actions(ids[0])] == ["done"]
    assert second_store.list_actions() == [] and SqliteStore(tmp_path / "c.db").list_actions() == []
    # the first sweep let go of both: the second store's healer may act now
    sweep(CONFIG, SweepDeps(clients=aws, store=second_store, prober=ScriptedProber(set())))
    assert aws.client("ssm").get_parameters_by_path(Path=parameter_path(lease_scope("-", REGION, None)))["Parameters"] == []


def test_case_3_an_expired_lease_is_overtaken_by_a_new_generation_and_its_holder_stops(aws):
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    now = [t0]
    scope = lease_scope("123456789012", REGION, "vpc-0abc")
    leases = SsmLeases(aws.client("ssm"))
    slow = LeaseKeeper(leases, scope, ttl=timedelta(minutes=5), clock=lambda: now[0], owner="laptop-a:1:x")
    slow.acquire()
    with pytest.raises(LeaseHeld):  # live: refused
        LeaseKeeper(leases, scope, ttl=timedelta(minutes=5), clock=lambda: now[0], owner="laptop-b:1:y").acquire()
    now[0] = t0 + timedelta(minutes=6)  # the first healer outran its lease
    fresh = LeaseKeeper(leases, scope, ttl=timedelta(minutes=5), clock=lambda: now[0], owner="laptop-b:1:y")
    taken = fresh.acquire()
    assert taken.fence == 2
    names = [p["Name"] for p in aws.client("ssm").get_parameters_by_path(Path=parameter_path(scope))["Parameters"]]
    assert names == [f"{parameter_path(scope)}/2"]  # the expired generation was deleted, not overwritten
    with pytest.raises(LeaseLost):
        slow.check()
    fresh.check()
    slow.release()  # deletes nothing of the new holder's
    fresh.check()
    fresh.release()
    assert leases.get_lease(scope) is None


def test_case_3_two_takers_of_one_expired_lease_race_and_exactly_one_wins(aws):
    """Both read generation 1 expired; both create generation 2; Parameter Store lets one."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    scope = lease_scope("-", REGION, None)
    ssm = aws.client("ssm")
    SsmLeases(ssm).acquire_lease(scope, "gone:1:z", timedelta(minutes=5), t0)
    later = t0 + timedelta(minutes=10)

    class Racing:
        """Lets the rival take generation 2 between our read and our create."""

        def __init__(self) -> None:
            self.raced = False

        def __getattr__(self, name):
            return getattr(ssm, name)

        def put_parameter(self, **kwargs):
            if not self.raced and not kwargs.get("Overwrite"):
                self.raced = True
                SsmLeases(ssm).acquire_lease(scope, "rival:1:r", timedelta(minutes=5), later)
            return ssm.put_parameter(**kwargs)

    with pytest.raises(LeaseHeld) as held:
        SsmLeases(Racing()).acquire_lease(scope, "me:1:m", timedelta(minutes=5), later)
    assert held.value.owner == "rival:1:r"
    assert SsmLeases(ssm).get_lease(scope).owner == "rival:1:r"


def test_case_3_a_shared_lease_that_cannot_be_taken_stops_a_heal_with_its_own_store(aws, subnet, tmp_path, monkeypatch):
    """The local store never decides alone: no shared lease, no action (exit 5, what to grant)."""
    from tests.faults import FaultPlan, error

    ids = launch(aws, subnet, 4)
    FaultPlan().on("PutParameter", fault=error("AccessDeniedException", "not allowed")).install(monkeypatch)
    store = SqliteStore(tmp_path / "mine.db")
    with pytest.raises(StateError) as failed:
        sweep(CONFIG, SweepDeps(clients=aws, store=store, prober=ScriptedProber({ids[0]})))
    assert "ssm:PutParameter" in str(failed.value) and "/orch/lease/" in str(failed.value)
    assert store.list_actions() == []
    lease = store.get_lease(lease_scope("-", REGION, None))
    assert lease is None or not lease.owner  # the store's lease was let go too
