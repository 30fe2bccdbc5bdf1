"""How one sweep's observations and actions fold into an instance's history.

Pure, so debounce, verification, escalation and quarantine are tested with literal
values. Plan reads what these return; record writes it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from orchestrator.config import SafetySettings
from orchestrator.model import (
    ActionOutcome,
    Facts,
    InstanceHistory,
    OutcomeStatus,
    Verdict,
    VerdictKind,
)

# Outcomes after which the action counts as taken (and must be verified, not repeated).
TAKEN = frozenset({OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN})


def recent_attempts(history: InstanceHistory, now: datetime, window: timedelta) -> int:
    return sum(1 for at in history.attempts if now - at < window)


def observe(prev: InstanceHistory, facts: Facts, verdict: Verdict, now: datetime, safety: SafetySettings) -> InstanceHistory:
    if verdict.kind is VerdictKind.UNKNOWN:
        return prev  # proves nothing either way, and keeps the last real suspicion
    if verdict.kind is VerdictKind.HEALTHY:
        current = _healthy(prev, now, safety)
    elif verdict.kind is VerdictKind.UNREACHABLE and facts.probe is not None:
        current = _unreachable(prev, facts, now, safety)
    else:
        current = _other(prev, now, safety)
    return replace(current, last_verdict=verdict.kind)


def _other(prev: InstanceHistory, now: datetime, safety: SafetySettings) -> InstanceHistory:
    """Memory trouble and the rest: a proactive action in flight expires after the verify window."""
    if prev.in_flight_key is not None and prev.last_action_at is not None and now - prev.last_action_at >= timedelta(minutes=safety.verify_minutes):
        return replace(prev, in_flight_key=None, healthy_since=None)
    return replace(prev, healthy_since=None)


def _healthy(prev: InstanceHistory, now: datetime, safety: SafetySettings) -> InstanceHistory:
    since = prev.healthy_since or now
    rung = prev.rung
    if rung and now - since >= timedelta(minutes=safety.reset_minutes):
        rung = 0  # it stayed fixed: the next failure starts again at the first rung
    return replace(
        prev,
        first_failure_at=None,
        failed_probes=0,
        last_healthy_at=now,
        healthy_since=since,
        in_flight_key=None,  # answering SSH again verifies the action that was in flight
        rung=rung,
    )


def _unreachable(prev: InstanceHistory, facts: Facts, now: datetime, safety: SafetySettings) -> InstanceHistory:
    assert facts.probe is not None
    current = replace(
        prev,
        first_failure_at=prev.first_failure_at or min(a.started_at for a in facts.probe.attempts),
        failed_probes=prev.failed_probes + facts.probe.failed_attempts,
        healthy_since=None,
    )
    verified_failed = (
        current.in_flight_key is not None
        and current.last_action_at is not None
        and now - current.last_action_at >= timedelta(minutes=safety.verify_minutes)
    )
    if verified_failed:
        # The last action did not bring it back within the verify window: one rung up.
        current = replace(current, in_flight_key=None, rung=current.rung + 1)
    if current.quarantined_at is None and current.in_flight_key is None:
        window = timedelta(hours=safety.quarantine_hours)
        tried = recent_attempts(current, now, window)
        if tried >= safety.quarantine_attempts:
            current = replace(
                current,
                quarantined_at=now,
                quarantine_reason=f"{tried} actions in {safety.quarantine_hours:g} h did not fix it",
            )
        elif current.rung >= len(safety.ladder):
            current = replace(current, quarantined_at=now, quarantine_reason="escalation ladder exhausted")
    return current


def acted(prev: InstanceHistory, outcome: ActionOutcome, key: str, now: datetime) -> InstanceHistory:
    """After an action was taken the instance awaits verification on a later sweep."""
    if outcome.status not in TAKEN:
        return prev
    return replace(
        prev,
        attempts=prev.attempts + (now,),
        last_action=outcome.action.kind,
        last_action_at=now,
        in_flight_key=key,
        # A fresh count: the action's effect is judged on probes made after it.
        first_failure_at=None,
        failed_probes=0,
    )


def release(prev: InstanceHistory) -> InstanceHistory:
    """A human looked: clear quarantine and start the ladder again."""
    return replace(prev, quarantined_at=None, quarantine_reason="", rung=0, attempts=(), in_flight_key=None)
