"""Frozen domain types shared by every step of a sweep.

The pure steps (diagnose, plan) take and return only these types, so they can be
tested with literal values and fixed timestamps; the adapters translate boto3's
dictionaries into them at the edge and nothing else sees a boto3 response.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping


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
    # What decides whether stop/start is possible (DescribeInstances; None: not reported).
    instance_lifecycle: str | None = None  # "spot", "scheduled", "capacity-block"; None: On-Demand
    spot_request_id: str | None = None
    root_device_type: str | None = None  # "ebs" or "instance-store"
    root_device_name: str | None = None
    ebs_devices: tuple[str, ...] = ()  # device names of the EBS volumes in BlockDeviceMappings
    security_group_ids: tuple[str, ...] = ()  # what `orch doctor` checks the probe port against

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
    NO_ROUTE = "no-route"  # our side refused to send (EHOSTUNREACH, ENETUNREACH, a local firewall)
    ERROR = "error"

    @property
    def is_failure(self) -> bool:
        """A failure that says something about the box; unprobeable is not a failure.

        NO_ROUTE is said by the prober's own host or route table before any packet
        reached the instance, exactly like ERROR: it tells how the prober is placed
        (another VPC, a CIDR its subnet has no route to, its own firewall), not whether
        sshd lives. A security group that drops the probe cannot be told apart here: it
        looks like CONNECT_TIMEOUT (see docs/deploy.md for the ingress rule).
        """
        return self not in (ProbeOutcome.OK, ProbeOutcome.NO_ADDRESS, ProbeOutcome.NO_ROUTE, ProbeOutcome.ERROR)

    @property
    def path_proven(self) -> bool:
        """The box's own kernel answered the prober, so the network path between them works.

        A refusal (RST), a reset, a banner that never comes after the handshake, or a
        server that speaks something else: each needs a packet from the box. A network
        fault (security group, ACL, route, a dark zone) drops packets instead, and
        looks like a connect timeout: only those are ambiguous about where the fault is.
        """
        return self in (ProbeOutcome.REFUSED, ProbeOutcome.RESET, ProbeOutcome.BANNER_TIMEOUT, ProbeOutcome.NOT_SSH)


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
    def path_proven(self) -> bool:
        """Some attempt was answered by the box's kernel: the prober's path to it works."""
        return any(a.outcome.path_proven for a in self.attempts)

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
class ConsoleEvidence:
    """What the serial console said about the boot it shows, read before the plan for an unreachable box.

    The console comes through the hypervisor, not the network: an OOM kill of the
    current boot is host-side evidence whatever the network does. Lines of an earlier
    boot are not counted (``orchestrator.observe.kernel_log.current_boot``).
    """

    read_at: datetime
    updated_at: datetime | None  # EC2's timestamp of the text: older than orch's last action, it shows the boot before
    oom_kill: bool  # the OOM killer fired in the boot the text ends with
    hung_task: bool  # the kernel reported a task blocked for minutes in that boot
    process: str = ""  # what the OOM killer took
    line: str = ""  # the kernel's line, as evidence
    error: str = ""  # why nothing could be read


@dataclass(frozen=True, slots=True)
class Facts:
    """What observe learned about one instance; None means 'not looked at'."""

    instance: Instance
    status: StatusChecks | None = None
    probe: ProbeResult | None = None
    memory: MemorySeries | None = None
    lifecycle_state: str | None = None
    ssm_online: bool | None = None  # None: not asked
    # Asked only for suspects whose ladder may reach stop/start (None: not asked).
    spot_request_type: str | None = None  # "one-time" or "persistent" (DescribeSpotInstanceRequests)
    instance_storage: bool | None = None  # the type has instance-store volumes (DescribeInstanceTypes)
    console: ConsoleEvidence | None = None  # read before the plan for unreachable suspects (None: not read)


class VerdictKind(str, enum.Enum):
    HEALTHY = "healthy"
    UNREACHABLE = "unreachable"  # status checks pass, SSH does not: the target
    AWS_IMPAIRED = "aws-impaired"
    MEMORY_CRITICAL = "memory-critical"
    MEMORY_FORECAST = "memory-exhaustion-forecast"
    METRICS_STALE = "metrics-stale"
    UNKNOWN = "unknown"


class Corroboration(str, enum.Enum):
    """What an SSH failure's host-side evidence rests on, and so which faults could fake it.

    Evidence corroborates an SSH failure only if it does not travel the failure's path.
    A fresh memory reading at the top travels the instance's subnet, NAT and CloudWatch,
    and says the box itself is full. An agent that fell silent travels that same path: a
    subnet ACL or NAT failure silences it too, so silence corroborates only when it came
    at the top of a climb and does not come from a whole place going quiet together (the
    plan judges the second part, fleet-wide).
    """

    NONE = "none"
    MEMORY = "memory"  # a fresh datapoint: critical, or climbing to exhaustion
    SILENT_AT_TOP = "silent-at-top"  # the agent went quiet after climbing to the top
    CONSOLE = "console"  # the console shows an OOM kill (or hung tasks) of the current boot


class EvidencePath(str, enum.Enum):
    """The way a piece of evidence travelled to orch, and so which faults could fake it."""

    KERNEL = "box kernel"  # the box's own TCP stack answered the prober: the path works
    NETWORK = "network"  # nothing came back: a dropped packet anywhere between looks the same
    AGENT = "agent"  # the CloudWatch agent's points: the instance's subnet, NAT and CloudWatch
    HYPERVISOR = "hypervisor"  # the serial console, read by EC2 from the host: no network at all
    EC2 = "ec2"  # EC2's own status checks
    NEIGHBOURS = "neighbours"  # other boxes of the same subnet and zone


@dataclass(frozen=True, slots=True)
class Signal:
    """One piece of evidence about an instance, the path it travelled, and whether it speaks for the host itself."""

    says: str
    path: EvidencePath
    host_side: bool = False  # a cause on the box (memory, OOM), not a symptom any network fault could give


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
    corroboration: Corroboration = Corroboration.NONE
    agent_silent: bool = False  # the agent had reported and has fallen silent
    memory_fresh: bool = False  # the agent's points are current: its path (subnet, NAT, CloudWatch) works
    path_proven: bool = False  # an SSH failure the box's own kernel answered (not a connect timeout)
    signals: tuple[Signal, ...] = ()  # every piece of evidence with its path, for people (`orch explain`)


class ActionKind(str, enum.Enum):
    REBOOT = "reboot"
    STOP_START = "stop-start"
    REPLACE = "replace"
    RUN_COMMAND = "run-command"  # SSM: restart the leaking service before SSH dies
    START = "start"  # finish a stop/start orch began that left the instance stopped; never a rung


@dataclass(frozen=True, slots=True)
class Action:
    instance_id: str
    kind: ActionKind
    reason: str
    asg_name: str | None = None
    requested_by: str = ""  # a person's `orch reboot` / `orch stop-start`; empty: a sweep's own decision
    forced: str = ""  # the rule a person forced the action past and the reason they gave (--force --reason)
    canary: bool = False  # acted on first, past the breaker, to learn whether this failure heals at all
    cause: Cause | None = None  # what the plan acted on, when it knows (None: the evidence at the time decides)
    chronic: bool = False  # on a chronic instance: paced by its own cycle, outside the fleet's budgets


class BlockRule(str, enum.Enum):
    """Which rule held an action back: what the exit code, the alerts and people sort blocks by."""

    PAUSED = "paused"
    PROBER = "prober"  # every probe failed: the prober's own network
    BREAKER = "breaker"
    MEMORY_BREAKER = "memory-breaker"
    NETWORK_FAULT = "network-fault"  # an AZ or subnet
    OPT_OUT = "opt-out"
    NOT_RUNNING = "not-running"
    QUARANTINE = "quarantine"
    IN_FLIGHT = "in-flight"
    SCHEDULED_EVENT = "scheduled-event"
    LIFECYCLE = "lifecycle"
    LAUNCH_GRACE = "launch-grace"
    DEBOUNCE = "debounce"
    LADDER = "ladder"
    SSM_OFFLINE = "ssm-offline"
    BUDGET_SWEEP = "budget-sweep"  # this sweep's share is spent: the next sweep serves it
    BUDGET = "budget"  # the hourly or the group's budget
    CANARY = "canary"  # past the breaker: waiting on the canary, or the canary did not recover

    @property
    def expected(self) -> bool:
        """A state the operator chose or that resolves itself: neither news nor a failure."""
        return self in _EXPECTED_BLOCKS


# The user's choice (opted out), orch's own action awaiting verification, or waiting
# for a fact to settle (not confirmed yet, launch grace, someone else's lifecycle or
# scheduled event, not running): none is news, none makes `orch heal` exit 1.
_EXPECTED_BLOCKS = frozenset(
    {
        BlockRule.OPT_OUT,
        BlockRule.NOT_RUNNING,
        BlockRule.IN_FLIGHT,
        BlockRule.LAUNCH_GRACE,
        BlockRule.DEBOUNCE,
        BlockRule.LIFECYCLE,
        BlockRule.SCHEDULED_EVENT,
    }
)


@dataclass(frozen=True, slots=True)
class Blocked:
    instance_id: str
    kind: ActionKind
    why: str
    rule: BlockRule = BlockRule.LADDER  # a rule not classified needs a human


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole decision of a sweep: what to do, what not to do and why."""

    actions: tuple[Action, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    notes: tuple[str, ...] = ()


# Starts the detail of every outcome that leaves an instance orch stopped still stopped
# (or stopping): the next sweep looks for it and starts the instance (pending_start).
START_PENDING = "start pending"


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


class Cause(str, enum.Enum):
    """Why an instance needed an action, as far as orch could tell when it acted."""

    MEMORY = "memory"  # memory exhaustion: by the metric, the agent starving at the top, or OOM lines
    UNKNOWN = "unknown"  # SSH failed and nothing on the host said why


@dataclass(frozen=True, slots=True)
class ActionAttempt:
    """One action taken on an instance and what became of it.

    Verified: the instance answered SSH after it (and, for a memory cause, memory fell).
    Failed: the call failed, or the instance was not back within the verify window.
    Recurred: the trouble came back after a verified recovery; a recurrence soon after
    the recovery (within ``safety.flap_minutes``) is a flap and counts as a failure, a
    later one is the problem coming back, not the remedy failing.
    """

    at: datetime
    kind: ActionKind
    key: str = ""
    cause: Cause = Cause.UNKNOWN
    verified_at: datetime | None = None
    failed_at: datetime | None = None
    failure: str = ""  # why it counts as failed
    recurred_at: datetime | None = None
    cycle_minutes: float | None = None  # from the boot (or restart) before it to this action
    memory_percent: float | None = None  # at the moment it was decided
    slope_per_min: float | None = None  # memory growth in the cycle it ended
    process: str = ""  # the leaking process, when the console (or procstat) named it
    process_rss_kb: int | None = None
    proactive: bool = False  # taken while SSH still answered, ahead of the exhaustion
    taken: bool = True  # False: the call itself failed, so nothing happened to the box
    requested_by: str = ""  # taken by hand (`orch reboot`), by whom
    forced: str = ""  # by hand past a rule that would have held it, and the reason given
    canary: bool = False  # taken as the canary past the breaker
    chronic: bool = False  # taken on a chronic instance (paced by its cycle, not counted in the fleet's budgets)
    up_minutes: float | None = None  # from the box seen back up after the action before to the exhaustion this one answered

    @property
    def settled(self) -> bool:
        return self.verified_at is not None or self.failed_at is not None

    def flapped(self, flap_minutes: float) -> bool:
        """Back in trouble soon after a verified recovery, for a cause other than memory.

        A leak that returns ten minutes after a reboot is a fast leak, not a failed
        reboot: the remedy worked and the box ran out again (a recurrence).
        """
        if self.verified_at is None or self.recurred_at is None or self.cause is Cause.MEMORY:
            return False
        return (self.recurred_at - self.verified_at).total_seconds() < flap_minutes * 60

    def counts_as_failure(self, flap_minutes: float) -> bool:
        return self.failed_at is not None or self.flapped(flap_minutes)


@dataclass(frozen=True, slots=True)
class InstanceHistory:
    """What earlier sweeps learned about one instance; plan reads it, record writes it."""

    instance_id: str
    first_failure_at: datetime | None = None
    failed_probes: int = 0  # consecutive failed probe attempts, across sweeps
    last_healthy_at: datetime | None = None
    healthy_since: datetime | None = None  # start of the current healthy streak
    rung: int = 0  # index into the escalation ladder of the next action
    actions: tuple[ActionAttempt, ...] = ()  # taken actions, oldest first, within the longest window
    last_action: ActionKind | None = None
    last_action_at: datetime | None = None
    in_flight_key: str | None = None  # action taken, not yet verified
    quarantined_at: datetime | None = None
    quarantine_reason: str = ""
    last_verdict: VerdictKind | None = None  # what the last sweep concluded: picks memory suspects
    chronic_since: datetime | None = None  # first recovery of the chronic condition now recognised
    released_at: datetime | None = None  # a human released it: failures before this no longer count
    console: ConsoleEvidence | None = None  # the console read in the current episode (cleared when healthy or acted on)
    version: int = 0  # as read from the store; a write lands only if the stored one still has it
    written_at: datetime | None = None  # when a sweep last stored it (refreshed at least daily)

    @property
    def blank(self) -> bool:
        """Nothing to remember: a healthy instance orch never had to act on or suspect."""
        return (
            not self.actions
            and self.rung == 0
            and self.failed_probes == 0
            and self.first_failure_at is None
            and self.in_flight_key is None
            and self.quarantined_at is None
            and self.chronic_since is None
            and self.released_at is None
            and self.console is None
            and self.last_verdict in (None, VerdictKind.HEALTHY)
        )

    @property
    def attempts(self) -> tuple[datetime, ...]:
        """When actions were taken, failed calls aside."""
        return tuple(a.at for a in self.actions if a.taken)

    @property
    def budgeted(self) -> tuple[datetime, ...]:
        """When actions the fleet's budgets count were taken: not those on chronic instances."""
        return tuple(a.at for a in self.actions if a.taken and not a.chronic)

    @property
    def cycle_started_at(self) -> datetime | None:
        """The last (re)boot or restart orch caused: memory before it describes the last cycle."""
        taken = self.attempts
        return taken[-1] if taken else None


# -- what the state store remembers and the pure steps read -----------------------------


class ActionStatus(str, enum.Enum):
    INTENT = "intent"  # written before the call: a crash after this never repeats the call blindly
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"
    VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class ActionRecord:
    key: str  # idempotency key: instance, action, time window
    sweep_id: str
    instance_id: str
    action: ActionKind
    reason: str
    status: ActionStatus
    created_at: datetime
    updated_at: datetime
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PauseState:
    paused_at: datetime
    by: str
    reason: str = ""
