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

The driver also keeps a schedule (``Every``): jobs due every so many *simulated* minutes,
the first one interval after start, as an EventBridge rate fires. The served sandbox puts
the deployed Lambda's sweep there (orchestrator.sandbox.schedule), so the fleet heals itself
as a deployed stack would heal it; at ``--time-scale 10`` it sweeps ten times as often in
wall time, like everything else.

The driver only asks the sandbox what time it is (``Sandbox.now``) and what is due
(``Sandbox.publish_due``): the sandbox's clock is the one place the wall clock is read, and
tests inject it (``sb.wall = ...``) and call ``tick`` instead of waiting. The loop between
ticks only sleeps.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0  # how often the loop looks for a due minute (at most 60 / scale apart)


class Lives(Protocol):
    """What the driver needs of a sandbox (orchestrator.sandbox.fleet.Sandbox)."""

    def publish_due(self) -> list[object]: ...

    def set_time_scale(self, scale: float) -> None: ...

    def now(self) -> datetime: ...


@dataclass
class Every:
    """``job`` every ``minutes`` simulated minutes, the first time one interval after the driver starts.

    Like an EventBridge rate: a slot missed (the driver was busy, the machine asleep) is
    skipped, not made up in a burst; the job runs once and the next slot is the next one
    after now.
    """

    minutes: float
    job: Callable[[], object]
    due: datetime | None = None  # the next slot; set from the sandbox's clock when the driver is made

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError("a schedule needs a positive number of minutes")

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    def take(self, now: datetime) -> bool:
        """Whether a slot has come by ``now``; if so, the next slot is the first one after ``now``."""
        if self.due is None:
            self.due = now + self.interval
        if now < self.due:
            return False
        missed = (now - self.due) // self.interval
        self.due += self.interval * (missed + 1)
        return True


@dataclass
class Driver:
    """Drives ``sandbox`` on the wall clock until ``stop`` is set."""

    sandbox: Lives
    scale: float = 1.0
    on_error: Callable[[BaseException], None] = field(default=lambda exc: log.warning("sandbox tick failed: %s", exc))
    stop: threading.Event = field(default_factory=threading.Event)
    schedule: list[Every] = field(default_factory=list)
    ticks: int = 0

    def __post_init__(self) -> None:
        if self.scale != 1.0:
            self.sandbox.set_time_scale(self.scale)
        started = self.sandbox.now()
        for every in self.schedule:
            if every.due is None:
                every.due = started + every.interval

    @property
    def interval(self) -> float:
        """Seconds between ticks: a simulated minute is never missed by more than a tick."""
        return min(TICK_SECONDS, 60.0 / self.scale / 2)

    def tick(self) -> list[object]:
        """Whatever is due happens now: the minutes that passed since the last point, then the
        scheduled jobs whose slot has come (they see the minutes just published). A job that
        fails is told (``on_error``) and the schedule goes on."""
        self.ticks += 1
        caused = self.sandbox.publish_due()
        now = self.sandbox.now()
        for every in self.schedule:
            if every.take(now):
                try:
                    every.job()
                except Exception as exc:  # noqa: BLE001 - the server keeps serving; the next slot tries again
                    self.on_error(exc)
        return caused

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
