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

Every call goes through botocore's retry policy (aws.RETRY_CONFIG). The one thing it
does not cover, items a batch call leaves unprocessed, is resent under a bounded
tenacity policy.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Mapping

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from orchestrator.aws import describe_aws_error, error_code
from orchestrator.model import InstanceHistory
from orchestrator.state import codec
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
BATCH_ATTEMPTS = 6
NO_SORT = "-"
_ACTION_TEXT_FIELDS = (
    "key",
    "sweep_id",
    "instance_id",
    "action",
    "reason",
    "status",
    "created_at",
    "updated_at",
    "detail",
)

Clock = Callable[[], datetime]


class _ConditionFailed(Exception):
    """A conditional write lost: what that means is the caller's business."""


class _Unprocessed(Exception):
    pass


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _key(pk: str, sk: str = NO_SORT) -> dict[str, dict[str, str]]:
    return {"pk": _s(pk), "sk": _s(sk)}


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
        self._sleep = sleep

    # -- plumbing ---------------------------------------------------------------

    def _describe(self, exc: BaseException, operation: str) -> str:
        if error_code(exc) == "ResourceNotFoundException":
            region = getattr(getattr(self._client, "meta", None), "region_name", None) or "this region"
            return (
                f"the DynamoDB table {self.table_name} does not exist in {region}: create it by deploying the "
                f"stack in cfn/ or with orchestrator.state.dynamodb.create_table(client, {self.table_name!r}), "
                "or point --state at an existing table"
            )
        return f"state store dynamodb://{self.table_name}: " + describe_aws_error(exc, f"dynamodb:{operation}")

    @contextmanager
    def _aws(self, operation: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise _ConditionFailed() from exc
            raise StateError(self._describe(exc, operation)) from exc
        except (BotoCoreError, ResponseParserError) as exc:
            raise StateError(self._describe(exc, operation)) from exc

    def _get(self, pk: str, sk: str = NO_SORT) -> dict[str, Any] | None:
        with self._aws("GetItem"):
            response = self._client.get_item(TableName=self.table_name, Key=_key(pk, sk), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _batch(self, operation: str, request: dict[str, Any], collect: Callable[[dict[str, Any]], None]) -> None:
        """Send one batch call and resend whatever DynamoDB leaves unprocessed, a bounded number of times."""
        pending = request
        retrying = Retrying(
            stop=stop_after_attempt(BATCH_ATTEMPTS),
            wait=wait_exponential(multiplier=0.1, max=3),
            retry=retry_if_exception_type(_Unprocessed),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    with self._aws(operation):
                        if operation == "BatchGetItem":
                            response = self._client.batch_get_item(RequestItems=pending)
                            unprocessed = response.get("UnprocessedKeys")
                        else:
                            response = self._client.batch_write_item(RequestItems=pending)
                            unprocessed = response.get("UnprocessedItems")
                    collect(response)
                    if unprocessed:
                        pending = unprocessed
                        raise _Unprocessed()
        except _Unprocessed:
            raise StateError(
                f"state store dynamodb://{self.table_name}: {operation} still left items unprocessed after "
                f"{BATCH_ATTEMPTS} attempts: the table is being throttled; retry the sweep later"
            ) from None

    def _query(self, limit: int, **kwargs: Any) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        items: list[dict[str, Any]] = []
        with self._aws("Query"):
            for page in paginator.paginate(
                TableName=self.table_name,
                ScanIndexForward=False,
                PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 100)},
                **kwargs,
            ):
                items.extend(page.get("Items", []))
        return items[:limit]

    def _expiry(self, start: datetime, retention: timedelta) -> dict[str, str]:
        return _n(int((start + retention).timestamp()))

    # -- histories --------------------------------------------------------------

    def get_histories(self, instance_ids: Iterable[str]) -> dict[str, InstanceHistory]:
        ids = sorted(set(instance_ids))  # BatchGetItem rejects duplicate keys
        found: dict[str, InstanceHistory] = {}

        def collect(response: dict[str, Any]) -> None:
            for item in response.get("Responses", {}).get(self.table_name, []):
                history = codec.loads(InstanceHistory, item["data"]["S"])
                found[history.instance_id] = history

        for start in range(0, len(ids), BATCH_GET_SIZE):
            keys = [_key(f"HIST#{i}") for i in ids[start : start + BATCH_GET_SIZE]]
            self._batch("BatchGetItem", {self.table_name: {"Keys": keys, "ConsistentRead": True}}, collect)
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
                with self._aws("PutItem"):
                    self._client.put_item(
                        TableName=self.table_name,
                        Item={
                            **_key(f"HIST#{instance_id}"),
                            "data": _s(codec.dumps(stored)),
                            "version": _n(stored.version),
                            TTL_ATTRIBUTE: expires,
                        },
                        ConditionExpression=condition,
                        ExpressionAttributeNames={"#v": "version"},
                        ExpressionAttributeValues={":v": _n(history.version)},
                    )
            except _ConditionFailed:
                moved.add(instance_id)
        return frozenset(moved)

    # -- actions ----------------------------------------------------------------

    def _action_item(self, record: ActionRecord) -> dict[str, Any]:
        created = codec.to_iso(record.created_at)
        order = f"{created}#{record.key}"
        return {
            **_key(f"ACTION#{record.key}"),
            "gsi1pk": _s(f"INSTANCE#{record.instance_id}"),
            "gsi1sk": _s(order),
            "gsi2pk": _s("ACTION"),
            "gsi2sk": _s(order),
            "key": _s(record.key),
            "sweep_id": _s(record.sweep_id),
            "instance_id": _s(record.instance_id),
            "action": _s(record.action.value),
            "reason": _s(record.reason),
            "status": _s(record.status.value),
            "created_at": _s(created),
            "updated_at": _s(codec.to_iso(record.updated_at)),
            "detail": _s(record.detail),
            "evidence": _s(codec.dumps_value(record.evidence)),
            TTL_ATTRIBUTE: self._expiry(record.created_at, self._action_retention),
        }

    @staticmethod
    def _action_from_item(item: Mapping[str, Any]) -> ActionRecord:
        fields = {name: item[name]["S"] for name in _ACTION_TEXT_FIELDS if name in item}
        return codec.record_from_dict(ActionRecord, {**fields, "evidence": json.loads(item["evidence"]["S"])})

    def put_action_intent(self, record: ActionRecord) -> bool:
        try:
            with self._aws("PutItem"):
                self._client.put_item(
                    TableName=self.table_name,
                    Item=self._action_item(record),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except _ConditionFailed:
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
        values: dict[str, Any] = {":status": _s(status.value), ":updated": _s(codec.to_iso(now))}
        if detail:
            sets.append("detail = :detail")
            values[":detail"] = _s(detail)
        if evidence is not None:
            sets.append("evidence = :evidence")
            values[":evidence"] = _s(codec.dumps_value(evidence))
        try:
            with self._aws("UpdateItem"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key=_key(f"ACTION#{key}"),
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=values,
                )
        except _ConditionFailed:
            raise StateError(f"no action recorded with key {key} in dynamodb://{self.table_name}") from None

    def get_action(self, key: str) -> ActionRecord | None:
        item = self._get(f"ACTION#{key}")
        return self._action_from_item(item) if item else None

    def list_actions(self, instance_id: str | None = None, limit: int = 50) -> list[ActionRecord]:
        if limit <= 0:
            return []
        if instance_id is None:
            index, attribute, value = INDEX_BY_TIME, "gsi2pk", "ACTION"
        else:
            index, attribute, value = INDEX_BY_INSTANCE, "gsi1pk", f"INSTANCE#{instance_id}"
        items = self._query(
            limit,
            IndexName=index,
            KeyConditionExpression=f"{attribute} = :p",
            ExpressionAttributeValues={":p": _s(value)},
        )
        return [self._action_from_item(item) for item in items]

    def actions_since(self, since: datetime, status: ActionStatus | None = None, limit: int = 1000) -> list[ActionRecord]:
        """The by-time index from ``since`` on (a status is a filter: read capacity counts every action since)."""
        extra: dict[str, Any] = {}
        values: dict[str, Any] = {":p": _s("ACTION"), ":since": _s(codec.to_iso(since))}
        if status is not None:
            extra = {"FilterExpression": "#status = :status", "ExpressionAttributeNames": {"#status": "status"}}
            values[":status"] = _s(status.value)
        items = self._query(
            limit,
            IndexName=INDEX_BY_TIME,
            KeyConditionExpression="gsi2pk = :p AND gsi2sk >= :since",
            ExpressionAttributeValues=values,
            **extra,
        )
        return sorted((self._action_from_item(item) for item in items), key=lambda r: (r.created_at, r.key))

    # -- sweeps -----------------------------------------------------------------

    def put_sweep(self, record: SweepRecord) -> None:
        with self._aws("PutItem"):
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    **_key("SWEEP", f"{codec.to_iso(record.started_at)}#{record.sweep_id}"),
                    "data": _s(codec.dumps(record)),
                    TTL_ATTRIBUTE: self._expiry(record.started_at, self._action_retention),
                },
            )

    def list_sweeps(self, limit: int = 20) -> list[SweepRecord]:
        if limit <= 0:
            return []
        items = self._query(
            limit, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": _s("SWEEP")}, ConsistentRead=True
        )
        return [codec.loads(SweepRecord, item["data"]["S"]) for item in items]

    # -- lease ------------------------------------------------------------------

    @staticmethod
    def _lease_from_item(scope: str, item: Mapping[str, Any] | None) -> Lease | None:
        if not item:
            return None
        return Lease(
            scope=scope,
            owner=item["owner"]["S"],
            expires_at=codec.from_us(int(item["expires_us"]["N"])),
            fence=int(item["fence"]["N"]),
        )

    def _read_lease(self, scope: str) -> Lease | None:
        return self._lease_from_item(scope, self._get(f"LEASE#{scope}"))

    def _put_lease(self, lease: Lease, read: Lease | None, now: datetime, take_over: bool) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if read is None:
            condition = "attribute_not_exists(pk)"
        elif take_over:
            # The holder is known dead: the owner and fence pin exactly the lease judged so.
            condition = "#fence = :old_fence AND #owner = :old_owner"
            names = {"#fence": "fence", "#owner": "owner"}
            values = {":old_fence": _n(read.fence), ":old_owner": _s(read.owner)}
        else:
            # The fence pins the version we judged expired; the expiry check stops us stealing
            # a lease its holder renewed between our read and this write.
            condition = "#fence = :old_fence AND #exp <= :now"
            names = {"#fence": "fence", "#exp": "expires_us"}
            values = {":old_fence": _n(read.fence), ":now": _n(codec.to_us(now))}
        try:
            with self._aws("PutItem"):
                self._client.put_item(
                    TableName=self.table_name,
                    Item={
                        **_key(f"LEASE#{lease.scope}"),
                        "scope": _s(lease.scope),
                        "owner": _s(lease.owner),
                        "fence": _n(lease.fence),
                        "expires_us": _n(codec.to_us(lease.expires_at)),
                        "expires_at": _s(codec.to_iso(lease.expires_at)),
                    },
                    ConditionExpression=condition,
                    **({"ExpressionAttributeNames": names} if names else {}),
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
        except _ConditionFailed:
            raise LeaseConflict() from None

    def _extend_lease(self, lease: Lease, expires_at: datetime, now: datetime) -> None:
        try:
            with self._aws("UpdateItem"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key=_key(f"LEASE#{lease.scope}"),
                    UpdateExpression="SET #exp = :exp, expires_at = :exp_iso",
                    ConditionExpression="#owner = :me AND #fence = :fence AND #exp > :now",
                    ExpressionAttributeNames={"#owner": "owner", "#fence": "fence", "#exp": "expires_us"},
                    ExpressionAttributeValues={
                        ":exp": _n(codec.to_us(expires_at)),
                        ":exp_iso": _s(codec.to_iso(expires_at)),
                        ":me": _s(lease.owner),
                        ":fence": _n(lease.fence),
                        ":now": _n(codec.to_us(now)),
                    },
                )
        except _ConditionFailed:
            raise LeaseConflict() from None

    def _clear_lease(self, lease: Lease) -> None:
        try:
            with self._aws("UpdateItem"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key=_key(f"LEASE#{lease.scope}"),
                    UpdateExpression="SET #owner = :none, #exp = :zero, expires_at = :epoch",
                    ConditionExpression="#owner = :me AND #fence = :fence",
                    ExpressionAttributeNames={"#owner": "owner", "#fence": "fence", "#exp": "expires_us"},
                    ExpressionAttributeValues={
                        ":none": _s(""),
                        ":zero": _n(0),
                        ":epoch": _s(codec.to_iso(codec.EPOCH)),
                        ":me": _s(lease.owner),
                        ":fence": _n(lease.fence),
                    },
                )
        except _ConditionFailed:
            raise LeaseConflict() from None

    # -- pause ------------------------------------------------------------------

    def get_pause(self) -> PauseState | None:
        item = self._get("PAUSE")
        return codec.loads(PauseState, item["data"]["S"]) if item else None

    def set_pause(self, state: PauseState | None) -> None:
        if state is None:
            with self._aws("DeleteItem"):
                self._client.delete_item(TableName=self.table_name, Key=_key("PAUSE"))
            return
        with self._aws("PutItem"):
            self._client.put_item(TableName=self.table_name, Item={**_key("PAUSE"), "data": _s(codec.dumps(state))})

    def probe_write(self, token: str) -> None:
        """Prove the table takes writes (`orch doctor`): one item, under a key no sweep
        reads, written with a near expiry and deleted at once."""
        key = _key(f"DOCTOR#{token}")
        with self._aws("PutItem"):
            self._client.put_item(TableName=self.table_name, Item={**key, TTL_ATTRIBUTE: self._expiry(self._clock(), timedelta(hours=1))})
        with self._aws("DeleteItem"):
            self._client.delete_item(TableName=self.table_name, Key=key)

    # -- alerts -----------------------------------------------------------------

    def get_alerts(self, scope: str) -> AlertBook:
        item = self._get(f"ALERTS#{scope}")
        return codec.loads(AlertBook, item["data"]["S"]) if item else AlertBook(scope)

    def put_alerts(self, book: AlertBook) -> None:
        with self._aws("PutItem"):
            self._client.put_item(
                TableName=self.table_name, Item={**_key(f"ALERTS#{book.scope}"), "data": _s(codec.dumps(book))}
            )

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller's Clients."""

    def __repr__(self) -> str:
        return f"DynamoStore({self.table_name!r})"
