"""Named fleets to judge a policy against: the incident's own, and the ones that must not be healed.

Each scenario pairs a fleet (orchestrator.simulate.builders: it builds a ``World`` from
a seed, the same seed the same fleet and day) with the conditions it runs under and its
expectation, in words and as checks (orchestrator.simulate.checks). The expectation
beside each one is what the README's figures and the suite hold orch to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable

from orchestrator.config import Settings
from orchestrator.simulate.builders import (
    build_acl,
    build_baseline_shift,
    build_broken_prober,
    build_chronic_leak,
    build_chronic_leak_guard,
    build_dark_zone,
    build_fast_leak,
    build_flapping,
    build_incident,
    build_leak_everywhere,
    build_mixed_slow_leak,
    build_morning_after,
    build_network_fault,
    build_never_recovers,
    build_plateau,
    build_restart_loop,
    build_single_hang,
    build_slow_leak,
    build_sshd_push,
)
from orchestrator.simulate.checks import (
    LEAK_CHECKS,
    Check,
    all_of,
    available_at_least,
    canary_only,
    guard_works,
    no_actions,
    nothing_on_fine_boxes,
    one_heal,
    outcome_allowance,
    quarantined_in_time,
)
from orchestrator.simulate.conditions import FIELD, Conditions
from orchestrator.simulate.figures import Figures
from orchestrator.simulate.world import SimClock, World


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
