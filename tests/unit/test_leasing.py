"""The lease logic in state/leasing.py over the smallest adapter: a dict and four methods.

The SQLite and DynamoDB adapters run the full contract (tests/state_contract.py); this
shows the base alone decides held / lost / taken over, whatever stores the rows.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.state.leasing import LeaseBase, LeaseConflict
from orchestrator.state.store import Lease, LeaseHeld, LeaseLost

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
TTL = timedelta(minutes=5)


class DictLeases(LeaseBase):
    def __init__(self) -> None:
        self.rows: dict[str, Lease] = {}
        self.before_write: list[Lease] = []  # rows another writer lands between our read and write

    def _read_lease(self, scope: str) -> Lease | None:
        return self.rows.get(scope)

    def _put_lease(self, lease: Lease, read: Lease | None, now: datetime, take_over: bool) -> None:
        for other in self.before_write:
            self.rows[other.scope] = other
        self.before_write.clear()
        current = self.rows.get(lease.scope)
        if read is None:
            ok = current is None
        elif current is None:
            ok = False
        elif take_over:
            ok = (current.owner, current.fence) == (read.owner, read.fence)
        else:
            ok = current.fence == read.fence and current.expires_at <= now
        if not ok:
            raise LeaseConflict()
        self.rows[lease.scope] = lease

    def _extend_lease(self, lease: Lease, expires_at: datetime, now: datetime) -> None:
        current = self.rows.get(lease.scope)
        if current is None or (current.owner, current.fence) != (lease.owner, lease.fence) or current.expires_at <= now:
            raise LeaseConflict()
        self.rows[lease.scope] = replace(current, expires_at=expires_at)

    def _clear_lease(self, lease: Lease) -> None:
        current = self.rows.get(lease.scope)
        if current is None or not current.owner or (current.owner, current.fence) != (lease.owner, lease.fence):
            raise LeaseConflict()
        self.rows[lease.scope] = replace(current, owner="", expires_at=datetime(1970, 1, 1, tzinfo=timezone.utc))


def test_the_fence_grows_across_holders_and_releases():
    store = DictLeases()
    first = store.acquire_lease("s", "a", TTL, NOW)
    store.release_lease(first)
    assert store.get_lease("s") is None
    second = store.acquire_lease("s", "b", TTL, NOW)
    assert (first.fence, second.fence) == (1, 2)


def test_a_live_lease_is_held_and_an_expired_one_taken():
    store = DictLeases()
    store.acquire_lease("s", "a", TTL, NOW)
    with pytest.raises(LeaseHeld) as held:
        store.acquire_lease("s", "b", TTL, NOW + timedelta(minutes=1))
    assert held.value.owner == "a"
    taken = store.acquire_lease("s", "b", TTL, NOW + TTL)
    assert (taken.owner, taken.fence) == ("b", 2)


def test_losing_the_race_names_the_winner():
    store = DictLeases()
    store.before_write.append(Lease("s", "winner", NOW + TTL, 1))
    with pytest.raises(LeaseHeld) as held:
        store.acquire_lease("s", "loser", TTL, NOW)
    assert (held.value.owner, held.value.fence) == ("winner", 1)


def test_a_dead_holders_exact_lease_may_be_taken_before_it_expires():
    store = DictLeases()
    dead = store.acquire_lease("s", "a", TTL, NOW)
    with pytest.raises(LeaseHeld):
        store.acquire_lease("s", "b", TTL, NOW, take_over=replace(dead, fence=9))
    assert store.acquire_lease("s", "b", TTL, NOW, take_over=dead).fence == 2


def test_renew_check_and_release_after_a_take_over_say_lost():
    store = DictLeases()
    mine = store.acquire_lease("s", "a", TTL, NOW)
    assert store.renew_lease(mine, TTL, NOW + timedelta(minutes=4)).expires_at == NOW + timedelta(minutes=9)
    store.acquire_lease("s", "b", TTL, NOW + timedelta(minutes=10))
    with pytest.raises(LeaseLost, match="taken over by b"):
        store.renew_lease(mine, TTL, NOW + timedelta(minutes=11))
    with pytest.raises(LeaseLost, match="taken over by b"):
        store.check_lease(mine, NOW + timedelta(minutes=11))
    with pytest.raises(LeaseLost, match="taken over by b"):
        store.release_lease(mine)
