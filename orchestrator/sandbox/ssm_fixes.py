"""Give moto's SSM the one read it lacks for orch: DescribeInstanceInformation.

moto 5.2 answers it "not implemented". The sandbox's boxes all run an SSM agent, so
while a Sandbox runs every running EC2 instance of the region is reported as a managed
node with ``PingStatus`` ``Online`` (stopped ones are ``ConnectionLost``, as SSM shows a
node whose agent stopped answering), filtered by the ``InstanceIds`` filter as AWS
documents it. Installed only while a Sandbox runs and removed when it stops; moto's
Run Command itself (SendCommand, ListCommands, GetCommandInvocation) is used as is.
"""

from __future__ import annotations

import threading

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm.responses import SimpleSystemManagerResponse

NAME = "describe_instance_information"
_lock = threading.Lock()


def describe_instance_information(self: SimpleSystemManagerResponse) -> ActionResult:
    wanted: set[str] | None = None
    for entry in self._get_param("Filters") or []:
        if entry.get("Key") == "InstanceIds":
            wanted = set(entry.get("Values") or [])
    nodes = []
    for instance in ec2_backends[self.current_account][self.region].all_instances():
        state = instance.state
        if state not in ("running", "stopped", "stopping") or (wanted is not None and instance.id not in wanted):
            continue
        nodes.append({
            "InstanceId": instance.id,
            "PingStatus": "Online" if state == "running" else "ConnectionLost",
            "PlatformType": "Linux",
            "ResourceType": "EC2Instance",
            "AgentVersion": "3.3.0.0",
            "IPAddress": str(instance.private_ip),
        })
    return ActionResult({"InstanceInformationList": sorted(nodes, key=lambda n: n["InstanceId"])})


def install() -> None:
    with _lock:
        if NAME not in SimpleSystemManagerResponse.__dict__:
            setattr(SimpleSystemManagerResponse, NAME, describe_instance_information)


def uninstall() -> None:
    with _lock:
        if SimpleSystemManagerResponse.__dict__.get(NAME) is describe_instance_information:
            delattr(SimpleSystemManagerResponse, NAME)
