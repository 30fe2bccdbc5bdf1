"""Which instances need which extra facts: the one choice both fleets read.

Observing is cheap for the few and costly for all (GetMetricData is billed per metric;
Auto Scaling, SSM and the stop facts are calls per suspect), so the sweep reads some
facts only for suspects. Who is a suspect is a decision, and decisions live here, pure:
``AwsFleet`` and the simulator's ``SimFleet`` both read exactly what these functions
chose, so the simulator judges the code production runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from orchestrator.config import Settings
from orchestrator.decide.plan import MEMORY_TROUBLE, actionable
from orchestrator.model import (
    ActionKind,
    ConsoleEvidence,
    Facts,
    Instance,
    InstanceHistory,
    MemorySeries,
    ProbeResult,
    StatusChecks,
    Verdict,
    VerdictKind,
)

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


# -- evidence read before the plan, for unreachable suspects ------------------------------
# The console (through the hypervisor) and the agent's last climb decide whether an SSH
# failure is the box's own; each costs a call per instance, so they are read for a bounded
# number of unreachable suspects a sweep, longest failing first, the console once an episode.


def _suspect(probe: ProbeResult | None, status: StatusChecks | None) -> bool:
    """An SSH failure EC2 does not explain: what the plan may act on."""
    return probe is not None and probe.outcome.is_failure and (status is None or not status.impaired)


def console_targets(
    running: list[Instance],
    statuses: Mapping[str, StatusChecks],
    probes: Mapping[str, ProbeResult],
    histories: Mapping[str, InstanceHistory],
    now: datetime,
    settings: Settings,
) -> list[str]:
    """Suspects whose console this episode has not been read yet (or not for a while), at most
    ``evidence.console_reads_per_sweep``, the longest failing first: the rest are read next sweep."""
    if not settings.evidence.console:
        return []
    fresh_for = timedelta(minutes=settings.evidence.console_max_age_minutes)
    wanted: list[tuple[datetime, str]] = []
    for inst in running:
        iid = inst.instance_id
        if not _suspect(probes.get(iid), statuses.get(iid)):
            continue
        h = histories.get(iid)
        seen = h.console if h is not None else None
        if seen is not None and not seen.error and now - seen.read_at < fresh_for:
            continue
        since = h.first_failure_at if h is not None and h.first_failure_at is not None else now
        wanted.append((since, iid))
    return [iid for _, iid in sorted(wanted)[: settings.evidence.console_reads_per_sweep]]


def history_targets(
    running: list[Instance],
    statuses: Mapping[str, StatusChecks],
    probes: Mapping[str, ProbeResult],
    memory: Mapping[str, MemorySeries],
    settings: Settings,
) -> list[str]:
    """Suspects with no memory point in the window: their agent may have fallen silent at the top
    of a climb longer ago than the window, so read back ``memory.history_hours`` for them alone."""
    if settings.memory.history_hours <= 0:
        return []
    return [
        i.instance_id
        for i in running
        if _suspect(probes.get(i.instance_id), statuses.get(i.instance_id))
        and (i.instance_id not in memory or not memory[i.instance_id].points)
    ]


def episode_console(probe: ProbeResult | None, history: InstanceHistory | None) -> ConsoleEvidence | None:
    """The console read earlier in this episode, while the instance still fails: read once, weighed every sweep."""
    if history is None or probe is None or not probe.outcome.is_failure:
        return None
    return history.console
