"""Scale on paper: what an estate's sweeps ask of AWS's quotas and what they cost a month.

Pure arithmetic over three inputs: the estate's shape, the cadence (sweep interval,
``memory.full_read_every``, the memory window), and what ``scripts/bench`` measured for
one VPC's sweep. orchestrator/bench/scaling.py prints docs/scaling.md's tables from it,
and tests/unit/test_scaling_doc.py recomputes them from the stored measurements, so the
document cannot drift from the arithmetic. Every AWS figure below is cited, with the
date it was read, in docs/scaling.md.

What the code does and this model follows (orchestrator/sweep/aws_fleet.py, sweep.py,
observe/metrics.py): every sweep lists the VPC's instances and their status checks
(1,000 a page each); a full sweep asks GetMetricData for every instance's whole memory
window (500 metrics a call), the sweeps between full reads (``full_read_every`` = K > 1)
ask only for the suspects' windows (a failed probe now, or a memory or reachability
verdict last sweep); ListMetrics is called once per 30 minutes (500 metrics a page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from orchestrator.bench.figures import PAGE_INSTANCES, QUERIES_PER_CALL, USD_PER_1000_METRICS, pages

MINUTES_PER_MONTH = 30 * 24 * 60  # a 30-day month, as figures.SWEEPS_PER_MONTH assumes


@dataclass(frozen=True)
class Bucket:
    """An EC2 token bucket: ``size`` calls at once, ``refill`` more each second."""

    name: str
    size: float
    refill: float


# EC2 request throttling, per account and region (EC2 developer guide, "Request throttling").
EC2_DESCRIBE = Bucket("Describe* (non-mutating)", 100, 20)
EC2_DESCRIBE_UNFILTERED = Bucket("DescribeInstances unfiltered, unpaginated", 50, 10)
EC2_MUTATING = Bucket("RebootInstances, StopInstances (mutating)", 50, 5)
EC2_START = Bucket("StartInstances (its own bucket)", 5, 2)
EC2_START_RESOURCE = Bucket("StartInstances instances (resource bucket)", 1000, 2)
EC2_STOP_RESOURCE = Bucket("StopInstances instances (resource bucket)", 1000, 20)
# CloudWatch quotas, per account and region (CloudWatch service quotas).
GMD_TPS = 50
GMD_DPS = 180_000  # datapoints a second when StartTime is within the last 3 hours (orch's window is)
GMD_POINTS_PER_CALL = 100_800
LIST_METRICS_TPS = 25
LIST_METRICS_PAGE = 500
# Prices, us-east-1 list, before free tiers.
LAMBDA_USD_PER_GB_S = 0.0000166667  # x86_64; arm64 is 0.0000133334
LAMBDA_USD_PER_REQUEST = 0.20 / 1e6
LAMBDA_MEMORY_MB = 512  # cfn/orchestrator.yaml MemorySize
DDB_USD_PER_RRU = 0.125 / 1e6  # on-demand read request unit
DDB_USD_PER_WRU = 0.625 / 1e6  # on-demand write request unit
USD_PER_1000_REQUESTS = 0.01  # ListMetrics and other CloudWatch API requests
# orch's own constants the arithmetic uses.
DIMENSION_TTL_MINUTES = 30  # observe/metrics.DimensionCache.ttl
DEFAULT_PROBE_FLOOR_S = 20.0 + 5.0  # probe.retry_window + probe.banner_timeout: one hung instance
MAX_ACTIONS_PER_SWEEP = 3  # safety.max_actions_per_sweep default


@dataclass(frozen=True)
class Estate:
    """The fleet on paper; ``vpcs_per_account_region`` is how many VPC sweeps share one set of buckets."""

    instances: int = 100_000
    vpcs: int = 40
    accounts: int = 20
    regions: int = 8
    vpcs_per_account_region: int = 1
    metrics_per_instance: float = 1.0  # every instance runs the agent (the bench's fleet: 0.98)
    suspect_percent: float = 1.0  # instances read between full reads: assumed, 12x the bench fleet's 0.08 %

    @property
    def per_vpc(self) -> int:
        return math.ceil(self.instances / self.vpcs)

    @property
    def per_account_region(self) -> int:
        return self.per_vpc * self.vpcs_per_account_region


@dataclass(frozen=True)
class Cadence:
    sweep_minutes: int = 5
    full_read_every: int = 1
    window_minutes: int = 60
    period_seconds: int = 60

    @property
    def sweeps_per_month(self) -> int:
        return MINUTES_PER_MONTH // self.sweep_minutes

    @property
    def points_per_metric(self) -> int:
        return self.window_minutes * 60 // self.period_seconds


@dataclass(frozen=True)
class Measured:
    """One VPC's sweep as ``scripts/bench --output json`` reported it."""

    instances: int
    api_calls: Mapping[str, int]
    metrics_requested: int
    sweep_seconds: float
    aws_seconds: float
    probe_seconds: float
    decide_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    sweep_record_bytes: int
    unreachable: int
    list_metrics: int  # ListMetrics calls of the warm-up sweep (the measured one had them cached)
    date: str

    @classmethod
    def from_bench(cls, result: Mapping[str, Any]) -> Measured:
        return cls(
            instances=result["instances"],
            api_calls=dict(result["api_calls"]),
            metrics_requested=result["metrics_requested"],
            sweep_seconds=result["sweep_seconds"],
            aws_seconds=result["aws_seconds"],
            probe_seconds=result["probe_seconds"],
            decide_seconds=result["decide_seconds"],
            cpu_seconds=result["cpu_seconds"],
            peak_rss_mb=result["peak_rss_mb"],
            sweep_record_bytes=result["sweep_record_bytes"],
            unreachable=result["verdicts"].get("unreachable", 0),
            list_metrics=result["warmup"]["api_calls"].get("cloudwatch.ListMetrics", 0),
            date=result["machine"]["date"],
        )

    @property
    def metrics_per_instance(self) -> float:
        return self.metrics_requested / self.instances


