"""The robust-statistics helpers behind the memory forecast."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from orchestrator.decide.trend import (
    condense,
    level_at,
    mad,
    max_drawdown,
    median,
    theil_sen_slope,
    theil_sen_slopes,
)


@pytest.mark.parametrize(
    "values, expected",
    [([3.0], 3.0), ([1.0, 3.0], 2.0), ([5.0, 1.0, 3.0], 3.0), ([4.0, 1.0, 3.0, 2.0], 2.5)],
)
def test_median(values, expected):
    assert median(values) == expected


def test_theil_sen_ignores_a_wild_outlier_where_a_mean_would_not():
    xs = [float(i) for i in range(10)]
    ys = [2.0 * x + 1 for x in xs]
    ys[7] = 500.0
    assert theil_sen_slope(xs, ys) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "xs, ys, expected",
    [([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], None), ([1.0], [5.0], None), ([], [], None), ([0.0, 2.0], [1.0, 5.0], 2.0)],
)
def test_theil_sen_without_distinct_x(xs, ys, expected):
    assert theil_sen_slope(xs, ys) == expected


def test_theil_sen_slopes_whole_and_tail():
    xs = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    ys = [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]  # flat, then 1 per x
    whole, tail = theil_sen_slopes(xs, ys, 3)
    assert tail == pytest.approx(1.0)
    assert 0 < whole < 1


def test_condense_keeps_a_line_and_caps_the_points():
    xs = [float(i) for i in range(31)]
    ys = [0.5 * x + 10 for x in xs]
    cx, cy = condense(xs, ys, 12)
    assert len(cx) == 12
    assert all(y == pytest.approx(0.5 * x + 10) for x, y in zip(cx, cy))
    assert cx == sorted(cx)


def test_condense_leaves_short_series_alone():
    assert condense([1.0, 2.0], [3.0, 4.0], 12) == ([1.0, 2.0], [3.0, 4.0])


@pytest.mark.parametrize(
    "ys, expected",
    [([1.0, 2.0, 3.0], 0.0), ([5.0, 9.0, 4.0, 8.0, 1.0], 8.0), ([], 0.0), ([3.0, 1.0, 10.0, 9.0], 2.0)],
)
def test_max_drawdown(ys, expected):
    assert max_drawdown(ys) == expected


def test_mad_is_not_inflated_by_one_jump():
    assert mad([1.0, 1.0, 1.0, 1.0, 40.0]) == 0.0
    assert mad([]) == 0.0


def test_level_at_projects_to_the_origin():
    xs = [-3.0, -2.0, -1.0]
    ys = [7.0, 8.0, 9.0]
    assert level_at(xs, ys, 1.0, 0.0) == pytest.approx(10.0)


_small = st.floats(-1000, 1000, allow_nan=False)


@hyp_settings(max_examples=200, deadline=None)
@given(st.lists(_small, min_size=2, max_size=20), st.floats(-10, 10))
def test_theil_sen_moves_exactly_with_an_added_line(ys, rate):
    # Equivariance: adding rate * x to every point adds rate to every pairwise slope.
    xs = [float(i) for i in range(len(ys))]
    base = theil_sen_slope(xs, ys)
    lifted = theil_sen_slope(xs, [y + rate * x for x, y in zip(xs, ys)])
    assert base is not None and lifted is not None
    assert lifted == pytest.approx(base + rate, abs=1e-6)
