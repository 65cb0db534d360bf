"""SQLiteStore: the embedded default session store (one file, WAL, safe across threads and
processes).

Per-session locking has two layers: a ``threading.Lock`` per session inside the process
(so threads never poll; kept only while some thread uses it, so the map stays bounded), and
a lease row in ``locks`` across processes, which expires if its holder dies. State and the
turns queued during a locked section are written in one transaction, together with the
release of the lease. A delete removes the lease row too, so a holder's write then fails
(fencing, as in Redis). An expired session (``session_ttl``) is gone on read, not served.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..adapters import AdapterStore
from ..types import SessionKey, TurnRecord, hash_id
from ..wal import wal_connection
from .base import LockTimeout, SessionGone, SessionState, expand_contexts

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    agent TEXT NOT NULL,
    phase TEXT NOT NULL,
    expires REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_ns ON sessions(namespace);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
CREATE TABLE IF NOT EXISTS turns (
    key TEXT NOT NULL,
    turn INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (key, turn)
);
CREATE TABLE IF NOT EXISTS locks (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class SQLiteStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        adapters: AdapterStore | None = None,
        lease_seconds: float = 120.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.adapters = adapters
        self.lease_seconds = lease_seconds
        self._local = threading.local()
        self._locks: dict[str, list[Any]] = {}  # digest -> [threading.Lock, users]
        self._locks_guard = threading.Lock()
        self._owner = uuid.uuid4().hex
        with self._conn() as db:
            db.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        return wal_connection(self._local, self.path)

    # -- locking -----------------------------------------------------------------------
    @contextmanager
    def _thread_lock(self, key: str, timeout: float) -> Iterator[None]:
        with self._locks_guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=timeout):
                raise LockTimeout(f"session {key[:12]}... stayed locked for {timeout}s")
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    self._locks.pop(key, None)

    def _acquire_lease(self, db: sqlite3.Connection, key: str, deadline: float) -> None:
        delay = 0.001
        while True:
            now = time.time()
            cur = db.execute(
                "INSERT INTO locks(key, owner, expires) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET owner=excluded.owner, expires=excluded.expires "
                "WHERE locks.expires < ? OR locks.owner = excluded.owner",  # ours: the thread lock guards it
                (key, self._owner, now + self.lease_seconds, now),
            )
            if cur.rowcount == 1:
                return
            if now > deadline:
                raise LockTimeout(f"session is locked by another process (key {key[:12]}...)")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @contextmanager
    def session(
        self, key: SessionKey, ttl: float, timeout: float = 30.0, *, create: bool = True
    ) -> Iterator[SessionState]:
        """See :meth:`SessionStore.session`; ``create=False`` raises :class:`SessionGone` for a
        missing (deleted, expired) session instead of creating it."""
        with self._thread_lock(key.digest, timeout):
            db = self._conn()
            self._acquire_lease(db, key.digest, time.time() + timeout)
            try:
                state = self._load(db, key.digest, expired_too=True)
                if state is not None and state.expires < time.time():
                    self._delete_digest(db, state)  # expired: its turns must not join a new session
                    state = None
                if state is None:
                    if not create:
                        raise SessionGone(f"session {key.digest[:12]}... does not exist (deleted or expired)")
                    state = SessionState.new(key, ttl)
                yield state
            except BaseException:
                db.execute("DELETE FROM locks WHERE key=? AND owner=?", (key.digest, self._owner))
                raise
            self._save(db, state, ttl, release=True)

    def _save(self, db: sqlite3.Connection, state: SessionState, ttl: float, release: bool) -> None:
        now = time.time()
        state.updated = now
        state.expires = now + ttl
        pending, state.pending = state.pending, []
        db.execute("BEGIN IMMEDIATE")
        try:
            if release:
                # Fencing: if our lease expired and another process took the session, our
                # state is stale; writing it would silently undo that process's turns.
                cur = db.execute("DELETE FROM locks WHERE key=? AND owner=?", (state.key, self._owner))
                if cur.rowcount != 1:
                    if db.execute("SELECT 1 FROM locks WHERE key=?", (state.key,)).fetchone() is None:
                        # No holder at all: a delete removed the session and its lease.
                        raise SessionGone(f"session {state.key[:12]}... was deleted while held; state not written")
                    raise LockTimeout(f"lease on session {state.key[:12]}... was lost; state not written")
            db.execute(
                "INSERT INTO sessions(key, namespace, agent, phase, expires, updated, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "phase=excluded.phase, expires=excluded.expires, updated=excluded.updated, state=excluded.state",
                (state.key, state.namespace, state.agent, state.phase, state.expires, now, json.dumps(state.to_dict())),
            )
            db.executemany(
                "INSERT OR REPLACE INTO turns(key, turn, record) VALUES (?, ?, ?)",
                [(state.key, r.turn, json.dumps(r.to_dict())) for r in pending],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            state.pending = pending + state.pending
            raise

    # -- reads -------------------------------------------------------------------------
    def _load(self, db: sqlite3.Connection, digest: str, *, expired_too: bool = False) -> SessionState | None:
        """The session's state; None when missing or, unless ``expired_too``, past its TTL."""
        row = db.execute(
            "SELECT state FROM sessions WHERE key=? AND expires >= ?", (digest, 0.0 if expired_too else time.time())
        ).fetchone()
        return SessionState.from_dict(json.loads(row[0])) if row else None

    def get(self, key: SessionKey) -> SessionState | None:
        return self._load(self._conn(), key.digest)

    def turns(self, key: SessionKey, since: int = 0, limit: int | None = None) -> list[TurnRecord]:
        rows = self._conn().execute(
            "SELECT t.record FROM turns t JOIN sessions s ON s.key = t.key "
            "WHERE t.key=? AND t.turn>? AND s.expires >= ? ORDER BY t.turn LIMIT ?",
            (key.digest, since, time.time(), -1 if limit is None else limit),
        )
        records = [TurnRecord.from_dict(json.loads(r[0])) for r in rows]
        return expand_contexts(records, lambda turn: self._turn(key.digest, turn))

    def _turn(self, digest: str, turn: int) -> TurnRecord | None:
        row = self._conn().execute("SELECT record FROM turns WHERE key=? AND turn=?", (digest, turn)).fetchone()
        return TurnRecord.from_dict(json.loads(row[0])) if row else None

    def list_sessions(self, namespace: str | None = None) -> Iterator[SessionState]:
        now = time.time()
        if namespace is None:
            rows = (
                self._conn()
                .execute("SELECT state FROM sessions WHERE expires >= ? ORDER BY updated DESC", (now,))
                .fetchall()
            )
        else:
            rows = (
                self._conn()
                .execute(
                    "SELECT state FROM sessions WHERE namespace=? AND expires >= ? ORDER BY updated DESC",
                    (namespace, now),
                )
                .fetchall()
            )
        for (s,) in rows:
            yield SessionState.from_dict(json.loads(s))

    # -- retention ---------------------------------------------------------------------
    def _delete_digest(
        self, db: sqlite3.Connection, state: SessionState, *, fence: bool = False, cutoff: float | None = None
    ) -> bool:
        """Remove the session's rows (and with ``fence`` its lease: a holder's write then
        fails), then its adapters; with ``cutoff``, only if it still expires before it (a turn
        may have started the id afresh since it was listed). ``secure_delete`` (wal.py) zeroes
        the freed pages and the checkpoint moves them out of the ``-wal`` file, so the text
        does not linger on disk."""
        db.execute("BEGIN IMMEDIATE")
        try:
            if cutoff is not None:
                cur = db.execute("DELETE FROM sessions WHERE key=? AND expires < ?", (state.key, cutoff))
                if cur.rowcount == 0:
                    db.execute("ROLLBACK")
                    return False
            db.execute("DELETE FROM sessions WHERE key=?", (state.key,))
            db.execute("DELETE FROM turns WHERE key=?", (state.key,))
            if fence:
                db.execute("DELETE FROM locks WHERE key=?", (state.key,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if self.adapters is not None:
            self.adapters.delete_session(hash_id(state.namespace), state.key)
        return True

    def delete(self, key: SessionKey) -> bool:
        """Remove the session's state, turns, lease (a holder's pending write then fails with
        :class:`SessionGone`) and adapters. True when the session existed (expired or not)."""
        db = self._conn()
        state = self._load(db, key.digest, expired_too=True)
        self._delete_digest(db, state or SessionState.new(key, 0.0), fence=True)
        return state is not None

    def purge_expired(self, now: float | None = None) -> list[SessionState]:
        db = self._conn()
        now = time.time() if now is None else now
        rows = db.execute("SELECT state FROM sessions WHERE expires < ?", (now,)).fetchall()
        expired = [SessionState.from_dict(json.loads(r[0])) for r in rows]
        return [state for state in expired if self._delete_digest(db, state, cutoff=now)]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
