"""One sweep: observe -> diagnose -> plan -> act -> record.

The CLI and the Lambda handlers are thin shells over ``sweep``. Its dependencies
(store, clock and a ``Fleet``: AWS through boto3, or the simulator) are injected, so tests drive the very
same function against moto, a sandbox fleet, a real sshd or simulated days.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Protocol

from orchestrator.act.executor import DryRunExecutor, Gate, Journal, expected_seconds
from orchestrator.alerting import formats as alert_formats
from orchestrator.alerting import news as alerts
from orchestrator.alerting import notify, webhook
from orchestrator.aws import Clients
from orchestrator.config import Settings, WebhookTarget
from orchestrator.decide import diagnose as diagnose_step
from orchestrator.decide import history as history_step
from orchestrator.decide import pending_start
from orchestrator.decide.manual import ManualRequest, manual_plan
from orchestrator.decide.memory import cycle_shape
from orchestrator.decide.patterns import ChronicPattern, chronic_patterns
from orchestrator.decide.plan import make_plan
from orchestrator.decide.suspects import Suspects, choose_suspects, memory_targets
from orchestrator.model import (
    Action,
    ActionKind,
    ActionOutcome,
    Facts,
    InstanceHistory,
    OutcomeStatus,
    Plan,
    ProbeResult,
    Verdict,
)
from orchestrator.observe import metrics
from orchestrator.observe.probe import probe_fleet
from orchestrator.state import lease_scope
from orchestrator.state.fit import fit_sweep_summary
from orchestrator.state.historybook import HistoryBook
from orchestrator.state.journal import StoreJournal
from orchestrator.state.lease import LeaseKeeper, LeaseStore
from orchestrator.state.ssm_lease import SsmLeases
from orchestrator.state.store import ActionStatus, AlertBook, LeaseLost, StateError, StateStore, SweepRecord
from orchestrator.sweep.aws_fleet import AwsFleet, HistoryReader, SweepAborted
from orchestrator.sweep.results import Acting, Observation

log = logging.getLogger(__name__)

__all__ = ["Fleet", "Mode", "SweepAborted", "SweepDeps", "SweepReport", "memory_targets", "sweep", "utcnow"]

Prober = Callable[..., dict[str, ProbeResult]]
Clock = Callable[[], datetime]
WebhookSender = Callable[[tuple[WebhookTarget, ...], alert_formats.AlertDocument, webhook.Policy], list[webhook.Delivery]]
WEBHOOK_DEADLINE_MARGIN_S = 30.0  # kept for the sweep record and the lease release after the webhooks


class Mode(str, enum.Enum):
    SCAN = "scan"  # observe and diagnose only; never plans an action
    HEAL = "heal"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _no_progress(message: str) -> None:
    return None


class Fleet(Protocol):
    """Where a sweep's facts come from and where its actions go: AWS, or the simulator."""

    @property
    def region(self) -> str | None: ...

    def api_calls(self) -> Mapping[str, int]: ...

    def observe(self, settings: Settings, histories_of: HistoryReader, now: datetime, memory_full_read: bool) -> Observation: ...

    def enrich(self, facts: list[Facts], suspects: Suspects) -> list[Facts]: ...

    def executor(
        self,
        settings: Settings,
        journal: Journal,
        gate: Gate,
        facts: Mapping[str, Facts],
        verdicts: Mapping[str, Verdict],
        sweep_id: str,
    ) -> Acting: ...

    def publish(self, topic_arn: str, message: notify.SnsMessage) -> str | None: ...


