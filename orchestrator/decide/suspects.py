"""Which instances need which extra facts: the one choice both fleets read.

Observing is cheap for the few and costly for all (GetMetricData is billed per metric;
Auto Scaling, SSM and the stop facts are calls per suspect), so the sweep reads some
facts only for suspects. Who is a suspect is a decision, and decisions live here, pure:
``AwsFleet`` and the simulator's ``SimFleet`` both read exactly what these functions
chose, so the simulator judges the code production runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from orchestrator.config import Settings
from orchestrator.decide.plan import MEMORY_TROUBLE, actionable
from orchestrator.model import ActionKind, Facts, Instance, InstanceHistory, ProbeResult, Verdict, VerdictKind

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


@dataclass(frozen=True, slots=True)
class Suspects:
    """The extra facts to read after diagnosis, by instance id; empty sets cost no call.

    - ``lifecycle``: Auto Scaling group members the plan may act on (an instance in
      Standby or Terminating is in someone else's hands);
    - ``ssm_reach``: memory suspects, when an SSM command may be the action;
    - ``stoppable``: standalone instances the ladder (or a person) may stop and start:
      their spot request type and instance storage decide whether they may be stopped.
    """

    lifecycle: frozenset[str] = frozenset()
    ssm_reach: frozenset[str] = frozenset()
    stoppable: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.lifecycle or self.ssm_reach or self.stoppable)


def ssm_commands_possible(settings: Settings) -> bool:
    """An SSM command may be the action: memory.proactive = ssm, or chronic restarts by command."""
    return settings.memory.proactive == "ssm" or bool(settings.memory.ssm_commands and settings.chronic.action != "off")


def choose_suspects(
    facts: Iterable[Facts], verdicts: Iterable[Verdict], settings: Settings, also_stoppable: frozenset[str] = frozenset()
) -> Suspects:
    """Who needs which extra fact, from this sweep's verdicts and the settings alone.

    ``also_stoppable`` names more instances whose stop facts to read (a person's
    `orch stop-start`).
    """
    facts = list(facts)
    verdicts = list(verdicts)
    wanted = actionable(settings)
    actionable_ids = {v.instance_id for v in verdicts if v.kind in wanted}
    lifecycle = {f.instance.instance_id for f in facts if f.instance.instance_id in actionable_ids and f.instance.asg_name}
    ssm_reach = {v.instance_id for v in verdicts if v.kind in MEMORY_TROUBLE} if ssm_commands_possible(settings) else set()
    unreachable = {v.instance_id for v in verdicts if v.kind is VerdictKind.UNREACHABLE}
    may_stop = (unreachable if ActionKind.STOP_START in settings.safety.ladder else set()) | also_stoppable
    stoppable = {
        f.instance.instance_id
        for f in facts
        if f.instance.instance_id in may_stop and not f.instance.asg_name and f.instance.root_device_type != "instance-store"
    }
    return Suspects(frozenset(lifecycle), frozenset(ssm_reach), frozenset(stoppable))
