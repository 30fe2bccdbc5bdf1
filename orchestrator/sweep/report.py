"""What one sweep found and did: the report the CLI, the Lambda and the sweep record are made from."""

from __future__ import annotations

import enum
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from orchestrator.alerting import webhook
from orchestrator.decide.manual import ManualRequest
from orchestrator.decide.patterns import ChronicPattern
from orchestrator.model import (
    ActionOutcome,
    Facts,
    InstanceHistory,
    Plan,
    Verdict,
)


class Mode(str, enum.Enum):
    SCAN = "scan"  # observe and diagnose only; never plans an action
    HEAL = "heal"


@dataclass
class SweepReport:
    sweep_id: str
    mode: Mode
    dry_run: bool
    started_at: datetime
    facts: list[Facts] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    plan: Plan = field(default_factory=Plan)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    metrics_requested: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    partial: bool = False
    finished_at: datetime | None = None
    sweep_number: int = 0  # counts sweeps in this store, for the memory cadence
    memory_full_read: bool = True
    evidence: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # instance -> summary, as the fleet captured it
    histories: dict[str, InstanceHistory] = field(default_factory=dict)  # after this sweep
    patterns: list[ChronicPattern] = field(default_factory=list)  # chronic conditions, grouped
    message: tuple[str, str] | None = None  # what was told (subject, body), if anything
    record_error: str | None = None  # the store failed after actions ran: they are in this report only
    deliveries: list[webhook.Delivery] = field(default_factory=list)  # what each webhook target made of the news
    manual: ManualRequest | None = None  # a person's `orch reboot` / `orch stop-start`

    @property
    def delivery_failed(self) -> bool:
        return any(not d.delivered for d in self.deliveries)

    @property
    def timer(self) -> _Timer:
        return _Timer(self.timings)

    def verdict_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(v.kind.value for v in self.verdicts).items()))

    def summary(self) -> dict[str, Any]:
        """The JSON shape shared by `orch heal --output json` and the Lambda's return value."""
        outcome_by_id = {o.action.instance_id: o for o in self.outcomes}
        return {
            "sweep_id": self.sweep_id,
            "mode": self.mode.value,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "partial": self.partial,
            "record_error": self.record_error,
            "instances": len(self.facts),
            "verdicts": self.verdict_counts(),
            "actions": [
                {
                    "instance_id": a.instance_id,
                    "action": a.kind.value,
                    "reason": a.reason,
                    "outcome": outcome_by_id[a.instance_id].status.value if a.instance_id in outcome_by_id else "not-run",
                    "detail": outcome_by_id[a.instance_id].detail if a.instance_id in outcome_by_id else "",
                    "evidence": self.evidence.get(a.instance_id),
                }
                for a in self.plan.actions
            ],
            "blocked": [
                {"instance_id": b.instance_id, "action": b.kind.value, "why": b.why, "rule": b.rule.value} for b in self.plan.blocked
            ],
            "chronic": [
                {"instances": list(p.members), "shared": dict(p.shared), "since": p.since.isoformat(), "text": p.describe(False)}
                for p in self.patterns
            ],
            "quarantined": {i: h.quarantine_reason for i, h in sorted(self.histories.items()) if h.quarantined_at is not None},
            "notes": list(self.plan.notes) + self.notes,
            "manual": None
            if self.manual is None
            else {
                "instance_id": self.manual.instance_id,
                "action": self.manual.kind.value,
                "requested_by": self.manual.requested_by,
                "force_reason": self.manual.force_reason,
            },
            "notified": {"subject": self.message[0] if self.message else None, "webhooks": [d.as_dict() for d in self.deliveries]},
            "api_calls": self.api_calls,
            "api_calls_total": sum(self.api_calls.values()),
            "metrics_requested": self.metrics_requested,
            "memory_full_read": self.memory_full_read,
            "sweep_number": self.sweep_number,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass
class _Timer:
    timings: dict[str, float]

    def __call__(self, name: str) -> "_Phase":
        return _Phase(self.timings, name)


@dataclass
class _Phase:
    timings: dict[str, float]
    name: str
    start: float = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.start
