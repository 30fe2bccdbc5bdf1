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
from orchestrator.model import (
    ConsoleEvidence,
    Corroboration,
    EvidencePath,
    Facts,
    ProbeOutcome,
    ProbeResult,
    Signal,
    Verdict,
    VerdictKind,
)


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
    Corroboration.SILENT_AT_TOP: "the agent falling silent at the top of a climb (host-side where its neighbours still publish)",
    Corroboration.CONSOLE: "the serial console (read through the hypervisor: no network path at all)",
}


def console_counts(console: ConsoleEvidence | None, cycle_start: datetime | None) -> bool:
    """The console speaks for the boot orch is judging: read, and not older than orch's last action."""
    if console is None or console.error:
        return False
    return console.updated_at is None or cycle_start is None or console.updated_at >= cycle_start


def host_side_evidence(
    memory: MemoryAssessment | None, critical_percent: float, console: ConsoleEvidence | None = None, cycle_start: datetime | None = None
) -> tuple[tuple[str, ...], Corroboration]:
    """Signals from the host itself that do not travel the prober's network path, and what they rest on.

    A fresh reading at or above critical, or climbing to exhaustion, says the box is
    full (for a box that no longer answers, no hold time is needed: the hold is there to
    keep a spike on a healthy box from acting). The console's OOM kill or hung tasks of
    the current boot come through the hypervisor. An agent that fell silent says so only
    at the top of a climb: silence at 40% is what a subnet ACL or a NAT failure does to
    a healthy box too (and the plan asks the neighbours whether the path works).
    """
    if memory is not None and (
        memory.state in (MemoryState.CRITICAL, MemoryState.FORECAST)
        or (memory.state is MemoryState.OK and memory.current_percent is not None and memory.current_percent >= critical_percent)
    ):
        return memory.reasons, Corroboration.MEMORY
    if console_counts(console, cycle_start) and console is not None and (console.oom_kill or console.hung_task):
        what = f"console: {console.line}" if console.line else "console: OOM kill in the current boot"
        return (what,), Corroboration.CONSOLE
    if memory is not None and memory.state is MemoryState.STALE and memory.silent_at_top:
        return memory.reasons, Corroboration.SILENT_AT_TOP
    return (), Corroboration.NONE


def signals_of(
    facts: Facts, memory: MemoryAssessment | None, console_valid: bool
) -> tuple[Signal, ...]:
    """Every piece of evidence about the instance with the path it travelled: what `orch explain` shows."""
    found: list[Signal] = []
    probe = facts.probe
    if probe is not None and probe.outcome is not ProbeOutcome.NO_ADDRESS:
        if probe.outcome is ProbeOutcome.OK:
            found.append(Signal(describe_probe(probe), EvidencePath.KERNEL))
        elif probe.outcome.is_failure:
            path = EvidencePath.KERNEL if probe.path_proven else EvidencePath.NETWORK
            why = "the box's kernel answered: the path works, sshd does not" if probe.path_proven else "no answer at all: the network may have dropped it"
            found.append(Signal(f"{describe_probe(probe)} ({why})", path))
    if facts.status is not None:
        found.append(Signal(f"status checks {facts.status.label()}", EvidencePath.EC2))
    if memory is not None:
        host = memory.state in (MemoryState.CRITICAL, MemoryState.FORECAST) or (memory.state is MemoryState.STALE and memory.silent_at_top)
        found.extend(Signal(r, EvidencePath.AGENT, host) for r in memory.reasons)
    console = facts.console
    if console is not None:
        if console.error:
            found.append(Signal(f"console not read: {console.error}", EvidencePath.HYPERVISOR))
        elif not console_valid:
            found.append(Signal("console not updated since orch's last action: it shows the boot before", EvidencePath.HYPERVISOR))
        elif console.oom_kill or console.hung_task:
            found.append(Signal(f"console, current boot: {console.line or 'OOM kill'}", EvidencePath.HYPERVISOR, True))
        else:
            found.append(Signal("console, current boot: no OOM kill or hung task", EvidencePath.HYPERVISOR))
    return tuple(found)


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
        "memory_fresh": bool(memory and memory.state in (MemoryState.OK, MemoryState.CRITICAL, MemoryState.FORECAST)),
        "path_proven": bool(facts.probe is not None and facts.probe.outcome.is_failure and facts.probe.path_proven),
        "signals": signals_of(facts, memory, console_counts(facts.console, cycle_start)),
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
    evidence, corroboration = host_side_evidence(memory, settings.memory.critical_percent, facts.console, cycle_start)
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
