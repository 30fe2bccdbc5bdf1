"""docs/scaling.md's tables: the scale model and the simulations' verdict as Markdown.

Text only: the arithmetic is orchestrator/bench/scale_model.py's, what the simulations
say about a cadence orchestrator/bench/safe_cadence.py's. tests/unit/test_scaling_doc.py
recomputes every table :func:`render` makes from the stored measurements and holds the
document to them; ``main`` prints them to paste into the doc.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from typing import Any, Mapping

from orchestrator.bench.safe_cadence import LEAK_SCENARIOS, SimRow, cheapest_safe, drop_pp, is_safe, noise_pp, runs_of, sim_rows
from orchestrator.bench.scale_model import (
    DDB_USD_PER_RRU,
    DDB_USD_PER_WRU,
    LAMBDA_MEMORY_MB,
    Cadence,
    Estate,
    Measured,
    dynamodb_units,
    lambda_seconds,
    limits,
    monthly,
    suspects_of,
    sweep_calls,
)


def _usd(value: float) -> str:
    return f"${value:,.0f}" if value >= 10 else f"${value:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def calls_table(estate: Estate, cadence: Cadence, measured: Measured) -> str:
    """Per VPC sweep: the model at the bench's fleet (checked against what it measured) and at the estate's."""
    bench_full = sweep_calls(measured.instances, measured.metrics_per_instance, cadence, full=True)
    n = estate.per_vpc
    full = sweep_calls(n, estate.metrics_per_instance, cadence, full=True)
    partial = sweep_calls(n, estate.metrics_per_instance, cadence, full=False, suspects=suspects_of(estate, n))
    got = measured.api_calls
    rows = [
        [
            "DescribeInstances",
            str(got.get("ec2.DescribeInstances", 0)),
            str(bench_full.describe_instances),
            str(full.describe_instances),
            str(partial.describe_instances),
        ],
        [
            "DescribeInstanceStatus",
            str(got.get("ec2.DescribeInstanceStatus", 0)),
            str(bench_full.describe_status),
            str(full.describe_status),
            str(partial.describe_status),
        ],
        [
            "DescribeInstanceTypes (suspects)",
            str(got.get("ec2.DescribeInstanceTypes", 0)),
            str(bench_full.describe_extra),
            str(full.describe_extra),
            str(partial.describe_extra),
        ],
        [
            "GetMetricData",
            str(got.get("cloudwatch.GetMetricData", 0)),
            str(bench_full.get_metric_data),
            str(full.get_metric_data),
            str(partial.get_metric_data),
        ],
        ["**per sweep**", f"**{sum(got.values())}**", f"**{bench_full.per_sweep}**", f"**{full.per_sweep}**", f"**{partial.per_sweep}**"],
        [
            "metrics requested",
            f"{measured.metrics_requested:,}",
            f"{math.ceil(measured.instances * measured.metrics_per_instance):,}",
            f"{math.ceil(n * estate.metrics_per_instance):,}",
            f"{suspects_of(estate, n):,}",
        ],
        ["datapoints requested", "-", f"{bench_full.metric_points:,}", f"{full.metric_points:,}", f"{partial.metric_points:,}"],
        [
            "ListMetrics per 30 min",
            f"{measured.list_metrics} (warm-up)",
            str(bench_full.list_metrics_per_refresh),
            str(full.list_metrics_per_refresh),
            "(cached)",
        ],
    ]
    header = [
        "call",
        f"bench, {measured.instances:,} measured",
        f"model, {measured.instances:,}",
        f"model, {n:,} full read",
        f"model, {n:,} suspects only",
    ]
    return _table(header, rows)


def limits_table(estate: Estate, cadence: Cadence) -> str:
    rows = []
    for lim in limits(estate, cadence):
        binds = (
            f"{lim.binds_at:,} instances"
            if lim.binds_at
            else f"{int(lim.limit // max(1, lim.demand / estate.vpcs_per_account_region)):,} VPC sweeps at once"
        )
        rows.append([lim.quota, lim.capacity, f"{lim.demand:,.0f}", f"{lim.used_percent:.0f}%", binds])
    header = ["quota (per account and region)", "AWS default", f"one sweep of {estate.per_account_region:,}", "of quota", "binds at"]
    return _table(header, rows)


def cost_table(estate: Estate, cadences: list[Cadence], measured: Measured) -> str:
    costs = [(c, monthly(estate, c, measured)) for c in cadences]
    header = ["per month, whole estate"] + [f"K = {c.full_read_every}" for c, _ in costs]
    rows = [
        ["GetMetricData metrics requested"] + [f"{m.cloudwatch_metrics:,}" for _, m in costs],
        ["CloudWatch GetMetricData"] + [_usd(m.cloudwatch_usd) for _, m in costs],
        ["CloudWatch ListMetrics"] + [_usd(m.list_metrics_usd) for _, m in costs],
        ["Lambda (low - high)"] + [f"{_usd(m.lambda_usd_low)} - {_usd(m.lambda_usd_high)}" for _, m in costs],
        ["DynamoDB on-demand"] + [_usd(m.ddb_usd) for _, m in costs],
        ["**total**"] + [f"**{_usd(m.total_low)} - {_usd(m.total_high)}**" for _, m in costs],
    ]
    return _table(header, rows)


def lambda_table(estate: Estate, cadence: Cadence, measured: Measured) -> str:
    low, high = lambda_seconds(measured)
    m = monthly(estate, cadence, measured)
    sweeps = cadence.sweeps_per_month
    gb = LAMBDA_MEMORY_MB / 1024
    rows = [
        ["seconds per sweep", f"{low:.1f}", f"{high:.1f}"],
        ["GB-s per sweep (512 MB)", f"{low * gb:.1f}", f"{high * gb:.1f}"],
        ["GB-s per VPC per month", f"{low * gb * sweeps:,.0f}", f"{high * gb * sweeps:,.0f}"],
        ["$ per VPC per month", f"${m.lambda_usd_low / estate.vpcs:.2f}", f"${m.lambda_usd_high / estate.vpcs:.2f}"],
        [f"$ per month, {estate.vpcs} VPCs", _usd(m.lambda_usd_low), _usd(m.lambda_usd_high)],
    ]
    return _table(["Lambda", "low (as measured)", "high (default probe floor)"], rows)


def dynamodb_table(estate: Estate, cadence: Cadence, measured: Measured) -> str:
    rru, wru = dynamodb_units(estate, cadence, measured)
    m = monthly(estate, cadence, measured)
    invocations = estate.vpcs * cadence.sweeps_per_month
    rows = [
        ["per VPC sweep", f"{rru:,}", f"{wru:,}"],
        ["per month, whole estate", f"{m.ddb_rru:,}", f"{m.ddb_wru:,}"],
        ["$ per month", _usd(invocations * rru * DDB_USD_PER_RRU), _usd(invocations * wru * DDB_USD_PER_WRU)],
    ]
    return _table(["DynamoDB on-demand", "read units", "write units"], rows)


CADENCES = [1, 3, 6, 12]  # the values of K the cost table prices (the stored simulations cover each)


def sim_table(rows: list[SimRow]) -> str:
    ks = sorted({r.full_read_every for r in rows})
    scenarios = sorted({r.scenario for r in rows}, key=lambda s: (s not in LEAK_SCENARIOS, s))
    body = []
    for scenario in scenarios:
        cells = []
        for k in ks:
            runs = runs_of(rows, scenario, k)
            if not runs:
                cells.append("-")
                continue
            values = [100 * r.availability for r in runs]
            mean = sum(values) / len(values)
            seeds = f" ({min(values):.1f}-{max(values):.1f}, {len(runs)} seeds)" if len(runs) > 1 else ""
            wedged = sum(r.wedged_box_hours for r in runs) / len(runs)
            loss = f", {0.0 - drop_pp(rows, scenario, k):+.2f} pt" if k != 1 and scenario in LEAK_SCENARIOS else ""
            met = "met" if all(r.met for r in runs) else "NOT met"
            cells.append(f"{mean:.1f}%{seeds}{loss}; {wedged:.1f} box-h wedged; {sum(r.actions for r in runs)} actions; {met}")
        body.append([scenario] + cells)
    return _table(["scenario (24 h)"] + [f"K = {k}" for k in ks], body)


def verdict(rows: list[SimRow]) -> str:
    k = cheapest_safe(rows)
    noise = ", ".join(f"{s} {noise_pp(rows, s):.2f} pt" for s in LEAK_SCENARIOS)
    unsafe = sorted(x for x in {r.full_read_every for r in rows} if not is_safe(rows, x))
    tail = f"; not safe: K = {', '.join(map(str, unsafe))}" if unsafe else ""
    return f"Cheapest safe cadence simulated: **K = {k}** (day-to-day noise at K = 1: {noise}){tail}."


def render(estate: Estate, measured: Measured, sims: list[Mapping[str, Any]]) -> dict[str, str]:
    """Every table of docs/scaling.md, by name."""
    default = Cadence()
    return {
        "calls": calls_table(estate, default, measured),
        "limits": limits_table(estate, default),
        "cost": cost_table(estate, [replace(default, full_read_every=k) for k in CADENCES], measured),
        "lambda": lambda_table(estate, default, measured),
        "dynamodb": dynamodb_table(estate, default, measured),
        "simulate": sim_table(sim_rows(sims)),
        "verdict": verdict(sim_rows(sims)),
    }


def main(argv: list[str]) -> int:
    """python -m orchestrator.bench.scaling BENCH.json SIMULATE.json: print the doc's tables."""
    if len(argv) != 2:
        print("usage: python -m orchestrator.bench.scaling BENCH.json SIMULATE.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as bench, open(argv[1], encoding="utf-8") as sims:
        measured = Measured.from_bench(json.load(bench)[0])
        tables = render(Estate(), measured, json.load(sims))
    for name, text in tables.items():
        print(f"<!-- scaling:{name} -->\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
