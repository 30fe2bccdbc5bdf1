"""Frozen domain types shared by every step of a sweep.

The pure steps (diagnose, plan) take and return only these types, so they can be
tested with literal values and fixed timestamps; the adapters translate boto3's
dictionaries into them at the edge and nothing else sees a boto3 response.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Instance:
    """One EC2 instance as the inventory saw it."""

    instance_id: str
    state: str
    availability_zone: str
    launch_time: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    private_ip: str | None = None
    public_ip: str | None = None
    subnet_id: str | None = None
    vpc_id: str | None = None
    image_id: str | None = None
    instance_type: str | None = None
    launch_template_id: str | None = None
    launch_template_version: str | None = None

    @property
    def name(self) -> str:
        return self.tags.get("Name", "")

    @property
    def asg_name(self) -> str | None:
        """EC2 tags every Auto Scaling member; no extra API call is needed."""
        return self.tags.get("aws:autoscaling:groupName")


class CheckState(str, enum.Enum):
    OK = "ok"
    IMPAIRED = "impaired"
    INITIALIZING = "initializing"
    INSUFFICIENT_DATA = "insufficient-data"
    NOT_APPLICABLE = "not-applicable"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> CheckState:
        try:
            return cls(value or "unknown")
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    code: str
    not_before: datetime | None
    description: str = ""


@dataclass(frozen=True, slots=True)
class StatusChecks:
    """EC2's own view: system (AWS hardware/network) and instance (kernel answers ARP)."""

    instance_id: str
    system: CheckState
    instance: CheckState
    events: tuple[ScheduledEvent, ...] = ()

    @property
    def all_ok(self) -> bool:
        return self.system is CheckState.OK and self.instance is CheckState.OK

    @property
    def impaired(self) -> bool:
        return CheckState.IMPAIRED in (self.system, self.instance)

    def label(self) -> str:
        if self.all_ok:
            return "ok"
        return f"sys:{self.system.value} inst:{self.instance.value}"


class ProbeOutcome(str, enum.Enum):
    OK = "ok"
    REFUSED = "refused"
    CONNECT_TIMEOUT = "connect-timeout"
    BANNER_TIMEOUT = "banner-timeout"
    RESET = "reset"
    NOT_SSH = "not-ssh"
    NO_ADDRESS = "no-address"
    ERROR = "error"

    @property
    def is_failure(self) -> bool:
        """A failure that says something about the box; unprobeable is not a failure."""
        return self not in (ProbeOutcome.OK, ProbeOutcome.NO_ADDRESS, ProbeOutcome.ERROR)


@dataclass(frozen=True, slots=True)
class ProbeAttempt:
    outcome: ProbeOutcome
    started_at: datetime
    latency_s: float
    banner: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Every attempt against one target in one sweep, in order."""

    target: str
    attempts: tuple[ProbeAttempt, ...]

    @property
    def last(self) -> ProbeAttempt:
        return self.attempts[-1]

    @property
    def outcome(self) -> ProbeOutcome:
        """OK if any attempt got a banner: one good answer proves sshd can fork."""
        for attempt in self.attempts:
            if attempt.outcome is ProbeOutcome.OK:
                return ProbeOutcome.OK
        return self.last.outcome

    @property
    def failed_attempts(self) -> int:
        return sum(1 for a in self.attempts if a.outcome.is_failure)

    @property
    def failure_span_s(self) -> float:
        failed = [a.started_at for a in self.attempts if a.outcome.is_failure]
        if len(failed) < 2:
            return 0.0
        return (max(failed) - min(failed)).total_seconds()

    @property
    def ok_latency_s(self) -> float | None:
        for attempt in self.attempts:
            if attempt.outcome is ProbeOutcome.OK:
                return attempt.latency_s
        return None


@dataclass(frozen=True, slots=True)
class MemorySeries:
    """Datapoints of the memory metric, oldest first; empty means the agent sent nothing."""

    instance_id: str
    points: tuple[tuple[datetime, float], ...] = ()

    @property
    def latest(self) -> tuple[datetime, float] | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True, slots=True)
class Facts:
    """What observe learned about one instance; None means 'not looked at'."""

    instance: Instance
    status: StatusChecks | None = None
    probe: ProbeResult | None = None
    memory: MemorySeries | None = None
    lifecycle_state: str | None = None
    ssm_online: bool | None = None  # None: not asked


class VerdictKind(str, enum.Enum):
    HEALTHY = "healthy"
    UNREACHABLE = "unreachable"  # status checks pass, SSH does not: the target
    AWS_IMPAIRED = "aws-impaired"
    MEMORY_CRITICAL = "memory-critical"
    MEMORY_FORECAST = "memory-exhaustion-forecast"
    METRICS_STALE = "metrics-stale"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    instance_id: str
    kind: VerdictKind
    reasons: tuple[str, ...]
    memory_percent: float | None = None
    memory_slope_per_min: float | None = None
    minutes_to_exhaustion: float | None = None
    # Host-side signals that do not travel the prober's path (corroboration).
    evidence: tuple[str, ...] = ()


class ActionKind(str, enum.Enum):
    REBOOT = "reboot"
    STOP_START = "stop-start"
    REPLACE = "replace"
    RUN_COMMAND = "run-command"  # SSM: restart the leaking service before SSH dies


@dataclass(frozen=True, slots=True)
class Action:
    instance_id: str
    kind: ActionKind
    reason: str
    asg_name: str | None = None


class BlockRule(str, enum.Enum):
    """The kind of rule that held an action back; `orch heal`'s exit code is decided by it."""

    OPTED_OUT = "opted-out"  # the user said hands off (orch:skip)
    IN_FLIGHT = "in-flight"  # an earlier action awaits verification
    WAITING = "waiting"  # not confirmed yet, launch grace, lifecycle, scheduled event, not running
    PAUSED = "paused"
    FLEET_STOP = "fleet-stop"  # circuit breaker, every probe failed, AZ or subnet fault
    QUARANTINED = "quarantined"
    BUDGET = "budget"
    NEEDS_HUMAN = "needs-human"  # replace impossible, SSM offline, and any rule not classified


@dataclass(frozen=True, slots=True)
class Blocked:
    instance_id: str
    kind: ActionKind
    why: str
    rule: BlockRule = BlockRule.NEEDS_HUMAN


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole decision of a sweep: what to do, what not to do and why."""

    actions: tuple[Action, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    notes: tuple[str, ...] = ()


class OutcomeStatus(str, enum.Enum):
    DONE = "done"
    DRY_RUN = "dry-run"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the call may have run (timeout); re-read, never repeated


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action: Action
    status: OutcomeStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InstanceHistory:
    """What earlier sweeps learned about one instance; plan reads it, record writes it."""

    instance_id: str
    first_failure_at: datetime | None = None
    failed_probes: int = 0  # consecutive failed probe attempts, across sweeps
    last_healthy_at: datetime | None = None
    healthy_since: datetime | None = None  # start of the current healthy streak
    rung: int = 0  # index into the escalation ladder of the next action
    attempts: tuple[datetime, ...] = ()  # when actions were taken, for the quarantine window
    last_action: ActionKind | None = None
    last_action_at: datetime | None = None
    in_flight_key: str | None = None  # action taken, not yet verified
    quarantined_at: datetime | None = None
    quarantine_reason: str = ""
    last_verdict: VerdictKind | None = None  # what the last sweep concluded: picks memory suspects
