"""Make moto's CloudWatch answer like CloudWatch for the agent's multi-dimension metrics.

Three moto 5.x defects matter for orch, all found with the sandbox's own data:

1. ``Dimension.__lt__`` is not an ordering (it compares a value with a name), so
   GetMetricData's ``sorted(datum dims) == sorted(query dims)`` depends on the order
   the dimensions were written in: a query naming the same set in another order
   gets no data. CloudWatch treats dimensions as a set. Fixed: order by (name, value).
2. ``are_dimensions_same`` compares every dimension with every other, so a metric
   with two or more dimensions is never "already present": ListMetrics returns one
   entry per datapoint (60 duplicates per instance per hour) and the dedupe is
   quadratic. Fixed: ``get_filtered_metrics`` dedupes by (namespace, name, dim set).
3. GetMetricData scans every stored datapoint for every query and every period:
   queries x periods x datapoints, hours at 10,000 instances. Fixed for MetricStat
   queries with dimensions: an incremental index (name, dim set) -> datapoints gives
   each query only its datapoints, bucketed by period in one pass (moto's own loop
   rescans them once per period: 500 queries x 61 periods outlasted botocore's read
   timeout at 10,000 instances), with moto's Statistics. Any other query shape
   (expressions, no dimensions) falls through to moto unchanged.
4. GetMetricStatistics scans every stored datapoint per call (10,000 calls over
   600,000 points is an hour of moto, for the benchmark's per-instance baseline), and
   matches any datapoint that *contains* the queried dimensions, where CloudWatch
   wants the exact set. Fixed with the same index: exact (name, dim set) lookup; a
   call without dimensions falls through to moto unchanged.

The fixes keep moto's result format because they reuse its code; they are installed
only while a Sandbox runs and removed when it stops.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Iterable

from moto.cloudwatch.models import CloudWatchBackend, Dimension, MetricDatumBase, Statistics

from orchestrator.sandbox.patching import PatchSet

DimKey = tuple[str, str, frozenset[tuple[str | None, str | None]]]

_lock = threading.Lock()
_indexes: dict[int, _Index] = {}


def _dim_lt(self: Dimension, other: Dimension) -> bool:
    return (self.name or "", self.value or "") < (other.name or "", other.value or "")


def _key(namespace: str, name: str, dimensions: list[Dimension]) -> DimKey:
    return (namespace, name, frozenset((d.name, d.value) for d in dimensions))


def _get_filtered_metrics(
    self: CloudWatchBackend, metric_name: str, namespace: str, dimensions: list[dict[str, str]]
) -> list[MetricDatumBase]:
    seen: set[DimKey] = set()
    found: list[MetricDatumBase] = []
    for datum in self.get_all_metrics():
        if not datum.filter(namespace=namespace, name=metric_name, dimensions=dimensions):
            continue
        key = _key(datum.namespace, datum.name, datum.dimensions)
        if key not in seen:
            seen.add(key)
            found.append(datum)
    return found


class _Index:
    """(name, dimension set) -> datapoints, extended as moto appends to ``metric_data``."""

    def __init__(self, data: list[MetricDatumBase]) -> None:
        self.data = data
        self.indexed = 0
        self.by_key: dict[tuple[str, frozenset[tuple[str | None, str | None]]], list[MetricDatumBase]] = {}

    def refresh(self) -> None:
        for datum in self.data[self.indexed :]:
            key = (datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            self.by_key.setdefault(key, []).append(datum)
        self.indexed = len(self.data)


def _index_for(backend: CloudWatchBackend) -> _Index:
    with _lock:
        index = _indexes.get(id(backend))
        if index is None or index.data is not backend.metric_data or len(backend.metric_data) < index.indexed:
            index = _Index(backend.metric_data)
            _indexes[id(backend)] = index
        index.refresh()
        return index


def _builtin_by_key(backend: CloudWatchBackend) -> dict[Any, list[MetricDatumBase]]:
    """moto's built-in AWS/* metrics (an S3 bucket's size, ...), computed per call as moto does.

    A sandbox always has the evidence bucket, so these are never empty: they join the
    index's datapoints instead of sending every query down moto's slow path.
    """
    found: dict[Any, list[MetricDatumBase]] = {}
    for datum in backend.aws_metric_data:
        found.setdefault((datum.name, frozenset((d.name, d.value) for d in datum.dimensions)), []).append(datum)
    return found


def _get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: datetime,
    end_time: datetime,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    original = PATCHES.original(CloudWatchBackend, "get_metric_data")
    simple = all("MetricStat" in q and q["MetricStat"]["Metric"].get("Dimensions") for q in queries)
    if not simple:
        return original(self, queries, start_time, end_time, scan_by)
    index = _index_for(self)
    builtin = _builtin_by_key(self)
    start_time = start_time.replace(microsecond=0)
    end_time = end_time.replace(microsecond=0)
    if start_time >= end_time:
        return original(self, queries, start_time, end_time, scan_by)  # moto's own error
    results: list[dict[str, Any]] = []
    for query in queries:
        metric_stat = query["MetricStat"]
        metric = metric_stat["Metric"]
        key = (metric["MetricName"], frozenset((d["Name"], d["Value"]) for d in metric["Dimensions"]))
        data = [*index.by_key.get(key, ()), *builtin.get(key, ())]
        results.append(_metric_stat(query, data, start_time, end_time, scan_by))
    return [r for r, q in zip(results, queries) if q.get("ReturnData", True)]


def _metric_stat(
    query: dict[str, Any], data: Iterable[MetricDatumBase], start_time: datetime, end_time: datetime, scan_by: str
) -> dict[str, Any]:
    """moto's MetricStat algorithm over this query's datapoints only, bucketed in one pass.

    moto rescans the datapoints once per period (and sorts dimensions per datapoint):
    at 500 queries x 61 periods a call took longer than botocore's read timeout.
    Same statistics (moto's ``Statistics``), same periods, same result shape.
    """
    metric_stat = query["MetricStat"]
    delta = timedelta(seconds=int(metric_stat["Period"]))
    unit = metric_stat.get("Unit")
    stat = metric_stat["Stat"]
    buckets: dict[int, list[MetricDatumBase]] = {}
    for datum in data:
        if start_time <= datum.timestamp < end_time and (not unit or datum.unit == unit):
            buckets.setdefault((datum.timestamp - start_time) // delta, []).append(datum)
    values: list[Any] = []
    timestamps: list[datetime] = []
    for number in sorted(buckets):
        stats = Statistics([stat], start_time + number * delta)
        stats.metric_data = buckets[number]
        values.append(stats.get_statistics_for_type(stat))
        timestamps.append(stats.timestamp)
    if scan_by == "TimestampDescending":
        values.reverse()
        timestamps.reverse()
    label = query.get("Label") or f"{metric_stat['Metric']['MetricName']} {stat}"
    return {"id": query["Id"], "label": label, "values": values, "timestamps": timestamps, "status_code": "Complete"}


def _get_metric_statistics(
    self: CloudWatchBackend,
    namespace: str,
    metric_name: str,
    start_time: datetime,
    end_time: datetime,
    period: int,
    stats: list[str],
    dimensions: list[dict[str, str]],
    unit: str | None = None,
) -> list[Any]:
    original = PATCHES.original(CloudWatchBackend, "get_metric_statistics")
    if not dimensions:
        return original(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit)
    index = _index_for(self)
    key = (metric_name, frozenset((d["Name"], d.get("Value")) for d in dimensions))
    subset = [*index.by_key.get(key, ()), *_builtin_by_key(self).get(key, ())]
    view = SimpleNamespace(get_all_metrics=lambda: subset)
    return original(view, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit)


PATCHES = PatchSet(
    (Dimension, "__lt__", _dim_lt),
    (CloudWatchBackend, "get_filtered_metrics", _get_filtered_metrics),
    (CloudWatchBackend, "get_metric_data", _get_metric_data),
    (CloudWatchBackend, "get_metric_statistics", _get_metric_statistics),
)


def install() -> None:
    """Patch moto's CloudWatch (idempotent)."""
    PATCHES.install()


def uninstall() -> None:
    PATCHES.uninstall()
    with _lock:
        _indexes.clear()
