"""DynamoStore under moto: the shared StateStore contract plus DynamoDB's own failure modes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any, Callable, Iterator

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from orchestrator.aws import Clients
from orchestrator.model import InstanceHistory
from orchestrator.state.dynamodb import (
    PERMISSIONS,
    SETUP_PERMISSIONS,
    TTL_ATTRIBUTE,
    DynamoStore,
    create_table,
)
from orchestrator.state.dynamodb_calls import BATCH_ATTEMPTS
from orchestrator.state.store import (
    ActionStatus,
    LeaseHeld,
    PauseState,
    StateError,
    SweepRecord,
)
from tests.state_contract import *  # noqa: F403 - the contract suite runs here against DynamoDB
from tests.state_contract import NOW, SCOPE, TTL, action

TABLE = "orch-state"


@pytest.fixture
def clients() -> Iterator[Clients]:
    with mock_aws():
        yield Clients()


@pytest.fixture
def client(clients: Clients) -> Any:
    made = clients.client("dynamodb")
    create_table(made, TABLE)
    return made


@pytest.fixture
def store(client: Any) -> DynamoStore:
    return DynamoStore(client, TABLE, clock=lambda: NOW, sleep=lambda _: None)


class Serialized:
    """Makes each call atomic, as each DynamoDB request is; moto's conditional put is not.

    Threads still interleave between calls, which is where a read-then-write lease
    could race, so the contention test still tests the adapter, not this lock.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name.startswith("get_paginator"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return target(*args, **kwargs)

        return call


class ReadTogether(Serialized):
    """Holds every worker thread after its first read until all have read: the worst interleaving.

    Every contender then believes the lease is free, so only the conditional write
    can keep more than one of them from winning.
    """

    def __init__(self, client: Any, parties: int) -> None:
        super().__init__(client)
        self._barrier = threading.Barrier(parties)
        self._seen = threading.local()

    def get_item(self, **kwargs: Any) -> Any:
        with self._lock:
            response = self._client.get_item(**kwargs)
        contender = threading.current_thread() is not threading.main_thread()
        if contender and not getattr(self._seen, "read", False):
            self._seen.read = True
            self._barrier.wait(timeout=30)  # a bound against hanging, not a timing assertion
        return response


@pytest.fixture
def concurrent_store(client: Any) -> DynamoStore:
    return DynamoStore(ReadTogether(client, parties=8), TABLE, clock=lambda: NOW)


class Faulty:
    """Delegates to the real (mocked) client, rewriting chosen operations' results."""

    def __init__(self, client: Any, **overrides: Callable[..., Any]) -> None:
        self._client = client
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._client, name)


def raw_item(client: Any, pk: str, sk: str = "-") -> dict[str, Any]:
    return client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]


# -- table and layout --------------------------------------------------------------


def test_create_table_is_idempotent_and_enables_ttl(client: Any) -> None:
    create_table(client, TABLE)

    ttl = client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)
    table = client.describe_table(TableName=TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"] for k in table["KeySchema"]} == {"pk", "sk"}


def test_setup_permissions_name_exactly_the_calls_create_table_makes(clients: Clients) -> None:
    create_table(clients.client("dynamodb"), "fresh-table")

    assert {name.replace("dynamodb.", "dynamodb:") for name in clients.counter.snapshot()} == SETUP_PERMISSIONS


def test_records_expire_but_leases_never_do(store: DynamoStore, client: Any) -> None:
    store.put_action_intent(action("k1"))
    store.put_histories([InstanceHistory("i-1")])
    store.put_sweep(SweepRecord("s1", NOW, "heal", SCOPE))
    store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)

    def expiry(pk: str, sk: str = "-") -> int:
        return int(raw_item(client, pk, sk)[TTL_ATTRIBUTE]["N"])

    assert expiry("ACTION#k1") == int((NOW + timedelta(days=90)).timestamp())
    assert expiry("SWEEP", f"{NOW.isoformat(timespec='microseconds')}#s1") == int(
        (NOW + timedelta(days=90)).timestamp()
    )
    assert expiry("HIST#i-1") == int((NOW + timedelta(days=30)).timestamp())
    assert TTL_ATTRIBUTE not in raw_item(client, f"LEASE#{SCOPE}"), "a TTL-deleted lease would reset its fence"


