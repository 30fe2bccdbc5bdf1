"""Status checks: EC2's own opinion of each instance, one paginated listing for the fleet."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from orchestrator.model import CheckState, ScheduledEvent, StatusChecks

PERMISSIONS = frozenset({"ec2:DescribeInstanceStatus"})
PAGE_SIZE = 1000


def read_status_checks(ec2: Any, instance_ids: Iterable[str]) -> dict[str, StatusChecks]:
    """Status of every running instance in the account, joined to ours by id.

    Listing and filtering client-side costs ceil(running/1000) calls; passing ids would
    cap each call at 100 ids and cost ten times more. Without ``IncludeAllInstances``
    EC2 lists running instances only (its default), which is all a sweep asks about:
    with it, every stopped and terminated instance of the region was paged through too,
    spending the account's shared describe budget.
    """
    wanted = set(instance_ids)
    if not wanted:
        return {}
    paginator = ec2.get_paginator("describe_instance_status")
    result: dict[str, StatusChecks] = {}
    for page in paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
        for raw in page.get("InstanceStatuses", []):
            if raw.get("InstanceId") in wanted:
                checks = status_from_api(raw)
                result[checks.instance_id] = checks
    return result


def status_from_api(raw: Mapping[str, Any]) -> StatusChecks:
    events = tuple(
        ScheduledEvent(code=e.get("Code", ""), not_before=e.get("NotBefore"), description=e.get("Description", ""))
        for e in raw.get("Events", []) or []
        if not str(e.get("Description", "")).startswith("[Completed]")
    )
    return StatusChecks(
        instance_id=raw["InstanceId"],
        system=CheckState.parse((raw.get("SystemStatus") or {}).get("Status")),
        instance=CheckState.parse((raw.get("InstanceStatus") or {}).get("Status")),
        events=events,
    )
