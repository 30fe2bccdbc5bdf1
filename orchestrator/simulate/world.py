"""A simulated fleet and its environment over simulated time.

Each machine is an EC2 face (an ``Instance``, its group and zone) over a box of the one
box model (``orchestrator.box.model``); outages are faults of the environment, not of
a box: a zone whose network is cut (SSH and the agents' uploads together), SSH cut
alone (a security group change), the prober's own network broken. The world answers
what a sweep asks (instances, status checks, probes, memory points, SSM reachability,
console text) at the simulated clock's time, and takes the sweep's actions with the
effects a real EC2 has on a box. It also keeps the books the figures are made of.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Iterable

from orchestrator.box.console import boot_log, oom_log
from orchestrator.box.model import Box, Power, Sshd
from orchestrator.config import ProbeSettings
from orchestrator.model import (
    ActionKind,
    CheckState,
    Instance,
    MemorySeries,
    ProbeAttempt,
    ProbeOutcome,
    ProbeResult,
    StatusChecks,
)

SELECTOR = {"orch:managed": "true"}
SUBNETS = {"us-east-1a": "subnet-sim-a", "us-east-1b": "subnet-sim-b", "us-east-1c": "subnet-sim-c"}
REPLACEMENT_SECONDS = 90.0  # an Auto Scaling replacement: terminate, launch, boot


@dataclass
class SimClock:
    """Simulated now; the sweep reads it as its clock, the world moves it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Outage:
    """A fault of the environment from ``start`` to ``end``, in one zone or everywhere."""

    start: datetime
    end: datetime
    zone: str | None = None  # None: every zone
    instances: frozenset[str] | None = None  # None: every instance of the zone(s)
    cuts_ssh: bool = True  # the prober's packets do not reach sshd (connect timeout)
    cuts_agent: bool = False  # the agents' uploads do not reach CloudWatch; SSM cannot reach the box
    prober: bool = False  # the prober's own network: every probe fails

    def covers(self, machine: Machine, t: datetime) -> bool:
        return self.reaches(machine.slot_key, machine.instance.availability_zone, t)

    def reaches(self, slot_key: str | None, zone: str, t: datetime) -> bool:
        """Whether the outage is on the path of the instance in ``slot_key`` (None: no slot) and ``zone`` at ``t``;
        the served sandbox asks it of its own instances."""
        if not (self.start <= t < self.end):
            return False
        if self.zone is not None and zone != self.zone:
            return False
        return self.instances is None or slot_key in self.instances


@dataclass
class Machine:
    """One instance: what EC2 says about it, and the box behind it."""

    instance: Instance
    box: Box
    slot: int  # the fleet position it holds; a replacement takes over the slot
    console_rng: random.Random

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @property
    def slot_key(self) -> str:
        return f"slot-{self.slot}"


@dataclass(frozen=True, slots=True)
class Applied:
    """An action's effect on the world, and whether the box was fine when it was taken."""

    at: datetime
    instance_id: str
    slot: int
    kind: ActionKind
    ok: bool
    detail: str
    box_was_fine: bool
    down_since: datetime | None  # since when SSH had not answered, if it had not


