"""Whatever the sequence of faults, a sweep never takes more actions than the rules allow, and
every mutation is in the audit (hypothesis stateful testing over the simulator).

The machine drives orch's own sweep over a simulated fleet (the simulator's ``SimFleet``,
a SQLite store): sweeps, time passing, the store failing on a method from some call on,
and a process dying at a step of the act phase (the store then takes nothing more from
it, as from a killed process). After every step:

- every mutation the world saw has an action record (the intent is written before it);
- no instance is acted on again while its previous action awaits verification: two
  actions on one instance closer than the verify window have the first one judged
  (verified or failed) in between;
- no sweep takes more than ``max_actions_per_sweep`` budgeted actions (those on chronic boxes
  are paced by their cycle instead), and no hour more than
  ``max_actions_per_hour``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orchestrator.box.model import Behaviour, Box, Fault
from orchestrator.config import Settings
from orchestrator.model import ActionOutcome
from orchestrator.simulate.fleet import SimExecutor, SimFleet
from orchestrator.simulate.run import START, simulation_settings
from orchestrator.simulate.world import Outage, SimClock, World
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import StateError
from orchestrator.sweep.pipeline import Mode, SweepDeps, sweep

SETTINGS = simulation_settings(Settings())
METHODS = ("put_action_intent", "update_action", "put_histories", "put_sweep", "get_pause", "acquire_lease")
STEPS = ("after-intent", "after-call")


class Crash(BaseException):
    """The process dies here: nothing after it is its to do."""


class Store:
    """The sweep's store: a SQLite file, failing on request, dead after a crash."""

    def __init__(self, path: Path) -> None:
        self.inner = SqliteStore(path)
        self.failing: tuple[str, int] | None = None
        self.calls = 0
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name == "close" or not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise StateError(f"{name}: the process is gone")
            if self.failing is not None and self.failing[0] == name:
                self.calls += 1
                if self.calls >= self.failing[1]:
                    raise StateError(f"{name}: disk I/O error")
            return target(*args, **kwargs)

        return call


@dataclass
class CrashingExecutor(SimExecutor):
    crash_at: str | None = None
    store: Store | None = None

    def execute(self, plan: Any) -> list[ActionOutcome]:
        if self.crash_at is None:
            return super().execute(plan)
        journal = self.journal
        begin, finish = journal.begin, journal.finish

        def begin_then_die(action: Any, evidence: Any) -> Any:
            refused = begin(action, evidence)
            if refused is None and self.crash_at == "after-intent":
                self._die()
            return refused

        def finish_then_die(outcome: Any) -> None:
            if self.crash_at == "after-call":
                self._die()
            finish(outcome)

        journal.begin, journal.finish = begin_then_die, finish_then_die  # type: ignore[method-assign]
        return super().execute(plan)

    def _die(self) -> None:
        assert self.store is not None
        self.store.dead = True
        raise Crash()


@dataclass
class CrashingFleet(SimFleet):
    crash_at: str | None = None
    store: Store | None = None

    def executor(self, settings: Settings, journal: Any, gate: Any, facts: Any, verdicts: Any, sweep_id: str) -> Any:
        acting = super().executor(settings, journal, gate, facts, verdicts, sweep_id)
        plain = acting.executor
        crashing = CrashingExecutor(plain.fleet, plain.journal, plain.gate, plain.capture_evidence, self.crash_at, self.store)
        return replace(acting, executor=crashing)


def fleet_world() -> World:
    world = World(SimClock(START))
    long_ago = START - timedelta(days=3)
    leaky = Behaviour(base_percent=30.0, leak_per_min=2.0, wedge_percent=97.0)
    for n in range(6):
        if n < 4:
            booted = START - timedelta(minutes=28 + 3 * n)  # wedging within minutes, out of step
            world.add(Box.booted(f"leak/{n}", leaky, booted), "us-east-1a" if n % 2 else "us-east-1b", launched=booted)
        elif n == 2:
            box = Box.booted("hang", Behaviour(fault=Fault.HUNG, fault_after_minutes=20.0), long_ago)
            world.add(box, "us-east-1c", launched=long_ago)
        else:
            world.add(Box.booted(f"flat/{n}", Behaviour(), long_ago), ("us-east-1a", "us-east-1b", "us-east-1c")[n % 3], launched=long_ago)
    return world


