"""How one sweep's observations and actions fold into an instance's history.

Pure, so debounce, verification, escalation, recurrence, flapping, chronic conditions
and quarantine are tested with literal values. Plan reads what these return; record
writes it.

Judged over days, not one sweep: a remedy that brought the box back *worked*, even if
the problem comes back half an hour later. So every action is judged on its own:

- verified: the instance answered SSH after it (and, for a memory cause, memory fell);
- failed: the call failed, or the box was not back within ``safety.verify_minutes``;
- recurred: the trouble came back after a verified recovery. Soon after the recovery
  (within ``safety.flap_minutes``) that is a flap, and counts as a failure; later it is a
  recurrence, which neither climbs the ladder nor counts toward quarantine.

Failures climb the ladder and, ``safety.quarantine_attempts`` of them within
``safety.quarantine_hours``, quarantine the instance; so does a ladder with no rung left
for it. Recurrences of memory exhaustion make an instance *chronic* (see ``chronic``),
which the plan answers by acting ahead of the next exhaustion. Budgets in the plan
still cap everything, so a recurring fleet never becomes a reboot storm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from orchestrator.config import Settings
from orchestrator.decide import rungs
from orchestrator.decide.chronic import chronic
from orchestrator.model import (
    ActionAttempt,
    ActionKind,
    ActionOutcome,
    Cause,
    CheckState,
    Corroboration,
    Facts,
    InstanceHistory,
    OutcomeStatus,
    ProbeOutcome,
    ProbeResult,
    Verdict,
    VerdictKind,
)

# Outcomes after which the action counts as taken (and must be verified, not repeated).
TAKEN = frozenset({OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN})
MEMORY_VERDICTS = frozenset({VerdictKind.MEMORY_CRITICAL, VerdictKind.MEMORY_FORECAST})
TROUBLED = frozenset({VerdictKind.UNREACHABLE}) | MEMORY_VERDICTS
# A memory action is verified when memory fell at least this far (percentage points).
MEMORY_FALL_POINTS = 10.0


def recent_attempts(history: InstanceHistory, now: datetime, window: timedelta) -> int:
    """Actions the fleet's budgets count within ``window`` (actions on chronic instances are paced by their cycle)."""
    return sum(1 for at in history.budgeted if now - at < window)


def _last(h: InstanceHistory) -> ActionAttempt | None:
    return h.actions[-1] if h.actions else None


def _with_last(h: InstanceHistory, attempt: ActionAttempt, **changes: Any) -> InstanceHistory:
    return replace(h, actions=h.actions[:-1] + (attempt,), **changes)


# -- observe: one sweep's verdict ---------------------------------------------------------


def observe(prev: InstanceHistory, facts: Facts, verdict: Verdict, now: datetime, settings: Settings) -> InstanceHistory:
    if verdict.kind is VerdictKind.UNKNOWN:
        return prev  # proves nothing either way, and keeps the last real suspicion
    h = _prune(prev, now, settings)
    h = _judge_last_action(h, facts, verdict, now, settings)
    if verdict.kind is VerdictKind.HEALTHY:
        h = _healthy(h, now, settings)
    elif verdict.kind is VerdictKind.UNREACHABLE and facts.probe is not None:
        h = _unreachable(h, facts, now, settings)
        if facts.console is not None and facts.console != h.console:
            h = replace(h, console=facts.console)  # read once an episode (see orchestrator.decide.suspects)
    else:
        h = replace(h, healthy_since=None)
    h = _update_chronic(h, now, settings)
    if verdict.kind in TROUBLED:
        h = _quarantine_if_due(h, facts, verdict, now, settings)
    return replace(h, last_verdict=verdict.kind)


def retention(settings: Settings) -> timedelta:
    """How long a history keeps an action: the longest window that counts actions."""
    return timedelta(hours=max(settings.safety.quarantine_hours, settings.chronic.window_hours, 1.0))


def _prune(h: InstanceHistory, now: datetime, settings: Settings) -> InstanceHistory:
    """Keep what some window still needs, and always the last action (the cycle it began)."""
    keep = retention(settings)
    kept = tuple(a for a in h.actions[:-1] if now - a.at < keep) + h.actions[-1:]
    return h if len(kept) == len(h.actions) else replace(h, actions=kept)


