"""One model of how a crawler box behaves: memory, sshd, the agent, the console, actions.

The sandbox (wall clock, moto, real sockets) and the simulator (simulated time, pure)
both drive this model, so a failure mode is written once and appears in both.

A box lives as a sequence of *cycles*. A cycle starts at a boot (launch, reboot,
start) or at a restart of the leaking service, and everything inside it is a function
of time: memory sits at a baseline, then climbs at the leak rate; once it reaches the
wedge level sshd can no longer fork (the TCP handshake still completes, no banner
comes) and the kernel's OOM killer writes to the console; a fault of the cycle (a
hung or refusing sshd) may strike at a given moment. The per-minute noise on memory is
a pure function of the box's seed and the minute, so the same seed replays exactly.

Actions change the future only: ``reboot`` and ``start`` open a new cycle after a boot
delay, ``stop`` ends it, ``restart_service`` resets memory without a boot (sshd keeps
answering). What happens after each action comes from the box's ``Behaviour``: does
the process leak again, does the fault come back (a box that never recovers), does it
come back a few minutes after every boot (a flapping box).
"""

from __future__ import annotations

import enum
import hashlib
import math
import random
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta

BASELINE_PERCENT = 35.0  # where memory starts after a boot unless a behaviour says otherwise
TOP_MIN = 98.0  # an exhausted box sits here: the kernel keeps a sliver free by killing things
TOP_MAX = 99.5
FLOOR = 1.0


class Sshd(str, enum.Enum):
    """What a prober sees on the SSH port."""

    OK = "ok"  # banner at once
    SLOW = "slow"  # banner after a delay
    HUNG = "hung"  # TCP accepted, never a byte: the incident
    REFUSED = "refused"  # nothing listens (booting, stopped, sshd dead)


class Fault(str, enum.Enum):
    """sshd broken for a reason other than memory."""

    HUNG = "hung"
    REFUSED = "refused"
    SLOW = "slow"


