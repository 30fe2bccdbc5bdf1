"""Auto Scaling replacement: mark a member Unhealthy so its group replaces it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from orchestrator.act.ec2 import Result, UncertainOutcome
from orchestrator.aws import error_code, retry_throttled
from orchestrator.model import OutcomeStatus

PERMISSIONS = frozenset({"autoscaling:SetInstanceHealth"})


@retry_throttled
def _set_unhealthy(autoscaling: Any, instance_id: str) -> None:
    # ShouldRespectGracePeriod=False: the instance has already been given its chances.
    autoscaling.set_instance_health(InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)


def mark_unhealthy(autoscaling: Any, instance_id: str) -> Result:
    """The group terminates and replaces it at its own pace, keeping desired capacity."""
    try:
        _set_unhealthy(autoscaling, instance_id)
    except (ReadTimeoutError, ConnectionClosedError) as exc:
        raise UncertainOutcome(f"SetInstanceHealth {instance_id}: {exc}") from exc
    except ClientError as exc:
        if error_code(exc) == "ValidationError":
            return Result(OutcomeStatus.SKIPPED, f"not in an Auto Scaling group any more ({exc.response['Error'].get('Message', '')})")
        raise
    return Result(OutcomeStatus.DONE, "marked Unhealthy; the Auto Scaling group replaces it")
