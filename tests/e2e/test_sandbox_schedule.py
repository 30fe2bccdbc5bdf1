"""A served sandbox heals itself on the stack's schedule (orchestrator.sandbox.schedule), on an injected clock.

The driver `orch sandbox --serve` builds (``living_driver``) is ticked minute by minute
for most of an hour of simulated time: the leaking boxes climb and wedge, the scheduled
invocations of the deployed handler (every 5 simulated minutes, EventBridge's event, the
stack's environment) reboot them, and what `orch top` shows afterwards is a healthy fleet
with no metrics-stale row. With ``--schedule-minutes 0`` the same hour passes and nobody
acts. The sweeps, probes and AWS calls are real (moto, real sockets); no test waits on
the wall clock.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from orchestrator.aws import Clients
from orchestrator.cli.top_rows import rows_from
from orchestrator.estate import registry
from orchestrator.model import ActionKind, VerdictKind
from orchestrator.sandbox import EventKind, FleetSpec, Sandbox
from orchestrator.sandbox.demo import Stage, aws_env, exports, sandbox_settings, stage
from orchestrator.sandbox.endpoints import Mode
from orchestrator.sandbox.living import Driver
from orchestrator.sandbox.schedule import STACK, living_driver
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode as SweepMode
from orchestrator.sweep.pipeline import SweepDeps, sweep

pytestmark = pytest.mark.e2e

OPT_OUT_TAG = "orch:skip"


class Wall:
    """The wall clock the sandbox (and so the scheduled sweep) reads, moved by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Sandbox, Wall, Stage]]:
    wall = Wall()
    sb = Sandbox(FleetSpec(instances=8, hung=0, refusing=0, leaking=2, opt_out=0, unmanaged=0, seed=4, port=0))
    sb.wall = wall
    with sb, aws_env(sb.env()):
        yield sb, wall, stage(sb, tmp_path)


def live(driver: Driver, wall: Wall, minutes: int) -> None:
    """Each simulated minute as the serving loop would see it: the clock moves, the driver ticks."""
    for _ in range(minutes):
        wall.at += timedelta(minutes=1)
        driver.tick()


def top_rows(sb: Sandbox, staged: Stage, wall: Wall) -> dict[str, VerdictKind]:
    """What `orch top` shows (take_snapshot: a scan that records nothing, then rows_from), on the sandbox's clock."""
    settings = sandbox_settings(sb, staged)
    store = SqliteStore(staged.state_path)
    try:
        deps = SweepDeps(clients=Clients(boto3.Session(region_name=sb.region)), store=store, clock=wall, record_sweep=False)
        report = sweep(settings, deps, mode=SweepMode.SCAN, dry_run=True)
    finally:
        store.close()
    chronic = {i for p in report.patterns for i in p.members}
    rows = rows_from(report.facts, report.verdicts, report.histories, chronic, settings.safety.ladder, OPT_OUT_TAG)
    return {r.name: r.verdict for r in rows}


def test_a_served_leaking_fleet_wedges_and_the_schedule_heals_it(served):
    sb, wall, staged = served
    leaky = {s.instance_id: s.name for s in sb.instances if s.leaking}
    assert len(leaky) == 2
    said: list[str] = []
    log = io.StringIO()
    errors: list[BaseException] = []
    driver = living_driver(sb, exports(sb, staged), 1.0, 5, say=said.append, log=log, on_error=errors.append)
    started = wall.at

    live(driver, wall, 4)
    assert said == []  # the first scheduled sweep is one interval after start: a person's `orch heal` has the fleet first
    live(driver, wall, 46)

    assert errors == []
    heal = driver.schedule[0].job
    assert len(said) == len(heal.results) == 10, said  # one line per slot: minutes 5, 10, ... 50
    # The leaks wedged (sshd hung at exhaustion) and the scheduled sweeps rebooted exactly those boxes.
    hung = {e.instance_id: e.at for e in sb.events if e.what is EventKind.HUNG}
    rebooted = {e.instance_id: e.at for e in sb.events if e.what is EventKind.REBOOT}
    assert set(hung) == set(leaky) and set(rebooted) == set(leaky), (hung, rebooted, said)
    assert all(rebooted[i] > hung[i] for i in leaky)
    assert sb.acted_on() == set(leaky)  # nothing else was touched
    # ... through the deployed path: EventBridge's event, the handler's log lines, the stack's settings.
    logged = [json.loads(line) for line in log.getvalue().splitlines()]
    sweeps = [line for line in logged if line.get("event") == "sweep"]
    assert len(sweeps) == 10 and {s["trigger"] for s in sweeps} == {"schedule"} and {s["mode"] for s in sweeps} == {"heal"}
    assert {(a["instance_id"], a["outcome"]) for a in logged if a.get("event") == "action"} == {(i, "done") for i in leaky}
    # Recorded in the store `orch history` reads, as reboots.
    store = SqliteStore(staged.state_path)
    try:
        for instance_id in leaky:
            records = store.list_actions(instance_id)
            assert [r.action for r in records] == [ActionKind.REBOOT], records
    finally:
        store.close()
    # Said on the server's stderr: when, what, to whom by Name.
    for instance_id, name in leaky.items():
        line = next(line for line in said if f"rebooted {name} (" in line)
        assert line.startswith(f"{rebooted[instance_id].astimezone(timezone.utc):%H:%M}")
    first = started + timedelta(minutes=5)
    assert said[0] == f"{first:%H:%M:%S} scheduled sweep, 8 instances (6 healthy, 2 memory-exhaustion-forecast): nothing to do", said
    # No sweep saw a silent agent, and `orch top` now shows every box answering: the others
    # healthy, the rebooted ones leaking again (healthy, or already forecast again: how far a
    # new cycle has climbed at the end depends on the second the test started).
    assert all("metrics-stale" not in r["verdicts"] for r in heal.results)
    rows = top_rows(sb, staged, wall)
    assert set(rows) == {s.name for s in sb.instances}
    assert {v for name, v in rows.items() if name not in leaky.values()} == {VerdictKind.HEALTHY}, rows
    assert {rows[name] for name in leaky.values()} <= {VerdictKind.HEALTHY, VerdictKind.MEMORY_FORECAST}, rows
    assert all(sb.instance(i).mode is not Mode.HUNG for i in leaky)


