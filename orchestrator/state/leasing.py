"""The lease, once for every store: what is judged here, what is stored in the adapters.

The shape of powertools' idempotency ``BasePersistenceLayer``: the logic (who may take a
lease, the fence that grows on every acquisition, what a failed conditional write means
to the caller) lives in this base; an adapter (SQLite, DynamoDB) implements four storage
methods, each one conditional write or one read, and raises ``LeaseConflict`` when its
condition failed. So "held", "lost" and "taken over" mean the same in every store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import datetime, timedelta

from orchestrator.state import codec
from orchestrator.state.store import Lease, LeaseHeld, LeaseLost, lease_is_live, lease_problem, require_lease_args


class LeaseConflict(Exception):
    """An adapter's conditional write found the stored lease not as the condition required."""


class LeaseBase(ABC):
    """The lease half of ``StateStore`` (``orchestrator.state.lease.LeaseStore``), decided once."""

    # -- the adapter's four storage methods ---------------------------------------------

    @abstractmethod
    def _read_lease(self, scope: str) -> Lease | None:
        """The stored lease for ``scope`` as it is (a released one has no owner), or None."""

    @abstractmethod
    def _put_lease(self, lease: Lease, read: Lease | None, now: datetime, take_over: bool) -> None:
        """Store ``lease`` only while the stored one is still ``read`` (None: there is none).

        ``take_over``: the holder of ``read`` is known dead, so its owner and fence must
        still match; otherwise its fence must still match and it must have expired at
        ``now`` (its holder did not renew it meanwhile). Else raise ``LeaseConflict``.
        """

    @abstractmethod
    def _extend_lease(self, lease: Lease, expires_at: datetime, now: datetime) -> None:
        """Move ``lease``'s expiry to ``expires_at`` only while the stored one has its owner and
        fence and is live at ``now``; else raise ``LeaseConflict``."""

    @abstractmethod
    def _clear_lease(self, lease: Lease) -> None:
        """Clear the owner and expiry (the row stays: its fence never goes backwards) only
        while the stored one has ``lease``'s owner and fence; else raise ``LeaseConflict``."""

    # -- the logic, once --------------------------------------------------------------

    def acquire_lease(self, scope: str, owner: str, ttl: timedelta, now: datetime, take_over: Lease | None = None) -> Lease:
        """Read, then write conditioned on what was read: of two contenders only one write lands.

        ``take_over`` names a lease whose holder is known dead (its process is gone): it
        may be taken before it expires, but only that exact lease (owner and fence).
        """
        require_lease_args(ttl, now)
        if not owner:
            raise ValueError("a lease owner must be a non-empty string")
        current = self._read_lease(scope)
        dead = take_over is not None and current is not None and (current.owner, current.fence) == (take_over.owner, take_over.fence)
        if current is not None and lease_is_live(current, now) and not dead:
            raise LeaseHeld(scope, current.owner, current.expires_at, current.fence)
        lease = Lease(scope=scope, owner=owner, expires_at=(now + ttl).astimezone(codec.UTC), fence=(current.fence if current else 0) + 1)
        try:
            self._put_lease(lease, current, now, dead)
        except LeaseConflict:
            winner = self._read_lease(scope)
            if winner is not None and winner.owner:
                raise LeaseHeld(scope, winner.owner, winner.expires_at, winner.fence) from None
            raise LeaseHeld(scope, "another contender (since released)", now) from None
        return lease

    def renew_lease(self, lease: Lease, ttl: timedelta, now: datetime) -> Lease:
        require_lease_args(ttl, now)
        renewed = replace(lease, expires_at=(now + ttl).astimezone(codec.UTC))
        try:
            self._extend_lease(lease, renewed.expires_at, now)
        except LeaseConflict:
            problem = lease_problem(lease, self._read_lease(lease.scope), now)
            raise LeaseLost(problem or f"the lease for {lease.scope} changed while renewing it: stop mutating") from None
        return renewed

    def check_lease(self, lease: Lease, now: datetime) -> None:
        require_lease_args(None, now)
        problem = lease_problem(lease, self._read_lease(lease.scope), now)
        if problem:
            raise LeaseLost(problem)

    def release_lease(self, lease: Lease) -> None:
        """Clears the owner instead of deleting, so the fence never goes backwards for this scope."""
        try:
            self._clear_lease(lease)
        except LeaseConflict:
            problem = lease_problem(lease, self._read_lease(lease.scope), codec.EPOCH)
            raise LeaseLost(problem or f"the lease for {lease.scope} is not ours") from None

    def get_lease(self, scope: str) -> Lease | None:
        """The live or expired lease with an owner; None when there is none or it was released."""
        current = self._read_lease(scope)
        return current if current is not None and current.owner else None
