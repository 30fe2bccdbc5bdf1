"""docs/scaling.md says what orchestrator/bench/scaling.py prints from the stored measurements.

The doc's tables are recomputed here from docs/scaling/bench-2500.json (``scripts/bench``)
and docs/scaling/simulate.json (``orch simulate``), so an edit to the arithmetic, to a
price or quota, or to the measurements that is not carried into the doc fails here; and
the model's call counts are held to what the bench counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.bench import safe_cadence, scale_model, scaling
from orchestrator.bench.safe_cadence import SimRow
from orchestrator.bench.scale_model import Cadence, Estate, Measured

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scaling.md"
DATA = ROOT / "docs" / "scaling"
REGENERATE = "python -m orchestrator.bench.scaling docs/scaling/bench-2500.json docs/scaling/simulate.json"


def _measured() -> Measured:
    return Measured.from_bench(json.loads((DATA / "bench-2500.json").read_text())[0])


def _sims() -> list[dict]:
    return json.loads((DATA / "simulate.json").read_text())


def _doc_blocks() -> dict[str, str]:
    """Each ``<!-- scaling:NAME -->`` marker and the lines after it up to the first blank one."""
    text = DOC.read_text()
    return {m.group(1): m.group(2).rstrip("\n") for m in re.finditer(r"<!-- scaling:([a-z]+) -->\n(.*?)(?:\n\n|\Z)", text, re.S)}


def test_every_table_in_the_doc_is_what_the_module_computes():
    computed = scaling.render(Estate(), _measured(), _sims())
    in_doc = _doc_blocks()
    assert set(in_doc) == set(computed), f"docs/scaling.md's marked blocks differ from the module's: {sorted(in_doc)} vs {sorted(computed)}"
    for name, table in computed.items():
        assert in_doc[name] == table, f"docs/scaling.md's '{name}' block is stale; print the current one with: {REGENERATE}"


def test_the_model_makes_the_calls_the_bench_counted():
    m = _measured()
    calls = scale_model.sweep_calls(m.instances, m.metrics_per_instance, Cadence(), full=True)
    assert calls.describe_instances == m.api_calls["ec2.DescribeInstances"]
    assert calls.describe_status == m.api_calls["ec2.DescribeInstanceStatus"]
    assert calls.get_metric_data == m.api_calls["cloudwatch.GetMetricData"]
    assert calls.describe_extra == m.api_calls.get("ec2.DescribeInstanceTypes", 0)
    assert calls.per_sweep == sum(m.api_calls.values())
    assert calls.list_metrics_per_refresh == m.list_metrics


def test_default_cloudwatch_bill_is_every_instance_every_sweep():
    cost = scale_model.monthly(Estate(), Cadence(), _measured())
    # 100,000 metrics, 12 sweeps an hour for 30 days, $0.01 per 1,000 metrics requested
    assert cost.cloudwatch_metrics == 100_000 * 8_640
    assert cost.cloudwatch_usd == pytest.approx(8_640.0)


def test_full_read_every_k_reads_everyone_one_sweep_in_k_and_the_suspects_in_between():
    cost = scale_model.monthly(Estate(), Cadence(full_read_every=6), _measured())
    per_vpc, suspects = 2_500, 25  # 1 % suspects
    assert cost.cloudwatch_metrics == 40 * (1_440 * per_vpc + 7_200 * suspects)
    assert cost.cloudwatch_usd == pytest.approx(1_512.0)


def test_the_datapoint_quota_binds_first_and_moves_with_the_window():
    first = scale_model.first_to_bind(Estate(), Cadence())
    assert first.quota == "CloudWatch GetMetricData datapoints"
    assert first.binds_at == 180_000 // 60  # 60 one-minute points per instance
    assert scale_model.first_to_bind(Estate(), Cadence(window_minutes=30)).binds_at == 6_000


def test_two_vpcs_in_one_account_region_double_what_one_second_asks():
    one = {lim.quota: lim.demand for lim in scale_model.limits(Estate(), Cadence())}
    two = {lim.quota: lim.demand for lim in scale_model.limits(Estate(vpcs_per_account_region=2), Cadence())}
    assert two["CloudWatch GetMetricData datapoints"] == 2 * one["CloudWatch GetMetricData datapoints"]
    assert two["EC2 StartInstances bucket"] == 2


def test_dynamodb_reads_one_unit_per_instance_and_the_small_items():
    m = replace(_measured(), sweep_record_bytes=5_000)
    reads, writes = scale_model.dynamodb_units(Estate(), Cadence(), m)
    assert reads == 2_500 + 3
    assert writes == 5 + 2 + 25  # record in 1 KB units, lease put and release, suspects' histories
    reads_k6, _ = scale_model.dynamodb_units(Estate(), Cadence(full_read_every=6), m)
    assert reads_k6 == reads + 2  # the last sweep's record, in 4 KB units


def _rows(k: int, chronic: tuple[float, ...], network_actions: int = 0, met: bool = True) -> list[SimRow]:
    rows = [SimRow(k, "chronic-leak", seed, a, 2.0, 300, met) for seed, a in enumerate(chronic)]
    rows += [SimRow(k, "slow-leak", seed, 0.99, 2.0, 26, True) for seed in range(len(chronic))]
    rows += [SimRow(k, s, 0, 1.0, 0.0, network_actions if s == "network-fault" else 0, True) for s in safe_cadence.NO_ACTION_SCENARIOS]
    return rows


def test_safe_means_a_paired_loss_within_the_defaults_day_to_day_noise():
    default = _rows(1, (0.960, 0.957, 0.959))  # seeds move it 0.3 pt
    assert safe_cadence.noise_pp(default, "chronic-leak") == pytest.approx(0.3)
    assert safe_cadence.is_safe(default + _rows(3, (0.959, 0.955, 0.958)), 3)  # 0.13 pt lower, paired
    assert not safe_cadence.is_safe(default + _rows(6, (0.955, 0.953, 0.954)), 6)  # 0.47 pt lower on every seed
    assert not safe_cadence.is_safe(default + _rows(3, (0.96, 0.957, 0.959), network_actions=1), 3)
    assert not safe_cadence.is_safe(default + _rows(3, (0.96, 0.957, 0.959), met=False), 3)
    both = default + _rows(3, (0.959, 0.955, 0.958)) + _rows(6, (0.955, 0.953, 0.954))
    assert safe_cadence.cheapest_safe(both) == 3


def test_the_stored_simulations_cover_every_cadence_the_cost_table_prices():
    rows = safe_cadence.sim_rows(_sims())
    for k in scaling.CADENCES:
        for scenario in safe_cadence.LEAK_SCENARIOS + safe_cadence.NO_ACTION_SCENARIOS:
            assert any(r.full_read_every == k and r.scenario == scenario for r in rows), (k, scenario)
