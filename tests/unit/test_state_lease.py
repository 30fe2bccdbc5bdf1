"""LeaseKeeper over a real SqliteStore with a fake clock and a fake sleep."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from orchestrator.state.lease import LeaseKeeper
from orchestrator.state.sqlite import SqliteStore
from orchestrator.state.store import Lease, LeaseHeld, LeaseLost, StateError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
TTL = timedelta(minutes=4)
SCOPE = "acct/us-east-1/env=prod"


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Recorder:
    """Wraps a store and counts the lease calls made through it."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.store, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    made = SqliteStore(tmp_path / "state.db")
    yield made
    made.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def keeper(store: Any, clock: Clock, owner: str, **kwargs: Any) -> LeaseKeeper:
    return LeaseKeeper(store, SCOPE, ttl=TTL, owner=owner, clock=clock, **kwargs)


def test_with_block_acquires_and_releases(store: SqliteStore, clock: Clock) -> None:
    with keeper(store, clock, "a") as held:
        assert store.get_lease(SCOPE) == Lease(SCOPE, "a", NOW + TTL, 1)
        held.check()
    assert store.get_lease(SCOPE) is None
    assert not held.held


def test_release_happens_even_when_the_block_fails(store: SqliteStore, clock: Clock) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with keeper(store, clock, "a"):
            raise RuntimeError("boom")
    assert store.get_lease(SCOPE) is None


def test_a_second_sweep_is_told_who_holds_the_lease(store: SqliteStore, clock: Clock) -> None:
    with keeper(store, clock, "a"):
        with pytest.raises(LeaseHeld) as caught:
            with keeper(store, clock, "b"):
                pytest.fail("must not enter while another sweep holds the lease")
    assert (caught.value.owner, caught.value.expires_at) == ("a", NOW + TTL)


def test_check_renews_only_after_half_the_ttl(store: SqliteStore, clock: Clock) -> None:
    recorder = Recorder(store)
    with keeper(recorder, clock, "a") as held:
        clock.advance(TTL.total_seconds() / 2 - 1)
        held.check()
        assert held.lease.expires_at == NOW + TTL
        assert recorder.calls[-1] == "check_lease"

        clock.advance(2)
        held.check()
        assert held.lease.expires_at == clock.now + TTL
        assert recorder.calls[-1] == "renew_lease"
        assert store.get_lease(SCOPE) == held.lease


def test_a_taken_over_sweep_stops_and_exits_quietly(store: SqliteStore, clock: Clock) -> None:
    slow = keeper(store, clock, "slow")
    with slow:
        clock.advance(TTL.total_seconds() + 1)
        with keeper(store, clock, "fast") as fast:
            with pytest.raises(LeaseLost):
                slow.check()
            with pytest.raises(LeaseLost, match="not holding"):
                slow.check()
            assert store.get_lease(SCOPE) == fast.lease
    assert store.get_lease(SCOPE) is None


def test_release_failure_is_logged_not_raised(
    store: SqliteStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenRelease(Recorder):
        def release_lease(self, lease: Lease) -> None:
            raise StateError("table gone")

    with caplog.at_level(logging.WARNING, logger="orchestrator.state.lease"):
        with keeper(BrokenRelease(store), clock, "a"):
            pass
    assert "could not release the lease" in caplog.text and "table gone" in caplog.text


def test_acquire_waits_for_an_expiring_lease(store: SqliteStore, clock: Clock) -> None:
    store.acquire_lease(SCOPE, "crashed", TTL, NOW)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    waiting = keeper(store, clock, "patient", poll_seconds=60, sleep=sleep)
    lease = waiting.acquire(wait_seconds=600)

    assert (lease.owner, lease.fence) == ("patient", 2)
    assert sleeps == [60.0] * 4  # expired at +240s: tried at 0, 60, 120, 180, won at 240


def test_acquire_gives_up_after_the_wait(store: SqliteStore, clock: Clock) -> None:
    store.acquire_lease(SCOPE, "busy", timedelta(hours=1), NOW)
    sleeps: list[float] = []

    with pytest.raises(LeaseHeld, match="busy"):
        keeper(store, clock, "impatient", poll_seconds=5, sleep=sleeps.append).acquire(wait_seconds=12)
    assert sleeps == [5.0, 5.0, 5.0]


def test_without_a_wait_acquire_tries_once(store: SqliteStore, clock: Clock) -> None:
    store.acquire_lease(SCOPE, "busy", TTL, NOW)
    sleeps: list[float] = []
    with pytest.raises(LeaseHeld):
        keeper(store, clock, "once", sleep=sleeps.append).acquire()
    assert sleeps == []


def test_default_owners_are_unique(store: SqliteStore) -> None:
    assert LeaseKeeper(store, SCOPE).owner != LeaseKeeper(store, SCOPE).owner


def finished_pid() -> int:
    """The pid of a process that has exited (and been reaped): provably not running."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_a_lease_whose_holder_died_on_this_host_is_taken_over_at_once(store: SqliteStore, clock: Clock) -> None:
    """orch heal killed with SIGKILL holds its lease for minutes; its process is provably gone."""
    import socket

    dead_owner = f"{socket.gethostname()}:{finished_pid()}:deadbeef"
    held = store.acquire_lease("scope", dead_owner, timedelta(minutes=5), clock())
    keeper = LeaseKeeper(store, "scope", clock=clock)
    lease = keeper.acquire()
    assert lease.fence == held.fence + 1 and store.get_lease("scope").owner == keeper.owner


@pytest.mark.parametrize("owner", ["elsewhere:1234:abcd", "lambda-1", "{host}:{me}:abcd"])
def test_a_holder_that_may_be_alive_is_waited_for(store: SqliteStore, clock: Clock, owner: str) -> None:
    """Another host's holder, an owner of another form, or a running process: never judged dead."""
    import os
    import socket

    store.acquire_lease("scope", owner.format(host=socket.gethostname(), me=os.getppid()), timedelta(minutes=5), clock())
    with pytest.raises(LeaseHeld):
        LeaseKeeper(store, "scope", clock=clock).acquire()
