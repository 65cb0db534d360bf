"""RedisStore: sessions in Redis, shared by every replica of an app and by ``soma worker``.

Keys (``P`` is the store's prefix, default ``soma``; every key is built from digests only, so
a hostile session id never reaches Redis' key space):

    P:s:{D}     the session's state (JSON string)              PX = session TTL, refreshed each write
    P:t:{D}     its turns (list; turn n at index n-1, JSON)    PX = session TTL, refreshed each write
    P:l:{D}     its lock: a random token                       PX = lease, renewed while held
    P:exp       sorted set "N:D" -> expiry time (for purge_expired: adapters of expired sessions)
    P:ns:N      sorted set D -> last update (list_sessions(namespace))
    P:all       sorted set "N:D" -> last update (list_sessions())

D is the session digest, N the namespace digest. ``{D}`` is a Redis Cluster hash tag; the
scripts also touch the per-prefix index sets, so use one Redis (or Sentinel), not Cluster.

Locking: a ``threading.Lock`` per session inside the process (threads never poll), then
``SET P:l:{D} token NX PX lease`` across processes; the lock is renewed by a background
thread while held (up to ``max_hold_seconds``) and expires on its own if the holder dies.
Load and lock are one script; the write is one script that checks the token first
(fencing: a holder whose lock expired and was taken over writes nothing and gets
:class:`LockTimeout`), sets state and appends the turns with their TTL, updates the indexes
and releases the lock, atomically. Release on error is a compare-and-delete script.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, is_dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from ..adapters import (
    SHARE_POLICIES,
    AdapterRef,
    AdapterRegistry,
    AdapterStore,
    Match,
    RegistryEntry,
    best_matches,
    new_entry,
    unit_vector,
)
from ..types import SessionKey, TurnRecord, hash_id
from .base import LockTimeout, SessionGone, SessionState, StoreError, expand_contexts

# KEYS: lock, state   ARGV: token, lease_ms  ->  {1, state or false} | {0, pttl}
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
"""

# KEYS: lock, state, turns, exp, ns index, all index
# ARGV: token, state json, ttl_ms, expires, updated, "N:D", D, release (0/1), turn json...
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local n = #ARGV
local i = 9
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[7])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[6])
if ARGV[8] == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: lock   ARGV: token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lock   ARGV: token, lease_ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: state, turns, lock, exp, ns index, all index   ARGV: "N:D", D, cutoff (or '' for unconditional)
# Unconditional (delete): removes the session and its lock (a holder's pending write then
# fails) -> 1. With a cutoff (purge): only when its expiry is still before the cutoff and
# nobody holds its lock (a turn starting the session afresh) -> 1, else 0.
_DROP = """
if ARGV[3] ~= '' then
  local score = redis.call('ZSCORE', KEYS[4], ARGV[1])
  if score and tonumber(score) >= tonumber(ARGV[3]) then return 0 end
  if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
"""

STORE_PARAMS = ("prefix", "adapters", "lease")


