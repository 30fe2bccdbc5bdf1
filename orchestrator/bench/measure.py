"""One measured run against a running sandbox fleet, in a fresh process.

``python -m orchestrator.bench.measure ours|baseline`` reads the fleet's settings
as JSON on stdin and prints one JSON object. A fresh process per run means its
peak RSS (``ru_maxrss``) is that run's alone: not the other run's, not a previous
fleet size's, and not the parent's.

ours: orch's real ``sweep`` (dry run, SQLite store in a temp dir, the sandbox's
shortened settings), once to warm up (the ListMetrics dimension cache, the boto3
clients and their models, sqlite), then once measured.

baseline: the script people write first: list the instances, then for each one
DescribeInstanceStatus, GetMetricStatistics and one SSH probe, sequentially, with
the same timeouts and the same probe code.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3

from orchestrator.aws import ApiCallCounter, Clients
from orchestrator.bench import figures
from orchestrator.config import Settings, load_settings
from orchestrator.model import ProbeOutcome
from orchestrator.observe.inventory import selector_filters
from orchestrator.observe.probe import probe_once
from orchestrator.state.fit import fit_sweep_summary, size_of
from orchestrator.state.sqlite import SqliteStore
from orchestrator.sweep.pipeline import Mode, SweepDeps, sweep


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_settings(fleet: dict[str, Any], state_path: Path) -> Settings:
    """The settings `orch heal` gets after `eval` of the sandbox's export lines: the
    demo's SANDBOX_OVERRIDES (launch grace 0, probe retries over 3 s, debounce 3 s,
    short timeouts), its evidence bucket and topic, defaults for everything else.

    Read from the export lines rather than imported from orchestrator.sandbox.demo,
    which imports moto: a measuring process must not carry moto's memory.
    """
    environ = {k: v for k, v in fleet.items() if k.startswith("ORCH_")}
    environ["ORCH_STATE"] = str(state_path)
    return load_settings(environ=environ, overrides={"region": fleet["AWS_REGION"]})


def run_ours(fleet: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        settings = bench_settings(fleet, Path(tmp) / "state.db")
        store = SqliteStore(settings.state)
        clients = Clients(boto3.Session(region_name=settings.region))
        deps = SweepDeps(clients=clients, store=store)
        try:
            warm_started = time.perf_counter()
            warm = sweep(settings, deps, mode=Mode.HEAL, dry_run=True)
            warm_seconds = time.perf_counter() - warm_started
            warm_calls = warm.summary()["api_calls"]
            del warm
            gc.collect()
            load_before = os.getloadavg()
            cpu_started = time.process_time()
            started = time.perf_counter()
            report = sweep(settings, deps, mode=Mode.HEAL, dry_run=True)
            sweep_seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            load_after = os.getloadavg()
        finally:
            store.close()
    summary = report.summary()
    timings = report.timings
    notified = 1 if report.message is not None else 0  # what the sweep itself told
    minimum = figures.minimum_calls(summary["instances"], summary["metrics_requested"], notification=notified)
    per_sweep, per_month = figures.cloudwatch_cost(summary["metrics_requested"])
    accounted = sum(timings.get(k, 0.0) for k in ("aws", "probe", "decide", "act"))
    return {
        "instances": summary["instances"],
        "api_calls": summary["api_calls"],
        "api_calls_total": summary["api_calls_total"],
        "api_calls_minimum": minimum.total,
        "minimum": minimum.as_dict(),
        "metrics_requested": summary["metrics_requested"],
        "cloudwatch_usd_per_sweep": round(per_sweep, 4),
        "cloudwatch_usd_per_month": round(per_month, 2),
        "sweep_seconds": round(sweep_seconds, 3),
        "aws_seconds": round(timings.get("aws", 0.0), 3),
        "probe_seconds": round(timings.get("probe", 0.0), 3),
        "decide_seconds": round(timings.get("decide", 0.0), 3),
        "act_seconds": round(timings.get("act", 0.0), 3),
        "other_seconds": round(max(0.0, sweep_seconds - accounted), 3),
        "cpu_seconds": round(cpu_seconds, 3),  # this process's CPU: the rest of the wall time is waiting (moto, sockets)
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "verdicts": summary["verdicts"],
        "planned_actions": len(summary["actions"]),
        "blocked": len(summary["blocked"]),
        # What the state store's sweep record would hold (DynamoDB bills writes per KB).
        "sweep_record_bytes": size_of(fit_sweep_summary(summary)),
        "warmup": {"sweep_seconds": round(warm_seconds, 3), "api_calls": warm_calls},
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
    }


def agent_dimensions(raw: dict[str, Any]) -> list[dict[str, str]]:
    """The dimension set the CloudWatch agent publishes under (its append_dimensions):
    a baseline that asked for InstanceId alone would get no data at all."""
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", [])}
    dims = {"InstanceId": raw["InstanceId"], "ImageId": raw["ImageId"], "InstanceType": raw["InstanceType"]}
    if "aws:autoscaling:groupName" in tags:
        dims["AutoScalingGroupName"] = tags["aws:autoscaling:groupName"]
    return [{"Name": k, "Value": v} for k, v in sorted(dims.items())]


class _Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"list": 0.0, "aws": 0.0, "probe": 0.0, "decide": 0.0}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


def run_baseline(fleet: dict[str, Any], sample: int = 0) -> dict[str, Any]:
    """The per-instance script. With ``sample`` > 0 only every k-th instance is visited
    after the (full) listing, and per-instance figures are scaled up: marked as such."""
    settings = bench_settings(fleet, Path(tempfile.gettempdir()) / "unused.db")
    probe, memory = settings.probe, settings.memory
    counter = ApiCallCounter()
    clients = Clients(boto3.Session(region_name=settings.region), counter=counter)
    ec2, cloudwatch = clients.ec2, clients.cloudwatch
    watch = _Stopwatch()
    load_before = os.getloadavg()
    cpu_started = time.process_time()
    started = time.perf_counter()

    with watch("list"):
        listed: list[dict[str, Any]] = []
        paginator = ec2.get_paginator("describe_instances")
        filters = [f for f in selector_filters(settings.selector) if f["Name"] != "instance-state-name"]
        filters.append({"Name": "instance-state-name", "Values": ["running"]})
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": 1000}):
            for reservation in page["Reservations"]:
                listed.extend(reservation["Instances"])
    listed.sort(key=lambda raw: raw["InstanceId"])
    step = max(1, len(listed) // sample) if sample else 1
    visited = listed[::step]

    unhealthy = 0
    outcomes: dict[str, int] = {}
    for raw in visited:
        instance_id = raw["InstanceId"]
        now = datetime.now(timezone.utc)
        with watch("aws"):
            status = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
            stats = cloudwatch.get_metric_statistics(
                Namespace=memory.namespace,
                MetricName=memory.metric,
                Dimensions=agent_dimensions(raw),
                StartTime=now - timedelta(minutes=10),
                EndTime=now,
                Period=60,
                Statistics=["Average"],
            )["Datapoints"]
        with watch("probe"):
            attempt = asyncio.run(
                probe_once(
                    raw["PrivateIpAddress"],
                    probe.port,
                    connect_timeout=probe.connect_timeout,
                    banner_timeout=probe.banner_timeout,
                    max_bytes=probe.max_banner_bytes,
                    clock=lambda: datetime.now(timezone.utc),
                )
            )
        with watch("decide"):
            checks_ok = bool(status) and status[0]["InstanceStatus"]["Status"] in ("ok", "initializing")
            latest = max(stats, key=lambda d: d["Timestamp"])["Average"] if stats else None
            outcomes[attempt.outcome.value] = outcomes.get(attempt.outcome.value, 0) + 1
            if not checks_ok or attempt.outcome is not ProbeOutcome.OK or (latest is not None and latest >= memory.critical_percent):
                unhealthy += 1
    sweep_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    load_after = os.getloadavg()

    # With a sample, the listing was measured in full and the per-instance part scales.
    scale = len(listed) / len(visited) if visited else 1.0
    calls = counter.snapshot()
    scaled_calls = {k: v if k == "ec2.DescribeInstances" else round(v * scale) for k, v in calls.items()}
    metrics_requested = scaled_calls.get("cloudwatch.GetMetricStatistics", 0)
    per_sweep, per_month = figures.cloudwatch_cost(metrics_requested)
    minimum = figures.minimum_calls(len(listed), len(listed))
    listing = watch.seconds["list"]
    result = {
        "instances": len(listed),
        "api_calls": scaled_calls,
        "api_calls_total": sum(scaled_calls.values()),
        "api_calls_minimum": minimum.total,
        "minimum": minimum.as_dict(),
        "metrics_requested": metrics_requested,
        "cloudwatch_usd_per_sweep": round(per_sweep, 4),
        "cloudwatch_usd_per_month": round(per_month, 2),
        "sweep_seconds": round(listing + (sweep_seconds - listing) * scale, 3),
        "aws_seconds": round(listing + watch.seconds["aws"] * scale, 3),
        "probe_seconds": round(watch.seconds["probe"] * scale, 3),
        "decide_seconds": round(watch.seconds["decide"] * scale, 4),
        "cpu_seconds": round(cpu_seconds * scale, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "unhealthy_found": round(unhealthy * scale),
        "probe_outcomes": {k: round(v * scale) for k, v in outcomes.items()},
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "extrapolated": scale != 1.0,
    }
    if scale != 1.0:
        result["sample"] = {"visited": len(visited), "of": len(listed), "scale": round(scale, 3)}
    return result


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("ours", "baseline"):
        print("usage: python -m orchestrator.bench.measure ours|baseline [SAMPLE] < fleet.json", file=sys.stderr)
        return 2
    fleet = json.load(sys.stdin)
    os.environ.update({k: v for k, v in fleet.items() if k.startswith("AWS_")})
    if argv[0] == "ours":
        result = run_ours(fleet)
    else:
        result = run_baseline(fleet, int(argv[1]) if len(argv) > 1 else 0)
    # Nothing of the sandbox may be loaded here: its memory would count as ours.
    result["sandbox_modules_loaded"] = sorted(m for m in ("moto", "orchestrator.sandbox") if m in sys.modules)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
