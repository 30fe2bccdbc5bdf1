"""The executor's journal over the state store: intent before the call, outcome after."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from orchestrator.model import Action, ActionOutcome, OutcomeStatus
from orchestrator.state.store import ActionRecord, ActionStatus, StateStore, action_key

IDEMPOTENCY_WINDOW = timedelta(minutes=10)

_STATUS = {
    OutcomeStatus.DONE: ActionStatus.DONE,
    OutcomeStatus.UNCERTAIN: ActionStatus.DONE,
    OutcomeStatus.FAILED: ActionStatus.FAILED,
    OutcomeStatus.SKIPPED: ActionStatus.SKIPPED,
    OutcomeStatus.DRY_RUN: ActionStatus.DRY_RUN,
}


@dataclass
class StoreJournal:
    store: StateStore
    sweep_id: str
    clock: Callable[[], datetime]
    window: timedelta = IDEMPOTENCY_WINDOW
    keys: dict[str, str] = field(default_factory=dict)

    def begin(self, action: Action, evidence: dict[str, Any]) -> str | None:
        now = self.clock()
        key = action_key(action.instance_id, action.kind, now, self.window)
        record = ActionRecord(
            key=key,
            sweep_id=self.sweep_id,
            instance_id=action.instance_id,
            action=action.kind,
            reason=action.reason,
            status=ActionStatus.INTENT,
            created_at=now,
            updated_at=now,
            evidence=evidence,
        )
        if not self.store.put_action_intent(record):
            existing = self.store.get_action(key)
            if not (existing is not None and existing.sweep_id == self.sweep_id and existing.status is ActionStatus.INTENT):
                who = f" by sweep {existing.sweep_id} ({existing.status.value})" if existing else ""
                return f"already recorded{who} as {key}: not repeated"
            # Our own intent: the write landed, its reply was lost, and the SDK's resend
            # of the conditional put found it. Nothing has acted on it yet: go on.
        self.keys[action.instance_id] = key
        return None

    def finish(self, outcome: ActionOutcome) -> None:
        key = self.keys.get(outcome.action.instance_id)
        if key is None:
            return
        detail = outcome.detail if outcome.status is not OutcomeStatus.UNCERTAIN else "uncertain: " + outcome.detail
        self.store.update_action(key, _STATUS[outcome.status], self.clock(), detail)
