"""Pure arithmetic of the benchmark: the minimum call count, CloudWatch cost, targets.

Kept apart from the measuring so that what is claimed about a number is checked
without a fleet: the bench measures, these functions only derive and compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

PAGE_INSTANCES = 1000  # DescribeInstances / DescribeInstanceStatus items per page
QUERIES_PER_CALL = 500  # GetMetricData metric queries per call
USD_PER_1000_METRICS = 0.01  # GetMetricData per metric requested; GetMetricStatistics per request
SWEEPS_PER_MONTH = 8640  # one sweep every 5 minutes for 30 days

# Targets at 10,000 instances on the 2-core benchmark machine (issue 6): reported, never asserted.
TARGET_EXTRA_CALLS = 3
TARGET_PROBE_SECONDS = 10.0
TARGET_DECIDE_SECONDS = 1.0
TARGET_PEAK_RSS_MB = 300.0
TARGET_BASELINE_RATIO = 300.0


@dataclass(frozen=True)
class Minimum:
    """The fewest calls a sweep of this fleet can make, by part.

    ``actions``, ``lease`` and ``notification`` are what *this* run needed: a dry run
    mutates nothing (0 action calls) and takes no lease (0), and the SQLite lease store
    costs no API call at all; the notification is 1 when the sweep had something to
    say and a topic is set (a dry run that plans an action still publishes its plan).
    """

    inventory: int
    status: int
    metrics: int
    actions: int
    lease: int
    notification: int

    @property
    def total(self) -> int:
        return self.inventory + self.status + self.metrics + self.actions + self.lease + self.notification

    def as_dict(self) -> dict[str, int]:
        return {
            "inventory": self.inventory,
            "status": self.status,
            "metrics": self.metrics,
            "actions": self.actions,
            "lease": self.lease,
            "notification": self.notification,
            "total": self.total,
        }


def pages(items: int, per_page: int) -> int:
    """Calls to list ``items`` at ``per_page``; listing nothing still takes one call."""
    return max(1, math.ceil(items / per_page))


def minimum_calls(
    instances: int, metrics_requested: int, *, action_calls: int = 0, lease_calls: int = 0, notification: int = 0
) -> Minimum:
    return Minimum(
        inventory=pages(instances, PAGE_INSTANCES),
        status=pages(instances, PAGE_INSTANCES),
        metrics=math.ceil(metrics_requested / QUERIES_PER_CALL),
        actions=action_calls,
        lease=lease_calls,
        notification=notification,
    )


def cloudwatch_cost(metrics_requested: int) -> tuple[float, float]:
    """(USD per sweep, USD per month at a 5-minute schedule)."""
    per_sweep = metrics_requested * USD_PER_1000_METRICS / 1000
    return per_sweep, per_sweep * SWEEPS_PER_MONTH


def targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it passed."""
    rows = [
        (
            "API calls <= minimum + 3",
            f"{result['api_calls_total']} <= {result['api_calls_minimum'] + TARGET_EXTRA_CALLS}",
            result["api_calls_total"] <= result["api_calls_minimum"] + TARGET_EXTRA_CALLS,
        ),
        (
            f"probe phase < {TARGET_PROBE_SECONDS:g} s",
            f"{result['probe_seconds']:.2f} s",
            result["probe_seconds"] < TARGET_PROBE_SECONDS,
        ),
        (
            f"deciding < {TARGET_DECIDE_SECONDS:g} s",
            f"{result['decide_seconds']:.3f} s",
            result["decide_seconds"] < TARGET_DECIDE_SECONDS,
        ),
        (
            f"peak memory < {TARGET_PEAK_RSS_MB:g} MB",
            f"{result['peak_rss_mb']:.0f} MB",
            result["peak_rss_mb"] < TARGET_PEAK_RSS_MB,
        ),
    ]
    baseline = result.get("baseline")
    if baseline:
        ratio = baseline["api_calls_total"] / max(1, result["api_calls_total"])
        rows.append(
            (
                f"baseline API calls >= {TARGET_BASELINE_RATIO:g}x ours",
                f"{ratio:.0f}x ({baseline['api_calls_total']} / {result['api_calls_total']})",
                ratio >= TARGET_BASELINE_RATIO,
            )
        )
    return [{"target": name, "measured": measured, "pass": bool(ok)} for name, measured, ok in rows]
