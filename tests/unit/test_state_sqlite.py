"""SqliteStore: the shared StateStore contract plus what only a local file can get wrong."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterator

import pytest

from orchestrator.model import InstanceHistory
from orchestrator.state.sqlite import SCHEMA_VERSION, SqliteStore
from orchestrator.state.store import LeaseHeld, StateError
from tests.state_contract import *  # noqa: F403 - the contract suite runs here against SQLite
from tests.state_contract import NOW, SCOPE, TTL


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    made = SqliteStore(tmp_path / "nested" / "dir" / "state.db")
    yield made
    made.close()


@pytest.fixture
def concurrent_store(store: SqliteStore) -> SqliteStore:
    return store


def test_parent_directories_are_created_and_wal_is_on(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    SqliteStore(path).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    first.put_histories([InstanceHistory("i-1", failed_probes=3)])
    first.close()

    second = SqliteStore(str(path))
    assert second.get_histories(["i-1"])["i-1"].failed_probes == 3
    second.close()


def test_a_path_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    path = blocker / "state.db"

    with pytest.raises(StateError) as caught:
        SqliteStore(path)

    assert str(path) in str(caught.value)
    assert "writable" in str(caught.value)


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite, just some bytes that happen to be here " * 100)

    with pytest.raises(StateError) as caught:
        SqliteStore(path)

    message = str(caught.value)
    assert str(path) in message
    assert "move it aside" in message


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StateError, match="newer orch"):
        SqliteStore(path)


def test_a_closed_store_refuses_work(store: SqliteStore) -> None:
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.get_pause()


def test_separate_stores_on_one_file_contend_like_processes(tmp_path: Path) -> None:
    """Eight stores, eight connections, one file: SQLite's lock, not ours, picks the winner."""
    path = tmp_path / "state.db"
    stores = [SqliteStore(path) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[object] = []
    lock = threading.Lock()

    def contend(n: int) -> None:
        barrier.wait()
        try:
            result: object = stores[n].acquire_lease(SCOPE, f"process-{n}", TTL, NOW)
        except Exception as exc:  # noqa: BLE001 - classified below
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for made in stores:
        made.close()

    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1
    assert all(isinstance(o, LeaseHeld) for o in outcomes if o not in winners), outcomes