def _memory_fell(attempt: ActionAttempt, verdict: Verdict, facts: Facts | None = None) -> bool | None:
    """True/False when memory after the action can be compared with before; None when not yet.

    Any point since the action counts, not only the latest: a fast leak climbs back past
    the level it was acted at before the first sweep after the boot, and the reboot still
    reset it.
    """
    if attempt.memory_percent is None:
        return None
    target = attempt.memory_percent - MEMORY_FALL_POINTS
    since = [v for t, v in (facts.memory.points if facts is not None and facts.memory is not None else ()) if t > attempt.at]
    if since:
        return min(since) <= target
    if verdict.memory_percent is None:
        return None
    return verdict.memory_percent <= target


def boot_deadline(h: InstanceHistory, last: ActionAttempt, settings: Settings) -> timedelta:
    """How long a box may take to come back after ``last`` before the action is judged failed.

    Boot time varies: under a minute on small Nitro instances, several minutes with
    cloud-init, fsck or instance-store volumes, and EC2 hard-reboots a guest that cannot
    shut down only after four minutes. So the wait is the box's own learned boot time
    (twice the slowest recent one, never under ``safety.verify_minutes``), and
    ``safety.boot_ceiling_minutes`` while nothing is learned yet.
    """
    s = settings.safety
    ceiling = timedelta(minutes=s.boot_ceiling_minutes)
    boots = [
        a.verified_at - a.at
        for a in h.actions[:-1]
        if a.verified_at is not None and not a.back_unknown and a.kind is not ActionKind.RUN_COMMAND
    ]
    if not boots or last.kind is ActionKind.RUN_COMMAND:
        return timedelta(minutes=s.verify_minutes) if last.kind is ActionKind.RUN_COMMAND else ceiling
    return min(ceiling, max(timedelta(minutes=s.verify_minutes), 2 * max(boots[-5:])))


def _judge_last_action(h: InstanceHistory, facts: Facts, verdict: Verdict, now: datetime, settings: Settings) -> InstanceHistory:
    """Verified on the first probe that gets a banner after the action; failed only once the box is up and still broken.

    A box still booting (sshd refusing, no answer, EC2's checks initializing) is waited
    for up to its ``boot_deadline``; a box whose kernel answers but whose sshd holds the
    probe without a banner has booted and is judged after ``safety.verify_minutes``.
    """
    last = _last(h)
    if last is None or last.settled or not last.taken:
        return replace(h, in_flight_key=None) if h.in_flight_key is not None and (last is None or last.settled) else h
    probe = facts.probe
    ssh_ok = probe is not None and probe.outcome is ProbeOutcome.OK and now > last.at
    elapsed = now - last.at
    due = elapsed >= timedelta(minutes=settings.safety.verify_minutes)
    # A service restart is judged by memory falling: the command may have run and restarted
    # nothing. A reboot or a stop/start that brought SSH back has reset memory, however fast
    # a leak climbs back before the first sweep after the boot.
    fell = _memory_fell(last, verdict, facts) if last.kind is ActionKind.RUN_COMMAND else None
    if ssh_ok and (last.cause is not Cause.MEMORY or fell is not False):
        # Back. For a memory cause, memory fell too, or there is no reading to say it did not.
        # A failure seen while it booted belongs to the action, not to the next episode.
        # The box came back since a sweep last stored it (its action's sweep, or one that saw it
        # still down); a verification much later than the schedule says little of when.
        seen = max(last.at, h.written_at or last.at)
        late = now - seen > timedelta(minutes=1.5 * settings.sweep_interval_minutes)
        back_unknown = last.back_unknown or late
        return _with_last(h, replace(last, verified_at=now, back_unknown=back_unknown), in_flight_key=None, first_failure_at=None, failed_probes=0)
    if not due:
        return h  # still in flight: judged on a later sweep
    booting = facts.status is not None and CheckState.INITIALIZING in (facts.status.system, facts.status.instance)
    up_and_hung = probe is not None and probe.outcome in (ProbeOutcome.BANNER_TIMEOUT, ProbeOutcome.RESET, ProbeOutcome.NOT_SSH)
    deadline = boot_deadline(h, last, settings)
    if not ssh_ok and not (up_and_hung and not booting) and elapsed < deadline:
        return h  # still booting, as far as anything shows: waited for up to the deadline
    if not ssh_ok:
        waited = elapsed.total_seconds() / 60
        why = f"SSH still failing {waited:.0f} min after it ({describe_failure(probe)})"
    else:
        why = f"memory did not fall ({last.memory_percent:.0f}% before, {verdict.memory_percent:.0f}% after)"
    # The remedy did not bring the box back: one rung up.
    return _with_last(h, replace(last, failed_at=now, failure=why), in_flight_key=None, rung=h.rung + 1)


