"""The state store port: what a sweep remembers between runs.

Logic that decides lives in plan; logic that records lives in sweep; an adapter
(SQLite for manual runs, DynamoDB when deployed) only stores and fetches, with
conditional writes where two writers could race.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

from orchestrator.model import ActionKind, InstanceHistory

# The records the pure steps read live in the ground floor (decide/ may not import state/);
# the store speaks them, so they are its names too.
from orchestrator.model import ActionRecord as ActionRecord
from orchestrator.model import ActionStatus as ActionStatus
from orchestrator.model import PauseState as PauseState


class StateError(Exception):
    """The store cannot be read or written; a sweep that cannot record must not act."""


class LeaseHeld(StateError):
    def __init__(self, scope: str, owner: str, expires_at: datetime, fence: int | None = None) -> None:
        super().__init__(f"another sweep holds the lease for {scope}: {owner} until {expires_at.isoformat()}")
        self.scope = scope
        self.owner = owner
        self.expires_at = expires_at
        self.fence = fence


class LeaseLost(StateError):
    """Our lease expired and was taken over (or its fence moved): stop mutating now."""


@dataclass(frozen=True, slots=True)
class SweepRecord:
    sweep_id: str
    started_at: datetime
    mode: str  # scan | heal | dry-run
    scope: str
    finished_at: datetime | None = None
    partial: bool = False
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lease:
    scope: str
    owner: str
    expires_at: datetime
    fence: int  # increases on every acquisition; a stale holder's fence no longer matches


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One thing told to a human and still holding: what alerts deduplicate against."""

    key: str
    told_at: datetime
    digest: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class AlertBook:
    """Everything told for one fleet (a lease scope), stored as one item."""

    scope: str
    records: tuple[AlertRecord, ...] = ()


def action_key(instance_id: str, action: ActionKind, now: datetime, window: timedelta) -> str:
    """Same instance, action and time window -> same key: a redelivered sweep cannot act twice."""
    bucket = int(now.timestamp() // max(window.total_seconds(), 1))
    return f"{instance_id}#{action.value}#{bucket}"


class StateStore(Protocol):
    def get_histories(self, instance_ids: Iterable[str]) -> dict[str, InstanceHistory]: ...
    def put_histories(self, histories: Iterable[InstanceHistory]) -> frozenset[str]:
        """Write each history only if the stored one still has the version it was read at.

        A history is stored as ``version + 1``; a new one (version 0) only where none is
        stored. Returns the ids that had moved on meanwhile (not written): the caller
        re-reads and re-applies what it learned, so no update is lost. The last of
        duplicates in one call wins.
        """
        ...
    def put_action_intent(self, record: ActionRecord) -> bool:
        """Conditional put; False when the key already exists (the action was already taken)."""
        ...
    def update_action(self, key: str, status: ActionStatus, now: datetime, detail: str = "", evidence: dict[str, Any] | None = None) -> None: ...
    def get_action(self, key: str) -> ActionRecord | None: ...
    def list_actions(self, instance_id: str | None = None, limit: int = 50) -> list[ActionRecord]: ...
    def actions_since(self, since: datetime, status: ActionStatus | None = None, limit: int = 1000) -> list[ActionRecord]:
        """Actions created since ``since``, oldest first (only of ``status`` when given): what recovery reads."""
        ...
    def put_sweep(self, record: SweepRecord) -> None: ...
    def list_sweeps(self, limit: int = 20) -> list[SweepRecord]: ...
    def acquire_lease(self, scope: str, owner: str, ttl: timedelta, now: datetime, take_over: Lease | None = None) -> Lease:
        """Take a free or expired lease; ``take_over``: also a live one still exactly that (a holder known dead)."""
        ...
    def renew_lease(self, lease: Lease, ttl: timedelta, now: datetime) -> Lease: ...
    def check_lease(self, lease: Lease, now: datetime) -> None: ...
    def release_lease(self, lease: Lease) -> None: ...
    def get_lease(self, scope: str) -> Lease | None: ...
    def get_pause(self) -> PauseState | None: ...
    def set_pause(self, state: PauseState | None) -> None: ...
    def get_alerts(self, scope: str) -> AlertBook: ...
    def put_alerts(self, book: AlertBook) -> None: ...
    def probe_write(self, token: str) -> None:
        """Write and delete one item under a key no sweep reads: the store takes writes (`orch doctor`)."""
        ...
    def close(self) -> None: ...


def lease_is_live(current: Lease | None, now: datetime) -> bool:
    """A released lease has no owner; an expired one may be taken over by anyone."""
    return current is not None and bool(current.owner) and current.expires_at > now


def lease_problem(lease: Lease, current: Lease | None, now: datetime) -> str | None:
    """Why ``lease`` no longer entitles its holder to mutate, or None while it still does.

    Both adapters use this one rule, so "lost" means the same in SQLite and DynamoDB:
    someone else's owner or fence, a release, or plain expiry (even if nobody took
    over yet: an expired holder may be overtaken at any moment).
    """
    if current is None or not current.owner:
        return f"the lease for {lease.scope} was released or never existed: stop mutating"
    if current.owner != lease.owner or current.fence != lease.fence:
        return (
            f"the lease for {lease.scope} was taken over by {current.owner} (fence {current.fence}, "
            f"ours {lease.fence}) until {current.expires_at.isoformat()}: stop mutating"
        )
    if current.expires_at <= now:
        return (
            f"our lease for {lease.scope} expired at {current.expires_at.isoformat()}: stop mutating "
            "(the sweep outran its lease; renew it more often or raise the lease TTL)"
        )
    return None


def require_lease_args(ttl: timedelta | None, now: datetime | None) -> None:
    """Shared argument checks, so a naive ``now`` fails loudly instead of being read as local time."""
    if ttl is not None and ttl <= timedelta(0):
        raise ValueError(f"a lease TTL must be positive, got {ttl}")
    if now is not None and now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: the state store only takes timezone-aware datetimes")
