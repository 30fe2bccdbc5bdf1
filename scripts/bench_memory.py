"""Time assess_memory over a fleet-sized batch: 10,000 series of 60 one-minute points.

Run: .venv/bin/python scripts/bench_memory.py
A measurement for humans, not a test: timing assertions flake on shared CI machines.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

from orchestrator.config import MemorySettings
from orchestrator.decide.memory import assess_memory
from orchestrator.model import MemorySeries

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
FLEET = 10_000
POINTS = 60


def _series(shape: str, rng: random.Random) -> MemorySeries:
    values: list[float]
    if shape == "leak":
        rate = rng.uniform(0.5, 3.0)
        values = [20 + rate * i * 60 / POINTS + rng.uniform(-1, 1) for i in range(POINTS)]
    elif shape == "sawtooth":
        period = rng.randint(5, 14)
        values = [50 + 40 * (i % period) / (period - 1) for i in range(POINTS)]
    else:
        values = [60 + rng.uniform(-3, 3) for _ in range(POINTS)]
    return MemorySeries("i-bench", tuple((T0 + timedelta(minutes=i), v) for i, v in enumerate(values)))


def _run(label: str, shapes: list[str]) -> None:
    rng = random.Random(42)
    batch = [_series(shapes[i % len(shapes)], rng) for i in range(FLEET)]
    now = T0 + timedelta(minutes=POINTS - 1, seconds=30)
    settings = MemorySettings()
    started = time.perf_counter()
    for series in batch:
        assess_memory(series, now, settings)
    elapsed = time.perf_counter() - started
    print(f"{label:32s} {FLEET} x {POINTS} points: {elapsed:.3f} s ({elapsed / FLEET * 1e6:.0f} us each)")


if __name__ == "__main__":
    _run("mixed (flat, leak, sawtooth)", ["flat", "flat", "flat", "leak", "sawtooth"])
    _run("worst case (every box leaking)", ["leak"])
    _run("all noisy flat", ["flat"])
