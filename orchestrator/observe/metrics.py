"""Memory: the CloudWatch agent's metric for many instances in few calls.

The agent often appends dimensions (ImageId, InstanceType, AutoScalingGroupName), and
a GetMetricData query must name the exact dimension set or it silently returns
nothing. So the real sets are discovered with ListMetrics, cached for a while (they
change only when the agent's config does), and then read 500 queries per call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from orchestrator.model import MemorySeries

PERMISSIONS = frozenset({"cloudwatch:ListMetrics", "cloudwatch:GetMetricData"})
QUERIES_PER_CALL = 500
Dimensions = tuple[tuple[str, str], ...]


@dataclass
class DimensionCache:
    """Discovered dimension sets per instance; refreshed at most once per ``ttl``."""

    ttl: timedelta = timedelta(minutes=30)
    by_instance: dict[str, Dimensions] = field(default_factory=dict)
    refreshed_at: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stale(self, now: datetime, wanted: Iterable[str]) -> bool:
        if self.refreshed_at is None or now - self.refreshed_at >= self.ttl:
            return True
        # New instances may have started reporting since; look again, but not every sweep.
        missing = any(i not in self.by_instance for i in wanted)
        return missing and now - self.refreshed_at >= timedelta(minutes=5)


def discover_dimensions(cloudwatch: Any, namespace: str, metric: str) -> dict[str, Dimensions]:
    """InstanceId -> the dimension set the agent actually publishes under.

    When an instance reports under several sets (a config change appended dimensions),
    the set with the fewest extra dimensions wins, a stable choice across sweeps.
    """
    found: dict[str, Dimensions] = {}
    paginator = cloudwatch.get_paginator("list_metrics")
    for page in paginator.paginate(Namespace=namespace, MetricName=metric, Dimensions=[{"Name": "InstanceId"}]):
        for raw in page.get("Metrics", []):
            # Kept in the order ListMetrics gives: CloudWatch matches sets in any order,
            # but moto (and so every test) matches them only in the published order.
            dims: Dimensions = tuple((d["Name"], d["Value"]) for d in raw.get("Dimensions", []))
            instance_id = dict(dims).get("InstanceId")
            if not instance_id:
                continue
            current = found.get(instance_id)
            if current is None or (len(dims), sorted(dims)) < (len(current), sorted(current)):
                found[instance_id] = dims
    return found


@dataclass
class MemoryReader:
    """Reads the memory window for a set of instances; remembers what it requested."""

    cloudwatch: Any
    namespace: str
    metric: str
    window: timedelta
    period_seconds: int
    cache: DimensionCache = field(default_factory=DimensionCache)
    metrics_requested: int = 0
    progress: Callable[[int, int], None] | None = None  # (instances read, instances wanted)

    def read(self, instance_ids: Iterable[str], now: datetime) -> dict[str, MemorySeries]:
        ids = sorted(set(instance_ids))
        with self.cache._lock:
            if self.cache.stale(now, ids):
                self.cache.by_instance = discover_dimensions(self.cloudwatch, self.namespace, self.metric)
                self.cache.refreshed_at = now
            dims = {i: self.cache.by_instance[i] for i in ids if i in self.cache.by_instance}
        series = {i: MemorySeries(instance_id=i) for i in ids}
        targets = sorted(dims.items())
        for start in range(0, len(targets), QUERIES_PER_CALL):
            chunk = targets[start : start + QUERIES_PER_CALL]
            series.update(self._read_chunk(chunk, now))
            if self.progress is not None:
                self.progress(start + len(chunk), len(targets))
        return series

    def _read_chunk(self, chunk: list[tuple[str, Dimensions]], now: datetime) -> dict[str, MemorySeries]:
        queries = []
        by_query: dict[str, str] = {}
        for index, (instance_id, dims) in enumerate(chunk):
            query_id = f"m{index}"
            by_query[query_id] = instance_id
            queries.append(
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": self.namespace,
                            "MetricName": self.metric,
                            "Dimensions": [{"Name": n, "Value": v} for n, v in dims],
                        },
                        "Period": self.period_seconds,
                        "Stat": "Maximum",
                    },
                    "ReturnData": True,
                }
            )
        self.metrics_requested += len(queries)
        points: dict[str, list[tuple[datetime, float]]] = {i: [] for i in by_query.values()}
        paginator = self.cloudwatch.get_paginator("get_metric_data")
        for page in paginator.paginate(
            MetricDataQueries=queries,
            StartTime=now - self.window,
            EndTime=now,
            ScanBy="TimestampAscending",
        ):
            for result in page.get("MetricDataResults", []):
                instance_id = by_query.get(result.get("Id", ""))
                if instance_id is None:
                    continue
                points[instance_id].extend(zip(result.get("Timestamps", []), result.get("Values", [])))
        return {
            i: MemorySeries(instance_id=i, points=tuple(sorted((t, float(v)) for t, v in p)))
            for i, p in points.items()
        }
