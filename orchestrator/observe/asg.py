"""Auto Scaling lifecycle states, read only for the suspects that belong to a group.

An instance in Pending:Wait, Standby or Terminating is in someone else's hands; acting
on it would fight the group. Members are known from the aws:autoscaling:groupName tag,
so healthy instances cost nothing here.
"""

from __future__ import annotations

from typing import Any, Iterable

PERMISSIONS = frozenset({"autoscaling:DescribeAutoScalingInstances"})
IDS_PER_CALL = 50


def lifecycle_states(autoscaling: Any, instance_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(instance_ids))
    states: dict[str, str] = {}
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        paginator = autoscaling.get_paginator("describe_auto_scaling_instances")
        for page in paginator.paginate(InstanceIds=chunk):
            for raw in page.get("AutoScalingInstances", []):
                states[raw["InstanceId"]] = raw.get("LifecycleState", "")
    return states
