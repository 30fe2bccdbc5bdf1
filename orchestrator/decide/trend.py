"""Robust statistics for short metric windows, in pure Python.

The Lambda zip stays small without numpy, and a window is tens of points, so plain
lists are enough. Everything here is robust (medians, not means) because one bad
CloudWatch sample must not reboot a box, and bounded: the pairwise Theil-Sen slope is
O(n^2), so windows are first condensed to at most ``MAX_FIT_POINTS`` group medians,
which keeps 10,000 assessments per sweep cheap whatever the metric period.
"""

from __future__ import annotations

from typing import Sequence

# 12 points -> 66 pairs. A 30-minute window of 1-minute samples becomes 12 medians of
# two or three samples each: a linear trend survives condensing exactly, a lone spike
# is voted down inside its group, and a bad group is outvoted by the pairwise median.
MAX_FIT_POINTS = 12

# Scales a median absolute deviation to a standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826


def median(values: Sequence[float]) -> float:
    """Middle of ``values`` (mean of the two middles when even); ``values`` must not be empty."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation: a noise scale that a few large jumps cannot inflate."""
    if not values:
        return 0.0
    centre = median(values)
    return median([abs(v - centre) for v in values])


def condense(
    xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_FIT_POINTS
) -> tuple[list[float], list[float]]:
    """At most ``max_points`` (median x, median y) of consecutive groups, in order.

    ``xs`` must be ascending (its median is then its middle, no sort needed). Groups are
    by index, not by time, so the result is deterministic and every group holds real
    samples even when the series has gaps.
    """
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    cx: list[float] = []
    cy: list[float] = []
    for g in range(max_points):
        lo, hi = g * n // max_points, (g + 1) * n // max_points
        size = hi - lo
        cx.append((xs[lo + (size - 1) // 2] + xs[lo + size // 2]) / 2)
        if size == 1:
            cy.append(ys[lo])
        elif size == 2:
            cy.append((ys[lo] + ys[lo + 1]) / 2)
        else:
            cy.append(median(ys[lo:hi]))
    return cx, cy


def theil_sen_slopes(xs: Sequence[float], ys: Sequence[float], split: int) -> tuple[float | None, float | None]:
    """Theil-Sen slopes (median of pairwise slopes) of all points and of ``xs[split:]``.

    The pairs of the tail are a subset of the pairs of the whole, so both come from
    one pass. None where no pair has distinct x, so "no trend measurable" is never
    mistaken for "flat".
    """
    tail: list[float] = []
    for i in range(max(split, 0), len(xs) - 1):
        tail.extend(_row(xs, ys, i))
    whole = list(tail)
    for i in range(min(split, len(xs) - 1)):
        whole.extend(_row(xs, ys, i))
    return (median(whole) if whole else None), (median(tail) if tail else None)


def theil_sen_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Median of the slopes between every pair of points with distinct x (None if no pair)."""
    return theil_sen_slopes(xs, ys, 0)[0]


def _row(xs: Sequence[float], ys: Sequence[float], i: int) -> list[float]:
    x0, y0 = xs[i], ys[i]
    return [(y - y0) / (x - x0) for x, y in zip(xs[i + 1 :], ys[i + 1 :]) if x != x0]


def level_at(xs: Sequence[float], ys: Sequence[float], slope: float, x0: float) -> float:
    """Value of the line with ``slope`` at ``x0``, placed by the median residual."""
    return median([y - slope * (x - x0) for x, y in zip(xs, ys)])


def max_drawdown(ys: Sequence[float]) -> float:
    """Largest fall from an earlier peak to a later value; 0.0 for a series that never falls."""
    peak = float("-inf")
    worst = 0.0
    for y in ys:
        if y > peak:
            peak = y
        elif peak - y > worst:
            worst = peak - y
    return worst