def test_permissions_name_exactly_the_calls_made(clients: Clients, client: Any) -> None:
    calls_before = set(clients.counter.snapshot())
    store = DynamoStore(client, TABLE, clock=lambda: NOW)
    store.put_histories([InstanceHistory("i-1")])
    store.get_histories(["i-1"])
    store.put_action_intent(action("k1"))
    store.update_action("k1", ActionStatus.DONE, NOW)
    store.get_action("k1")
    store.list_actions("i-1")
    store.put_sweep(SweepRecord("s1", NOW, "heal", SCOPE))
    store.list_sweeps()
    lease = store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    lease = store.renew_lease(lease, TTL, NOW)
    store.check_lease(lease, NOW)
    store.release_lease(lease)
    store.set_pause(PauseState(NOW, "alice"))
    store.get_pause()
    store.set_pause(None)

    made = {name.replace("dynamodb.", "dynamodb:") for name in set(clients.counter.snapshot()) - calls_before}
    assert made == PERMISSIONS


# -- errors ----------------------------------------------------------------------


def test_a_missing_table_says_so_and_how_to_create_it(clients: Clients) -> None:
    store = DynamoStore(clients.client("dynamodb"), "no-such-table")

    with pytest.raises(StateError) as caught:
        store.get_pause()

    message = str(caught.value)
    assert "no-such-table does not exist" in message
    assert "create_table" in message and "cfn/" in message
    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.__cause__.response["Error"]["Code"] == "ResourceNotFoundException"


def test_access_denied_names_the_missing_permission(client: Any) -> None:
    def deny(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "PutItem")

    store = DynamoStore(Faulty(client, put_item=deny), TABLE)

    with pytest.raises(StateError, match="dynamodb:PutItem"):
        store.put_action_intent(action("k1"))


def test_unprocessed_keys_are_fetched_again(client: Any) -> None:
    real = client.batch_get_item
    calls: list[int] = []

    def half_processed(RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        keys = RequestItems[TABLE]["Keys"]
        calls.append(len(keys))
        if len(calls) > 1:
            return real(RequestItems=RequestItems)
        done, left = keys[: len(keys) // 2], keys[len(keys) // 2 :]
        response = real(RequestItems={TABLE: {**RequestItems[TABLE], "Keys": done}})
        response["UnprocessedKeys"] = {TABLE: {**RequestItems[TABLE], "Keys": left}}
        return response

    seeded = DynamoStore(client, TABLE, clock=lambda: NOW)
    seeded.put_histories(InstanceHistory(f"i-{n}") for n in range(10))
    sleeps: list[float] = []
    store = DynamoStore(Faulty(client, batch_get_item=half_processed), TABLE, sleep=sleeps.append)

    got = store.get_histories(f"i-{n}" for n in range(10))

    assert sorted(got) == sorted(f"i-{n}" for n in range(10))
    assert calls == [10, 5]
    assert len(sleeps) == 1


def test_items_left_unprocessed_forever_become_a_state_error(client: Any) -> None:
    calls: list[int] = []

    def never_processed(RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        calls.append(1)
        return {"Responses": {}, "UnprocessedKeys": RequestItems}

    store = DynamoStore(
        Faulty(client, batch_get_item=never_processed), TABLE, clock=lambda: NOW, sleep=lambda _: None
    )

    with pytest.raises(StateError, match="unprocessed"):
        store.get_histories(["i-1"])
    assert len(calls) == BATCH_ATTEMPTS


def test_a_renewal_between_the_takers_read_and_write_wins(client: Any) -> None:
    """The holder's clock may lag the taker's: its renewal must not be overwritten."""
    holder_store = DynamoStore(client, TABLE)
    holder = holder_store.acquire_lease(SCOPE, "sweeper-a", TTL, NOW)
    renewed: list[Any] = []

    def read_then_holder_renews(**kwargs: Any) -> Any:
        response = client.get_item(**kwargs)
        if not renewed:
            renewed.append(holder_store.renew_lease(holder, TTL, NOW + TTL - timedelta(seconds=1)))
        return response

    taker = DynamoStore(Faulty(client, get_item=read_then_holder_renews), TABLE)

    with pytest.raises(LeaseHeld) as caught:
        taker.acquire_lease(SCOPE, "sweeper-b", TTL, NOW + TTL)

    assert caught.value.owner == "sweeper-a"
    assert holder_store.get_lease(SCOPE) == renewed[0]
