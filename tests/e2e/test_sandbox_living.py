"""A served sandbox that lives (orchestrator.sandbox.living), on an injected clock: no test waits.

Minute after minute the agents publish, leaking boxes climb and wedge; after orch's
reboot a leaky box starts a new cycle and leaks again; `--time-scale` makes simulated
minutes pass faster, each point stamped at the wall time it happens. The sweeps are the
real ones (moto, real sockets), on the sandbox's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from orchestrator.aws import Clients
from orchestrator.model import VerdictKind
from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import aws_env, sandbox_settings, stage
from orchestrator.sandbox.endpoints import Mode
from orchestrator.sandbox.living import Driver
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode as SweepMode
from orchestrator.sweep.pipeline import SweepDeps, SweepReport, sweep

pytestmark = pytest.mark.e2e


class Wall:
    """The wall clock the sandbox reads, moved by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.at

    def minutes(self, n: float) -> None:
        self.at += timedelta(minutes=n)


@pytest.fixture
def living(tmp_path: Path) -> Iterator[tuple[Sandbox, Wall, SqliteStore, object]]:
    wall = Wall()
    sb = Sandbox(FleetSpec(instances=8, hung=0, refusing=0, leaking=2, opt_out=0, unmanaged=0, seed=4, port=0))
    sb.wall = wall
    with sb, aws_env(sb.env()):
        staged = stage(sb, tmp_path)
        store = SqliteStore(staged.state_path)
        try:
            yield sb, wall, store, sandbox_settings(sb, staged)
        finally:
            store.close()


def run(sb: Sandbox, store: SqliteStore, settings: object, mode: SweepMode) -> SweepReport:
    deps = SweepDeps(clients=Clients(boto3.Session(region_name=sb.region)), store=store, clock=sb.now)
    return sweep(settings, deps, mode=mode, dry_run=mode is SweepMode.SCAN)  # type: ignore[arg-type]


def live(driver: Driver, wall: Wall, minutes: int) -> None:
    for _ in range(minutes):
        wall.minutes(1)
        driver.tick()


def test_leaking_boxes_climb_wedge_get_healed_and_leak_again(living):
    sb, wall, store, settings = living
    leaky = sorted(s.instance_id for s in sb.instances if s.leaking)
    assert len(leaky) == 2
    driver = Driver(sb)
    live(driver, wall, 30)  # 75-85 % at 0.9-1.2 %/min: every leak has wedged by now
    report = run(sb, store, settings, SweepMode.SCAN)
    kinds = {v.instance_id: v.kind for v in report.verdicts}
    assert VerdictKind.METRICS_STALE not in kinds.values(), kinds  # the agents kept publishing
    assert {kinds[i] for i in leaky} == {VerdictKind.UNREACHABLE}, kinds
    assert all(sb.instance(i).mode is Mode.HUNG for i in leaky)
    assert all(kinds[s.instance_id] is VerdictKind.HEALTHY for s in sb.instances if not s.leaking)

    acted: list[str] = []
    for _ in range(3):  # the first sweep sees the failure, the next ones past the debounce act
        healed = run(sb, store, settings, SweepMode.HEAL)
        acted += [a.instance_id for a in healed.plan.actions]
        if sorted(acted) == leaky:
            break
        live(driver, wall, 1)
    assert sorted(acted) == leaky, healed.plan.blocked
    live(driver, wall, 10)  # a new cycle: down to the baseline, then the leak again
    after = {v.instance_id: v for v in run(sb, store, settings, SweepMode.SCAN).verdicts}
    for instance_id in leaky:
        v = after[instance_id]
        assert v.kind is not VerdictKind.UNREACHABLE and sb.instance(instance_id).mode is not Mode.HUNG
        assert v.memory_percent is not None and 35 <= v.memory_percent <= 60, v
        assert v.memory_slope_per_min is not None and v.memory_slope_per_min > 0.5, v  # leaking again


