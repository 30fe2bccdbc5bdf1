"""One sweep: observe -> diagnose -> plan -> act -> record.

The CLI and the Lambda handlers are thin shells over ``sweep``. Its dependencies
(store, clock and a ``Fleet``: AWS through boto3, or the simulator) are injected, so tests drive the very
same function against moto, a sandbox fleet, a real sshd or simulated days.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from orchestrator.act.executor import DryRunExecutor, Gate, expected_seconds
from orchestrator.config import Settings
from orchestrator.decide import diagnose as diagnose_step
from orchestrator.decide import history as history_step
from orchestrator.decide import pending_start
from orchestrator.decide.chronic import chronic
from orchestrator.decide.manual import manual_plan
from orchestrator.decide.memory import cycle_shape
from orchestrator.decide.patterns import ChronicPattern, chronic_patterns
from orchestrator.decide.plan import make_plan
from orchestrator.decide.suspects import choose_suspects, memory_targets
from orchestrator.model import (
    Action,
    ActionKind,
    ActionOutcome,
    Facts,
    InstanceHistory,
    OutcomeStatus,
    Plan,
    Verdict,
)
from orchestrator.state import lease_scope
from orchestrator.state.historybook import HistoryBook
from orchestrator.state.journal import StoreJournal
from orchestrator.state.lease import LeaseKeeper
from orchestrator.state.store import LeaseLost, StateError
from orchestrator.sweep.aws_fleet import SweepAborted
from orchestrator.sweep.deps import Fleet, Prober, SweepDeps, utcnow
from orchestrator.sweep.journal import ACTED, RecordingJournal, recover_intents
from orchestrator.sweep.report import Mode, SweepReport
from orchestrator.sweep.telling import (
    _record_sweep,
    _record_told,
    _tell,
)

log = logging.getLogger(__name__)


__all__ = ["Fleet", "Mode", "Prober", "SweepAborted", "SweepDeps", "SweepReport", "memory_targets", "sweep", "utcnow"]


def sweep(settings: Settings, deps: SweepDeps, mode: Mode = Mode.HEAL, dry_run: bool | None = None) -> SweepReport:
    """Run one sweep; raises SweepAborted, LeaseHeld or StateError without having acted."""
    dry = settings.dry_run if dry_run is None else dry_run
    started = deps.clock()
    report = SweepReport(sweep_id=uuid.uuid4().hex[:12], mode=mode, dry_run=dry, started_at=started, manual=deps.manual)
    fleet = deps.the_fleet
    counted_from = dict(fleet.api_calls())
    every = settings.memory.full_read_every
    if every > 1:
        last = deps.store.list_sweeps(1)
        report.sweep_number = int(last[0].summary.get("sweep_number", 0)) + 1 if last else 1
        report.memory_full_read = report.sweep_number % every == 1

    keeper: LeaseKeeper | None = None
    scope = lease_scope(deps.account, fleet.region or "-", settings.vpc_id)
    if mode is Mode.HEAL and not dry:
        # One healer per fleet at a time (gardener mcm-provider-aws #94): taken before
        # observing, so two sweeps never plan on the same facts, and checked before
        # every mutation in case it expired while we worked.
        keeper = LeaseKeeper(deps.store, scope, clock=deps.clock, wait_seconds=deps.lease_wait_seconds, shared=deps.shared_lease)
        keeper.acquire()
    try:
        _run(settings, deps, report, mode, dry, keeper)
    except SweepAborted as exc:
        report.notes.append(f"aborted: {exc}")
        raise
    finally:
        # What was done is recorded and the lease let go before anything talks to the
        # outside world: a webhook that hangs, drips or answers garbage can cost at most
        # the news, never the record of the actions nor the next sweep's lease.
        report.finished_at = deps.clock()
        report.api_calls = _diff(fleet.api_calls(), counted_from)
        recorded = _record_and_release(settings, deps, report, keeper)
        if _tell(settings, deps, report, scope):
            report.api_calls = _diff(fleet.api_calls(), counted_from)
            if recorded:
                _record_told(settings, deps, report)
    return report


def _record_and_release(settings: Settings, deps: SweepDeps, report: SweepReport, keeper: LeaseKeeper | None) -> bool:
    """Write the sweep record and release the lease; neither failure may undo the other.

    A failed record after actions ran must not read as "nothing was acted on" (each
    action is already recorded on its own, before and after it ran), nor keep the lease
    until it expires: the failure becomes a note and the sweep is reported partial.
    """
    try:
        if deps.record_sweep:
            _record_sweep(settings, deps, report)
            return True
    except StateError as exc:
        report.partial = True
        acted = [o for o in report.outcomes if o.status in (OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN, OutcomeStatus.FAILED)]
        report.notes.append(
            f"the sweep record could not be written ({exc}); {len(acted)} action(s) ran and each has its own record"
        )
    finally:
        if keeper is not None:
            keeper.release()  # best effort by design: never raises, the lease expires otherwise
    return False


def _run(settings: Settings, deps: SweepDeps, report: SweepReport, mode: Mode, dry: bool, keeper: LeaseKeeper | None) -> None:
    fleet = deps.the_fleet
    observed = fleet.observe(settings, deps.store.get_histories, report.started_at, report.memory_full_read)
    facts, previous = observed.facts, observed.histories
    report.metrics_requested = observed.metrics_requested
    for name, seconds in observed.timings.items():
        report.timings[name] = report.timings.get(name, 0.0) + seconds
    book = HistoryBook(deps.store, deps.clock, dict(previous))
    if mode is Mode.HEAL and not dry:
        # Before judging anything: an intent whose sweep died is an action possibly taken.
        report.notes.extend(recover_intents(deps.store, book, facts, report.sweep_id, deps.clock(), settings))
    now = deps.clock()
    timer = report.timer
    with timer("decide"):
        report.facts = facts
        cycle_starts = {f.instance.instance_id: book.get(f.instance.instance_id).cycle_started_at for f in facts}
        report.verdicts = diagnose_step.diagnose_all(facts, now, settings, cycle_starts)
    if mode is Mode.SCAN:
        # What earlier sweeps learned still says which instances are chronic.
        report.histories = {f.instance.instance_id: book.get(f.instance.instance_id) for f in facts}
        report.patterns = _patterns(facts, report.histories, now, settings)
        return
    manual = deps.manual
    stoppable = frozenset({manual.instance_id}) if manual is not None and manual.kind is ActionKind.STOP_START else frozenset()
    facts = fleet.enrich(facts, choose_suspects(facts, report.verdicts, settings, also_stoppable=stoppable))
    report.facts = facts
    by_id = {f.instance.instance_id: f for f in facts}
    paused = deps.store.get_pause()
    with timer("decide"):
        for v in report.verdicts:
            book.fold(v.instance_id, functools.partial(_observed, facts=by_id[v.instance_id], verdict=v, now=now, settings=settings))
        histories = {v.instance_id: book.get(v.instance_id) for v in report.verdicts}
        if manual is None:
            report.plan = make_plan(by_id, report.verdicts, histories, settings, now, paused=paused)
        else:  # the same observation, lease, executor and records; the person's action instead of the plan
            verdicts_by_id = {v.instance_id: v for v in report.verdicts}
            report.plan = manual_plan(manual, by_id, verdicts_by_id, histories, settings, now, paused)
        report.histories = histories
        report.patterns = _patterns(facts, histories, now, settings)
    if manual is None:
        report.plan = _start_what_orch_stopped(settings, deps, facts, previous, report.plan)
    if not dry and report.plan.actions and deps.confirm is not None and not deps.confirm(report):
        # Declined: the sweep becomes the dry run it was shown as. Nobody is told and nothing
        # is recorded as acted (the sweep record says dry-run; no history is written).
        report.dry_run = True
        deps.notify = False
        report.outcomes = DryRunExecutor().execute(report.plan)
        report.notes.append("declined at the prompt: nothing was done and nobody was told")
        return
    if dry:
        report.outcomes = DryRunExecutor().execute(report.plan)
        return
    verdicts = {v.instance_id: v for v in report.verdicts}
    journal = RecordingJournal(
        StoreJournal(deps.store, report.sweep_id, deps.clock),
        book,
        lambda outcome, key: _acted_step(outcome, key, by_id, verdicts, book, report, now, settings),
    )
    acting = fleet.executor(settings, journal, _gate(deps, report, keeper, journal, settings), by_id, verdicts, report.sweep_id)
    report.evidence = acting.evidence  # a live read-only view: filled as actions run
    deps.progress(f"acting: {len(report.plan.actions)} action(s)")
    with timer("act"):
        report.outcomes = acting.executor.execute(report.plan)
    try:
        book.write()
    except StateError as exc:
        journal.broken = journal.broken or str(exc)
    report.histories = {i: book.get(i) for i in histories}
    report.patterns = _patterns(facts, report.histories, now, settings)
    if journal.broken and not any(o.status in ACTED for o in report.outcomes):
        raise StateError(journal.broken)  # nothing was acted on: that is the whole truth
    if journal.broken:
        report.partial = True
        report.record_error = journal.broken
        acted = [o for o in report.outcomes if o.status in ACTED]
        report.notes.append(
            f"the state store stopped taking records ({journal.broken}) after {len(acted)} action(s) ran; "
            "no new action was started after that, and what was done is in this report"
        )


def _observed(h: InstanceHistory, *, facts: Facts, verdict: Verdict, now: datetime, settings: Settings) -> InstanceHistory:
    return history_step.observe(h, facts, verdict, now, settings)


def _acted_step(
    outcome: ActionOutcome,
    key: str,
    by_id: Mapping[str, Facts],
    verdicts: Mapping[str, Verdict],
    book: HistoryBook,
    report: SweepReport,
    now: datetime,
    settings: Settings,
) -> Callable[[InstanceHistory], InstanceHistory]:
    iid = outcome.action.instance_id
    facts, verdict = by_id.get(iid), verdicts.get(iid)
    context = (
        action_context(facts, verdict, book.get(iid), report.evidence.get(iid), now, settings)
        if facts is not None and verdict is not None
        else None
    )
    return functools.partial(history_step.acted, outcome=outcome, key=key, now=now, settings=settings, context=context)


def _start_what_orch_stopped(
    settings: Settings, deps: SweepDeps, facts: list[Facts], previous: Mapping[str, InstanceHistory], plan: Plan
) -> Plan:
    """Put first in the plan a start for every instance an earlier stop/start of orch's
    left stopped (orchestrator.decide.pending_start): orch never leaves one stopped silently.

    The store is asked only about stopped instances orch had a hand in (one query each),
    so a healthy fleet costs nothing here.
    """
    asked = [f.instance for f in facts if pending_start.worth_asking(f.instance, previous.get(f.instance.instance_id))]
    pending = []
    for inst in asked:
        latest = next(iter(deps.store.list_actions(inst.instance_id, limit=1)), None)
        if latest is not None and pending_start.start_pending(latest):
            pending.append((inst, latest))
    if not pending:
        return plan
    starts, notes = pending_start.start_actions(pending, settings.safety.max_actions_per_sweep)
    return replace(plan, actions=tuple(starts) + plan.actions, notes=plan.notes + tuple(notes))


def _patterns(facts: list[Facts], histories: Mapping[str, InstanceHistory], now: datetime, settings: Settings) -> list[ChronicPattern]:
    conditions = {iid: c for iid, h in histories.items() if (c := chronic(h, now, settings)) is not None}
    return chronic_patterns(facts, conditions, histories, now) if conditions else []


def action_context(
    facts: Facts, verdict: Verdict, history: InstanceHistory, evidence: Mapping[str, Any] | None, now: datetime, settings: Settings
) -> history_step.ActionContext:
    """What the history keeps with an action: the verdict, the evidence, and the cycle it ended."""
    start = history.cycle_started_at
    launched = facts.instance.launch_time
    if start is None and now - launched <= timedelta(minutes=settings.memory.window_minutes):
        start = launched  # launched within the metric window: the whole cycle is in view
    shape = cycle_shape(facts.memory, start, now, settings.memory)
    return history_step.ActionContext(
        verdict=verdict,
        evidence=evidence,
        launched_at=launched,
        exhaustion_minutes=shape.exhaustion_minutes,
        growth_per_min=shape.growth_per_min,
    )


def _gate(
    deps: SweepDeps, report: SweepReport, keeper: LeaseKeeper | None, journal: RecordingJournal, settings: Settings, margin_s: float = 30.0
) -> Gate:
    """Asked by the executor before each mutation: the store still records, the action fits the
    time left, the lease is still ours, not paused. Any doubt refuses."""

    def gate(action: Action) -> str | None:
        if journal.broken:
            report.partial = True
            return f"the state store stopped taking records ({journal.broken}): no new action started"
        if deps.time_left is not None:
            left = deps.time_left()
            needed = margin_s + expected_seconds(action, settings.safety.stop_wait_seconds)
            if left < needed:
                report.partial = True
                return f"{left:.0f} s left before the deadline, {action.kind.value} may take {needed:.0f} s with its record: not started"
        try:
            if keeper is not None:
                keeper.check()
            paused = deps.store.get_pause()
        except LeaseLost as exc:
            report.partial = True
            return f"lease lost ({exc}): no new action started"
        except StateError as exc:
            journal.broken = journal.broken or str(exc)
            report.partial = True
            return f"the state store could not be read ({exc}): no new action started"
        if paused is not None:
            return f"paused by {paused.by} while this sweep ran"
        return None

    return gate


def _diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
