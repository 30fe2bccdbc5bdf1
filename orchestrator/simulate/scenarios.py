"""Named fleets to judge a policy against: the incident's own, and the ones that must not be healed.

Each scenario builds a ``World`` from a seed: the same seed, the same fleet, the same
day. Times are relative to the simulation's start; boxes were launched before it.
The expectation beside each one is what the README's figures and the suite hold orch to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from orchestrator.box.model import Behaviour, Box, Cycle, Fault
from orchestrator.config import Settings
from orchestrator.simulate.conditions import FIELD, Conditions
from orchestrator.simulate.figures import Figures
from orchestrator.simulate.world import Outage, SimClock, World

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
HOUR = timedelta(hours=1)
FLAT = Behaviour(base_percent=38.0, noise=1.0)


Check = Callable[[Figures, Settings], list[str]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    expect: str  # what a good policy does here, in words
    instances: int
    build: Callable[[World, random.Random, int, Conditions], None] = field(repr=False)
    check: Check = field(repr=False, default=lambda figures, settings: [])  # judged on a run of any length
    conditions: Conditions = Conditions()
    wedges: bool = False  # boxes wedge: SSH up is judged beside the reactive rebooter and the oracle
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
    """The hourly budget holds for what it counts: actions on chronic boxes are paced by their own cycle."""
    limit = settings.safety.max_actions_per_hour
    busiest = figures.max_budgeted_in_an_hour
    return [f"{busiest} budgeted actions in one hour, over the budget of {limit}"] if busiest > limit else []


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


ORACLE_MARGIN = 0.02  # SSH up may fall short of the oracle's by at most this share


def against_the_limits(orch: Figures, reactive: Figures | None, oracle: Figures | None) -> list[str]:
    """Where boxes wedge, orch must keep SSH up at least as well as a perfect reactive rebooter
    and within ``ORACLE_MARGIN`` of an oracle acting ahead, on the same fleet and seeds."""
    found = []
    if reactive is not None and round(orch.availability, 3) < round(reactive.availability, 3):
        found.append(f"SSH up {orch.availability:.1%}, below the reactive rebooter's {reactive.availability:.1%}")
    if oracle is not None and orch.availability < oracle.availability - ORACLE_MARGIN:
        found.append(f"SSH up {orch.availability:.1%}, more than {ORACLE_MARGIN:.0%} below the oracle's {oracle.availability:.1%}")
    return found


def all_of(*checks: Check) -> Check:
    def check(figures: Figures, settings: Settings) -> list[str]:
        return [v for c in checks for v in c(figures, settings)]

    return check


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


def guard_works(figures: Figures, settings: Settings) -> list[str]:
    found = []
    if figures.actions_total:
        found.append(f"{figures.actions_total} action(s) taken (reboots, stop/starts or restarts), expected none: the guard restarts the service")
    if not figures.service_restarts:
        found.append("the service never restarted inside its limit")
    return found


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


def canary_only(figures: Figures, settings: Settings) -> list[str]:
    """A fault a reboot cannot fix, everywhere at once: the canary shows it, the rest is left alone."""
    found = []
    if figures.actions_total > settings.safety.canary:
        found.append(f"{figures.actions_total} actions, expected at most the canary ({settings.safety.canary})")
    if figures.quarantined > settings.safety.canary:
        found.append(f"{figures.quarantined} quarantined, expected at most the canary")
    return found


def one_heal(figures: Figures, settings: Settings) -> list[str]:
    return [] if figures.actions_total == 1 else [f"{figures.actions_total} actions, expected one"]


LEAK_CHECKS = all_of(never_quarantined, within_budgets, nothing_on_fine_boxes)
NOISY = replace(FIELD, sawtooth_percent=6.0, lost_share=0.05)
AGENTLESS_HALF = replace(FIELD, agent_share=0.5)
SLOW_BOOT = replace(FIELD, boot_seconds=(480.0, 600.0))
NO_AGENTS = replace(FIELD, agent_share=0.0)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("chronic-leak", "8 boxes leak again after every boot, 30-40 minutes to exhaustion",
             "act ahead of each exhaustion; no quarantine; SSH up >= 92% over a day; the pattern told, not every sweep", 8,
             build_chronic_leak, all_of(LEAK_CHECKS, available_at_least(0.92)), wedges=True),
    Scenario("incident", "the seed's morning: 7 of 8 wedged at once, agents silent at the top, OOM kills on the console",
             "every wedged box rebooted at budget pace, then the leak handled as chronic; the healthy one untouched", 8,
             build_incident, LEAK_CHECKS, FIELD, wedges=True),
    Scenario("morning-after", "6 of 8 wedged one after another over 3 hours, most silent beyond the metric window",
             "every wedged box rebooted at budget pace; no quarantine", 8, build_morning_after, LEAK_CHECKS, FIELD, wedges=True),
    Scenario("fast-leak", "every box wedges 8-12 minutes after each boot", "no quarantine; SSH up beside the reactive rebooter", 8,
             build_fast_leak, LEAK_CHECKS, FIELD, wedges=True),
    Scenario("noisy-memory", "the seed's leak under a GC sawtooth of +-6% with 1 point in 20 lost", "no quarantine; acted on from the cycle",
             8, build_chronic_leak, LEAK_CHECKS, NOISY, wedges=True),
    Scenario("agentless-half", "the seed's leak; half the fleet has no CloudWatch agent (OOM lines on the console)",
             "agent-less wedges healed on the console's evidence", 8, build_chronic_leak, LEAK_CHECKS, AGENTLESS_HALF, wedges=True),
    Scenario("slow-boot", "the seed's leak on boxes that take 8-10 minutes to boot", "not judged failed while booting; no quarantine", 8,
             build_chronic_leak, LEAK_CHECKS, SLOW_BOOT, wedges=True),
    Scenario("chronic-leak-guard", "the chronic leak with orch guard applied: the service bounded at 80% of the box, restarted",
             "SSH up >= 99.9% over a day; no reboot or stop/start; the service's restarts counted", 8,
             build_chronic_leak_guard, all_of(guard_works, available_at_least(0.999))),
    Scenario("single-hang", "one box leaks once, an hour in, and wedges", "one reboot, soon after the wedge", 20, build_single_hang,
             nothing_on_fine_boxes, wedges=True, outcome=one_heal, trouble_at_hours=1.95),  # leaks from 1 h at 1%/min: 40% to 97%
    Scenario("slow-leak", "every box leaks ~0.12%/min: nine hours to exhaustion", "act ahead of each exhaustion once chronic", 10,
             build_slow_leak, LEAK_CHECKS, wedges=True),
    Scenario("mixed-slow-leak", "half the fleet leaks 0.1-0.2%/min and wedges at 90%, half is flat", "the leaking half healed, the rest untouched",
             10, build_mixed_slow_leak, LEAK_CHECKS, FIELD, wedges=True),
    Scenario("leak-everywhere", "a deploy ships a leak to every box at once", "healed at budget pace, the hourly budget never exceeded", 20,
             build_leak_everywhere, LEAK_CHECKS, wedges=True),
    Scenario("leak-no-agents", "a deploy ships a leak to every box at once; no box has the CloudWatch agent",
             "healed at budget pace on the console's evidence", 20, build_leak_everywhere, LEAK_CHECKS, NO_AGENTS, wedges=True),
    Scenario("network-fault", "40% of the fleet cut off for 2 h: probes time out, agents silent at ordinary levels",
             "zero actions: the breaker holds", 20, build_network_fault, no_actions),
    Scenario("acl", "a network ACL cuts the probe into one subnet for 2 h; its agents still publish", "zero actions", 20, build_acl, no_actions, FIELD),
    Scenario("dark-az", "one zone dark for 1 h: SSH and the agents' uploads cut together", "zero actions: silence is the network", 24,
             build_dark_zone, no_actions),
    Scenario("broken-prober", "the prober's own network down for 1 h", "zero actions", 20, build_broken_prober, no_actions),
    Scenario("sshd-push", "a config push breaks sshd on every box an hour in; a reboot does not help",
             "at most the canary, then one message", 20, build_sshd_push, canary_only, FIELD),
    Scenario("plateau", "memory at 88-93% all day, SSH fine", "zero actions", 8, build_plateau, no_actions, FIELD),
    Scenario("restart-loop", "the process is OOM-killed at 95% and restarted, again and again; SSH fine", "zero actions", 8,
             build_restart_loop, no_actions, FIELD),
    Scenario("flapping", "one box hangs 3 minutes after every boot", "escalated, then quarantined: 'remediation failed'", 10, build_flapping,
             nothing_on_fine_boxes, outcome=quarantined_in_time, trouble_at_hours=1.0),
    Scenario("never-recovers", "one box hangs and nothing brings it back", "escalated, quarantined after at most the ladder's rungs plus one",
             10, build_never_recovers, nothing_on_fine_boxes, outcome=quarantined_in_time, trouble_at_hours=1.0),
    Scenario("baseline-shift", "the whole fleet sits at 96.5% memory with SSH fine",
             "zero actions (with memory.proactive = reboot: the memory breaker holds)", 20, build_baseline_shift, no_actions),
)

BY_NAME = {s.name: s for s in SCENARIOS}


def build(scenario: Scenario, start: datetime, seed: int, instances: int | None = None, conditions: Conditions | None = None) -> World:
    world = World(SimClock(start))
    rng = random.Random(f"orch-simulate/{scenario.name}/{seed}")
    scenario.build(world, rng, instances or scenario.instances, conditions or scenario.conditions)
    return world
