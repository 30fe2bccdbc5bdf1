"""What an action taken through moto does to a sandbox box: the ``hooks.Listener`` side of
``Sandbox`` (orchestrator.sandbox.fleet), kept apart by job.

A reboot or a start opens a new cycle of the box model (sshd, memory and console follow),
a stop refuses connections, a terminate removes the endpoint, an Unhealthy Auto Scaling
member is replaced by a fresh box; a leak that wins hangs sshd; a scenario's box has its
sshd follow the model minute by minute. A mixin: the state it works on is ``Sandbox``'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from moto.cloudwatch.models import cloudwatch_backends
from moto.ec2.models.instances import Instance as MotoInstance

from orchestrator.box.console import boot_log, oom_log
from orchestrator.box.model import Box, Sshd
from orchestrator.sandbox.build import MANAGED_TAG
from orchestrator.sandbox.events import EventKind, SandboxEvent, SimInstance
from orchestrator.sandbox.memory import MemoryShape, box_for
from orchestrator.sandbox.sshd import Mode

ENDPOINT_MODE = {Sshd.OK: Mode.HEALTHY, Sshd.SLOW: Mode.SLOW, Sshd.HUNG: Mode.HUNG, Sshd.REFUSED: Mode.REFUSING}


class Effects:
    """What an action does to the sandbox's boxes: a mixin of ``Sandbox`` (its state lives there)."""

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
        mode = ENDPOINT_MODE[box.sshd(at)]
        if self.spec.boot_delay > 0:
            endpoints.set_mode(instance_id, Mode.REFUSING)
            endpoints.set_mode(instance_id, mode, delay=self.spec.boot_delay)
        else:
            endpoints.set_mode(instance_id, mode)
        self._update(instance_id, mode=mode)
        self._impaired.pop(instance_id, None)
        self._console[instance_id] = boot_log(self._console_rng[instance_id], hostname(sim.private_ip))
        level = box.memory(at)
        if sim.reports_metrics and level is not None and not self.agent_cut(sim, at):
            # Straight into moto's backend: we are inside a moto request thread here.
            # moto keeps request timestamps as naive UTC; an aware one would not compare.
            backend = cloudwatch_backends[self.account_id][self.region]
            datum = self._datum(sim, at, level)
            datum["Timestamp"] = datum["Timestamp"].replace(tzinfo=None)
            backend.put_metric_data(self.spec.namespace, [datum])
            self._level[instance_id] = level

    def _follow(self, sim: SimInstance, box: Box, at: datetime) -> None:
        """A scenario's box: the endpoint shows what the model says sshd does now (a fault striking, a flap)."""
        mode = ENDPOINT_MODE[box.sshd(at)]
        endpoints = self._require_endpoints()
        if endpoints.mode(sim.instance_id) is not mode:
            endpoints.set_mode(sim.instance_id, mode)
            self._update(sim.instance_id, mode=mode)

    def _exhaust(self, sim: SimInstance, at: datetime) -> SandboxEvent:
        """A leak won: sshd can no longer fork; the kernel says so on the console."""
        endpoints = self._require_endpoints()
        if endpoints.mode(sim.instance_id) in (Mode.HEALTHY, Mode.SLOW):
            endpoints.set_mode(sim.instance_id, Mode.HUNG)
            self._update(sim.instance_id, mode=Mode.HUNG)
        self._console[sim.instance_id] += oom_log(self._console_rng[sim.instance_id])
        return self._record(sim.instance_id, EventKind.HUNG, at)


def hostname(private_ip: str) -> str:
    return "ip-" + private_ip.replace(".", "-")
