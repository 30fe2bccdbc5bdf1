"""The sandbox's CloudWatch agents: what one publishes (its dimensions, its datum) and how
many publish at once (PutMetricData in batches). Used by orchestrator.sandbox.fleet."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

PUT_BATCH = 1000  # PutMetricData accepts up to 1000 datums per call


class Agent(Protocol):
    """What a datum needs of an instance (orchestrator.sandbox.fleet.SimInstance)."""

    instance_id: str
    image_id: str
    instance_type: str
    asg_name: str | None


def dimensions(sim: Agent, agent_dimensions: bool) -> list[dict[str, str]]:
    """The agent's dimension set: InstanceId, and what the agent appends by default."""
    dims = {"InstanceId": sim.instance_id}
    if agent_dimensions:
        dims["ImageId"] = sim.image_id
        dims["InstanceType"] = sim.instance_type
        if sim.asg_name:
            dims["AutoScalingGroupName"] = sim.asg_name
    # Sorted by name: CloudWatch treats them as a set, moto (unpatched) by order.
    return [{"Name": k, "Value": v} for k, v in sorted(dims.items())]


def datum(metric: str, sim: Agent, agent_dimensions: bool, stamped: datetime, value: float) -> dict[str, Any]:
    return {"MetricName": metric, "Dimensions": dimensions(sim, agent_dimensions), "Timestamp": stamped, "Value": value, "Unit": "Percent"}


def put_batches(cloudwatch: Any, namespace: str, datums: list[dict[str, Any]]) -> None:
    """PutMetricData in batches, like many agents reporting at once."""
    for start in range(0, len(datums), PUT_BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=datums[start : start + PUT_BATCH])
