"""Hostile input to `orch simulate` and every float option (issue 20, cases 10 and 13).

`nan`, `inf` and `1e400` are floats to Python and to click, and `nan` passes every range
check (each comparison with it is false): a NaN number of hours crashed in timedelta,
a NaN wait never ends. Every float option is a FiniteFloat (orchestrator/cli/params.py).
A run judges only what it covers: `single-hang --hours 2` ends before the hang is due to
be answered, which is "not judged", not "expectation not met".
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import cli
from orchestrator.config import load_settings
from orchestrator.simulate import BY_NAME, Policy, simulate

NOT_FINITE = ("nan", "NaN", "inf", "-inf", "1e400")
# (command line before the value, option): every float option orch has
FLOAT_OPTIONS = [
    (["simulate"], "--hours"),
    (["top", "--once"], "--interval"),
    (["heal"], "--wait"),
    (["reboot", "i-0123456789abcdef0"], "--wait"),
    (["stop-start", "i-0123456789abcdef0"], "--wait"),
    (["agent", "install"], "--wait"),
    (["probe", "127.0.0.1"], "--connect-timeout"),
    (["probe", "127.0.0.1"], "--banner-timeout"),
    (["probe", "127.0.0.1"], "--retry-window"),
    (["sandbox"], "--slow-delay"),
]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("before, option", FLOAT_OPTIONS, ids=[f"{' '.join(b[:1])} {o}" for b, o in FLOAT_OPTIONS])
def test_case_13_no_float_option_takes_nan_or_infinity(before, option, value) -> None:
    result = invoke(*before, option, value)
    no_traceback(result)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': '{value}' is not a finite number" in result.stderr, result.stderr


def test_case_10_simulate_hours_nan_is_a_usage_error_not_a_crash() -> None:
    result = invoke("simulate", "--hours", "nan")
    no_traceback(result)
    assert result.exit_code == 2 and "'nan' is not a finite number" in result.stderr


def test_case_13_a_sweep_interval_below_a_minute_is_refused_before_simulating() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "single-hang", "--hours", "0.5"],
                                env={"ORCH_SWEEP_INTERVAL_MINUTES": "0.0001"})
    no_traceback(result)
    assert result.exit_code == 2 and "sweep_interval_minutes: Input should be greater than or equal to 1" in result.stderr


def test_case_13_single_hang_over_two_hours_is_not_judged_not_failed() -> None:
    result = invoke("simulate", "--scenario", "single-hang", "--hours", "2", "-o", "json")
    no_traceback(result)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["violations"] == [] and row["actions"] == {}
    assert row["not_judged"].startswith("not judged: the trouble comes about 1.95 h in; run --hours 2.5 or more")
    table = invoke("simulate", "--scenario", "single-hang", "--hours", "2")
    assert table.exit_code == 0 and "expectation not met" not in table.stdout and "not judged" in table.stdout


def test_case_13_a_run_long_enough_is_judged_both_ways() -> None:
    settings = load_settings(None, environ={})
    hang = BY_NAME["single-hang"]
    long_enough = simulate(hang, settings, 2.5)
    assert hang.unjudged(long_enough, settings) is None and hang.violations(long_enough, settings) == []
    # The outcome still counts where it is due: a run that covers the hang and did not heal it fails.
    nobody = simulate(hang, settings, 2.5, policy=Policy.NOBODY)
    assert hang.violations(nobody, settings) == ["0 actions, expected one"]
    # A slower schedule needs a longer run before the hang can have been answered.
    slow = load_settings(None, environ={"ORCH_SWEEP_INTERVAL_MINUTES": "30"})
    assert hang.judged_from_hours(slow) == pytest.approx(1.95 + 1.5)


def test_case_13_simulate_list_honours_output_json() -> None:
    result = invoke("simulate", "--list", "-o", "json")
    no_traceback(result)
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [s["scenario"] for s in listed] == list(BY_NAME) and all({"summary", "instances", "expect"} <= set(s) for s in listed)
    names = invoke("simulate", "--list", "--query", "[].scenario", "-o", "text")
    assert names.stdout.split() == list(BY_NAME)
    plain = invoke("simulate", "--list")  # a table for people: its heading, then the scenarios in order
    lines = plain.stdout.splitlines()
    assert lines[0].split()[:2] == ["scenario", "boxes"] and any(line.startswith("chronic-leak ") for line in lines[:4])


def test_case_13_a_huge_float_value_is_quoted_cut() -> None:
    for value in ("x" * 100_000, "9" * 100_000 + "x"):
        result = invoke("simulate", "--hours", value)
        no_traceback(result)
        assert result.exit_code == 2 and "is not a number" in result.stderr and len(result.stderr) < 1_000, result.stderr[:300]
