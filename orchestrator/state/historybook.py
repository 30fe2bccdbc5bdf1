"""A sweep's histories: what it read, what it made of them, and writing that without losing an update.

Histories are written as the sweep learns, not once at its end: each action's history
right after its outcome (so a crash or a store that fails later loses nothing the sweep
did), the rest at the end. Each write is conditional on the version that was read
(``StateStore.put_histories``); when another writer got there first (``orch release``
meanwhile, a second sweep on the same store), the book re-reads that history and
re-applies, in order, what this sweep learned of it: nobody's update is lost.

Only histories worth storing are written: one that changed (the moment it was last seen
healthy aside), one not stored for a day, never a blank one (a healthy instance orch never
had to suspect has nothing to remember), so a healthy fleet costs no write.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import reduce
from typing import Callable, Iterable

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from orchestrator.model import InstanceHistory
from orchestrator.state.store import StateError, StateStore

Fold = Callable[[InstanceHistory], InstanceHistory]
REFRESH = timedelta(days=1)  # a stored history is rewritten at least this often (DynamoDB's TTL counts from the last write)
ATTEMPTS = 4


class _Moved(Exception):
    def __init__(self, ids: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(ids)))
        self.ids = ids


def _comparable(h: InstanceHistory) -> InstanceHistory:
    return replace(h, last_healthy_at=None, written_at=None, version=0)


@dataclass
class HistoryBook:
    store: StateStore
    clock: Callable[[], datetime]
    read: dict[str, InstanceHistory]  # as the store had them (absent: none stored)
    current: dict[str, InstanceHistory] = field(default_factory=dict)
    folds: dict[str, list[Fold]] = field(default_factory=dict)

    def get(self, instance_id: str) -> InstanceHistory:
        if instance_id not in self.current:
            self.current[instance_id] = self.read.get(instance_id) or InstanceHistory(instance_id)
        return self.current[instance_id]

    def fold(self, instance_id: str, step: Fold) -> InstanceHistory:
        """Apply what the sweep learned; kept so it can be applied again over a newer history."""
        self.current[instance_id] = step(self.get(instance_id))
        self.folds.setdefault(instance_id, []).append(step)
        return self.current[instance_id]

    def worth_writing(self, instance_id: str, now: datetime) -> bool:
        new = self.get(instance_id)
        old = self.read.get(instance_id)
        if old is None:
            return not new.blank
        stale = old.written_at is None or now - old.written_at >= REFRESH
        return stale or _comparable(new) != _comparable(old)

    def write(self, instance_ids: Iterable[str] | None = None) -> None:
        """Store what changed; raises StateError when the store fails or a history keeps moving."""
        now = self.clock()
        ids = sorted(set(self.current if instance_ids is None else instance_ids))
        pending = {i: replace(self.get(i), written_at=now) for i in ids if self.worth_writing(i, now)}
        if not pending:
            return
        retrying = Retrying(stop=stop_after_attempt(ATTEMPTS), retry=retry_if_exception_type(_Moved), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    self._write_once(pending, now)
        except _Moved as exc:
            raise StateError(f"the histories of {exc} kept changing under this sweep ({ATTEMPTS} tries): not written") from None

    def _write_once(self, pending: dict[str, InstanceHistory], now: datetime) -> None:
        moved = self.store.put_histories(pending.values())
        for instance_id, history in list(pending.items()):
            if instance_id not in moved:
                stored = replace(history, version=history.version + 1)
                self.read[instance_id] = self.current[instance_id] = stored
                del pending[instance_id]
        if not moved:
            return
        fresh = self.store.get_histories(moved)
        for instance_id in moved:
            theirs = fresh.get(instance_id)
            mine = pending[instance_id]
            if theirs is not None and _comparable(theirs) == _comparable(mine):
                # Our own write landed and its reply was lost: the SDK's resend found it.
                self.read[instance_id] = self.current[instance_id] = theirs
                del pending[instance_id]
                continue
            base = theirs or InstanceHistory(instance_id)
            self.read[instance_id] = base
            redone = reduce(lambda h, step: step(h), self.folds.get(instance_id, []), base)
            self.current[instance_id] = redone
            pending[instance_id] = replace(redone, written_at=now)
        if pending:
            raise _Moved(frozenset(pending))
