"""The state table's items: attribute values, the key, and the records stored one attribute per field.

The layout (which ``pk`` holds what) is in ``orchestrator.state.dynamodb``'s docstring;
records stored whole are JSON in ``data`` (``codec``). An action is one attribute per
field, so the two indexes can read its instance and time; a lease is, so a condition
can compare its owner, fence and expiry.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from orchestrator.state import codec
from orchestrator.state.store import ActionRecord, Lease

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


def string(value: str) -> dict[str, str]:
    return {"S": value}


def number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def item_key(pk: str, sk: str = NO_SORT) -> dict[str, dict[str, str]]:
    return {"pk": string(pk), "sk": string(sk)}


def action_item(record: ActionRecord) -> dict[str, Any]:
    """The item of an action record, with the two index keys (by instance, by time); its expiry is the store's to add."""
    created = codec.to_iso(record.created_at)
    order = f"{created}#{record.key}"
    return {
        **item_key(f"ACTION#{record.key}"),
        "gsi1pk": string(f"INSTANCE#{record.instance_id}"),
        "gsi1sk": string(order),
        "gsi2pk": string("ACTION"),
        "gsi2sk": string(order),
        "key": string(record.key),
        "sweep_id": string(record.sweep_id),
        "instance_id": string(record.instance_id),
        "action": string(record.action.value),
        "reason": string(record.reason),
        "status": string(record.status.value),
        "created_at": string(created),
        "updated_at": string(codec.to_iso(record.updated_at)),
        "detail": string(record.detail),
        "evidence": string(codec.dumps_value(record.evidence)),
    }


def action_from_item(item: Mapping[str, Any]) -> ActionRecord:
    fields = {name: item[name]["S"] for name in _ACTION_TEXT_FIELDS if name in item}
    return codec.record_from_dict(ActionRecord, {**fields, "evidence": json.loads(item["evidence"]["S"])})


def lease_item(lease: Lease) -> dict[str, Any]:
    return {
        **item_key(f"LEASE#{lease.scope}"),
        "scope": string(lease.scope),
        "owner": string(lease.owner),
        "fence": number(lease.fence),
        "expires_us": number(codec.to_us(lease.expires_at)),
        "expires_at": string(codec.to_iso(lease.expires_at)),
    }


def lease_from_item(scope: str, item: Mapping[str, Any] | None) -> Lease | None:
    if not item:
        return None
    return Lease(
        scope=scope,
        owner=item["owner"]["S"],
        expires_at=codec.from_us(int(item["expires_us"]["N"])),
        fence=int(item["fence"]["N"]),
    )
