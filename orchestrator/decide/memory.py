"""Is this box about to run out of memory? A pure verdict on one memory series.

The incident orch exists for is a leak that starves sshd while EC2 status checks stay
green, so the memory metric has to answer three questions: is it already critical
(and has been for long enough that it is not a spike), will it be within the horizon
at the current rate, and has the agent fallen silent (the CloudWatch agent starves
before sshd does, so silence after data is itself a symptom).

State precedence, first match wins:

1. NO_DATA  - no usable datapoint: we know nothing, which is neither healthy nor sick.
2. STALE    - had data, but the newest point is older than ``stale_minutes``: any trend
              would be a guess about the present, and the silence is the signal.
3. CRITICAL - what is happening now outranks what may happen.
4. FORECAST - exhaustion predicted within ``horizon_minutes``.
5. OK

The trend is a Theil-Sen slope (median of pairwise slopes) over the trailing
``trend_minutes``; the whole span and its recent half must both rise. A rise is only
forecast when it is steady: no memory given back inside the span (a GC sawtooth is not
a leak), and no step up since which too few points remain (a deploy is not a leak).
Each guard is explained where it is applied.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

from orchestrator.config import MemorySettings
from orchestrator.decide.trend import (
    MAD_TO_SIGMA,
    condense,
    level_at,
    mad,
    max_drawdown,
    theil_sen_slopes,
)
from orchestrator.model import MemorySeries

# A fall smaller than this (percentage points) never counts as memory given back:
# CloudWatch's mem_used_percent jitters by a point or two on an idle box.
RECLAIM_MIN_PERCENT = 5.0
# ...nor does a fall within this many noise sigmas of the sample-to-sample jitter.
RECLAIM_SIGMAS = 3.0

Point = tuple[datetime, float]


class MemoryState(str, enum.Enum):
    NO_DATA = "no-data"
    OK = "ok"
    CRITICAL = "critical"
    FORECAST = "forecast"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class MemoryAssessment:
    """What the memory metric says about one instance at ``now``, with the numbers behind it."""

    current_percent: float | None
    slope_per_min: float | None  # robust trend, percentage points per minute
    minutes_to_exhaustion: float | None  # None unless there is a credible rising trend
    minutes_above_critical: float
    last_point_at: datetime | None
    stale: bool
    state: MemoryState
    reasons: tuple[str, ...]
    # Stale only: the agent went quiet at the top of a climb (last value critical, or a
    # climb that would have reached exhaustion by now). That is the incident: the agent
    # starves before sshd does. Quiet at 40% is a network or pipeline fault, not a box.
    silent_at_top: bool = False


@dataclass(frozen=True, slots=True)
class _Trend:
    slope: float | None
    minutes: float | None
    notes: tuple[str, ...] = ()


# After a reboot call the old box may go on reporting for minutes: a wedged guest cannot
# shut down and EC2 hard-reboots it only after four minutes (RebootInstances, EC2 API
# reference); then the box boots and its agent starts. So the new cycle is taken to
# begin after the largest fall within this many minutes of the action.
SETTLE_MINUTES = 10.0


def since_cycle(points: list[Point], start: datetime | None, now: datetime | None = None) -> list[Point]:
    """The points that describe the current cycle: after ``start``, from where memory fell.

    Points from before the last (re)boot or service restart describe the previous cycle
    and must not judge this one: a box rebooted a moment ago is not memory-critical.
    """
    if start is None:
        return points
    kept = [p for p in points if p[0] >= start]
    settle = [i for i in range(1, len(kept)) if _minutes(start, kept[i][0]) <= SETTLE_MINUTES]
    if settle:
        fall, at = max((kept[i - 1][1] - kept[i][1], i) for i in settle)
        if fall >= RECLAIM_MIN_PERCENT:
            return kept[at:]
    before = [p for p in points if p[0] < start]
    fell_at_start = bool(before and kept and kept[0][1] <= before[-1][1] - RECLAIM_MIN_PERCENT)
    if now is not None and _minutes(start, now) <= SETTLE_MINUTES and not fell_at_start:
        # No fall yet, within the settle window: what reported is the old box still going
        # down (a wedged guest waits for EC2's hard reboot), not the new cycle.
        return []
    return kept


def assess_memory(
    series: MemorySeries, now: datetime, settings: MemorySettings, cycle_start: datetime | None = None
) -> MemoryAssessment:
    """Classify one series; never raises on finite values, whatever their shape or order.

    ``cycle_start``: the last (re)boot or restart orch caused, or the instance's launch;
    points before it are not this cycle's.
    """
    points = since_cycle(_usable(series.points), cycle_start, now)
    if not points:
        return MemoryAssessment(
            current_percent=None,
            slope_per_min=None,
            minutes_to_exhaustion=None,
            minutes_above_critical=0.0,
            last_point_at=None,
            stale=False,
            state=MemoryState.NO_DATA,
            reasons=("no memory datapoints (CloudWatch agent not installed or not reporting)",),
        )
    last_at, current = points[-1]
    above = _minutes_above(points, settings.critical_percent, settings.stale_minutes)
    age = _minutes(last_at, now)
    # A point at or above critical followed by silence is the agent starving with the box:
    # no hold time, only long enough that the silence is not the metric's delivery delay.
    limit = settings.stale_at_top_minutes if current >= settings.critical_percent else settings.stale_minutes
    if age > limit:
        before = _trend(points, last_at, settings)
        at_top = current >= settings.critical_percent or (before.minutes is not None and before.minutes <= age)
        where = (
            f"after climbing to {current:.1f}% (at the top: the agent starves before sshd)"
            if at_top
            else f"at {current:.1f}% (not at the top of a climb)"
        )
        return MemoryAssessment(
            current_percent=current,
            slope_per_min=None,
            minutes_to_exhaustion=None,
            minutes_above_critical=above,
            last_point_at=last_at,
            stale=True,
            state=MemoryState.STALE,
            reasons=(f"memory metric silent for {age:.0f} min (stale after {limit:g} min) {where}",),
            silent_at_top=at_top,
        )
    trend = _trend(points, now, settings)
    critical = current >= settings.critical_percent and above >= settings.critical_minutes
    forecast = trend.minutes is not None and trend.minutes < settings.horizon_minutes
    if critical:
        state = MemoryState.CRITICAL
    elif forecast:
        state = MemoryState.FORECAST
    else:
        state = MemoryState.OK
    return MemoryAssessment(
        current_percent=current,
        slope_per_min=trend.slope,
        minutes_to_exhaustion=trend.minutes,
        minutes_above_critical=above,
        last_point_at=last_at,
        stale=False,
        state=state,
        reasons=_reasons(current, above, trend, settings) + trend.notes,
    )


def _usable(raw: tuple[Point, ...]) -> list[Point]:
    """Finite points, oldest first: CloudWatch may return newest first, and NaN means nothing."""
    return sorted((p for p in raw if math.isfinite(p[1])), key=itemgetter(0))


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def _minutes_above(points: list[Point], critical: float, max_gap: float) -> float:
    """How long the latest run of consecutive points at/above ``critical`` has lasted.

    A hole longer than ``max_gap`` (the staleness limit) ends the run: we would have
    called the box stale during it, so we cannot claim it stayed critical through it.
    """
    last_at, last_value = points[-1]
    if last_value < critical:
        return 0.0
    first_at = last_at
    for i in range(len(points) - 2, -1, -1):
        at, value = points[i]
        if value < critical or _minutes(at, first_at) > max_gap:
            break
        first_at = at
    return _minutes(first_at, last_at)


def _trend(points: list[Point], now: datetime, s: MemorySettings) -> _Trend:
    """Slope, and minutes to exhaustion when the rise is credible as a leak."""
    xs, ys = _window(points, now, s.trend_minutes)
    if len(xs) < s.min_points:
        few = f"no trend: {len(xs)} points in the last {s.trend_minutes:g} min (needs {s.min_points})"
        return _Trend(None, None, (few,))
    fit = _fit(xs, ys)
    if fit is None:
        return _Trend(None, None, ("no trend: datapoints share timestamps",))
    slope, level = fit
    if not _rising(slope, s):
        return _Trend(slope, None)
    # Both guards below ask whether the series moved in one jump rather than steadily.
    # A jump is a sample-to-sample change, net of the trend (so gaps in a fast leak are
    # not jumps), larger than both RECLAIM_MIN_PERCENT and RECLAIM_SIGMAS noise sigmas.
    jitter = [(y1 - y0) - slope * (x1 - x0) for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:])]
    allowance = max(RECLAIM_MIN_PERCENT, RECLAIM_SIGMAS * MAD_TO_SIGMA * mad(jitter))
    # Sawtooth guard: a leak is memory that is never given back. A fall inside the span
    # beyond the noise proves the process (GC, cache trim, worker recycle) still returns
    # memory, so the climb since is as likely the next GC cycle as a leak. The median of
    # pairwise slopes cannot tell on its own: a sawtooth spends most of its time
    # climbing, which biases it upwards. A leak that GC partly reclaims is forecast once
    # the falls stop for a whole span, and is caught as CRITICAL before that.
    fall = max_drawdown(ys)
    if fall > allowance:
        return _Trend(
            slope,
            None,
            (
                f"memory fell {fall:.1f} points within the last {s.trend_minutes:g} min "
                f"(memory is being given back): rise not forecast as a leak",
            ),
        )
    # Step guard: a deploy or cache load lifts memory in one jump and then stays flat;
    # the pairwise median over a span with the step near its middle still reads as a
    # rise. Only the points after the last upward jump can say whether memory leaks.
    jumps = [i for i, j in enumerate(jitter) if j > allowance]
    after = 0
    if jumps:
        after = jumps[-1] + 1
        step = ys[after] - ys[after - 1]
        since = f"memory stepped up {step:.1f} points {-xs[after]:.0f} min ago"
        if len(xs) - after < s.min_points:
            return _Trend(None, None, (f"{since}: too few points since to tell a leak from a step",))
        fit = _fit(xs[after:], ys[after:])
        if fit is None:
            return _Trend(None, None, (f"{since}: no trend since",))
        slope, level = fit
        if not _rising(slope, s):
            return _Trend(slope, None, (f"{since}: trend measured since then",))
    # Noise guard: over a few minutes of noisy samples the median slope can come out
    # steep by chance. A leak must have risen, along the fitted line, by more than one
    # jump's worth of noise over the points that show it.
    span = xs[-1] - xs[after]
    if slope * span <= allowance:
        return _Trend(
            slope,
            None,
            (f"rise of {slope * span:.1f} points over {span:.0f} min is within noise ({allowance:.1f} points)",),
        )
    return _Trend(slope, max(0.0, (s.exhaustion_percent - level) / slope))


def _window(points: list[Point], now: datetime, minutes: float) -> tuple[list[float], list[float]]:
    """The trailing ``minutes`` before the newest point, as (minutes before now, value)."""
    xs: list[float] = []
    ys: list[float] = []
    origin = now.timestamp()  # one C call per point: this runs for every instance, every sweep
    oldest = _minutes(now, points[-1][0]) - minutes
    for at, value in reversed(points):
        x = (at.timestamp() - origin) / 60
        if x < oldest:
            break
        xs.append(x)
        ys.append(value)
    xs.reverse()
    ys.reverse()
    return xs, ys


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """(slope per minute, level at now), or None when no two points differ in time.

    A leak rises steadily, so the whole span and its recent half must both rise and
    the slower of the two is used: a leak that has just begun, or an old rise that has
    levelled off, is not extrapolated at its steepest.
    """
    cx, cy = condense(xs, ys)
    half = len(cx) // 2
    whole, recent = theil_sen_slopes(cx, cy, half)
    if whole is None or recent is None:
        return None
    slope = min(whole, recent)
    return slope, level_at(cx[half:], cy[half:], slope, 0.0)


def _rising(slope: float, s: MemorySettings) -> bool:
    # Written so that NaN (from absurd but finite inputs) counts as not rising.
    return slope > 0 and slope >= s.min_slope_per_min


def _reasons(current: float, above: float, trend: _Trend, s: MemorySettings) -> tuple[str, ...]:
    lines: list[str] = []
    if current >= s.critical_percent:
        if above >= s.critical_minutes:
            lines.append(f"memory {current:.1f}% (critical >= {s.critical_percent:g}% for {above:.0f} min)")
        else:
            lines.append(
                f"memory {current:.1f}% >= {s.critical_percent:g}% for {above:.0f} min "
                f"(critical after {s.critical_minutes:g} min)"
            )
    if trend.minutes is not None and trend.slope is not None:
        if trend.minutes <= 0:
            eta = f"{s.exhaustion_percent:g}% reached"
        else:
            eta = f"{s.exhaustion_percent:g}% in ~{trend.minutes:.0f} min"
        beyond = "" if trend.minutes < s.horizon_minutes else f" (beyond the {s.horizon_minutes:g} min horizon)"
        lines.append(f"memory {current:.1f}% rising {trend.slope:.2f}%/min: {eta}{beyond}")
    elif not lines:
        slope = "" if trend.slope is None else f", trend {trend.slope:+.2f}%/min"
        lines.append(f"memory {current:.1f}%{slope}")
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class CycleShape:
    """How the current cycle ran out of memory: the numbers a chronic condition is told with."""

    exhaustion_minutes: float | None  # from the cycle's start to exhaustion (reached, or forecast)
    growth_per_min: float | None  # the climb's robust slope since the start


def cycle_shape(
    series: MemorySeries | None, start: datetime | None, now: datetime, settings: MemorySettings
) -> CycleShape:
    """Measure the cycle that began at ``start``: when memory reached exhaustion, and how fast it grew.

    Points at the top are left out of the slope (a plateau is not growth). A cycle that
    has not reached exhaustion yet is measured by its forecast.
    """
    if series is None or start is None:
        return CycleShape(None, None)
    points = since_cycle(_usable(series.points), start, now)
    if len(points) < 2:
        return CycleShape(None, None)
    top = next((i for i, (_, v) in enumerate(points) if v >= settings.exhaustion_percent), None)
    climb = points[: top + 1] if top is not None else points
    xs = [_minutes(start, at) for at, _ in climb]
    slope = theil_sen_slopes(xs, [v for _, v in climb], 0)[0] if len(climb) >= 2 else None
    if top is not None:
        return CycleShape(_minutes(start, points[top][0]), slope)
    trend = _trend(points, now, settings)
    if trend.minutes is None:
        return CycleShape(None, slope)
    return CycleShape(_minutes(start, now) + trend.minutes, slope)

