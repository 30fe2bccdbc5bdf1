"""The sweep's fleet on AWS: facts from EC2, CloudWatch and the SSH prober; actions through EC2.

``sweep`` asks a ``Fleet`` for facts and for an executor, and nothing else about where
they come from; this is the one the CLI and the Lambda use. The simulator
(``orchestrator.simulate``) offers the same four things over simulated time, so a
policy is judged by the very code that runs in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from orchestrator.act.drain import DrainPolicy
from orchestrator.act.evidence import EvidenceCollector
from orchestrator.act.executor import AwsExecutor, Executor, Gate, Journal
from orchestrator.alerting import notify
from orchestrator.aws import AWS_CALL_ERRORS, Clients, describe_aws_error
from orchestrator.config import Settings
from orchestrator.decide import reads
from orchestrator.decide.plan import MEMORY_TROUBLE, actionable
from orchestrator.model import (
    ActionKind,
    ConsoleEvidence,
    Facts,
    Instance,
    InstanceHistory,
    MemorySeries,
    ProbeOutcome,
    ProbeResult,
    Verdict,
    VerdictKind,
)
from orchestrator.observe import asg, inventory, metrics, ssm, status, stoppable
from orchestrator.observe.console import evidence_of, read_console_output
from orchestrator.observe.probe import probe_fleet

if TYPE_CHECKING:
    from orchestrator.sweep.pipeline import SweepReport

Prober = Callable[..., dict[str, ProbeResult]]
Clock = Callable[[], datetime]
HistoryReader = Callable[[Iterable[str]], dict[str, InstanceHistory]]


class SweepAborted(Exception):
    """The sweep stopped before acting because a fact it needs could not be read."""


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


def _no_progress(message: str) -> None:
    return None


@dataclass
class AwsFleet:
    """Facts and effects through boto3 clients; every AWS error before acting aborts the sweep."""

    clients: Clients
    clock: Clock
    prober: Prober = probe_fleet
    progress: Callable[[str], None] = _no_progress
    only_instances: tuple[str, ...] = ()
    dimension_cache: metrics.DimensionCache = field(default_factory=metrics.DimensionCache)
    time_left: Callable[[], float] | None = None  # seconds; a stop's waits are cut to fit it
    metric_progress: Callable[[int, int], None] | None = None  # (read, wanted): the CLI's n/N

    @property
    def region(self) -> str | None:
        return self.clients.region

    def api_calls(self) -> Mapping[str, int]:
        return self.clients.counter.snapshot()

    def observe(
        self, settings: Settings, histories_of: HistoryReader, report: SweepReport, now: datetime
    ) -> tuple[list[Facts], dict[str, InstanceHistory]]:
        """Read every fact the decision needs, or raise SweepAborted: never plan on partial facts."""
        timer = report.timer
        clients = self.clients
        try:
            with timer("aws"):
                self.progress("listing instances")
                instances = inventory.list_instances(clients.ec2, settings.selector, self.only_instances, vpc_id=settings.vpc_id)
                running = [i for i in instances if i.state == "running"]
                self.progress(f"reading status checks of {len(running)} running instances")
                checks = status.read_status_checks(clients.ec2, (i.instance_id for i in running))
        except AWS_CALL_ERRORS as exc:
            raise SweepAborted(describe_aws_error(exc)) from exc
        targets = {
            i.instance_id: (i.private_ip if settings.probe.address == "private" else i.public_ip) for i in running
        }
        self.progress(f"probing SSH on {len(targets)} instances")
        with timer("probe"):
            probes = self.prober(targets, settings.probe, clock=self.clock) if targets else {}
        histories = histories_of(i.instance_id for i in instances)
        wanted = memory_targets(running, probes, histories, report.memory_full_read)
        try:
            with timer("aws"):
                self.progress(f"reading memory metrics of {len(wanted)} instances")
                reader = metrics.MemoryReader(
                    clients.cloudwatch,
                    settings.memory.namespace,
                    settings.memory.metric,
                    window=timedelta(minutes=settings.memory.window_minutes),
                    period_seconds=settings.memory.period_seconds,
                    cache=self.dimension_cache,
                    progress=self.metric_progress,
                )
                memory: dict[str, MemorySeries] = dict(reader.read(wanted, now)) if wanted else {}
                report.metrics_requested = reader.metrics_requested
                back = reads.history_targets(running, checks, probes, memory, settings)
                if back:
                    self.progress(f"reading {settings.memory.history_hours:g} h of memory for {len(back)} silent suspects")
                    deeper = replace(reader, window=timedelta(hours=settings.memory.history_hours), progress=None, metrics_requested=0)
                    memory.update(deeper.read(back, now))
                    report.metrics_requested += deeper.metrics_requested
        except AWS_CALL_ERRORS as exc:
            raise SweepAborted(describe_aws_error(exc)) from exc
        consoles = self._consoles(reads.console_targets(running, checks, probes, histories, now, settings), now)
        facts = [
            Facts(
                instance=i,
                status=checks.get(i.instance_id),
                probe=probes.get(i.instance_id),
                memory=memory.get(i.instance_id),
                console=consoles.get(i.instance_id) or reads.episode_console(probes.get(i.instance_id), histories.get(i.instance_id)),
            )
            for i in instances
        ]
        return facts, histories

    def _consoles(self, ids: list[str], now: datetime) -> dict[str, ConsoleEvidence]:
        """The console of each unreachable suspect, before the plan: it comes through the hypervisor,
        so an OOM kill there is the box's own cause whatever the network does. Errors are evidence
        that could not be read, never a reason to abort."""
        if ids:
            self.progress(f"reading the console of {len(ids)} unreachable instances")
        return {iid: evidence_of(read_console_output(self.clients.ec2, iid), now) for iid in ids}

    def enrich(
        self, facts: list[Facts], verdicts: list[Verdict], settings: Settings, also_stoppable: frozenset[str] = frozenset()
    ) -> list[Facts]:
        """Facts only suspects need, so a healthy fleet costs no call here.

        Auto Scaling lifecycle state for group members (an instance in Standby or
        Terminating is in someone else's hands); whether SSM can reach a memory suspect
        when an SSM command may be the action (memory.proactive = ssm, or a chronic
        instance with memory.ssm_commands); and, for unreachable standalone instances
        when stop/start is on the ladder, what decides whether they may be stopped
        (orchestrator.observe.stoppable, orchestrator.decide.rungs); ``also_stoppable`` names more
        instances to read that for (a person's `orch stop-start`).
        """
        wanted = actionable(settings)
        suspects = {v.instance_id for v in verdicts if v.kind in wanted}
        members = [f.instance.instance_id for f in facts if f.instance.instance_id in suspects and f.instance.asg_name]
        commands = settings.memory.proactive == "ssm" or bool(settings.memory.ssm_commands and settings.chronic.action != "off")
        memory_suspects = [v.instance_id for v in verdicts if v.kind in MEMORY_TROUBLE] if commands else []
        stoppable_suspects = _may_stop(facts, verdicts, settings, also_stoppable)
        if not members and not memory_suspects and not stoppable_suspects:
            return facts
        try:
            states = asg.lifecycle_states(self.clients.autoscaling, members) if members else {}
            online = ssm.agents_online(self.clients.client("ssm"), memory_suspects) if memory_suspects else {}
            spot_ids = {f.instance.spot_request_id for f in stoppable_suspects if f.instance.spot_request_id}
            spot_types = stoppable.spot_request_types(self.clients.ec2, spot_ids) if spot_ids else {}
            types = {f.instance.instance_type for f in stoppable_suspects if f.instance.instance_type}
            storage = stoppable.instance_storage(self.clients.ec2, types) if types else {}
        except AWS_CALL_ERRORS as exc:
            raise SweepAborted(describe_aws_error(exc)) from exc
        may_stop = {f.instance.instance_id for f in stoppable_suspects}
        enriched = []
        for f in facts:
            iid = f.instance.instance_id
            if iid in members:
                f = replace(f, lifecycle_state=states.get(iid, "not in a group"))
            if iid in online:
                f = replace(f, ssm_online=online[iid])
            if iid in may_stop:
                f = replace(
                    f,
                    spot_request_type=spot_types.get(f.instance.spot_request_id or ""),
                    instance_storage=storage.get(f.instance.instance_type or ""),
                )
            enriched.append(f)
        return enriched

    def executor(
        self,
        settings: Settings,
        journal: Journal,
        gate: Gate,
        facts: Mapping[str, Facts],
        verdicts: Mapping[str, Verdict],
        report: SweepReport,
    ) -> Executor:
        collector = EvidenceCollector(
            self.clients, settings.evidence, facts, verdicts, report.sweep_id, self.clock, memory_namespace=settings.memory.namespace
        )
        report.evidence = collector.captured
        return AwsExecutor(
            self.clients,
            journal,
            gate=gate,
            capture_evidence=collector,
            stop_wait_seconds=settings.safety.stop_wait_seconds,
            ssm_document=settings.memory.ssm_document,
            ssm_commands=settings.memory.ssm_commands,
            diagnostic_interrupt=settings.evidence.diagnostic_interrupt,
            time_left=self.time_left,
            drain_policy=DrainPolicy(max_drain_seconds=settings.safety.drain_seconds) if settings.safety.drain_seconds else None,
            verify=self._answers(settings, facts),
        )

    def _answers(self, settings: Settings, facts: Mapping[str, Facts]) -> Callable[[str], bool]:
        """After a drained reboot: does the instance's sshd answer again? One probe, as the sweep probes."""

        def answers(instance_id: str) -> bool:
            found = facts.get(instance_id)
            if found is None:
                return False
            i = found.instance
            target = i.private_ip if settings.probe.address == "private" else i.public_ip
            result = self.prober({instance_id: target}, settings.probe, clock=self.clock).get(instance_id)
            return result is not None and result.outcome is ProbeOutcome.OK

        return answers

    def publish(self, topic_arn: str, message: notify.SnsMessage) -> str | None:
        return notify.publish(self.clients.client("sns"), topic_arn, message)


def _may_stop(facts: list[Facts], verdicts: list[Verdict], settings: Settings, also: frozenset[str] = frozenset()) -> list[Facts]:
    """Unreachable standalone suspects the ladder could stop (not members: they are replaced), and ``also``."""
    unreachable = {v.instance_id for v in verdicts if v.kind is VerdictKind.UNREACHABLE}
    wanted = (unreachable if ActionKind.STOP_START in settings.safety.ladder else set()) | also
    return [
        f
        for f in facts
        if f.instance.instance_id in wanted and not f.instance.asg_name and f.instance.root_device_type != "instance-store"
    ]
