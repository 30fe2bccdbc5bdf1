"""Run orch's own sweep over simulated days and measure what a fleet's owner cares about.

The sweep is ``orchestrator.sweep.pipeline.sweep`` itself, with a ``SimFleet`` for AWS, a SQLite
store in memory, and the simulated clock: diagnose, history, plan, the lease, the
journal, the executor's gate and the alerts all run as they do in production. Between
sweeps the world goes on by itself; the books are kept from the boxes' own state.

Figures, over the whole run:

- availability: the share of box-time with sshd answering (a slot whose box is being
  replaced counts as down);
- wedged box-hours: box-time spent out of memory;
- actions taken, failed, and taken on boxes that were fine (answering, no leak under way);
- quarantines, chronic instances, messages sent;
- minutes from the moment SSH stopped answering to the action on it (median, p95);
- the most actions in any one hour (the hourly budget's test).

Baselines run on the same fleet and seed for comparison: nobody acting; a perfect
reactive rebooter that reboots every box not answering SSH at each sweep (it knows the
truth, which no tool does); an oracle that also knows the future and reboots each box at
the last sweep at most 5 minutes before it would wedge (the limit of any reboot policy);
and the naive script people write first, which reboots every instance whose probe fails,
unless it rebooted it in the last 10 minutes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from orchestrator.config import Settings
from orchestrator.decide.chronic import chronic
from orchestrator.model import ActionKind, InstanceHistory
from orchestrator.simulate.conditions import Conditions
from orchestrator.simulate.figures import Figures, Policy
from orchestrator.simulate.fleet import SimFleet
from orchestrator.simulate.scenarios import Scenario, build
from orchestrator.simulate.world import World
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode, SweepDeps, SweepReport, sweep

START = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
SAMPLE_SECONDS = 15.0
SIM_TOPIC = "arn:aws:sns:us-east-1:000000000000:orch-simulated"

Progress = Callable[[int, int], None]


ORACLE_AHEAD = timedelta(minutes=5)


@dataclass
class Books:
    """Running totals kept between sweeps from the boxes' own state."""

    samples: int = 0
    answering: int = 0
    wedged_samples: int = 0
    last: datetime | None = None

    def keep(self, world: World, until: datetime) -> None:
        t = self.last or until
        step = timedelta(seconds=SAMPLE_SECONDS)
        slots = world.slots()
        while t < until:
            for machines in slots.values():
                holder = world.holder(machines, t)
                if holder is None:
                    continue
                self.samples += 1
                if holder.box.answers_ssh(t):
                    self.answering += 1
                if holder.box.wedged(t):
                    self.wedged_samples += 1
            t += step
        self.last = t


def simulation_settings(settings: Settings) -> Settings:
    """The user's settings, with the simulator's own topic so that messages are composed and counted.

    Nothing simulated reaches the world: the configured topic and every webhook (from the
    file or ORCH_NOTIFY_WEBHOOKS) are dropped, and the simulated fleet's ``publish`` is a
    recorder. A simulated breaker paging PagerDuty, then resolving the very dedup key a
    real healer in that region uses, is what this prevents.
    """
    told = settings.notify.model_copy(update={"topic_arn": SIM_TOPIC, "webhooks": ()})
    return settings.model_copy(update={"notify": told, "dry_run": False})


def _no_webhooks(targets: object, doc: object, policy: object) -> list[Any]:
    """The simulator's webhook sender: it has no targets (``simulation_settings``) and sends nothing if given some."""
    return []


