"""Memory: the CloudWatch agent's metric for many instances in few calls.

The agent often appends dimensions (ImageId, InstanceType, AutoScalingGroupName), and
a GetMetricData query must name the exact dimension set or it silently returns
nothing. So the real sets are discovered with ListMetrics, cached for a while (they
change only when the agent's config does), and then read 500 queries per call.

What moto hides (CloudWatch API reference):

- ListMetrics lists every dimension set that had data in the last two weeks. After an
  agent config change the old set is still listed, silent: reading it, every instance
  looks ``metrics-stale``, which counts as host-side corroboration and would let a mass
  SSH failure past the circuit breaker. So only sets active in the last three hours are
  listed (``RecentlyActive=PT3H``, its one valid value) and, when an instance still has
  several, each is read and the one with the newest datapoint wins.
- Each ``MetricDataResult`` carries a ``StatusCode`` (``Complete``, ``PartialData``,
  ``InternalError``, ``Forbidden``) and ``Messages``. Anything but ``Complete`` after the
  last page is a failed read, not "no data": ``IncompleteMetricData`` aborts the sweep
  before anything is decided on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from botocore.exceptions import BotoCoreError

from orchestrator.model import MemorySeries

PERMISSIONS = frozenset({"cloudwatch:ListMetrics", "cloudwatch:GetMetricData"})
QUERIES_PER_CALL = 500
RECENTLY_ACTIVE = "PT3H"
Dimensions = tuple[tuple[str, str], ...]


class IncompleteMetricData(BotoCoreError):
    """GetMetricData answered 200 but said in its body that the data is not all there.

    A BotoCoreError on purpose: it is an AWS read that failed, and every caller already
    turns those into "abort before acting" with this one line.
    """

    fmt = "GetMetricData did not return all the data: {summary}; memory facts incomplete, nothing is decided on them"


@dataclass
class DimensionCache:
    """Discovered dimension sets per instance; refreshed at most once per ``ttl``."""

    ttl: timedelta = timedelta(minutes=30)
    by_instance: dict[str, tuple[Dimensions, ...]] = field(default_factory=dict)
    refreshed_at: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stale(self, now: datetime, wanted: Iterable[str]) -> bool:
        if self.refreshed_at is None or now - self.refreshed_at >= self.ttl:
            return True
        # New instances may have started reporting since; look again, but not every sweep.
        missing = any(i not in self.by_instance for i in wanted)
        return missing and now - self.refreshed_at >= timedelta(minutes=5)


def discover_dimensions(cloudwatch: Any, namespace: str, metric: str) -> dict[str, tuple[Dimensions, ...]]:
    """InstanceId -> every dimension set it published under in the last three hours.

    Several sets for one instance (a config change appended dimensions) are all kept,
    fewest dimensions first: the reader asks for each and keeps the newest data.
    """
    found: dict[str, list[Dimensions]] = {}
    paginator = cloudwatch.get_paginator("list_metrics")
    pages = paginator.paginate(Namespace=namespace, MetricName=metric, Dimensions=[{"Name": "InstanceId"}], RecentlyActive=RECENTLY_ACTIVE)
    for page in pages:
        for raw in page.get("Metrics", []):
            # Kept in the order ListMetrics gives: CloudWatch matches sets in any order,
            # but moto (and so every test) matches them only in the published order.
            dims: Dimensions = tuple((d["Name"], d["Value"]) for d in raw.get("Dimensions", []))
            instance_id = dict(dims).get("InstanceId")
            if instance_id and dims not in found.setdefault(instance_id, []):
                found[instance_id].append(dims)
    return {i: tuple(sorted(sets, key=lambda d: (len(d), sorted(d)))) for i, sets in found.items()}


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
            sets = {i: self.cache.by_instance[i] for i in ids if i in self.cache.by_instance}
        series = {i: MemorySeries(instance_id=i) for i in ids}
        targets = [(i, dims) for i in sorted(sets) for dims in sets[i]]
        for start in range(0, len(targets), QUERIES_PER_CALL):
            chunk = targets[start : start + QUERIES_PER_CALL]
            for read in self._read_chunk(chunk, now):
                series[read.instance_id] = newest(series[read.instance_id], read)
            if self.progress is not None:
                self.progress(start + len(chunk), len(targets))
        return series

    def _read_chunk(self, chunk: list[tuple[str, Dimensions]], now: datetime) -> list[MemorySeries]:
        queries = []
        by_query: dict[str, tuple[str, Dimensions]] = {}
        for index, (instance_id, dims) in enumerate(chunk):
            query_id = f"m{index}"
            by_query[query_id] = (instance_id, dims)
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
        points: dict[str, list[tuple[datetime, float]]] = {q: [] for q in by_query}
        status: dict[str, tuple[str, str]] = {}  # query id -> (StatusCode, messages) of its last page
        call_messages: list[str] = []
        paginator = self.cloudwatch.get_paginator("get_metric_data")
        for page in paginator.paginate(
            MetricDataQueries=queries,
            StartTime=now - self.window,
            EndTime=now,
            ScanBy="TimestampAscending",
        ):
            call_messages.extend(_messages(page.get("Messages")))
            for result in page.get("MetricDataResults", []):
                query_id = result.get("Id", "")
                if query_id not in by_query:
                    continue
                points[query_id].extend(zip(result.get("Timestamps", []), result.get("Values", [])))
                status[query_id] = (str(result.get("StatusCode") or "Complete"), "; ".join(_messages(result.get("Messages"))))
        problems = incomplete(status, call_messages, {q: i for q, (i, _) in by_query.items()})
        if problems:
            raise IncompleteMetricData(summary=problems)
        return [
            MemorySeries(instance_id=by_query[q][0], points=tuple(sorted((t, float(v)) for t, v in p)))
            for q, p in points.items()
        ]


def _messages(raw: Any) -> list[str]:
    return [f"{m.get('Code', '')}: {m.get('Value', '')}".strip(": ") for m in raw or []]


def incomplete(status: dict[str, tuple[str, str]], call_messages: list[str], instance_of: dict[str, str]) -> str:
    """One line naming what did not come back whole, or "" when everything is Complete.

    ``PartialData`` on a page is normal while NextToken pages follow; only the status of a
    query's last page counts (the paginator has followed every NextToken by then).
    """
    failed: dict[str, list[str]] = {}
    for query_id, (code, messages) in sorted(status.items()):
        if code != "Complete":
            failed.setdefault(code, []).append(instance_of[query_id] + (f" ({messages})" if messages else ""))
    parts = [f"{code} for {len(who)} quer{'y' if len(who) == 1 else 'ies'} ({', '.join(who[:3])}{', ...' if len(who) > 3 else ''})" for code, who in sorted(failed.items())]
    if call_messages:
        parts.append("messages: " + "; ".join(call_messages[:3]))
    return ", ".join(parts)


def newest(current: MemorySeries, candidate: MemorySeries) -> MemorySeries:
    """Of two reads of one instance under different dimension sets, the one whose data is newest.

    Ties (and two empty reads) keep ``current``: sets are read fewest-dimensions first.
    """
    if candidate.latest is None:
        return current
    if current.latest is None or candidate.latest[0] > current.latest[0]:
        return candidate
    return current
