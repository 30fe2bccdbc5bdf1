"""The fleets of the scenarios: each ``build_*`` fills a ``World`` from a seeded ``random.Random``.

The same seed, the same fleet, the same day. Times are relative to the simulation's
start; boxes were launched before it. Every box is the one box model's
(orchestrator.box.model), shaped by the scenario's ``Conditions``; outages are the
environment's, not a box's.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from orchestrator.box.model import Behaviour, Box, Cycle, Fault
from orchestrator.simulate.conditions import Conditions
from orchestrator.simulate.world import Outage, World

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
HOUR = timedelta(hours=1)
FLAT = Behaviour(base_percent=38.0, noise=1.0)


def _zone(n: int) -> str:
    return ZONES[n % len(ZONES)]


def _flat_box(world: World, rng: random.Random, n: int, cond: Conditions, behaviour: Behaviour = FLAT) -> Box:
    start = world.clock.now
    seed = f"flat/{n}/{rng.random()}"
    return Box.booted(seed, cond.apply(behaviour, seed), start - timedelta(days=3))


def _fill_flat(world: World, rng: random.Random, count: int, cond: Conditions, skip: frozenset[int] = frozenset()) -> None:
    for n in range(count):
        if n not in skip:
            world.add(_flat_box(world, rng, n, cond), _zone(n), launched=world.clock.now - timedelta(days=3))


def _leaky(rate: float, base: float = 30.0) -> Behaviour:
    return Behaviour(base_percent=base, leak_per_min=rate, noise=0.5, wedge_percent=97.0)


def _leaking_fleet(world: World, rng: random.Random, count: int, cond: Conditions, minutes: tuple[float, float], tag: str) -> None:
    """Every box climbs from 30% after each boot and wedges at 97% ``minutes`` later, out of step with the others."""
    now = world.clock.now
    for n in range(count):
        minutes_to_wedge = rng.uniform(*minutes)
        booted = now - timedelta(minutes=rng.uniform(0.0, minutes_to_wedge))  # boxes out of step, as in the field
        seed = f"{tag}/{n}/{rng.random()}"
        world.add(Box.booted(seed, cond.apply(_leaky(67.0 / minutes_to_wedge), seed), booted), _zone(n), launched=booted)


def build_chronic_leak(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """Every box climbs from 30% after boot and wedges at 97% 30 to 40 minutes later, every time."""
    _leaking_fleet(world, rng, count, cond, (30.0, 40.0), "chronic")


def build_fast_leak(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """Every box wedges 8 to 12 minutes after each boot: shorter than two sweep intervals."""
    _leaking_fleet(world, rng, count, cond, (8.0, 12.0), "fast")


def _wedged_since(world: World, rng: random.Random, n: int, cond: Conditions, minutes_ago: float, tag: str) -> Box:
    """A box of the seed's leak (30-40 min a cycle) that wedged ``minutes_ago``, its agent silent since."""
    now = world.clock.now
    minutes_to_wedge = rng.uniform(30.0, 40.0)
    rate = 67.0 / minutes_to_wedge
    booted = now - timedelta(minutes=minutes_ago + minutes_to_wedge)
    cycle = Cycle(booted, booted, 30.0, rate, booted, noise=0.5)
    seed = f"{tag}/{n}/{rng.random()}"
    return Box.since(seed, cond.apply(_leaky(rate), seed), cycle)


