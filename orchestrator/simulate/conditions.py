"""What varies from fleet to fleet besides its fault: boot time, metric delivery, noise, agents.

A policy tuned to one box (a clean 70-second reboot, every point on time, a smooth climb)
can look perfect on it and abandon a fleet that boots slowly or loses points. Every
scenario therefore takes its box's conditions from here, as ranges: each box draws its
own values from the scenario's seed, so one run covers the range and the same seed
replays it. `orch simulate` can override any of them for every scenario at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from orchestrator.box.model import Behaviour

Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Conditions:
    """Ranges a box's conditions are drawn from (low, high), inclusive."""

    boot_seconds: Range = (60.0, 60.0)  # reboot or start to sshd answering; a wedged guest adds EC2's 4-min hard reboot
    metric_delay_seconds: Range = (0.0, 0.0)  # a point reaches GetMetricData this long after its timestamp
    lost_share: float = 0.0  # share of the agent's points that never arrive
    sawtooth_percent: float = 0.0  # GC sawtooth amplitude (+- points) on top of the memory trend
    agent_share: float = 1.0  # share of boxes whose CloudWatch agent reports memory at all
    agent_starves_at: float | None = None  # the agent falls silent at or above this level (it starves with the box)

    def apply(self, behaviour: Behaviour, key: str) -> Behaviour:
        """``behaviour`` with this box's draw of the conditions; ``key`` (the box's seed) makes the draw.

        Its own generator, so the scenario's draws (leak rates, boot moments) are the same
        whatever the conditions: a fleet under other conditions is the same fleet.
        """
        rng = random.Random(f"{key}/conditions")
        return replace(
            behaviour,
            boot_seconds=rng.uniform(*self.boot_seconds),
            delay_seconds=self.metric_delay_seconds,
            lost_share=self.lost_share,
            sawtooth_percent=self.sawtooth_percent or behaviour.sawtooth_percent,
            agent=behaviour.agent and rng.random() < self.agent_share,
            agent_starves_at=self.agent_starves_at if self.agent_starves_at is not None else behaviour.agent_starves_at,
        )

    def describe(self) -> str:
        parts = [f"boot {_range(self.boot_seconds, 60, 'min')}"]
        if self.metric_delay_seconds[1]:
            parts.append(f"metric delay {_range(self.metric_delay_seconds, 60, 'min')}")
        if self.lost_share:
            parts.append(f"{self.lost_share:.0%} of points lost")
        if self.sawtooth_percent:
            parts.append(f"GC sawtooth +-{self.sawtooth_percent:g}%")
        if self.agent_share < 1:
            parts.append(f"agent on {self.agent_share:.0%} of boxes")
        if self.agent_starves_at is not None:
            parts.append(f"agent silent from {self.agent_starves_at:g}%")
        return ", ".join(parts)


def _range(r: Range, unit: float, name: str) -> str:
    low, high = r[0] / unit, r[1] / unit
    return f"{low:g} {name}" if low == high else f"{low:g}-{high:g} {name}"


# What a field fleet looks like, where a scenario does not say otherwise: boots of one to
# four minutes, points arriving one to three minutes late, one in fifty lost, and an
# agent that starves at the top of a climb along with sshd.
FIELD = Conditions(
    boot_seconds=(60.0, 240.0),
    metric_delay_seconds=(60.0, 180.0),
    lost_share=0.02,
    agent_starves_at=97.5,
)


def overridden(base: Conditions, **changes: object) -> Conditions:
    """``base`` with the conditions a person gave on the command line (None: keep the scenario's)."""
    return replace(base, **{k: v for k, v in changes.items() if v is not None})