@dataclass
class SweepDeps:
    clients: Clients | None
    store: StateStore
    clock: Clock = utcnow
    prober: Prober = probe_fleet
    progress: Callable[[str], None] = _no_progress
    time_left: Callable[[], float] | None = None  # seconds; a Lambda passes its context's
    confirm: Callable[[Plan], bool] | None = None  # asked before acting, e.g. on a terminal
    notify: bool = True  # False: tell nobody (a dry run by hand)
    account: str = "-"  # the AWS account, when known: part of the lease scope
    lease_wait_seconds: float = 0.0  # how long to wait for another sweep's lease
    only_instances: tuple[str, ...] = ()  # narrow a scan to these ids (orch explain)
    dimension_cache: metrics.DimensionCache = field(default_factory=metrics.DimensionCache)
    metric_progress: Callable[[int, int], None] | None = None  # (read, wanted): the CLI's n/N
    fleet: Fleet | None = None  # None: AWS through ``clients``
    # False: no sweep record (`orch top` looks every few seconds; the healer's records, its
    # memory cadence and `orch status`'s "last sweep" stay the healer's).
    record_sweep: bool = True
    webhooks: WebhookSender = webhook.send_all  # tests pass one with a recorded sleep
    manual: ManualRequest | None = None  # a person's `orch reboot`: this one action instead of the plan
    # The lease every healer of the fleet sees whatever its store; None with AWS clients:
    # Parameter Store in the fleet's account and region (state/ssm_lease.py).
    shared_lease: LeaseStore | None = None

    def __post_init__(self) -> None:
        if self.fleet is None:
            if self.clients is None:
                raise ValueError("a sweep needs AWS clients or a fleet")
            self.fleet = AwsFleet(
                self.clients, self.clock, self.prober, self.progress, self.only_instances, self.dimension_cache, self.time_left,
                self.metric_progress,
            )
            if self.shared_lease is None:
                self.shared_lease = SsmLeases(self.clients.client("ssm"))

    @property
    def the_fleet(self) -> Fleet:
        assert self.fleet is not None
        return self.fleet


