"""EC2 mutations: reboot (batched), stop/start, and finishing a stop/start. Each returns a
per-instance result.

What AWS does that moto does not (EC2 API reference and user guide):

- IAM authorizes a multi-instance request as a whole: one instance that fails the
  role's tag condition makes ``RebootInstances`` for the whole batch fail with
  ``UnauthorizedOperation``. So a denied batch is split and each instance retried alone.
- A graceful stop can take minutes, and a wedged guest may never finish it.
  ``StopInstances`` with ``Force=True`` stops it without flushing caches; orch asks for
  it only after the graceful stop outlasted ``wait_seconds``.
- ``StartInstances`` can fail after a good stop (``InsufficientInstanceCapacity``), and
  a Lambda can run out of time while it waits. An instance orch stopped must never stay
  stopped silently: every such result starts with ``START_PENDING``, and the next sweep
  finishes the job (``orchestrator.decide.pending_start``, ``ActionKind.START``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
    WaiterError,
)
from botocore.parsers import ResponseParserError

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error, error_code, retry_throttled
from orchestrator.model import START_PENDING, OutcomeStatus

PERMISSIONS = frozenset({"ec2:RebootInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:DescribeInstances"})
# Only when evidence.diagnostic_interrupt is on (the stack grants it only then).
DIAGNOSTIC_INTERRUPT_PERMISSIONS = frozenset({"ec2:SendDiagnosticInterrupt"})

# Errors that concern one instance, not the call: a batch hit by one is split up.
PER_INSTANCE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "IncorrectInstanceState", "IncorrectState"})
# Also split on a denial: the IAM tag condition may fail for one instance of the batch only.
SPLIT_CODES = PER_INSTANCE_CODES | {"UnauthorizedOperation"}
# The request left and no usable answer came back: it may have run. Re-read, never repeat.
UNCERTAIN_ERRORS = (ReadTimeoutError, ConnectionClosedError, ResponseParserError)
FORCE_WAIT_SECONDS = 120  # after StopInstances(Force=True); AWS documents no bound for it either
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
    except UNCERTAIN_ERRORS as exc:
        raise UncertainOutcome(f"RebootInstances for {len(ids)} instance(s): {exc}") from exc
    except ClientError as exc:
        if len(ids) == 1:
            if error_code(exc) in PER_INSTANCE_CODES:
                return {ids[0]: Result(OutcomeStatus.SKIPPED, _skip_reason(exc))}
            raise
        if error_code(exc) not in SPLIT_CODES:
            raise
    results: dict[str, Result] = {}
    for instance_id in ids:
        try:
            results.update(reboot(ec2, [instance_id]))
        except UncertainOutcome as exc:
            results[instance_id] = Result(OutcomeStatus.UNCERTAIN, f"no answer ({exc}); not repeated, the next sweep verifies")
        except ClientError as exc:
            detail = describe_aws_error(exc, "ec2:RebootInstances")
            if error_code(exc) == "UnauthorizedOperation":
                detail += "; denied for this instance alone (the role allows it only on instances carrying the selector tag)"
            results[instance_id] = Result(OutcomeStatus.FAILED, detail)
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
    except UNCERTAIN_ERRORS as exc:
        raise UncertainOutcome(f"SendDiagnosticInterrupt {instance_id}: {exc}") from exc
    except ClientError as exc:
        if error_code(exc) in PER_INSTANCE_CODES or error_code(exc) == "UnsupportedOperation":
            return Result(OutcomeStatus.SKIPPED, _skip_reason(exc))
        raise
    return Result(OutcomeStatus.DONE, "diagnostic interrupt sent (kdump, then reboot)")


@retry_throttled
def _stop(ec2: Any, instance_id: str, force: bool = False) -> None:
    if force:
        ec2.stop_instances(InstanceIds=[instance_id], Force=True)
    else:
        ec2.stop_instances(InstanceIds=[instance_id])


@retry_throttled
def _start(ec2: Any, instance_id: str) -> None:
    ec2.start_instances(InstanceIds=[instance_id])


def wait_stopped(ec2: Any, instance_id: str, seconds: float, poll_seconds: float = 5.0) -> str:
    """Wait up to ``seconds`` for the instance to be stopped; returns the state last seen.

    botocore's ``instance_stopped`` waiter gives up at once on ``pending`` or
    ``terminated`` (someone else started or ended it): the caller must not force a stop then.
    """
    attempts = max(1, math.ceil(seconds / poll_seconds)) if poll_seconds > 0 else 1
    try:
        ec2.get_waiter("instance_stopped").wait(
            InstanceIds=[instance_id], WaiterConfig={"Delay": poll_seconds, "MaxAttempts": attempts}
        )
    except WaiterError as exc:
        return _state_in(getattr(exc, "last_response", None)) or "unknown"
    return "stopped"


def _state_in(page: Any) -> str | None:
    for reservation in (page or {}).get("Reservations", []):
        for raw in reservation.get("Instances", []):
            return str((raw.get("State") or {}).get("Name", "")) or None
    return None


def stop_start(
    ec2: Any, instance_id: str, wait_seconds: float = 300, force_wait_seconds: float = FORCE_WAIT_SECONDS, poll_seconds: float = 5.0
) -> Result:
    """Stop, wait until stopped (forcing it if the graceful stop hangs), start.

    Moves the instance to other hardware (EBS-backed only: see ``orchestrator.decide.rungs``).
    Any result that leaves the instance stopped or stopping starts with ``START_PENDING``.
    """
    try:
        _stop(ec2, instance_id)
    except ClientError as exc:
        if error_code(exc) in PER_INSTANCE_CODES:
            return Result(OutcomeStatus.SKIPPED, _skip_reason(exc))
        raise
    except UNCERTAIN_ERRORS as exc:
        raise UncertainOutcome(f"StopInstances {instance_id}: {exc}") from exc
    state = wait_stopped(ec2, instance_id, wait_seconds, poll_seconds)
    how = "stopped"
    if state != "stopped":
        if state not in ("stopping", "running", "unknown"):
            return Result(OutcomeStatus.SKIPPED, f"instance went {state} while orch waited for its stop: left alone")
        forced = _force_stop(ec2, instance_id, force_wait_seconds, poll_seconds, f"not stopped {wait_seconds:g} s after StopInstances")
        if isinstance(forced, Result):
            return forced
        how = f"stopped (StopInstances Force=True after {wait_seconds:g} s)"
    return _start_stopped(ec2, instance_id, how)


def _force_stop(ec2: Any, instance_id: str, wait_seconds: float, poll_seconds: float, why: str) -> Result | None:
    """StopInstances Force=True and wait; None once stopped, else the start-pending result."""
    try:
        _stop(ec2, instance_id, force=True)
    except (ClientError, *UNCERTAIN_ERRORS) as exc:
        return Result(
            OutcomeStatus.FAILED,
            f"{START_PENDING}: {why}; StopInstances Force=True failed ({describe_aws_error(exc, 'ec2:StopInstances')}); "
            "the next sweep forces the stop again and starts it",
        )
    state = wait_stopped(ec2, instance_id, wait_seconds, poll_seconds)
    if state != "stopped":
        return Result(
            OutcomeStatus.FAILED,
            f"{START_PENDING}: {why}, still {state} {wait_seconds:g} s after StopInstances Force=True; "
            "the next sweep forces the stop again and starts it",
        )
    return None


def _start_stopped(ec2: Any, instance_id: str, how: str) -> Result:
    try:
        _start(ec2, instance_id)
    except UNCERTAIN_ERRORS as exc:
        raise UncertainOutcome(f"StartInstances {instance_id} after it {how}: {exc}") from exc
    except ClientError as exc:
        return Result(
            OutcomeStatus.FAILED,
            f"{START_PENDING}: {how}, then StartInstances failed: {describe_aws_error(exc, 'ec2:StartInstances')}; "
            "the next sweep retries the start",
        )
    return Result(OutcomeStatus.DONE, f"{how} and started")


def finish_stop_start(
    ec2: Any, instance_id: str, force_wait_seconds: float = FORCE_WAIT_SECONDS, poll_seconds: float = 5.0
) -> Result:
    """Start an instance an earlier stop/start of orch's left stopped (or still stopping)."""
    try:
        _start(ec2, instance_id)
    except UNCERTAIN_ERRORS as exc:
        raise UncertainOutcome(f"StartInstances {instance_id}: {exc}") from exc
    except ClientError as exc:
        code = error_code(exc)
        if code.startswith("InvalidInstanceID"):
            return Result(OutcomeStatus.SKIPPED, _skip_reason(exc))
        if code not in ("IncorrectInstanceState", "IncorrectState"):
            return Result(
                OutcomeStatus.FAILED,
                f"{START_PENDING}: StartInstances failed: {describe_aws_error(exc, 'ec2:StartInstances')}; the next sweep retries",
            )
        state = current_state(ec2, instance_id)
        if state != "stopping":
            return Result(OutcomeStatus.SKIPPED, f"instance is {state}: nothing to start")
        forced = _force_stop(ec2, instance_id, force_wait_seconds, poll_seconds, "still stopping")
        if isinstance(forced, Result):
            return forced
        return _start_stopped(ec2, instance_id, "stopped (StopInstances Force=True)")
    return Result(OutcomeStatus.DONE, "started: the stop/start orch began is complete")


def current_state(ec2: Any, instance_id: str) -> str:
    """Re-read after an uncertain call, so the record says what is true, not what we hoped.

    Never raises: a failed re-read (even an unreachable endpoint) is itself the answer.
    """
    try:
        page = ec2.describe_instances(InstanceIds=[instance_id])
    except AWS_CALL_ERRORS as exc:
        return f"unknown ({error_code(exc) or type(exc).__name__})"
    return _state_in(page) or "gone"
