"""scripts/bench works: one tiny fleet, baseline included, JSON with every key.

Checks that the benchmark runs and that its figures are consistent, never how fast
anything is: speed targets live in the benchmark's own output, not in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.bench import figures

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("instances", "api_calls_total", "api_calls_minimum", "probe_seconds", "sweep_seconds", "decide_seconds", "peak_rss_mb", "metrics_requested")


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    work = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator.bench", "--sizes", "40", "--output", "json", "--work-dir", str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def test_json_has_every_key_for_ours_and_the_baseline(bench_json: list[dict]) -> None:
    assert isinstance(bench_json, list) and len(bench_json) == 1
    result = bench_json[0]
    for key in KEYS:
        assert key in result, key
        assert key in result["baseline"], f"baseline.{key}"
    assert result["instances"] == result["baseline"]["instances"] == 40


def test_figures_are_consistent(bench_json: list[dict]) -> None:
    result = bench_json[0]
    base = result["baseline"]
    assert result["api_calls_total"] == sum(result["api_calls"].values())
    assert result["api_calls_total"] >= result["api_calls_minimum"] >= 3
    assert base["api_calls_total"] > result["api_calls_total"]
    # The naive script: one listing page, then two calls per instance.
    assert base["api_calls"] == {"ec2.DescribeInstances": 1, "ec2.DescribeInstanceStatus": 40, "cloudwatch.GetMetricStatistics": 40}
    # A dry run mutates nothing.
    assert not {op for op in result["api_calls"] if op.split(".")[1].startswith(("Reboot", "Stop", "Start", "Terminate", "SetInstance"))}
    # Every instance with metrics is read once; the silent one has none to read.
    fleet = result["fleet"]
    assert result["metrics_requested"] == 40 - fleet["no_metrics"]
    assert 0 < result["decide_seconds"] <= result["sweep_seconds"]
    assert 0 < result["probe_seconds"] <= result["sweep_seconds"]
    assert 0 < base["probe_seconds"] <= base["sweep_seconds"]
    assert 30 < result["peak_rss_mb"] < 2000 and 30 < base["peak_rss_mb"] < 2000
    # The measuring processes never loaded the sandbox (its memory is not ours).
    assert result["sandbox_modules_loaded"] == []


def test_both_find_the_hung_instance(bench_json: list[dict]) -> None:
    result = bench_json[0]
    assert result["verdicts"].get("unreachable") == result["fleet"]["hung"] == 1
    assert result["baseline"]["probe_outcomes"].get("banner-timeout") == 1
    assert {t["target"] for t in result["targets"]} >= {"API calls <= minimum + 3", "deciding < 1 s"}


def test_minimum_and_cost_arithmetic() -> None:
    m = figures.minimum_calls(10_000, 9_800, notification=1)
    assert (m.inventory, m.status, m.metrics, m.lease, m.total) == (10, 10, 20, 0, 41)
    assert figures.minimum_calls(1, 0).total == 2
    per_sweep, per_month = figures.cloudwatch_cost(10_000)
    assert per_sweep == pytest.approx(0.10) and per_month == pytest.approx(864.0)
