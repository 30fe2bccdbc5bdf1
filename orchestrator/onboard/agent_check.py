"""`orch agent check`: is each instance's memory (and a named process's) arriving in CloudWatch?

The verdict is pure (``judge``): a metric is arriving when its newest datapoint is within
``memory.stale_minutes`` of now, the same rule diagnose uses to call an agent stale. Memory
is read exactly as a sweep reads it (MemoryReader, dimension sets discovered with
ListMetrics); a process's memory is ``procstat_memory_rss`` under ``pattern=PATTERN``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from orchestrator.config import MemorySettings
from orchestrator.model import Instance
from orchestrator.observe import procstat
from orchestrator.observe.metrics import QUERIES_PER_CALL, RECENTLY_ACTIVE, MemoryReader

PERMISSIONS = frozenset({"ec2:DescribeInstances", "cloudwatch:ListMetrics", "cloudwatch:GetMetricData"})


class Arrival(str, enum.Enum):
    ARRIVING = "arriving"
    STALE = "stale"
    MISSING = "missing"
    NOT_RUNNING = "not-running"  # a stopped instance publishes nothing; not a fault of its agent


@dataclass(frozen=True, slots=True)
class AgentStatus:
    instance_id: str
    name: str
    state: str
    memory: Arrival
    memory_at: datetime | None
    process: Arrival | None  # None: no --process asked
    process_at: datetime | None

    @property
    def lacking(self) -> bool:
        return self.memory in (Arrival.STALE, Arrival.MISSING) or self.process in (Arrival.STALE, Arrival.MISSING)


def arrival(latest: datetime | None, now: datetime, stale: timedelta) -> Arrival:
    if latest is None:
        return Arrival.MISSING
    return Arrival.ARRIVING if now - latest <= stale else Arrival.STALE


def judge(
    instances: Sequence[Instance],
    memory_latest: Mapping[str, datetime | None],
    process_latest: Mapping[str, datetime | None] | None,
    now: datetime,
    stale: timedelta,
) -> list[AgentStatus]:
    """One status per instance, lacking ones first."""
    rows = []
    for i in instances:
        running = i.state == "running"
        mem_at, proc_at = memory_latest.get(i.instance_id), (process_latest or {}).get(i.instance_id)
        rows.append(
            AgentStatus(
                instance_id=i.instance_id,
                name=i.name,
                state=i.state,
                memory=arrival(mem_at, now, stale) if running else Arrival.NOT_RUNNING,
                memory_at=mem_at,
                process=None if process_latest is None else (arrival(proc_at, now, stale) if running else Arrival.NOT_RUNNING),
                process_at=proc_at,
            )
        )
    return sorted(rows, key=lambda r: (not r.lacking, r.instance_id))


def read_memory_latest(cloudwatch: Any, memory: MemorySettings, instance_ids: Iterable[str], now: datetime) -> dict[str, datetime | None]:
    """The newest memory datapoint per instance, read as a sweep reads it (over its window, so an
    agent that went silent half an hour ago is stale, not missing: it once worked)."""
    window = timedelta(minutes=memory.window_minutes)
    reader = MemoryReader(cloudwatch, memory.namespace, memory.metric, window, memory.period_seconds)
    return {i: (s.latest[0] if s.latest else None) for i, s in reader.read(instance_ids, now).items()}


def read_process_latest(
    cloudwatch: Any, namespace: str, pattern: str, instance_ids: Iterable[str], now: datetime, span: timedelta
) -> dict[str, datetime | None]:
    """The newest ``procstat_memory_rss`` datapoint per instance for processes chosen by ``pattern``."""
    wanted = set(instance_ids)
    latest: dict[str, datetime | None] = {i: None for i in wanted}
    sets: list[tuple[str, list[dict[str, str]]]] = []
    paginator = cloudwatch.get_paginator("list_metrics")
    pages = paginator.paginate(
        Namespace=namespace, MetricName=procstat.METRIC, Dimensions=[{"Name": "pattern", "Value": pattern}], RecentlyActive=RECENTLY_ACTIVE
    )
    for page in pages:
        for metric in page.get("Metrics", []):
            dims = metric.get("Dimensions", [])
            instance_id = next((d["Value"] for d in dims if d["Name"] == "InstanceId"), None)
            if instance_id in wanted:
                sets.append((instance_id, dims))
    for start in range(0, len(sets), QUERIES_PER_CALL):
        chunk = sets[start : start + QUERIES_PER_CALL]
        queries = [
            {"Id": f"p{n}", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": procstat.METRIC, "Dimensions": dims},
                                           "Period": 60, "Stat": "Maximum"}, "ReturnData": True}
            for n, (_, dims) in enumerate(chunk)
        ]
        for page in cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=now - span, EndTime=now, ScanBy="TimestampDescending"
        ):
            for result in page.get("MetricDataResults", []):
                stamps = result.get("Timestamps") or []
                if not stamps:
                    continue
                instance_id = chunk[int(result["Id"][1:])][0]
                newest = max(stamps)
                if latest[instance_id] is None or newest > latest[instance_id]:  # type: ignore[operator]
                    latest[instance_id] = newest
    return latest
