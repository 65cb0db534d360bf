"""SQLiteStore: state and turns round trip, per-session locking (threads and a second store
instance on the same file), TTL expiry, delete with the session's adapters, WAL mode."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

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


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "soma.db", adapters=AdapterStore(tmp_path / "adapters"))
    yield s
    s.close()


# ------------------------------------------------------------------------------- round trip


def test_sqlite_store_satisfies_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, SessionStore)


def test_state_round_trip_with_counters(store: SQLiteStore, tmp_path: Path) -> None:
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
    # A fresh store instance on the same file reads exactly what was written.
    other = SQLiteStore(tmp_path / "soma.db")
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
    other.close()


def test_turns_appended_in_order(store: SQLiteStore) -> None:
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


def test_exception_in_session_writes_nothing_and_releases(store: SQLiteStore, tmp_path: Path) -> None:
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
    other = SQLiteStore(tmp_path / "soma.db")
    with other.session(k, TTL, timeout=0.5) as st:
        assert st.turn_count == 1
    other.close()


def test_list_sessions_by_namespace(store: SQLiteStore) -> None:
    for ns, sid in [("a", "x"), ("a", "y"), ("b", "x")]:
        with store.session(key(sid, ns), TTL):
            pass
    assert sorted(s.session_id for s in store.list_sessions("a")) == ["x", "y"]
    assert [s.session_id for s in store.list_sessions("b")] == ["x"]
    assert len(list(store.list_sessions())) == 3


# ------------------------------------------------------------------------------- locking


def _hold(store: SQLiteStore, k: SessionKey, entered: threading.Event, release: threading.Event) -> None:
    with store.session(k, TTL) as st:
        st.add_turn(record("holder"))
        entered.set()
        assert release.wait(10)


def test_same_session_serialises_across_threads(store: SQLiteStore) -> None:
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


def test_same_session_lock_times_out_with_lock_timeout(store: SQLiteStore) -> None:
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


def test_different_sessions_do_not_block(store: SQLiteStore) -> None:
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


def test_lease_blocks_second_store_until_it_expires(tmp_path: Path) -> None:
    """A second SQLiteStore (another process, in effect) cannot take a held lease; when the
    holder stalls past its lease, the lease expires and the session becomes available."""
    path = tmp_path / "leases.db"
    holder = SQLiteStore(path, lease_seconds=1.0)
    contender = SQLiteStore(path, lease_seconds=1.0)
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
    holder.close()
    contender.close()


def test_failed_save_does_not_lock_out_the_same_store(store: SQLiteStore) -> None:
    """A write that fails (here: state that is not JSON) raises, and the same store can take
    the session again at once instead of waiting for its own lease to expire."""
    k = key("unserialisable")
    with pytest.raises(TypeError), store.session(k, TTL) as st:
        st.decisions.append({"bad": object()})
    with store.session(k, TTL, timeout=0.5) as st:
        st.add_turn(record("next"))
    assert [t.query for t in store.turns(k)] == ["next"]


# ------------------------------------------------------------------------------- retention


def test_ttl_expiry_with_purge(store: SQLiteStore) -> None:
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


def test_delete_removes_turns_and_adapters(store: SQLiteStore) -> None:
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


def test_purge_also_removes_adapters(store: SQLiteStore) -> None:
    k = key("old")
    with store.session(k, ttl=10.0):
        pass
    ref = _fake_adapter(store.adapters, k, 4)
    store.purge_expired(now=time.time() + 100)
    assert not store.adapters.exists(ref)


def test_wal_mode(store: SQLiteStore) -> None:
    with store.session(key(), TTL):
        pass
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        db.close()


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
