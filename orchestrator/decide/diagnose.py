"""Diagnose: what the facts say about each instance, and nothing about what to do.

A pure function of facts, settings and ``now``. Every verdict carries the reasons that
led to it, in words an operator can check. Missing facts lead to ``unknown``, never to
a sick verdict: a probe we could not run or a metric we could not read proves nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

from orchestrator.config import Settings
from orchestrator.decide.memory import MemoryAssessment, MemoryState, assess_memory
from orchestrator.model import Corroboration, Facts, ProbeOutcome, ProbeResult, Verdict, VerdictKind


def describe_probe(probe: ProbeResult) -> str:
    last = probe.last
    attempts = len(probe.attempts)
    if probe.outcome is ProbeOutcome.OK:
        latency = probe.ok_latency_s or 0.0
        return f"SSH banner in {latency * 1000:.0f} ms"
    what = {
        ProbeOutcome.BANNER_TIMEOUT: f"SSH banner timeout after {last.latency_s:.1f} s (TCP accepted)",
        ProbeOutcome.CONNECT_TIMEOUT: f"TCP connect timeout after {last.latency_s:.1f} s",
        ProbeOutcome.REFUSED: "TCP connection refused",
        ProbeOutcome.RESET: "connection reset before the SSH banner",
        ProbeOutcome.NOT_SSH: f"not an SSH server ({last.detail or 'no SSH- line'})",
        ProbeOutcome.NO_ADDRESS: "no address to probe",
        ProbeOutcome.NO_ROUTE: f"no route from the prober ({last.detail or 'unreachable from here'})",
        ProbeOutcome.ERROR: f"probe could not run ({last.detail or 'local error'})",
    }[last.outcome]
    if attempts > 1 and last.outcome.is_failure:
        what += f"; {probe.failed_attempts}/{attempts} attempts failed over {probe.failure_span_s:.0f} s"
    return what


PATH_NOTE = {
    Corroboration.MEMORY: "the agent's memory metric (host-side: it travels the instance's subnet and CloudWatch, not the prober's path)",
    Corroboration.SILENT_AT_TOP: "the agent falling silent at the top of a climb (host-side unless its whole place went quiet too)",
}


def host_side_evidence(memory: MemoryAssessment | None) -> tuple[tuple[str, ...], Corroboration]:
    """Signals from the host itself that do not travel the prober's network path, and what they rest on.

    A fresh reading that is critical or climbing to exhaustion says the box is full. An
    agent that fell silent says so only at the top of a climb: silence at 40% is what a
    subnet ACL or a NAT failure does to a healthy box too.
    """
    if memory is None:
        return (), Corroboration.NONE
    if memory.state in (MemoryState.CRITICAL, MemoryState.FORECAST):
        return memory.reasons, Corroboration.MEMORY
    if memory.state is MemoryState.STALE and memory.silent_at_top:
        return memory.reasons, Corroboration.SILENT_AT_TOP
    return (), Corroboration.NONE


def diagnose(facts: Facts, now: datetime, settings: Settings, cycle_start: datetime | None = None) -> Verdict:
    """The verdict on one instance; ``cycle_start`` is when orch last rebooted or restarted it.

    Memory is judged on the current cycle only: points from before the last reboot or
    restart orch caused describe a box that no longer exists. (A reboot by someone else
    is not known here; its earlier points age out of the trend span, and the sawtooth
    guard keeps the fall from reading as a leak meanwhile.)
    """
    inst = facts.instance
    memory = assess_memory(facts.memory, now, settings.memory, cycle_start) if facts.memory is not None else None
    numbers = {
        "memory_percent": memory.current_percent if memory else None,
        "memory_slope_per_min": memory.slope_per_min if memory else None,
        "minutes_to_exhaustion": memory.minutes_to_exhaustion if memory else None,
        "agent_silent": bool(memory and memory.state is MemoryState.STALE),
    }

    def verdict(
        kind: VerdictKind, *reasons: str, evidence: tuple[str, ...] = (), corroboration: Corroboration = Corroboration.NONE
    ) -> Verdict:
        return Verdict(
            inst.instance_id,
            kind,
            tuple(r for r in reasons if r),
            evidence=evidence,
            corroboration=corroboration if evidence else Corroboration.NONE,
            **numbers,
        )

    if inst.state != "running":
        return verdict(VerdictKind.UNKNOWN, f"instance is {inst.state}, not running")

    status = facts.status
    status_text = f"status checks {status.label()}" if status else "status checks not reported"
    memory_text = "; ".join(memory.reasons) if memory and memory.reasons else ""
    if memory is not None and memory.state is MemoryState.NO_DATA:
        memory_text = "no memory data"

    if status is not None and status.impaired:
        return verdict(VerdictKind.AWS_IMPAIRED, status_text + " (left to EC2 auto-recovery / Auto Scaling)", memory_text)

    probe = facts.probe
    evidence, corroboration = host_side_evidence(memory)
    if probe is not None and probe.outcome.is_failure:
        if status is None or not status.all_ok:
            return verdict(
                VerdictKind.UNKNOWN,
                describe_probe(probe),
                status_text + ": cannot tell a dead sshd from a box still booting",
                memory_text,
            )
        return verdict(
            VerdictKind.UNREACHABLE, describe_probe(probe), status_text, memory_text, evidence=evidence, corroboration=corroboration
        )

    probe_text = describe_probe(probe) if probe is not None else "SSH not probed"
    if memory is not None and memory.state is MemoryState.CRITICAL:
        return verdict(VerdictKind.MEMORY_CRITICAL, memory_text, probe_text, status_text, evidence=evidence, corroboration=corroboration)
    if memory is not None and memory.state is MemoryState.FORECAST:
        return verdict(VerdictKind.MEMORY_FORECAST, memory_text, probe_text, status_text, evidence=evidence, corroboration=corroboration)
    if memory is not None and memory.state is MemoryState.STALE:
        return verdict(VerdictKind.METRICS_STALE, memory_text, probe_text, status_text, evidence=evidence, corroboration=corroboration)
    if probe is None or probe.outcome is not ProbeOutcome.OK:
        return verdict(VerdictKind.UNKNOWN, probe_text, status_text, memory_text)
    # sshd answered: whatever EC2 still says while initializing, the box can fork and serve.
    return verdict(VerdictKind.HEALTHY, probe_text, status_text, memory_text)


def diagnose_all(
    facts: Iterable[Facts], now: datetime, settings: Settings, cycle_starts: Mapping[str, datetime | None] | None = None
) -> list[Verdict]:
    starts = cycle_starts or {}
    return [diagnose(f, now, settings, starts.get(f.instance.instance_id)) for f in facts]
