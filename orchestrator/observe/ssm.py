"""Is the SSM agent online? Asked only for memory suspects when proactive = ssm."""

from __future__ import annotations

from typing import Any, Iterable

PERMISSIONS = frozenset({"ssm:DescribeInstanceInformation"})
IDS_PER_CALL = 50


def agents_online(ssm: Any, instance_ids: Iterable[str]) -> dict[str, bool]:
    ids = sorted(set(instance_ids))
    online = {i: False for i in ids}
    paginator = ssm.get_paginator("describe_instance_information")
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        for page in paginator.paginate(Filters=[{"Key": "InstanceIds", "Values": chunk}]):
            for info in page.get("InstanceInformationList", []):
                if info.get("InstanceId") in online:
                    online[info["InstanceId"]] = info.get("PingStatus") == "Online"
    return online
