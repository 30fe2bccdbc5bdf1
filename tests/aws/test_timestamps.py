"""Clients made by orch parse response timestamps into the one shared UTC zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from orchestrator.aws import Clients
from tests.aws.conftest import launch


def test_cloudwatch_and_ec2_timestamps_are_utc(aws: Clients, subnet: str) -> None:
    (instance_id,) = launch(aws, subnet, 1)
    launched = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["LaunchTime"]
    assert launched.tzinfo is timezone.utc
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    dims = [{"Name": "InstanceId", "Value": instance_id}]
    aws.cloudwatch.put_metric_data(
        Namespace="CWAgent", MetricData=[{"MetricName": "mem_used_percent", "Dimensions": dims, "Timestamp": now - timedelta(minutes=2), "Value": 42.0}]
    )
    result = aws.cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": "CWAgent", "MetricName": "mem_used_percent", "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
    )["MetricDataResults"][0]
    assert result["Values"] == [42.0]
    assert result["Timestamps"] == [now - timedelta(minutes=2)]
    assert result["Timestamps"][0].tzinfo is timezone.utc