def test_time_scale_runs_the_story_faster_stamped_on_the_wall_clock(living):
    sb, wall, _, _ = living
    started, published = sb.now(), sb.series_end
    driver = Driver(sb, scale=10)
    wall.minutes(1)
    driver.tick()
    assert sb.now() - started >= timedelta(minutes=10) - timedelta(seconds=1)
    assert sb.series_end - published >= timedelta(minutes=9)  # ten simulated minutes published in one wall minute
    cloudwatch = sb.client("cloudwatch")
    leaky = next(s for s in sb.instances if s.leaking)
    points = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": "CWAgent", "MetricName": "mem_used_percent",
                                                                 "Dimensions": sb.metric_dimensions(leaky.instance_id)},
                                                      "Period": 60, "Stat": "Maximum"}}],
        StartTime=wall.at - timedelta(minutes=30), EndTime=wall.at + timedelta(minutes=30),
    )["MetricDataResults"][0]["Timestamps"]
    assert points and max(points) <= wall.at + timedelta(seconds=1)  # never stamped in the wall clock's future
    assert driver.interval <= 3.0  # a simulated minute is 6 s of wall time: ticks come often enough


def test_a_simulate_scenario_runs_live_through_the_same_box_model(tmp_path):
    """`--scenario chronic-leak`: the simulator's boxes, slot by slot, on the sandbox's clock."""
    from orchestrator.sandbox.scenario import scenario_boxes

    wall = Wall()
    boxes = scenario_boxes("chronic-leak", wall.at.replace(microsecond=0), seed=0)
    sb = Sandbox(FleetSpec(instances=len(boxes), hung=0, refusing=0, leaking=0, opt_out=0, unmanaged=0, seed=0, port=0))
    sb.wall = wall
    sb.boxes = dict(enumerate(boxes))
    with sb, aws_env(sb.env()):
        staged = stage(sb, tmp_path)
        store = SqliteStore(staged.state_path)
        try:
            settings = sandbox_settings(sb, staged)
            by_index = {s.index: s for s in sb.instances}
            assert all(sb._boxes[by_index[i].instance_id] is box for i, box in enumerate(boxes))  # noqa: SLF001 - the same boxes
            driver = Driver(sb)
            live(driver, wall, 45)  # 30-40 minutes from boot to the wedge, boxes out of step: some have wedged
            kinds = {v.instance_id: v.kind for v in run(sb, store, settings, SweepMode.SCAN).verdicts}
            wedged = [i for i, box in enumerate(boxes) if box.wedged(sb.now())]
            assert wedged and VerdictKind.METRICS_STALE not in kinds.values()
            assert all(kinds[by_index[i].instance_id] is VerdictKind.UNREACHABLE for i in wedged), kinds
        finally:
            store.close()


def test_a_scenario_is_served_only_with_serve_and_an_unknown_one_names_the_list():
    from click.testing import CliRunner

    from orchestrator.cli import cli

    ran = CliRunner().invoke(cli, ["sandbox", "--serve", "--scenario", "no-such-thing"])
    assert ran.exit_code == 2 and "orch simulate --list names them" in ran.stderr and "dark-az" in ran.stderr
    ran = CliRunner().invoke(cli, ["sandbox", "--scenario", "chronic-leak"])
    assert ran.exit_code == 2 and "--scenario goes with --serve" in ran.stderr


def test_a_scenario_that_launches_later_is_refused_with_the_simulator_named(monkeypatch):
    """What the sandbox cannot serve yet (instances launched later in the story) says why and what to run instead."""
    from dataclasses import replace

    from orchestrator.sandbox import scenario as live
    from orchestrator.simulate import BY_NAME

    def build(world, rng, count, conditions):
        BY_NAME["chronic-leak"].build(world, rng, count, conditions)
        machine = next(iter(world.machines.values()))
        world.pending.append((world.clock.now + timedelta(minutes=5), machine))

    monkeypatch.setitem(live.BY_NAME, "later", replace(BY_NAME["chronic-leak"], name="later", build=build))
    with pytest.raises(live.ScenarioError, match="launches instances later in its story.*orch simulate --scenario later"):
        live.scenario_fleet("later", datetime.now(timezone.utc), seed=0)
