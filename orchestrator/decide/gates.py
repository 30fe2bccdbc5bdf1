"""The per-instance rules, each a pure function of the candidate, the settings and now: a table the plan asks in order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from orchestrator.config import Settings
from orchestrator.decide.candidate import IN_SERVICE, Candidate
from orchestrator.model import (
    ActionKind,
    BlockRule,
    VerdictKind,
)

Gate = Callable[[Candidate, Settings, datetime], str | None]


def gate_opt_out(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if settings.opt_out_tag in c.facts.instance.tags:
        return f"opted out by tag {settings.opt_out_tag}"
    return None


def gate_running(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.facts.instance.state != "running":
        return f"instance is {c.facts.instance.state}, not running"
    return None


def gate_quarantine(c: Candidate, settings: Settings, now: datetime) -> str | None:
    h = c.history
    if h.quarantined_at is not None:
        return f"quarantined since {h.quarantined_at:%Y-%m-%d %H:%M} UTC ({h.quarantine_reason}); a human releases it with `orch release {c.instance_id}`"
    return None


def gate_in_flight(c: Candidate, settings: Settings, now: datetime) -> str | None:
    h = c.history
    if h.in_flight_key is not None and h.last_action_at is not None:
        due = h.last_action_at + timedelta(minutes=settings.safety.verify_minutes)
        action = h.last_action.value if h.last_action else "action"
        return f"{action} at {h.last_action_at:%H:%M:%S} UTC awaits verification until {due:%H:%M:%S} UTC"
    return None


def gate_debounce(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.verdict.kind is not VerdictKind.UNREACHABLE:
        return None  # memory verdicts are debounced by their own duration and trend rules
    s = settings.safety
    h = c.history
    span = (now - h.first_failure_at).total_seconds() if h.first_failure_at else 0.0
    if h.failed_probes < s.debounce_probes or span < s.debounce_seconds:
        return (
            f"not confirmed yet: {h.failed_probes}/{s.debounce_probes} failed probes over "
            f"{span:.0f}/{s.debounce_seconds:.0f} s"
        )
    return None


def gate_launch_grace(c: Candidate, settings: Settings, now: datetime) -> str | None:
    age = now - c.facts.instance.launch_time
    grace = timedelta(minutes=settings.safety.launch_grace_minutes)
    if age < grace:
        return f"launched {age.total_seconds() / 60:.0f} min ago (grace {settings.safety.launch_grace_minutes:g} min)"
    return None


def gate_lifecycle(c: Candidate, settings: Settings, now: datetime) -> str | None:
    state = c.facts.lifecycle_state
    if c.facts.instance.asg_name and state is not None and state != IN_SERVICE:
        return f"Auto Scaling lifecycle state is {state}, not {IN_SERVICE}"
    return None


def gate_scheduled_event(c: Candidate, settings: Settings, now: datetime) -> str | None:
    status = c.facts.status
    if status is not None and status.events:
        event = status.events[0]
        when = f" on {event.not_before:%Y-%m-%d %H:%M} UTC" if event.not_before else ""
        return f"EC2 scheduled event {event.code}{when}: left to AWS"
    return None


def gate_rung_fits(c: Candidate, settings: Settings, now: datetime) -> str | None:
    """No rung fits from where the ladder stands (replace for a standalone box, stop/start
    for a one-time Spot one...): see orchestrator.decide.rungs. Actions ahead of an exhaustion
    are not on the ladder."""
    if c.ahead:
        return None
    if c.misfit is not None:
        return f"{c.misfit}; a human must look"
    if c.history.rung >= len(settings.safety.ladder):
        return "every rung of the escalation ladder was tried; a human must look"
    return None


def gate_ssm_online(c: Candidate, settings: Settings, now: datetime) -> str | None:
    if c.kind is ActionKind.RUN_COMMAND and c.facts.ssm_online is not True:
        return "SSM agent is not online: the command could not run"
    return None


PER_INSTANCE_GATES: tuple[tuple[BlockRule, Gate], ...] = (
    (BlockRule.OPT_OUT, gate_opt_out),
    (BlockRule.NOT_RUNNING, gate_running),
    (BlockRule.QUARANTINE, gate_quarantine),
    (BlockRule.IN_FLIGHT, gate_in_flight),
    (BlockRule.SCHEDULED_EVENT, gate_scheduled_event),
    (BlockRule.LIFECYCLE, gate_lifecycle),
    (BlockRule.LAUNCH_GRACE, gate_launch_grace),
    (BlockRule.DEBOUNCE, gate_debounce),
    (BlockRule.LADDER, gate_rung_fits),
    (BlockRule.SSM_OFFLINE, gate_ssm_online),
)
