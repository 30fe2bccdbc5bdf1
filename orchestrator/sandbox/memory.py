"""The sandbox's memory shapes (flat, leaking, exhausted) as boxes of the one box model.

The shapes follow the incident: a leaking process climbs about 1 %/min until the box is
out of memory, then it sits at 98-99.5 % and sshd can no longer fork. A reboot brings
it back to a ~35 % baseline, where a leaky process starts climbing again. Each shape is
a ``boxmodel.Box`` whose current cycle is reconstructed so that it looks the way the
shape says *now*; what happens after an action is the box model's, exactly as in the
simulator (``orch simulate``). Seeded: the same seed gives the same series.
"""

from __future__ import annotations

import enum
import random
from datetime import datetime, timedelta

from orchestrator.box.model import BASELINE_PERCENT, TOP_MIN, Behaviour, Box, Cycle, Fault

BASELINE = BASELINE_PERCENT
EXHAUSTED_AT = TOP_MIN
LONG_AGO = timedelta(days=2)  # the sandbox's boxes were up long before the demo began


class MemoryShape(str, enum.Enum):
    FLAT = "flat"  # healthy: 30-50 % with small noise
    LEAKING = "leaking"  # climbing about 1 %/min
    EXHAUSTED = "exhausted"  # the leak won: 98-99.5 %


def box_for(
    shape: MemoryShape,
    rng: random.Random,
    now: datetime,
    seed: str,
    fault: Fault | None = None,
    *,
    starves: bool = False,
    wedged_minutes: tuple[float, float] = (6.0, 10.0),
) -> Box:
    """A box that shows ``shape`` at ``now``; ``fault`` breaks its sshd until a reboot.

    ``starves``: the agent falls silent once memory is exhausted, as on the seed's
    morning; ``wedged_minutes``: how long ago an exhausted box ran out.
    """
    base = round(rng.uniform(30.0, 50.0), 2)
    # Sandbox boxes boot at once: the endpoint's own boot delay is wall-clock time.
    instant = {"boot_seconds": 0.0, "stop_seconds": 0.0, "shutdown_seconds": 0.0, "hard_reboot_seconds": 0.0}
    starving = {"agent_starves_at": EXHAUSTED_AT} if starves else {}
    after_reboot = Behaviour(base_percent=BASELINE, noise=0.5, wedge_percent=EXHAUSTED_AT, **instant, **starving)
    started = now - LONG_AGO
    if shape is MemoryShape.FLAT:
        cycle = Cycle(started, started, base, 0.0, started, noise=1.0, fault=fault, fault_at=started if fault else None)
        return Box.since(seed, after_reboot, cycle)
    if shape is MemoryShape.LEAKING:
        # 75-85 % now at 0.9-1.2 %/min: reaches 98 % in 10-25 minutes, and again after a reboot.
        level, rate = rng.uniform(75.0, 85.0), rng.uniform(0.9, 1.2)
        climb_from = now - timedelta(minutes=(level - base) / rate)
        leaky = Behaviour(base_percent=BASELINE, leak_per_min=rate, noise=0.2, wedge_percent=EXHAUSTED_AT, **instant)
        return Box.since(seed, leaky, Cycle(started, started, base, rate, climb_from, noise=0.2, fault=fault))
    # Exhausted: climbed at 1-1.5 %/min and has sat at the top for 6-10 minutes. The
    # leak that did this does not come back after the reboot.
    rate = rng.uniform(1.0, 1.5)
    low, high = wedged_minutes
    wedged_at = now - timedelta(minutes=rng.randint(round(low), round(high)))
    climb_from = wedged_at - timedelta(minutes=(EXHAUSTED_AT - base) / rate)
    return Box.since(seed, after_reboot, Cycle(started, started, base, rate, climb_from, noise=0.2, fault=fault))
