"""Frozen domain types shared by every step of a sweep.

The pure steps (diagnose, plan) take and return only these types, so they can be
tested with literal values and fixed timestamps; the adapters translate boto3's
dictionaries into them at the edge and nothing else sees a boto3 response.

One family of types a module, each importable from here (``from orchestrator.model
import Facts`` is the one spelling the code uses): ``facts`` (what observe saw),
``verdict`` (what diagnose concluded), ``actions`` (the plan and what came of it),
``history`` (what orch remembers between sweeps).
"""

from orchestrator.model.actions import (
    START_PENDING,
    Action,
    ActionKind,
    ActionOutcome,
    Blocked,
    BlockRule,
    Cause,
    OutcomeStatus,
    Plan,
)
from orchestrator.model.facts import (
    CheckState,
    ConsoleEvidence,
    Facts,
    Instance,
    MemorySeries,
    ProbeAttempt,
    ProbeOutcome,
    ProbeResult,
    ScheduledEvent,
    StatusChecks,
)
from orchestrator.model.history import ActionAttempt, ActionRecord, ActionStatus, InstanceHistory, PauseState
from orchestrator.model.verdict import Corroboration, EvidencePath, Signal, Verdict, VerdictKind

__all__ = [
    "START_PENDING",
    "Action",
    "ActionAttempt",
    "ActionKind",
    "ActionOutcome",
    "ActionRecord",
    "ActionStatus",
    "Blocked",
    "BlockRule",
    "Cause",
    "CheckState",
    "ConsoleEvidence",
    "Corroboration",
    "EvidencePath",
    "Facts",
    "Instance",
    "InstanceHistory",
    "MemorySeries",
    "OutcomeStatus",
    "PauseState",
    "Plan",
    "ProbeAttempt",
    "ProbeOutcome",
    "ProbeResult",
    "ScheduledEvent",
    "Signal",
    "StatusChecks",
    "Verdict",
    "VerdictKind",
]
