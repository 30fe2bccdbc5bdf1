"""One sweep: observe -> diagnose -> plan -> act -> record.

The CLI and the Lambda handlers are thin shells over ``sweep``. Its dependencies
(clients, store, clock, prober, executor choice) are injected, so tests drive the very
same function against moto, a sandbox fleet or a real sshd.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import diagnose as diagnose_step
from orchestrator import history as history_step
from orchestrator import notify
from orchestrator.act.evidence import EvidenceCollector
from orchestrator.act.executor import AwsExecutor, DryRunExecutor, Executor
from orchestrator.aws import Clients, describe_aws_error
from orchestrator.config import Settings
from orchestrator.model import (
    ActionOutcome,
    Facts,
    Instance,
    InstanceHistory,
    MemorySeries,
    OutcomeStatus,
    Plan,
    ProbeResult,
    Verdict,
    VerdictKind,
)
from orchestrator.observe import asg, inventory, metrics, ssm, status
from orchestrator.observe.probe import probe_fleet
from orchestrator.plan import MEMORY_TROUBLE, actionable, make_plan
from orchestrator.state import lease_scope
from orchestrator.state.journal import StoreJournal
from orchestrator.state.lease import LeaseKeeper
from orchestrator.state.store import LeaseLost, StateStore, SweepRecord

Prober = Callable[..., dict[str, ProbeResult]]
Clock = Callable[[], datetime]


class Mode(str, enum.Enum):
    SCAN = "scan"  # observe and diagnose only; never plans an action
    HEAL = "heal"


class SweepAborted(Exception):
    """The sweep stopped before acting because a fact it needs could not be read."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _no_progress(message: str) -> None:
    return None


@dataclass
class SweepDeps:
    clients: Clients
    store: StateStore
    clock: Clock = utcnow
    prober: Prober = probe_fleet
    progress: Callable[[str], None] = _no_progress
    time_left: Callable[[], float] | None = None  # seconds; a Lambda passes its context's
    confirm: Callable[[Plan], bool] | None = None  # asked before acting, e.g. on a terminal
    lease_wait_seconds: float = 0.0  # how long to wait for another sweep's lease
    only_instances: tuple[str, ...] = ()  # narrow a scan to these ids (orch explain)
    dimension_cache: metrics.DimensionCache = field(default_factory=metrics.DimensionCache)
    metric_progress: Callable[[int, int], None] | None = None  # (read, wanted): the CLI's n/N


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
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> summary

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
            "blocked": [{"instance_id": b.instance_id, "action": b.kind.value, "why": b.why} for b in self.plan.blocked],
            "notes": list(self.plan.notes) + self.notes,
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


MEMORY_SUSPECTS = frozenset(
    {VerdictKind.UNREACHABLE, VerdictKind.MEMORY_CRITICAL, VerdictKind.MEMORY_FORECAST, VerdictKind.METRICS_STALE}
)


def memory_targets(
    running: list[Instance],
    probes: Mapping[str, ProbeResult],
    histories: Mapping[str, InstanceHistory],
    full: bool,
) -> list[str]:
    """Whose memory to read: everyone on a full sweep, else only the suspects.

    GetMetricData is billed per metric requested; at 10,000 instances every 5 minutes a
    full read costs about $860 a month. Suspects (a failed probe now, or a memory or
    reachability verdict last time) are read every sweep, so what matters is never late.
    """
    if full:
        return [i.instance_id for i in running]
    chosen = []
    for inst in running:
        probe = probes.get(inst.instance_id)
        history = histories.get(inst.instance_id)
        if (probe is not None and probe.outcome.is_failure) or (history is not None and history.last_verdict in MEMORY_SUSPECTS):
            chosen.append(inst.instance_id)
    return chosen


