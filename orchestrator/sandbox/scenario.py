"""`orch sandbox --serve --scenario NAME`: one of `orch simulate`'s fleets, live.

The scenario builds its boxes exactly as the simulator does (orchestrator.simulate.scenarios
on a ``World`` whose clock stands at the sandbox's start); the sandbox launches as many
managed instances and gives each the box of its slot. From then on the living sandbox
(orchestrator.sandbox.living) runs those boxes on the wall clock: their memory, their sshd
(faults and flaps included) and their agents are the box model's, the same as in
`orch simulate`, while orch watches and acts through moto and real sockets.

Scenarios whose story is the network itself (an AZ going dark, the prober's own network)
need packets dropped between orch and the boxes, which the sandbox's loopback endpoints
cannot do yet: those are refused with the simulator as the way to see them.
"""

from __future__ import annotations

import random
from datetime import datetime

from orchestrator.box.model import Box
from orchestrator.simulate import BY_NAME
from orchestrator.simulate.world import SimClock, World


class ScenarioError(ValueError):
    """A scenario the sandbox cannot run live; the message says why and what to run instead."""


def scenario_boxes(name: str, now: datetime, seed: int, instances: int | None = None) -> list[Box]:
    """The boxes of ``name``'s fleet, slot by slot, as they stand at ``now``."""
    scenario = BY_NAME.get(name)
    if scenario is None:
        raise ScenarioError(f"no scenario {name!r}: orch simulate --list names them ({', '.join(BY_NAME)})")
    world = World(SimClock(now))
    scenario.build(world, random.Random(f"orch-sandbox/scenario/{seed}/{name}"), instances or scenario.instances, scenario.conditions)
    if world.outages:
        raise ScenarioError(f"{name} is about the network failing between orch and the boxes, which the sandbox's loopback "
                            f"endpoints cannot fake yet: see it with orch simulate --scenario {name}")
    if world.pending:
        raise ScenarioError(f"{name} launches instances later in its story, which the sandbox does not yet: orch simulate --scenario {name}")
    return [m.box for m in sorted(world.machines.values(), key=lambda m: m.slot)]
