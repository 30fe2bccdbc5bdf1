"""What observe learned about an instance: the inventory's view, EC2's status checks, the SSH probe, memory, the console.

Frozen and free of boto3: the adapters translate AWS's dictionaries into these at the
edge, and the pure steps read them with literal values in tests.
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