def observe(settings: Settings, deps: SweepDeps, report: SweepReport, now: datetime) -> tuple[list[Facts], dict[str, InstanceHistory]]:
    """Read every fact the decision needs, or raise SweepAborted: never plan on partial facts."""
    timer = _Timer(report.timings)
    clients = deps.clients
    try:
        with timer("aws"):
            deps.progress("listing instances")
            instances = inventory.list_instances(clients.ec2, settings.selector, deps.only_instances)
            running = [i for i in instances if i.state == "running"]
            deps.progress(f"reading status checks of {len(running)} running instances")
            checks = status.read_status_checks(clients.ec2, (i.instance_id for i in running))
    except (ClientError, BotoCoreError) as exc:
        raise SweepAborted(describe_aws_error(exc)) from exc
    targets = {
        i.instance_id: (i.private_ip if settings.probe.address == "private" else i.public_ip) for i in running
    }
    deps.progress(f"probing SSH on {len(targets)} instances")
    with timer("probe"):
        probes = deps.prober(targets, settings.probe, clock=deps.clock) if targets else {}
    histories = deps.store.get_histories(i.instance_id for i in instances)
    wanted = memory_targets(running, probes, histories, report.memory_full_read)
    try:
        with timer("aws"):
            deps.progress(f"reading memory metrics of {len(wanted)} instances")
            reader = metrics.MemoryReader(
                clients.cloudwatch,
                settings.memory.namespace,
                settings.memory.metric,
                window=timedelta(minutes=settings.memory.window_minutes),
                period_seconds=settings.memory.period_seconds,
                cache=deps.dimension_cache,
                progress=deps.metric_progress,
            )
            memory: Mapping[str, MemorySeries] = reader.read(wanted, now) if wanted else {}
            report.metrics_requested = reader.metrics_requested
    except (ClientError, BotoCoreError) as exc:
        raise SweepAborted(describe_aws_error(exc)) from exc
    facts = [
        Facts(
            instance=i,
            status=checks.get(i.instance_id),
            probe=probes.get(i.instance_id),
            memory=memory.get(i.instance_id),
        )
        for i in instances
    ]
    return facts, histories


def sweep(settings: Settings, deps: SweepDeps, mode: Mode = Mode.HEAL, dry_run: bool | None = None) -> SweepReport:
    """Run one sweep; raises SweepAborted, LeaseHeld or StateError without having acted."""
    dry = settings.dry_run if dry_run is None else dry_run
    started = deps.clock()
    report = SweepReport(sweep_id=uuid.uuid4().hex[:12], mode=mode, dry_run=dry, started_at=started)
    counted_from = dict(deps.clients.counter.snapshot())
    every = settings.memory.full_read_every
    if every > 1:
        last = deps.store.list_sweeps(1)
        report.sweep_number = int(last[0].summary.get("sweep_number", 0)) + 1 if last else 1
        report.memory_full_read = report.sweep_number % every == 1

    keeper: LeaseKeeper | None = None
    if mode is Mode.HEAL and not dry:
        # One healer per fleet at a time (gardener mcm-provider-aws #94): taken before
        # observing, so two sweeps never plan on the same facts, and checked before
        # every mutation in case it expired while we worked.
        scope = lease_scope("-", deps.clients.region or "-", settings.selector)
        keeper = LeaseKeeper(deps.store, scope, clock=deps.clock, wait_seconds=deps.lease_wait_seconds)
        keeper.acquire()
    try:
        _run(settings, deps, report, mode, dry, keeper)
    except SweepAborted as exc:
        report.notes.append(f"aborted: {exc}")
        raise
    finally:
        _notify(settings, deps, report)
        report.finished_at = deps.clock()
        report.api_calls = _diff(deps.clients.counter.snapshot(), counted_from)
        _record_sweep(settings, deps, report)
        if keeper is not None:
            keeper.release()
    return report


def _notify(settings: Settings, deps: SweepDeps, report: SweepReport) -> None:
    if not settings.notify.topic_arn or report.mode is Mode.SCAN:
        return
    message = notify.compose(report)
    if message is None:
        return
    error = notify.publish(deps.clients.client("sns"), settings.notify.topic_arn, *message)
    report.notes.append(error or f"notified {settings.notify.topic_arn}")


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
            summary=report.summary(),
        )
    )


