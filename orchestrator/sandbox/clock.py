"""The sandbox's time: the wall clock, every ``advance``, and the living mode's time scale.

Three things move simulated time: the wall clock (injectable: tests set ``wall``),
``advance`` (a test's minutes passing at once), and the time scale (`orch sandbox
--serve --time-scale K`: K simulated minutes per wall minute). Boxes, events and the
sweep given ``now`` live in simulated time; a metric point is stamped at the wall time
its simulated minute happens (``stamp``), so a sweep in another process, on its own
clock, reads CloudWatch as it would read AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class SandboxClock:
    wall: Callable[[], datetime] = utc_now
    offset: timedelta = field(default_factory=timedelta)  # every advance, and what a scale change carried over
    scale: float = 1.0
    epoch: datetime | None = None  # wall time when the scale took effect

    def now(self) -> datetime:
        wall = self.wall()
        if self.epoch is not None and self.scale != 1.0:
            wall = self.epoch + (wall - self.epoch) * self.scale
        return wall + self.offset

    def set_scale(self, scale: float) -> None:
        """From now on ``scale`` simulated minutes pass per wall minute; simulated time carries on from where it is."""
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        now = self.now()
        self.epoch, self.scale = self.wall(), scale
        self.offset = now - self.epoch

    def stamp(self, at: datetime) -> datetime:
        """A simulated moment as the wall time it happens at (the identity at scale 1)."""
        if self.epoch is None or self.scale == 1.0:
            return at
        return self.epoch + (at - self.offset - self.epoch) / self.scale
