"""What a fleet hands back to the sweep: frozen results the pipeline puts in its report.

A fleet (``AwsFleet``, the simulator's ``SimFleet``) reads facts and makes an executor;
it never writes into the sweep's mutable ``SweepReport``. That keeps the dependency one
way (the pipeline imports the fleets, not the reverse) and makes what a fleet did plain
data a test can compare.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from orchestrator.act.executor import Executor
from orchestrator.model import Facts, InstanceHistory


@dataclass(frozen=True)
class Observation:
    """Every fact the decision needs, with what reading them cost."""

    facts: list[Facts]
    histories: dict[str, InstanceHistory]  # before this sweep, as the store had them
    metrics_requested: int = 0  # GetMetricData is billed per metric requested
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds per phase ("aws", "probe")


@dataclass(frozen=True)
class Acting:
    """An executor, and a read-only view of the evidence it captures as it acts (instance -> summary)."""

    executor: Executor
    evidence: Mapping[str, dict[str, Any]] = field(default_factory=lambda: MappingProxyType({}))


@contextmanager
def phase(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds spent inside the block to ``timings[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
