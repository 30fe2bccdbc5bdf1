"""Which extra facts to read before the plan, and for whom: pure, so AWS and the simulator read the same.

Evidence that does not travel the prober's path decides whether an SSH failure is the
box's own: the console (through the hypervisor) and the agent's last climb (its own
path, judged against its neighbours). Both cost a call per instance, so they are read
for unreachable suspects only, a bounded number per sweep, longest failing first, and
the console once per episode.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from orchestrator.config import Settings
from orchestrator.model import ConsoleEvidence, Instance, InstanceHistory, MemorySeries, ProbeResult, StatusChecks


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
