"""What orch does and holds back: the kinds of action, the plan of a sweep, what each action came to.

The plan's actions and blocks are what the executor, the alerts and the exit code read;
a block's rule says why an action was held back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ActionKind(str, enum.Enum):
    REBOOT = "reboot"
    STOP_START = "stop-start"
    REPLACE = "replace"
    RUN_COMMAND = "run-command"  # SSM: restart the leaking service before SSH dies
    START = "start"  # finish a stop/start orch began that left the instance stopped; never a rung


@dataclass(frozen=True, slots=True)
class Action:
    instance_id: str
    kind: ActionKind
    reason: str
    asg_name: str | None = None
    requested_by: str = ""  # a person's `orch reboot` / `orch stop-start`; empty: a sweep's own decision
    forced: str = ""  # the rule a person forced the action past and the reason they gave (--force --reason)
    canary: bool = False  # acted on first, past the breaker, to learn whether this failure heals at all
    cause: Cause | None = None  # what the plan acted on, when it knows (None: the evidence at the time decides)
    chronic: bool = False  # on a chronic instance: paced by its own cycle, outside the fleet's budgets


class BlockRule(str, enum.Enum):
    """Which rule held an action back: what the exit code, the alerts and people sort blocks by."""

    PAUSED = "paused"
    PROBER = "prober"  # every probe failed: the prober's own network
    BREAKER = "breaker"
    MEMORY_BREAKER = "memory-breaker"
    NETWORK_FAULT = "network-fault"  # an AZ or subnet
    OPT_OUT = "opt-out"
    NOT_RUNNING = "not-running"
    QUARANTINE = "quarantine"
    IN_FLIGHT = "in-flight"
    SCHEDULED_EVENT = "scheduled-event"
    LIFECYCLE = "lifecycle"
    LAUNCH_GRACE = "launch-grace"
    DEBOUNCE = "debounce"
    LADDER = "ladder"
    SSM_OFFLINE = "ssm-offline"
    BUDGET_SWEEP = "budget-sweep"  # this sweep's share is spent: the next sweep serves it
    BUDGET = "budget"  # the hourly or the group's budget
    CANARY = "canary"  # past the breaker: waiting on the canary, or the canary did not recover

    @property
    def expected(self) -> bool:
        """A state the operator chose or that resolves itself: neither news nor a failure."""
        return self in _EXPECTED_BLOCKS


# The user's choice (opted out), orch's own action awaiting verification, or waiting
# for a fact to settle (not confirmed yet, launch grace, someone else's lifecycle or
# scheduled event, not running): none is news, none makes `orch heal` exit 1.
_EXPECTED_BLOCKS = frozenset(
    {
        BlockRule.OPT_OUT,
        BlockRule.NOT_RUNNING,
        BlockRule.IN_FLIGHT,
        BlockRule.LAUNCH_GRACE,
        BlockRule.DEBOUNCE,
        BlockRule.LIFECYCLE,
        BlockRule.SCHEDULED_EVENT,
    }
)


@dataclass(frozen=True, slots=True)
class Blocked:
    instance_id: str
    kind: ActionKind
    why: str
    rule: BlockRule = BlockRule.LADDER  # a rule not classified needs a human


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole decision of a sweep: what to do, what not to do and why."""

    actions: tuple[Action, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    notes: tuple[str, ...] = ()


# Starts the detail of every outcome that leaves an instance orch stopped still stopped
# (or stopping): the next sweep looks for it and starts the instance (pending_start).
START_PENDING = "start pending"


class OutcomeStatus(str, enum.Enum):
    DONE = "done"
    DRY_RUN = "dry-run"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the call may have run (timeout); re-read, never repeated


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action: Action
    status: OutcomeStatus
    detail: str = ""


class Cause(str, enum.Enum):
    """Why an instance needed an action, as far as orch could tell when it acted."""

    MEMORY = "memory"  # memory exhaustion: by the metric, the agent starving at the top, or OOM lines
    UNKNOWN = "unknown"  # SSH failed and nothing on the host said why