@dataclass
class World:
    clock: SimClock
    machines: dict[str, Machine] = field(default_factory=dict)
    outages: list[Outage] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    pending: list[tuple[datetime, Machine]] = field(default_factory=list)  # replacements booting
    region: str = "us-east-1"
    _serial: int = 0

    # -- building ---------------------------------------------------------------------

    def add(self, box: Box, zone: str, *, launched: datetime, asg: str | None = None, tags: dict[str, str] | None = None,
            slot: int | None = None, image_id: str = "ami-0c0ffee000sim", template: tuple[str, str] | None = None) -> Machine:
        self._serial += 1
        n = self._serial
        instance_id = f"i-{n:017x}"
        slot = slot if slot is not None else len({m.slot for m in self.machines.values()})
        all_tags = {"Name": f"crawler-{slot + 1}", **SELECTOR, **(tags or {})}
        if asg:
            all_tags["aws:autoscaling:groupName"] = asg
        instance = Instance(
            instance_id=instance_id,
            state="running",
            availability_zone=zone,
            launch_time=launched,
            tags=all_tags,
            private_ip=f"127.30.{n // 250}.{n % 250 + 4}",
            subnet_id=SUBNETS.get(zone, f"subnet-{zone}"),
            vpc_id="vpc-sim",
            image_id=image_id,
            root_device_type="ebs",
            root_device_name="/dev/xvda",
            ebs_devices=("/dev/xvda",),
            instance_type="m5.xlarge",
            launch_template_id=template[0] if template else None,
            launch_template_version=template[1] if template else None,
        )
        machine = Machine(instance, box, slot, random.Random(f"console/{box.seed}"))
        self.machines[instance_id] = machine
        return machine

    # -- what a sweep observes ------------------------------------------------------------

    def running(self) -> list[Machine]:
        self._launch_due()
        return [m for m in self.machines.values() if self._ec2_state(m) == "running"]

    def listed(self) -> list[Machine]:
        """What DescribeInstances returns for the selector: every machine not terminated."""
        self._launch_due()
        return [m for m in self.machines.values() if m.box.power is not Power.TERMINATED]

    def instance(self, machine: Machine) -> Instance:
        state = self._ec2_state(machine)
        return machine.instance if state == machine.instance.state else replace(machine.instance, state=state)

    def status(self, machine: Machine) -> StatusChecks:
        """EC2's checks stay green through all of it: that is the incident."""
        return StatusChecks(machine.instance_id, CheckState.OK, CheckState.OK)

    def probe(self, machine: Machine, probe: ProbeSettings) -> ProbeResult:
        """The real prober's schedule: one attempt, and a failing target again over the retry window."""
        t0 = self.clock.now
        attempts = [self._attempt(machine, t0, probe)]
        if attempts[0].outcome is not ProbeOutcome.OK and probe.attempts > 1:
            step = probe.retry_window / (probe.attempts - 1)
            for i in range(1, probe.attempts):
                attempt = self._attempt(machine, t0 + timedelta(seconds=i * step), probe)
                attempts.append(attempt)
                if attempt.outcome is ProbeOutcome.OK:
                    break
        return ProbeResult(machine.instance.private_ip or "", tuple(attempts))

    def _attempt(self, machine: Machine, t: datetime, probe: ProbeSettings) -> ProbeAttempt:
        if any(o.prober and o.start <= t < o.end for o in self.outages):
            return ProbeAttempt(ProbeOutcome.CONNECT_TIMEOUT, t, probe.connect_timeout, detail="simulated: prober network down")
        if any(o.cuts_ssh and o.covers(machine, t) for o in self.outages):
            return ProbeAttempt(ProbeOutcome.CONNECT_TIMEOUT, t, probe.connect_timeout, detail="simulated: network cut")
        sshd = machine.box.sshd(t)
        if sshd is Sshd.OK:
            return ProbeAttempt(ProbeOutcome.OK, t, 0.004, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")
        if sshd is Sshd.SLOW:
            return ProbeAttempt(ProbeOutcome.OK, t, min(1.5, probe.banner_timeout * 0.9), "SSH-2.0-OpenSSH_9.2p1")
        if sshd is Sshd.HUNG:
            return ProbeAttempt(ProbeOutcome.BANNER_TIMEOUT, t, probe.banner_timeout, detail="no bytes")
        return ProbeAttempt(ProbeOutcome.REFUSED, t, 0.001)

    def memory(self, machine: Machine, window: timedelta) -> MemorySeries:
        """What GetMetricData returns: the agent's points that reached CloudWatch in the window."""
        end = self.clock.now
        points = machine.box.points(end - window, end, now=end)
        cut = [o for o in self.outages if o.cuts_agent]
        if cut:
            points = [(t, v) for t, v in points if not any(o.covers(machine, t) for o in cut)]
        return MemorySeries(machine.instance_id, tuple(points))

    def ssm_online(self, machine: Machine) -> bool:
        t = self.clock.now
        return machine.box.state(t).ssm_online and not any(o.cuts_agent and o.covers(machine, t) for o in self.outages)

    def console(self, machine: Machine) -> str:
        """The serial console as GetConsoleOutput (Latest) shows it: the last boots' logs and OOM lines.

        The buffer keeps the end of the boot before the current one, so the OOM kill that
        wedged the box before orch rebooted it is still there, above the new boot's log:
        only the kernel's uptime stamps tell which boot a line belongs to.
        """
        t = self.clock.now
        box = machine.box
        host = "ip-" + (machine.instance.private_ip or "0.0.0.0").replace(".", "-")
        booted = [c for c in box.cycles if c.booted and c.started_at <= t][-2:]
        kills = box.oom_events(t)
        b = box.behaviour
        text = ""
        for n, cycle in enumerate(booted):
            ends = booted[n + 1].started_at if n + 1 < len(booted) else t
            text += boot_log(random.Random(f"{box.seed}/{cycle.started_at.timestamp()}"), host)
            for at in [k for k in kills if cycle.started_at <= k < ends][-3:]:
                uptime = (at - cycle.started_at).total_seconds()
                text += oom_log(machine.console_rng, uptime, process=b.process, command=b.command, rss_kb=int(b.rss_gib * 1024 * 1024))
        return text

    # -- what a sweep does ------------------------------------------------------------------

    def act(self, instance_id: str, kind: ActionKind) -> Applied:
        t = self.clock.now
        machine = self.machines[instance_id]
        box = machine.box
        fine = box.fine(t)
        down = box.down_since(t)
        ok, detail = True, ""
        if kind is ActionKind.REBOOT:
            begins = box.reboot(t)
            detail = f"RebootInstances accepted (back at {begins:%H:%M:%S})"
        elif kind is ActionKind.STOP_START:
            stopped = box.stop(t)
            box.start(stopped)
            detail = f"stopped at {stopped:%H:%M:%S} and started"
        elif kind is ActionKind.REPLACE:
            if machine.instance.asg_name is None:
                ok, detail = False, "replace needs an Auto Scaling group"
            else:
                box.terminate(t)
                self._replace(machine, t)
                detail = "SetInstanceHealth Unhealthy: the group replaces it"
        elif kind is ActionKind.START:
            box.start(t)
            detail = "StartInstances accepted"
        else:
            ok = box.restart_service(t)
            detail = "command ran: the service restarted" if ok else "InvalidInstanceId: the SSM agent is not online"
        applied = Applied(t, instance_id, machine.slot, kind, ok, detail, fine, down)
        self.applied.append(applied)
        return applied

    def _replace(self, old: Machine, t: datetime) -> None:
        """The group launches a new instance of the same image: the same behaviour, the same leak."""
        box = Box.booted(f"{old.box.seed}/r{len(self.applied)}", old.box.behaviour, t + timedelta(seconds=REPLACEMENT_SECONDS), up_now=False)
        self.pending.append((t + timedelta(seconds=REPLACEMENT_SECONDS), Machine(old.instance, box, old.slot, old.console_rng)))

    def _launch_due(self) -> None:
        due = [(at, m) for at, m in self.pending if at <= self.clock.now]
        if not due:
            return
        self.pending = [(at, m) for at, m in self.pending if at > self.clock.now]
        for at, template in due:
            inst = template.instance
            tags = {k: v for k, v in inst.tags.items() if k not in ("Name", "aws:autoscaling:groupName", *SELECTOR)}
            self.add(template.box, inst.availability_zone, launched=at, asg=inst.asg_name, tags=tags, slot=template.slot,
                     image_id=inst.image_id or "", template=(inst.launch_template_id, inst.launch_template_version or "")
                     if inst.launch_template_id else None)

    def _ec2_state(self, machine: Machine) -> str:
        power = machine.box.state(self.clock.now).power
        return {Power.RUNNING: "running", Power.STOPPED: "stopped", Power.TERMINATED: "terminated"}[power]

    # -- the books ------------------------------------------------------------------------------

    def slots(self) -> dict[int, list[Machine]]:
        """Every machine that held each slot, in order."""
        held: dict[int, list[Machine]] = {}
        for m in self.machines.values():
            held.setdefault(m.slot, []).append(m)
        return held

    def holder(self, machines: Iterable[Machine], t: datetime) -> Machine | None:
        """The machine that held a slot at ``t``: the last one launched by then."""
        best = None
        for m in machines:
            if m.instance.launch_time <= t or best is None:
                best = m
        return best
