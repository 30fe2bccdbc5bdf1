"""DynamoDB adapter: the state store when deployed, in one table with a generic key.

Item layout (``pk`` / ``sk`` are the table key; ``gsi*`` feed two sparse indexes):

================  ===================  =====================================================
pk                sk                   what
================  ===================  =====================================================
HIST#<id>         -                    one InstanceHistory as JSON in ``data``
ACTION#<key>      -                    one ActionRecord, one attribute per field; the
                                       conditional put on this item is the idempotency check.
                                       gsi1pk=INSTANCE#<id>, gsi1sk=<created>#<key> (by-instance)
                                       gsi2pk=ACTION, gsi2sk=<created>#<key> (by-time)
SWEEP             <started>#<id>       one SweepRecord as JSON in ``data``
LEASE#<scope>     -                    owner, fence (N), expires_us (N); never deleted, so
                                       the fence only ever grows
PAUSE             -                    the global pause as JSON in ``data``
ALERTS#<scope>    -                    what was told for that fleet (AlertBook) as JSON in ``data``
================  ===================  =====================================================

Actions and sweeps expire (TTL attribute ``expires_at_epoch``) 90 days after they were
created; a history expires 30 days after its last write, which is how histories of
terminated instances, no longer rewritten, go away.

The store is what each record family needs of the table; the calls themselves (their
errors, the batch resends, the query pages) are ``dynamodb_calls``, the items' attribute
values and the records stored one attribute per field ``dynamodb_items``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from orchestrator.model import InstanceHistory
from orchestrator.state import codec
from orchestrator.state.dynamodb_calls import ConditionFailed, TableCalls
from orchestrator.state.dynamodb_items import action_from_item, action_item, item_key, lease_from_item, lease_item, number, string
from orchestrator.state.dynamodb_table import INDEX_BY_INSTANCE, INDEX_BY_TIME, TTL_ATTRIBUTE
from orchestrator.state.dynamodb_table import SETUP_PERMISSIONS as SETUP_PERMISSIONS
from orchestrator.state.dynamodb_table import create_table as create_table
from orchestrator.state.leasing import LeaseBase, LeaseConflict
from orchestrator.state.store import (
    ActionRecord,
    ActionStatus,
    AlertBook,
    Lease,
    PauseState,
    StateError,
    SweepRecord,
)

PERMISSIONS = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
    }
)
# Only `orch resume` deletes (the pause flag): the scheduled sweep's role never needs it.
CLI_ONLY_PERMISSIONS = frozenset({"dynamodb:DeleteItem"})
# Reads and writes by what a command does with the store (orchestrator/iam/policy.py).
READ_PERMISSIONS = frozenset({"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"})
WRITE_PERMISSIONS = PERMISSIONS - READ_PERMISSIONS - CLI_ONLY_PERMISSIONS
# `orch doctor` writes and deletes one probe item to prove the table takes writes.
DOCTOR_PERMISSIONS = frozenset({"dynamodb:PutItem", "dynamodb:DeleteItem"})
BATCH_GET_SIZE = 100  # BatchGetItem limit

Clock = Callable[[], datetime]


class DynamoStore(LeaseBase):
    """StateStore over one DynamoDB table (see the module docstring for the layout)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        action_retention: timedelta = timedelta(days=90),
        history_retention: timedelta = timedelta(days=30),
        clock: Clock = codec.utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._action_retention = action_retention
        self._history_retention = history_retention
        self._clock = clock
        self._table = TableCalls(client, table_name, sleep)

    # -- expiry -----------------------------------------------------------------

    def _expiry(self, start: datetime, retention: timedelta) -> dict[str, str]:
        return number(int((start + retention).timestamp()))

    # -- histories --------------------------------------------------------------

    def get_histories(self, instance_ids: Iterable[str]) -> dict[str, InstanceHistory]:
        ids = sorted(set(instance_ids))  # BatchGetItem rejects duplicate keys
        found: dict[str, InstanceHistory] = {}

        def collect(response: dict[str, Any]) -> None:
            for item in response.get("Responses", {}).get(self.table_name, []):
                history = codec.loads(InstanceHistory, item["data"]["S"])
                found[history.instance_id] = history

        for start in range(0, len(ids), BATCH_GET_SIZE):
            keys = [item_key(f"HIST#{i}") for i in ids[start : start + BATCH_GET_SIZE]]
            self._table.batch("BatchGetItem", {self.table_name: {"Keys": keys, "ConsistentRead": True}}, collect)
        return found

    def put_histories(self, histories: Iterable[InstanceHistory]) -> frozenset[str]:
        """One conditional PutItem per history (BatchWriteItem takes no condition).

        The sweep writes only the histories that changed, so a healthy fleet costs nothing
        here; the version attribute is what the condition compares (an item written before
        versions existed reads as version 0).
        """
        latest = {h.instance_id: h for h in histories}
        expires = self._expiry(self._clock(), self._history_retention)
        moved: set[str] = set()
        for instance_id, history in latest.items():
            if history.version == 0:
                condition = "attribute_not_exists(pk) OR attribute_not_exists(#v) OR #v = :v"
            else:
                condition = "#v = :v"
            stored = replace(history, version=history.version + 1)
            try:
                with self._table.aws("PutItem"):
                    self._client.put_item(
                        TableName=self.table_name,
                        Item={
                            **item_key(f"HIST#{instance_id}"),
                            "data": string(codec.dumps(stored)),
                            "version": number(stored.version),
                            TTL_ATTRIBUTE: expires,
                        },
                        ConditionExpression=condition,
                        ExpressionAttributeNames={"#v": "version"},
                        ExpressionAttributeValues={":v": number(history.version)},
                    )
            except ConditionFailed:
                moved.add(instance_id)
        return frozenset(moved)

    # -- actions ----------------------------------------------------------------

    def put_action_intent(self, record: ActionRecord) -> bool:
        try:
            with self._table.aws("PutItem"):
                self._client.put_item(
                    TableName=self.table_name,
                    Item={**action_item(record), TTL_ATTRIBUTE: self._expiry(record.created_at, self._action_retention)},
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ConditionFailed:
            return False
        return True

    def update_action(
        self,
        key: str,
        status: ActionStatus,
        now: datetime,
        detail: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> None:
        """An empty ``detail`` or ``None`` evidence keeps what is stored; given ones replace it."""
        sets = ["#status = :status", "updated_at = :updated"]
        values: dict[str, Any] = {":status": string(status.value), ":updated": string(codec.to_iso(now))}
        if detail:
            sets.append("detail = :detail")
            values[":detail"] = string(detail)
        if evidence is not None:
            sets.append("evidence = :evidence")
            values[":evidence"] = string(codec.dumps_value(evidence))
        try:
            with self._table.aws("UpdateItem"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key=item_key(f"ACTION#{key}"),
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=values,
                )
        except ConditionFailed:
            raise StateError(f"no action recorded with key {key} in dynamodb://{self.table_name}") from None

    def get_action(self, key: str) -> ActionRecord | None:
        item = self._table.get(f"ACTION#{key}")
        return action_from_item(item) if item else None

    def list_actions(self, instance_id: str | None = None, limit: int = 50) -> list[ActionRecord]:
        if limit <= 0:
            return []
        if instance_id is None:
            index, attribute, value = INDEX_BY_TIME, "gsi2pk", "ACTION"
        else:
            index, attribute, value = INDEX_BY_INSTANCE, "gsi1pk", f"INSTANCE#{instance_id}"
        items = self._table.query(
            limit,
            IndexName=index,
            KeyConditionExpression=f"{attribute} = :p",
            ExpressionAttributeValues={":p": string(value)},
        )
        return [action_from_item(item) for item in items]

    def actions_since(self, since: datetime, status: ActionStatus | None = None, limit: int = 1000) -> list[ActionRecord]:
        """The by-time index from ``since`` on (a status is a filter: read capacity counts every action since)."""
        extra: dict[str, Any] = {}
        values: dict[str, Any] = {":p": string("ACTION"), ":since": string(codec.to_iso(since))}
        if status is not None:
            extra = {"FilterExpression": "#status = :status", "ExpressionAttributeNames": {"#status": "status"}}
            values[":status"] = string(status.value)
        items = self._table.query(
            limit,
            IndexName=INDEX_BY_TIME,
            KeyConditionExpression="gsi2pk = :p AND gsi2sk >= :since",
            ExpressionAttributeValues=values,
            **extra,
        )
        return sorted((action_from_item(item) for item in items), key=lambda r: (r.created_at, r.key))

    # -- sweeps -----------------------------------------------------------------

    def put_sweep(self, record: SweepRecord) -> None:
        with self._table.aws("PutItem"):
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    **item_key("SWEEP", f"{codec.to_iso(record.started_at)}#{record.sweep_id}"),
                    "data": string(codec.dumps(record)),
                    TTL_ATTRIBUTE: self._expiry(record.started_at, self._action_retention),
                },
            )

    def list_sweeps(self, limit: int = 20) -> list[SweepRecord]:
        if limit <= 0:
            return []
        items = self._table.query(
            limit, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": string("SWEEP")}, ConsistentRead=True
        )
        return [codec.loads(SweepRecord, item["data"]["S"]) for item in items]

    # -- lease ------------------------------------------------------------------

    def _read_lease(self, scope: str) -> Lease | None:
        return lease_from_item(scope, self._table.get(f"LEASE#{scope}"))

    def _put_lease(self, lease: Lease, read: Lease | None, now: datetime, take_over: bool) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if read is None:
            condition = "attribute_not_exists(pk)"
        elif take_over:
            # The holder is known dead: the owner and fence pin exactly the lease judged so.
            condition = "#fence = :old_fence AND #owner = :old_owner"
            names = {"#fence": "fence", "#owner": "owner"}
            values = {":old_fence": number(read.fence), ":old_owner": string(read.owner)}
        else:
            # The fence pins the version we judged expired; the expiry check stops us stealing
            # a lease its holder renewed between our read and this write.
            condition = "#fence = :old_fence AND #exp <= :now"
            names = {"#fence": "fence", "#exp": "expires_us"}
            values = {":old_fence": number(read.fence), ":now": number(codec.to_us(now))}
        try:
            with self._table.aws("PutItem"):
                self._client.put_item(
                    TableName=self.table_name,
                    Item=lease_item(lease),
                    ConditionExpression=condition,
                    **({"ExpressionAttributeNames": names} if names else {}),
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
        except ConditionFailed:
            raise LeaseConflict() from None

    def _extend_lease(self, lease: Lease, expires_at: datetime, now: datetime) -> None:
        try:
            with self._table.aws("UpdateItem"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key=item_key(f"LEASE#{lease.scope}"),
                    UpdateExpression="SET #exp = :exp, expires_at = :exp_iso",
                    ConditionExpression="#owner = :me AND #fence = :fence AND #exp > :now",
                    ExpressionAttributeNames={"#owner": "owner", "#fence": "fence", "#exp": "expires_us"},
                    ExpressionAttributeValues={
                        ":exp": number(codec.to_us(expires_at)),
                        ":exp_iso": string(codec.to_iso(expires_at)),
                        ":me": string(lease.owner),
                        ":fence": number(lease.fence),
                        ":now": number(codec.to_us(now)),
                    },
                )
        except ConditionFailed:
            raise LeaseConflict() from None

    def _clear_lease(self, lease: Lease) -> None:
        try:
            with self._table.aws("UpdateItem"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key=item_key(f"LEASE#{lease.scope}"),
                    UpdateExpression="SET #owner = :none, #exp = :zero, expires_at = :epoch",
                    ConditionExpression="#owner = :me AND #fence = :fence",
                    ExpressionAttributeNames={"#owner": "owner", "#fence": "fence", "#exp": "expires_us"},
                    ExpressionAttributeValues={
                        ":none": string(""),
                        ":zero": number(0),
                        ":epoch": string(codec.to_iso(codec.EPOCH)),
                        ":me": string(lease.owner),
                        ":fence": number(lease.fence),
                    },
                )
        except ConditionFailed:
            raise LeaseConflict() from None

    # -- pause ------------------------------------------------------------------

    def get_pause(self) -> PauseState | None:
        item = self._table.get("PAUSE")
        return codec.loads(PauseState, item["data"]["S"]) if item else None

    def set_pause(self, state: PauseState | None) -> None:
        if state is None:
            with self._table.aws("DeleteItem"):
                self._client.delete_item(TableName=self.table_name, Key=item_key("PAUSE"))
            return
        with self._table.aws("PutItem"):
            self._client.put_item(TableName=self.table_name, Item={**item_key("PAUSE"), "data": string(codec.dumps(state))})

    def probe_write(self, token: str) -> None:
        """Prove the table takes writes (`orch doctor`): one item, under a key no sweep
        reads, written with a near expiry and deleted at once."""
        key = item_key(f"DOCTOR#{token}")
        with self._table.aws("PutItem"):
            self._client.put_item(TableName=self.table_name, Item={**key, TTL_ATTRIBUTE: self._expiry(self._clock(), timedelta(hours=1))})
        with self._table.aws("DeleteItem"):
            self._client.delete_item(TableName=self.table_name, Key=key)

    # -- alerts -----------------------------------------------------------------

    def get_alerts(self, scope: str) -> AlertBook:
        item = self._table.get(f"ALERTS#{scope}")
        return codec.loads(AlertBook, item["data"]["S"]) if item else AlertBook(scope)

    def put_alerts(self, book: AlertBook) -> None:
        with self._table.aws("PutItem"):
            self._client.put_item(
                TableName=self.table_name, Item={**item_key(f"ALERTS#{book.scope}"), "data": string(codec.dumps(book))}
            )

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller's Clients."""

    def __repr__(self) -> str:
        return f"DynamoStore({self.table_name!r})"
