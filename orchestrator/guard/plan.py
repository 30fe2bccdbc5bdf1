"""What the guard writes on one instance, and why: pure, from what orch learned.

A reboot cures the leak for one cycle and costs SSH every time. The guard moves the cure
inside the box: sshd and the agents orch needs are shielded from the OOM killer, and the
leaking service is bounded below the level where sshd can no longer fork, with a restart
policy, so the kernel kills the service inside its limit and it is back in seconds.

What orch learned feeds the numbers: the chronic process (``Chronic.process``, from the
console's OOM lines or procstat), the box's memory (``MemoryInfo.SizeInMiB`` of its type,
when known) for the headroom, and the cycle (``Chronic.exhaustion_minutes``) to say how
often the service will restart instead of the box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.decide.chronic import Chronic

# sshd's unit is ssh.service on Debian and Ubuntu, sshd.service elsewhere; the SSM agent is a
# snap on Ubuntu. The script shields whichever of these exist on the box.
SHIELDED_UNITS = (
    "sshd.service",
    "ssh.service",
    "amazon-ssm-agent.service",
    "snap.amazon-ssm-agent.amazon-ssm-agent.service",
    "amazon-cloudwatch-agent.service",
)
SHIELDED_PROCESSES = ("sshd", "amazon-ssm-agent", "amazon-cloudwatch-agent")  # without systemd: /proc/PID/oom_score_adj
OOM_SCORE_ADJ = -1000  # never chosen by the OOM killer
DEFAULT_LIMIT_PERCENT = 75.0
MAX_LIMIT_PERCENT = 85.0  # above this the system itself (sshd forking, the agents, page cache) is squeezed
MIN_LIMIT_PERCENT = 20.0
HIGH_BELOW_MAX_POINTS = 5.0  # MemoryHigh= sits this far under MemoryMax=: reclaim pressure before the kill
HEADROOM_MIB = 1024  # at least this much left to the system, when the box's memory is known
RESTART_SECONDS = 2
PROCESS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,14}")  # a comm name: 15 bytes at most


class GuardError(ValueError):
    """A guard that cannot be planned (bad process name, limit out of range): said in one line."""


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """Everything the script needs: the same spec gives byte-identical scripts (so batches share one)."""

    process: str = ""  # the leaking process as the kernel names it (comm); "" = shields only
    limit_percent: float = DEFAULT_LIMIT_PERCENT  # MemoryMax= as a share of the box's memory
    high_percent: float = DEFAULT_LIMIT_PERCENT - HIGH_BELOW_MAX_POINTS
    restart_seconds: int = RESTART_SECONDS
    oomd: bool = False  # systemd-oomd: ManagedOOMMemoryPressure=kill on the bounded unit
    earlyoom: bool = False  # earlyoom: avoid the shielded processes, prefer the leaking one

    @property
    def cgroup_name(self) -> str:
        """The cgroup of its own a process outside systemd (a daemontools supervise tree) is moved to."""
        return f"orch-guard-{self.process}" if self.process else "orch-guard"


@dataclass(frozen=True, slots=True)
class Target:
    """What orch knows about one instance that the guard is derived from."""

    instance_id: str
    name: str = ""
    process: str = ""  # from the chronic condition, or given by the user
    memory_mib: int | None = None  # the instance type's memory
    cycle_minutes: float | None = None  # boot to exhaustion, when chronic
    cycles_24h: int | None = None


@dataclass(frozen=True, slots=True)
class Write:
    """One thing the script writes, as a person reads it in the plan."""

    path: str
    content: str
    why: str


@dataclass(frozen=True, slots=True)
class InstancePlan:
    instance_id: str
    name: str
    spec: GuardSpec
    writes: tuple[Write, ...]
    reasons: tuple[str, ...]


def check_process(process: str) -> str:
    if process and not PROCESS_NAME.fullmatch(process):
        raise GuardError(f"process {process[:40]!r} is not a process name as the kernel records it "
                         "(letters, digits, . _ + -, at most 15 characters, e.g. ruby)")
    return process


def limit_for(memory_mib: int | None, wanted: float | None = None) -> float:
    """MemoryMax= as a share of the box: the wanted share, lowered to leave the system its headroom."""
    share = DEFAULT_LIMIT_PERCENT if wanted is None else wanted
    if not MIN_LIMIT_PERCENT <= share <= MAX_LIMIT_PERCENT:
        raise GuardError(f"--limit-percent {share:g}: give {MIN_LIMIT_PERCENT:g} to {MAX_LIMIT_PERCENT:g} "
                         "(above that sshd and the agents have no room to fork; below it the service hardly runs)")
    if memory_mib:
        room = 100.0 * (memory_mib - HEADROOM_MIB) / memory_mib
        share = min(share, max(MIN_LIMIT_PERCENT, room))
    return round(share, 1)


def spec_for(target: Target, limit_percent: float | None = None, oomd: bool = False, earlyoom: bool = False) -> GuardSpec:
    limit = limit_for(target.memory_mib, limit_percent)
    return GuardSpec(
        process=check_process(target.process),
        limit_percent=limit,
        high_percent=round(max(MIN_LIMIT_PERCENT / 2, limit - HIGH_BELOW_MAX_POINTS), 1),
        oomd=oomd,
        earlyoom=earlyoom,
    )


def target_from_chronic(instance_id: str, name: str, condition: Chronic | None, memory_mib: int | None) -> Target:
    if condition is None:
        return Target(instance_id, name, memory_mib=memory_mib)
    return Target(instance_id, name, condition.process, memory_mib, condition.exhaustion_minutes, condition.cycles)


# -- the files, as text (the script writes exactly these) -------------------------------------------------


def shield_dropin() -> str:
    return (
        "# Written by orch guard: the OOM killer never picks this service (removed by orch guard remove).\n"
        "[Service]\n"
        f"OOMScoreAdjust={OOM_SCORE_ADJ}\n"
    )


def bound_dropin(spec: GuardSpec, max_bytes: str, high_bytes: str, legacy: bool = False) -> str:
    """The leaking service's drop-in. ``legacy``: systemd before 231 (Amazon Linux 2's 219) knows
    MemoryLimit= and StartLimitInterval= only. Byte values are computed on the box from MemTotal."""
    lines = ["# Written by orch guard: bounded below the level where sshd cannot fork, restarted when the",
             "# kernel kills it inside the limit (removed by orch guard remove).",
             "[Unit]",
             "StartLimitInterval=0" if legacy else "StartLimitIntervalSec=0",
             "[Service]"]
    if legacy:
        lines.append(f"MemoryLimit={max_bytes}")
    else:
        lines += [f"MemoryHigh={high_bytes}", f"MemoryMax={max_bytes}"]
    lines += ["Restart=always", f"RestartSec={spec.restart_seconds}"]
    if spec.oomd and not legacy:
        lines.append("ManagedOOMMemoryPressure=kill")
    return "\n".join(lines) + "\n"


def earlyoom_dropin(spec: GuardSpec) -> str:
    avoid = "|".join(SHIELDED_PROCESSES)
    prefer = f" --prefer '^{re.escape(spec.process)}$$'" if spec.process else ""  # $$: a literal $ for systemd
    return (
        "# Written by orch guard: earlyoom spares sshd and the agents (removed by orch guard remove).\n"
        "[Service]\n"
        "ExecStart=\n"
        f"ExecStart=/usr/bin/earlyoom -r 3600 -m 4 -s 100 --avoid '^({avoid})$$'{prefer}\n"
    )


DROPIN = "90-orch-guard.conf"


def plan(target: Target, spec: GuardSpec) -> InstancePlan:
    """What would be written on this instance and why; nothing is read from or sent to it."""
    writes = [Write(f"/etc/systemd/system/{unit}.d/{DROPIN}", shield_dropin(), "OOM killer never picks it (if the unit exists)")
              for unit in SHIELDED_UNITS]
    reasons = ["sshd, the SSM agent and the CloudWatch agent are shielded: OOMScoreAdjust=-1000 "
               "(without systemd, /proc/PID/oom_score_adj of the running processes)"]
    if spec.process:
        size = f" of {target.memory_mib} MiB" if target.memory_mib else ""
        writes.append(Write(f"/etc/systemd/system/<unit running {spec.process}>.d/{DROPIN}",
                            bound_dropin(spec, f"<{spec.limit_percent:g}% of MemTotal>", f"<{spec.high_percent:g}% of MemTotal>"),
                            f"{spec.process} bounded at {spec.limit_percent:g}%{size}, restarted {spec.restart_seconds} s after a kill"))
        writes.append(Write(f"/sys/fs/cgroup/[memory/]{spec.cgroup_name}", f"memory limit {spec.limit_percent:g}% of MemTotal",
                            f"instead of the drop-in when {spec.process} is not a systemd service (a daemontools supervise "
                            "tree, or no systemd): a cgroup of its own for the supervisor and its children"))
        reasons.append(f"{spec.process} is bounded at {spec.limit_percent:g}% of the box's memory"
                       + (f" ({HEADROOM_MIB} MiB or more left to the system)" if target.memory_mib else "")
                       + ": the kernel kills it inside its limit and it restarts, sshd keeps its room")
        if target.cycle_minutes:
            every = target.cycle_minutes * spec.limit_percent / 100
            reasons.append(f"it ran the box out of memory about {target.cycle_minutes:.0f} min after each boot: expect a restart "
                           f"of {spec.process} about every {every:.0f} min, in seconds, instead of a reboot")
    else:
        reasons.append("no leaking process known (not chronic, no --process): only the shields are written")
    if spec.earlyoom:
        writes.append(Write(f"/etc/systemd/system/earlyoom.service.d/{DROPIN}", earlyoom_dropin(spec), "only where earlyoom is installed"))
    if spec.oomd:
        reasons.append("systemd-oomd, where it runs, kills the bounded unit under memory pressure (ManagedOOMMemoryPressure=kill)")
    writes.append(Write("/var/lib/orch-guard/manifest", "every file, cgroup and oom_score_adj written, one a line",
                        "orch guard remove undoes exactly what it lists"))
    return InstancePlan(target.instance_id, target.name, spec, tuple(writes), tuple(reasons))
