"""The session store suite, run against ``SQLiteStore`` and ``RedisStore`` (a real
``redis-server``, see tests/redis_fixtures.py): state and turns round trip, per-session
locking (threads, and a second store instance on the same file / Redis, as another process
would have), lock expiry with fencing, TTL expiry, delete with the session's adapters.
Backend-specific checks follow the shared suite: WAL mode for SQLite; native TTL, lock
renewal, digest-only keys and expiry done by Redis itself for Redis."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from soma_engine.adapters import AdapterStore
from soma_engine.session import COUNTERS, LockTimeout, SessionStore, SQLiteStore, StoreError, open_store
from soma_engine.types import Phase, SessionKey, TurnRecord

TTL = 3600.0


def key(sid: str = "s1", ns: str = "default", agent: str = "") -> SessionKey:
    return SessionKey(ns, sid, agent)


def record(query: str, served_by: str = "teacher") -> TurnRecord:
    return TurnRecord(
        turn=0,
        served_by=served_by,  # type: ignore[arg-type]
        query=query,
        answer=f"answer to {query}",
        messages=[{"role": "user", "content": query}],
        input_tokens=3,
        output_tokens=4,
    )


class Backend:
    """Opens store instances on one backing database (a SQLite file, or a Redis server and
    key prefix): each instance stands for another process."""

    def __init__(self, name: str, tmp_path: Path, redis_url: str | None = None, prefix: str = "") -> None:
        self.name, self.tmp_path, self.redis_url, self.prefix = name, tmp_path, redis_url, prefix
        self.opened: list[Any] = []

    def open(
        self, *, adapters: AdapterStore | None = None, lease_seconds: float | None = None, renew: bool = True
    ) -> Any:
        """``renew=False``: a holder that stops renewing its lock, as a dead process does
        (SQLite leases are never renewed)."""
        if self.name == "sqlite":
            s = SQLiteStore(self.tmp_path / "soma.db", adapters=adapters, lease_seconds=lease_seconds or 120.0)
        else:
            from soma_engine.session.redis import RedisStore

            s = RedisStore(
                self.redis_url,
                prefix=self.prefix,
                adapters=adapters,
                lease_seconds=lease_seconds or 10.0,
                renew=renew,
            )
        self.opened.append(s)
        return s


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "redis":
        b = Backend("redis", tmp_path, request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix"))
    else:
        b = Backend("sqlite", tmp_path)
    yield b
    for s in b.opened:
        s.close()


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Any:
    return backend.open(adapters=AdapterStore(tmp_path / "adapters"))


# ------------------------------------------------------------------------------- round trip


def test_store_satisfies_protocol(store: Any) -> None:
    assert isinstance(store, SessionStore)


def test_state_round_trip_with_counters(store: Any, backend: Backend) -> None:
    k = key("round-trip", agent="planner")
    assert store.get(k) is None
    with store.session(k, TTL) as st:
        assert st.turn_count == 0 and st.phase == Phase.WARM.value
        st.phase = Phase.SERVING.value
        st.adapter = {"adapter_id": "abc123", "namespace": k.namespace_digest, "session": k.digest, "version": 2}
        st.adapter_version = 2
        st.locality = {"centroid": [0.1, 0.2]}
        st.decisions.append({"accepted": True, "fidelity": 0.8})
        st.add("teacher_calls")
        st.add("teacher_input_tokens", 120)
        st.add("teacher_output_tokens", 30)
        st.add("surrogate_latency_ms", 12.5)
    # A fresh store instance on the same file / Redis reads exactly what was written.
    other = backend.open()
    got = other.get(k)
    assert got is not None
    assert got.key == k.digest
    assert (got.namespace, got.agent, got.session_id) == ("default", "planner", "round-trip")
    assert got.phase == "serving"
    assert got.adapter == {"adapter_id": "abc123", "namespace": k.namespace_digest, "session": k.digest, "version": 2}
    assert got.adapter_version == 2
    assert got.locality == {"centroid": [0.1, 0.2]}
    assert got.decisions == [{"accepted": True, "fidelity": 0.8}]
    assert got.counters["teacher_calls"] == 1
    assert got.counters["teacher_input_tokens"] == 120
    assert got.counters["teacher_output_tokens"] == 30
    assert got.counters["surrogate_latency_ms"] == pytest.approx(12.5)
    assert set(COUNTERS) <= set(got.counters)
    assert got.expires > time.time() + TTL - 60


def test_turns_appended_in_order(store: Any) -> None:
    k = key()
    with store.session(k, TTL) as st:
        st.add_turn(record("q1"))
        st.add_turn(record("q2"))
    with store.session(k, TTL) as st:
        assert st.turn_count == 2
        st.add_turn(record("q3", served_by="surrogate"))
    turns = store.turns(k)
    assert [t.turn for t in turns] == [1, 2, 3]
    assert [t.query for t in turns] == ["q1", "q2", "q3"]
    assert [t.served_by for t in turns] == ["teacher", "teacher", "surrogate"]
    assert turns[0].answer == "answer to q1"
    assert turns[0].messages == [{"role": "user", "content": "q1"}]
    assert (turns[0].input_tokens, turns[0].output_tokens) == (3, 4)
    assert [t.turn for t in store.turns(k, since=1)] == [2, 3]
    assert [t.turn for t in store.turns(k, since=0, limit=2)] == [1, 2]
    assert store.get(k).turn_count == 3


def test_exception_in_session_writes_nothing_and_releases(store: Any, backend: Backend) -> None:
    k = key()
    with store.session(k, TTL) as st:
        st.add_turn(record("kept"))
    with pytest.raises(RuntimeError, match="boom"), store.session(k, TTL) as st:
        st.add_turn(record("dropped"))
        st.phase = Phase.SERVING.value
        raise RuntimeError("boom")
    assert [t.query for t in store.turns(k)] == ["kept"]
    assert store.get(k).phase == Phase.WARM.value
    # The lease was released: another store instance takes the session at once.
    other = backend.open()
    with other.session(k, TTL, timeout=0.5) as st:
        assert st.turn_count == 1


def test_list_sessions_by_namespace(store: Any) -> None:
    for ns, sid in [("a", "x"), ("a", "y"), ("b", "x")]:
        with store.session(key(sid, ns), TTL):
            pass
    assert sorted(s.session_id for s in store.list_sessions("a")) == ["x", "y"]
    assert [s.session_id for s in store.list_sessions("b")] == ["x"]
    assert len(list(store.list_sessions())) == 3


# ------------------------------------------------------------------------------- locking


def _hold(store: Any, k: SessionKey, entered: threading.Event, release: threading.Event) -> None:
    with store.session(k, TTL) as st:
        st.add_turn(record("holder"))
        entered.set()
        assert release.wait(10)


def test_same_session_serialises_across_threads(store: Any) -> None:
    k = key("shared")
    a_in, a_release, b_in = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def second() -> None:
        with store.session(k, TTL) as st:
            seen.append(st.turn_count)  # must see the holder's committed turn
            b_in.set()
            st.add_turn(record("second"))

    holder = threading.Thread(target=_hold, args=(store, k, a_in, a_release))
    holder.start()
    assert a_in.wait(10)
    waiter = threading.Thread(target=second)
    waiter.start()
    # While the holder is inside, the second thread cannot enter.
    assert not b_in.wait(0.3)
    a_release.set()
    assert b_in.wait(10)
    holder.join(10)
    waiter.join(10)
    assert seen == [1]
    assert [t.query for t in store.turns(k)] == ["holder", "second"]


def test_same_session_lock_times_out_with_lock_timeout(store: Any) -> None:
    k = key("busy")
    a_in, a_release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(store, k, a_in, a_release))
    holder.start()
    try:
        assert a_in.wait(10)
        with pytest.raises(LockTimeout), store.session(k, TTL, timeout=0.1):
            pass
    finally:
        a_release.set()
        holder.join(10)


def test_different_sessions_do_not_block(store: Any) -> None:
    a_in, a_release, c_in = threading.Event(), threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(store, key("one"), a_in, a_release))
    holder.start()
    try:
        assert a_in.wait(10)

        def other() -> None:
            with store.session(key("two"), TTL) as st:
                st.add_turn(record("independent"))
            c_in.set()

        t = threading.Thread(target=other)
        t.start()
        # Completes while "one" is still held.
        assert c_in.wait(10)
        assert not a_release.is_set()
        t.join(10)
    finally:
        a_release.set()
        holder.join(10)
    assert [r.query for r in store.turns(key("two"))] == ["independent"]


def test_lease_blocks_second_store_until_it_expires(backend: Backend) -> None:
    """A second store instance (another process, in effect) cannot take a held lease; when
    the holder stalls past its lease without renewing it (a dead process), the lease expires
    and the session becomes available."""
    holder = backend.open(lease_seconds=1.0, renew=False)
    contender = backend.open(lease_seconds=1.0)
    k = key("leased")
    cm = holder.session(k, TTL)
    stale = cm.__enter__()  # holds the lease and stalls (or crashed)
    stale.add_turn(record("from the stalled holder"))
    with pytest.raises(LockTimeout), contender.session(k, TTL, timeout=0.2):
        pass
    # Another session of the same file is free meanwhile.
    with contender.session(key("free"), TTL, timeout=0.5) as st:
        st.add_turn(record("free"))
    with contender.session(k, TTL, timeout=10) as st:  # after expiry
        st.add_turn(record("after expiry"))
    # The stalled holder wakes up: its lease was taken over, so its stale state must not
    # overwrite what the contender committed (fencing).
    with pytest.raises(StoreError):
        cm.__exit__(None, None, None)
    assert [t.query for t in contender.turns(k)] == ["after expiry"]
    assert contender.get(k).turn_count == 1


def test_failed_save_does_not_lock_out_the_same_store(store: Any) -> None:
    """A write that fails (here: state that is not JSON) raises, and the same store can take
    the session again at once instead of waiting for its own lease to expire."""
    k = key("unserialisable")
    with pytest.raises(TypeError), store.session(k, TTL) as st:
        st.decisions.append({"bad": object()})
    with store.session(k, TTL, timeout=0.5) as st:
        st.add_turn(record("next"))
    assert [t.query for t in store.turns(k)] == ["next"]


# ------------------------------------------------------------------------------- retention


def test_ttl_expiry_with_purge(store: Any) -> None:
    short, long_ = key("short"), key("long")
    with store.session(short, ttl=100.0) as st:
        st.add_turn(record("q"))
    with store.session(long_, ttl=10_000.0) as st:
        st.add_turn(record("q"))
    now = time.time()
    assert store.purge_expired(now=now + 50) == []
    assert store.get(short) is not None
    purged = store.purge_expired(now=now + 200)
    assert [s.session_id for s in purged] == ["short"]
    assert store.get(short) is None
    assert store.turns(short) == []
    assert store.get(long_) is not None
    assert len(store.turns(long_)) == 1


def _fake_adapter(adapters: AdapterStore, k: SessionKey, seed: int) -> object:
    g = torch.Generator().manual_seed(seed)
    tensors = {"base_model.model.layer.lora_A.weight": torch.randn(2, 4, generator=g)}
    return adapters.save(
        tensors, {"r": 2, "target_modules": ["q_proj"]}, namespace=k.namespace_digest, session=k.digest
    )


def test_delete_removes_turns_and_adapters(store: Any) -> None:
    victim, bystander = key("victim"), key("bystander")
    for k in (victim, bystander):
        with store.session(k, TTL) as st:
            st.add_turn(record("q"))
    v1 = _fake_adapter(store.adapters, victim, 1)
    v2 = _fake_adapter(store.adapters, victim, 2)
    b1 = _fake_adapter(store.adapters, bystander, 3)
    assert store.adapters.exists(v1) and store.adapters.exists(v2)
    assert store.delete(victim) is True
    assert store.get(victim) is None
    assert store.turns(victim) == []
    assert not store.adapters.exists(v1)
    assert not store.adapters.exists(v2)
    assert not store.adapters.path(v1).exists()
    # Nothing else goes with it.
    assert store.adapters.exists(b1)
    assert store.get(bystander) is not None and len(store.turns(bystander)) == 1
    assert store.delete(victim) is False


def test_purge_also_removes_adapters(store: Any) -> None:
    k = key("old")
    with store.session(k, ttl=10.0):
        pass
    ref = _fake_adapter(store.adapters, k, 4)
    store.purge_expired(now=time.time() + 100)
    assert not store.adapters.exists(ref)


def test_wal_mode(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soma.db")
    with store.session(key(), TTL):
        pass
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        db.close()
        store.close()


def test_open_store_specs(tmp_path: Path) -> None:
    s, adapters = open_store(f"sqlite:///{tmp_path}/x/soma.db", tmp_path / "home")
    assert isinstance(s, SQLiteStore) and s.path == tmp_path / "x" / "soma.db"
    assert adapters.root == tmp_path / "x" / "soma-adapters"
    assert s.adapters is adapters
    s.close()
    d, _ = open_store(None, tmp_path / "home")
    assert d.path == tmp_path / "home" / "soma.db"
    d.close()
    with pytest.raises(ValueError, match="unknown store"):
        open_store("postgres://x", tmp_path)
    with pytest.raises(TypeError):
        open_store(42, tmp_path)  # type: ignore[arg-type]


def test_two_instances_many_threads_lose_no_turn(backend: Backend) -> None:
    """Two store instances (two processes, in effect), four threads each, one session: every
    locked read-modify-write lands, turns are numbered 1..n with no gap."""
    stores = [backend.open(), backend.open()]
    k = key("contended")
    per_thread = 15

    def work(s: Any, tag: str) -> None:
        for i in range(per_thread):
            with s.session(k, TTL) as st:
                st.add_turn(record(f"{tag}-{i}"))
                st.add("teacher_calls")

    threads = [threading.Thread(target=work, args=(stores[i % 2], f"t{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    n = 8 * per_thread
    state = stores[0].get(k)
    assert state.turn_count == n
    assert state.counters["teacher_calls"] == n
    turns = stores[1].turns(k)
    assert [t.turn for t in turns] == list(range(1, n + 1))
    assert len({t.query for t in turns}) == n


# ------------------------------------------------------------------------------- Redis only


@pytest.fixture
def redis_backend(tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[Backend]:
    b = Backend("redis", tmp_path, redis_url, redis_prefix)
    yield b
    for s in b.opened:
        s.close()


def test_redis_native_ttl_refreshed_each_write(redis_backend: Backend) -> None:
    store = redis_backend.open()
    k = key("ttl")
    with store.session(k, ttl=100.0) as st:
        st.add_turn(record("q"))
    keys = [store._k("s", k.digest), store._k("t", k.digest)]
    assert all(80_000 < store.redis.pttl(x) <= 100_000 for x in keys)
    with store.session(k, ttl=5000.0):
        pass
    assert all(4_900_000 < store.redis.pttl(x) <= 5_000_000 for x in keys)
    assert store.redis.pttl(store._k("l", k.digest)) == -2  # the lock is gone after the write


def test_redis_expires_keys_itself_and_purge_removes_their_adapters(redis_backend: Backend, tmp_path: Path) -> None:
    adapters = AdapterStore(tmp_path / "adapters")
    store = redis_backend.open(adapters=adapters)
    short, long_ = key("short-lived"), key("long-lived")
    with store.session(short, ttl=0.3) as st:
        st.add_turn(record("q"))
    with store.session(long_, ttl=TTL):
        pass
    ref = _fake_adapter(adapters, short, 7)
    kept = _fake_adapter(adapters, long_, 8)
    time.sleep(0.6)
    assert store.get(short) is None and store.turns(short) == []  # Redis expired the keys
    assert [s.session_id for s in store.list_sessions()] == ["long-lived"]
    assert adapters.exists(ref)  # ...but not the adapter files: purge does that
    purged = store.purge_expired()
    assert [s.key for s in purged] == [short.digest]
    assert not adapters.exists(ref)
    assert adapters.exists(kept)
    assert store.purge_expired() == []


def test_redis_lock_is_renewed_while_held_long(redis_backend: Backend) -> None:
    holder = redis_backend.open(lease_seconds=0.6)
    contender = redis_backend.open(lease_seconds=0.6)
    k = key("long-job")
    with holder.session(k, TTL) as st:
        st.add_turn(record("slow"))
        time.sleep(1.5)  # well past the lease: renewed, not lost
        with pytest.raises(LockTimeout), contender.session(k, TTL, timeout=0.3):
            pass
    with contender.session(k, TTL, timeout=2) as st:
        assert st.turn_count == 1


def test_redis_delete_fences_a_holder(redis_backend: Backend) -> None:
    store, other = redis_backend.open(), redis_backend.open()
    k = key("deleted-while-held")
    with store.session(k, TTL) as st:
        st.add_turn(record("q"))
    with pytest.raises(StoreError), store.session(k, TTL) as st:
        st.add_turn(record("after delete"))
        assert other.delete(k) is True
    assert store.get(k) is None and store.turns(k) == []


def test_redis_keys_are_built_from_digests_only(redis_backend: Backend) -> None:
    store = redis_backend.open()
    hostile = key("../../etc/passwd\x00{tag}:*\n" + "x" * 5000, ns="tenant:{a}", agent="a b")
    with store.session(hostile, TTL) as st:
        st.add_turn(record("q"))
    keys = [x.decode() for x in store.redis.scan_iter(f"{store.prefix}:*")]
    assert keys
    for x in keys:
        rest = x[len(store.prefix) + 1 :]
        assert all(c in "0123456789abcdef:{}stlnxpal" for c in rest), x
        assert len(x) < 100
    assert store.get(hostile).session_id == hostile.session_id


def test_open_store_redis_url(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    from soma_engine.session.redis import RedisStore

    shared = tmp_path / "shared-adapters"
    s, adapters = open_store(f"{redis_url}?prefix={redis_prefix}&adapters={shared}&lease=3", tmp_path / "home")
    try:
        assert isinstance(s, RedisStore) and s.prefix == redis_prefix and s.lease_seconds == 3.0
        assert adapters.root == shared and s.adapters is adapters
        with s.session(key(), TTL) as st:
            st.add_turn(record("q"))
        assert s.get(key()).turn_count == 1
    finally:
        s.close()
    s2, adapters2 = open_store(redis_url, tmp_path / "home")
    assert adapters2.root == tmp_path / "home" / "adapters"
    s2.close()
    with pytest.raises(StoreError, match="cannot reach Redis"):
        open_store("redis://127.0.0.1:1/0", tmp_path)


# ------------------------------------------------------------------------------- shared adapter storage


def test_remote_adapter_storage_fetches_and_verifies(tmp_path: Path) -> None:
    """Two replicas on one fsspec base URL, each with its own cache: the one that lacks an
    adapter fetches it and checks its content hash; a bad remote copy is refused; a damaged
    cached copy is replaced by a good one; delete removes both."""
    from soma_engine.adapters import WEIGHTS, CorruptAdapter
    from soma_engine.adapters.remote import RemoteAdapterStore, open_adapter_store

    url = f"file://{tmp_path / 'remote'}"
    writer = open_adapter_store(url, tmp_path / "home-a")
    reader = open_adapter_store(url, tmp_path / "home-b")
    assert isinstance(writer, RemoteAdapterStore) and writer.root != reader.root
    k = key("shared")
    ref = _fake_adapter(writer, k, 11)
    assert (tmp_path / "remote" / ref.namespace / ref.adapter_id / "soma.json").exists()
    assert not reader.path(ref).exists() and reader.exists(ref)
    tensors, cfg = reader.load(ref)  # fetched, verified, cached
    assert cfg["r"] == 2 and list(tensors) == ["base_model.model.layer.lora_A.weight"]
    assert (reader.path(ref) / "soma.json").exists()
    assert [r.adapter_id for r in reader.list()] == [ref.adapter_id]
    # A damaged cached copy: fetched again from the shared storage.
    (reader.path(ref) / WEIGHTS).write_bytes(b"garbage")
    assert reader.load(ref)[1] == cfg
    # A damaged shared copy, and no good cached one: refused.
    third = open_adapter_store(url, tmp_path / "home-c")
    (tmp_path / "remote" / ref.namespace / ref.adapter_id / WEIGHTS).write_bytes(b"tampered")
    with pytest.raises(CorruptAdapter, match="verification"):
        third.load(ref)
    assert not third.path(ref).exists()
    # delete removes the cached and the shared copy.
    reader.delete_session(ref.namespace, ref.session)
    assert not reader.exists(ref) and not (tmp_path / "remote" / ref.namespace / ref.adapter_id).exists()
    with pytest.raises(CorruptAdapter, match="missing"):
        open_adapter_store(url, tmp_path / "home-d").load(ref)
    # A plain path is a local AdapterStore as before.
    plain = open_adapter_store(str(tmp_path / "plain"), tmp_path)
    assert type(plain) is AdapterStore and plain.root == tmp_path / "plain"


def test_redis_purge_leaves_a_session_being_written(redis_backend: Backend) -> None:
    """A session whose keys Redis expired, started afresh by a turn that holds its lock while
    purge runs: purge leaves it alone, and the turn's write lands."""
    store = redis_backend.open()
    k = key("reborn")
    with store.session(k, ttl=0.2) as st:
        st.add_turn(record("old"))
    time.sleep(0.4)
    with store.session(k, TTL) as st:
        assert st.turn_count == 0  # expired: a fresh session
        assert store.purge_expired() == []  # locked: not purged under the writer's feet
        st.add_turn(record("new"))
    assert [t.query for t in store.turns(k)] == ["new"]
    assert store.purge_expired() == []
