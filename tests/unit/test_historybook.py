"""The sweep's histories: written when changed, never over another writer's update (SQLite, fixed times)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from orchestrator.model import InstanceHistory, VerdictKind
from orchestrator.state.historybook import HistoryBook
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import StateError
from tests.builders import NOW


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "state.db")
    yield s
    s.close()


def book_over(store: SqliteStore, ids: list[str]) -> HistoryBook:
    return HistoryBook(store, lambda: NOW, store.get_histories(ids))


def more_failures(h: InstanceHistory) -> InstanceHistory:
    return replace(h, failed_probes=h.failed_probes + 3, last_verdict=VerdictKind.UNREACHABLE)


def test_a_release_meanwhile_is_kept_and_the_sweeps_observation_applied_over_it(store):
    """`orch release` writes while a sweep works: neither update is lost (issue: overlapping writers)."""
    store.put_histories([InstanceHistory("i-1", quarantined_at=NOW - timedelta(hours=1), quarantine_reason="x", failed_probes=6)])
    book = book_over(store, ["i-1"])
    book.fold("i-1", more_failures)
    released = store.get_histories(["i-1"])["i-1"]
    assert store.put_histories([replace(released, quarantined_at=None, quarantine_reason="", released_at=NOW)]) == frozenset()
    book.write()
    got = store.get_histories(["i-1"])["i-1"]
    assert (got.quarantined_at, got.released_at, got.failed_probes, got.version) == (None, NOW, 9, 3)


def test_a_healthy_fleet_writes_nothing_and_a_new_suspicion_is_written(store):
    book = book_over(store, ["i-1", "i-2"])
    book.fold("i-1", lambda h: replace(h, last_verdict=VerdictKind.HEALTHY, healthy_since=NOW, last_healthy_at=NOW))
    book.fold("i-2", more_failures)
    book.write()
    assert set(store.get_histories(["i-1", "i-2"])) == {"i-2"}


def test_an_unchanged_history_is_rewritten_only_once_a_day(store):
    store.put_histories([InstanceHistory("i-1", rung=1, written_at=NOW - timedelta(hours=2))])
    book = book_over(store, ["i-1"])
    book.fold("i-1", lambda h: replace(h, last_healthy_at=NOW))  # the moment it was last seen healthy is not a change
    book.write()
    assert store.get_histories(["i-1"])["i-1"].version == 1
    late = HistoryBook(store, lambda: NOW + timedelta(days=1), store.get_histories(["i-1"]))
    late.get("i-1")
    late.write()
    assert store.get_histories(["i-1"])["i-1"].version == 2


def test_a_history_that_keeps_moving_is_a_state_error_not_a_silent_overwrite(store):
    class Busy(SqliteStore):
        def put_histories(self, histories):  # another writer always wins
            return frozenset(h.instance_id for h in histories)

    busy = Busy(store.path)
    book = HistoryBook(busy, lambda: NOW, {})
    book.fold("i-1", more_failures)
    with pytest.raises(StateError, match="kept changing"):
        book.write()
