"""LeaseKeeper: how a sweep holds its lease for the length of a with-block.

A scheduled Lambda (possibly delivered twice) and a manual ``orch heal`` must never
act on the same fleet at once. The sweep acquires on entry, checks before every
mutating call (the check renews when half the TTL is gone, so a long sweep keeps
its lease without a timer thread), and releases on exit. Releasing never raises:
a sweep that already finished must not fail because the goodbye did; the lease
then simply expires.

A store only excludes sweeps that share it. ``shared`` is the lease every healer of
the fleet can see whatever its store (``ssm_lease``: Parameter Store in the fleet's
account and region): taken after the store's, checked and renewed with it, released
before it. Both must be held to act; the local store never decides alone.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from datetime import datetime, timedelta
from types import TracebackType
from typing import Callable, Protocol, Self

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from orchestrator.state.codec import utc_now
from orchestrator.state.store import Lease, LeaseHeld, LeaseLost, StateStore

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=5)
Clock = Callable[[], datetime]


class LeaseStore(Protocol):
    """The lease part of the state store port: what a keeper needs of a store, or of Parameter Store."""

    def acquire_lease(self, scope: str, owner: str, ttl: timedelta, now: datetime, take_over: Lease | None = None) -> Lease: ...
    def renew_lease(self, lease: Lease, ttl: timedelta, now: datetime) -> Lease: ...
    def check_lease(self, lease: Lease, now: datetime) -> None: ...
    def release_lease(self, lease: Lease) -> None: ...
    def get_lease(self, scope: str) -> Lease | None: ...


def holder_is_dead(owner: str, host: str | None = None) -> bool:
    """Provably dead: an owner of this host (``host:pid:nonce``) whose process is gone.

    Another host's holder, or an owner in another form, is never judged dead: its
    lease expires in its own time.
    """
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != (host or socket.gethostname()) or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


def default_owner() -> str:
    """Unique per process and per keeper: two sweeps on one host must not share an owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    def __init__(
        self,
        store: LeaseStore | StateStore,
        scope: str,
        *,
        ttl: timedelta = DEFAULT_TTL,
        owner: str | None = None,
        clock: Clock = utc_now,
        wait_seconds: float = 0.0,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        shared: LeaseStore | None = None,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"a lease TTL must be positive, got {ttl}")
        self.store: LeaseStore = store
        self.shared = shared
        self._shared_lease: Lease | None = None
        self.scope = scope
        self.ttl = ttl
        self.owner = owner or default_owner()
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._sleep = sleep
        self._lease: Lease | None = None

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            raise LeaseLost(f"not holding the lease for {self.scope}: acquire it before mutating")
        return self._lease

    @property
    def held(self) -> bool:
        return self._lease is not None

    def acquire(self, wait_seconds: float | None = None) -> Lease:
        """Take the lease, polling while another sweep holds it for up to ``wait_seconds``.

        The attempt cap (one per poll interval in the wait) bounds the loop even when
        the clock used by ``stop_after_delay`` does not move, as under a fake sleep.
        """
        wait = self._wait_seconds if wait_seconds is None else wait_seconds
        attempts = 1 + max(0, math.ceil(wait / self._poll_seconds)) if wait > 0 and self._poll_seconds > 0 else 1
        retrying = Retrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(wait),
            wait=wait_fixed(self._poll_seconds),
            retry=retry_if_exception_type(LeaseHeld),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._lease = self._acquire_once()
        log.info("lease %s acquired by %s (fence %d)", self.scope, self.owner, self.lease.fence)
        return self.lease

    def _acquire_once(self) -> Lease:
        now = self._clock()
        local = self._take(self.store, now)
        if self.shared is not None:
            try:
                self._shared_lease = self._take(self.shared, now)
            except BaseException:
                self._release(self.store, local)  # not both: hold neither
                raise
        return local

    def _take(self, store: LeaseStore, now: datetime) -> Lease:
        try:
            return store.acquire_lease(self.scope, self.owner, self.ttl, now)
        except LeaseHeld as held:
            if held.fence is None or not holder_is_dead(held.owner):
                raise
            log.warning("lease %s: its holder %s is no longer running on this host; taking it over", self.scope, held.owner)
            dead = Lease(self.scope, held.owner, held.expires_at, held.fence)
            return store.acquire_lease(self.scope, self.owner, self.ttl, now, take_over=dead)

    def renew_if_due(self, now: datetime | None = None) -> bool:
        """Renew once more than half the TTL has passed; True when it renewed."""
        lease = self.lease
        now = now or self._clock()
        if lease.expires_at - now >= self.ttl / 2:
            return False
        try:
            self._lease = self.store.renew_lease(lease, self.ttl, now)
            if self.shared is not None:
                self._shared_lease = self.shared.renew_lease(self._held_shared(), self.ttl, now)
        except LeaseLost:
            self._lease = None
            raise
        return True

    def _held_shared(self) -> Lease:
        if self._shared_lease is None:
            raise LeaseLost(f"not holding the shared lease for {self.scope}: acquire it before mutating")
        return self._shared_lease

    def check(self, now: datetime | None = None) -> None:
        """Raise LeaseLost unless we still hold the lease; call before every mutation.

        When a renewal is due the renewal is the check (it is conditioned on our owner
        and fence), so this costs one store call either way.
        """
        now = now or self._clock()
        if self.renew_if_due(now):
            return
        try:
            self.store.check_lease(self.lease, now)
            if self.shared is not None:
                self.shared.check_lease(self._held_shared(), now)
        except LeaseLost:
            self._lease = None
            raise

    def release(self) -> None:
        lease, self._lease = self._lease, None
        shared, self._shared_lease = self._shared_lease, None
        if shared is not None and self.shared is not None:
            self._release(self.shared, shared)
        if lease is not None:
            self._release(self.store, lease)

    @staticmethod
    def _release(store: LeaseStore, lease: Lease) -> None:
        try:
            store.release_lease(lease)
        except Exception as exc:  # noqa: BLE001 - releasing is best effort by design, see module docstring
            log.warning(
                "could not release the lease for %s (it will expire at %s): %s",
                lease.scope,
                lease.expires_at.isoformat(),
                exc,
            )

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
