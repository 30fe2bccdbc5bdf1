"""What the sandbox says about its instances and what happened to them: the records its
callers read (``Sandbox.instances``, ``Sandbox.events``). Plain data, no behaviour."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import NamedTuple

from orchestrator.sandbox.sshd import Mode


class EventKind(str, enum.Enum):
    REBOOT = "reboot"
    STOP = "stop"
    START = "start"
    TERMINATE = "terminate"
    SET_UNHEALTHY = "set-unhealthy"  # SetInstanceHealth Unhealthy on an ASG member
    LAUNCH = "launch"  # a replacement launched by the ASG
    HUNG = "hung"  # a leak reached exhaustion during advance(): sshd stopped answering
    IMPAIR = "impair"
    UNIMPAIR = "unimpair"


#: Events that only a caller's mutating AWS call can cause.
ACTIONS = frozenset({EventKind.REBOOT, EventKind.STOP, EventKind.START, EventKind.TERMINATE, EventKind.SET_UNHEALTHY})


class SandboxEvent(NamedTuple):
    """Something that happened to an instance; ``what`` compares equal to its string."""

    at: datetime
    instance_id: str
    what: EventKind


@dataclasses.dataclass(frozen=True, slots=True)
class SimInstance:
    """One simulated instance as a prober, CloudWatch and EC2 would see it right now."""

    instance_id: str
    name: str
    private_ip: str
    availability_zone: str
    subnet_id: str
    image_id: str
    instance_type: str
    mode: Mode
    state: str  # running, stopped, terminated
    managed: bool
    opt_out: bool
    leaking: bool
    reports_metrics: bool
    asg_name: str | None = None
    index: int | None = None  # managed: 0-based, name crawler-(index+1); unmanaged: None
    memory_percent: float | None = None
    impaired: bool = False
    cut: bool = False  # the network path to it is cut (a scenario's outage): probes time out whatever its sshd does

    @property
    def asg_member(self) -> bool:
        return self.asg_name is not None
