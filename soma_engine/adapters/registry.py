"""AdapterRegistry: who trained which adapter, from which lineage, near which warm-start
centroid; queried by sharing (faiss inner product over unit centroids) and kept in SQLite
(WAL) under ``<root>/registry.db``. Deleting a session removes its rows, and the rows of every
session that adopted one of its adapters."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..types import SessionKey, hash_id
from ..wal import wal_connection

if TYPE_CHECKING:
    from .store import AdapterRef


REGISTRY = "registry.db"
INDEXES_KEPT = 64  # namespaces whose faiss index stays cached (rebuilt from the rows on demand)
SHARE_POLICIES = ("none", "agent", "namespace")

REGISTRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS adapters (
    namespace TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    session TEXT NOT NULL,
    agent TEXT NOT NULL,
    agents TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent TEXT,
    donor TEXT,
    accepted INTEGER NOT NULL,
    shareable INTEGER NOT NULL,
    centroid BLOB,
    metrics TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (namespace, adapter_id, session)
);
CREATE INDEX IF NOT EXISTS adapters_session ON adapters(namespace, session);
CREATE TABLE IF NOT EXISTS generations (namespace TEXT PRIMARY KEY, gen INTEGER NOT NULL);
"""


def agent_digest(key: SessionKey) -> str:
    """The agent as the registry stores it: a digest bound to the namespace (never a name)."""
    return hash_id(key.namespace, key.agent)


@dataclass
class RegistryEntry:
    """One registry row: an adapter as one session holds it (``kind`` "trained" or "adopted")."""

    namespace: str  # namespace digest
    adapter_id: str
    session: str  # session digest
    agent: str  # agent digest (agent_digest)
    agents: list[str]  # agent digests whose conversations shaped the weights (the lineage's)
    kind: str
    parent: str | None  # adapter the weights started from (trained) or were adopted from
    donor: str | None  # session digest of the donor (adopted rows)
    accepted: bool
    shareable: bool
    centroid: np.ndarray | None
    metrics: dict[str, Any]
    size_bytes: int
    created: float
    last_used: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["centroid"] = None if self.centroid is None else [round(float(x), 6) for x in self.centroid]
        return d


@dataclass
class Match:
    entry: RegistryEntry
    similarity: float  # cosine between the query centroid and the entry's