class SweepsUnderFaults(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.world = fleet_world()
        self.store = Store(Path(self.tmp.name) / "state.db")
        self.fleet = CrashingFleet(self.world, store=self.store)
        self.deps = SweepDeps(clients=None, store=self.store, clock=self.world.clock, fleet=self.fleet)  # type: ignore[arg-type]
        self.actions_per_sweep: list[int] = []
        self._last = START

    def teardown(self) -> None:
        self.store.inner.close()
        self.tmp.cleanup()

    def _sweep(self) -> None:
        before = len(self.world.applied)
        try:
            sweep(SETTINGS, self.deps, mode=Mode.HEAL)
        except StateError:
            pass  # the sweep said nothing was acted on; the invariants check that it was true
        except Crash:
            self.store.dead = False
            self.world.clock.advance(6 * 60)  # the dead process's lease runs out
        finally:
            self.store.failing, self.store.calls = None, 0
            self.fleet.crash_at = None
        self.actions_per_sweep.append(len(self._budgeted(self.world.applied[before:])))
        self.world.clock.now = max(self.world.clock.now, self._last + timedelta(minutes=5))  # the schedule
        self._last = self.world.clock.now

    def _budgeted(self, applied: list[Any]) -> list[Any]:
        """The actions the fleet's budgets count: not those the history records as taken on a chronic box."""
        histories = self.store.inner.get_histories(self.world.machines)
        chronic = {(iid, a.at) for iid, h in histories.items() for a in h.actions if a.chronic}
        return [a for a in applied if (a.instance_id, a.at) not in chronic]

    @rule()
    def a_sweep(self) -> None:
        self._sweep()

    @rule(minutes=st.integers(min_value=1, max_value=20))
    def time_passes(self, minutes: int) -> None:
        self.world.clock.advance(minutes * 60)

    @rule(method=st.sampled_from(METHODS), from_call=st.integers(min_value=1, max_value=3))
    def a_sweep_with_a_failing_store(self, method: str, from_call: int) -> None:
        self.store.failing = (method, from_call)
        self._sweep()

    @rule(step=st.sampled_from(STEPS))
    def a_sweep_that_dies(self, step: str) -> None:
        self.fleet.crash_at = step
        self._sweep()

    @rule()
    def a_zone_goes_dark(self) -> None:
        now = self.world.clock.now
        self.world.outages.append(Outage(now, now + timedelta(minutes=30), zone="us-east-1a", cuts_agent=True))

    @invariant()
    def every_mutation_is_in_the_audit(self) -> None:
        if not hasattr(self, "world"):
            return
        records = self.store.inner.actions_since(START - timedelta(days=1))
        for applied in self.world.applied:
            assert any(
                r.instance_id == applied.instance_id and r.action is applied.kind and r.created_at <= applied.at for r in records
            ), f"{applied} has no action record"

    @invariant()
    def no_action_is_repeated_while_the_last_one_awaits_verification(self) -> None:
        if not hasattr(self, "world"):
            return
        verify = timedelta(minutes=SETTINGS.safety.verify_minutes)
        histories = self.store.inner.get_histories(self.world.machines)
        by_instance: dict[str, list[Any]] = {}
        for applied in self.world.applied:
            by_instance.setdefault(applied.instance_id, []).append(applied)
        for instance_id, applied in by_instance.items():
            judged = [a for a in histories[instance_id].actions if a.verified_at or a.failed_at] if instance_id in histories else []
            for first, second in zip(applied, applied[1:]):
                if second.at - first.at < verify:
                    assert any(first.at <= a.at and (a.verified_at or a.failed_at) <= second.at for a in judged), (
                        f"{instance_id} acted on at {first.at:%H:%M:%S} and again at {second.at:%H:%M:%S} with nothing judged between"
                    )

    @invariant()
    def budgets_hold(self) -> None:
        if not hasattr(self, "world"):
            return
        assert all(n <= SETTINGS.safety.max_actions_per_sweep for n in self.actions_per_sweep)
        times = [a.at for a in self._budgeted(self.world.applied)]
        for t in times:
            assert sum(1 for u in times if t <= u < t + timedelta(hours=1)) <= SETTINGS.safety.max_actions_per_hour


SweepsUnderFaults.TestCase.settings = settings(
    max_examples=25, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSweepsUnderFaults = SweepsUnderFaults.TestCase