def _json_default(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _dumps(obj: Any, skip: str = "") -> str:
    """JSON of a dataclass, the same as ``json.dumps(obj.to_dict())`` without the deep copy
    that ``asdict`` makes (the teacher path writes one state and one turn per turn)."""
    return json.dumps({f: getattr(obj, f) for f in obj.__dataclass_fields__ if f != skip}, default=_json_default)


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``redis://host:port/db?prefix=p&adapters=URL`` -> (URL for redis-py, SOMA's params)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in STORE_PARAMS}
    rest = [(k, v) for k, v in query if k not in STORE_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


class _Held:
    __slots__ = ("token", "since", "lost")

    def __init__(self, token: str) -> None:
        self.token = token
        self.since = time.monotonic()
        self.lost = False


class RedisStore:
    """``SessionStore`` on Redis (redis-py). ``url``: ``redis://host:port/db``; or pass
    ``client`` (a ``redis.Redis``)."""

    supports_queue = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "soma",
        adapters: AdapterStore | None = None,
        lease_seconds: float = 10.0,
        renew: bool = True,
        max_hold_seconds: float = 600.0,
    ) -> None:
        try:
            import redis
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f'{exc}: a Redis store needs the [redis] extra: pip install "soma-middleware[redis]"', name=exc.name
            ) from exc

        if client is None:
            if not url:
                raise ValueError("RedisStore needs a redis:// URL or a redis.Redis client")
            url, params = split_url(url)
            prefix = params.get("prefix", prefix)
            if "lease" in params:
                lease_seconds = float(params["lease"])
            client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        if not prefix or any(c in prefix for c in " {}\n"):
            raise ValueError(f"invalid Redis key prefix {prefix!r}")
        self.url = url
        self.redis = client
        self.prefix = prefix
        self.adapters = adapters
        self.lease_seconds = float(lease_seconds)
        self.renew = renew
        self.max_hold_seconds = max_hold_seconds
        self._acquire = client.register_script(_ACQUIRE)
        self._commit = client.register_script(_COMMIT)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._drop = client.register_script(_DROP)
        self._locks: dict[str, list[Any]] = {}  # digest -> [threading.Lock, users]
        self._locks_guard = threading.Lock()
        self._held: dict[str, _Held] = {}  # lock key -> token, while held by this process
        self._renewer: threading.Thread | None = None
        self._closed = threading.Event()
        try:
            client.ping()
        except redis.RedisError as exc:
            raise StoreError(f"cannot reach Redis at {self._where()}: {exc}") from exc
        if adapters is not None and adapters._registry is None:
            # One registry for every replica: sharing and deletes see the same rows.
            adapters._registry = RedisRegistry(client, prefix)

    def _where(self) -> str:
        kw = self.redis.connection_pool.connection_kwargs
        if "path" in kw:
            return f"unix://{kw['path']}"
        return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    def __repr__(self) -> str:
        return f"RedisStore({self._where()!r}, prefix={self.prefix!r})"

    # -- keys --------------------------------------------------------------------------------
    def _k(self, kind: str, digest: str) -> str:
        return f"{self.prefix}:{kind}:{{{digest}}}"

    @property
    def _exp(self) -> str:
        return f"{self.prefix}:exp"

    @property
    def _all(self) -> str:
        return f"{self.prefix}:all"

    def _ns(self, ns_digest: str) -> str:
        return f"{self.prefix}:ns:{ns_digest}"

    @staticmethod
    def _member(state: SessionState) -> str:
        return f"{hash_id(state.namespace)}:{state.key}"

    # -- locking -----------------------------------------------------------------------------
    @contextmanager
    def _thread_lock(self, digest: str, timeout: float) -> Iterator[None]:
        with self._locks_guard:
            entry = self._locks.get(digest)
            if entry is None:
                entry = self._locks[digest] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            if not entry[0].acquire(timeout=max(timeout, 0)):
                raise LockTimeout(f"session {digest[:12]}... stayed locked for {timeout}s")
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    self._locks.pop(digest, None)

    def _lock_and_load(self, digest: str, token: str, deadline: float) -> bytes | None:
        lock, state = self._k("l", digest), self._k("s", digest)
        lease_ms = int(self.lease_seconds * 1000)
        delay = 0.001
        while True:
            ok, value = self._acquire(keys=[lock, state], args=[token, lease_ms])
            if ok == 1:
                return value
            now = time.monotonic()
            if now > deadline:
                raise LockTimeout(f"session is locked by another process (key {digest[:12]}...)")
            # Wait a little, never past the deadline, nor much past the holder's lease.
            pttl = int(value) / 1000 if value and int(value) > 0 else delay
            time.sleep(max(0.0005, min(delay, pttl, deadline - now)))
            delay = min(delay * 2, 0.05)

    def _start_renewer(self) -> None:
        if self._renewer is not None or not self.renew:
            return
        with self._locks_guard:
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_loop, name="soma-redis-lease", daemon=True)
                self._renewer.start()

    def _renew_loop(self) -> None:
        """Extend every lock this process holds, every third of the lease."""
        lease_ms = int(self.lease_seconds * 1000)
        while not self._closed.wait(self.lease_seconds / 3):
            for lock_key, held in list(self._held.items()):
                if held.lost or time.monotonic() - held.since > self.max_hold_seconds:
                    continue  # let it expire: a holder stuck this long must not block the session forever
                try:
                    if not self._renew(keys=[lock_key], args=[held.token, lease_ms]):
                        held.lost = True
                except Exception:  # a Redis hiccup: try again next round
                    continue

    @contextmanager
    def session(
        self, key: SessionKey, ttl: float, timeout: float = 30.0, *, create: bool = True
    ) -> Iterator[SessionState]:
        """See :meth:`SessionStore.session`; ``create=False`` raises :class:`SessionGone` for a
        missing (deleted, expired) session instead of creating it."""
        deadline = time.monotonic() + timeout
        digest = key.digest
        with self._thread_lock(digest, timeout):
            token = uuid.uuid4().hex
            raw = self._lock_and_load(digest, token, deadline)
            lock_key = self._k("l", digest)
            self._held[lock_key] = _Held(token)
            self._start_renewer()
            try:
                try:
                    if not raw and not create:
                        raise SessionGone(f"session {digest[:12]}... does not exist (deleted or expired)")
                    state = SessionState.from_dict(json.loads(raw)) if raw else SessionState.new(key, ttl)
                    yield state
                    self._save(state, ttl, token)
                except BaseException:
                    self._held.pop(lock_key, None)
                    with suppress(Exception):  # else the lock expires on its own
                        self._release(keys=[lock_key], args=[token])
                    raise
            finally:
                self._held.pop(lock_key, None)

    def _save(self, state: SessionState, ttl: float, token: str) -> None:
        now = time.time()
        state.updated = now
        state.expires = now + ttl
        pending, state.pending = state.pending, []
        try:
            doc = _dumps(state, skip="pending")
            turns = [_dumps(r) for r in pending]
            d = state.key
            ok = self._commit(
                keys=[
                    self._k("l", d),
                    self._k("s", d),
                    self._k("t", d),
                    self._exp,
                    self._ns(hash_id(state.namespace)),
                    self._all,
                ],
                args=[token, doc, max(1, int(ttl * 1000)), repr(state.expires), repr(now), self._member(state), d, 1]
                + turns,
            )
        except BaseException:
            state.pending = pending + state.pending
            raise
        if ok != 1:
            state.pending = pending + state.pending
            if not self.redis.exists(self._k("l", state.key), self._k("s", state.key)):
                # No holder at all: a delete removed the session and its lock.
                raise SessionGone(f"session {state.key[:12]}... was deleted while held; state not written")
            # Fencing: the lock expired and another process may have taken the session; our
            # state is stale, and writing it would silently undo that process's turns.
            raise LockTimeout(f"lock on session {state.key[:12]}... was lost; state not written")

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: SessionKey) -> SessionState | None:
        raw = self.redis.get(self._k("s", key.digest))
        return SessionState.from_dict(json.loads(raw)) if raw else None

    def get_by_digest(self, digest: str) -> SessionState | None:
        """The state of the session with this digest (queue jobs carry digests, not ids)."""
        if not digest.isalnum():
            raise ValueError("invalid session digest")
        raw = self.redis.get(self._k("s", digest))
        return SessionState.from_dict(json.loads(raw)) if raw else None

    def turns(self, key: SessionKey, since: int = 0, limit: int | None = None) -> list[TurnRecord]:
        since = max(0, int(since))
        end = -1 if limit is None else since + int(limit) - 1
        if limit is not None and limit <= 0:
            return []
        rows = self.redis.lrange(self._k("t", key.digest), since, end)
        out = [TurnRecord.from_dict(json.loads(r)) for r in rows]
        if any(r.turn <= since for r in out):  # never expected (turn n sits at index n-1); be safe
            out = [r for r in self._all_turns(key) if r.turn > since][: limit if limit is not None else None]
        return expand_contexts(out, lambda turn: self._turn(key.digest, turn))

    def _turn(self, digest: str, turn: int) -> TurnRecord | None:
        raw = self.redis.lindex(self._k("t", digest), turn - 1)
        record = TurnRecord.from_dict(json.loads(raw)) if raw else None
        return record if record is not None and record.turn == turn else None

    def _all_turns(self, key: SessionKey) -> list[TurnRecord]:
        rows = self.redis.lrange(self._k("t", key.digest), 0, -1)
        return sorted((TurnRecord.from_dict(json.loads(r)) for r in rows), key=lambda r: r.turn)

    def list_sessions(self, namespace: str | None = None) -> Iterator[SessionState]:
        """Newest first. Index entries of sessions Redis has expired are skipped (and
        dropped from the listing indexes; :meth:`purge_expired` still sees them)."""
        index = self._all if namespace is None else self._ns(hash_id(namespace))
        members = [m.decode() for m in self.redis.zrevrange(index, 0, -1)]
        for i in range(0, len(members), 256):
            chunk = members[i : i + 256]
            digests = [m.rsplit(":", 1)[-1] for m in chunk]
            raws = self.redis.mget([self._k("s", d) for d in digests])
            gone = [m for m, raw in zip(chunk, raws, strict=True) if raw is None]
            if gone:
                self.redis.zrem(index, *gone)
            for raw in raws:
                if raw is not None:
                    yield SessionState.from_dict(json.loads(raw))

    # -- retention ---------------------------------------------------------------------------
    def _drop_session(self, ns_digest: str, digest: str, cutoff: float | None) -> bool:
        member = f"{ns_digest}:{digest}"
        keys = [
            self._k("s", digest),
            self._k("t", digest),
            self._k("l", digest),
            self._exp,
            self._ns(ns_digest),
            self._all,
        ]
        dropped = bool(self._drop(keys=keys, args=[member, digest, "" if cutoff is None else repr(cutoff)]))
        if dropped and self.adapters is not None:
            self.adapters.delete_session(ns_digest, digest)
        return dropped

    def delete(self, key: SessionKey) -> bool:
        """Remove the session's state, turns, lock (a holder's pending write then fails) and
        adapters."""
        exists = self.redis.exists(self._k("s", key.digest))
        self._drop_session(key.namespace_digest, key.digest, None)
        return bool(exists)

    def purge_expired(self, now: float | None = None) -> list[SessionState]:
        """Sessions whose expiry is before ``now``: keys (if Redis has not expired them
        already), index entries and adapters. A session Redis already expired comes back as
        a bare state (digests only: its id is gone with its data)."""
        now = time.time() if now is None else now
        members = [m.decode() for m in self.redis.zrangebyscore(self._exp, "-inf", f"({now!r}")]
        out = []
        for member in members:
            ns_digest, _, digest = member.partition(":")
            raw = self.redis.get(self._k("s", digest))
            if not self._drop_session(ns_digest, digest, now):
                continue  # written again meanwhile
            if raw:
                out.append(SessionState.from_dict(json.loads(raw)))
            else:
                out.append(SessionState(key=digest, namespace=ns_digest, agent="", session_id=digest, expires=now))
        return out

    def close(self) -> None:
        self._closed.set()
        if self._renewer is not None:
            self._renewer.join(timeout=2)
        with suppress(Exception):
            self.redis.close()