def _run(settings: Settings, deps: SweepDeps, report: SweepReport, mode: Mode, dry: bool, keeper: LeaseKeeper | None) -> None:
    facts, previous = observe(settings, deps, report, report.started_at)
    now = deps.clock()
    timer = _Timer(report.timings)
    with timer("decide"):
        report.facts = facts
        report.verdicts = diagnose_step.diagnose_all(facts, now, settings)
    if mode is Mode.SCAN:
        return
    facts = _suspect_facts(facts, report.verdicts, settings, deps)
    report.facts = facts
    by_id = {f.instance.instance_id: f for f in facts}
    paused = deps.store.get_pause()
    with timer("decide"):
        histories = {
            v.instance_id: history_step.observe(
                previous.get(v.instance_id) or InstanceHistory(v.instance_id), by_id[v.instance_id], v, now, settings.safety
            )
            for v in report.verdicts
        }
        report.plan = make_plan(by_id, report.verdicts, histories, settings, now, paused=paused)
    journal = StoreJournal(deps.store, report.sweep_id, deps.clock)
    if not dry and report.plan.actions and deps.confirm is not None and not deps.confirm(report.plan):
        report.outcomes = [ActionOutcome(a, OutcomeStatus.SKIPPED, "not confirmed") for a in report.plan.actions]
        return
    executor: Executor
    if dry:
        executor = DryRunExecutor()
    else:
        verdicts = {v.instance_id: v for v in report.verdicts}
        collector = EvidenceCollector(deps.clients, settings.evidence, by_id, verdicts, report.sweep_id, deps.clock)
        report.evidence = collector.captured
        executor = AwsExecutor(
            deps.clients,
            journal,
            gate=_gate(deps, report, keeper),
            capture_evidence=collector,
            stop_wait_seconds=settings.safety.stop_wait_seconds,
            ssm_document=settings.memory.ssm_document,
            ssm_commands=settings.memory.ssm_commands,
            diagnostic_interrupt=settings.evidence.diagnostic_interrupt,
        )
    deps.progress(f"acting: {len(report.plan.actions)} action(s)")
    with timer("act"):
        report.outcomes = executor.execute(report.plan)
    if dry:
        return
    for outcome in report.outcomes:
        key = journal.keys.get(outcome.action.instance_id)
        if key is not None:
            iid = outcome.action.instance_id
            histories[iid] = history_step.acted(histories[iid], outcome, key, now)
    deps.store.put_histories(histories.values())


def _suspect_facts(facts: list[Facts], verdicts: list[Verdict], settings: Settings, deps: SweepDeps) -> list[Facts]:
    """Facts only suspects need, so a healthy fleet costs no call here.

    Auto Scaling lifecycle state for group members (an instance in Standby or
    Terminating is in someone else's hands), and whether SSM can reach a memory
    suspect when the proactive action is an SSM command.
    """
    wanted = actionable(settings)
    suspects = {v.instance_id for v in verdicts if v.kind in wanted}
    members = [f.instance.instance_id for f in facts if f.instance.instance_id in suspects and f.instance.asg_name]
    memory_suspects = [v.instance_id for v in verdicts if v.kind in MEMORY_TROUBLE] if settings.memory.proactive == "ssm" else []
    if not members and not memory_suspects:
        return facts
    try:
        states = asg.lifecycle_states(deps.clients.autoscaling, members) if members else {}
        online = ssm.agents_online(deps.clients.client("ssm"), memory_suspects) if memory_suspects else {}
    except (ClientError, BotoCoreError) as exc:
        raise SweepAborted(describe_aws_error(exc)) from exc
    enriched = []
    for f in facts:
        iid = f.instance.instance_id
        if iid in members:
            f = replace(f, lifecycle_state=states.get(iid, "not in a group"))
        if iid in online:
            f = replace(f, ssm_online=online[iid])
        enriched.append(f)
    return enriched


def _gate(deps: SweepDeps, report: SweepReport, keeper: LeaseKeeper | None, margin_s: float = 30.0) -> Callable[[], str | None]:
    """Asked by the executor before each mutation: time left, lease still ours, not paused."""

    def gate() -> str | None:
        if deps.time_left is not None and deps.time_left() < margin_s:
            report.partial = True
            return f"less than {margin_s:.0f} s left before the deadline: no new action started"
        if keeper is not None:
            try:
                keeper.check()
            except LeaseLost as exc:
                report.partial = True
                return f"lease lost ({exc}): no new action started"
        paused = deps.store.get_pause()
        if paused is not None:
            return f"paused by {paused.by} while this sweep ran"
        return None

    return gate


def _diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
