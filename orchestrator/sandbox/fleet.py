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
"""

from __future__ import annotations

import dataclasses
import enum
import random
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, NamedTuple

import boto3
from botocore.config import Config
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models.instances import Instance as MotoInstance
from moto.moto_api._internal.models import moto_api_backend

from orchestrator.box.console import boot_log, oom_log
from orchestrator.box.model import Box, Fault, Sshd
from orchestrator.sandbox import cloudwatch_fixes, ec2_fixes, hooks, ssm_fixes
from orchestrator.sandbox.build import MANAGED_TAG, BuiltFleet, Launched, build_fleet
from orchestrator.sandbox.endpoints import EndpointFleet, Mode
from orchestrator.sandbox.memory import MemoryShape, box_for
from orchestrator.sandbox.moto_version import require_supported_moto
from orchestrator.sandbox.server import MotoServer, sandbox_env
from orchestrator.sandbox.spec import FleetSpec, Role, assign_roles, opt_out_indices

PUT_BATCH = 1000  # PutMetricData accepts up to 1000 datums per call
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=300)
# The sandbox's own clients skip botocore's parameter validation: building a large
# fleet sends 60 datapoints per instance, and validating them cost more than sending.
_BULK_CONFIG = _CLIENT_CONFIG.merge(Config(parameter_validation=False))


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

    @property
    def asg_member(self) -> bool:
        return self.asg_name is not None


class Sandbox:
    """Embedded moto + simulated fleet + fake sshd endpoints; a context manager."""

    account_id: str = DEFAULT_ACCOUNT_ID

    def __init__(self, spec: FleetSpec | None = None, **fields: Any) -> None:
        if spec is not None and fields:
            raise TypeError("pass a FleetSpec or its fields, not both")
        self.spec = spec if spec is not None else FleetSpec(**fields)
        self.region = self.spec.region
        self.port = self.spec.port
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
        self._offset = timedelta(0)
        self._series_end = datetime.now(timezone.utc)
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
            ec2_fixes.install()  # before the build: tagging 10,000 instances needs it too
            self._server.start()
            if self.port == 0:
                self.port = _free_port()
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
            result = [
                dataclasses.replace(
                    sim,
                    mode=live.get(sim.instance_id, Mode.REFUSING),
                    memory_percent=self._level.get(sim.instance_id)
                    if sim.reports_metrics and sim.state == "running"
                    else None,
                    impaired=sim.instance_id in self._impaired,
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
        """Simulated now: wall clock plus every ``advance``. Give it to the sweep."""
        return datetime.now(timezone.utc) + self._offset

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
        return _dimensions(sim, self.spec.agent_dimensions)

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
                    if value is not None:
                        points.append((sim, at, value))
                        self._level[sim.instance_id] = value
                    if box.wedged(at) and not box.wedged(at - timedelta(minutes=1)):
                        caused.append(self._exhaust(sim, at))
            self._series_end = start + timedelta(minutes=minutes)
            self._offset += timedelta(minutes=minutes)
        self._put_points(points)
        return caused

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

    # -- hooks.Listener: effects of actions taken through moto ------------------------

    def on_reboot(self, instance_ids: list[str]) -> None:
        with self._lock:
            for instance_id in self._known(instance_ids):
                self._record(instance_id, EventKind.REBOOT)
                if self._sims[instance_id].state == "running":
                    self._boot(instance_id, restart=False)

    def on_stop(self, instance_ids: list[str]) -> None:
        with self._lock:
            for instance_id in self._known(instance_ids):
                self._record(instance_id, EventKind.STOP)
                self._boxes[instance_id].stop(self.now())
                self._update(instance_id, state="stopped", mode=Mode.REFUSING)
                self._impaired.pop(instance_id, None)
                self._require_endpoints().set_mode(instance_id, Mode.REFUSING)

    def on_start(self, instance_ids: list[str]) -> None:
        with self._lock:
            for instance_id in self._known(instance_ids):
                self._record(instance_id, EventKind.START)
                self._update(instance_id, state="running")
                self._boot(instance_id, restart=True)

    def on_terminate(self, instance_ids: list[str]) -> None:
        with self._lock:
            for instance_id in self._known(instance_ids):
                self._record(instance_id, EventKind.TERMINATE)
                self._boxes[instance_id].terminate(self.now())
                self._update(instance_id, state="terminated", mode=Mode.REFUSING)
                self._impaired.pop(instance_id, None)
                self._require_endpoints().remove(instance_id)

    def on_launch(self, instances: list[MotoInstance]) -> None:
        """An ASG replacement (or any instance launched into our subnets): a fresh box."""
        with self._lock:
            if not self._ready:
                return  # the build's own launches are registered by _build
            for instance in instances:
                if instance.subnet_id not in self.subnet_ids or instance.id in self._sims:
                    continue
                tags = dict(instance.ec2_backend.tags.get(instance.id, {}))
                managed = tags.get(MANAGED_TAG[0]) == MANAGED_TAG[1]
                index = sum(1 for s in self._sims.values() if s.managed) if managed else None
                name = f"crawler-{index + 1}" if index is not None else tags.get("Name", "")
                if index is not None:
                    instance.ec2_backend.create_tags([instance.id], {"Name": name})
                sim = SimInstance(
                    instance_id=instance.id,
                    name=name,
                    private_ip=str(instance.private_ip),
                    availability_zone=instance.availability_zone or "",
                    subnet_id=instance.subnet_id,
                    image_id=instance.image_id,
                    instance_type=instance.instance_type,
                    mode=Mode.HEALTHY,
                    state="running",
                    managed=managed,
                    opt_out=tags.get("orch:skip") == "true",
                    leaking=False,
                    reports_metrics=True,
                    asg_name=tags.get("aws:autoscaling:groupName"),
                    index=index,
                )
                self._sims[instance.id] = sim
                self._boxes[instance.id] = box_for(
                    MemoryShape.FLAT, self._rng("memory", instance.id), self.now(), seed=self._box_seed(instance.id)
                )
                self._console_rng[instance.id] = self._rng("console", instance.id)
                self._record(instance.id, EventKind.LAUNCH)
                self._require_endpoints().add(instance.id, sim.private_ip, Mode.REFUSING)
                self._boot(instance.id, restart=False)

    def on_unhealthy(self, instance_id: str) -> bool:
        with self._lock:
            if instance_id not in self._sims:
                return False
            self._record(instance_id, EventKind.SET_UNHEALTHY)
            return self._sims[instance_id].asg_name is not None

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
        self._series_end = datetime.now(timezone.utc).replace(microsecond=0)  # 'now' for the shapes
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
        self._register(built, roles)
        self._endpoints = EndpointFleet(self.port, slow_delay=spec.slow_delay, hold=spec.hold)
        self._endpoints.start(expected_endpoints=len(self._sims))
        self._endpoints.add_many((s.instance_id, s.private_ip, s.mode) for s in self._sims.values())
        self._write_history()

    def _register(self, built: BuiltFleet, roles: list[Role]) -> None:
        for role, launched in zip(roles, built.managed):
            self._add_sim(launched, role.mode, role.memory, role.reports_metrics, f"m{role.index}", role.index)
        for number, launched in enumerate(built.unmanaged):
            # Bystanders look exactly like the incident: only the selector keeps orch away.
            self._add_sim(launched, Mode.HUNG, MemoryShape.EXHAUSTED, True, f"u{number}", None)

    def _add_sim(
        self, launched: Launched, mode: Mode, shape: MemoryShape, reports: bool, key: str, index: int | None
    ) -> None:
        sim = SimInstance(
            instance_id=launched.instance_id,
            name=launched.name,
            private_ip=launched.private_ip,
            availability_zone=launched.availability_zone,
            subnet_id=launched.subnet_id,
            image_id=launched.image_id,
            instance_type=launched.instance_type,
            mode=mode,
            state="running",
            managed=launched.managed,
            opt_out=launched.opt_out,
            leaking=shape is MemoryShape.LEAKING,
            reports_metrics=reports,
            asg_name=launched.asg_name,
            index=index,
        )
        self._sims[sim.instance_id] = sim
        fault = {Mode.REFUSING: Fault.REFUSED, Mode.SLOW: Fault.SLOW}.get(mode)
        if mode is Mode.HUNG and shape is not MemoryShape.EXHAUSTED:
            fault = Fault.HUNG  # hung with memory normal: nothing on the host says why
        self._boxes[sim.instance_id] = box_for(
            shape, self._rng("memory", key), self._series_end, self._box_seed(key), fault,
            starves=self.spec.agents_starve, wedged_minutes=self.spec.wedged_minutes,
        )
        rng = self._rng("console", key)
        self._console_rng[sim.instance_id] = rng
        text = boot_log(rng, _hostname(sim.private_ip))
        if mode is Mode.HUNG:
            text += oom_log(rng)
        self._console[sim.instance_id] = text

    def _rng(self, purpose: str, key: str) -> random.Random:
        return random.Random(f"orch-sandbox/{purpose}/{self.spec.seed}/{key}")

    def _write_history(self) -> None:
        end = self._series_end
        minutes = self.spec.metric_minutes
        points: list[tuple[SimInstance, datetime, float]] = []
        for sim in self._sims.values():
            if not sim.reports_metrics:
                continue
            box = self._boxes[sim.instance_id]
            for ago in range(minutes - 1, -1, -1):
                at = end - timedelta(minutes=ago)
                value = box.memory(at)
                if value is not None:
                    points.append((sim, at, value))
                    self._level[sim.instance_id] = value
        self._put_points(points)

    def _box_seed(self, key: str) -> str:
        return f"orch-sandbox/box/{self.spec.seed}/{key}"

    def _put_points(self, points: list[tuple[SimInstance, datetime, float]]) -> None:
        """PutMetricData in batches, like many agents reporting at once."""
        cloudwatch = self.client("cloudwatch", validate=False)
        datums = [self._datum(sim, at, value) for sim, at, value in points]
        for start in range(0, len(datums), PUT_BATCH):
            cloudwatch.put_metric_data(Namespace=self.spec.namespace, MetricData=datums[start : start + PUT_BATCH])

    def _datum(self, sim: SimInstance, at: datetime, value: float) -> dict[str, Any]:
        return {
            "MetricName": self.spec.metric,
            "Dimensions": _dimensions(sim, self.spec.agent_dimensions),
            "Timestamp": at,
            "Value": value,
            "Unit": "Percent",
        }

    def _boot(self, instance_id: str, *, restart: bool) -> None:
        """A reboot (or a start after a stop): the box model opens a new cycle, whose
        sshd, memory and console the endpoint, CloudWatch and GetConsoleOutput then show.

        The cycle starts strictly after the last regular datapoint, so a query can tell
        the boot's first point from the ones before it; sshd is up after boot_delay.
        """
        sim = self._sims[instance_id]
        box = self._boxes[instance_id]
        at = max(self.now(), self._series_end + timedelta(seconds=1))
        if restart:
            box.start(at)
        else:
            box.reboot(at)
        endpoints = self._require_endpoints()
        mode = _ENDPOINT_MODE[box.sshd(at)]
        if self.spec.boot_delay > 0:
            endpoints.set_mode(instance_id, Mode.REFUSING)
            endpoints.set_mode(instance_id, mode, delay=self.spec.boot_delay)
        else:
            endpoints.set_mode(instance_id, mode)
        self._update(instance_id, mode=mode)
        self._impaired.pop(instance_id, None)
        self._console[instance_id] = boot_log(self._console_rng[instance_id], _hostname(sim.private_ip))
        level = box.memory(at)
        if sim.reports_metrics and level is not None:
            # Straight into moto's backend: we are inside a moto request thread here.
            # moto keeps request timestamps as naive UTC; an aware one would not compare.
            backend = cloudwatch_backends[self.account_id][self.region]
            backend.put_metric_data(self.spec.namespace, [self._datum(sim, at.replace(tzinfo=None), level)])
            self._level[instance_id] = level

    def _exhaust(self, sim: SimInstance, at: datetime) -> SandboxEvent:
        """A leak won: sshd can no longer fork; the kernel says so on the console."""
        endpoints = self._require_endpoints()
        if endpoints.mode(sim.instance_id) in (Mode.HEALTHY, Mode.SLOW):
            endpoints.set_mode(sim.instance_id, Mode.HUNG)
            self._update(sim.instance_id, mode=Mode.HUNG)
        self._console[sim.instance_id] += oom_log(self._console_rng[sim.instance_id])
        return self._record(sim.instance_id, EventKind.HUNG, at)

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


_ENDPOINT_MODE = {Sshd.OK: Mode.HEALTHY, Sshd.SLOW: Mode.SLOW, Sshd.HUNG: Mode.HUNG, Sshd.REFUSED: Mode.REFUSING}


def _dimensions(sim: SimInstance, agent_dimensions: bool) -> list[dict[str, str]]:
    dims = {"InstanceId": sim.instance_id}
    if agent_dimensions:
        dims["ImageId"] = sim.image_id
        dims["InstanceType"] = sim.instance_type
        if sim.asg_name:
            dims["AutoScalingGroupName"] = sim.asg_name
    # Sorted by name: CloudWatch treats them as a set, moto (unpatched) by order.
    return [{"Name": k, "Value": v} for k, v in sorted(dims.items())]


def _hostname(private_ip: str) -> str:
    return "ip-" + private_ip.replace(".", "-")


def _free_port() -> int:
    """A TCP port no wildcard listener holds; endpoints bind it on their own addresses."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])
