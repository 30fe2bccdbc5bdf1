"""`orch sandbox --serve --scenario NAME`: one of `orch simulate`'s fleets, live.

The scenario builds its boxes exactly as the simulator does (orchestrator.simulate.scenarios
on a ``World`` whose clock stands at the sandbox's start); the sandbox launches as many
managed instances and gives each the box of its slot. From then on the living sandbox
(orchestrator.sandbox.living) runs those boxes on the wall clock: their memory, their sshd
(faults and flaps included) and their agents are the box model's, the same as in
`orch simulate`, while orch watches and acts through moto and real sockets.

Scenarios whose story is the network itself are served too, with their outages in the
scenario's time (the first an hour after start: six minutes at ``--time-scale 10``): a cut
path drops the prober's packets to the instances it covers (an AZ, a subnet's ACL, a set
of boxes behind a route; the endpoint's connect times out, orchestrator.sandbox.endpoints),
a cut agent publishes nothing while it lasts, and a broken prober reaches no box at all
while the agents go on publishing. Zones are the sandbox's own (the instances' AZs in
EC2, us-east-1a and us-east-1b like the scenarios'). One thing differs from the
simulator: SSM keeps reporting a cut box online (only Run Command actions read it, and
no network scenario uses them).

A scenario that launches instances later in its story is refused, with the simulator as
the way to see it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.box.model import Box
from orchestrator.simulate import BY_NAME
from orchestrator.simulate.world import Outage, SimClock, World


class ScenarioError(ValueError):
    """A scenario the sandbox cannot run live; the message says why and what to run instead."""


@dataclass(frozen=True)
class LiveScenario:
    """What the sandbox serves of a scenario: its boxes, slot by slot, and its network's outages."""

    boxes: list[Box]
    outages: list[Outage] = field(default_factory=list)
    started: datetime | None = None  # the scenario's time zero (the outages count from it)


def scenario_fleet(name: str, now: datetime, seed: int, instances: int | None = None) -> LiveScenario:
    """``name``'s fleet as it stands at ``now``: the boxes slot by slot, the outages to come."""
    scenario = BY_NAME.get(name)
    if scenario is None:
        raise ScenarioError(f"no scenario {name!r}: orch simulate --list names them ({', '.join(BY_NAME)})")
    world = World(SimClock(now))
    scenario.build(world, random.Random(f"orch-sandbox/scenario/{seed}/{name}"), instances or scenario.instances, scenario.conditions)
    if world.pending:
        raise ScenarioError(f"{name} launches instances later in its story, which the sandbox does not yet: orch simulate --scenario {name}")
    return LiveScenario([m.box for m in sorted(world.machines.values(), key=lambda m: m.slot)], list(world.outages), now)


def scenario_boxes(name: str, now: datetime, seed: int, instances: int | None = None) -> list[Box]:
    """The boxes of ``name``'s fleet, slot by slot, as they stand at ``now`` (its outages: ``scenario_fleet``)."""
    return scenario_fleet(name, now, seed, instances).boxes


def describe(outage: Outage, started: datetime) -> str:
    """One outage in words, in simulated minutes after ``started`` (the scenario's time zero)."""
    if outage.prober:
        what = "the prober's own network is down: no box answers, every agent publishes"
    else:
        where = outage.zone or (f"{len(outage.instances)} instances" if outage.instances is not None else "every zone")
        what = f"the network to {where} is cut: probes time out" + (", agents silent" if outage.cuts_agent else ", agents still publish")
    start, end = ((t - started).total_seconds() / 60 for t in (outage.start, outage.end))
    return f"from +{start:g} to +{end:g} simulated minutes, {what}"
