"""The StateStore contract, run against every adapter.

A test module imports these tests and provides two fixtures: ``store`` (a fresh,
empty store) and ``concurrent_store`` (one safe to call from many threads at once).
Every test here could fail against a store that merely looks right: idempotency,
ordering, fencing and contention are asserted, not assumed.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from orchestrator.model import ActionAttempt, ActionKind, Cause, ConsoleEvidence, InstanceHistory, VerdictKind
from orchestrator.state.store import (
    ActionRecord,
    ActionStatus,
    AlertBook,
    AlertRecord,
    Lease,
    LeaseHeld,
    LeaseLost,
    PauseState,
    StateError,
    SweepRecord,
)

UTC = timezone.utc
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
TTL = timedelta(minutes=5)
SCOPE = "123456789012/us-east-1/env=prod"


def full_history(instance_id: str = "i-0123456789abcdef0") -> InstanceHistory:
    """Every field away from its default, one datetime in a non-UTC zone."""
    return InstanceHistory(
        instance_id=instance_id,
        first_failure_at=NOW - timedelta(minutes=7),
        failed_probes=4,
        last_healthy_at=datetime(2026, 1, 2, 4, 0, 0, tzinfo=timezone(timedelta(hours=2))),
        healthy_since=datetime(2026, 1, 2, 4, 0, 0, tzinfo=timezone(timedelta(hours=2))),
        rung=2,
        actions=(
            ActionAttempt(at=NOW - timedelta(hours=3), kind=ActionKind.REBOOT, verified_at=NOW - timedelta(hours=2, minutes=55)),
            ActionAttempt(
                at=NOW - timedelta(hours=1, microseconds=5),
                kind=ActionKind.STOP_START,
                key=f"{instance_id}#stop-start#42",
                cause=Cause.MEMORY,
                verified_at=NOW - timedelta(minutes=55),
                failed_at=NOW - timedelta(minutes=50),
                failure="SSH still failing 10 min after it",
                recurred_at=datetime(2026, 1, 2, 4, 0, 0, tzinfo=timezone(timedelta(hours=2))),
                cycle_minutes=33.5,
                memory_percent=98.25,
                slope_per_min=2.1,
                process="ruby",
                process_rss_kb=15310180,
                proactive=True,
                taken=False,
                requested_by="alice@ops-1",
                forced="forced past breaker (too many unhealthy): INC-42",
                canary=True,
                chronic=True,
                up_minutes=31.5,
                back_unknown=True,
            ),
        ),
        last_action=ActionKind.STOP_START,
        last_action_at=NOW - timedelta(hours=1),
        in_flight_key=f"{instance_id}#stop-start#42",
        quarantined_at=NOW,
        quarantine_reason="3 actions in 6h",
        last_verdict=VerdictKind.UNREACHABLE,
        chronic_since=NOW - timedelta(hours=3),
        released_at=NOW - timedelta(hours=4),
        console=ConsoleEvidence(
            read_at=NOW - timedelta(minutes=6),
            updated_at=NOW - timedelta(minutes=9),
            oom_kill=True,
            hung_task=True,
            process="ruby",
            line="Out of memory: Killed process 25910 (ruby)",
        ),
        written_at=NOW - timedelta(minutes=1),
    )


def action(key: str, instance_id: str = "i-1", created: datetime = NOW, **changes: Any) -> ActionRecord:
    record = ActionRecord(
        key=key,
        sweep_id="sweep-1",
        instance_id=instance_id,
        action=ActionKind.REBOOT,
        reason="unreachable for 240s",
        status=ActionStatus.INTENT,
        created_at=created,
        updated_at=created,
        detail="",
        evidence={"probe": {"outcome": "banner-timeout", "latency_s": 3.5}, "console": ["oom-killer"]},
    )
    return dataclasses.replace(record, **changes)


# -- histories -------------------------------------------------------------------


def test_history_round_trips_every_field(store: Any) -> None:
    history = full_history()
    defaults = InstanceHistory(instance_id=history.instance_id)
    unchanged = [
        f.name
        for f in dataclasses.fields(history)
        if f.name not in ("instance_id", "version") and getattr(history, f.name) == getattr(defaults, f.name)
    ]
    assert not unchanged, f"sample leaves fields at their defaults, so they are not tested: {unchanged}"
    attempt_defaults = ActionAttempt(at=NOW, kind=ActionKind.REBOOT)
    untested = [
        f.name
        for f in dataclasses.fields(ActionAttempt)
        if f.name not in ("at", "kind") and getattr(history.actions[-1], f.name) == getattr(attempt_defaults, f.name)
    ]
    assert not untested, f"the sample action leaves fields at their defaults: {untested}"

    assert store.put_histories([history]) == frozenset()
    got = store.get_histories([history.instance_id])[history.instance_id]

    assert got == dataclasses.replace(history, version=1)  # the store counts the writes
    assert isinstance(got.actions, tuple) and isinstance(got.actions[-1], ActionAttempt)
    assert got.last_action is ActionKind.STOP_START
    assert all(d.tzinfo is not None for d in (got.first_failure_at, got.last_healthy_at, *(a.at for a in got.actions)))


def test_history_with_defaults_round_trips_and_unknown_ids_are_absent(store: Any) -> None:
    bare = InstanceHistory(instance_id="i-bare")
    store.put_histories([bare])

    got = store.get_histories(["i-bare", "i-never-seen", "i-bare"])

    assert got == {"i-bare": dataclasses.replace(bare, version=1)}
    assert got["i-bare"].first_failure_at is None and got["i-bare"].last_action is None


def test_put_histories_overwrites_what_was_read_and_last_duplicate_wins(store: Any) -> None:
    assert store.put_histories([InstanceHistory("i-1", failed_probes=1)]) == frozenset()
    read = store.get_histories(["i-1"])["i-1"]
    assert read.version == 1
    moved = store.put_histories([dataclasses.replace(read, failed_probes=2), dataclasses.replace(read, failed_probes=3)])
    assert moved == frozenset()
    assert store.get_histories(["i-1"])["i-1"] == dataclasses.replace(read, failed_probes=3, version=2)


def test_a_history_that_moved_on_since_it_was_read_is_not_overwritten(store: Any) -> None:
    """Two writers read version 1; the first one's write lands, the second one's is refused: no lost update."""
    store.put_histories([InstanceHistory("i-1", failed_probes=1)])
    first = second = store.get_histories(["i-1"])["i-1"]
    assert store.put_histories([dataclasses.replace(first, rung=1)]) == frozenset()
    assert store.put_histories([dataclasses.replace(second, quarantine_reason="x"), InstanceHistory("i-new")]) == {"i-1"}
    got = store.get_histories(["i-1", "i-new"])
    assert got["i-1"].rung == 1 and got["i-1"].quarantine_reason == "" and got["i-new"].version == 1
    assert store.put_histories([InstanceHistory("i-new")]) == {"i-new"}  # a new one only where none is stored


def test_many_histories_cross_batch_boundaries(store: Any) -> None:
    histories = [InstanceHistory(f"i-{n:05d}", failed_probes=n) for n in range(230)]
    store.put_histories(histories)

    got = store.get_histories(h.instance_id for h in histories)

    assert got == {h.instance_id: dataclasses.replace(h, version=1) for h in histories}
    assert store.get_histories([]) == {}


# -- actions ---------------------------------------------------------------------


def test_action_intent_is_written_once(store: Any) -> None:
    first = action("i-1#reboot#7")
    assert store.put_action_intent(first) is True

    again = action("i-1#reboot#7", reason="redelivered sweep", sweep_id="sweep-2", created=NOW + timedelta(seconds=30))
    assert store.put_action_intent(again) is False

    assert store.get_action("i-1#reboot#7") == first


def test_get_action_of_unknown_key_is_none(store: Any) -> None:
    assert store.get_action("nope") is None


def test_update_action_changes_status_detail_and_evidence(store: Any) -> None:
    store.put_action_intent(action("k1"))
    later = NOW + timedelta(seconds=12)

    store.update_action("k1", ActionStatus.DONE, later, detail="rebooted", evidence={"request_id": "r-1"})
    done = store.get_action("k1")
    assert (done.status, done.updated_at, done.detail, done.evidence) == (
        ActionStatus.DONE,
        later,
        "rebooted",
        {"request_id": "r-1"},
    )
    assert done.created_at == NOW and done.reason == "unreachable for 240s"

    store.update_action("k1", ActionStatus.VERIFIED, later + timedelta(minutes=5))
    verified = store.get_action("k1")
    assert verified.status is ActionStatus.VERIFIED
    assert (verified.detail, verified.evidence) == ("rebooted", {"request_id": "r-1"}), (
        "empty detail / None evidence keep what is stored"
    )


def test_update_of_unknown_action_is_an_error(store: Any) -> None:
    with pytest.raises(StateError, match="no action recorded with key ghost"):
        store.update_action("ghost", ActionStatus.DONE, NOW)
    assert store.get_action("ghost") is None
    assert store.put_action_intent(action("after-the-error")) is True, "a failed write must not wedge the store"


def test_list_actions_newest_first_per_instance_and_limited(store: Any) -> None:
    for n in range(5):
        store.put_action_intent(action(f"i-1#reboot#{n}", "i-1", NOW + timedelta(minutes=n)))
    store.put_action_intent(action("i-2#reboot#0", "i-2", NOW + timedelta(minutes=2, seconds=30)))

    mine = store.list_actions("i-1")
    assert [a.key for a in mine] == [f"i-1#reboot#{n}" for n in (4, 3, 2, 1, 0)]
    assert [a.key for a in store.list_actions("i-1", limit=2)] == ["i-1#reboot#4", "i-1#reboot#3"]
    assert [a.key for a in store.list_actions(limit=4)] == [
        "i-1#reboot#4",
        "i-1#reboot#3",
        "i-2#reboot#0",
        "i-1#reboot#2",
    ]
    assert store.list_actions("i-3") == []
    assert store.list_actions("i-1", limit=0) == []


def test_listed_actions_reflect_updates(store: Any) -> None:
    store.put_action_intent(action("k1"))
    store.update_action("k1", ActionStatus.FAILED, NOW + timedelta(seconds=1), detail="IncorrectInstanceState")

    [listed] = store.list_actions("i-1")
    assert (listed.status, listed.detail) == (ActionStatus.FAILED, "IncorrectInstanceState")


# -- sweeps ----------------------------------------------------------------------


def test_sweeps_newest_first_limited_and_upserted(store: Any) -> None:
    for n in range(3):
        store.put_sweep(SweepRecord(f"s{n}", NOW + timedelta(minutes=5 * n), "heal", SCOPE))
    finished = SweepRecord(
        "s2",
        NOW + timedelta(minutes=10),
        "heal",
        SCOPE,
        finished_at=NOW + timedelta(minutes=11),
        partial=True,
        summary={"actions": 1, "verdicts": {"healthy": 9, "unreachable": 1}},
    )
    store.put_sweep(finished)

    sweeps = store.list_sweeps()
    assert [s.sweep_id for s in sweeps] == ["s2", "s1", "s0"]
    assert sweeps[0] == finished
    assert [s.sweep_id for s in store.list_sweeps(limit=1)] == ["s2"]


# -- pause -----------------------------------------------------------------------


def test_pause_set_and_clear(store: Any) -> None:
    assert store.get_pause() is None
    pause = PauseState(paused_at=NOW, by="alice", reason="region incident")

    store.set_pause(pause)
    assert store.get_pause() == pause

    store.set_pause(None)
    assert store.get_pause() is None
    store.set_pause(None)  # clearing twice is fine
    assert store.get_pause() is None


# -- lease -----------------------------------------------------------------------


def test_acquire_returns_and_stores_the_lease(store: Any) -> None:
    lease = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)

    assert lease == Lease(SCOPE, "sweeper-a", NOW + TTL, 1)
    assert store.get_lease(SCOPE) == lease
    assert store.get_lease("other-scope") is None
    store.check_lease(lease, NOW + TTL - timedelta(microseconds=1))


def test_second_owner_is_told_who_holds_it_and_until_when(store: Any) -> None:
    store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)

    with pytest.raises(LeaseHeld) as caught:
        store.acquire_lease(SCOPE, "sweeper-b", TTL, NOW + TTL - timedelta(seconds=1))

    assert (caught.value.owner, caught.value.expires_at, caught.value.scope) == ("sweeper-a", NOW + TTL, SCOPE)
    assert "sweeper-a" in str(caught.value)
    assert store.get_lease(SCOPE).owner == "sweeper-a"


def test_scopes_are_independent(store: Any) -> None:
    store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    other = store.acquire_lease(SCOPE + ",team=web", "sweeper-b", TTL, NOW)
    assert other.fence == 1


def test_expired_lease_is_taken_over_with_the_next_fence(store: Any) -> None:
    old = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)

    new = store.acquire_lease(SCOPE, "sweeper-b", TTL, NOW + TTL)

    assert (new.owner, new.fence, new.expires_at) == ("sweeper-b", old.fence + 1, NOW + 2 * TTL)
    assert store.get_lease(SCOPE) == new


def test_stale_holder_is_fenced_out_after_takeover(store: Any) -> None:
    stale = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    later = NOW + TTL + timedelta(seconds=1)
    new = store.acquire_lease(SCOPE, "sweeper-b", TTL, later)

    with pytest.raises(LeaseLost, match="taken over by sweeper-b"):
        store.check_lease(stale, later)
    with pytest.raises(LeaseLost, match="taken over by sweeper-b"):
        store.renew_lease(stale, TTL, later)
    with pytest.raises(LeaseLost):
        store.release_lease(stale)

    assert store.get_lease(SCOPE) == new, "the stale holder must not disturb the new one"
    store.check_lease(new, later)


def test_same_owner_with_an_old_fence_is_fenced_out(store: Any) -> None:
    first = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW + TTL)

    with pytest.raises(LeaseLost, match="fence 2, ours 1"):
        store.check_lease(first, NOW + TTL)


def test_renew_extends_and_expiry_without_takeover_still_loses(store: Any) -> None:
    lease = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    halfway = NOW + TTL / 2

    renewed = store.renew_lease(lease, TTL, halfway)
    assert (renewed.expires_at, renewed.fence) == (halfway + TTL, lease.fence)
    assert store.get_lease(SCOPE) == renewed
    store.check_lease(renewed, NOW + TTL + timedelta(seconds=1))  # alive only thanks to the renewal

    expired_at = halfway + TTL
    with pytest.raises(LeaseLost, match="expired"):
        store.check_lease(renewed, expired_at)
    with pytest.raises(LeaseLost, match="expired"):
        store.renew_lease(renewed, TTL, expired_at)


def test_release_then_reacquire_keeps_the_fence_growing(store: Any) -> None:
    first = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    store.release_lease(first)

    assert store.get_lease(SCOPE) is None
    with pytest.raises(LeaseLost, match="released"):
        store.check_lease(first, NOW)

    second = store.acquire_lease(SCOPE, "sweeper-b", TTL, NOW + timedelta(seconds=1))
    assert (second.owner, second.fence) == ("sweeper-b", first.fence + 1)


def test_lease_rejects_bad_arguments(store: Any) -> None:
    with pytest.raises(ValueError, match="positive"):
        store.acquire_lease(SCOPE, "sweeper-a", timedelta(0), NOW)
    with pytest.raises(ValueError, match="naive"):
        store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW.replace(tzinfo=None))
    assert store.get_lease(SCOPE) is None


@pytest.mark.parametrize("previous_holder", [False, True], ids=["free", "expired"])
def test_only_one_of_eight_simultaneous_contenders_wins(concurrent_store: Any, previous_holder: bool) -> None:
    """Called from the main thread, set-up is not a contender; the eight workers are."""
    contenders = 8
    start = NOW
    if previous_holder:
        concurrent_store.acquire_lease(SCOPE, "crashed-sweeper", TTL, NOW)
        start = NOW + TTL
    barrier = threading.Barrier(contenders)
    won: list[Lease] = []
    held: list[LeaseHeld] = []
    other: list[BaseException] = []
    lock = threading.Lock()

    def contend(n: int) -> None:
        barrier.wait()
        try:
            lease = concurrent_store.acquire_lease(SCOPE, f"sweeper-{n}", TTL, start)
        except LeaseHeld as exc:
            with lock:
                held.append(exc)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            with lock:
                other.append(exc)
        else:
            with lock:
                won.append(lease)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not other, other
    assert len(won) == 1, won
    assert len(held) == contenders - 1
    assert {exc.owner for exc in held} == {won[0].owner}
    assert concurrent_store.get_lease(SCOPE) == won[0]
    assert won[0].fence == (2 if previous_holder else 1)


def test_alerts_round_trip_per_scope(store: Any) -> None:
    assert store.get_alerts(SCOPE) == AlertBook(SCOPE)
    book = AlertBook(SCOPE, (AlertRecord("fleet:breaker", NOW, "d1", "too many unhealthy"), AlertRecord("quarantine:i-1", NOW - TTL)))
    store.put_alerts(book)
    assert store.get_alerts(SCOPE) == book
    assert store.get_alerts("other/scope") == AlertBook("other/scope")
    store.put_alerts(AlertBook(SCOPE))
    assert store.get_alerts(SCOPE).records == ()


def test_actions_since_gives_recent_actions_oldest_first_and_filters_by_status(store: Any) -> None:
    store.put_action_intent(action("k-old", created=NOW - timedelta(hours=30)))
    store.put_action_intent(action("k-1", created=NOW - timedelta(minutes=20)))
    store.put_action_intent(action("k-2", instance_id="i-2", created=NOW - timedelta(minutes=10)))
    store.update_action("k-1", ActionStatus.DONE, NOW - timedelta(minutes=19), "RebootInstances accepted")
    assert [r.key for r in store.actions_since(NOW - timedelta(hours=24))] == ["k-1", "k-2"]
    assert [r.key for r in store.actions_since(NOW - timedelta(hours=24), ActionStatus.INTENT)] == ["k-2"]


def test_a_live_lease_is_taken_over_only_as_exactly_the_one_judged_dead(store: Any) -> None:
    held = store.acquire_lease(SCOPE, "host:4242:abcd", TTL, NOW)
    with pytest.raises(LeaseHeld) as caught:
        store.acquire_lease(SCOPE, "host:9:efgh", TTL, NOW)
    assert caught.value.fence == held.fence
    stale = dataclasses.replace(held, fence=held.fence - 1)
    with pytest.raises(LeaseHeld):
        store.acquire_lease(SCOPE, "host:9:efgh", TTL, NOW, take_over=stale)  # not the lease judged dead
    taken = store.acquire_lease(SCOPE, "host:9:efgh", TTL, NOW, take_over=held)
    assert taken.fence == held.fence + 1 and store.get_lease(SCOPE).owner == "host:9:efgh"
    with pytest.raises(LeaseLost):
        store.check_lease(held, NOW)  # the dead one, were it to wake, is fenced off
