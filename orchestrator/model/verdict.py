"""What diagnose concludes about one instance, and the evidence it rests on with the path each piece travelled."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
