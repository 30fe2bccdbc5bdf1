"""assess_memory on synthetic series: leaks must be forecast, everything leak-shaped but
harmless (GC sawtooth, noise, a deploy's step) must not, and the clock is always fixed."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Sequence

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator.config import MemorySettings
from orchestrator.decide.memory import MemoryState, assess_memory
from orchestrator.model import MemorySeries

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SETTINGS = MemorySettings()  # critical 95% for 3 min, exhaustion 97%, horizon 30, trend 30, stale 10


# --- series builders: one value per minute from T0; None is a missing datapoint -----------


def series(values: Sequence[float | None]) -> MemorySeries:
    points = tuple((T0 + timedelta(minutes=i), v) for i, v in enumerate(values) if v is not None)
    return MemorySeries("i-0123456789abcdef0", points)


def now_for(values: Sequence[float | None], lag_seconds: float = 30) -> datetime:
    """A sweep shortly after the newest minute (CloudWatch lags a little)."""
    return T0 + timedelta(minutes=len(values) - 1, seconds=lag_seconds)


def leak(rate: float, eta_minutes: float, minutes: int = 60, lag_seconds: float = 30) -> list[float]:
    """Linear rise at ``rate`` %/min that reaches 97% ``eta_minutes`` after now."""
    end = 97.0 - rate * (eta_minutes + lag_seconds / 60)
    return [end - rate * (minutes - 1 - i) for i in range(minutes)]


def sawtooth(base: float, amplitude: float, period: int, minutes: int = 60, last_phase: int = 0) -> list[float]:
    """GC pattern: climb for period-1 minutes, drop to base; ``last_phase`` 0 ends on a drop."""
    shift = (last_phase - (minutes - 1)) % period
    return [base + amplitude * ((i + shift) % period) / (period - 1) for i in range(minutes)]


def noisy(level: float, amplitude: float, seed: int, minutes: int = 60) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.uniform(-amplitude, amplitude) for _ in range(minutes)]


def step(low: float, high: float, minutes_ago: int, minutes: int = 60) -> list[float]:
    """Flat at ``low``, one jump to ``high`` ``minutes_ago`` minutes before the newest point."""
    return [low] * (minutes - minutes_ago) + [high] * minutes_ago


def with_gaps(values: list[float], missing: Sequence[int]) -> list[float | None]:
    gone = set(missing)
    return [None if i in gone else v for i, v in enumerate(values)]


def assess(values: Sequence[float | None], lag_seconds: float = 30, settings: MemorySettings = SETTINGS):
    return assess_memory(series(values), now_for(values, lag_seconds), settings)


# --- leaks are forecast, with the right time -------------------------------------------------


@pytest.mark.parametrize(
    "name, values, eta",
    [
        ("0.5%/min", leak(0.5, 20), 20),
        ("1%/min", leak(1.0, 20), 20),
        ("2%/min", leak(2.0, 12), 12),
        ("3%/min", leak(3.0, 25), 25),
        ("1%/min, small noise", [v + n for v, n in zip(leak(1.0, 20), noisy(0, 1.0, seed=3))], 20),
        ("2%/min, every third point missing", with_gaps(leak(2.0, 15), range(0, 60, 3)), 15),
        ("1%/min, a 7 minute hole", with_gaps(leak(1.0, 20), range(45, 52)), 20),
        ("1.5%/min, only 5 points", leak(1.5, 20, minutes=5), 20),
        ("flat, then a step, then 1%/min for 20 min", step(30, 50, 20, 40) + leak(1.0, 20, 20), 20),
    ],
)
def test_steady_leak_is_forecast(name, values, eta):
    result = assess(values)
    assert result.state is MemoryState.FORECAST, result.reasons
    assert result.minutes_to_exhaustion == pytest.approx(eta, rel=0.10)
    assert result.slope_per_min is not None and result.slope_per_min > 0


@pytest.mark.parametrize(
    "rate, eta",
    [(0.5, 45), (1.0, 31), (2.0, 90)],
)
def test_leak_beyond_the_horizon_is_ok_but_reported(rate, eta):
    result = assess(leak(rate, eta))
    assert result.state is MemoryState.OK
    assert result.minutes_to_exhaustion == pytest.approx(eta, rel=0.10)
    assert "beyond the 30 min horizon" in result.reasons[0]


def test_forecast_reason_names_level_rate_and_time():
    # 1.4 %/min, newest point at 81.0% and now: 16 points to go, ~11.4 minutes.
    values = [81.0 - 1.4 * (59 - i) for i in range(60)]
    result = assess(values, lag_seconds=0)
    assert result.reasons == ("memory 81.0% rising 1.40%/min: 97% in ~11 min",)


# --- leak-shaped but harmless: never FORECAST ------------------------------------------------


@pytest.mark.parametrize(
    "name, values",
    [
        ("sawtooth 50-90, 10 min cycles, ends on the drop", sawtooth(50, 40, 10, last_phase=0)),
        ("sawtooth 50-90, 10 min cycles, ends at the peak", sawtooth(50, 40, 10, last_phase=9)),
        ("sawtooth 50-90, 10 min cycles, ends mid-climb", sawtooth(50, 40, 10, last_phase=5)),
        ("sawtooth 50-90, 8 min cycles, ends just before the peak", sawtooth(50, 40, 8, last_phase=6)),
        ("sawtooth 60-85, 12 min cycles, ends at the peak", sawtooth(60, 25, 12, last_phase=11)),
        ("sawtooth 80-92, 6 min cycles, ends mid-climb", sawtooth(80, 12, 6, last_phase=3)),
        ("sawtooth 50-90 with noise, ends at the peak", [v + n for v, n in zip(sawtooth(50, 40, 10, last_phase=9), noisy(0, 2, seed=1))]),
        ("noisy flat 60 +-3, seed 0", noisy(60, 3, seed=0)),
        ("noisy flat 60 +-3, seed 1", noisy(60, 3, seed=1)),
        ("noisy flat 60 +-3, seed 2", noisy(60, 3, seed=2)),
        ("noisy flat 88 +-3, seed 7", noisy(88, 3, seed=7)),
        ("noisy flat 90 +-1, seed 11", noisy(90, 1, seed=11)),
        ("step 40 -> 85, 3 min ago", step(40, 85, 3)),
        ("step 40 -> 85, 11 min ago", step(40, 85, 11)),
        ("step 40 -> 85, 15 min ago", step(40, 85, 15)),
        ("step 40 -> 85, 20 min ago", step(40, 85, 20)),
        ("step 40 -> 85, 40 min ago", step(40, 85, 40)),
        ("step 40 -> 85 +-2 noise, 5 min ago", [v + n for v, n in zip(step(40, 85, 5), noisy(0, 2, seed=87))]),
        ("falling 0.5%/min", [90 - 0.5 * i for i in range(60)]),
        ("slow drift 0.03%/min", [70 + 0.03 * i for i in range(60)]),
    ],
)
def test_harmless_shapes_are_not_forecast(name, values):
    result = assess(values)
    assert result.state is MemoryState.OK, result.reasons
    assert result.minutes_to_exhaustion is None or result.minutes_to_exhaustion >= SETTINGS.horizon_minutes


def test_sawtooth_mid_climb_is_explained_as_memory_given_back():
    result = assess(sawtooth(50, 40, 10, last_phase=5))
    assert any("memory fell 40.0 points" in r for r in result.reasons), result.reasons


def test_step_explains_that_the_trend_restarted_after_it():
    # 12 minutes ago puts the step where the pairwise median of the whole span rises.
    result = assess(step(40, 85, 12))
    assert result.state is MemoryState.OK
    assert result.slope_per_min == pytest.approx(0.0, abs=0.01)
    assert any("stepped up 45.0 points" in r for r in result.reasons), result.reasons


def test_step_above_critical_is_critical_not_forecast():
    result = assess(step(40, 96, 10))
    assert result.state is MemoryState.CRITICAL
    assert result.minutes_above_critical == pytest.approx(9)


# --- critical: for a duration, not a spike ---------------------------------------------------


@pytest.mark.parametrize(
    "name, values, state, above",
    [
        ("5 points at 96%: 4 minutes", [60.0] * 20 + [96.2] * 5, MemoryState.CRITICAL, 4.0),
        ("4 points at 95%: exactly 3 minutes", [60.0] * 20 + [95.0] * 4, MemoryState.CRITICAL, 3.0),
        ("brief spike, 2 points", [60.0] * 20 + [99.0] * 2, MemoryState.OK, 1.0),
        ("dipped below in between", [60.0] * 20 + [96.0] * 3 + [94.9] + [96.0] * 2, MemoryState.OK, 1.0),
        ("spike then recovered", [60.0] * 20 + [99.0] * 5 + [70.0], MemoryState.OK, 0.0),
        ("only 4 points, all critical", [97.0] * 4, MemoryState.CRITICAL, 3.0),
        ("a hole longer than stale_minutes breaks the run", [96.0] * 6 + [None] * 14 + [96.0] * 2, MemoryState.OK, 1.0),
        ("a short hole does not", [96.0] * 3 + [None] * 3 + [96.0] * 2, MemoryState.CRITICAL, 7.0),
    ],
)
def test_critical_needs_duration(name, values, state, above):
    result = assess(values)
    assert result.state is state, result.reasons
    assert result.minutes_above_critical == pytest.approx(above)


def test_critical_reason_and_precedence_over_forecast():
    # A 0.25%/min leak already past 95% for 4 minutes, 97% in ~3: both apply, CRITICAL wins.
    values = [96.2 - 0.25 * (59 - i) for i in range(60)]
    result = assess(values)
    assert result.state is MemoryState.CRITICAL
    assert result.reasons[0] == "memory 96.2% (critical >= 95% for 4 min)"
    assert result.minutes_to_exhaustion is not None and result.minutes_to_exhaustion < SETTINGS.horizon_minutes


def test_brief_spike_says_how_long_it_needs():
    result = assess([60.0] * 20 + [99.0] * 2)
    assert result.reasons[0] == "memory 99.0% >= 95% for 1 min (critical after 3 min)"


# --- few points, stale, empty ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, values, state",
    [
        ("4 points, rising fast but too few for a trend", [60.0, 70.0, 80.0, 90.0], MemoryState.OK),
        ("1 point", [50.0], MemoryState.OK),
        ("4 points above critical", [96.0, 96.0, 96.0, 96.0], MemoryState.CRITICAL),
    ],
)
def test_too_few_points_give_no_forecast(name, values, state):
    result = assess(values)
    assert result.state is state
    assert result.slope_per_min is None
    assert result.minutes_to_exhaustion is None
    assert any(r.startswith(f"no trend: {len(values)} points") for r in result.reasons)


@pytest.mark.parametrize(
    "lag_minutes, state",
    [(0.5, MemoryState.OK), (10.0, MemoryState.OK), (10.5, MemoryState.STALE), (45.0, MemoryState.STALE)],
)
def test_silence_after_data_is_stale(lag_minutes, state):
    values = [60.0] * 30
    result = assess(values, lag_seconds=lag_minutes * 60)
    assert result.state is state
    assert result.stale is (state is MemoryState.STALE)
    assert result.last_point_at == T0 + timedelta(minutes=29)
    assert result.current_percent == 60.0


def test_stale_outranks_critical_and_says_how_long():
    result = assess([99.0] * 30, lag_seconds=14 * 60)
    assert result.state is MemoryState.STALE
    assert result.reasons == (
        "memory metric silent for 14 min (stale after 5 min) after climbing to 99.0% (at the top: the agent starves before sshd)",
    )
    assert result.silent_at_top
    assert result.slope_per_min is None


@pytest.mark.parametrize(
    "points",
    [(), ((T0, math.nan),), ((T0, math.nan), (T0 + timedelta(minutes=1), math.inf))],
)
def test_no_usable_points_is_no_data(points):
    result = assess_memory(MemorySeries("i-1", points), T0 + timedelta(minutes=5), SETTINGS)
    assert result.state is MemoryState.NO_DATA
    assert result.current_percent is None and result.last_point_at is None and not result.stale


def test_nan_points_are_skipped_not_fatal():
    values: list[float] = leak(1.0, 20)
    values[30] = math.nan
    assert assess(values).state is MemoryState.FORECAST


def test_order_of_points_does_not_matter():
    values = leak(2.0, 15)
    ordered = series(values)
    shuffled = MemorySeries(ordered.instance_id, tuple(reversed(ordered.points)))
    now = now_for(values)
    assert assess_memory(shuffled, now, SETTINGS) == assess_memory(ordered, now, SETTINGS)


# --- settings ----------------------------------------------------------------------------------


def test_settings_change_the_verdict():
    values = leak(1.0, 40)  # 40 minutes out: beyond the default 30-minute horizon
    assert assess(values).state is MemoryState.OK
    assert assess(values, settings=MemorySettings(horizon_minutes=60)).state is MemoryState.FORECAST
    assert assess(values, settings=MemorySettings(exhaustion_percent=80)).state is MemoryState.FORECAST
    assert assess(values, settings=MemorySettings(min_slope_per_min=2)).minutes_to_exhaustion is None


@pytest.mark.parametrize(
    "fields, ok",
    [
        ({"exhaustion_percent": 100}, True),
        ({"exhaustion_percent": 90, "critical_percent": 95}, True),  # below critical is allowed
        ({"exhaustion_percent": 100.5}, False),
        ({"horizon_minutes": 0}, False),
        ({"min_points": 2}, False),
        ({"min_slope_per_min": -0.1}, False),
        ({"trend_minutes": 61}, False),  # longer than the 60-minute window fetched
        ({"trend_minutes": 120, "window_minutes": 120}, True),
    ],
)
def test_memory_settings_validation(fields, ok):
    if ok:
        MemorySettings(**fields)
    else:
        with pytest.raises(ValidationError):
            MemorySettings(**fields)


# --- never raises --------------------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False)
_when = st.datetimes(timezones=st.just(timezone.utc))


@hyp_settings(max_examples=300, deadline=None)
@given(
    points=st.lists(st.tuples(_when, _finite), max_size=80),
    now=_when,
    min_points=st.integers(3, 10),
    trend_minutes=st.floats(0.5, 60),
    min_slope=st.floats(0, 5),
)
def test_assess_memory_never_raises_on_finite_series(points, now, min_points, trend_minutes, min_slope):
    settings = MemorySettings(min_points=min_points, trend_minutes=trend_minutes, min_slope_per_min=min_slope)
    result = assess_memory(MemorySeries("i-1", tuple(points)), now, settings)
    assert (result.state is MemoryState.NO_DATA) == (not points)
    if result.state is MemoryState.FORECAST:
        assert result.minutes_to_exhaustion is not None and result.minutes_to_exhaustion < settings.horizon_minutes
    if result.state is MemoryState.CRITICAL:
        assert result.current_percent is not None and result.current_percent >= settings.critical_percent
    assert result.stale is (result.state is MemoryState.STALE)
    assert result.reasons and all(isinstance(r, str) for r in result.reasons)
