"""EC2 mutations: reboot (batched), stop/start. Each returns a per-instance result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
    WaiterError,
)

from orchestrator.aws import error_code, retry_throttled
from orchestrator.model import OutcomeStatus

PERMISSIONS = frozenset(
    {"ec2:RebootInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:SendDiagnosticInterrupt", "ec2:DescribeInstances"}
)

# Errors that concern one instance, not the call: a batch hit by one is split up.
PER_INSTANCE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "IncorrectInstanceState", "IncorrectState"})
_ID = re.compile(r"i-[0-9a-f]{8,17}")


@dataclass(frozen=True, slots=True)
class Result:
    status: OutcomeStatus
    detail: str


class UncertainOutcome(Exception):
    """The call may or may not have run (read timeout); the caller re-reads, never repeats."""


@retry_throttled
def _reboot(ec2: Any, ids: list[str]) -> None:
    ec2.reboot_instances(InstanceIds=ids)


def reboot(ec2: Any, instance_ids: Iterable[str]) -> dict[str, Result]:
    """One RebootInstances call for the batch; split per instance only when one id spoils it."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    try:
        _reboot(ec2, ids)
        return {i: Result(OutcomeStatus.DONE, "RebootInstances accepted") for i in ids}
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        raise UncertainOutcome(f"RebootInstances for {len(ids)} instance(s): {exc}") from exc
    except ClientError as exc:
        if error_code(exc) not in PER_INSTANCE_CODES or len(ids) == 1:
            if len(ids) == 1 and error_code(exc) in PER_INSTANCE_CODES:
                return {ids[0]: Result(OutcomeStatus.SKIPPED, _skip_reason(exc))}
            raise
    results: dict[str, Result] = {}
    for instance_id in ids:
        try:
            results.update(reboot(ec2, [instance_id]))
        except ClientError as exc:
            results[instance_id] = Result(OutcomeStatus.FAILED, f"{error_code(exc)}: {exc.response['Error'].get('Message', '')}")
    return results


def _skip_reason(exc: ClientError) -> str:
    code = error_code(exc)
    if code.startswith("InvalidInstanceID"):
        return f"instance no longer exists ({code})"
    return f"instance not in a state that allows it ({code}: {exc.response['Error'].get('Message', '')})"


@retry_throttled
def _interrupt(ec2: Any, instance_id: str) -> None:
    ec2.send_diagnostic_interrupt(InstanceId=instance_id)


def diagnostic_interrupt(ec2: Any, instance_id: str) -> Result:
    """A kernel panic on purpose: with kdump set up the box writes a crash dump, then reboots.

    The dump shows what held the memory, which a plain reboot throws away. Only for
    instances configured for it (Nitro, kdump enabled); AWS refuses it elsewhere.
    """
    try:
        _interrupt(ec2, instance_id)
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        raise UncertainOutcome(f"SendDiagnosticInterrupt {instance_id}: {exc}") from exc
    except ClientError as exc:
        if error_code(exc) in PER_INSTANCE_CODES or error_code(exc) == "UnsupportedOperation":
            return Result(OutcomeStatus.SKIPPED, _skip_reason(exc))
        raise
    return Result(OutcomeStatus.DONE, "diagnostic interrupt sent (kdump, then reboot)")


@retry_throttled
def _stop(ec2: Any, instance_id: str) -> None:
    ec2.stop_instances(InstanceIds=[instance_id])


@retry_throttled
def _start(ec2: Any, instance_id: str) -> None:
    ec2.start_instances(InstanceIds=[instance_id])


def stop_start(ec2: Any, instance_id: str, wait_seconds: int = 300) -> Result:
    """Stop, wait until stopped, start: moves the instance to new hardware (EBS-backed only).

    If the stop outlasts ``wait_seconds`` the instance is left stopping and the result
    says so; the next sweep sees it stopped with this action in flight and starts it.
    """
    try:
        _stop(ec2, instance_id)
    except ClientError as exc:
        if error_code(exc) in PER_INSTANCE_CODES:
            return Result(OutcomeStatus.SKIPPED, _skip_reason(exc))
        raise
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        raise UncertainOutcome(f"StopInstances {instance_id}: {exc}") from exc
    delay = 5
    try:
        ec2.get_waiter("instance_stopped").wait(
            InstanceIds=[instance_id], WaiterConfig={"Delay": delay, "MaxAttempts": max(1, wait_seconds // delay)}
        )
    except WaiterError:
        return Result(OutcomeStatus.DONE, f"stop requested; not stopped after {wait_seconds} s, start left to the next sweep")
    start(ec2, instance_id)
    return Result(OutcomeStatus.DONE, "stopped and started")


def start(ec2: Any, instance_id: str) -> None:
    try:
        _start(ec2, instance_id)
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        raise UncertainOutcome(f"StartInstances {instance_id}: {exc}") from exc


def current_state(ec2: Any, instance_id: str) -> str:
    """Re-read after an uncertain call, so the record says what is true, not what we hoped."""
    try:
        page = ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        return f"unknown ({error_code(exc)})"
    for reservation in page.get("Reservations", []):
        for raw in reservation.get("Instances", []):
            return str((raw.get("State") or {}).get("Name", "unknown"))
    return "gone"
