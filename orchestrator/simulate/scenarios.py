"""Named fleets to judge a policy against: the incident's own, and the ones that must not be healed.

Each scenario builds a ``World`` from a seed: the same seed, the same fleet, the same
day. Times are relative to the simulation's start; boxes were launched before it.
The expectation beside each one is what the README's figures and the suite hold orch to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from orchestrator.box.model import Behaviour, Box, Cycle, Fault
from orchestrator.config import Settings
from orchestrator.simulate.world import Outage, SimClock, World

if TYPE_CHECKING:
    from orchestrator.simulate.run import Figures

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
HOUR = timedelta(hours=1)
FLAT = Behaviour(base_percent=38.0, noise=1.0)


Check = Callable[["Figures", Settings], list[str]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    expect: str  # what a good policy does here, in words
    instances: int
    build: Callable[[World, random.Random, int], None] = field(repr=False)
    check: Check = field(repr=False, default=lambda figures, settings: [])  # judged on a run of any length
    # What must have happened by the end (a heal, a quarantine), and when the trouble it
    # answers arrives: judged only on runs that reach past it by ``outcome_allowance``.
    outcome: Check | None = field(repr=False, default=None)
    trouble_at_hours: float = 0.0

    def violations(self, figures: Figures, settings: Settings) -> list[str]:
        """What the run did that the expectation forbids, and what it should have done by
        its end but did not; empty when it met it (``unjudged`` says what a short run leaves out)."""
        found = self.check(figures, settings)
        if self.outcome is not None and self.unjudged(figures, settings) is None:
            found += self.outcome(figures, settings)
        return found

    def judged_from_hours(self, settings: Settings) -> float:
        return self.trouble_at_hours + outcome_allowance(settings)

    def unjudged(self, figures: Figures, settings: Settings) -> str | None:
        """Why the expected outcome was not judged (the run ended before the trouble could be
        answered), or None. A run judges only what it covers."""
        if self.outcome is None or figures.hours >= self.judged_from_hours(settings):
            return None
        return (f"not judged: the trouble comes about {self.trouble_at_hours:g} h in; "
                f"run --hours {math.ceil(self.judged_from_hours(settings) * 2) / 2:g} or more")


def outcome_allowance(settings: Settings) -> float:
    """Hours from the trouble's arrival to its expected answer: debounce, a few sweeps, and the action."""
    return max(0.5, 3 * settings.sweep_interval_minutes / 60)


def no_actions(figures: Figures, settings: Settings) -> list[str]:
    return [f"{figures.actions_total} action(s) taken, expected none"] if figures.actions_total else []


def never_quarantined(figures: Figures, settings: Settings) -> list[str]:
    return [f"{figures.quarantined} instance(s) quarantined, expected none"] if figures.quarantined else []


def within_budgets(figures: Figures, settings: Settings) -> list[str]:
    limit = settings.safety.max_actions_per_hour
    return [f"{figures.max_actions_in_an_hour} actions in one hour, over the budget of {limit}"] if figures.max_actions_in_an_hour > limit else []


def nothing_on_fine_boxes(figures: Figures, settings: Settings) -> list[str]:
    return [f"{figures.on_fine_boxes} action(s) on boxes that were fine"] if figures.on_fine_boxes else []


def quarantined_in_time(figures: Figures, settings: Settings) -> list[str]:
    found = []
    if figures.quarantined != 1:
        found.append(f"{figures.quarantined} instance(s) quarantined, expected the broken one")
    if figures.actions_total > len(settings.safety.ladder) + 1:
        found.append(f"{figures.actions_total} actions before quarantine, more than the ladder's rungs plus one")
    if not all(r.startswith("remediation failed") for r in figures.quarantine_reasons):
        found.append("the quarantine does not say remediation failed")
    return found


AVAILABILITY_JUDGED_AFTER_HOURS = 24.0  # shorter runs are mostly the first cycles, healed reactively


def available_at_least(share: float) -> Check:
    """A floor on the share of box-time with SSH answering, judged over a day or more.

    Without it a policy that reacts late (a memory cadence too slow, a lead too short)
    still "meets" a leak scenario by never quarantining, and only the table shows the loss.
    """

    def check(figures: Figures, settings: Settings) -> list[str]:
        if figures.hours < AVAILABILITY_JUDGED_AFTER_HOURS or figures.availability >= share:
            return []
        return [f"SSH answered {figures.availability:.1%} of box-time, expected at least {share:.0%}"]

    return check


def all_of(*checks: Check) -> Check:
    def check(figures: Figures, settings: Settings) -> list[str]:
        return [v for c in checks for v in c(figures, settings)]

    return check