REGISTRY_WRITE_ATTEMPTS = 50  # optimistic (WATCH) attempts of one registry write under contention


class RedisRegistry(AdapterRegistry):
    """The adapter registry in the store's Redis, shared by every replica and worker (a
    per-replica ``registry.db`` would not see the others' adapters or deletes). One hash per
    namespace, ``P:reg:{N}``: field ``<adapter id>:<session digest>`` -> the row as JSON.
    Sharing queries score the namespace's shareable centroids with numpy (a namespace holds
    few enough adapters that an index is not worth keeping in step across replicas)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.redis, self.prefix = client, prefix
        self._indexes: dict[str, Any] = {}  # none kept; the attribute the SQLite registry bounds
        self._touched: dict[tuple[str, str, str], float] = {}
        self.touch_every = 60.0

    def __repr__(self) -> str:
        return f"RedisRegistry(prefix={self.prefix!r})"

    def _h(self, namespace: str) -> str:
        if not namespace.isalnum():
            raise ValueError("invalid namespace digest")
        return f"{self.prefix}:reg:{{{namespace}}}"

    def _atomic(self, namespace: str, plan: Callable[[Any], Callable[[Any], None] | None]) -> bool:
        """A read-modify-write of the namespace's hash that no other writer can interleave with:
        ``plan(pipe)`` reads through the pipeline under WATCH and returns the writes (queued
        in MULTI) or None for none; if another writer changed the hash before EXEC, it runs
        again on what is there now. Returns whether it wrote."""
        from redis.exceptions import WatchError

        key = self._h(namespace)
        for attempt in range(REGISTRY_WRITE_ATTEMPTS):
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    write = plan(pipe)
                    if write is None:
                        return False
                    pipe.multi()
                    write(pipe)
                    pipe.execute()
                    return True
                except WatchError:
                    time.sleep(0.001 * attempt)  # contended: let the other writer finish
        raise StoreError(f"registry rows of namespace {namespace[:12]} kept changing: {REGISTRY_WRITE_ATTEMPTS} tries")

    def _change(
        self,
        namespace: str,
        adapter_id: str,
        session: str,
        change: Callable[[RegistryEntry | None], RegistryEntry | None],
    ) -> RegistryEntry | None:
        """Atomically replace one row by ``change(current row or None)`` (None: no write)."""
        field, out = f"{adapter_id}:{session}", []

        def plan(pipe: Any) -> Callable[[Any], None] | None:
            raw = pipe.hget(self._h(namespace), field)
            entry = change(_from_json(raw) if raw else None)
            out[:] = [entry]
            if entry is None:
                return None
            return lambda p: p.hset(self._h(namespace), field, json.dumps(entry.to_dict()))

        self._atomic(namespace, plan)
        return out[0] if out else None

    def _rows(self, namespace: str) -> list[RegistryEntry]:
        rows = [_from_json(v) for v in self.redis.hvals(self._h(namespace))]
        return sorted(rows, key=lambda e: (e.created, e.session))

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
        entry = new_entry(
            ref, key, centroid=centroid, accepted=accepted, kind=kind, donor=donor, agents=agents, metrics=metrics
        )

        def keep_created(old: RegistryEntry | None) -> RegistryEntry:
            entry.created = entry.created if old is None else old.created  # an update keeps the row's creation
            return entry

        self._change(entry.namespace, entry.adapter_id, entry.session, keep_created)
        return entry

    def _update(self, namespace: str, adapter_id: str, session: str, **fields: Any) -> bool:
        def update(entry: RegistryEntry | None) -> RegistryEntry | None:
            if entry is not None:  # a row deleted meanwhile stays deleted
                for name, value in fields.items():
                    setattr(entry, name, value)
            return entry

        return self._change(namespace, adapter_id, session, update) is not None

    def mark(self, namespace: str, adapter_id: str, session: str, *, accepted: bool) -> bool:
        return self._update(namespace, adapter_id, session, accepted=accepted, shareable=accepted)

    def retire(self, namespace: str, adapter_id: str, session: str) -> int:
        return int(self._update(namespace, adapter_id, session, shareable=False))

    def touch(self, namespace: str, adapter_id: str, session: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        k = (namespace, adapter_id, session)
        if now - self._touched.get(k, 0.0) < self.touch_every:
            return False
        if len(self._touched) > 10_000:  # bounded: forgetting only costs an early write
            self._touched.clear()
        self._touched[k] = now
        return self._update(namespace, adapter_id, session, last_used=now)

    def delete_session(self, namespace: str, session: str, adapter_ids: list[str] | None = None) -> int:
        ids, gone = set(adapter_ids or []), []

        def plan(pipe: Any) -> Callable[[Any], None] | None:
            rows = [_from_json(v) for v in pipe.hvals(self._h(namespace))]
            gone[:] = [f"{e.adapter_id}:{e.session}" for e in rows if e.session == session or e.adapter_id in ids]
            return (lambda p: p.hdel(self._h(namespace), *gone)) if gone else None

        return len(gone) if self._atomic(namespace, plan) else 0

    def delete_adapter(self, namespace: str, adapter_id: str) -> int:
        return self.delete_session(namespace, "", [adapter_id])

    def entries(self, namespace: str, session: str | None = None) -> list[RegistryEntry]:
        return [e for e in self._rows(namespace) if session is None or e.session == session]

    def get(self, namespace: str, adapter_id: str, session: str) -> RegistryEntry | None:
        raw = self.redis.hget(self._h(namespace), f"{adapter_id}:{session}")
        return _from_json(raw) if raw else None

    def _origin(self, namespace: str, adapter_id: str) -> RegistryEntry | None:
        rows = [e for e in self._rows(namespace) if e.adapter_id == adapter_id]
        return min(rows, key=lambda e: (e.kind != "trained", e.created), default=None)

    def nearest(
        self, key: SessionKey, centroid: np.ndarray, share: str, *, k: int = 4, min_similarity: float = -1.0
    ) -> list[Match]:
        if share not in SHARE_POLICIES:
            raise ValueError(f"unknown share policy {share!r}: use one of {', '.join(SHARE_POLICIES)}")
        if share == "none":
            return []
        q = unit_vector(centroid)
        rows = [
            e
            for e in self._rows(key.namespace_digest)
            if e.shareable and e.centroid is not None and e.centroid.shape == q.shape
        ]
        scored = [(e, float(np.dot(e.centroid, q))) for e in rows if e.centroid is not None]
        return best_matches(key, scored, share, k=k, min_similarity=min_similarity)

    def close(self) -> None:
        return None


def _from_json(raw: bytes | str) -> RegistryEntry:
    d = json.loads(raw)
    d["centroid"] = None if d.get("centroid") is None else np.asarray(d["centroid"], dtype=np.float32)
    return RegistryEntry(**d)
