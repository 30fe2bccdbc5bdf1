"""Make moto's EC2 listings page the way EC2 does, in time linear in the fleet.

moto 5.x pages ``DescribeInstances`` by *reservations* (a sandbox fleet launched with
a few ``RunInstances`` calls is a handful of reservations, so 10,000 instances come
back in one page) and ignores ``MaxResults`` on ``DescribeInstanceStatus`` altogether.
EC2 caps both at ``MaxResults`` (at most 1000) *instances* per page. A sweep counted
against unpatched moto would look cheaper than it can ever be on AWS, so while a
Sandbox runs:

- ``DescribeInstances`` with ``MaxResults`` returns at most that many instances per
  page (a reservation may be split across pages, as EC2 does), with a ``NextToken``;
- ``DescribeInstanceStatus`` with ``MaxResults`` and no ``InstanceIds`` does the same.

Without ``MaxResults`` (or with ``InstanceIds``) moto answers unchanged.

And one resource's tags are looked up by id: moto's ``TaggedEC2Resource.get_tags``
runs ``describe_tags`` with a resource-id filter, which scans (and regex-matches)
every tag of every resource. Called per instance while filtering by tag and again
while serializing, that makes a 10,000-instance DescribeInstances quadratic: minutes
per page. The result is the same list, in the same order.

And the root volume is attached where the image says the root device is. moto reports an
instance's ``RootDeviceName`` from its AMI (``/dev/xvda`` for the Amazon Linux images the
sandbox launches) but attaches the default root volume at ``/dev/sda1`` whatever the
AMI: an instance whose root device is not among its EBS volumes, which orch's stop/start
rung rightly refuses (``orchestrator.decide.rungs.misfit``), so every sandbox stop-start
was refused. EC2 attaches the root volume at the AMI's root device name.

Installed only while a Sandbox runs and removed when it stops, like ``cloudwatch_fixes``.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import Instance
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from orchestrator.sandbox.patching import PatchSet

MAX_PAGE = 1000  # EC2's ceiling for MaxResults on both calls
_TOKEN_PREFIX = "orch-sandbox-offset-"



def _setup_defaults(self: Instance) -> None:
    """moto's default root volume (8 GiB), attached at the root device name the instance reports."""
    volume = self.ec2_backend.create_volume(size=8, zone_name=self._placement.zone)
    self.ec2_backend.attach_volume(volume.id, self.id, self.root_device_name or "/dev/sda1", True)


def _get_tags(self: TaggedEC2Resource) -> list[dict[str, str]]:
    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    tags = self.ec2_backend.tags.get(resource_id, {})  # type: ignore[attr-defined]
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [{"resource_id": resource_id, "key": k, "value": v, "resource_type": kind} for k, v in list(tags.items())]


def _page_bounds(response: InstanceResponse, total: int) -> tuple[int, int]:
    size = max(1, min(int(response._get_param("MaxResults")), MAX_PAGE))
    token = response._get_param("NextToken") or ""
    start = int(token[len(_TOKEN_PREFIX) :]) if token.startswith(_TOKEN_PREFIX) else 0
    return start, min(total, start + size)


def _token(end: int, total: int) -> str | None:
    return f"{_TOKEN_PREFIX}{end}" if end < total else None


def _describe_instances(self: InstanceResponse) -> ActionResult:
    if "MaxResults" not in self.data or self._get_param("InstanceIds", []):
        return PATCHES.original(InstanceResponse, "describe_instances")(self)
    self.error_on_dryrun()
    reservations = self.ec2_backend.describe_instances(filters=self._filters_from_querystring())
    total = sum(len(r.instances) for r in reservations)
    start, end = _page_bounds(self, total)
    page: list[Any] = []
    seen = 0
    for reservation in reservations:
        count = len(reservation.instances)
        lo, hi = max(start - seen, 0), min(end - seen, count)
        if lo < hi:
            part = copy.copy(reservation)
            part.instances = reservation.instances[lo:hi]
            page.append(part)
        seen += count
        if seen >= end:
            break
    return ActionResult({"Reservations": page, "NextToken": _token(end, total)})


def _describe_instance_status(self: InstanceResponse) -> ActionResult:
    if "MaxResults" not in self.data or self._get_param("InstanceIds", []):
        return PATCHES.original(InstanceResponse, "describe_instance_status")(self)
    filters = [{"name": k, "values": v} for k, v in self._filters_from_querystring().items()]
    include_all = self._get_bool_param("IncludeAllInstances", False)
    instances = self.ec2_backend.describe_instance_status([], include_all, filters)
    start, end = _page_bounds(self, len(instances))
    return ActionResult({"InstanceStatuses": instances[start:end], "NextToken": _token(end, len(instances))})


PATCHES = PatchSet(
    (InstanceResponse, "describe_instances", _describe_instances),
    (InstanceResponse, "describe_instance_status", _describe_instance_status),
    (TaggedEC2Resource, "get_tags", _get_tags),
    (Instance, "setup_defaults", _setup_defaults),
)


def install() -> None:
    """Patch moto's EC2 responses (idempotent)."""
    PATCHES.install()


def uninstall() -> None:
    PATCHES.uninstall()