class AdapterRegistry:
    """Every saved adapter, per namespace: SQLite (WAL, safe across threads and processes), one
    row per (namespace, adapter, session), and a faiss inner-product index of the shareable
    rows' centroids per namespace, built on first query and rebuilt after any write (a
    per-namespace generation counter in the file tells other processes' writes apart).

    Queries take the caller's :class:`SessionKey`: rows come from its namespace only, never
    from its own session, and under ``share="agent"`` only from weights shaped by its agent
    alone."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._index_lock = threading.Lock()
        self._indexes: dict[str, tuple[int, Any, dict[int, int]]] = {}  # ns -> (gen, index, faiss id -> rowid)
        self._touched: dict[tuple[str, str, str], float] = {}
        self.touch_every = 60.0  # seconds between last_used writes of one (adapter, session)
        with self._conn() as db:
            db.executescript(REGISTRY_SCHEMA)

    def __repr__(self) -> str:
        return f"AdapterRegistry({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        return wal_connection(self._local, self.path)

    def _write(self, namespace: str, sql: str, args: tuple[Any, ...]) -> int:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(sql, args)
            db.execute(
                "INSERT INTO generations(namespace, gen) VALUES (?, 1) "
                "ON CONFLICT(namespace) DO UPDATE SET gen = gen + 1",
                (namespace,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self._index_lock:
            self._indexes.pop(namespace, None)
        return cur.rowcount

    # -- writes ----------------------------------------------------------------------------
    def record(
        self,
        ref: AdapterRef,
        key: SessionKey,
        *,
        centroid: np.ndarray | None,
        accepted: bool,
        kind: str = "trained",
        donor: str | None = None,
        agents: list[str] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> RegistryEntry:
        """Record (or update) ``ref`` as held by ``key``'s session. Only accepted adapters are
        shareable. ``agents``: the agent digests of the lineage (default: this agent only)."""
        entry = new_entry(
            ref, key, centroid=centroid, accepted=accepted, kind=kind, donor=donor, agents=agents, metrics=metrics
        )
        vec, now = entry.centroid, entry.last_used
        self._write(
            entry.namespace,
            "INSERT INTO adapters(namespace, adapter_id, session, agent, agents, kind, parent, donor, accepted, "
            "shareable, centroid, metrics, size_bytes, created, last_used) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(namespace, adapter_id, session) DO UPDATE SET agents=excluded.agents, kind=excluded.kind, "
            "parent=excluded.parent, donor=excluded.donor, accepted=excluded.accepted, shareable=excluded.shareable, "
            "centroid=excluded.centroid, metrics=excluded.metrics, last_used=excluded.last_used",
            (
                entry.namespace,
                entry.adapter_id,
                entry.session,
                entry.agent,
                ",".join(entry.agents),
                entry.kind,
                entry.parent,
                entry.donor,
                int(accepted),
                int(accepted),
                None if vec is None else vec.astype(np.float32).tobytes(),
                json.dumps(entry.metrics, default=str),
                entry.size_bytes,
                entry.created,
                now,
            ),
        )
        return entry

    def mark(self, namespace: str, adapter_id: str, session: str, *, accepted: bool) -> bool:
        """Set a row's acceptance (and with it whether it may be shared)."""
        return bool(
            self._write(
                namespace,
                "UPDATE adapters SET accepted=?, shareable=? WHERE namespace=? AND adapter_id=? AND session=?",
                (int(accepted), int(accepted), namespace, adapter_id, session),
            )
        )

    def touch(self, namespace: str, adapter_id: str, session: str, now: float | None = None) -> bool:
        """Note that a session served with the adapter (written at most every ``touch_every`` s;
        last_used is not indexed, so the faiss index stays valid)."""
        now = time.time() if now is None else now
        k = (namespace, adapter_id, session)
        if now - self._touched.get(k, 0.0) < self.touch_every:
            return False
        if len(self._touched) > 10_000:  # bounded: forgetting only costs an early write
            self._touched.clear()
        self._touched[k] = now
        self._conn().execute(
            "UPDATE adapters SET last_used=? WHERE namespace=? AND adapter_id=? AND session=?",
            (now, namespace, adapter_id, session),
        )
        return True

    def delete_session(self, namespace: str, session: str, adapter_ids: list[str] | None = None) -> int:
        """Remove a session's rows, and every row of ``adapter_ids`` (adapters whose files are
        gone: the sessions that adopted them lose their rows too)."""
        n = self._write(namespace, "DELETE FROM adapters WHERE namespace=? AND session=?", (namespace, session))
        for adapter_id in adapter_ids or []:
            n += self.delete_adapter(namespace, adapter_id)
        return n

    def retire(self, namespace: str, adapter_id: str, session: str) -> int:
        """A superseded adapter whose files are gone: kept for lineage, not shareable."""
        return self._write(
            namespace,
            "UPDATE adapters SET shareable=0 WHERE namespace=? AND adapter_id=? AND session=?",
            (namespace, adapter_id, session),
        )

    def delete_adapter(self, namespace: str, adapter_id: str) -> int:
        return self._write(
            namespace, "DELETE FROM adapters WHERE namespace=? AND adapter_id=?", (namespace, adapter_id)
        )

    # -- reads -----------------------------------------------------------------------------
    def entries(self, namespace: str, session: str | None = None) -> list[RegistryEntry]:
        """The rows of one namespace (digest), optionally of one session, oldest first."""
        sql, args = "SELECT * FROM adapters WHERE namespace=?", [namespace]
        if session is not None:
            sql, args = sql + " AND session=?", [*args, session]
        rows = self._conn().execute(sql + " ORDER BY created, session", args).fetchall()
        return [_entry(r) for r in rows]

    def get(self, namespace: str, adapter_id: str, session: str) -> RegistryEntry | None:
        row = (
            self._conn()
            .execute(
                "SELECT * FROM adapters WHERE namespace=? AND adapter_id=? AND session=?",
                (namespace, adapter_id, session),
            )
            .fetchone()
        )
        return _entry(row) if row else None

    def lineage(self, namespace: str, adapter_id: str, session: str, depth: int = 8) -> list[dict[str, Any]]:
        """The adapter, then where its weights came from (parent / donor), newest first."""
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        entry = self.get(namespace, adapter_id, session)
        while entry is not None and len(out) < depth and (entry.adapter_id, entry.session) not in seen:
            seen.add((entry.adapter_id, entry.session))
            out.append({k: getattr(entry, k) for k in ("adapter_id", "session", "kind", "parent", "donor")})
            if entry.kind == "adopted" and entry.donor:
                entry = self.get(namespace, entry.adapter_id, entry.donor)
            elif entry.parent:
                entry = self._origin(namespace, entry.parent)
            else:
                entry = None
        return out

    def _origin(self, namespace: str, adapter_id: str) -> RegistryEntry | None:
        """The row an adapter id's weights come from: its trained row, else the oldest."""
        row = (
            self._conn()
            .execute(
                "SELECT * FROM adapters WHERE namespace=? AND adapter_id=? ORDER BY kind != 'trained', created LIMIT 1",
                (namespace, adapter_id),
            )
            .fetchone()
        )
        return _entry(row) if row else None

    def _index(self, namespace: str) -> tuple[Any, dict[int, int]] | None:
        """The namespace's faiss index of shareable centroids (faiss id -> rowid)."""
        import faiss

        db = self._conn()
        row = db.execute("SELECT gen FROM generations WHERE namespace=?", (namespace,)).fetchone()
        gen = row[0] if row else 0
        with self._index_lock:
            cached = self._indexes.pop(namespace, None)
            if cached is not None and cached[0] == gen:
                self._indexes[namespace] = cached  # most recently used last
                return cached[1], cached[2]
        rows = db.execute(
            "SELECT rowid, centroid FROM adapters WHERE namespace=? AND shareable=1 AND centroid IS NOT NULL",
            (namespace,),
        ).fetchall()
        if not rows:
            return None
        vecs = np.stack([np.frombuffer(c, dtype=np.float32) for _, c in rows])
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(np.ascontiguousarray(vecs))
        ids = {i: int(r[0]) for i, r in enumerate(rows)}
        with self._index_lock:
            self._indexes[namespace] = (gen, index, ids)
            while len(self._indexes) > INDEXES_KEPT:  # least recently used namespace first
                del self._indexes[next(iter(self._indexes))]
        return index, ids

    def nearest(
        self, key: SessionKey, centroid: np.ndarray, share: str, *, k: int = 4, min_similarity: float = -1.0
    ) -> list[Match]:
        """Shareable adapters near ``centroid`` that ``key``'s session may use under ``share``,
        best first, one per adapter id. ``"none"``: nothing."""
        if share not in SHARE_POLICIES:
            raise ValueError(f"unknown share policy {share!r}: use one of {', '.join(SHARE_POLICIES)}")
        if share == "none":
            return []
        namespace = key.namespace_digest
        built = self._index(namespace)
        if built is None:
            return []
        index, ids = built
        q = unit_vector(centroid).astype(np.float32)
        if q.shape[0] != index.d:
            return []
        sims, found = index.search(q[None, :], index.ntotal)
        by_rowid = {ids[int(i)]: float(s) for i, s in zip(found[0], sims[0], strict=True) if i >= 0}
        if not by_rowid:
            return []
        marks = ",".join("?" * len(by_rowid))
        rows = (
            self._conn()
            .execute(f"SELECT rowid, * FROM adapters WHERE rowid IN ({marks})", list(by_rowid))  # noqa: S608
            .fetchall()
        )
        scored = [(_entry(row[1:]), by_rowid[int(row[0])]) for row in rows]
        return best_matches(key, scored, share, k=k, min_similarity=min_similarity)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def new_entry(
    ref: AdapterRef,
    key: SessionKey,
    *,
    centroid: np.ndarray | None,
    accepted: bool,
    kind: str,
    donor: str | None,
    agents: list[str] | None,
    metrics: dict[str, Any] | None,
) -> RegistryEntry:
    """The registry row of ``ref`` held by ``key``'s session (every registry backend's)."""
    if ref.namespace != key.namespace_digest or ref.session != key.digest:
        raise ValueError("an adapter is recorded under its own session's key only")
    return RegistryEntry(
        namespace=ref.namespace,
        adapter_id=ref.adapter_id,
        session=ref.session,
        agent=agent_digest(key),
        agents=sorted(set(agents or []) | {agent_digest(key)}),
        kind=kind,
        parent=ref.parent,
        donor=donor,
        accepted=accepted,
        shareable=accepted,
        centroid=None if centroid is None else unit_vector(centroid),
        metrics=dict(metrics or {}),
        size_bytes=ref.size_bytes,
        created=ref.created,
        last_used=time.time(),
    )


