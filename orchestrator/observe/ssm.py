"""Is the SSM agent online? Asked for memory suspects when proactive = ssm, and by `orch agent install`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from orchestrator.model import Instance

PERMISSIONS = frozenset({"ssm:DescribeInstanceInformation"})
IDS_PER_CALL = 50


def ping_status(ssm: Any, instance_ids: Iterable[str]) -> dict[str, str | None]:
    """Instance id -> its SSM agent's PingStatus (Online, ConnectionLost, Inactive), None when not registered."""
    ids = sorted(set(instance_ids))
    status: dict[str, str | None] = {i: None for i in ids}
    paginator = ssm.get_paginator("describe_instance_information")
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        for page in paginator.paginate(Filters=[{"Key": "InstanceIds", "Values": chunk}]):
            for info in page.get("InstanceInformationList", []):
                if info.get("InstanceId") in status:
                    status[info["InstanceId"]] = str(info.get("PingStatus") or "") or None
    return status


def agents_online(ssm: Any, instance_ids: Iterable[str]) -> dict[str, bool]:
    return {i: s == "Online" for i, s in ping_status(ssm, instance_ids).items()}


@dataclass(frozen=True, slots=True)
class Refused:
    """An instance a Run Command will not be sent to, and why."""

    instance_id: str
    name: str
    why: str


def reachable(
    instances: Sequence[Instance], ping: Mapping[str, str | None], max_instances: int, running_needed: str, unregistered: str
) -> tuple[list[Instance], list[Refused]]:
    """Who a Run Command can reach (running, SSM agent Online, within ``max_instances``), by id, and who not with why.

    Pure, shared by every command that sends one (`orch agent install`, `orch guard apply`);
    ``running_needed`` and ``unregistered`` say the why in that command's words.
    """
    chosen: list[Instance] = []
    refused: list[Refused] = []
    for i in sorted(instances, key=lambda x: x.instance_id):
        status = ping.get(i.instance_id)
        if i.state != "running":
            refused.append(Refused(i.instance_id, i.name, f"{i.state}: {running_needed}"))
        elif status is None:
            refused.append(Refused(i.instance_id, i.name, unregistered))
        elif status != "Online":
            refused.append(Refused(i.instance_id, i.name, f"SSM agent {status}, not Online: SSM cannot deliver a command to it"))
        elif len(chosen) >= max_instances:
            refused.append(Refused(i.instance_id, i.name, f"over the budget of {max_instances} instances a run (--max-instances)"))
        else:
            chosen.append(i)
    return chosen, refused
