"""The invocation's deadline: read from the Lambda context, and fitted by the probe.

The sweep starts no new action in its last ``GATE_MARGIN_S`` seconds; the SSH probe's
retry window is shortened when the worst case would not fit. A context whose deadline
cannot be read fails the invocation before anything happens.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from orchestrator.config import Settings
from orchestrator.echo import clip

GATE_MARGIN_S = 30.0  # sweep's gate refuses new actions with less than this left
OBSERVE_RESERVE_S = 30.0  # inventory, status, metrics, lease and record around the probe


def fit_probe_to_deadline(settings: Settings, seconds_left: float | None) -> tuple[Settings, str | None]:
    """Shorten the probe's retry window when the worst-case probe would not fit.

    Failures spread over less time than ``safety.debounce_seconds`` do not debounce, so a
    shortened window can only delay an action, never cause one.
    """
    if seconds_left is None:
        return settings, None
    probe = settings.probe
    attempt = probe.connect_timeout + probe.banner_timeout
    room = seconds_left - GATE_MARGIN_S - OBSERVE_RESERVE_S
    if probe.retry_window + attempt <= room:
        return settings, None
    window = max(0.0, room - attempt)
    shorter = settings.model_copy(update={"probe": probe.model_copy(update={"retry_window": window})})
    return shorter, (
        f"{seconds_left:.0f} s left: probe retry window cut from {probe.retry_window:g} s to {window:g} s"
    )


class InvalidContext(ValueError):
    """The context's deadline cannot be read: without it no action can be known to fit."""


def _millis(remaining: Callable[[], Any]) -> float:
    value = remaining()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidContext(f"get_remaining_time_in_millis() returned {clip(value)}, not a number of milliseconds")
    return float(value)


def _time_left(context: Any) -> Callable[[], float] | None:
    """Seconds left, from the context; None when there is no context (a local call).

    Checked once up front (a context whose method is not callable or returns garbage
    fails the invocation before anything happens); a later bad reading counts as no
    time left, so no new action starts on it.
    """
    if context is None:
        return None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    if not callable(remaining):
        raise InvalidContext(f"the context's get_remaining_time_in_millis is {type(remaining).__name__}, not a method")
    try:
        _millis(remaining)
    except InvalidContext:
        raise
    except Exception as exc:  # whatever a broken context raises
        raise InvalidContext(f"get_remaining_time_in_millis() raised {type(exc).__name__}: {clip(str(exc), quote=False)}") from None

    def left() -> float:
        try:
            return _millis(remaining) / 1000.0
        except Exception:
            return 0.0

    return left
