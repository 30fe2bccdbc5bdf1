"""Who each instance of a freshly built sandbox fleet is: its record, its box, its console, its history.

``build`` launches the instances through moto; this module gives each launched instance
what the simulation keeps of it (``Sandbox`` stores the result and serves it): the spec's
role or a scenario's box decides its sshd, memory shape and agent, the seed decides its
memory and console, and the box model writes the hour of history the first sweep reads.
Pure: no AWS, no sockets, no clock (``at`` is given).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from orchestrator.box.console import boot_log, oom_log
from orchestrator.box.model import Box, Fault
from orchestrator.sandbox.build import BuiltFleet, Launched
from orchestrator.sandbox.effects import ENDPOINT_MODE, hostname
from orchestrator.sandbox.events import SimInstance
from orchestrator.sandbox.memory import MemoryShape, box_for
from orchestrator.sandbox.spec import FleetSpec, Role
from orchestrator.sandbox.sshd import Mode

Point = tuple[SimInstance, datetime, float]  # an agent's datapoint: who, when, memory percent


@dataclass(frozen=True)
class Member:
    """One instance as the simulation keeps it; ``console_rng`` goes on writing its console."""

    sim: SimInstance
    box: Box
    console: str
    console_rng: random.Random


def seeded_rng(seed: int, purpose: str, key: str) -> random.Random:
    """The same seed gives the same fleet: every draw is from a generator named by what it is for."""
    return random.Random(f"orch-sandbox/{purpose}/{seed}/{key}")


def box_seed(seed: int, key: str) -> str:
    return f"orch-sandbox/box/{seed}/{key}"


def members(built: BuiltFleet, roles: list[Role], spec: FleetSpec, given: Mapping[int, Box], at: datetime) -> list[Member]:
    """The managed instances by role (or by a scenario's box in ``given``), then the bystanders."""
    result = [
        _member(launched, role.mode, role.memory, role.reports_metrics, f"m{role.index}", role.index, spec, given, at)
        for role, launched in zip(roles, built.managed)
    ]
    for number, launched in enumerate(built.unmanaged):
        # Bystanders look exactly like the incident: only the selector keeps orch away.
        result.append(_member(launched, Mode.HUNG, MemoryShape.EXHAUSTED, True, f"u{number}", None, spec, given, at))
    return result


def _member(
    launched: Launched,
    mode: Mode,
    shape: MemoryShape,
    reports: bool,
    key: str,
    index: int | None,
    spec: FleetSpec,
    boxes: Mapping[int, Box],
    at: datetime,
) -> Member:
    given = boxes.get(index) if launched.managed and index is not None else None
    if given is not None:  # a scenario's box (orchestrator.sandbox.scenario): its sshd and agent are the model's
        mode, reports = ENDPOINT_MODE[given.sshd(at)], given.behaviour.agent
        shape = MemoryShape.LEAKING if given.current.rate > 0 else MemoryShape.FLAT
    sim = SimInstance(
        instance_id=launched.instance_id,
        name=launched.name,
        private_ip=launched.private_ip,
        availability_zone=launched.availability_zone,
        subnet_id=launched.subnet_id,
        image_id=launched.image_id,
        instance_type=launched.instance_type,
        mode=mode,
        state="running",
        managed=launched.managed,
        opt_out=launched.opt_out,
        leaking=shape is MemoryShape.LEAKING,
        reports_metrics=reports,
        asg_name=launched.asg_name,
        index=index,
    )
    fault = {Mode.REFUSING: Fault.REFUSED, Mode.SLOW: Fault.SLOW}.get(mode)
    if mode is Mode.HUNG and shape is not MemoryShape.EXHAUSTED:
        fault = Fault.HUNG  # hung with memory normal: nothing on the host says why
    box = given if given is not None else box_for(
        shape, seeded_rng(spec.seed, "memory", key), at, box_seed(spec.seed, key), fault,
        starves=spec.agents_starve, wedged_minutes=spec.wedged_minutes,
    )
    rng = seeded_rng(spec.seed, "console", key)
    text = boot_log(rng, hostname(sim.private_ip))
    if mode is Mode.HUNG and shape is MemoryShape.EXHAUSTED:
        text += oom_log(rng)  # the leak won: the kernel says so (a hung sshd with memory normal leaves no such line)
    return Member(sim, box, text, rng)


def history(sims: Iterable[SimInstance], boxes: Mapping[str, Box], end: datetime, minutes: int) -> list[Point]:
    """The last ``minutes`` minutes up to ``end`` of every reporting agent, oldest first per instance."""
    points: list[Point] = []
    for sim in sims:
        if not sim.reports_metrics:
            continue
        box = boxes[sim.instance_id]
        for ago in range(minutes - 1, -1, -1):
            at = end - timedelta(minutes=ago)
            value = box.memory(at)
            if value is not None:
                points.append((sim, at, value))
    return points
