"""Literal domain values for table-driven tests: fixed times, no AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from orchestrator.config import ProbeSettings, Settings
from orchestrator.model import (
    ActionAttempt,
    ActionKind,
    CheckState,
    Corroboration,
    Facts,
    Instance,
    InstanceHistory,
    MemorySeries,
    ProbeAttempt,
    ProbeOutcome,
    ProbeResult,
    ScheduledEvent,
    StatusChecks,
    Verdict,
    VerdictKind,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
LONG_AGO = NOW - timedelta(days=3)


def instance(n: int, *, az: str = "us-east-1a", subnet: str | None = None, state: str = "running",
             tags: dict[str, str] | None = None, launched: datetime = LONG_AGO, asg: str | None = None) -> Instance:
    all_tags = {"Name": f"crawler-{n}", "orch:managed": "true", **(tags or {})}
    if asg:
        all_tags["aws:autoscaling:groupName"] = asg
    return Instance(
        instance_id=f"i-{n:017x}",
        state=state,
        availability_zone=az,
        launch_time=launched,
        tags=all_tags,
        private_ip=f"127.20.1.{n % 250 + 4}",
        subnet_id=subnet or f"subnet-{az[-1]}",
    )


def probe(outcome: ProbeOutcome, attempts: int = 3, spacing_s: float = 10.0, start: datetime = NOW - timedelta(seconds=30)) -> ProbeResult:
    return ProbeResult(
        target="x",
        attempts=tuple(
            ProbeAttempt(outcome, start + timedelta(seconds=i * spacing_s), 0.01 if outcome is ProbeOutcome.OK else 5.0,
                         "SSH-2.0-OpenSSH_9.2" if outcome is ProbeOutcome.OK else None)
            for i in range(1 if outcome is ProbeOutcome.OK else attempts)
        ),
    )


def status_ok(instance_id: str, events: tuple[ScheduledEvent, ...] = ()) -> StatusChecks:
    return StatusChecks(instance_id, CheckState.OK, CheckState.OK, events)


def flat_memory(instance_id: str, percent: float = 40.0, minutes: int = 60) -> MemorySeries:
    return MemorySeries(instance_id, tuple((NOW - timedelta(minutes=minutes - i), percent) for i in range(minutes)))


def facts(inst: Instance, outcome: ProbeOutcome = ProbeOutcome.OK, *, memory: MemorySeries | None = None,
          status: StatusChecks | None = None, lifecycle: str | None = None) -> Facts:
    return Facts(
        instance=inst,
        status=status or status_ok(inst.instance_id),
        probe=probe(outcome),
        memory=memory if memory is not None else flat_memory(inst.instance_id),
        lifecycle_state=lifecycle,
    )


def verdict(f: Facts, kind: VerdictKind, evidence: tuple[str, ...] = (), minutes_to_exhaustion: float | None = None) -> Verdict:
    """``evidence`` is a fresh memory reading's (the corroboration that no network fault fakes)."""
    corroboration = Corroboration.MEMORY if evidence else Corroboration.NONE
    proven = f.probe is not None and f.probe.outcome.is_failure and f.probe.path_proven  # as diagnose says it
    return Verdict(
        f.instance.instance_id,
        kind,
        (kind.value,),
        evidence=evidence,
        corroboration=corroboration,
        minutes_to_exhaustion=minutes_to_exhaustion,
        path_proven=proven,
    )


def actions_at(*moments: datetime, kind: ActionKind = ActionKind.REBOOT) -> tuple[ActionAttempt, ...]:
    """Actions taken at ``moments`` (verified at once), for histories that only need their times."""
    return tuple(ActionAttempt(at=at, kind=kind, verified_at=at) for at in moments)


def confirmed(instance_id: str, **changes: object) -> InstanceHistory:
    """History of an instance whose failure is already debounced."""
    base = InstanceHistory(instance_id, first_failure_at=NOW - timedelta(minutes=2), failed_probes=6)
    return replace(base, **changes)  # type: ignore[arg-type]


def settings(**safety: object) -> Settings:
    return Settings.model_validate({"safety": safety})


class ScriptedProber:
    """Stands in for SSH in sweeps over moto: instances in ``down`` accept TCP and never
    send a banner (the incident, three attempts over 20 s); the rest answer at once."""

    def __init__(self, down: set[str], outcome: ProbeOutcome = ProbeOutcome.BANNER_TIMEOUT) -> None:
        self.down = down
        self.outcome = outcome  # CONNECT_TIMEOUT: nothing answers, as behind a network fault
        self.calls: list[ProbeSettings] = []

    def __call__(self, targets: Mapping[str, Any], settings: ProbeSettings, clock: Any = None) -> dict[str, ProbeResult]:
        self.calls.append(settings)
        now = datetime.now(timezone.utc)
        results = {}
        for instance_id, host in targets.items():
            if instance_id in self.down:
                attempts = tuple(ProbeAttempt(self.outcome, now - timedelta(seconds=30 - 10 * i), 5.0) for i in range(3))
            else:
                attempts = (ProbeAttempt(ProbeOutcome.OK, now, 0.002, "SSH-2.0-OpenSSH_9.2"),)
            results[instance_id] = ProbeResult(str(host), attempts)
        return results
