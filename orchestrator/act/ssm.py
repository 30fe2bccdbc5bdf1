"""Proactive relief: run a command (e.g. restart the leaking service) through SSM."""

from __future__ import annotations

from typing import Any, Sequence

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from orchestrator.act.ec2 import Result, UncertainOutcome
from orchestrator.aws import error_code, retry_throttled
from orchestrator.model import OutcomeStatus

PERMISSIONS = frozenset({"ssm:SendCommand"})


@retry_throttled
def _send(ssm: Any, instance_id: str, document: str, commands: Sequence[str]) -> str:
    reply = ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName=document,
        Parameters={"commands": list(commands)},
        Comment="orch: memory exhaustion forecast",
        TimeoutSeconds=60,
    )
    return str(reply["Command"]["CommandId"])


def run_command(ssm: Any, instance_id: str, document: str, commands: Sequence[str]) -> Result:
    try:
        command_id = _send(ssm, instance_id, document, commands)
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        raise UncertainOutcome(f"SendCommand {instance_id}: {exc}") from exc
    except ClientError as exc:
        if error_code(exc) in ("InvalidInstanceId", "InvalidInstanceInformationFilterValue"):
            return Result(OutcomeStatus.SKIPPED, f"SSM cannot reach the instance ({error_code(exc)})")
        raise
    return Result(OutcomeStatus.DONE, f"SSM command {command_id} sent")