def simulate(
    scenario: Scenario,
    settings: Settings,
    hours: float,
    seed: int = 0,
    instances: int | None = None,
    policy: Policy = Policy.ORCH,
    progress: Progress | None = None,
    conditions: Conditions | None = None,
) -> Figures:
    world = build(scenario, START, seed, instances, conditions)
    interval = timedelta(minutes=settings.sweep_interval_minutes)
    end = START + timedelta(hours=hours)
    total = int((end - START) / interval)
    books = Books()
    fleet = SimFleet(world)
    store = SqliteStore(":memory:")
    run_settings = simulation_settings(settings)
    deps = SweepDeps(clients=None, store=store, clock=world.clock, fleet=fleet, webhooks=_no_webhooks)
    last_report = None
    try:
        for n in range(total):
            tick = START + n * interval
            books.keep(world, tick)
            world.clock.now = max(world.clock.now, tick)
            if policy is Policy.ORCH:
                last_report = sweep(run_settings, deps, mode=Mode.HEAL)
            elif policy is Policy.REACTIVE:
                _reactive_sweep(world)
            elif policy is Policy.ORACLE:
                _oracle_sweep(world)
            elif policy is Policy.NAIVE:
                _naive_sweep(world, run_settings)
            if progress is not None:
                progress(n + 1, total)
        books.keep(world, end)
        histories = store.get_histories(world.machines)
    finally:
        store.close()
    return _figures(scenario, policy, hours, world, fleet, books, histories, total, last_report, run_settings, end)


def _reactive_sweep(world: World) -> None:
    """A perfect detector: every box not answering SSH (and not booting) is rebooted now."""
    now = world.clock.now
    for machine in world.running():
        if not machine.box.answers_ssh(now) and machine.box.current.up_at <= now:
            world.act(machine.instance_id, ActionKind.REBOOT)


def _oracle_sweep(world: World) -> None:
    """Knows the future: reboots a box whose wedge comes within ``ORACLE_AHEAD``, and any box down."""
    now = world.clock.now
    for machine in world.running():
        box = machine.box
        if box.current.up_at > now:
            continue  # booting
        wedge = box.wedge_at(box.current)
        if not box.answers_ssh(now) or (wedge is not None and wedge - now <= ORACLE_AHEAD):
            world.act(machine.instance_id, ActionKind.REBOOT)


def _naive_sweep(world: World, settings: Settings) -> None:
    """What people write first: probe everything, reboot what does not answer."""
    recent = {a.instance_id for a in world.applied if world.clock.now - a.at < timedelta(minutes=10)}
    for machine in world.running():
        if machine.instance_id not in recent and world.probe(machine, settings.probe).outcome.is_failure:
            world.act(machine.instance_id, ActionKind.REBOOT)


def _figures(
    scenario: Scenario,
    policy: Policy,
    hours: float,
    world: World,
    fleet: SimFleet,
    books: Books,
    histories: Mapping[str, InstanceHistory],
    sweeps: int,
    report: SweepReport | None,
    settings: Settings,
    end: datetime,
) -> Figures:
    taken = [a for a in world.applied if a.ok]
    kinds: dict[str, int] = {}
    for a in taken:
        kinds[a.kind.value] = kinds.get(a.kind.value, 0) + 1
    delays = sorted((a.at - a.down_since).total_seconds() / 60 for a in taken if a.down_since is not None)
    quarantined = [h for h in histories.values() if h.quarantined_at is not None]
    first_q = min((h.quarantined_at for h in quarantined), default=None)
    times = sorted(a.at for a in world.applied)
    busiest = _busiest_hour(times)
    budgeted = _busiest_hour(sorted(at for h in histories.values() for at in h.budgeted))
    conditions = [c for h in histories.values() if (c := chronic(h, end, settings)) is not None]
    patterns = report.patterns if report is not None else []
    return Figures(
        scenario=scenario.name,
        policy=policy,
        hours=hours,
        instances=len(world.slots()),
        sweeps=sweeps,
        availability=books.answering / books.samples if books.samples else 1.0,
        wedged_box_hours=books.wedged_samples * SAMPLE_SECONDS / 3600,
        actions=dict(sorted(kinds.items())),
        actions_total=len(taken),
        failed_actions=sum(1 for a in world.applied if not a.ok),
        on_fine_boxes=sum(1 for a in world.applied if a.box_was_fine),
        quarantined=len(quarantined),
        first_quarantine_hours=None if first_q is None else (first_q - START).total_seconds() / 3600,
        quarantine_reasons=tuple(sorted({h.quarantine_reason for h in quarantined})),
        chronic=len(conditions),
        messages=len(fleet.published),
        message_subjects=tuple(p.subject for p in fleet.published[:10]),
        chronic_text=tuple(p.describe(bool(settings.memory.ssm_commands)) for p in patterns),
        down_to_action_median_min=statistics.median(delays) if delays else None,
        down_to_action_p95_min=delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else None,
        max_actions_in_an_hour=busiest,
        api_calls=dict(sorted(fleet.api_calls().items())),
        max_budgeted_in_an_hour=budgeted,
        **_guard_figures(world, end, kinds, books),
    )


