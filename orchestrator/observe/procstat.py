"""Which process holds the memory: the CloudWatch agent's procstat metrics, when a box publishes them.

The console's OOM lines name the process only once the kernel killed it; a box acted
on ahead of its exhaustion has no such line. The agent's procstat plugin publishes
``procstat_memory_rss`` (bytes) per monitored process, under the dimension that chose
the process (``exe``, ``pattern`` or ``pidfile``), ``process_name`` and ``InstanceId``
(plus whatever the agent appends). Read for instances about to be acted on only, and
best effort: evidence never stops a heal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.aws import describe_aws_error

PERMISSIONS = frozenset({"cloudwatch:ListMetrics", "cloudwatch:GetMetricData"})
METRIC = "procstat_memory_rss"
NAME_DIMENSIONS = ("process_name", "exe", "pattern", "pidfile")  # the most readable first
LOOKBACK = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class TopProcess:
    name: str
    rss_kb: int


def top_process(cloudwatch: Any, namespace: str, instance_id: str, now: datetime) -> tuple[TopProcess | None, str | None]:
    """(the process with the most resident memory lately, error); (None, None) when none is published."""
    try:
        metrics = cloudwatch.list_metrics(
            Namespace=namespace, MetricName=METRIC, Dimensions=[{"Name": "InstanceId", "Value": instance_id}]
        ).get("Metrics", [])
        if not metrics:
            return None, None
        queries = [
            {"Id": f"p{n}", "MetricStat": {"Metric": m, "Period": 60, "Stat": "Maximum"}, "ReturnData": True}
            for n, m in enumerate(metrics[:100])
        ]
        reply = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=now - LOOKBACK, EndTime=now, ScanBy="TimestampDescending")
    except (ClientError, BotoCoreError) as exc:
        return None, describe_aws_error(exc)
    best: TopProcess | None = None
    for result in reply.get("MetricDataResults", []):
        values = result.get("Values") or []
        if not values:
            continue
        dims = {d["Name"]: d["Value"] for d in metrics[int(result["Id"][1:])].get("Dimensions", [])}
        name = next((dims[k] for k in NAME_DIMENSIONS if dims.get(k)), "")
        rss_kb = int(values[0] // 1024)
        if name and (best is None or rss_kb > best.rss_kb):
            best = TopProcess(name, rss_kb)
    return best, None
