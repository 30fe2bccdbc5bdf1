"""The sweep's fleet on AWS: facts from EC2, CloudWatch and the SSH prober; actions through EC2.

``sweep`` asks a ``Fleet`` for facts and for an executor, and nothing else about where
they come from; this is the one the CLI and the Lambda use. The simulator
(``orchestrator.simulate``) offers the same four things over simulated time, so a
policy is judged by the very code that runs in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from orchestrator.act.drain import DrainPolicy
from orchestrator.act.evidence import EvidenceCollector
from orchestrator.act.executor import AwsExecutor, Gate, Journal
from orchestrator.alerting import notify
from orchestrator.aws import AWS_CALL_ERRORS, Clients, describe_aws_error
from orchestrator.config import Settings
from orchestrator.decide.suspects import Suspects, console_targets, episode_console, history_targets, memory_targets
from orchestrator.model import (
    ConsoleEvidence,
    Facts,
    InstanceHistory,
    MemorySeries,
    ProbeOutcome,
    ProbeResult,
    Verdict,
)
from orchestrator.observe import asg, inventory, metrics, ssm, status, stoppable
from orchestrator.observe.console import evidence_of, read_console_output
from orchestrator.observe.probe import probe_fleet
from orchestrator.sweep.results import Acting, Observation, phase

Prober = Callable[..., dict[str, ProbeResult]]
Clock = Callable[[], datetime]
HistoryReader = Callable[[Iterable[str]], dict[str, InstanceHistory]]


class SweepAborted(Exception):
    """The sweep stopped before acting because a fact it needs could not be read."""


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

    def observe(self, settings: Settings, histories_of: HistoryReader, now: datetime, memory_full_read: bool) -> Observation:
        """Read every fact the decision needs, or raise SweepAborted: never plan on partial facts."""
        timings: dict[str, float] = {}
        clients = self.clients
        try:
            with phase(timings, "aws"):
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
        with phase(timings, "probe"):
            probes = self.prober(targets, settings.probe, clock=self.clock) if targets else {}
        histories = histories_of(i.instance_id for i in instances)
        wanted = memory_targets(running, probes, histories, memory_full_read)
        try:
            with phase(timings, "aws"):
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
                requested = reader.metrics_requested
                back = history_targets(running, checks, probes, memory, settings)
                if back:
                    self.progress(f"reading {settings.memory.history_hours:g} h of memory for {len(back)} silent suspects")
                    deeper = replace(reader, window=timedelta(hours=settings.memory.history_hours), progress=None, metrics_requested=0)
                    memory.update(deeper.read(back, now))
                    requested += deeper.metrics_requested
        except AWS_CALL_ERRORS as exc:
            raise SweepAborted(describe_aws_error(exc)) from exc
        consoles = self._consoles(console_targets(running, checks, probes, histories, now, settings), now)
        facts = [
            Facts(
                instance=i,
                status=checks.get(i.instance_id),
                probe=probes.get(i.instance_id),
                memory=memory.get(i.instance_id),
                console=consoles.get(i.instance_id) or episode_console(probes.get(i.instance_id), histories.get(i.instance_id)),
            )
            for i in instances
        ]
        return Observation(facts, histories, requested, timings)

    def _consoles(self, ids: list[str], now: datetime) -> dict[str, ConsoleEvidence]:
        """The console of each unreachable suspect, before the plan: it comes through the hypervisor,
        so an OOM kill there is the box's own cause whatever the network does. Errors are evidence
        that could not be read, never a reason to abort."""
        if ids:
            self.progress(f"reading the console of {len(ids)} unreachable instances")
        return {iid: evidence_of(read_console_output(self.clients.ec2, iid), now) for iid in ids}

    def enrich(self, facts: list[Facts], suspects: Suspects) -> list[Facts]:
        """Read the facts ``decide.suspects`` chose, so a healthy fleet costs no call here.

        Auto Scaling lifecycle state for the group members chosen; whether SSM can reach
        the memory suspects chosen; the spot request type and instance storage of the
        instances that may be stopped (orchestrator.observe.stoppable, orchestrator.decide.rungs).
        """
        if not suspects:
            return facts
        members = sorted(suspects.lifecycle)
        may_stop = [f.instance for f in facts if f.instance.instance_id in suspects.stoppable]
        try:
            states = asg.lifecycle_states(self.clients.autoscaling, members) if members else {}
            online = ssm.agents_online(self.clients.client("ssm"), sorted(suspects.ssm_reach)) if suspects.ssm_reach else {}
            spot_ids = {i.spot_request_id for i in may_stop if i.spot_request_id}
            spot_types = stoppable.spot_request_types(self.clients.ec2, spot_ids) if spot_ids else {}
            types = {i.instance_type for i in may_stop if i.instance_type}
            storage = stoppable.instance_storage(self.clients.ec2, types) if types else {}
        except AWS_CALL_ERRORS as exc:
            raise SweepAborted(describe_aws_error(exc)) from exc
        enriched = []
        for f in facts:
            iid = f.instance.instance_id
            if iid in suspects.lifecycle:
                f = replace(f, lifecycle_state=states.get(iid, "not in a group"))
            if iid in online:
                f = replace(f, ssm_online=online[iid])
            if iid in suspects.stoppable:
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
        sweep_id: str,
    ) -> Acting:
        collector = EvidenceCollector(
            self.clients, settings.evidence, facts, verdicts, sweep_id, self.clock, memory_namespace=settings.memory.namespace
        )
        executor = AwsExecutor(
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
        return Acting(executor, MappingProxyType(collector.captured))

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