def describe_failure(probe: ProbeResult | None) -> str:
    if probe is None:
        return "not probed"
    return {
        ProbeOutcome.BANNER_TIMEOUT: "the box answers, sshd sends no banner",
        ProbeOutcome.REFUSED: "sshd refuses",
        ProbeOutcome.RESET: "connections reset",
        ProbeOutcome.NOT_SSH: "not an SSH server on the port",
        ProbeOutcome.CONNECT_TIMEOUT: "no answer at all",
    }.get(probe.outcome, probe.outcome.value)


def _healthy(h: InstanceHistory, now: datetime, settings: Settings) -> InstanceHistory:
    since = h.healthy_since or now
    rung = h.rung
    if rung and now - since >= timedelta(minutes=settings.safety.reset_minutes):
        rung = 0  # it stayed fixed: the next failure starts again at the first rung
    return replace(h, first_failure_at=None, failed_probes=0, last_healthy_at=now, healthy_since=since, rung=rung, console=None)


def _unreachable(h: InstanceHistory, facts: Facts, now: datetime, settings: Settings) -> InstanceHistory:
    assert facts.probe is not None
    first = h.first_failure_at or min(a.started_at for a in facts.probe.attempts)
    h = replace(h, first_failure_at=first, failed_probes=h.failed_probes + facts.probe.failed_attempts, healthy_since=None)
    return _mark_recurrence(h, first, settings.safety.flap_minutes)


def _mark_recurrence(h: InstanceHistory, at: datetime, flap_minutes: float) -> InstanceHistory:
    """The trouble is back after a verified recovery: a flap climbs the ladder, a recurrence does not."""
    last = _last(h)
    if last is None or last.verified_at is None or last.recurred_at is not None or at < last.verified_at:
        return h
    recurred = replace(last, recurred_at=at)
    if recurred.flapped(flap_minutes):
        return _with_last(h, recurred, rung=h.rung + 1)
    return _with_last(h, recurred)


def _update_chronic(h: InstanceHistory, now: datetime, settings: Settings) -> InstanceHistory:
    found = chronic(h, now, settings)
    since = (h.chronic_since or found.since) if found is not None else None
    return h if since == h.chronic_since else replace(h, chronic_since=since)


def _counted_failures(h: InstanceHistory, now: datetime, settings: Settings) -> list[ActionAttempt]:
    window = timedelta(hours=settings.safety.quarantine_hours)
    flap = settings.safety.flap_minutes
    return [
        a
        for a in h.actions
        if now - a.at < window and a.counts_as_failure(flap) and (h.released_at is None or a.at >= h.released_at)
    ]


def _failure_stats(failures: list[ActionAttempt], settings: Settings) -> str:
    s = settings.safety
    flapped = sum(1 for a in failures if a.failed_at is None)
    parts = []
    if len(failures) > flapped:
        parts.append(f"{len(failures) - flapped} not back within {s.verify_minutes:g} min or failed")
    if flapped:
        parts.append(f"{flapped} held for less than {s.flap_minutes:g} min")
    return f" ({', '.join(parts)})" if parts else ""


def _quarantine_if_due(h: InstanceHistory, facts: Facts, verdict: Verdict, now: datetime, settings: Settings) -> InstanceHistory:
    if h.quarantined_at is not None or h.in_flight_key is not None:
        return h
    s = settings.safety
    failures = _counted_failures(h, now, settings)
    if len(failures) >= s.quarantine_attempts:
        reason = (
            f"remediation failed: {len(failures)} actions in {s.quarantine_hours:g} h did not bring it back"
            + _failure_stats(failures, settings)
        )
        return replace(h, quarantined_at=now, quarantine_reason=reason)
    if verdict.kind is VerdictKind.UNREACHABLE and h.actions:
        _, misfit = rungs.rung_for(s.ladder, h.rung, facts)
        if h.rung >= len(s.ladder) or misfit is not None:
            tried = ", ".join(dict.fromkeys(a.kind.value for a in h.actions if a.taken)) or "nothing"
            reason = f"remediation failed: {tried} did not bring it back{_failure_stats(failures, settings)}; no rung of the ladder is left"
            if misfit is not None:
                reason += f" ({misfit})"
            return replace(h, quarantined_at=now, quarantine_reason=reason)
    return h


