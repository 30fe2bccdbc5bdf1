"""The sweep's ``Fleet`` over a simulated world: the same four things AWS offers, in simulated time.

``sweep`` cannot tell this from ``AwsFleet``: it gets the instances the selector picks,
status checks, probes with the real prober's schedule, the memory points that reached
CloudWatch (read for the same targets as on AWS), the suspects' extra facts, and an
executor that passes the same gate and journal before each action takes its effect on
the world. Probing takes simulated time, as it takes real time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Mapping

from orchestrator.act.evidence import bundle, summary
from orchestrator.act.executor import EvidenceCapture, Gate, Journal, admit
from orchestrator.alerting.notify import SnsMessage
from orchestrator.config import Settings
from orchestrator.decide.suspects import Suspects, console_targets, episode_console, history_targets, memory_targets
from orchestrator.model import Action, ActionOutcome, Facts, OutcomeStatus, Plan, Verdict
from orchestrator.observe.console import ConsoleRead, evidence_of
from orchestrator.simulate.world import World
from orchestrator.sweep.aws_fleet import HistoryReader
from orchestrator.sweep.results import Acting, Observation


@dataclass
class Published:
    at: datetime
    subject: str
    body: str


@dataclass
class SimFleet:
    world: World
    calls: Counter[str] = field(default_factory=Counter)
    published: list[Published] = field(default_factory=list)

    @property
    def region(self) -> str | None:
        return self.world.region

    def api_calls(self) -> Mapping[str, int]:
        return dict(self.calls)

    def observe(self, settings: Settings, histories_of: HistoryReader, now: datetime, memory_full_read: bool) -> Observation:
        world = self.world
        listed = [m for m in world.listed() if all(m.instance.tags.get(k) == v for k, v in settings.selector.items())]
        self.calls["ec2.DescribeInstances"] += 1 + len(listed) // 1000
        running = [m for m in listed if world.instance(m).state == "running"]
        self.calls["ec2.DescribeInstanceStatus"] += 1 + len(running) // 1000
        probes = {m.instance_id: world.probe(m, settings.probe) for m in running}
        if any(p.outcome.is_failure for p in probes.values()):
            world.clock.advance(settings.probe.retry_window + settings.probe.banner_timeout)
        else:
            world.clock.advance(1.0)
        histories = histories_of(m.instance_id for m in listed)
        wanted = set(memory_targets([world.instance(m) for m in running], probes, histories, memory_full_read))
        window = timedelta(minutes=settings.memory.window_minutes)
        requested = len(wanted)
        if wanted:
            self.calls["cloudwatch.GetMetricData"] += 1 + (len(wanted) - 1) // 500
        memory = {m.instance_id: world.memory(m, window) for m in running if m.instance_id in wanted}
        instances = [world.instance(m) for m in running]
        statuses = {m.instance_id: world.status(m) for m in running}
        back = history_targets(instances, statuses, probes, memory, settings)
        if back:
            self.calls["cloudwatch.GetMetricData"] += 1 + (len(back) - 1) // 500
            requested += len(back)
            deeper = timedelta(hours=settings.memory.history_hours)
            memory.update({iid: world.memory(world.machines[iid], deeper) for iid in back})
        consoles = {}
        for iid in console_targets(instances, statuses, probes, histories, now, settings):
            self.calls["ec2.GetConsoleOutput"] += 1
            read = ConsoleRead(world.console(world.machines[iid]), None, "latest", world.clock.now)
            consoles[iid] = evidence_of(read, world.clock.now)
        facts = [
            Facts(
                instance=world.instance(m),
                status=statuses.get(m.instance_id),
                probe=probes.get(m.instance_id),
                memory=memory.get(m.instance_id),
                console=consoles.get(m.instance_id) or episode_console(probes.get(m.instance_id), histories.get(m.instance_id)),
            )
            for m in listed
        ]
        return Observation(facts, histories, metrics_requested=requested)

    def enrich(self, facts: list[Facts], suspects: Suspects) -> list[Facts]:
        """The facts ``decide.suspects`` chose, as AwsFleet reads them: every simulated
        group member is InService and the simulated type has no instance store."""
        enriched = []
        for f in facts:
            iid = f.instance.instance_id
            if iid in suspects.lifecycle:
                f = replace(f, lifecycle_state="InService")
            if iid in suspects.ssm_reach:
                f = replace(f, ssm_online=self.world.ssm_online(self.world.machines[iid]))
            if iid in suspects.stoppable:
                f = replace(f, instance_storage=False)
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
        captured: dict[str, dict[str, Any]] = {}

        def evidence(action: Action) -> dict[str, Any]:
            text = self.world.console(self.world.machines[action.instance_id])
            read = ConsoleRead(text, None, "latest")
            found = summary(bundle(action, facts[action.instance_id], verdicts[action.instance_id], read, self.world.clock.now))
            captured[action.instance_id] = found
            return found

        return Acting(SimExecutor(self, journal, gate, evidence), MappingProxyType(captured))

    def publish(self, topic_arn: str, message: SnsMessage) -> str | None:
        self.calls["sns.Publish"] += 1
        self.published.append(Published(self.world.clock.now, message.subject, message.text))
        return None


@dataclass
class SimExecutor:
    """The executor's choke point (gate, evidence, intent, outcome) with the world as its effects."""

    fleet: SimFleet
    journal: Journal
    gate: Gate
    capture_evidence: EvidenceCapture

    def execute(self, plan: Plan) -> list[ActionOutcome]:
        outcomes: list[ActionOutcome] = []
        for action in plan.actions:
            refused = admit(action, self.gate, self.capture_evidence, self.journal)
            if refused is not None:
                outcomes.append(refused)
                continue
            self.fleet.calls[f"sim.{action.kind.value}"] += 1
            applied = self.fleet.world.act(action.instance_id, action.kind)
            outcome = ActionOutcome(action, OutcomeStatus.DONE if applied.ok else OutcomeStatus.FAILED, applied.detail)
            self.journal.finish(outcome)
            outcomes.append(outcome)
        return outcomes
