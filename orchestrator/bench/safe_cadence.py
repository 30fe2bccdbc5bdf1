"""Which cadence is safe: ``orch simulate`` runs at each ``memory.full_read_every`` judged against K = 1.

Reading every instance's memory only one sweep in K is cheaper (see scale_model.monthly),
but a leak seen later is acted on later. These rows are the stored ``orch simulate -o json``
runs (docs/scaling/simulate.json); a K is safe when, on the same seeds, SSH answers about
as often as at K = 1 (within the default's own day-to-day noise) and nothing is acted on
where nothing is wrong. orchestrator/bench/scaling.py prints the verdict in docs/scaling.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class SimRow:
    full_read_every: int
    scenario: str
    seed: int
    availability: float  # share of box-time SSH answered
    wedged_box_hours: float
    actions: int
    met: bool  # the scenario's own expectation (orch simulate's exit status)


def sim_rows(results: list[Mapping[str, Any]]) -> list[SimRow]:
    """Rows from the stored ``orch simulate -o json`` runs (each tagged with its K and seed)."""
    return [
        SimRow(
            r["full_read_every"],
            r["scenario"],
            r["seed"],
            r["availability"],
            r["wedged_box_hours"],
            r["actions_total"],
            not r["violations"],
        )
        for r in results
        if r["policy"] == "orch"
    ]


LEAK_SCENARIOS = ("chronic-leak", "slow-leak")  # SSH-answering share must not drop beyond noise
NO_ACTION_SCENARIOS = ("network-fault", "dark-az", "broken-prober")  # must stay at zero actions
MIN_NOISE_PP = 0.1  # percentage points: the noise floor when the default's seeds happen to agree


def runs_of(rows: list[SimRow], scenario: str, k: int) -> list[SimRow]:
    """One scenario's runs at one K in seed order: a seed is the same fleet and day at every K, so runs pair by it."""
    return sorted((r for r in rows if r.scenario == scenario and r.full_read_every == k), key=lambda r: r.seed)


def noise_pp(rows: list[SimRow], scenario: str, k: int = 1) -> float:
    """How far the SSH-answering share moves from one simulated day (seed) to another at K, in points."""
    values = [100 * r.availability for r in runs_of(rows, scenario, k)]
    return max(max(values) - min(values), MIN_NOISE_PP) if values else MIN_NOISE_PP


def drop_pp(rows: list[SimRow], scenario: str, k: int, default: int = 1) -> float:
    """Mean loss of SSH-answering share against the default on the same seeds (same fleet, same day)."""
    base = {r.seed: r.availability for r in runs_of(rows, scenario, default)}
    pairs = [(base[r.seed], r.availability) for r in runs_of(rows, scenario, k) if r.seed in base]
    return 100 * sum(b - a for b, a in pairs) / len(pairs)


def is_safe(rows: list[SimRow], k: int, default: int = 1) -> bool:
    """Safe: on each leak, a mean loss (paired by seed) within the default's day-to-day noise;
    zero actions where nothing is wrong with the boxes; every scenario's expectation met."""
    for scenario in LEAK_SCENARIOS:
        runs = runs_of(rows, scenario, k)
        if not runs or not all(r.met for r in runs):
            return False
        if drop_pp(rows, scenario, k, default) > noise_pp(rows, scenario, default):
            return False
    for scenario in NO_ACTION_SCENARIOS:
        runs = runs_of(rows, scenario, k)
        if not runs or any(r.actions or not r.met for r in runs):
            return False
    return True


def cheapest_safe(rows: list[SimRow]) -> int:
    """The largest K simulated that is safe: the bill falls as K grows (scale_model.monthly)."""
    return max(k for k in {r.full_read_every for r in rows} if is_safe(rows, k))