# -- acted: an action's outcome ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What the sweep knew when it acted, kept with the action for chronic patterns."""

    verdict: Verdict | None = None
    evidence: Mapping[str, Any] | None = None  # the evidence summary captured before acting
    launched_at: datetime | None = None
    exhaustion_minutes: float | None = None  # from the cycle's start to (forecast) exhaustion
    growth_per_min: float | None = None  # memory growth since the cycle's start


def cause_of(context: ActionContext, planned: Cause | None = None) -> Cause:
    if planned is not None:
        return planned
    verdict = context.verdict
    if verdict is not None and (verdict.kind in MEMORY_VERDICTS or verdict.corroboration is not Corroboration.NONE):
        return Cause.MEMORY
    if (context.evidence or {}).get("console_cause") == "oom":
        return Cause.MEMORY
    return Cause.UNKNOWN


def acted(
    prev: InstanceHistory,
    outcome: ActionOutcome,
    key: str,
    now: datetime,
    settings: Settings,
    context: ActionContext | None = None,
) -> InstanceHistory:
    """After an action was taken the instance awaits verification on a later sweep.

    A call that failed is an action that did not work: it climbs the ladder and counts
    toward quarantine, so a failing rung is not retried every window forever.
    """
    failed = outcome.status is OutcomeStatus.FAILED
    if outcome.status not in TAKEN and not failed:
        return prev
    context = context or ActionContext()
    evidence = context.evidence or {}
    verdict = context.verdict
    h = _mark_recurrence(prev, now, settings.safety.flap_minutes) if not failed else prev
    previous = _last(prev)
    proactive = verdict is not None and verdict.kind is not VerdictKind.UNREACHABLE
    up_minutes = None
    if previous is not None and previous.verified_at is not None and not previous.back_unknown and not proactive:
        # The box was seen back up at the last verification and failed again from here: one whole cycle, observed.
        ended = prev.first_failure_at or now
        up_minutes = max(0.0, (ended - previous.verified_at).total_seconds() / 60)
    attempt = ActionAttempt(
        at=now,
        kind=outcome.action.kind,
        key=key,
        cause=cause_of(context, outcome.action.cause),
        cycle_minutes=context.exhaustion_minutes,
        memory_percent=verdict.memory_percent if verdict else None,
        slope_per_min=context.growth_per_min if context.growth_per_min is not None else (verdict.memory_slope_per_min if verdict else None),
        process=str(evidence.get("process") or ""),
        process_rss_kb=evidence.get("process_rss_kb"),
        proactive=proactive,
        taken=not failed,
        requested_by=outcome.action.requested_by,
        forced=outcome.action.forced,
        canary=outcome.action.canary,
        chronic=outcome.action.chronic,
        up_minutes=up_minutes,
    )
    if failed:
        attempt = replace(attempt, failed_at=now, failure=f"the call failed: {outcome.detail}")
        return replace(h, actions=h.actions + (attempt,), rung=h.rung + 1)
    return replace(
        h,
        actions=h.actions + (attempt,),
        last_action=outcome.action.kind,
        last_action_at=now,
        in_flight_key=key,
        # A fresh count: the action's effect is judged on probes made after it.
        first_failure_at=None,
        failed_probes=0,
        console=None,
    )


def recovered(prev: InstanceHistory, key: str, kind: ActionKind, at: datetime) -> InstanceHistory:
    """An intent whose outcome was never recorded (its sweep died): an action possibly taken at ``at``.

    It goes in flight like any action taken then: not repeated inside its verify window,
    counted by the budgets, judged on a later sweep (verified, or failed and escalated).
    Whether it ran is not known, so no cycle or boot time is measured from it
    (``back_unknown``): a box it never rebooted answers SSH and looks verified.
    """
    if any(a.key == key for a in prev.actions):
        return prev  # the history was written; only the outcome update was lost
    attempt = ActionAttempt(at=at, kind=kind, key=key, back_unknown=True)
    actions = tuple(sorted(prev.actions + (attempt,), key=lambda a: a.at))
    newest = actions[-1] is attempt
    return replace(
        prev,
        actions=actions,
        last_action=kind if newest else prev.last_action,
        last_action_at=at if newest else prev.last_action_at,
        in_flight_key=key if newest else prev.in_flight_key,
        first_failure_at=None if newest else prev.first_failure_at,
        failed_probes=0 if newest else prev.failed_probes,
    )


def release(prev: InstanceHistory, now: datetime) -> InstanceHistory:
    """A human looked: clear quarantine, forgive earlier failures, start the ladder again."""
    return replace(prev, quarantined_at=None, quarantine_reason="", rung=0, in_flight_key=None, released_at=now)
