"""``Sandbox``: an embedded AWS with a simulated crawler fleet whose sshd can hang.

    with Sandbox(FleetSpec(instances=24, hung=3, seed=1, port=0)) as sb:
        run_anything(env=sb.env())      # boto3 reaches moto on 127.0.0.1
        sb.instances                    # who is hung, leaking, opted out, in the ASG
        sb.events                       # what was rebooted/stopped/terminated, when
        sb.advance(10)                  # ten simulated minutes: leaks climb, some hang

The fleet is built through moto's public API with boto3 (see ``build``); only the
*effects* of actions are simulated in-process (see ``hooks``): a reboot revives sshd
and drops memory to baseline, a stop refuses connections, a terminate removes the
endpoint, an Unhealthy ASG member is replaced. Simulated time: ``now()`` is the wall
clock plus every ``advance``; metrics are written at simulated times, so a sweep
should be given ``sb.now()`` as its ``now``.

One Sandbox per process at a time: moto's state is process-global, and ``start``
resets it so the same seed builds the same fleet (same addresses, same roles).

Scale, measured on the shared 2-core machine (load ~4) with moto 5.2.5: 10,000
managed instances start in ~200-280 s (one CreateTags per Name, 600 PutMetricData
calls for the hour of history; ``metric_minutes`` shortens that), hold ~9,960 fds,
then a DescribeInstances inventory takes ~32 s, DescribeInstanceStatus ~3 s,
ListMetrics + GetMetricData for all ~25 s, ``advance(1)`` <1 s, ``stop`` ~1.5 s.
Those read times need ``ec2_fixes`` and ``cloudwatch_fixes`` (263 s and hours without).

By job: the clock (``clock``), the agents' publishing (``agents``), the effects of actions
(``effects``), the records callers read (``events``), the port check and choice (``ports``),
who each built instance is and its first hour of history (``population``), living on the
wall clock (``living``) and `orch simulate`'s scenarios live (``scenario``).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import boto3
from botocore.config import Config
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal.models import moto_api_backend

from orchestrator.box.model import Box
from orchestrator.sandbox import agents, cloudwatch_fixes, ec2_fixes, hooks, population, ports, ssm_fixes
from orchestrator.sandbox.build import build_fleet
from orchestrator.sandbox.clock import SandboxClock
from orchestrator.sandbox.effects import Effects
from orchestrator.sandbox.endpoints import EndpointFleet
from orchestrator.sandbox.events import ACTIONS, EventKind, SandboxEvent, SimInstance
from orchestrator.sandbox.moto_version import require_supported_moto
from orchestrator.sandbox.server import MotoServer, sandbox_env
from orchestrator.sandbox.spec import FleetSpec, assign_roles, opt_out_indices
from orchestrator.sandbox.sshd import Mode
from orchestrator.simulate.world import Outage

_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=300)
# The sandbox's own clients skip botocore's parameter validation: building a large
# fleet sends 60 datapoints per instance, and validating them cost more than sending.
_BULK_CONFIG = _CLIENT_CONFIG.merge(Config(parameter_validation=False))


class Sandbox(Effects):
    """Embedded moto + simulated fleet + fake sshd endpoints; a context manager."""

    account_id: str = DEFAULT_ACCOUNT_ID

    def __init__(self, spec: FleetSpec | None = None, **fields: Any) -> None:
        if spec is not None and fields:
            raise TypeError("pass a FleetSpec or its fields, not both")
        self.spec = spec if spec is not None else FleetSpec(**fields)
        self.region = self.spec.region
        self.port = self.spec.port
        self.port_note = ""  # said when the spec's port was busy and another was taken
        self.vpc_id = ""
        self.subnet_ids: tuple[str, ...] = ()
        self.hook_errors: list[tuple[str, BaseException]] = []
        self._lock = threading.RLock()
        self._server = MotoServer(port=self.spec.moto_port)
        self._endpoints: EndpointFleet | None = None
        self._clients: dict[str, Any] = {}
        self._sims: dict[str, SimInstance] = {}
        self._boxes: dict[str, Box] = {}
        self._level: dict[str, float] = {}  # the value of each instance's newest datapoint
        self._console: dict[str, str] = {}
        self._console_rng: dict[str, random.Random] = {}
        self._impaired: dict[str, datetime] = {}
        self._events: list[SandboxEvent] = []
        self.clock = SandboxClock()  # tests inject the wall clock: sb.wall = ...
        # Managed index -> box, from a scenario of `orch simulate` (orchestrator.sandbox.scenario);
        # their sshd then follows the model minute by minute, faults and flaps included.
        self.boxes: dict[int, Box] = {}
        # The scenario's network faults, in simulated time: a cut path makes the prober's connections time
        # out (EndpointFleet.set_cut), a cut agent publishes nothing while it lasts.
        self.outages: list[Outage] = []
        self._series_end = self.clock.wall()
        self._installed = False
        self._ready = False

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        """Start moto, build the fleet through it, bind endpoints, write metrics."""
        require_supported_moto()  # the patches below reach into this moto's internals
        hooks.install(self)  # first: refuses while another Sandbox owns moto's state
        self._installed = True
        try:
            moto_api_backend.reset()
            self.port, note = ports.choose(self.port, self.spec)  # before moto and the build: a busy port is found in a millisecond
            self.port_note = note or self.port_note
            ec2_fixes.install()  # before the build: tagging 10,000 instances needs it too
            self._server.start()
            self._build()
            cloudwatch_fixes.install()
            ssm_fixes.install()
            self._ready = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything this Sandbox started and forget moto's state; idempotent."""
        self._ready = False
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if callable(close):
                close()
        self._clients.clear()
        self._server.stop()
        if self._endpoints is not None:
            self._endpoints.stop()
            self._endpoints = None
        if self._installed:
            ssm_fixes.uninstall()
            cloudwatch_fixes.uninstall()
            ec2_fixes.uninstall()
            hooks.uninstall(self)
            moto_api_backend.reset()
            self._installed = False

    # -- what callers use ------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self._server.endpoint_url

    def env(self) -> dict[str, str]:
        """Environment for a boto3 user (a CLI, a subprocess) to reach this sandbox."""
        return sandbox_env(self.endpoint_url, self.region)

    def client(self, service: str, *, validate: bool = True) -> Any:
        """A boto3 client for ``service`` pointed at this sandbox (cached)."""
        key = f"{service}/{validate}"
        with self._lock:
            if key not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name=self.region
                )
                config = _CLIENT_CONFIG if validate else _BULK_CONFIG
                self._clients[key] = session.client(service, endpoint_url=self.endpoint_url, config=config)
            return self._clients[key]

    @property
    def instances(self) -> list[SimInstance]:
        """Snapshot of every instance (managed by index, then unmanaged), modes live."""
        with self._lock:
            live = self._endpoints.modes() if self._endpoints is not None else {}
            cut = self._endpoints.cut_off() if self._endpoints is not None and self.outages else set()
            result = [
                dataclasses.replace(
                    sim,
                    mode=live.get(sim.instance_id, Mode.REFUSING),
                    memory_percent=self._level.get(sim.instance_id)
                    if sim.reports_metrics and sim.state == "running"
                    else None,
                    impaired=sim.instance_id in self._impaired,
                    cut=sim.instance_id in cut,
                )
                for sim in self._sims.values()
            ]
        return sorted(result, key=lambda s: (not s.managed, s.index if s.index is not None else 0, s.name))

    def instance(self, key: str) -> SimInstance:
        """By instance id or by Name tag."""
        for sim in self.instances:
            if key in (sim.instance_id, sim.name):
                return sim
        raise KeyError(key)

    @property
    def events(self) -> list[SandboxEvent]:
        with self._lock:
            return list(self._events)

    def acted_on(self, kinds: Iterable[EventKind] = ACTIONS) -> set[str]:
        """Ids of instances that a caller's AWS action touched (reboot, stop, ...)."""
        wanted = set(kinds)
        return {e.instance_id for e in self.events if e.what in wanted}

    def now(self) -> datetime:
        """Simulated now: wall clock (sped up by the time scale) plus every ``advance``. Give it to the sweep."""
        return self.clock.now()

    @property
    def wall(self) -> Callable[[], datetime]:
        return self.clock.wall

    @wall.setter
    def wall(self, clock: Callable[[], datetime]) -> None:
        self.clock.wall = clock

    def set_time_scale(self, scale: float) -> None:
        """From now on ``scale`` simulated minutes pass per wall-clock minute (orchestrator.sandbox.clock)."""
        with self._lock:
            self.clock.set_scale(scale)

    def publish_due(self) -> list[SandboxEvent]:
        """Living mode: every simulated minute up to now happens (agents publish, leaks climb and
        wedge); simulated time itself is not moved. Returns the HUNG events this caused."""
        with self._lock:
            minutes = int((self.now() - self._series_end).total_seconds() // 60)
        return self._happen(minutes) if minutes >= 1 else []

    @property
    def series_end(self) -> datetime:
        """Time of the latest per-minute datapoint (``advance`` moves it); points that
        reboots and starts write come strictly after it."""
        with self._lock:
            return self._series_end

    def metric_dimensions(self, instance_id: str) -> list[dict[str, str]]:
        """The dimension set this instance's agent publishes under, sorted by name."""
        with self._lock:
            sim = self._sims[instance_id]
        return agents.dimensions(sim, self.spec.agent_dimensions)

    def console_text(self, instance_id: str) -> str:
        with self._lock:
            return self._console[instance_id]

    def advance(self, minutes: int = 1) -> list[SandboxEvent]:
        """Let ``minutes`` simulated minutes pass: every running agent reports each
        minute, leaks climb, and a leak that reaches ~98 % hangs its sshd.

        Returns the HUNG events this caused.
        """
        if minutes < 1:
            raise ValueError("minutes must be >= 1")
        with self._lock:
            self.clock.offset += timedelta(minutes=minutes)
        return self._happen(minutes)

    def _happen(self, minutes: int) -> list[SandboxEvent]:
        """``minutes`` simulated minutes after the last point: every running agent reports each
        minute, leaks climb, and a leak that reaches ~98 % hangs its sshd."""
        points: list[tuple[SimInstance, datetime, float]] = []
        caused: list[SandboxEvent] = []
        with self._lock:
            start = self._series_end
            for sim in list(self._sims.values()):
                if sim.state != "running" or not sim.reports_metrics:
                    continue
                box = self._boxes[sim.instance_id]
                for step in range(1, minutes + 1):
                    at = start + timedelta(minutes=step)
                    if at < box.current.started_at:
                        continue  # minutes the box's (re)boot already left behind
                    value = box.memory(at)
                    if value is not None and not self.agent_cut(sim, at):
                        points.append((sim, at, value))
                        self._level[sim.instance_id] = value
                    if box.wedged(at) and not box.wedged(at - timedelta(minutes=1)):
                        caused.append(self._exhaust(sim, at))
                    elif self.boxes and sim.index in self.boxes:
                        self._follow(sim, box, at)
            self._series_end = start + timedelta(minutes=minutes)
            if self.outages:
                self._cut_paths(self._series_end)
        self._put_points(points)
        return caused

    def path_cut(self, sim: SimInstance, t: datetime) -> bool:
        """The prober cannot reach this instance's sshd at ``t``: its own network is down, or the path to the box is cut."""
        slot = None if sim.index is None else f"slot-{sim.index}"
        return any((o.prober and o.start <= t < o.end) or (o.cuts_ssh and o.reaches(slot, sim.availability_zone, t))
                   for o in self.outages)

    def agent_cut(self, sim: SimInstance, t: datetime) -> bool:
        """The instance's agent cannot reach CloudWatch at ``t``: that minute's point never arrives."""
        slot = None if sim.index is None else f"slot-{sim.index}"
        return any(o.cuts_agent and o.reaches(slot, sim.availability_zone, t) for o in self.outages)

    def _cut_paths(self, t: datetime) -> None:
        """Every endpoint's path as the outages have it at ``t`` (cut or restored)."""
        endpoints = self._require_endpoints()
        cut = endpoints.cut_off()
        for sim in self._sims.values():
            if sim.state == "terminated":
                continue
            wanted = self.path_cut(sim, t)
            if wanted is not (sim.instance_id in cut):
                endpoints.set_cut(sim.instance_id, wanted)

    leak_progress = advance

    def impair(self, instance_id: str, impaired: bool = True) -> None:
        """Make DescribeInstanceStatus report the instance check impaired (or clear it)."""
        with self._lock:
            if instance_id not in self._sims:
                raise KeyError(instance_id)
            if impaired:
                self._impaired[instance_id] = self.now()
                self._record(instance_id, EventKind.IMPAIR)
            elif self._impaired.pop(instance_id, None) is not None:
                self._record(instance_id, EventKind.UNIMPAIR)

    def console_output(self, instance_id: str) -> str | None:
        with self._lock:
            return self._console.get(instance_id)

    def impaired_since(self, instance_id: str) -> datetime | None:
        with self._lock:
            return self._impaired.get(instance_id)

    def on_error(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self.hook_errors.append((where, exc))

    # -- internals -------------------------------------------------------------------

    def _build(self) -> None:
        spec = self.spec
        self._series_end = self.clock.wall().replace(microsecond=0)  # 'now' for the shapes
        roles = assign_roles(spec)
        built = build_fleet(
            self.client("ec2", validate=False),
            self.client("autoscaling", validate=False),
            vpc_cidr=spec.vpc_cidr,
            standalone=spec.standalone,
            asg_members=spec.asg_members,
            opt_out=opt_out_indices(roles),
            unmanaged=spec.unmanaged,
            instance_type=spec.instance_type,
            tagged=spec.tagged,
            ssh_port=self.port,
        )
        self.vpc_id, self.subnet_ids = built.vpc_id, built.subnet_ids
        for member in population.members(built, roles, spec, self.boxes, self._series_end):
            instance_id = member.sim.instance_id
            self._sims[instance_id], self._boxes[instance_id] = member.sim, member.box
            self._console[instance_id], self._console_rng[instance_id] = member.console, member.console_rng
        self._endpoints = EndpointFleet(self.port, slow_delay=spec.slow_delay, hold=spec.hold)
        self._endpoints.start(expected_endpoints=len(self._sims))
        self._endpoints.add_many((s.instance_id, s.private_ip, s.mode) for s in self._sims.values())
        points = population.history(self._sims.values(), self._boxes, self._series_end, spec.metric_minutes)
        for sim, _, value in points:
            self._level[sim.instance_id] = value
        self._put_points(points)

    def _rng(self, purpose: str, key: str) -> random.Random:
        return population.seeded_rng(self.spec.seed, purpose, key)

    def _box_seed(self, key: str) -> str:
        return population.box_seed(self.spec.seed, key)

    def _put_points(self, points: list[tuple[SimInstance, datetime, float]]) -> None:
        agents.put_batches(self.client("cloudwatch", validate=False), self.spec.namespace,
                           [self._datum(sim, at, value) for sim, at, value in points])

    def _datum(self, sim: SimInstance, at: datetime, value: float) -> dict[str, Any]:
        return agents.datum(self.spec.metric, sim, self.spec.agent_dimensions, self.clock.stamp(at), value)

    def _record(self, instance_id: str, what: EventKind, at: datetime | None = None) -> SandboxEvent:
        event = SandboxEvent(at or self.now(), instance_id, what)
        self._events.append(event)
        return event

    def _update(self, instance_id: str, **changes: Any) -> None:
        self._sims[instance_id] = dataclasses.replace(self._sims[instance_id], **changes)

    def _known(self, instance_ids: list[str]) -> list[str]:
        return [i for i in instance_ids if i in self._sims] if self._ready else []

    def _require_endpoints(self) -> EndpointFleet:
        if self._endpoints is None:
            raise RuntimeError("sandbox not started")
        return self._endpoints
