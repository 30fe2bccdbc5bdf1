"""Facts that decide whether stop/start is safe, asked only for suspects that need them.

DescribeInstances already says whether an instance is Spot (``InstanceLifecycle``) and
whether its root is EBS (``RootDeviceType``, ``BlockDeviceMappings``). Two facts it
does not carry (EC2 API reference):

- whether a Spot instance's request is ``one-time`` or ``persistent``: AWS refuses to
  stop a Spot instance of a one-time request (``UnsupportedOperation``); only
  DescribeSpotInstanceRequests tells;
- whether the instance type has instance-store volumes: DescribeInstances does not
  list them, and a stop erases them; DescribeInstanceTypes'
  ``InstanceStorageSupported`` tells.

Both are asked only for suspects, so a healthy fleet costs no call here.
"""

from __future__ import annotations

from typing import Any, Iterable

PERMISSIONS = frozenset({"ec2:DescribeSpotInstanceRequests", "ec2:DescribeInstanceTypes"})
REQUESTS_PER_CALL = 200  # values per filter
TYPES_PER_CALL = 100  # DescribeInstanceTypes' InstanceTypes limit


def spot_request_types(ec2: Any, request_ids: Iterable[str]) -> dict[str, str]:
    """Spot request id -> "one-time" | "persistent". A request AWS no longer describes is absent (unknown).

    A filter rather than ``SpotInstanceRequestIds``: an id AWS has forgotten must not
    fail the call for the others.
    """
    ids = sorted(set(request_ids))
    found: dict[str, str] = {}
    paginator = ec2.get_paginator("describe_spot_instance_requests")
    for start in range(0, len(ids), REQUESTS_PER_CALL):
        chunk = ids[start : start + REQUESTS_PER_CALL]
        for page in paginator.paginate(Filters=[{"Name": "spot-instance-request-id", "Values": chunk}]):
            for request in page.get("SpotInstanceRequests", []):
                if request.get("SpotInstanceRequestId") and request.get("Type"):
                    found[request["SpotInstanceRequestId"]] = str(request["Type"])
    return found


def instance_storage(ec2: Any, instance_types: Iterable[str]) -> dict[str, bool]:
    """Instance type -> whether it comes with instance-store volumes."""
    types = sorted(set(instance_types))
    found: dict[str, bool] = {}
    paginator = ec2.get_paginator("describe_instance_types")
    for start in range(0, len(types), TYPES_PER_CALL):
        for page in paginator.paginate(InstanceTypes=types[start : start + TYPES_PER_CALL]):
            for info in page.get("InstanceTypes", []):
                found[str(info["InstanceType"])] = bool(info.get("InstanceStorageSupported", False))
    return found
