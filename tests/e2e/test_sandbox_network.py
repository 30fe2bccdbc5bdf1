"""`orch sandbox --serve --scenario` for the scenarios whose story is the network, on an injected clock.

An hour in, the scenario's outage begins: the prober's connections to the instances it
covers time out (the endpoints' cut path, a real SYN dropped on loopback), and where the
scenario says so their agents fall silent; a broken prober reaches nobody while every agent
publishes. orch, sweeping for real, holds back (no reboot of a box whose only fault is the
network), and when the outage ends the fleet is healthy and reachable again.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from orchestrator.aws import Clients
from orchestrator.model import ProbeOutcome, VerdictKind
from orchestrator.sandbox import FleetSpec, Sandbox
from orchestrator.sandbox.demo import aws_env, sandbox_settings, stage
from orchestrator.sandbox.living import Driver
from orchestrator.sandbox.scenario import scenario_fleet
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode, SweepDeps, SweepReport, sweep

pytestmark = pytest.mark.e2e


class Wall:
    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at


def live(driver: Driver, wall: Wall, minutes: int) -> None:
    for _ in range(minutes):
        wall.at += timedelta(minutes=1)
        driver.tick()


# scenario -> (which instances the outage covers, whether their agents fall silent)
NETWORK = {
    "network-fault": ("8 of the 20", True),  # 40 % of the fleet behind a broken route: SSH and uploads cut
    "acl": ("us-east-1b", False),  # an ACL on one subnet: SSH cut, the agents still publish
    "dark-az": ("us-east-1a", True),  # one AZ dark: both cut
    "broken-prober": ("all", False),  # the prober's own network: nobody answers it, every agent publishes
}


@pytest.mark.parametrize("name", sorted(NETWORK))
def test_a_network_scenario_is_served_live_and_orch_holds_back(name: str, tmp_path: Path) -> None:
    wall = Wall()
    scenario = scenario_fleet(name, wall.at, seed=0)
    assert scenario.outages and all(o.start == wall.at + timedelta(hours=1) for o in scenario.outages)
    sb = Sandbox(FleetSpec(instances=len(scenario.boxes), hung=0, refusing=0, leaking=0, opt_out=0, unmanaged=0, seed=0, port=0))
    sb.wall = wall
    sb.boxes = dict(enumerate(scenario.boxes))
    sb.outages = scenario.outages
    with sb, aws_env(sb.env()):
        staged = stage(sb, tmp_path)
        store = SqliteStore(staged.state_path)
        settings = sandbox_settings(sb, staged)

        def run(mode: Mode) -> SweepReport:
            deps = SweepDeps(clients=Clients(boto3.Session(region_name=sb.region)), store=store, clock=wall)
            return sweep(settings, deps, mode=mode, dry_run=mode is Mode.SCAN)

        try:
            driver = Driver(sb)
            live(driver, wall, 59)
            assert not any(s.cut for s in sb.instances)
            assert {v.kind for v in run(Mode.SCAN).verdicts} == {VerdictKind.HEALTHY}
            live(driver, wall, 12)  # the outage began 11 minutes ago: past the agents' stale window
            covers, silenced = NETWORK[name]
            cut = {s.instance_id for s in sb.instances if s.cut}
            if covers == "all":
                assert cut == {s.instance_id for s in sb.instances}
            elif covers.startswith("us-east-1"):
                assert cut == {s.instance_id for s in sb.instances if s.availability_zone == covers} and cut
            else:
                assert len(cut) == 8
            reports = [run(Mode.HEAL)]
            live(driver, wall, 1)
            reports.append(run(Mode.HEAL))  # past the debounce: a reboot would come now if one were due
            for report in reports:
                probes = {f.instance.instance_id: f.probe for f in report.facts}
                assert {i for i, p in probes.items() if p is not None and p.outcome is ProbeOutcome.CONNECT_TIMEOUT} == cut
                assert not report.plan.actions, report.plan.actions
                assert {b.instance_id for b in report.plan.blocked} >= cut - {s.instance_id for s in sb.instances if s.opt_out}
            assert sb.acted_on() == set()  # nothing rebooted for a fault of the network
            newest = {f.instance.instance_id: max((t for t, _ in f.memory.points), default=None) if f.memory else None
                      for f in reports[-1].facts}
            outage_start = min(o.start for o in scenario.outages)
            for instance_id, last in newest.items():
                if silenced and instance_id in cut:
                    assert last is None or last < outage_start, (instance_id, last)  # nothing arrived since it began
                else:
                    assert last is not None and last >= wall.at - timedelta(minutes=2), (instance_id, last)  # still publishing
            live(driver, wall, max(int((o.end - wall.at).total_seconds() // 60) for o in scenario.outages) + 3)
            assert not any(s.cut for s in sb.instances)
            after = run(Mode.SCAN)
            assert {v.kind for v in after.verdicts} == {VerdictKind.HEALTHY}, after.verdict_counts()
        finally:
            store.close()


def test_the_serving_sandbox_says_when_the_scenarios_network_fails():
    from orchestrator.sandbox.scenario import describe

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    told = {name: [describe(o, now) for o in scenario_fleet(name, now, seed=0).outages] for name in NETWORK}
    assert told["acl"] == ["from +60 to +180 simulated minutes, the network to us-east-1b is cut: probes time out, agents still publish"]
    assert told["network-fault"] == ["from +60 to +180 simulated minutes, the network to 8 instances is cut: probes time out, agents silent"]
    assert told["broken-prober"] == ["from +60 to +120 simulated minutes, the prober's own network is down: no box answers, "
                                     "every agent publishes"]