def _busiest_hour(times: list[datetime]) -> int:
    return max((sum(1 for u in times if t <= u < t + timedelta(hours=1)) for t in times), default=0)


def combine(runs: list[Figures]) -> Figures:
    """One row for several seeds of the same scenario and policy: means, and the worst of the extremes.

    Counts are per seed (means, rounded); availability is the mean; the busiest hour and the
    slowest p95 are the worst seed's, so a bad day is not averaged away.
    """
    if len(runs) == 1:
        return runs[0]
    first = runs[0]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    def mean_or_none(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return mean(known) if known else None

    kinds = sorted({k for r in runs for k in r.actions})
    calls = sorted({k for r in runs for k in r.api_calls})
    return Figures(
        scenario=first.scenario,
        policy=first.policy,
        hours=first.hours,
        instances=first.instances,
        sweeps=first.sweeps,
        availability=mean([r.availability for r in runs]),
        wedged_box_hours=mean([r.wedged_box_hours for r in runs]),
        actions={k: round(mean([r.actions.get(k, 0) for r in runs])) for k in kinds},
        actions_total=round(mean([r.actions_total for r in runs])),
        failed_actions=round(mean([r.failed_actions for r in runs])),
        on_fine_boxes=max(r.on_fine_boxes for r in runs),
        quarantined=max(r.quarantined for r in runs),
        first_quarantine_hours=min((r.first_quarantine_hours for r in runs if r.first_quarantine_hours is not None), default=None),
        quarantine_reasons=tuple(sorted({q for r in runs for q in r.quarantine_reasons})),
        chronic=round(mean([r.chronic for r in runs])),
        messages=round(mean([r.messages for r in runs])),
        message_subjects=first.message_subjects,
        chronic_text=first.chronic_text,
        down_to_action_median_min=mean_or_none([r.down_to_action_median_min for r in runs]),
        down_to_action_p95_min=max((r.down_to_action_p95_min for r in runs if r.down_to_action_p95_min is not None), default=None),
        max_actions_in_an_hour=max(r.max_actions_in_an_hour for r in runs),
        max_budgeted_in_an_hour=max(r.max_budgeted_in_an_hour for r in runs),
        api_calls={k: round(mean([r.api_calls.get(k, 0) for r in runs])) for k in calls},
        seeds=len(runs),
        availability_min=min(r.availability for r in runs),
    )


def _guard_figures(world: World, end: datetime, kinds: Mapping[str, int], books: Books) -> dict[str, object]:
    """Restarts by the guard (orch guard) and whether it worked: SSH kept, no reboot or stop/start needed."""
    guarded = [m for m in world.machines.values() if m.box.behaviour.guard_limit_percent is not None]
    if not guarded:
        return {}
    restarts = sum(m.box.guard_kills(START, end) for m in guarded)
    boots = kinds.get(ActionKind.REBOOT.value, 0) + kinds.get(ActionKind.STOP_START.value, 0)
    availability = books.answering / books.samples if books.samples else 1.0
    works = restarts > 0 and boots == 0 and availability >= 0.999
    verdict = "the guard works" if works else "the guard did not keep the boxes up"
    text = (f"{verdict}: the kernel killed the service inside its limit {restarts} times and it restarted in seconds; "
            f"{boots} reboots or stop/starts; SSH up {availability:.2%}")
    return {"service_restarts": restarts, "guard": text}
