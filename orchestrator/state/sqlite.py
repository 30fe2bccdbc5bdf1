"""SQLite adapter: the state store for manual runs on one machine.

WAL lets readers proceed while a sweep writes; every write is a ``BEGIN IMMEDIATE``
transaction, so two processes (a cron sweep and a manual ``orch heal``) take the
write lock before they read what they are about to decide on, and the busy timeout
makes the loser wait instead of failing. Each thread gets its own connection, which
is what sqlite3 wants, and SQLite's file lock then arbitrates between threads
exactly as it does between processes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from orchestrator.model import InstanceHistory
from orchestrator.state import codec
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

SCHEMA_VERSION = 1
IN_CHUNK = 500  # well under SQLite's bound-parameter limit on every build

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS histories (instance_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS actions (key TEXT PRIMARY KEY, instance_id TEXT NOT NULL,"
        " created_at TEXT NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS actions_by_instance ON actions (instance_id, created_at)",
    "CREATE INDEX IF NOT EXISTS actions_by_time ON actions (created_at)",
    "CREATE TABLE IF NOT EXISTS sweeps (sweep_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sweeps_by_time ON sweeps (started_at)",
    (
        "CREATE TABLE IF NOT EXISTS leases (scope TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        " expires_us INTEGER NOT NULL, fence INTEGER NOT NULL)"
    ),
    "CREATE TABLE IF NOT EXISTS pause (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alerts (scope TEXT PRIMARY KEY, data TEXT NOT NULL)",
)


class SqliteStore(LeaseBase):
    """StateStore over one SQLite file; safe to share between threads."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path).expanduser()
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the directory for the state file {self.path}: {exc.strerror or exc}; "
                "pass a state path in a writable directory (--state PATH)"
            ) from None
        self._init_schema()

    # -- plumbing ---------------------------------------------------------------

    def _describe(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return (
                f"the state file {self.path} is not a usable SQLite database ({text}): move it aside "
                "(orch starts a fresh one) or pass another path with --state"
            )
        if "locked" in text or "busy" in text:
            return (
                f"the state file {self.path} stayed locked for {self._busy_timeout_s:g}s ({text}): another orch "
                "process is writing it; wait for it to finish"
            )
        return f"cannot use the state file {self.path} ({text}): check that it and its directory are writable"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(self._describe(exc)) from exc

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StateError(f"the state store {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._errors():
                conn = sqlite3.connect(
                    self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
                )
                try:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = NORMAL")
                except sqlite3.Error:
                    conn.close()
                    raise
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its first read."""
        conn = self._conn()
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return self._conn().execute(sql, tuple(params)).fetchall()

    def _init_schema(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state file {self.path} was written by a newer orch (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}): upgrade orch or pass another path"
                )
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- histories --------------------------------------------------------------

    def get_histories(self, instance_ids: Iterable[str]) -> dict[str, InstanceHistory]:
        ids = sorted(set(instance_ids))
        found: dict[str, InstanceHistory] = {}
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for instance_id, data in self._read(
                f"SELECT instance_id, data FROM histories WHERE instance_id IN ({marks})", chunk
            ):
                found[instance_id] = codec.loads(InstanceHistory, data)
        return found

    def put_histories(self, histories: Iterable[InstanceHistory]) -> frozenset[str]:
        latest = {h.instance_id: h for h in histories}
        if not latest:
            return frozenset()
        now = codec.to_iso(codec.utc_now())
        moved: set[str] = set()
        with self._write() as conn:  # BEGIN IMMEDIATE: nobody writes between our reads and writes
            for instance_id, history in latest.items():
                row = conn.execute("SELECT data FROM histories WHERE instance_id = ?", (instance_id,)).fetchone()
                stored = json.loads(row[0]).get("version", 0) if row else None
                if (stored is None and history.version != 0) or (stored is not None and stored != history.version):
                    moved.add(instance_id)
                    continue
                data = codec.dumps(replace(history, version=history.version + 1))
                conn.execute(
                    "INSERT INTO histories (instance_id, data, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (instance_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                    (instance_id, data, now),
                )
        return frozenset(moved)

    # -- actions ----------------------------------------------------------------

    def put_action_intent(self, record: ActionRecord) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO actions (key, instance_id, created_at, status, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (
                    record.key,
                    record.instance_id,
                    codec.to_iso(record.created_at),
                    record.status.value,
                    codec.dumps(record),
                ),
            )
            return cursor.rowcount == 1

    def update_action(
        self,
        key: str,
        status: ActionStatus,
        now: datetime,
        detail: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> None:
        """An empty ``detail`` or ``None`` evidence keeps what is stored; given ones replace it."""
        with self._write() as conn:
            row = conn.execute("SELECT data FROM actions WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise StateError(f"no action recorded with key {key} in {self.path}")
            current = codec.loads(ActionRecord, row[0])
            updated = replace(
                current,
                status=status,
                updated_at=now,
                detail=detail or current.detail,
                evidence=current.evidence if evidence is None else dict(evidence),
            )
            conn.execute(
                "UPDATE actions SET status = ?, data = ? WHERE key = ?", (status.value, codec.dumps(updated), key)
            )

    def get_action(self, key: str) -> ActionRecord | None:
        rows = self._read("SELECT data FROM actions WHERE key = ?", (key,))
        return codec.loads(ActionRecord, rows[0][0]) if rows else None

    def list_actions(self, instance_id: str | None = None, limit: int = 50) -> list[ActionRecord]:
        if limit <= 0:
            return []
        if instance_id is None:
            rows = self._read("SELECT data FROM actions ORDER BY created_at DESC, key DESC LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT data FROM actions WHERE instance_id = ? ORDER BY created_at DESC, key DESC LIMIT ?",
                (instance_id, limit),
            )
        return [codec.loads(ActionRecord, data) for (data,) in rows]

    def actions_since(self, since: datetime, status: ActionStatus | None = None, limit: int = 1000) -> list[ActionRecord]:
        if status is None:
            sql, params = "SELECT data FROM actions WHERE created_at >= ? ORDER BY created_at, key LIMIT ?", (codec.to_iso(since), limit)
        else:
            sql = "SELECT data FROM actions WHERE status = ? AND created_at >= ? ORDER BY created_at, key LIMIT ?"
            params = (status.value, codec.to_iso(since), limit)  # type: ignore[assignment]
        return [codec.loads(ActionRecord, data) for (data,) in self._read(sql, params)]

    # -- sweeps -----------------------------------------------------------------

    def put_sweep(self, record: SweepRecord) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sweeps (sweep_id, started_at, data) VALUES (?, ?, ?) "
                "ON CONFLICT (sweep_id) DO UPDATE SET started_at = excluded.started_at, data = excluded.data",
                (record.sweep_id, codec.to_iso(record.started_at), codec.dumps(record)),
            )

    def list_sweeps(self, limit: int = 20) -> list[SweepRecord]:
        if limit <= 0:
            return []
        rows = self._read("SELECT data FROM sweeps ORDER BY started_at DESC, sweep_id DESC LIMIT ?", (limit,))
        return [codec.loads(SweepRecord, data) for (data,) in rows]

    # -- lease ------------------------------------------------------------------

    @staticmethod
    def _lease_row(scope: str, row: tuple[Any, ...] | None) -> Lease | None:
        if row is None:
            return None
        owner, expires_us, fence = row
        return Lease(scope=scope, owner=owner, expires_at=codec.from_us(expires_us), fence=fence)

    def _read_lease(self, scope: str) -> Lease | None:
        rows = self._read("SELECT owner, expires_us, fence FROM leases WHERE scope = ?", (scope,))
        return self._lease_row(scope, rows[0] if rows else None)

    def _put_lease(self, lease: Lease, read: Lease | None, now: datetime, take_over: bool) -> None:
        with self._write() as conn:  # BEGIN IMMEDIATE: the check and the write are one transaction
            row = conn.execute("SELECT owner, expires_us, fence FROM leases WHERE scope = ?", (lease.scope,)).fetchone()
            current = self._lease_row(lease.scope, row)
            if read is None:
                unchanged = current is None
            elif current is None:
                unchanged = False
            elif take_over:
                unchanged = (current.owner, current.fence) == (read.owner, read.fence)
            else:
                unchanged = current.fence == read.fence and current.expires_at <= now
            if not unchanged:
                raise LeaseConflict()
            conn.execute(
                "INSERT INTO leases (scope, owner, expires_us, fence) VALUES (?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE "
                "SET owner = excluded.owner, expires_us = excluded.expires_us, fence = excluded.fence",
                (lease.scope, lease.owner, codec.to_us(lease.expires_at), lease.fence),
            )

    def _extend_lease(self, lease: Lease, expires_at: datetime, now: datetime) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE leases SET expires_us = ? WHERE scope = ? AND owner = ? AND owner != '' AND fence = ? AND expires_us > ?",
                (codec.to_us(expires_at), lease.scope, lease.owner, lease.fence, codec.to_us(now)),
            )
            if cursor.rowcount != 1:
                raise LeaseConflict()

    def _clear_lease(self, lease: Lease) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE leases SET owner = '', expires_us = 0 WHERE scope = ? AND owner = ? AND owner != '' AND fence = ?",
                (lease.scope, lease.owner, lease.fence),
            )
            if cursor.rowcount != 1:
                raise LeaseConflict()

    # -- pause ------------------------------------------------------------------

    def get_pause(self) -> PauseState | None:
        rows = self._read("SELECT data FROM pause WHERE id = 1")
        return codec.loads(PauseState, rows[0][0]) if rows else None

    def set_pause(self, state: PauseState | None) -> None:
        with self._write() as conn:
            if state is None:
                conn.execute("DELETE FROM pause WHERE id = 1")
            else:
                conn.execute(
                    "INSERT INTO pause (id, data) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    (codec.dumps(state),),
                )

    def probe_write(self, token: str) -> None:
        """Prove the file takes writes (`orch doctor`): one row, under a key no sweep reads,
        written and deleted in one committed transaction."""
        with self._write() as conn:
            conn.execute("INSERT INTO alerts (scope, data) VALUES (?, ?)", (f"DOCTOR#{token}", "{}"))
            conn.execute("DELETE FROM alerts WHERE scope = ?", (f"DOCTOR#{token}",))

    # -- alerts -----------------------------------------------------------------

    def get_alerts(self, scope: str) -> AlertBook:
        rows = self._read("SELECT data FROM alerts WHERE scope = ?", (scope,))
        return codec.loads(AlertBook, rows[0][0]) if rows else AlertBook(scope)

    def put_alerts(self, book: AlertBook) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO alerts (scope, data) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET data = excluded.data",
                (book.scope, codec.dumps(book)),
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

