"""Choosing a state store from the one string a user gives (``--state`` / config ``state``).

A local SQLite file by default, so a manual run needs no AWS resources; the
deployed Lambda passes ``dynamodb://TABLE``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from orchestrator.aws import AwsError, Clients
from orchestrator.echo import clip
from orchestrator.state.store import (
    ActionRecord,
    ActionStatus,
    Lease,
    LeaseHeld,
    LeaseLost,
    PauseState,
    StateError,
    StateStore,
    SweepRecord,
    action_key,
)

__all__ = [
    "ActionRecord",
    "ActionStatus",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "PauseState",
    "StateError",
    "StateStore",
    "SweepRecord",
    "action_key",
    "default_state_path",
    "lease_scope",
    "open_store",
]

DYNAMODB_SCHEME = "dynamodb://"
ALLOWED_FORMS = "a file path (SQLite), dynamodb://TABLE, or nothing for the default SQLite file"
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def default_state_path() -> Path:
    """Per-user state where the platform keeps it: on Linux ``$XDG_STATE_HOME/orch``
    (``~/.local/state/orch`` when unset), as the XDG base directory spec places it.

    platformdirs is a CLI dependency, imported here only: the deployed Lambda always
    names its DynamoDB table and its zip does not carry platformdirs.
    """
    try:
        import platformdirs
    except ImportError:
        raise StateError("no state store given and no default here: set ORCH_STATE (a SQLite path or dynamodb://TABLE)") from None
    return platformdirs.user_state_path("orch") / "state.db"


def _local_path(spec: str) -> Path:
    """``~`` and ``~user`` expanded; a user that does not exist is a StateError, not a traceback."""
    try:
        return Path(spec).expanduser()
    except RuntimeError:
        raise StateError(f"cannot expand {clip(spec)}: no such user's home directory; give the state file as a full path") from None


def open_store(spec: str | None, clients_factory: Callable[[], Clients] | None = None) -> StateStore:
    if spec is None or not spec.strip():
        from orchestrator.state.sqlite import SqliteStore

        return SqliteStore(default_state_path())
    spec = spec.strip()
    if spec.startswith(DYNAMODB_SCHEME):
        table = spec[len(DYNAMODB_SCHEME) :]
        if not _TABLE_NAME.match(table):
            raise StateError(
                f"{clip(spec)} does not name a DynamoDB table: use dynamodb://TABLE with 3-255 letters, digits, '_', '-' or '.'"
            )
        from orchestrator.state.dynamodb import DynamoStore

        try:
            clients = (clients_factory or Clients)()
            return DynamoStore(clients.client("dynamodb"), table)
        except AwsError as exc:
            raise StateError(f"cannot open dynamodb://{table}: {exc}") from None
    if "://" in spec:
        raise StateError(f"unsupported state store {clip(spec)}: use {ALLOWED_FORMS}")
    from orchestrator.state.sqlite import SqliteStore

    return SqliteStore(_local_path(spec))


def lease_scope(account: str, region: str, vpc_id: str | None) -> str:
    """One fleet, one lease: the account, region and VPC a healer acts in.

    Not the selector: two sweeps with overlapping selectors on one store must exclude
    each other, and a stack scoped to its VPC never excludes another VPC's by accident.
    Readable (it appears in 'lease held by ...' messages); separators are
    percent-encoded.
    """
    return f"{quote(account or '-', safe='')}/{quote(region or '-', safe='')}/{quote(vpc_id, safe='') if vpc_id else '*'}"