def _zone(n: int) -> str:
    return ZONES[n % len(ZONES)]


def _flat_box(world: World, rng: random.Random, n: int, behaviour: Behaviour = FLAT) -> Box:
    start = world.clock.now
    return Box.booted(f"flat/{n}/{rng.random()}", behaviour, start - timedelta(days=3))


def _fill_flat(world: World, rng: random.Random, count: int, skip: frozenset[int] = frozenset()) -> None:
    for n in range(count):
        if n not in skip:
            world.add(_flat_box(world, rng, n), _zone(n), launched=world.clock.now - timedelta(days=3))


def _leaky(rate: float, base: float = 30.0) -> Behaviour:
    return Behaviour(base_percent=base, leak_per_min=rate, noise=0.5, wedge_percent=97.0)


def build_chronic_leak(world: World, rng: random.Random, count: int) -> None:
    """Every box climbs from 30% after boot and wedges at 97% 30 to 40 minutes later, every time."""
    now = world.clock.now
    for n in range(count):
        minutes_to_wedge = rng.uniform(30.0, 40.0)
        behaviour = _leaky(67.0 / minutes_to_wedge)
        booted = now - timedelta(minutes=rng.uniform(0.0, minutes_to_wedge))  # boxes out of step, as in the field
        box = Box.booted(f"chronic/{n}/{rng.random()}", behaviour, booted)
        world.add(box, _zone(n), launched=booted)


def build_single_hang(world: World, rng: random.Random, count: int) -> None:
    """One box leaks once, an hour in, and wedges; the rest are fine. The incident, once."""
    now = world.clock.now
    _fill_flat(world, rng, count, skip=frozenset({0}))
    long_ago = now - timedelta(days=3)
    cycle = Cycle(long_ago, long_ago, 40.0, 1.0, now + HOUR, noise=0.5)
    world.add(Box.since(f"hang/{rng.random()}", Behaviour(base_percent=35.0, noise=0.5, wedge_percent=97.0), cycle), _zone(0), launched=long_ago)


def build_slow_leak(world: World, rng: random.Random, count: int) -> None:
    """A leak of about 0.12%/min: nine hours from boot to exhaustion."""
    now = world.clock.now
    for n in range(count):
        behaviour = _leaky(rng.uniform(0.11, 0.13))
        booted = now - timedelta(minutes=rng.uniform(0.0, 540.0))
        world.add(Box.booted(f"slow/{n}/{rng.random()}", behaviour, booted), _zone(n), launched=booted)


def build_network_fault(world: World, rng: random.Random, count: int) -> None:
    """40% of the fleet unreachable for two hours (a security group change), agents fine, memory flat."""
    _fill_flat(world, rng, count)
    cut = frozenset(f"slot-{n}" for n in rng.sample(range(count), max(1, round(count * 0.4))))
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 3 * HOUR, instances=cut))


def build_dark_zone(world: World, rng: random.Random, count: int) -> None:
    """One availability zone dark for an hour: SSH and the agents' uploads cut together."""
    _fill_flat(world, rng, count)
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 2 * HOUR, zone=ZONES[0], agent=True))


def build_broken_prober(world: World, rng: random.Random, count: int) -> None:
    """The prober's own network breaks for an hour: every probe fails, the fleet is fine."""
    _fill_flat(world, rng, count)
    now = world.clock.now
    world.outages.append(_outage(now + HOUR, now + 2 * HOUR, prober=True))


def build_flapping(world: World, rng: random.Random, count: int) -> None:
    """One box's sshd hangs three minutes after every boot, from an hour in."""
    now = world.clock.now
    _fill_flat(world, rng, count, skip=frozenset({0}))
    behaviour = Behaviour(base_percent=38.0, noise=1.0, fault=Fault.HUNG, fault_after_minutes=3.0)
    long_ago = now - timedelta(days=3)
    cycle = Cycle(long_ago, long_ago, 38.0, 0.0, long_ago, noise=1.0, fault=Fault.HUNG, fault_at=now + HOUR)
    world.add(Box.since(f"flap/{rng.random()}", behaviour, cycle), _zone(0), launched=long_ago)


def build_never_recovers(world: World, rng: random.Random, count: int) -> None:
    """One box hangs an hour in and nothing orch can do brings it back."""
    now = world.clock.now
    _fill_flat(world, rng, count, skip=frozenset({0}))
    behaviour = Behaviour(base_percent=38.0, noise=1.0, fault=Fault.HUNG, fault_after_minutes=0.0)
    long_ago = now - timedelta(days=3)
    cycle = Cycle(long_ago, long_ago, 38.0, 0.0, long_ago, noise=1.0, fault=Fault.HUNG, fault_at=now + HOUR)
    world.add(Box.since(f"never/{rng.random()}", behaviour, cycle), _zone(0), launched=long_ago)


