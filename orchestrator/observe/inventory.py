"""Inventory: the running instances the selector names, read with server-side tag filters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from orchestrator.model import Instance

PERMISSIONS = frozenset({"ec2:DescribeInstances"})
PAGE_SIZE = 1000


def selector_filters(selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """Tag filters for the selector; refuses an empty one so no code path lists the account."""
    if not selector:
        raise ValueError("empty selector: refusing to select every instance in the account")
    filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in selector.items()]
    filters.append({"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]})
    return filters


def list_instances(ec2: Any, selector: Mapping[str, str], only: Iterable[str] = (), vpc_id: str | None = None) -> list[Instance]:
    """Every selected instance, all pages; stopped ones are kept so plan can say why it skips them.

    ``only`` narrows to some ids (for `orch explain`) without ever widening the selector.
    ``vpc_id`` narrows to one VPC: a deployed sweep runs inside its VPC and can probe
    nothing outside it, so a tagged instance elsewhere would only time out and look dead.
    """
    filters = selector_filters(selector)
    wanted = sorted(set(only))
    if wanted:
        filters.append({"Name": "instance-id", "Values": wanted})
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    paginator = ec2.get_paginator("describe_instances")
    instances: list[Instance] = []
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
        for reservation in page.get("Reservations", []):
            for raw in reservation.get("Instances", []):
                instances.append(instance_from_api(raw))
    instances.sort(key=lambda i: i.instance_id)
    return instances


def instance_from_api(raw: Mapping[str, Any]) -> Instance:
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []}
    template = raw.get("LaunchTemplate") or {}
    if not template and "aws:ec2launchtemplate:id" in tags:
        template = {
            "LaunchTemplateId": tags["aws:ec2launchtemplate:id"],
            "Version": tags.get("aws:ec2launchtemplate:version"),
        }
    launch_time = raw.get("LaunchTime") or datetime.fromtimestamp(0, tz=timezone.utc)
    if launch_time.tzinfo is None:
        launch_time = launch_time.replace(tzinfo=timezone.utc)
    return Instance(
        instance_id=raw["InstanceId"],
        state=(raw.get("State") or {}).get("Name", "unknown"),
        availability_zone=(raw.get("Placement") or {}).get("AvailabilityZone", ""),
        launch_time=launch_time,
        tags=tags,
        private_ip=raw.get("PrivateIpAddress") or None,
        public_ip=raw.get("PublicIpAddress") or None,
        subnet_id=raw.get("SubnetId"),
        vpc_id=raw.get("VpcId"),
        image_id=raw.get("ImageId"),
        instance_type=raw.get("InstanceType"),
        launch_template_id=template.get("LaunchTemplateId"),
        launch_template_version=template.get("Version"),
        instance_lifecycle=raw.get("InstanceLifecycle") or None,
        spot_request_id=raw.get("SpotInstanceRequestId") or None,
        root_device_type=raw.get("RootDeviceType") or None,
        root_device_name=raw.get("RootDeviceName") or None,
        ebs_devices=tuple(sorted(str(m["DeviceName"]) for m in raw.get("BlockDeviceMappings") or [] if m.get("Ebs") and m.get("DeviceName"))),
        security_group_ids=tuple(str(g["GroupId"]) for g in raw.get("SecurityGroups") or [] if g.get("GroupId")),
    )
