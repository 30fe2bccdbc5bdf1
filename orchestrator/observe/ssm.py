"""Is the SSM agent online? Asked for memory suspects when proactive = ssm, and by `orch agent install`."""

from __future__ import annotations

from typing import Any, Iterable

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