def build_leak_everywhere(world: World, rng: random.Random, count: int) -> None:
    """A deploy an hour in ships a leak to every box at once: ~1%/min, an hour to exhaustion, every boot."""
    now = world.clock.now
    long_ago = now - timedelta(days=3)
    for n in range(count):
        base = rng.uniform(33.0, 40.0)
        rate = rng.uniform(0.9, 1.1)
        behaviour = _leaky(rate, base=35.0)
        cycle = Cycle(long_ago, long_ago, base, rate, now + HOUR + timedelta(minutes=rng.uniform(0, 5)), noise=0.5)
        world.add(Box.since(f"everywhere/{n}/{rng.random()}", behaviour, cycle), _zone(n), launched=long_ago,
                  template=("lt-0sim", "13"))


def build_baseline_shift(world: World, rng: random.Random, count: int) -> None:
    """The whole fleet's memory sits at 96.5% (a bigger cache, an agent config change); SSH is fine."""
    for n in range(count):
        box = Box.booted(f"shift/{n}/{rng.random()}", Behaviour(base_percent=96.5, noise=0.3, wedge_percent=97.5), world.clock.now - timedelta(days=3))
        world.add(box, _zone(n), launched=world.clock.now - timedelta(days=3))


def _outage(start: datetime, end: datetime, *, zone: str | None = None, instances: frozenset[str] | None = None,
            agent: bool = False, prober: bool = False) -> Outage:
    return Outage(start, end, zone=zone, instances=instances, cuts_ssh=not prober, cuts_agent=agent, prober=prober)


def one_heal(figures: Figures, settings: Settings) -> list[str]:
    return [] if figures.actions_total == 1 else [f"{figures.actions_total} actions, expected one"]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("chronic-leak", "8 boxes leak again after every boot, 30-40 minutes to exhaustion",
             "act ahead of each exhaustion; no quarantine; SSH up >= 92% over a day; the pattern told, not every sweep", 8,
             build_chronic_leak, all_of(never_quarantined, within_budgets, nothing_on_fine_boxes, available_at_least(0.92))),
    Scenario("single-hang", "one box leaks once, an hour in, and wedges", "one reboot, soon after the wedge", 20, build_single_hang,
             nothing_on_fine_boxes, outcome=one_heal, trouble_at_hours=1.95),  # leaks from 1 h at 1%/min: 40% to 97%
    Scenario("slow-leak", "every box leaks ~0.12%/min: nine hours to exhaustion", "act ahead of each exhaustion once chronic", 10,
             build_slow_leak, all_of(never_quarantined, within_budgets, nothing_on_fine_boxes)),
    Scenario("network-fault", "40% of the fleet unreachable for 2 h, agents fine, memory flat", "zero actions: the breaker holds", 20,
             build_network_fault, no_actions),
    Scenario("dark-az", "one zone dark for 1 h: SSH and the agents' uploads cut together", "zero actions: silence is the network", 24,
             build_dark_zone, no_actions),
    Scenario("broken-prober", "the prober's own network down for 1 h", "zero actions", 20, build_broken_prober, no_actions),
    Scenario("flapping", "one box hangs 3 minutes after every boot", "escalated, then quarantined: 'remediation failed'", 10, build_flapping,
             nothing_on_fine_boxes, outcome=quarantined_in_time, trouble_at_hours=1.0),
    Scenario("never-recovers", "one box hangs and nothing brings it back", "escalated, quarantined after at most the ladder's rungs plus one",
             10, build_never_recovers, nothing_on_fine_boxes, outcome=quarantined_in_time, trouble_at_hours=1.0),
    Scenario("leak-everywhere", "a deploy ships a leak to every box at once", "healed at budget pace, the hourly budget never exceeded", 20,
             build_leak_everywhere, all_of(never_quarantined, within_budgets, nothing_on_fine_boxes)),
    Scenario("baseline-shift", "the whole fleet sits at 96.5% memory with SSH fine",
             "zero actions (with memory.proactive = reboot: the memory breaker holds)", 20, build_baseline_shift, no_actions),
)

BY_NAME = {s.name: s for s in SCENARIOS}


def build(scenario: Scenario, start: datetime, seed: int, instances: int | None = None) -> World:
    world = World(SimClock(start))
    scenario.build(world, random.Random(f"orch-simulate/{scenario.name}/{seed}"), instances or scenario.instances)
    return world