@dataclass(frozen=True)
class SweepCalls:
    """API calls of one VPC's sweep, by operation, as the code makes them."""

    describe_instances: int
    describe_status: int
    describe_extra: int  # DescribeInstanceTypes (and Spot requests) for suspects on a stop/start ladder
    get_metric_data: int
    list_metrics_per_refresh: int
    metric_points: int  # datapoints the GetMetricData calls request
    notification: int = 0

    @property
    def per_sweep(self) -> int:
        return self.describe_instances + self.describe_status + self.describe_extra + self.get_metric_data + self.notification


def sweep_calls(
    instances: int, metrics_per_instance: float, cadence: Cadence, *, full: bool, suspects: int = 0, extra: int = 1
) -> SweepCalls:
    metrics = math.ceil(instances * metrics_per_instance) if full else suspects
    return SweepCalls(
        describe_instances=pages(instances, PAGE_INSTANCES),
        describe_status=pages(instances, PAGE_INSTANCES),
        describe_extra=extra if suspects or full else 0,
        get_metric_data=math.ceil(metrics / QUERIES_PER_CALL),
        list_metrics_per_refresh=pages(math.ceil(instances * metrics_per_instance), LIST_METRICS_PAGE),
        metric_points=metrics * cadence.points_per_metric,
    )


def suspects_of(estate: Estate, instances: int) -> int:
    return math.ceil(instances * estate.suspect_percent / 100)


@dataclass(frozen=True)
class Limit:
    """One quota against one account-region's sweep, and the fleet at which it binds."""

    quota: str
    capacity: str
    demand: float  # what one sweep (all VPCs sharing the buckets) asks of it in its busiest second
    limit: float
    binds_at: int  # instances per account and region at which demand reaches the limit

    @property
    def used_percent(self) -> float:
        return 100 * self.demand / self.limit


def limits(estate: Estate, cadence: Cadence) -> list[Limit]:
    """Every quota a sweep draws on, as if all of an account-region's calls landed in one second.

    That is the pessimistic reading: orch pages one call after another, so the buckets
    refill meanwhile; but two VPC stacks in one account-region that fire at the same minute
    do land together (hence the stack set's ScheduleOffsetMinutes stagger).
    """
    n = estate.per_account_region
    vpcs = estate.vpcs_per_account_region
    mpi = estate.metrics_per_instance
    calls = sweep_calls(n, mpi, cadence, full=True)
    describe = 2 * calls.describe_instances + vpcs  # + one DescribeInstanceTypes per VPC
    per_vpc_describe_room = (EC2_DESCRIBE.size - vpcs) / 2
    points = cadence.points_per_metric
    return [
        Limit(
            "EC2 Describe* bucket",
            f"{EC2_DESCRIBE.size:g} tokens, +{EC2_DESCRIBE.refill:g}/s",
            describe,
            EC2_DESCRIBE.size,
            int(per_vpc_describe_room) * PAGE_INSTANCES,
        ),
        Limit(
            "CloudWatch GetMetricData datapoints",
            f"{GMD_DPS:,}/s",
            math.ceil(n * mpi) * points,
            GMD_DPS,
            int(GMD_DPS / (points * mpi)),
        ),
        Limit(
            "CloudWatch GetMetricData calls",
            f"{GMD_TPS}/s",
            calls.get_metric_data,
            GMD_TPS,
            int(GMD_TPS * QUERIES_PER_CALL / mpi),
        ),
        Limit(
            "CloudWatch ListMetrics calls",
            f"{LIST_METRICS_TPS}/s",
            calls.list_metrics_per_refresh,
            LIST_METRICS_TPS,
            int(LIST_METRICS_TPS * LIST_METRICS_PAGE / mpi),
        ),
        Limit(
            "EC2 mutating bucket (RebootInstances)",
            f"{EC2_MUTATING.size:g} tokens, +{EC2_MUTATING.refill:g}/s",
            vpcs,  # one batched call per VPC sweep
            EC2_MUTATING.size,
            0,  # independent of fleet size: binds at 50 VPC sweeps acting in one second
        ),
        Limit(
            "EC2 StartInstances bucket",
            f"{EC2_START.size:g} tokens, +{EC2_START.refill:g}/s",
            vpcs,
            EC2_START.size,
            0,  # binds at 5 VPC sweeps starting instances in one second
        ),
        Limit(
            "EC2 StartInstances resource bucket",
            f"{EC2_START_RESOURCE.size:g} instances, +{EC2_START_RESOURCE.refill:g}/s",
            vpcs * MAX_ACTIONS_PER_SWEEP,
            EC2_START_RESOURCE.size,
            0,
        ),
    ]