@dataclass
class SweepReport:
    sweep_id: str
    mode: Mode
    dry_run: bool
    started_at: datetime
    facts: list[Facts] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    plan: Plan = field(default_factory=Plan)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    metrics_requested: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    partial: bool = False
    finished_at: datetime | None = None
    sweep_number: int = 0  # counts sweeps in this store, for the memory cadence
    memory_full_read: bool = True
    evidence: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # instance -> summary, as the fleet captured it
    histories: dict[str, InstanceHistory] = field(default_factory=dict)  # after this sweep
    patterns: list[ChronicPattern] = field(default_factory=list)  # chronic conditions, grouped
    message: tuple[str, str] | None = None  # what was told (subject, body), if anything
    record_error: str | None = None  # the store failed after actions ran: they are in this report only
    deliveries: list[webhook.Delivery] = field(default_factory=list)  # what each webhook target made of the news
    manual: ManualRequest | None = None  # a person's `orch reboot` / `orch stop-start`

    @property
    def delivery_failed(self) -> bool:
        return any(not d.delivered for d in self.deliveries)

    @property
    def timer(self) -> _Timer:
        return _Timer(self.timings)

    def verdict_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(v.kind.value for v in self.verdicts).items()))

    def summary(self) -> dict[str, Any]:
        """The JSON shape shared by `orch heal --output json` and the Lambda's return value."""
        outcome_by_id = {o.action.instance_id: o for o in self.outcomes}
        return {
            "sweep_id": self.sweep_id,
            "mode": self.mode.value,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "partial": self.partial,
            "record_error": self.record_error,
            "instances": len(self.facts),
            "verdicts": self.verdict_counts(),
            "actions": [
                {
                    "instance_id": a.instance_id,
                    "action": a.kind.value,
                    "reason": a.reason,
                    "outcome": outcome_by_id[a.instance_id].status.value if a.instance_id in outcome_by_id else "not-run",
                    "detail": outcome_by_id[a.instance_id].detail if a.instance_id in outcome_by_id else "",
                    "evidence": self.evidence.get(a.instance_id),
                }
                for a in self.plan.actions
            ],
            "blocked": [
                {"instance_id": b.instance_id, "action": b.kind.value, "why": b.why, "rule": b.rule.value} for b in self.plan.blocked
            ],
            "chronic": [
                {"instances": list(p.members), "shared": dict(p.shared), "since": p.since.isoformat(), "text": p.describe(False)}
                for p in self.patterns
            ],
            "quarantined": {i: h.quarantine_reason for i, h in sorted(self.histories.items()) if h.quarantined_at is not None},
            "notes": list(self.plan.notes) + self.notes,
            "manual": None
            if self.manual is None
            else {
                "instance_id": self.manual.instance_id,
                "action": self.manual.kind.value,
                "requested_by": self.manual.requested_by,
                "force_reason": self.manual.force_reason,
            },
            "notified": {"subject": self.message[0] if self.message else None, "webhooks": [d.as_dict() for d in self.deliveries]},
            "api_calls": self.api_calls,
            "api_calls_total": sum(self.api_calls.values()),
            "metrics_requested": self.metrics_requested,
            "memory_full_read": self.memory_full_read,
            "sweep_number": self.sweep_number,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass
class _Timer:
    timings: dict[str, float]

    def __call__(self, name: str) -> "_Phase":
        return _Phase(self.timings, name)


@dataclass
class _Phase:
    timings: dict[str, float]
    name: str
    start: float = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.start


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


def _record_told(settings: Settings, deps: SweepDeps, report: SweepReport) -> None:
    """The sweep record again, now with what was told (``notified``); the first one already holds what was done."""
    try:
        _record_sweep(settings, deps, report)
    except StateError as exc:
        report.notes.append(f"what was told could not be added to the sweep record ({exc}); the record of what was done stands")


@dataclass(frozen=True)
class _News:
    """What to tell (``_news``) and what was already told (the book it was decided against)."""

    book: AlertBook
    decision: alerts.Decision
    message: tuple[str, str] | None
    now: datetime


def _news(settings: Settings, deps: SweepDeps, report: SweepReport, scope: str) -> _News | None:
    """Decide what is news (see ``alerts``): the store is read, nothing outside is called, nothing raises."""
    config = settings.notify
    if not (config.topic_arn or config.webhooks) or report.mode is Mode.SCAN or not deps.notify:
        return None
    try:
        book = deps.store.get_alerts(scope)
    except StateError as exc:
        book = AlertBook(scope)  # better to tell twice than to miss the breaker opening
        report.notes.append(f"what was told before could not be read ({exc}): everything current is told")
    state = alerts.AlertState.from_book(book)
    chronic_ids = frozenset(i for p in report.patterns for i in p.members)
    quarantined = {i: h.quarantine_reason for i, h in report.histories.items() if h.quarantined_at is not None}
    found = alerts.items(
        report.plan,
        report.outcomes,
        report.patterns,
        chronic_ids,
        quarantined,
        notify.action_lines(report),
        ssm_configured=bool(settings.memory.ssm_commands),
        dry_run=report.dry_run,
    )
    now = deps.clock()
    # A person's single action saw the whole fleet but planned for one instance: what it
    # did not plan for has not ended (the breaker stays open), so nothing else is settled.
    decision = alerts.decide(found, state, now, timedelta(hours=config.remind_hours), complete=deps.manual is None)
    return _News(book, decision, notify.compose(report, decision), now)


def _tell(settings: Settings, deps: SweepDeps, report: SweepReport, scope: str) -> bool:
    """Tell the news; what was told is remembered only once it was sent. Never raises; True when anything was told or tried.

    Runs after the sweep record and the lease release (so a second sweep may, in that
    moment, tell the same news again: better twice than lost). SNS first, then each webhook on
    its own, each bounded as a whole (``webhook``): a failed webhook never keeps SNS from
    being told; it is a note, a line in the summary's ``notified.webhooks`` (added to the
    sweep record) and exit 1. What was told is remembered when at least one channel took
    it (a webhook that stays broken must not make SNS repeat itself every sweep); when
    none did, everything is told again next sweep. Anything unforeseen on the way is a
    note: the actions are recorded already and must not be reported as a crash.
    """
    try:
        news = _news(settings, deps, report, scope)
        if news is None:
            return False
        _tell_channels(settings, deps, report, news, scope)
    except Exception as exc:  # noqa: BLE001 - the record of what was done is written; telling must not undo the report
        log.warning("telling the news failed: %s", type(exc).__name__, exc_info=False)
        report.notes.append(f"the news could not be told ({type(exc).__name__}); it is told again next sweep")
    return True


def _tell_channels(settings: Settings, deps: SweepDeps, report: SweepReport, news: _News, scope: str) -> None:
    config = settings.notify
    message, decision, now, book = news.message, news.decision, news.now, news.book
    if message is not None:
        told = False
        done = sum(1 for o in report.outcomes if o.status is OutcomeStatus.DONE)
        counts = {"instances": len(report.facts), "healed": done, "blocked": len(report.plan.blocked)}
        doc = alert_formats.document(*message, decision, report.sweep_id, now, scope, report.dry_run, counts)
        if config.topic_arn:
            chatbot = alert_formats.chatbot_notification(doc) if config.chatbot else None
            error = deps.the_fleet.publish(config.topic_arn, notify.sns_message(*message, chatbot))
            if error is not None:
                report.notes.append(f"{error}; told again next sweep")
            else:
                told = True
                report.message = message
                report.notes.append(f"notified {config.topic_arn}")
        if config.webhooks:
            told = _tell_webhooks(settings, deps, report, doc) or told
        if not told:
            if config.webhooks and not config.topic_arn:
                report.notes.append("no webhook took the news: told again next sweep")
            return
    new_book = decision.state.to_book(scope)
    if new_book != book:
        try:
            deps.store.put_alerts(new_book)
        except StateError as exc:
            report.notes.append(f"what was told could not be recorded ({exc}): it may be told again")


def _tell_webhooks(settings: Settings, deps: SweepDeps, report: SweepReport, doc: alert_formats.AlertDocument) -> bool:
    """True when at least one webhook target took the news (or had nothing to say: PagerDuty pages conditions only)."""
    config = settings.notify
    total = config.webhook_total_seconds
    if deps.time_left is not None:  # a Lambda: the webhooks share what is left, the record keeps its margin
        total = min(total, max(1.0, (deps.time_left() - WEBHOOK_DEADLINE_MARGIN_S) / len(config.webhooks)))
    policy = webhook.Policy(config.webhook_timeout_seconds, total, config.webhook_attempts)
    report.deliveries = deps.webhooks(config.webhooks, doc, policy)
    for delivery in report.deliveries:
        if delivery.delivered:
            report.notes.append(f"notified webhook {delivery.target} ({delivery.attempts} attempt(s))")
        else:
            report.notes.append(f"webhook {delivery.target} not delivered: {delivery.error}")
    return not report.deliveries or any(d.delivered for d in report.deliveries)


def _record_sweep(settings: Settings, deps: SweepDeps, report: SweepReport) -> None:
    mode = "dry-run" if report.dry_run and report.mode is Mode.HEAL else report.mode.value
    deps.store.put_sweep(
        SweepRecord(
            sweep_id=report.sweep_id,
            started_at=report.started_at,
            mode=mode,
            scope=",".join(f"{k}={v}" for k, v in sorted(settings.selector.items())),
            finished_at=report.finished_at,
            partial=report.partial,
            summary=fit_sweep_summary(report.summary()),
        )
    )


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
    if not dry and report.plan.actions and deps.confirm is not None and not deps.confirm(report.plan):
        report.outcomes = [ActionOutcome(a, OutcomeStatus.SKIPPED, "not confirmed") for a in report.plan.actions]
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


TAKEN_OR_FAILED = frozenset({OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN, OutcomeStatus.FAILED})
ACTED = frozenset({OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN})  # AWS may have changed the instance


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


@dataclass
class RecordingJournal:
    """The executor's journal, with each action's history written the moment its outcome is known.

    A process can die between any two lines: the intent is written before the call, the
    outcome and the history right after it, so at most the outcome of the one action in
    flight is unknown, and the next sweep recovers it (``recover_intents``). When the
    store stops taking records, no new action is started (``broken`` is what the gate
    asks) and every outcome stays in the sweep's report, so what was done is still said.
    """

    inner: StoreJournal
    book: HistoryBook
    acted: Callable[[ActionOutcome, str], Callable[[InstanceHistory], InstanceHistory]]
    broken: str | None = None

    @property
    def keys(self) -> dict[str, str]:
        return self.inner.keys

    def begin(self, action: Action, evidence: dict[str, Any]) -> str | None:
        if self.broken:
            return f"the state store stopped taking records ({self.broken}): not started"
        try:
            return self.inner.begin(action, evidence)
        except StateError as exc:
            self.broken = str(exc)
            return f"its intent could not be recorded ({exc}): not started"

    def finish(self, outcome: ActionOutcome) -> None:
        iid = outcome.action.instance_id
        try:
            self.inner.finish(outcome)
        except StateError as exc:
            self.broken = self.broken or str(exc)
        key = self.inner.keys.get(iid)
        if key is None:
            return
        self.book.fold(iid, self.acted(outcome, key))
        try:
            self.book.write([iid])
        except StateError as exc:
            self.broken = self.broken or str(exc)


def recover_intents(
    store: StateStore, book: HistoryBook, facts: list[Facts], sweep_id: str, now: datetime, settings: Settings
) -> list[str]:
    """Actions of this fleet that a sweep recorded but whose history it never wrote (it died).

    An intent with no outcome is an action possibly taken at its time: recorded as such
    and folded in flight. An outcome recorded whose history write was lost is folded in
    too. Only this fleet's instances: another VPC's sweep on the same store may be acting
    right now; this fleet's own sweeps cannot be, since this one holds its lease.
    """
    ours = {f.instance.instance_id for f in facts}
    records = [
        r
        for r in store.actions_since(now - history_step.retention(settings))
        if r.instance_id in ours and r.sweep_id != sweep_id and r.status in (ActionStatus.INTENT, ActionStatus.DONE)
    ]
    missing = [r for r in records if all(a.key != r.key for a in book.get(r.instance_id).actions)]
    dangling = [r for r in records if r.status is ActionStatus.INTENT]
    for record in missing:
        book.fold(record.instance_id, functools.partial(history_step.recovered, key=record.key, kind=record.action, at=record.created_at))
    book.write(r.instance_id for r in missing)
    for record in dangling:
        store.update_action(
            record.key,
            ActionStatus.DONE,
            now,
            f"uncertain: sweep {record.sweep_id} ended before recording an outcome; sweep {sweep_id} treats it as taken at "
            f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC (in flight, counted by the budgets, verified on a later sweep)",
        )
    notes = []
    if dangling:
        which = ", ".join(f"{r.action.value} of {r.instance_id} at {r.created_at:%H:%M:%S} UTC" for r in dangling[:10])
        notes.append(f"recovered {len(dangling)} action(s) whose sweep ended before recording an outcome ({which}): treated as taken then")
    lost = [r for r in missing if r.status is ActionStatus.DONE]
    if lost:
        which = ", ".join(f"{r.action.value} of {r.instance_id}" for r in lost[:10])
        notes.append(f"{len(lost)} action(s) recorded done were missing from their instance's history ({which}): added")
    return notes


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
    conditions = {iid: c for iid, h in histories.items() if (c := history_step.chronic(h, now, settings)) is not None}
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
