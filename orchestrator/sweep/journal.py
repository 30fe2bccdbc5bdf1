"""The executor's journal with each action's history written the moment its outcome is known, and the recovery of intents whose sweep died."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from orchestrator.config import Settings
from orchestrator.decide import history as history_step
from orchestrator.model import (
    Action,
    ActionOutcome,
    Facts,
    InstanceHistory,
    OutcomeStatus,
)
from orchestrator.state.historybook import HistoryBook
from orchestrator.state.journal import StoreJournal
from orchestrator.state.store import ActionStatus, StateError, StateStore

TAKEN_OR_FAILED = frozenset({OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN, OutcomeStatus.FAILED})


ACTED = frozenset({OutcomeStatus.DONE, OutcomeStatus.UNCERTAIN})  # AWS may have changed the instance


@dataclass
class RecordingJournal:
    """The executor's journal, with each action's history written the moment its outcome is known.

    A process can die between any two lines: the intent is written before the call, the
    outcome and the history right after it, so at most the outcome of the one action in
    flight is unknown, and the next sweep recovers it (``recover_intents``). When the
    store stops taking records, no new action is started (``broken`` is what the gate
    asks) and every outcome stays in the sweep's report, so what was done is still said.
    """

    inner: StoreJournal
    book: HistoryBook
    acted: Callable[[ActionOutcome, str], Callable[[InstanceHistory], InstanceHistory]]
    broken: str | None = None

    @property
    def keys(self) -> dict[str, str]:
        return self.inner.keys

    def begin(self, action: Action, evidence: dict[str, Any]) -> str | None:
        if self.broken:
            return f"the state store stopped taking records ({self.broken}): not started"
        try:
            return self.inner.begin(action, evidence)
        except StateError as exc:
            self.broken = str(exc)
            return f"its intent could not be recorded ({exc}): not started"

    def finish(self, outcome: ActionOutcome) -> None:
        iid = outcome.action.instance_id
        try:
            self.inner.finish(outcome)
        except StateError as exc:
            self.broken = self.broken or str(exc)
        key = self.inner.keys.get(iid)
        if key is None:
            return
        self.book.fold(iid, self.acted(outcome, key))
        try:
            self.book.write([iid])
        except StateError as exc:
            self.broken = self.broken or str(exc)


def recover_intents(
    store: StateStore, book: HistoryBook, facts: list[Facts], sweep_id: str, now: datetime, settings: Settings
) -> list[str]:
    """Actions of this fleet that a sweep recorded but whose history it never wrote (it died).

    An intent with no outcome is an action possibly taken at its time: recorded as such
    and folded in flight. An outcome recorded whose history write was lost is folded in
    too. Only this fleet's instances: another VPC's sweep on the same store may be acting
    right now; this fleet's own sweeps cannot be, since this one holds its lease.
    """
    ours = {f.instance.instance_id for f in facts}
    records = [
        r
        for r in store.actions_since(now - history_step.retention(settings))
        if r.instance_id in ours and r.sweep_id != sweep_id and r.status in (ActionStatus.INTENT, ActionStatus.DONE)
    ]
    missing = [r for r in records if all(a.key != r.key for a in book.get(r.instance_id).actions)]
    dangling = [r for r in records if r.status is ActionStatus.INTENT]
    for record in missing:
        book.fold(record.instance_id, functools.partial(history_step.recovered, key=record.key, kind=record.action, at=record.created_at))
    book.write(r.instance_id for r in missing)
    for record in dangling:
        store.update_action(
            record.key,
            ActionStatus.DONE,
            now,
            f"uncertain: sweep {record.sweep_id} ended before recording an outcome; sweep {sweep_id} treats it as taken at "
            f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC (in flight, counted by the budgets, verified on a later sweep)",
        )
    notes = []
    if dangling:
        which = ", ".join(f"{r.action.value} of {r.instance_id} at {r.created_at:%H:%M:%S} UTC" for r in dangling[:10])
        notes.append(f"recovered {len(dangling)} action(s) whose sweep ended before recording an outcome ({which}): treated as taken then")
    lost = [r for r in missing if r.status is ActionStatus.DONE]
    if lost:
        which = ", ".join(f"{r.action.value} of {r.instance_id}" for r in lost[:10])
        notes.append(f"{len(lost)} action(s) recorded done were missing from their instance's history ({which}): added")
    return notes
