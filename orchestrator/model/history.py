"""What orch remembers between sweeps: each instance's history, the actions' records, the pause.

The pure steps read these (plan reads a history, pending_start the records); the state
store writes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.model.actions import ActionKind, Cause
from orchestrator.model.facts import ConsoleEvidence
from orchestrator.model.verdict import VerdictKind


@dataclass(frozen=True, slots=True)
class ActionAttempt:
    """One action taken on an instance and what became of it.

    Verified: the instance answered SSH after it (and, for a memory cause, memory fell).
    Failed: the call failed, or the instance was not back within the verify window.
    Recurred: the trouble came back after a verified recovery; a recurrence soon after
    the recovery (within ``safety.flap_minutes``) is a flap and counts as a failure, a
    later one is the problem coming back, not the remedy failing.
    """

    at: datetime
    kind: ActionKind
    key: str = ""
    cause: Cause = Cause.UNKNOWN
    verified_at: datetime | None = None
    failed_at: datetime | None = None
    failure: str = ""  # why it counts as failed
    recurred_at: datetime | None = None
    cycle_minutes: float | None = None  # from the boot (or restart) before it to this action
    memory_percent: float | None = None  # at the moment it was decided
    slope_per_min: float | None = None  # memory growth in the cycle it ended
    process: str = ""  # the leaking process, when the console (or procstat) named it
    process_rss_kb: int | None = None
    proactive: bool = False  # taken while SSH still answered, ahead of the exhaustion
    taken: bool = True  # False: the call itself failed, so nothing happened to the box
    requested_by: str = ""  # taken by hand (`orch reboot`), by whom
    forced: str = ""  # by hand past a rule that would have held it, and the reason given
    canary: bool = False  # taken as the canary past the breaker
    chronic: bool = False  # taken on a chronic instance (paced by its cycle, not counted in the fleet's budgets)
    up_minutes: float | None = None  # from the box seen back up after the action before to the exhaustion this one answered
    # When the box came back after it is not known, so no cycle or boot time is measured from it:
    # its sweep died before recording an outcome (it may never have run, and a box that still
    # answered looks verified), or it was verified more than a sweep and a half after any sweep
    # last stored the box (sweeps died or did not run).
    back_unknown: bool = False

    @property
    def settled(self) -> bool:
        return self.verified_at is not None or self.failed_at is not None

    def flapped(self, flap_minutes: float) -> bool:
        """Back in trouble soon after a verified recovery, for a cause other than memory.

        A leak that returns ten minutes after a reboot is a fast leak, not a failed
        reboot: the remedy worked and the box ran out again (a recurrence).
        """
        if self.verified_at is None or self.recurred_at is None or self.cause is Cause.MEMORY:
            return False
        return (self.recurred_at - self.verified_at).total_seconds() < flap_minutes * 60

    def counts_as_failure(self, flap_minutes: float) -> bool:
        return self.failed_at is not None or self.flapped(flap_minutes)


@dataclass(frozen=True, slots=True)
class InstanceHistory:
    """What earlier sweeps learned about one instance; plan reads it, record writes it."""

    instance_id: str
    first_failure_at: datetime | None = None
    failed_probes: int = 0  # consecutive failed probe attempts, across sweeps
    last_healthy_at: datetime | None = None
    healthy_since: datetime | None = None  # start of the current healthy streak
    rung: int = 0  # index into the escalation ladder of the next action
    actions: tuple[ActionAttempt, ...] = ()  # taken actions, oldest first, within the longest window
    last_action: ActionKind | None = None
    last_action_at: datetime | None = None
    in_flight_key: str | None = None  # action taken, not yet verified
    quarantined_at: datetime | None = None
    quarantine_reason: str = ""
    last_verdict: VerdictKind | None = None  # what the last sweep concluded: picks memory suspects
    chronic_since: datetime | None = None  # first recovery of the chronic condition now recognised
    released_at: datetime | None = None  # a human released it: failures before this no longer count
    console: ConsoleEvidence | None = None  # the console read in the current episode (cleared when healthy or acted on)
    version: int = 0  # as read from the store; a write lands only if the stored one still has it
    written_at: datetime | None = None  # when a sweep last stored it (refreshed at least daily)

    @property
    def blank(self) -> bool:
        """Nothing to remember: a healthy instance orch never had to act on or suspect."""
        return (
            not self.actions
            and self.rung == 0
            and self.failed_probes == 0
            and self.first_failure_at is None
            and self.in_flight_key is None
            and self.quarantined_at is None
            and self.chronic_since is None
            and self.released_at is None
            and self.console is None
            and self.last_verdict in (None, VerdictKind.HEALTHY)
        )

    @property
    def attempts(self) -> tuple[datetime, ...]:
        """When actions were taken, failed calls aside."""
        return tuple(a.at for a in self.actions if a.taken)

    @property
    def budgeted(self) -> tuple[datetime, ...]:
        """When actions the fleet's budgets count were taken: not those on chronic instances."""
        return tuple(a.at for a in self.actions if a.taken and not a.chronic)

    @property
    def cycle_started_at(self) -> datetime | None:
        """The last (re)boot or restart orch caused: memory before it describes the last cycle."""
        taken = self.attempts
        return taken[-1] if taken else None


# -- what the state store remembers and the pure steps read -----------------------------


class ActionStatus(str, enum.Enum):
    INTENT = "intent"  # written before the call: a crash after this never repeats the call blindly
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"
    VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class ActionRecord:
    key: str  # idempotency key: instance, action, time window
    sweep_id: str
    instance_id: str
    action: ActionKind
    reason: str
    status: ActionStatus
    created_at: datetime
    updated_at: datetime
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PauseState:
    paused_at: datetime
    by: str
    reason: str = ""
