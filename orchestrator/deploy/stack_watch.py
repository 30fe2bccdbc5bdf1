"""Watching a stack: its status, its events as they arrive (each shown once, oldest first), why it failed.

The wait is a tenacity poll that prints the stack's new events on each round and stops
when the stack leaves ``*_IN_PROGRESS``; a stack still working at the timeout is a
``DeployError`` that says how to follow it.
"""

from __future__ import annotations

from typing import Any, Callable

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.aws import error_code
from orchestrator.deploy.errors import DeployError

Say = Callable[[str], None]


def current_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def event_ids(cfn: Any, stack_id: str) -> frozenset[str]:
    """Ids of the events already there, so only what this run causes is shown."""
    return frozenset(e["EventId"] for e in cfn.describe_stack_events(StackName=stack_id).get("StackEvents", []))


def wait_for_stack(
    cfn: Any,
    stack_id: str,
    on_event: Say,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] | None = None,
    seen: set[str] | None = None,
) -> str:
    """Poll until the stack leaves *_IN_PROGRESS; returns its final status."""
    shown: set[str] = set() if seen is None else seen

    def poll() -> str:
        for line in new_events(cfn, stack_id, shown):
            on_event(line)
        stack = current_stack(cfn, stack_id)
        return str(stack["StackStatus"]) if stack else "DELETE_COMPLETE"

    extra = {"sleep": sleep} if sleep is not None else {}
    retrying = Retrying(
        retry=retry_if_result(lambda status: status.endswith("_IN_PROGRESS")),
        wait=wait_fixed(poll_seconds),
        stop=stop_after_delay(timeout_seconds),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else "UNKNOWN",
        **extra,
    )
    status = str(retrying(poll))
    if status.endswith("_IN_PROGRESS"):
        raise DeployError(
            f"stack still {status} after {timeout_seconds:.0f} s; follow it with aws cloudformation describe-stack-events --stack-name {stack_id}"
        )
    return status


def new_events(cfn: Any, stack_id: str, shown: set[str]) -> list[str]:
    """Lines for stack events not shown yet, oldest first (the API lists newest first)."""
    events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    lines = []
    for event in sorted((e for e in events if e["EventId"] not in shown), key=lambda e: e["Timestamp"]):
        shown.add(event["EventId"])
        reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
        lines.append(f"{event['Timestamp']:%H:%M:%S}  {event['ResourceStatus']:<20} {event['LogicalResourceId']} ({event['ResourceType']}){reason}")
    return lines


def failure_reasons(cfn: Any, stack_id: str, earlier: frozenset[str], limit: int = 3) -> str:
    events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"
        for e in sorted(events, key=lambda e: e["Timestamp"])
        if e["ResourceStatus"].endswith("_FAILED") and e["EventId"] not in earlier
    ]
    return "; ".join(reasons[:limit]) or "no failure reason in the stack events"
