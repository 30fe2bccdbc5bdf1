"""Give moto's EC2 and Auto Scaling actions the effects real ones have on a box.

Moto changes an instance's state field and nothing else: a RebootInstances call does
not bring a dead sshd back, GetConsoleOutput returns one fixed text for everyone,
status checks are always ok, and SetInstanceHealth only stores a flag. The sandbox
runs moto in its own process, so it wraps a few backend methods in place and tells a
``Listener`` (the running Sandbox) what happened; the Sandbox then changes endpoints,
metrics and console text the way the real event would.

Wrapped (moto 5.x), each calling the original first:
- ``InstanceBackend.reboot_instances/stop_instances/start_instances/terminate_instances``
- ``InstanceBackend.run_instances`` (Auto Scaling launching a replacement)
- ``AutoScalingBackend.set_instance_health``: Unhealthy now makes the group replace
  the instance, as EC2 Auto Scaling does, via moto's own ``terminate_instance``
- ``General.get_console_output`` (EC2 responses): per-instance text when the listener has one
- ``Instance.instance_status``: "impaired" for instances the listener marks impaired

Only one listener at a time (moto's state is process-global anyway), and only calls
for the listener's own account and region reach it. A listener that raises does not
fail the AWS call: the error is logged and handed to ``Listener.on_error``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from moto.autoscaling.models import AutoScalingBackend
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.responses.general import General
from moto.ec2.utils import Base64EncodedString

log = logging.getLogger(__name__)


class Listener(Protocol):
    """What the sandbox must offer to be told about actions taken through moto."""

    account_id: str
    region: str

    def on_reboot(self, instance_ids: list[str]) -> None: ...
    def on_stop(self, instance_ids: list[str]) -> None: ...
    def on_start(self, instance_ids: list[str]) -> None: ...
    def on_terminate(self, instance_ids: list[str]) -> None: ...
    def on_launch(self, instances: list[Instance]) -> None: ...
    def on_unhealthy(self, instance_id: str) -> bool: ...
    def console_output(self, instance_id: str) -> str | None: ...
    def impaired_since(self, instance_id: str) -> datetime | None: ...
    def on_error(self, where: str, exc: BaseException) -> None: ...


_lock = threading.Lock()
_listener: Listener | None = None
_originals: dict[tuple[type, str], Any] = {}


def install(listener: Listener) -> None:
    """Wrap moto's methods and route their effects to ``listener``."""
    global _listener
    with _lock:
        if _listener is not None:
            raise RuntimeError("another Sandbox is running in this process: moto's state is global, stop it first")
        for (owner, name), replacement in _replacements().items():
            _originals[(owner, name)] = owner.__dict__[name]
            setattr(owner, name, replacement)
        _listener = listener


def uninstall(listener: Listener) -> None:
    """Put moto back as it was; a no-op when ``listener`` is not the installed one."""
    global _listener
    with _lock:
        if _listener is not listener:
            return
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()
        _listener = None


def _for(backend: Any) -> Listener | None:
    listener = _listener
    if listener is None:
        return None
    if getattr(backend, "account_id", None) != listener.account_id or getattr(backend, "region_name", None) != listener.region:
        return None
    return listener


def _notify(listener: Listener, where: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # the AWS call itself succeeded: say so, keep going
        log.exception("sandbox hook %s failed", where)
        listener.on_error(where, exc)
        return None


def _original(owner: type, name: str) -> Any:
    return _originals[(owner, name)]


def _reboot_instances(self: InstanceBackend, instance_ids: list[str]) -> list[Instance]:
    result = _original(InstanceBackend, "reboot_instances")(self, instance_ids)
    listener = _for(self)
    if listener is not None:
        ids = [i.id for i in result]
        _notify(listener, "reboot", lambda: listener.on_reboot(ids))
    return result


def _stop_instances(self: InstanceBackend, instance_ids: list[str]) -> list[tuple[Instance, Any]]:
    result = _original(InstanceBackend, "stop_instances")(self, instance_ids)
    listener = _for(self)
    if listener is not None:
        ids = [i.id for i, previous in result if previous.name in ("running", "pending")]
        _notify(listener, "stop", lambda: listener.on_stop(ids))
    return result


def _start_instances(self: InstanceBackend, instance_ids: list[str]) -> list[tuple[Instance, Any]]:
    result = _original(InstanceBackend, "start_instances")(self, instance_ids)
    listener = _for(self)
    if listener is not None:
        # Starting a running instance is a no-op in EC2: nothing restarts.
        ids = [i.id for i, previous in result if previous.name in ("stopped", "stopping")]
        _notify(listener, "start", lambda: listener.on_start(ids))
    return result


def _terminate_instances(self: InstanceBackend, instance_ids: list[str]) -> list[tuple[Instance, Any]]:
    result = _original(InstanceBackend, "terminate_instances")(self, instance_ids)
    listener = _for(self)
    if listener is not None:
        ids = [i.id for i, previous in result if previous.name != "terminated"]
        _notify(listener, "terminate", lambda: listener.on_terminate(ids))
    return result


def _run_instances(self: InstanceBackend, *args: Any, **kwargs: Any) -> Any:
    reservation = _original(InstanceBackend, "run_instances")(self, *args, **kwargs)
    listener = _for(self)
    if listener is not None:
        instances = list(reservation.instances)
        _notify(listener, "launch", lambda: listener.on_launch(instances))
    return reservation


def _set_instance_health(self: AutoScalingBackend, instance_id: str, health_status: str) -> None:
    _original(AutoScalingBackend, "set_instance_health")(self, instance_id, health_status)
    listener = _for(self)
    if listener is None or health_status != "Unhealthy":
        return
    if _notify(listener, "unhealthy", lambda: listener.on_unhealthy(instance_id)):
        # What EC2 Auto Scaling does with an Unhealthy member: terminate, launch anew.
        self.terminate_instance(instance_id, should_decrement=False)


def _get_console_output(self: General) -> ActionResult:
    listener = _for(self.ec2_backend)
    instance_id = self._get_param("InstanceId")
    text = listener.console_output(instance_id) if listener is not None else None
    if text is None:
        return _original(General, "get_console_output")(self)
    instance = self.ec2_backend.get_instance(instance_id)  # unknown id: moto's own error
    return ActionResult(
        {"InstanceId": instance.id, "Timestamp": utcnow(), "Output": Base64EncodedString.from_raw_string(text)}
    )


def _instance_status(self: Instance) -> dict[str, Any]:
    original = _original(Instance, "instance_status").fget(self)
    listener = _for(self.ec2_backend)
    if listener is None or self.state_code != 16:
        return original
    since = listener.impaired_since(self.id)
    if since is None:
        return original
    return {
        "Details": [{"Name": "reachability", "Status": "failed", "ImpairedSince": since.astimezone(timezone.utc)}],
        "Status": "impaired",
    }


def _replacements() -> dict[tuple[type, str], Any]:
    return {
        (InstanceBackend, "reboot_instances"): _reboot_instances,
        (InstanceBackend, "stop_instances"): _stop_instances,
        (InstanceBackend, "start_instances"): _start_instances,
        (InstanceBackend, "terminate_instances"): _terminate_instances,
        (InstanceBackend, "run_instances"): _run_instances,
        (AutoScalingBackend, "set_instance_health"): _set_instance_health,
        (General, "get_console_output"): _get_console_output,
        (Instance, "instance_status"): property(_instance_status),
    }
