"""Simulated ``mem_used_percent`` per instance: flat, leaking, or exhausted.

Pure and seeded: the same seed gives the same series, so a test can assert exact
behaviour and a demo can be replayed. The shapes follow the incident: a leaking
process climbs about 1 %/min until the box is out of memory, then it sits at 98-99.5 %
and sshd can no longer fork. A reboot brings it back to a ~35 % baseline.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

BASELINE_PERCENT = 35.0
EXHAUSTED_AT = 98.0
EXHAUSTED_MAX = 99.5


class MemoryShape(str, enum.Enum):
    FLAT = "flat"  # healthy: 30-50 % with small noise
    LEAKING = "leaking"  # climbing about 1 %/min
    EXHAUSTED = "exhausted"  # the leak won: 98-99.5 %


@dataclass
class MemoryModel:
    """One instance's memory, advanced one minute at a time."""

    shape: MemoryShape
    level: float
    base: float
    rate_per_min: float
    rng: random.Random
    leaks: bool  # the process leaks: after a reboot it starts climbing again

    @classmethod
    def create(cls, shape: MemoryShape, rng: random.Random) -> MemoryModel:
        """Pick this instance's parameters; ``level`` is the value at 'now'."""
        base = round(rng.uniform(30.0, 50.0), 2)
        if shape is MemoryShape.FLAT:
            return cls(shape, base, base, 0.0, rng, leaks=False)
        if shape is MemoryShape.LEAKING:
            # 75-85 % now at 0.9-1.2 %/min: reaches 97 % in 10-25 minutes.
            return cls(shape, round(rng.uniform(75.0, 85.0), 2), base, rng.uniform(0.9, 1.2), rng, leaks=True)
        return cls(shape, _top(rng), base, rng.uniform(1.0, 1.5), rng, leaks=False)

    def history(self, minutes: int) -> list[float]:
        """``minutes`` values, oldest first, the last being ``level`` (the value now)."""
        values: list[float] = []
        plateau = self.rng.randint(6, 10)  # minutes an exhausted box has been at the top
        for ago in range(minutes - 1, -1, -1):
            if self.shape is MemoryShape.FLAT:
                values.append(self._noisy(self.base, 1.0) if ago else self.level)
            elif self.shape is MemoryShape.LEAKING:
                value = max(self.base, self.level - self.rate_per_min * ago)
                values.append(self._clamp(value + self.rng.gauss(0, 0.2)) if ago else self.level)
            elif ago < plateau:
                values.append(_top(self.rng) if ago else self.level)
            else:
                climb = EXHAUSTED_AT - self.rate_per_min * (ago - plateau + 1)
                values.append(self._clamp(max(self.base, climb) + self.rng.gauss(0, 0.2)))
        return values

    def step(self) -> float:
        """One more minute; a leak that reaches EXHAUSTED_AT turns the shape EXHAUSTED."""
        if self.shape is MemoryShape.FLAT:
            self.level = self._noisy(self.base, 1.0)
        elif self.shape is MemoryShape.LEAKING:
            self.level = self._clamp(self.level + self.rate_per_min + self.rng.gauss(0, 0.1))
            if self.level >= EXHAUSTED_AT:
                self.shape = MemoryShape.EXHAUSTED
                self.level = _top(self.rng)
        else:
            self.level = _top(self.rng)
        return self.level

    def reset(self) -> float:
        """After a reboot or a fresh start: baseline again; a leaky process leaks again."""
        self.base = BASELINE_PERCENT
        self.level = self._noisy(BASELINE_PERCENT, 0.5)
        self.shape = MemoryShape.LEAKING if self.leaks else MemoryShape.FLAT
        return self.level

    def _noisy(self, center: float, sigma: float) -> float:
        return self._clamp(center + self.rng.gauss(0, sigma))

    @staticmethod
    def _clamp(value: float) -> float:
        return round(min(EXHAUSTED_MAX, max(1.0, value)), 2)


def _top(rng: random.Random) -> float:
    """Where an exhausted box sits: the kernel keeps a sliver free by killing things."""
    return round(rng.uniform(EXHAUSTED_AT, EXHAUSTED_MAX), 2)