class Power(str, enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a box behaves after each boot or restart; the first cycle may differ (``Cycle``)."""

    base_percent: float = BASELINE_PERCENT
    leak_per_min: float = 0.0  # memory growth after a boot, percentage points per minute
    leak_delay_minutes: float = 0.0  # after a boot, how long before the leak starts
    noise: float = 0.5  # standard deviation of the per-minute jitter
    wedge_percent: float = TOP_MIN  # at or above this sshd cannot fork
    fault: Fault | None = None  # a fault that strikes every cycle (None: cycles start clean)
    fault_after_minutes: float = 0.0  # how long after sshd comes up the fault strikes
    boot_seconds: float = 60.0  # reboot or start: sshd refuses this long
    shutdown_seconds: float = 10.0  # a clean shutdown before a reboot or stop
    # A guest that cannot shut down (out of memory) is hard-rebooted by EC2: "If an
    # instance does not cleanly shut down within four minutes, Amazon EC2 performs a
    # hard reboot" (RebootInstances, EC2 API reference). A stuck stop takes as long.
    hard_reboot_seconds: float = 240.0
    stop_seconds: float = 30.0  # a stop takes this long to complete
    restart_seconds: float = 20.0  # a service restart: memory falls after this long
    agent: bool = True  # the CloudWatch agent reports memory
    agent_starves_at: float | None = None  # the agent falls silent at or above this level
    # What the agent's points go through on their way to GetMetricData.
    sawtooth_percent: float = 0.0  # a GC sawtooth on top of the trend: +- this many points
    sawtooth_minutes: float = 7.0  # its period
    lost_share: float = 0.0  # share of points that never reach CloudWatch
    delay_seconds: tuple[float, float] = (0.0, 0.0)  # each point reaches GetMetricData this long after its timestamp
    # The kernel kills the leaking process at this level and its supervisor restarts it in
    # seconds: memory falls back, sshd never starves (a bounded worker, or orch guard).
    oom_restart_percent: float | None = None
    process: str = "ruby"  # the leaking process, as the OOM killer names it
    command: str = "ucrawler.rb"
    rss_gib: float = 14.6  # its resident size when the killer takes it
    # orch guard (docs/guard.md): the service bounded in a cgroup. At this level of the box's
    # memory the kernel kills it inside its limit and it restarts by itself after
    # service_restart_seconds, a new cycle without a boot; sshd (shielded, with room left)
    # never wedges. None: no guard.
    guard_limit_percent: float | None = None
    service_restart_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Cycle:
    """One stretch between boots or restarts, with everything that decides its shape."""

    started_at: datetime  # the boot or the restart; points before it describe the last cycle
    up_at: datetime  # sshd and the agent answer from here
    base: float
    rate: float  # percentage points per minute
    climb_from: datetime  # the leak starts here
    noise: float
    fault: Fault | None = None
    fault_at: datetime | None = None
    booted: bool = True  # False: a service restart, the box kept running
    killed: bool = False  # began with the kernel killing the service inside the guard's limit

    def wedged_at(self, wedge_percent: float, restart_percent: float | None = None) -> datetime | None:
        """When the climb reaches the wedge level; None if it never does (or the process is killed first)."""
        if restart_percent is not None and restart_percent < wedge_percent:
            return None
        if self.base >= wedge_percent:
            return self.climb_from
        if self.rate <= 0:
            return None
        return self.climb_from + timedelta(minutes=(wedge_percent - self.base) / self.rate)


@dataclass(frozen=True, slots=True)
class BoxState:
    power: Power
    sshd: Sshd
    memory: float | None  # what the agent would report now; None while it cannot
    wedged: bool  # memory exhausted: sshd cannot fork, the OOM killer is busy
    ssm_online: bool  # the SSM agent can run a command


def _unit(seed: bytes, minute: int, salt: int) -> float:
    """A uniform number in (0, 1) that depends only on the seed, the minute and the salt."""
    digest = hashlib.blake2b(struct.pack(">qq", minute, salt), key=seed[:64], digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


def _gauss(seed: bytes, minute: int) -> float:
    u1, u2 = _unit(seed, minute, 1), _unit(seed, minute, 2)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


@dataclass
class Box:
    """One instance's behaviour over time; methods take the moment they are about."""

    seed: str
    behaviour: Behaviour
    cycles: list[Cycle]
    power: Power = Power.RUNNING
    stopped_at: datetime | None = None
    _key: bytes = field(init=False, repr=False)
    _cache: dict[int, float] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cycles:
            raise ValueError("a box needs a first cycle")
        self._key = hashlib.blake2b(self.seed.encode(), digest_size=32).digest()

    # -- building ---------------------------------------------------------------------

    @classmethod
    def booted(cls, seed: str, behaviour: Behaviour, at: datetime, *, up_now: bool = True) -> Box:
        """A box that (re)booted at ``at`` and behaves as ``behaviour`` says from then on."""
        return cls(seed, behaviour, [_fresh_cycle(behaviour, at, booted=True, up_now=up_now)])

    @classmethod
    def since(cls, seed: str, behaviour: Behaviour, first: Cycle) -> Box:
        """A box whose current cycle is ``first`` (a shape seen 'now'); later ones follow ``behaviour``."""
        return cls(seed, behaviour, [first])

    # -- what is true at a moment -------------------------------------------------------

    def cycle_at(self, t: datetime) -> Cycle:
        """The cycle in force at ``t`` (the first one for earlier moments)."""
        self._guard_kills_until(t)
        for cycle in reversed(self.cycles):
            if cycle.started_at <= t:
                return cycle
        return self.cycles[0]

    @property
    def current(self) -> Cycle:
        return self.cycles[-1]

    def wedged(self, t: datetime) -> bool:
        if not self._running(t):
            return False
        cycle = self.cycle_at(t)
        at = self.wedge_at(cycle)
        return at is not None and at <= t and t >= cycle.up_at

    def wedged_since(self, t: datetime) -> datetime | None:
        """When the current wedge began (None: not wedged at ``t``)."""
        if not self.wedged(t):
            return None
        cycle = self.cycle_at(t)
        at = self.wedge_at(cycle)
        return max(at, cycle.up_at) if at is not None else None

    def memory(self, t: datetime) -> float | None:
        """mem_used_percent as the agent would report it at ``t``; None while it cannot."""
        if not self.behaviour.agent or not self._running(t):
            return None
        cycle = self.cycle_at(t)
        if t < cycle.up_at:
            return None  # booting: no agent yet
        minute = int(t.timestamp() // 60)
        value = self._level(cycle, t, minute)
        starve = self.behaviour.agent_starves_at
        if starve is not None and value >= starve:
            return None
        return value

    def sshd(self, t: datetime) -> Sshd:
        if not self._running(t):
            return Sshd.REFUSED
        cycle = self.cycle_at(t)
        if t < cycle.up_at:
            return Sshd.REFUSED
        if self.wedged(t):
            return Sshd.HUNG
        if cycle.fault is not None and cycle.fault_at is not None and t >= cycle.fault_at:
            return Sshd(cycle.fault.value)
        return Sshd.OK

    def state(self, t: datetime) -> BoxState:
        running = self._running(t)
        wedged = self.wedged(t)
        sshd = self.sshd(t)
        return BoxState(
            power=self._power_at(t),
            sshd=sshd,
            memory=self.memory(t),
            wedged=wedged,
            ssm_online=running and not wedged and t >= self.cycle_at(t).up_at,
        )

    def answers_ssh(self, t: datetime) -> bool:
        return self.sshd(t) in (Sshd.OK, Sshd.SLOW)

    def fine(self, t: datetime) -> bool:
        """Nothing wrong with the box itself: it answers SSH and no leak is under way.

        What the simulator calls 'a box that was fine' when it counts actions that
        should not have happened.
        """
        if not self.answers_ssh(t):
            return False
        cycle = self.cycle_at(t)
        return cycle.rate <= 0 or self.wedge_at(cycle) is None

    def points(self, start: datetime, end: datetime, now: datetime | None = None) -> list[tuple[datetime, float]]:
        """The agent's one-a-minute datapoints in ``(start, end]`` that reached CloudWatch by ``now``.

        A point is lost on the way for ``lost_share`` of the minutes, and the rest reach
        GetMetricData ``delay_seconds`` after their timestamp (CloudWatch's ingestion
        delay); ``now`` None: every point that was sent, whenever it arrives.
        """
        b = self.behaviour
        first = int(start.timestamp() // 60) + 1
        last = int(end.timestamp() // 60)
        out: list[tuple[datetime, float]] = []
        tz = end.tzinfo
        low, high = b.delay_seconds
        for minute in range(first, last + 1):
            if b.lost_share and _unit(self._key, minute, 4) < b.lost_share:
                continue
            at = datetime.fromtimestamp(minute * 60, tz)
            if now is not None and high > 0:
                delay = low + (high - low) * _unit(self._key, minute, 5)
                if at + timedelta(seconds=delay) > now:
                    continue
            value = self.memory(at)
            if value is not None:
                out.append((at, value))
        return out

    # -- actions ------------------------------------------------------------------------

    def reboot(self, at: datetime) -> datetime:
        """Returns when the new cycle begins: after a clean shutdown, or EC2's hard reboot of a wedged guest."""
        if not self._running(at):
            return at
        begin = at + timedelta(seconds=self._shutdown(at))
        self._new_cycle(begin, booted=True)
        return begin

    def _shutdown(self, at: datetime) -> float:
        b = self.behaviour
        return b.hard_reboot_seconds if self.wedged(at) else b.shutdown_seconds

    def down_since(self, t: datetime) -> datetime | None:
        """Since when SSH has not answered (None while it answers)."""
        if self.answers_ssh(t):
            return None
        if not self._running(t):
            return self.stopped_at
        cycle = self.cycle_at(t)
        candidates = [cycle.started_at]
        wedged = self.wedged_since(t)
        if wedged is not None:
            candidates.append(wedged)
        if cycle.fault is not None and cycle.fault_at is not None and cycle.fault_at <= t:
            candidates.append(max(cycle.fault_at, cycle.up_at))
        before = [c for c in candidates if c <= t]
        if t < cycle.up_at:  # booting: down since the shutdown began, or since the wedge before it
            previous = self.cycles[-2] if len(self.cycles) > 1 and self.cycles[-1] is cycle else None
            if previous is not None:
                was = self.wedge_at(previous)
                if was is not None and was < cycle.started_at:
                    return max(was, previous.up_at)
            return cycle.started_at - timedelta(seconds=self.behaviour.shutdown_seconds)
        return max(before) if before else cycle.started_at

    def stop(self, at: datetime) -> datetime:
        """Returns when the instance is stopped."""
        done = at + timedelta(seconds=self._shutdown(at) + self.behaviour.stop_seconds)
        if self.power is Power.RUNNING:
            self.power = Power.STOPPED
            self.stopped_at = done
        return done

    def start(self, at: datetime) -> None:
        if self.power is Power.TERMINATED:
            return
        begin = max(at, self.stopped_at or at)
        self.power = Power.RUNNING
        self.stopped_at = None
        self._new_cycle(begin, booted=True)

    def terminate(self, at: datetime) -> None:
        self.power = Power.TERMINATED
        self.stopped_at = at

    def restart_service(self, at: datetime) -> bool:
        """Restart the leaking process (an SSM command); False when it could not run."""
        if not self.state(at).ssm_online:
            return False
        self._new_cycle(at, booted=False)
        return True

    # -- console ------------------------------------------------------------------------

    def oom_events(self, until: datetime) -> list[datetime]:
        """When the OOM killer fired up to ``until``: once per wedged cycle, or at each limit of a restart loop."""
        found = []
        self._guard_kills_until(until)  # the guard's kills open cycles of their own
        for n, cycle in enumerate(self.cycles):
            ends = self.cycles[n + 1].started_at if n + 1 < len(self.cycles) else until
            found += [at for at in self._restart_kills(cycle, min(ends, until)) if self._running(at)]
            at = self.wedge_at(cycle)
            if at is not None and at <= min(ends, until) and at < ends and at >= cycle.up_at and self._running(at):
                found.append(at)  # a wedge the next boot pre-empted never happened
        return found

    def _restart_kills(self, cycle: Cycle, until: datetime) -> list[datetime]:
        limit = self.behaviour.oom_restart_percent
        if limit is None or cycle.rate <= 0 or limit <= cycle.base:
            return []
        every = timedelta(minutes=(limit - cycle.base) / cycle.rate)
        kills, at = [], cycle.climb_from + every
        while at <= until and len(kills) < 10_000:
            kills.append(at)
            at += every
        return kills

    def guard_kills(self, since: datetime, until: datetime) -> int:
        """Kills of the service inside the guard's limit in ``[since, until]``: each a restart in seconds, not a reboot."""
        self._guard_kills_until(until)
        return sum(1 for c in self.cycles if c.killed and since <= c.started_at <= until)

    # -- internals ------------------------------------------------------------------------

    def _guard_kills_until(self, t: datetime) -> None:
        """The guard's kills are the box's own doing: each one up to ``t`` opens a cycle without a boot."""
        b = self.behaviour
        limit = b.guard_limit_percent
        while limit is not None:
            cycle = self.cycles[-1]
            at = cycle.wedged_at(limit)
            if at is None or at > t or not self._running(at) or (cycle.killed and at <= cycle.started_at):
                return  # (the last: a baseline at or over the limit, a guard set too low to let it run)
            at = max(at, cycle.up_at)
            # Memory falls to the baseline at the kill; the service runs and leaks again after its restart.
            self.cycles.append(Cycle(
                started_at=at, up_at=at, base=b.base_percent, rate=b.leak_per_min,
                climb_from=at + timedelta(seconds=b.service_restart_seconds, minutes=b.leak_delay_minutes), noise=b.noise,
                fault=b.fault, fault_at=at + timedelta(minutes=b.fault_after_minutes) if b.fault is not None else None,
                booted=False, killed=True,
            ))

    def _running(self, t: datetime) -> bool:
        if self.power is Power.RUNNING:
            return True
        return self.stopped_at is not None and t < self.stopped_at

    def _power_at(self, t: datetime) -> Power:
        return Power.RUNNING if self._running(t) else self.power

    def wedge_at(self, cycle: Cycle) -> datetime | None:
        """When ``cycle`` wedges this box (None: never)."""
        return cycle.wedged_at(self.behaviour.wedge_percent, self.behaviour.oom_restart_percent)

    def _level(self, cycle: Cycle, t: datetime, minute: int) -> float:
        b = self.behaviour
        wedge = self.wedge_at(cycle)
        jitter = self._jitter(minute)
        if wedge is not None and t >= wedge:
            span = TOP_MAX - TOP_MIN
            return round(TOP_MIN + span * _unit(self._key, minute, 3), 2)
        since = max(0.0, (t - cycle.climb_from).total_seconds() / 60)
        climbed = since * cycle.rate
        limit = b.oom_restart_percent
        if limit is not None and limit > cycle.base and cycle.rate > 0:
            climbed %= limit - cycle.base  # killed at the limit, restarted at the baseline
        value = cycle.base + climbed + cycle.noise * jitter
        if b.sawtooth_percent:
            phase = (t.timestamp() / 60 / b.sawtooth_minutes + _unit(self._key, 0, 6)) % 1.0
            value += b.sawtooth_percent * (2 * phase - 1)
        if wedge is not None:
            value = min(value, self.behaviour.wedge_percent - 0.01)
        return round(min(TOP_MAX, max(FLOOR, value)), 2)

    def _jitter(self, minute: int) -> float:
        cached = self._cache.get(minute)
        if cached is None:
            cached = self._cache[minute] = _gauss(self._key, minute)
        return cached

    def _new_cycle(self, at: datetime, *, booted: bool) -> None:
        while len(self.cycles) > 1 and self.cycles[-1].killed and self.cycles[-1].started_at > at:
            self.cycles.pop()  # a kill foreseen past ``at`` (a probe looked ahead): the action comes first
        self.cycles.append(_fresh_cycle(self.behaviour, at, booted=booted, up_now=False))


def _fresh_cycle(b: Behaviour, at: datetime, *, booted: bool, up_now: bool) -> Cycle:
    """A cycle as the behaviour says a boot (or a service restart) begins one.

    A boot refuses SSH for ``boot_seconds`` (none when ``up_now``, as for a box that was
    already up when the model took it over). A restart begins when the process has
    restarted, ``restart_seconds`` after the command; sshd answers throughout.
    """
    if not booted:
        at = at + timedelta(seconds=b.restart_seconds)
    up = at + timedelta(seconds=b.boot_seconds) if booted and not up_now else at
    fault_at = up + timedelta(minutes=b.fault_after_minutes) if b.fault is not None else None
    return Cycle(
        started_at=at,
        up_at=up,
        base=b.base_percent,
        rate=b.leak_per_min,
        climb_from=up + timedelta(minutes=b.leak_delay_minutes),
        noise=b.noise,
        fault=b.fault,
        fault_at=fault_at,
        booted=booted,
    )


def seeded_rng(*parts: object) -> random.Random:
    """A ``random.Random`` for one purpose of one box: same parts, same numbers."""
    return random.Random("/".join(str(p) for p in parts))