def test_with_the_schedule_off_nobody_heals_the_wedged_boxes(served):
    sb, wall, staged = served
    leaky = {s.instance_id for s in sb.instances if s.leaking}
    said: list[str] = []
    driver = living_driver(sb, exports(sb, staged), 1.0, 0, say=said.append, log=None, on_error=lambda exc: pytest.fail(str(exc)))
    assert driver.schedule == []
    live(driver, wall, 50)
    assert {e.instance_id for e in sb.events if e.what is EventKind.HUNG} == leaky
    assert sb.acted_on() == set() and said == []
    assert all(sb.instance(i).mode is Mode.HUNG for i in leaky)
    assert registry.list_healers(sb.client("ssm")) == []  # no healer registered: a person's orch heal is on its own
    rows = top_rows(sb, staged, wall)
    assert sorted(v.value for v in rows.values()).count(VerdictKind.UNREACHABLE.value) == 2, rows


def test_the_scheduled_healer_is_registered_as_the_stack_registers_itself(served):
    """So `orch heal` by hand finds its store and scope: one lease for both."""
    sb, _, staged = served
    exported = exports(sb, staged)
    living_driver(sb, exported, 1.0, 5, say=lambda line: None, log=io.StringIO(), on_error=lambda exc: None)
    (healer,) = registry.list_healers(sb.client("ssm"))
    assert (healer.stack, healer.state, healer.vpc_id, healer.mode) == (STACK, exported["ORCH_STATE"], sb.vpc_id, "heal")
    found = registry.resolve([healer], {"orch:managed": "true"}, None, exported["ORCH_STATE"], acting=True)
    assert (found.account, found.vpc_id) == (sb.account_id, sb.vpc_id)  # the scope the function's sweeps lease


def test_a_scheduled_sweep_and_orch_heal_by_hand_share_one_lease(served, tmp_path):
    """Whichever finds the other's lease does not act: `orch heal` exits 4, the scheduled sweep skips until its next slot."""
    from click.testing import CliRunner

    from orchestrator.cli import cli
    from orchestrator.state import lease_scope

    sb, wall, staged = served
    exported = exports(sb, staged)
    said: list[str] = []
    driver = living_driver(sb, exported, 1.0, 5, say=said.append, log=io.StringIO(), on_error=lambda exc: pytest.fail(str(exc)))
    scope = lease_scope(sb.account_id, sb.region, sb.vpc_id)  # the function's: its ARN's account, ORCH_VPC_ID
    store = SqliteStore(staged.state_path)
    try:
        # A scheduled sweep under way: `orch heal` by hand (the export lines, as `source sandbox.env` gives them) stays out.
        lease = store.acquire_lease(scope, "orch-sandbox-Function (scheduled)", timedelta(minutes=10), datetime.now(timezone.utc))
        ran = CliRunner().invoke(cli, ["heal", "--yes"], env={**exported, "XDG_STATE_HOME": str(tmp_path)})
        assert ran.exit_code == 4 and f"holds the lease for {scope}: orch-sandbox-Function (scheduled)" in ran.stderr, ran.output
        store.release_lease(lease)
        # `orch heal` by hand under way: the scheduled sweep skips politely, and acts at a later slot.
        lease = store.acquire_lease(scope, "orch heal by hand", timedelta(minutes=10), wall.at)
        live(driver, wall, 5)
        assert len(said) == 1 and " scheduled sweep skipped: lease held by orch heal by hand until " in said[0], said
        assert said[0].endswith("; the next one tries again")
        store.release_lease(lease)
        live(driver, wall, 5)
        assert len(said) == 2 and "scheduled sweep, 8 instances" in said[1], said
    finally:
        store.close()
