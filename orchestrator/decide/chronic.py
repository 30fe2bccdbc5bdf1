"""Chronic memory exhaustion: an instance that keeps running out of memory after remedies that worked.

Pure, read from an instance's history: verified recoveries from memory exhaustion
(not flaps) within ``chronic.window_hours``, ``chronic.recoveries`` of them or more.
The history keeps since when (decide/history); the plan acts ahead of the next
exhaustion and gives :meth:`Chronic.describe` as its reason; patterns groups chronic
instances by what they share; guard bounds the leaking service. Apart from the folding
of sweeps into a history, because all of those read it and none of them folds.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.config import Settings
from orchestrator.model import Cause, InstanceHistory


@dataclass(frozen=True, slots=True)
class Chronic:
    """An instance that keeps running out of memory after remedies that worked."""

    since: datetime  # the first of the recoveries that make it chronic
    cycles: int  # verified recoveries from memory exhaustion within the window
    exhaustion_minutes: float | None  # median minutes from boot (or restart) to exhaustion
    growth_per_min: float | None  # median memory growth after boot
    process: str  # the leaking process, when the console named it
    process_rss_kb: int | None
    # Minutes from a box seen back up to its next exhaustion, as observed (the shortest of
    # the last few cycles that ran to the end); None when none did within the window.
    up_minutes: float | None = None

    def describe(self) -> str:
        parts = [f"chronic memory exhaustion: {self.cycles} recoveries since {self.since:%Y-%m-%d %H:%M} UTC"]
        shape = []
        if self.growth_per_min is not None:
            shape.append(f"memory grows {self.growth_per_min:.1f}%/min after boot")
        if self.exhaustion_minutes is not None:
            shape.append(f"runs out about {self.exhaustion_minutes:.0f} min after boot")
        elif self.up_minutes is not None:
            shape.append(f"runs out about {self.up_minutes:.0f} min after it is back up")
        if shape:
            parts.append(" and ".join(shape))
        if self.process:
            size = f" at {self.process_rss_kb / 1024 / 1024:.1f} GiB" if self.process_rss_kb else ""
            parts.append(f"the kernel killed {self.process}{size}")
        return "; ".join(parts)


def chronic(h: InstanceHistory, now: datetime, settings: Settings) -> Chronic | None:
    """Chronic when ``chronic.recoveries`` verified recoveries from memory exhaustion fall in the window."""
    window = timedelta(hours=settings.chronic.window_hours)
    flap = settings.safety.flap_minutes
    recoveries = [
        a
        for a in h.actions
        if a.cause is Cause.MEMORY and a.verified_at is not None and not a.flapped(flap) and now - a.at < window
    ]
    if len(recoveries) < settings.chronic.recoveries:
        return None
    minutes = [a.cycle_minutes for a in recoveries if a.cycle_minutes is not None]
    slopes = [a.slope_per_min for a in recoveries if a.slope_per_min is not None and a.slope_per_min > 0]
    processes = Counter(a.process for a in recoveries if a.process)
    process = processes.most_common(1)[0][0] if processes else ""
    rss = max((a.process_rss_kb for a in recoveries if a.process == process and a.process_rss_kb), default=None)
    observed = [a.up_minutes for a in recoveries if a.up_minutes is not None]
    return Chronic(
        up_minutes=statistics.median(observed[-3:]) if observed else None,
        since=h.chronic_since or recoveries[0].at,
        cycles=len(recoveries),
        exhaustion_minutes=statistics.median(minutes) if minutes else None,
        growth_per_min=statistics.median(slopes) if slopes else None,
        process=process,
        process_rss_kb=rss,
    )
