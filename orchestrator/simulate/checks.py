"""What a simulated run must (not) have done: each scenario's expectation, as checks on its figures.

A check reads a run's ``Figures`` (and the settings it ran with) and returns what went
against the expectation, in words: empty when it was met. ``orch simulate`` prints
those words and exits non-zero on any; the suite holds every scenario to them.
``against_the_limits`` judges orch beside the reactive rebooter and the oracle on the
same fleet.
"""

from __future__ import annotations

from typing import Callable

from orchestrator.config import Settings
from orchestrator.simulate.figures import Figures

# A run's figures and the settings it ran with -> what went against the expectation, in words.
Check = Callable[[Figures, Settings], list[str]]


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


def guard_works(figures: Figures, settings: Settings) -> list[str]:
    found = []
    if figures.actions_total:
        found.append(f"{figures.actions_total} action(s) taken (reboots, stop/starts or restarts), expected none: the guard restarts the service")
    if not figures.service_restarts:
        found.append("the service never restarted inside its limit")
    return found


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
