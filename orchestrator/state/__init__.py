"""Choosing a state store from the one string a user gives (``--state`` / config ``state``).

A local SQLite file by default, so a manual run needs no AWS resources; the
deployed Lambda passes ``dynamodb://TABLE``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Callable, Mapping
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
MAX_SCOPE_SELECTOR = 256


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


def lease_scope(account_or_profile: str, region: str, selector: Mapping[str, str]) -> str:
    """The same fleet gives the same scope however the selector was written.

    Readable (it appears in 'lease held by ...' messages) and unambiguous (separators
    inside tag keys or values are percent-encoded); a very long selector is replaced
    by its digest so the scope stays well inside DynamoDB's key size limit.
    """
    parts = ",".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(selector.items()))
    if len(parts) > MAX_SCOPE_SELECTOR:
        parts = "sha256:" + hashlib.sha256(parts.encode()).hexdigest()
    return f"{quote(account_or_profile, safe='')}/{quote(region, safe='')}/{parts or '*'}"
