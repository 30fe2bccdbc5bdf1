"""A sandbox that lives: `orch sandbox --serve` drives its fleet on the wall clock.

Without this the served sandbox wrote an hour of memory at start and nothing after: a
leaking box's forecast counted down while it stayed put, and ten minutes later every
agent read as silent ("metrics-stale"). Here every simulated minute happens when its
time comes, through the one box model the simulator uses (orchestrator.box.model): the
agents publish, leaking boxes climb and wedge (their sshd hangs, the console shows the
OOM killer), and a box orch rebooted starts a new cycle and, if it leaks, leaks again.

``--time-scale K`` makes K simulated minutes pass per wall-clock minute, for impatient
demos; each simulated minute's point is stamped at the wall time it happens, so sweeps in
other processes read CloudWatch on their own clocks and see the story K times faster.

The driver only asks the sandbox for what is due (``Sandbox.publish_due``); the loop that
waits between ticks is the one piece that reads the wall clock, and tests call ``tick``
with the sandbox's clock injected instead (no test waits).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0  # how often the loop looks for a due minute (at most 60 / scale apart)


class Lives(Protocol):
    """What the driver needs of a sandbox (orchestrator.sandbox.fleet.Sandbox)."""

    def publish_due(self) -> list[object]: ...

    def set_time_scale(self, scale: float) -> None: ...


@dataclass
class Driver:
    """Drives ``sandbox`` on the wall clock until ``stop`` is set."""

    sandbox: Lives
    scale: float = 1.0
    on_error: Callable[[BaseException], None] = field(default=lambda exc: log.warning("sandbox tick failed: %s", exc))
    stop: threading.Event = field(default_factory=threading.Event)
    ticks: int = 0

    def __post_init__(self) -> None:
        if self.scale != 1.0:
            self.sandbox.set_time_scale(self.scale)

    @property
    def interval(self) -> float:
        """Seconds between ticks: a simulated minute is never missed by more than a tick."""
        return min(TICK_SECONDS, 60.0 / self.scale / 2)

    def tick(self) -> list[object]:
        """Whatever is due happens now (the minutes that passed since the last point)."""
        self.ticks += 1
        return self.sandbox.publish_due()

    def run(self) -> None:
        """The loop: tick, wait, until stopped. A failed tick is said and the next one tries again."""
        while not self.stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - a served demo keeps living; the error is told
                self.on_error(exc)
            self.stop.wait(self.interval)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="orch-sandbox-living", daemon=True)
        thread.start()
        return thread