def build_incident(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """The seed's morning: all but one box wedged at once (agents silent at the top, OOM kills on the console)."""
    now = world.clock.now
    for n in range(count - 1):
        box = _wedged_since(world, rng, n, cond, rng.uniform(2.0, 12.0), "incident")
        world.add(box, _zone(0), launched=now - timedelta(days=3))
    world.add(_flat_box(world, rng, count - 1, cond), _zone(0), launched=now - timedelta(days=3))


def build_morning_after(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """A night of it: six of eight wedged one after another over three hours, most silent beyond the metric window;
    one leaking but still answering, one healthy."""
    now = world.clock.now
    wedged = max(1, count - 2)
    for n in range(wedged):
        minutes_ago = 20.0 + (180.0 - 20.0) * n / max(1, wedged - 1)
        world.add(_wedged_since(world, rng, n, cond, minutes_ago, "morning"), _zone(0), launched=now - timedelta(days=3))
    seed = f"morning/leaking/{rng.random()}"
    world.add(Box.booted(seed, cond.apply(_leaky(67.0 / 35.0), seed), now - timedelta(minutes=15)), _zone(0), launched=now - timedelta(days=3))
    if count > wedged + 1:
        world.add(_flat_box(world, rng, count - 1, cond), _zone(0), launched=now - timedelta(days=3))


def build_plateau(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """Memory sits at 88-93% all day with noise; SSH is fine: a full box is not a failing one."""
    for n in range(count):
        behaviour = Behaviour(base_percent=rng.uniform(88.0, 93.0), noise=1.0, wedge_percent=97.0)
        seed = f"plateau/{n}/{rng.random()}"
        world.add(Box.booted(seed, cond.apply(behaviour, seed), world.clock.now - timedelta(days=3)), _zone(n),
                  launched=world.clock.now - timedelta(days=3))


def build_restart_loop(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """The process leaks to 95%, the kernel kills it, its supervisor restarts it: OOM lines on the console, SSH fine."""
    now = world.clock.now
    for n in range(count):
        rate = rng.uniform(1.5, 2.5)
        behaviour = Behaviour(base_percent=30.0, leak_per_min=rate, noise=0.5, wedge_percent=97.0, oom_restart_percent=95.0)
        booted = now - timedelta(days=3, minutes=rng.uniform(0, 30))
        seed = f"loop/{n}/{rng.random()}"
        world.add(Box.booted(seed, cond.apply(behaviour, seed), booted), _zone(n), launched=booted)


def build_acl(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """A network ACL change cuts the probe into one subnet for two hours; the agents there still publish."""
    _fill_flat(world, rng, count, cond)
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 3 * HOUR, zone=ZONES[1]))


def build_sshd_push(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """A configuration push breaks sshd on every box an hour in: it refuses, and a reboot does not help."""
    now = world.clock.now
    long_ago = now - timedelta(days=3)
    for n in range(count):
        behaviour = Behaviour(base_percent=38.0, noise=1.0, fault=Fault.REFUSED, fault_after_minutes=0.0)
        cycle = Cycle(long_ago, long_ago, 38.0, 0.0, long_ago, noise=1.0, fault=Fault.REFUSED, fault_at=now + HOUR)
        seed = f"push/{n}/{rng.random()}"
        world.add(Box.since(seed, cond.apply(behaviour, seed), cycle), _zone(n), launched=long_ago)


def build_mixed_slow_leak(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """Half the fleet leaks slowly (0.1-0.2%/min) and wedges at 90%; the other half is flat."""
    now = world.clock.now
    for n in range(count):
        if n % 2:
            world.add(_flat_box(world, rng, n, cond), _zone(n), launched=now - timedelta(days=3))
            continue
        behaviour = Behaviour(base_percent=35.0, leak_per_min=rng.uniform(0.1, 0.2), noise=0.5, wedge_percent=90.0)
        booted = now - timedelta(minutes=rng.uniform(0.0, 300.0))
        seed = f"mixed/{n}/{rng.random()}"
        world.add(Box.booted(seed, cond.apply(behaviour, seed), booted), _zone(n), launched=booted)


def build_chronic_leak_guard(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """The chronic leak with orch guard applied: the kernel kills the service at 80% of the box, it restarts."""
    build_chronic_leak(world, rng, count, cond)
    for machine in world.machines.values():
        machine.box.behaviour = replace(machine.box.behaviour, guard_limit_percent=80.0)


def build_single_hang(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """One box leaks once, an hour in, and wedges; the rest are fine. The incident, once."""
    now = world.clock.now
    _fill_flat(world, rng, count, cond, skip=frozenset({0}))
    long_ago = now - timedelta(days=3)
    cycle = Cycle(long_ago, long_ago, 40.0, 1.0, now + HOUR, noise=0.5)
    seed = f"hang/{rng.random()}"
    world.add(Box.since(seed, cond.apply(Behaviour(base_percent=35.0, noise=0.5, wedge_percent=97.0), seed), cycle), _zone(0), launched=long_ago)


def build_slow_leak(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """A leak of about 0.12%/min: nine hours from boot to exhaustion."""
    now = world.clock.now
    for n in range(count):
        behaviour = _leaky(rng.uniform(0.11, 0.13))
        booted = now - timedelta(minutes=rng.uniform(0.0, 540.0))
        seed = f"slow/{n}/{rng.random()}"
        world.add(Box.booted(seed, cond.apply(behaviour, seed), booted), _zone(n), launched=booted)


def build_network_fault(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """40% of the fleet cut off for two hours (a route or NAT change): probes time out, agents fall silent at ordinary levels."""
    _fill_flat(world, rng, count, cond)
    cut = frozenset(f"slot-{n}" for n in rng.sample(range(count), max(1, round(count * 0.4))))
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 3 * HOUR, instances=cut, agent=True))


def build_dark_zone(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """One availability zone dark for an hour: SSH and the agents' uploads cut together."""
    _fill_flat(world, rng, count, cond)
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 2 * HOUR, zone=ZONES[0], agent=True))


def build_broken_prober(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """The prober's own network breaks for an hour: every probe fails, the fleet is fine."""
    _fill_flat(world, rng, count, cond)
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 2 * HOUR, prober=True))


def build_flapping(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """One box's sshd hangs three minutes after every boot, from an hour in."""
    now = world.clock.now
    _fill_flat(world, rng, count, cond, skip=frozenset({0}))
    behaviour = Behaviour(base_percent=38.0, noise=1.0, fault=Fault.HUNG, fault_after_minutes=3.0)
    long_ago = now - timedelta(days=3)
    cycle = Cycle(long_ago, long_ago, 38.0, 0.0, long_ago, noise=1.0, fault=Fault.HUNG, fault_at=now + HOUR)
    seed = f"flap/{rng.random()}"
    world.add(Box.since(seed, cond.apply(behaviour, seed), cycle), _zone(0), launched=long_ago)


def build_never_recovers(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """One box hangs an hour in and nothing orch can do brings it back."""
    now = world.clock.now
    _fill_flat(world, rng, count, cond, skip=frozenset({0}))
    behaviour = Behaviour(base_percent=38.0, noise=1.0, fault=Fault.HUNG, fault_after_minutes=0.0)
    long_ago = now - timedelta(days=3)
    cycle = Cycle(long_ago, long_ago, 38.0, 0.0, long_ago, noise=1.0, fault=Fault.HUNG, fault_at=now + HOUR)
    seed = f"never/{rng.random()}"
    world.add(Box.since(seed, cond.apply(behaviour, seed), cycle), _zone(0), launched=long_ago)


def build_leak_everywhere(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """A deploy an hour in ships a leak to every box at once: ~1%/min, an hour to exhaustion, every boot."""
    now = world.clock.now
    long_ago = now - timedelta(days=3)
    for n in range(count):
        base = rng.uniform(33.0, 40.0)
        rate = rng.uniform(0.9, 1.1)
        behaviour = _leaky(rate, base=35.0)
        cycle = Cycle(long_ago, long_ago, base, rate, now + HOUR + timedelta(minutes=rng.uniform(0, 5)), noise=0.5)
        seed = f"everywhere/{n}/{rng.random()}"
        world.add(Box.since(seed, cond.apply(behaviour, seed), cycle), _zone(n), launched=long_ago, template=("lt-0sim", "13"))


def build_baseline_shift(world: World, rng: random.Random, count: int, cond: Conditions) -> None:
    """The whole fleet's memory sits at 96.5% (a bigger cache, an agent config change); SSH is fine."""
    for n in range(count):
        seed = f"shift/{n}/{rng.random()}"
        box = Box.booted(seed, cond.apply(Behaviour(base_percent=96.5, noise=0.3, wedge_percent=97.5), seed), world.clock.now - timedelta(days=3))
        world.add(box, _zone(n), launched=world.clock.now - timedelta(days=3))


def _outage(start: datetime, end: datetime, *, zone: str | None = None, instances: frozenset[str] | None = None,
            agent: bool = False, prober: bool = False) -> Outage:
    return Outage(start, end, zone=zone, instances=instances, cuts_ssh=not prober, cuts_agent=agent, prober=prober)