def first_to_bind(estate: Estate, cadence: Cadence) -> Limit:
    """The fleet-size-dependent quota that binds at the smallest account-region fleet."""
    return min((lim for lim in limits(estate, cadence) if lim.binds_at), key=lambda lim: lim.binds_at)


@dataclass(frozen=True)
class MonthlyCost:
    cloudwatch_metrics: int
    cloudwatch_usd: float
    list_metrics_requests: int
    list_metrics_usd: float
    lambda_gb_s_low: float
    lambda_gb_s_high: float
    lambda_usd_low: float
    lambda_usd_high: float
    ddb_rru: int
    ddb_wru: int
    ddb_usd: float

    @property
    def total_low(self) -> float:
        return self.cloudwatch_usd + self.list_metrics_usd + self.lambda_usd_low + self.ddb_usd

    @property
    def total_high(self) -> float:
        return self.cloudwatch_usd + self.list_metrics_usd + self.lambda_usd_high + self.ddb_usd


def lambda_seconds(measured: Measured) -> tuple[float, float]:
    """(low, high) seconds a VPC's sweep runs in Lambda.

    Low: the sweep as measured here (moto answering as AWS on a loaded 2-core machine; its
    probe phase is the sandbox's short retry window with 2 instances hung). High: the same
    with the probe phase replaced by the defaults' floor when one instance is hung
    (3 attempts over 20 s, then a 5 s banner timeout).
    """
    low = measured.sweep_seconds
    return low, low - measured.probe_seconds + DEFAULT_PROBE_FLOOR_S


def dynamodb_units(estate: Estate, cadence: Cadence, measured: Measured) -> tuple[int, int]:
    """(read, write) request units of one VPC's sweep with DynamoDB state, in heal mode.

    Reads: BatchGetItem of every instance's history, strongly consistent: one unit per
    instance, stored or not (DynamoDB charges a read of a missing item the same), histories
    are well under 4 KB; the lease's GetItem, the pause flag, the alert book; with K > 1
    the Query for the last sweep's number (one record, rounded up to 4 KB).
    Writes: the sweep record (rounded up to 1 KB), the lease put and release, and the
    suspects' histories (a healthy instance's history is never written).
    """
    n = estate.per_vpc
    record_kb = math.ceil(measured.sweep_record_bytes / 1024)
    reads = n + 3 + (math.ceil(measured.sweep_record_bytes / 4096) if cadence.full_read_every > 1 else 0)
    writes = record_kb + 2 + suspects_of(estate, n)
    return reads, writes


def monthly(estate: Estate, cadence: Cadence, measured: Measured) -> MonthlyCost:
    sweeps = cadence.sweeps_per_month
    n = estate.per_vpc
    k = cadence.full_read_every
    full_metrics = math.ceil(n * estate.metrics_per_instance)
    partial_metrics = suspects_of(estate, n)
    full_sweeps = math.ceil(sweeps / k)
    metrics = estate.vpcs * (full_sweeps * full_metrics + (sweeps - full_sweeps) * partial_metrics)
    refreshes = MINUTES_PER_MONTH // DIMENSION_TTL_MINUTES
    list_requests = estate.vpcs * refreshes * pages(full_metrics, LIST_METRICS_PAGE)
    low_s, high_s = lambda_seconds(measured)
    gb = LAMBDA_MEMORY_MB / 1024
    invocations = estate.vpcs * sweeps
    rru, wru = dynamodb_units(estate, cadence, measured)
    return MonthlyCost(
        cloudwatch_metrics=metrics,
        cloudwatch_usd=metrics * USD_PER_1000_METRICS / 1000,
        list_metrics_requests=list_requests,
        list_metrics_usd=list_requests * USD_PER_1000_REQUESTS / 1000,
        lambda_gb_s_low=invocations * low_s * gb,
        lambda_gb_s_high=invocations * high_s * gb,
        lambda_usd_low=invocations * (low_s * gb * LAMBDA_USD_PER_GB_S + LAMBDA_USD_PER_REQUEST),
        lambda_usd_high=invocations * (high_s * gb * LAMBDA_USD_PER_GB_S + LAMBDA_USD_PER_REQUEST),
        ddb_rru=invocations * rru,
        ddb_wru=invocations * wru,
        ddb_usd=invocations * (rru * DDB_USD_PER_RRU + wru * DDB_USD_PER_WRU),
    )
