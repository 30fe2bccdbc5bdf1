"""How `orch init` finds a fleet and tags it: the boto3 side, no decisions.

Four ways to name a fleet, each one server-side where EC2 can filter:

- an existing tag (``tag:KEY`` filter, the value exact);
- Auto Scaling groups (DescribeAutoScalingGroups, then their members by id);
- a glob on the Name tag (EC2 filters take ``*`` and ``?`` as wildcards; the result is
  matched again here with ``fnmatchcase`` so the meaning is exactly the documented one);
- explicit instance ids.

Every read pages (DescribeInstances 1000 a page; at most 1000 ids or 50 groups a call).
Tagging is CreateTags in batches on the mutating client (throttling retried, nothing
else), and for groups CreateOrUpdateTags with PropagateAtLaunch, so the instances a
group launches later are in the fleet too.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from orchestrator.aws import retry_throttled
from orchestrator.model import Instance
from orchestrator.observe.inventory import PAGE_SIZE, instance_from_api

PERMISSIONS = frozenset({"ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"})
TAG_PERMISSIONS = frozenset({"ec2:CreateTags", "autoscaling:CreateOrUpdateTags"})
IDS_PER_FILTER = 200  # values in one EC2 filter
GROUPS_PER_CALL = 50  # DescribeAutoScalingGroups: at most 50 names a call (its MaxRecords is 100)
TAG_BATCH = 500
STATES = ["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]  # shown, then judged by select


class FleetNotFound(Exception):
    """A named group or id does not exist: the one line says which, and nothing is tagged."""


@dataclass(frozen=True, slots=True)
class FleetQuery:
    """How the person named the fleet; exactly one of these ways is set (the CLI checks)."""

    tag: tuple[str, str] | None = None
    asgs: tuple[str, ...] = ()
    name_pattern: str | None = None
    instance_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.tag is not None:
            return f"tag {self.tag[0]}={self.tag[1]}"
        if self.asgs:
            return f"Auto Scaling group{'s' if len(self.asgs) > 1 else ''} {', '.join(self.asgs)}"
        if self.name_pattern is not None:
            return f"Name matching {self.name_pattern}"
        return f"instance id{'s' if len(self.instance_ids) > 1 else ''} {', '.join(self.instance_ids)}"


def _describe(ec2: Any, filters: list[dict[str, Any]], ids: Sequence[str] = ()) -> list[Instance]:
    """DescribeInstances with these filters; ids go in an ``instance-id`` filter, 200 a call,
    so an id that does not exist is simply not found (InstanceIds would fail the whole call)."""
    found: list[Instance] = []
    paginator = ec2.get_paginator("describe_instances")
    batches = [list(ids[s : s + IDS_PER_FILTER]) for s in range(0, len(ids), IDS_PER_FILTER)] if ids else [[]]
    for batch in batches:
        extra = [{"Name": "instance-id", "Values": batch}] if batch else []
        for page in paginator.paginate(Filters=filters + extra, PaginationConfig={"PageSize": PAGE_SIZE}):
            for reservation in page.get("Reservations", []):
                found.extend(instance_from_api(raw) for raw in reservation.get("Instances", []))
    return found


def group_members(autoscaling: Any, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Group name -> member instance ids; a name that does not exist is FleetNotFound."""
    members: dict[str, tuple[str, ...]] = {}
    paginator = autoscaling.get_paginator("describe_auto_scaling_groups")
    wanted = sorted(set(names))
    for start in range(0, len(wanted), GROUPS_PER_CALL):
        for page in paginator.paginate(AutoScalingGroupNames=wanted[start : start + GROUPS_PER_CALL]):
            for group in page.get("AutoScalingGroups", []):
                members[group["AutoScalingGroupName"]] = tuple(sorted(i["InstanceId"] for i in group.get("Instances", [])))
    missing = [n for n in wanted if n not in members]
    if missing:
        raise FleetNotFound(f"no Auto Scaling group named {', '.join(missing)} in this region: check the name and --region")
    return members


def find(ec2: Any, autoscaling: Any, query: FleetQuery) -> list[Instance]:
    """Every instance the query names, in any state and any VPC: select decides which may be
    adopted and shows the others with why, so nothing is left out unseen."""
    filters: list[dict[str, Any]] = [{"Name": "instance-state-name", "Values": STATES}]
    if query.tag is not None:
        key, value = query.tag
        return _describe(ec2, filters + [{"Name": f"tag:{key}", "Values": [value]}])
    if query.name_pattern is not None:
        pattern = query.name_pattern
        matched = _describe(ec2, filters + [{"Name": "tag:Name", "Values": [pattern]}])
        return [i for i in matched if fnmatch.fnmatchcase(i.name, pattern)]
    ids: Sequence[str]
    if query.asgs:
        ids = sorted({i for members in group_members(autoscaling, query.asgs).values() for i in members})
        if not ids:
            return []
    else:
        ids = sorted(set(query.instance_ids))
    found = _describe(ec2, filters, ids)
    if query.instance_ids:
        missing = sorted(set(ids) - {i.instance_id for i in found})
        if missing:
            raise FleetNotFound(f"no instance {', '.join(missing)} in this region: check the ids and --region")
    return found


def neighbours(ec2: Any, vpcs: Sequence[str]) -> list[Instance]:
    """Every running or stopped instance in these VPCs: who would stay unmanaged."""
    if not vpcs:
        return []
    return _describe(
        ec2,
        [{"Name": "vpc-id", "Values": sorted(set(vpcs))}, {"Name": "instance-state-name", "Values": ["running", "stopped"]}],
    )


@retry_throttled
def _create_tags(ec2: Any, ids: list[str], tags: list[dict[str, str]]) -> None:
    ec2.create_tags(Resources=ids, Tags=tags)


def tag_instances(ec2: Any, instance_ids: Sequence[str], selector: Mapping[str, str]) -> int:
    """CreateTags in batches; returns the number of calls made. ``ec2`` is a mutating client."""
    tags = [{"Key": k, "Value": v} for k, v in selector.items()]
    ids = sorted(set(instance_ids))
    calls = 0
    for start in range(0, len(ids), TAG_BATCH):
        _create_tags(ec2, ids[start : start + TAG_BATCH], tags)
        calls += 1
    return calls


def groups_missing_tag(autoscaling: Any, names: Sequence[str], selector: Mapping[str, str]) -> list[str]:
    """Groups whose own tags do not yet propagate the selector to the instances they launch."""
    missing = []
    paginator = autoscaling.get_paginator("describe_auto_scaling_groups")
    wanted = sorted(set(names))
    for start in range(0, len(wanted), GROUPS_PER_CALL):
        for page in paginator.paginate(AutoScalingGroupNames=wanted[start : start + GROUPS_PER_CALL]):
            for group in page.get("AutoScalingGroups", []):
                tags = {t["Key"]: (t.get("Value"), t.get("PropagateAtLaunch")) for t in group.get("Tags", [])}
                if any(tags.get(k) != (v, True) for k, v in selector.items()):
                    missing.append(group["AutoScalingGroupName"])
    return sorted(missing)


@retry_throttled
def tag_group(autoscaling: Any, name: str, selector: Mapping[str, str]) -> None:
    """The selector on the group itself, propagated at launch: its replacements join the fleet."""
    autoscaling.create_or_update_tags(
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": True}
            for k, v in selector.items()
        ]
    )
