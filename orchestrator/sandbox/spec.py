"""What simulated fleet to build, and which instance gets which failure.

The assignment is a pure function of the spec, so the same seed always gives the
same modes to the same instance indices (crawler-1 ... crawler-N): a test or a demo
can name its hung instance in advance, and a bug seen once can be replayed.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.sandbox.memory import MemoryShape
from orchestrator.sandbox.sshd import Mode

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


class FleetSpec(BaseModel):
    """A simulated fleet. Counts are of managed instances and never overlap, except
    ``no_metrics``, which silences the agent on that many otherwise healthy ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: int = Field(24, ge=0, le=20_000, description="managed instances (crawler-1..N)")
    hung: int = Field(2, ge=0, description="TCP accepted, no banner, memory exhausted: the incident")
    refusing: int = Field(1, ge=0, description="nothing listens on the SSH port")
    silent_hung: int = Field(
        0, ge=0, description="TCP accepted, no banner, memory normal: unreachable with no host-side evidence"
    )
    leaking: int = Field(2, ge=0, description="healthy now, memory climbing ~1 %/min toward exhaustion")
    slow: int = Field(0, ge=0, description="banner after slow_delay seconds")
    no_metrics: int = Field(0, ge=0, description="healthy instances whose agent sends nothing")
    opt_out: int = Field(1, ge=0, description="instances tagged orch:skip=true")
    opt_out_hung: bool = Field(True, description="opt-out instances are hung: orch must still leave them alone")
    asg_fraction: float = Field(0.25, ge=0.0, le=1.0, description="share of managed instances in orch-sandbox-asg")
    unmanaged: int = Field(2, ge=0, le=1000, description="hung bystanders without the orch tag, in the same VPC")
    tagged: bool = Field(
        True, description="managed instances carry orch:managed=true; False launches them untagged, a fleet for `orch init` to adopt"
    )
    agents_starve: bool = Field(
        False, description="the hung instances' agents fell silent at the top of their climb, as a starving agent does (the seed's morning)"
    )
    wedged_minutes: tuple[float, float] = Field(
        (6.0, 10.0), description="how long ago the hung instances ran out of memory, a range in minutes (spread them for the morning after a night)"
    )
    seed: int = 0
    port: int = Field(22, ge=0, le=65535, description="fake sshd port on every instance; 0 picks a free one")
    port_fallback: bool = Field(False, description="when port is busy, take a free one and say so (the CLI's default port)")
    region: str = "us-east-1"
    agent_dimensions: bool = Field(True, description="append ImageId, InstanceType, AutoScalingGroupName like the agent")
    vpc_cidr: str = Field("127.20.0.0/16", description="must lie inside 127.0.0.0/8")
    instance_type: str = "t3.large"
    namespace: str = Field("CWAgent", min_length=1, description="CloudWatch namespace of the memory metric")
    metric: str = Field("mem_used_percent", min_length=1, description="memory metric name")
    metric_minutes: int = Field(60, ge=1, le=1440, description="history written at start, one point a minute")
    slow_delay: float = Field(1.5, ge=0, le=60, description="seconds before a SLOW endpoint's banner")
    boot_delay: float = Field(0.0, ge=0, le=600, description="seconds sshd refuses after a reboot or start")
    hold: float = Field(2.0, gt=0, le=60, description="seconds a healthy endpoint keeps a connection after its banner")
    moto_port: int = Field(0, ge=0, le=65535, description="moto server port on 127.0.0.1; 0 picks a free one")

    @field_validator("vpc_cidr")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # Every private IP must be a loopback address: probes must never leave the host.
        try:
            network = ipaddress.ip_network(value)
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {exc}") from None
        if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(LOOPBACK) or network.prefixlen > 22:
            raise ValueError("must be an IPv4 block inside 127.0.0.0/8 of /22 or larger (e.g. 127.20.0.0/16)")
        return str(network)

    @field_validator("wedged_minutes")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 <= low <= high <= 24 * 60:
            raise ValueError("must be (low, high) minutes with 0 <= low <= high <= 1440")
        return value

    @model_validator(mode="after")
    def _counts_fit(self) -> FleetSpec:
        special = self.opt_out + self.hung + self.silent_hung + self.refusing + self.leaking + self.slow
        if special > self.instances:
            raise ValueError(
                f"opt_out + hung + silent_hung + refusing + leaking + slow = {special} exceeds instances = {self.instances}"
            )
        if self.no_metrics > self.instances - special:
            raise ValueError(f"no_metrics = {self.no_metrics} exceeds the {self.instances - special} plain healthy instances")
        return self

    @property
    def asg_members(self) -> int:
        return round(self.instances * self.asg_fraction)

    @property
    def standalone(self) -> int:
        return self.instances - self.asg_members


@dataclass(frozen=True, slots=True)
class Role:
    """The fate of managed instance ``index`` (0-based; named crawler-(index+1))."""

    index: int
    mode: Mode
    memory: MemoryShape
    opt_out: bool
    reports_metrics: bool


def assign_roles(spec: FleetSpec) -> list[Role]:
    """Deterministically spread the failures over the indices: same seed, same roles."""
    rng = random.Random(f"orch-sandbox/roles/{spec.seed}")
    order = list(range(spec.instances))
    rng.shuffle(order)
    roles: dict[int, Role] = {}
    cursor = 0

    def take(count: int, mode: Mode, memory: MemoryShape, opt_out: bool = False) -> None:
        nonlocal cursor
        for index in order[cursor : cursor + count]:
            roles[index] = Role(index, mode, memory, opt_out, reports_metrics=True)
        cursor += count

    if spec.opt_out_hung:
        take(spec.opt_out, Mode.HUNG, MemoryShape.EXHAUSTED, opt_out=True)
    else:
        take(spec.opt_out, Mode.HEALTHY, MemoryShape.FLAT, opt_out=True)
    take(spec.hung, Mode.HUNG, MemoryShape.EXHAUSTED)
    take(spec.silent_hung, Mode.HUNG, MemoryShape.FLAT)
    take(spec.refusing, Mode.REFUSING, MemoryShape.FLAT)
    take(spec.leaking, Mode.HEALTHY, MemoryShape.LEAKING)
    take(spec.slow, Mode.SLOW, MemoryShape.FLAT)
    silent = set(order[cursor : cursor + spec.no_metrics])
    for index in order[cursor:]:
        roles[index] = Role(index, Mode.HEALTHY, MemoryShape.FLAT, False, reports_metrics=index not in silent)
    return [roles[i] for i in range(spec.instances)]


def opt_out_indices(roles: list[Role]) -> list[int]:
    return [r.index for r in roles if r.opt_out]