def best_matches(
    key: SessionKey, scored: list[tuple[RegistryEntry, float]], share: str, *, k: int, min_similarity: float
) -> list[Match]:
    """The ``k`` best (entry, similarity) pairs ``key``'s session may use under ``share``, one
    per adapter id (every registry backend's sharing rule)."""
    me = agent_digest(key)
    best: dict[str, Match] = {}
    for entry, sim in scored:
        # The namespace check repeats the index's scope on purpose: a row of another
        # namespace must never come back, whatever the index holds.
        if entry.namespace != key.namespace_digest or entry.session == key.digest or not entry.shareable:
            continue
        if share == "agent" and entry.agents != [me]:
            continue
        if sim < min_similarity:
            continue
        if entry.adapter_id not in best or sim > best[entry.adapter_id].similarity:
            best[entry.adapter_id] = Match(entry, sim)
    return sorted(best.values(), key=lambda m: (-m.similarity, m.entry.created))[:k]


def unit_vector(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def _entry(row: tuple[Any, ...]) -> RegistryEntry:
    (ns, adapter_id, session, agent, agents, kind, parent, donor, acc, share, cen, metrics, size, created, used) = row
    return RegistryEntry(
        namespace=ns,
        adapter_id=adapter_id,
        session=session,
        agent=agent,
        agents=[a for a in agents.split(",") if a],
        kind=kind,
        parent=parent,
        donor=donor,
        accepted=bool(acc),
        shareable=bool(share),
        centroid=None if cen is None else np.frombuffer(cen, dtype=np.float32).copy(),
        metrics=json.loads(metrics),
        size_bytes=int(size),
        created=float(created),
        last_used=float(used),
    )
