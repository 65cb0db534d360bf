"""Sessions you can trust (issue #20), one case per way an app would lose, leak or keep data.

Real engines (tiny random surrogate, the bundled encoder), real stores (SQLite and a real
``redis-server``) and real adapter files. Faults are injected where the issue puts them: a
teacher or a training hook that deletes the session mid-turn, a store whose write fails, an
encoder that raises. Sections follow the issue's numbering:

1. no merged users (fingerprinted sessions)       5. failures on the route fall back
2. a delete is final, for every writer             8. retention: TTL on read, secure delete
3. a paid teacher answer is never lost             9. several replicas on one Redis
                                                  10. config and bounds
4. job results are checked before they are written
6. adapters know their base (refused before install, half-installs removed)
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from soma_engine import Phase, SessionKey, SomaEngine
from soma_engine.adapters import AdapterStore
from soma_engine.config import ConfigError, SomaConfig
from soma_engine.session import SessionGone, SQLiteStore
from soma_engine.types import TurnRecord

QUERY = "Can you lower the price of the red bicycle?"
ANSWER = "The red bicycle costs eight hundred dollars."
SYSTEM = {"role": "system", "content": "You are a helpful shop assistant."}


class Teacher:
    """A scripted teacher: a fixed answer (or ``answer(n)`` for call n); ``hook`` runs inside
    the call, where a real teacher would be waiting on the network."""

    def __init__(self, answer: str | Callable[[int], str] = ANSWER, hook: Callable[[], None] | None = None) -> None:
        self.answer, self.hook = answer, hook
        self.calls: list[Any] = []

    def __call__(self, messages: Any) -> str:
        self.calls.append(messages)
        if self.hook is not None:
            self.hook()
        return self.answer(len(self.calls)) if callable(self.answer) else self.answer


def history(n_turns: int, query: str = QUERY) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for _ in range(n_turns):
        msgs += [{"role": "user", "content": QUERY}, {"role": "assistant", "content": ANSWER}]
    return [*msgs, {"role": "user", "content": query}]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        return f"{url}?prefix={prefix}&adapters={tmp_path / 'adapters'}"
    return f"sqlite:///{tmp_path / 'soma.db'}"


def _session_adapters(engine: SomaEngine, sid: str) -> list[Any]:
    k = engine.key(sid)
    return [r for r in engine.adapters.list(k.namespace_digest) if r.session == k.digest]


def _registry_rows(engine: SomaEngine, sid: str) -> list[Any]:
    k = engine.key(sid)
    return engine.registry.entries(k.namespace_digest, k.digest)


def _assert_gone(engine: SomaEngine, sid: str) -> None:
    k = engine.key(sid)
    assert engine.store.get(k) is None
    assert engine.store.turns(k) == []
    assert _session_adapters(engine, sid) == []
    assert _registry_rows(engine, sid) == []


def _serve(engine: SomaEngine, sid: str, teacher: Teacher | None = None) -> None:
    """Four teacher turns: the session switches to the surrogate (permissive gate)."""
    teacher = teacher or Teacher()
    for t in range(4):
        engine.chat(sid, history(t), teacher)
    assert engine.session(sid).phase is Phase.SERVING


# ------------------------------------------------------------------------ 1. no merged users


def test_two_users_with_the_same_opening_get_two_sessions(
    new_engine: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    answers = Teacher(lambda n: f"answer number {n}")
    opening = [SYSTEM, {"role": "user", "content": "Hi"}]
    with caplog.at_level(logging.WARNING, logger="soma.engine"):
        a1 = engine.chat(None, opening, answers)
        b1 = engine.chat(None, opening, answers)  # a second user, same opening
        a2 = engine.chat(
            None, [*opening, {"role": "assistant", "content": a1.text}, {"role": "user", "content": "A2"}], answers
        )
        b2 = engine.chat(
            None, [*opening, {"role": "assistant", "content": b1.text}, {"role": "user", "content": "B2"}], answers
        )
    assert a1.soma["session_source"] == "fingerprint"
    assert a1.soma["session_id"] != b1.soma["session_id"]
    assert (a2.soma["session_id"], a2.soma["turn"]) == (a1.soma["session_id"], 2)
    assert (b2.soma["session_id"], b2.soma["turn"]) == (b1.soma["session_id"], 2)
    assert [t.query for t in engine.session(a1.soma["session_id"]).turns] == ["Hi", "A2"]
    assert [t.query for t in engine.session(b1.soma["session_id"]).turns] == ["Hi", "B2"]
    warnings = [r for r in caplog.records if "no session id given" in r.getMessage()]
    assert len(warnings) == 1  # once per engine, not per turn


def test_explicit_id_reports_its_source(new_engine: Any, tmp_path: Path) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    assert engine.chat("s", history(0), Teacher()).soma["session_source"] == "id"


# ------------------------------------------------------------------------ 2. a delete is final


def test_store_writer_without_create_never_creates(store_url: str, new_engine: Any) -> None:
    engine = new_engine(store_url)
    k = engine.key("never-existed")
    with pytest.raises(SessionGone), engine.store.session(k, 60.0, create=False) as st:
        st.add("rollbacks")
    assert engine.store.get(k) is None


def test_rollback_of_a_session_that_never_existed_creates_nothing(store_url: str, new_engine: Any) -> None:
    engine = new_engine(store_url)
    assert engine.rollback("never-existed", "operator") is False
    assert engine.store.get(engine.key("never-existed")) is None


def test_delete_fences_the_current_holder(store_url: str, new_engine: Any) -> None:
    """A delete while another writer holds the session: that writer's state is not written."""
    engine = new_engine(store_url)
    k = engine.key("held")
    with engine.store.session(k, 60.0) as st:
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query="secret", answer="a"))
    with pytest.raises(SessionGone), engine.store.session(k, 60.0) as st:
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query="secret 2", answer="b"))
        threading.Thread(target=engine.store.delete, args=(k,)).start()
        time.sleep(0.3)
    assert engine.store.get(k) is None
    assert engine.store.turns(k) == []


def test_delete_during_a_teacher_turn_is_final_and_the_answer_returned(store_url: str, new_engine: Any) -> None:
    engine = new_engine(store_url)
    engine.chat("s", history(0), Teacher())
    reply = engine.chat("s", history(1), Teacher(hook=lambda: engine.delete("s")))
    assert reply.text == ANSWER
    assert reply.soma["recorded"] is False
    _assert_gone(engine, "s")


def test_delete_during_training_leaves_no_session_adapter_or_registry_row(store_url: str, new_engine: Any) -> None:
    engine = new_engine(store_url)
    deleted: list[bool] = []

    def progress(stage: str, step: int, total: int) -> None:
        if stage == "lora" and not deleted:
            deleted.append(engine.delete("s"))

    engine.on_progress = progress
    teacher = Teacher()
    for t in range(4):  # the 4th turn trains inline; the delete lands mid-training
        engine.chat("s", history(t), teacher)
    assert deleted == [True]
    _assert_gone(engine, "s")


def test_delete_during_an_audit_is_final(store_url: str, new_engine: Any, permissive_config: Any) -> None:
    engine = new_engine(store_url, config=permissive_config(gate={"audit_rate": 1.0}))
    _serve(engine, "s")
    auditor = Teacher(hook=lambda: engine.delete("s"))
    reply = engine.chat("s", history(4), auditor)
    assert reply.served_by == "surrogate"
    assert engine.wait_idle(60)
    assert len(auditor.calls) == 1  # the audit ran (and deleted the session from inside)
    _assert_gone(engine, "s")


def _delete_before_gaps(engine: SomaEngine, monkeypatch: pytest.MonkeyPatch, sid: str) -> list[bool]:
    """The next held-out generations (a shadow step's, an adoption look's) start with a delete
    of ``sid``: the delete lands while that writer computes."""
    real, deleted = engine.surrogate.generate_many, []

    def generate_many(*args: Any, **kwargs: Any) -> Any:
        if not deleted:
            deleted.append(engine.delete(sid))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.surrogate, "generate_many", generate_many)
    return deleted


def test_delete_during_a_shadow_step_is_final(
    store_url: str, new_engine: Any, permissive_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = new_engine(store_url, config=permissive_config(gate={"mode": "bound"}))
    teacher = Teacher()
    for t in range(4):
        engine.chat("s", history(t), teacher)
    assert (engine.store.get(engine.key("s")).job or {}).get("status") == "shadow"
    from soma_engine.adaptation import jobs

    real, deleted = jobs.decide, []

    def decide(*args: Any, **kwargs: Any) -> Any:  # the step's last computation before its write
        if not deleted:
            deleted.append(engine.delete("s"))
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "decide", decide)
    engine.chat("s", history(4), teacher)  # the next teacher turn grows the batch: a shadow step
    assert deleted == [True]
    _assert_gone(engine, "s")


def test_delete_during_an_adoption_look_is_final(
    store_url: str, new_engine: Any, permissive_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = new_engine(store_url, config=permissive_config(share="namespace", share_min_turns=2))
    _serve(engine, "donor")
    deleted = _delete_before_gaps(engine, monkeypatch, "s")
    teacher = Teacher()
    for t in range(2):  # the second turn looks for a shared adapter (the donor's is near)
        engine.chat("s", history(t), teacher)
    assert deleted == [True]
    _assert_gone(engine, "s")


# ------------------------------------------------------------------------ 3. a paid answer is never lost


def test_malformed_message_is_refused_before_the_teacher_is_paid(new_engine: Any, tmp_path: Path) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    teacher = Teacher()
    with pytest.raises(ValueError, match="tool_calls"):
        engine.chat("s", [{"role": "user", "content": "hi", "tool_calls": "oops"}], teacher)
    with pytest.raises(ValueError, match="tool_call_id"):
        engine.chat("s", [{"role": "tool", "content": "42", "tool_call_id": 7}], teacher)
    assert teacher.calls == []


class FlakyStore(SQLiteStore):
    """A real SQLite store whose next ``failures`` writes fail, as a full disk would."""

    failures = 0

    def _save(self, db: sqlite3.Connection, state: Any, ttl: float, release: bool) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        super()._save(db, state, ttl, release)


@pytest.mark.parametrize(("failures", "recorded"), [(1, True), (2, False)])
def test_a_failed_record_is_retried_once_and_the_answer_returned(
    new_engine: Any, tmp_path: Path, failures: int, recorded: bool
) -> None:
    store = FlakyStore(tmp_path / "soma.db", adapters=AdapterStore(tmp_path / "adapters"))
    engine = new_engine(store)
    engine.chat("s", history(0), Teacher())
    store.failures = failures
    teacher = Teacher("paid for")
    reply = engine.chat("s", history(1), teacher)
    assert reply.text == "paid for" and len(teacher.calls) == 1
    assert reply.soma.get("recorded", True) is recorded
    assert len(engine.session("s").turns) == (2 if recorded else 1)


def test_request_id_makes_a_retry_idempotent(store_url: str, new_engine: Any) -> None:
    engine = new_engine(store_url)
    teacher = Teacher(lambda n: f"answer {n}")
    first = engine.chat("s", history(0), teacher, request_id="req-1")
    again = engine.chat("s", history(0), teacher, request_id="req-1")
    other = engine.chat("s", history(1), teacher, request_id="req-2")
    assert len(teacher.calls) == 2
    assert again.text == first.text == "answer 1" and again.soma["replayed"] is True
    assert again.soma["turn"] == first.soma["turn"] == 1
    assert other.soma["turn"] == 2
    assert [t.request_id for t in engine.session("s").turns] == ["req-1", "req-2"]


# ------------------------------------------------------------------------ 4. job results are checked


def test_a_superseded_job_does_not_write_its_result(new_engine: Any, tmp_path: Path) -> None:
    """A newer attempt of the job (a retried queue job, a restart) owns the session while an
    old one trains: the old one's result is not written and its adapter is removed."""
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    k = engine.key("s")
    bumped: list[dict[str, Any]] = []

    def progress(stage: str, step: int, total: int) -> None:
        if stage == "lora" and not bumped:
            with engine.store.session(k, 60.0, create=False) as st:
                st.job = {**(st.job or {}), "attempt": int((st.job or {}).get("attempt", 0)) + 1}
                bumped.append(dict(st.job))

    engine.on_progress = progress
    teacher = Teacher()
    for t in range(4):
        engine.chat("s", history(t), teacher)
    state = engine.store.get(k)
    assert state is not None and bumped
    assert state.phase == Phase.ADAPTING.value and state.job == bumped[0]
    assert state.adapter is None
    assert _session_adapters(engine, "s") == []
    assert _registry_rows(engine, "s") == []


def test_two_engines_on_one_sqlite_file_run_one_job_per_session(
    new_engine: Any, permissive_config: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'soma.db'}"
    config = permissive_config(adaptation="background")
    a, b = new_engine(url, config=config), new_engine(url, config=config)
    release, started = threading.Event(), threading.Event()

    def hold(stage: str, step: int, total: int) -> None:
        started.set()
        release.wait(60)

    a.on_progress = hold
    teacher = Teacher()
    for t in range(4):
        a.chat("s", history(t), teacher)
    assert started.wait(60)  # a's job is training
    b.chat("s", history(4), teacher)  # b sees the session adapting under a's live job
    release.set()
    assert a.wait_idle(120) and b.wait_idle(120)
    assert b.jobs._active == {}  # b never started a job of its own
    view = a.session("s")
    assert view.metrics["adaptations"] == 1
    assert view.phase is Phase.SERVING


def test_a_stalled_queue_job_finishing_after_its_retry_does_not_overwrite_it(
    new_engine: Any, permissive_config: Any, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """RQ retries a job whose worker stalled (its heartbeat lapsed). The retry, on a second
    worker, writes its adapter; then the stalled attempt wakes up and finishes: its result
    is refused (attempt fence) and its adapter removed. Both attempts run the real queued
    job (the function and arguments RQ holds) on a worker engine of their own."""
    from rq.job import Job

    from soma_engine.adaptation import queue as soma_queue

    url = f"{redis_url}?prefix={redis_prefix}&adapters={tmp_path / 'adapters'}"
    app = new_engine(url, config=permissive_config(adaptation="queue"))
    stalled, retry = new_engine(url), new_engine(url)
    teacher = Teacher()
    for t in range(4):
        app.chat("s", history(t), teacher)
    k = app.key("s")
    queued = app.store.get(k).job
    assert queued["status"] == "queued"
    rq_job = Job.fetch(queued["id"], connection=app.store.redis)
    training, wake = threading.Event(), threading.Event()

    def stall(stage: str, step: int, total: int) -> None:
        if stage == "lora":
            training.set()
            wake.wait(120)

    stalled.on_progress = stall
    results: dict[str, Any] = {}
    saved_runner = soma_queue._RUNNER
    try:
        soma_queue._RUNNER = stalled.jobs
        run_job = rq_job.func  # soma_engine.adaptation.queue.adapt_job, as a worker calls it
        first = threading.Thread(target=lambda: results.setdefault("stalled", run_job(*rq_job.args, **rq_job.kwargs)))
        first.start()
        assert training.wait(120)  # attempt 1 is mid-training ...
        soma_queue._RUNNER = retry.jobs
        results["retry"] = run_job(*rq_job.args, **rq_job.kwargs)  # ... when RQ runs the retry elsewhere
        done = app.store.get(k)
        assert done.phase == Phase.SERVING.value and done.job["status"] == "done" and done.adapter
        wake.set()
        first.join(120)
    finally:
        wake.set()
        soma_queue._RUNNER = saved_runner
    assert not first.is_alive() and "stalled" in results
    after = app.store.get(k)
    assert after.adapter == done.adapter and after.job == done.job and after.phase == Phase.SERVING.value
    assert [r.adapter_id for r in _session_adapters(app, "s")] == [done.adapter["adapter_id"]]
    assert [e.adapter_id for e in _registry_rows(app, "s")] == [done.adapter["adapter_id"]]


# ------------------------------------------------------------------------ 5. route failures fall back


class BrokenEncoder:
    def encode(self, texts: Any) -> Any:
        raise RuntimeError("encoder crashed")

    def encode_words(self, words: Any) -> Any:
        raise RuntimeError("encoder crashed")


def test_an_encoder_failure_on_the_route_serves_by_the_teacher_and_records(new_engine: Any, tmp_path: Path) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    _serve(engine, "s")
    engine.encoder = BrokenEncoder()
    teacher = Teacher()
    reply = engine.chat("s", history(4), teacher)
    assert reply.served_by == "teacher" and len(teacher.calls) == 1
    assert "encoder crashed" in reply.soma["fallback"]
    view = engine.session("s")
    assert len(view.turns) == 5 and view.turns[-1].served_by == "teacher"
    assert view.phase is Phase.SERVING  # a route failure is not a reason to drop the adapter


# ------------------------------------------------------------------------ 6. adapters know their base


def _current_adapter(engine: SomaEngine, sid: str) -> Any:
    from soma_engine.adapters import AdapterRef

    state = engine.store.get(engine.key(sid))
    assert state is not None and state.adapter
    return AdapterRef.from_dict(state.adapter)


def _install_as_current(engine: SomaEngine, sid: str, tensors: dict[str, Any], lora_config: dict[str, Any]) -> Any:
    """Save an adapter for the session and make it the one it serves with."""
    k = engine.key(sid)
    ref = engine.adapters.save(tensors, lora_config, namespace=k.namespace_digest, session=k.digest, version=9)
    with engine.store.session(k, 60.0) as st:
        st.adapter = ref.to_dict()
    return ref


def _corrupt_resets(engine: SomaEngine, sid: str) -> list[dict[str, Any]]:
    state = engine.store.get(engine.key(sid))
    assert state is not None
    return [d for d in state.decisions if "corrupt_adapter" in d]


def _assert_reset_once_then_readapts(engine: SomaEngine, sid: str, bad: Any) -> None:
    """The turn that met ``bad`` reset the session once (its teacher turn starts a new
    adaptation); the session serves by a new adapter and never tries ``bad`` again."""
    assert engine.wait_idle(60)
    assert [bad.adapter_id in d["corrupt_adapter"] for d in _corrupt_resets(engine, sid)] == [True]
    assert engine.session(sid).phase is Phase.SERVING
    assert _current_adapter(engine, sid).adapter_id != bad.adapter_id
    for turn in (5, 6):
        assert engine.chat(sid, history(turn), Teacher()).served_by == "surrogate"
    assert len(_corrupt_resets(engine, sid)) == 1


@pytest.mark.parametrize("mismatch", ["shape", "base"])
def test_a_mismatched_adapter_is_refused_before_install_and_resets_once(
    mismatch: str, new_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intact adapter that does not fit the running model: one tensor with another input
    size, or weights recorded as trained on a base of another hidden size."""
    from soma_engine.adapters import base_identity
    from soma_engine.testing import build_tiny_model

    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    _serve(engine, "s")
    tensors, lora_config = engine.adapters.load(_current_adapter(engine, "s"))
    if mismatch == "shape":
        name = next(n for n in tensors if ".lora_A." in n)
        tensors[name] = tensors[name].new_zeros(tensors[name].shape[0], tensors[name].shape[1] + 8)
    else:
        other = base_identity(build_tiny_model(hidden=32)[0])
        monkeypatch.setattr(engine.adapters, "base_identity", lambda: other)
        tensors = {n: t * 2 for n, t in tensors.items()}  # other weights: a new adapter id
    bad = _install_as_current(engine, "s", tensors, lora_config)
    monkeypatch.undo()
    installed: list[str] = []
    install = engine.surrogate.install_adapter
    monkeypatch.setattr(
        engine.surrogate, "install_adapter", lambda name, *a: (installed.append(name), install(name, *a))[1]
    )

    reply = engine.chat("s", history(4), Teacher())
    assert reply.served_by == "teacher"
    assert ("does not fit" if mismatch == "shape" else "was trained on base model") in reply.soma["fallback"]
    assert f"a{bad.adapter_id}" not in installed  # refused before PEFT saw it
    _assert_reset_once_then_readapts(engine, "s", bad)


def test_an_adapter_saved_before_bases_were_recorded_still_serves(new_engine: Any, tmp_path: Path) -> None:
    """No recorded base or shapes (soma.json of an older version): unknown base, its tensors
    checked against the model only."""
    import json

    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    _serve(engine, "s")
    ref = _current_adapter(engine, "s")
    meta_path = engine.adapters.path(ref) / "soma.json"
    meta = json.loads(meta_path.read_text())
    assert meta["base"]["fingerprint"] and meta["shapes"]  # what this version records
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k not in ("base", "shapes")}))
    engine.surrogate.run(lambda r: r.remove_adapter(f"a{ref.adapter_id}"))
    assert engine.chat("s", history(4), Teacher()).served_by == "surrogate"
    assert f"a{ref.adapter_id}" in engine.surrogate.loaded_adapters()


def test_a_half_installed_adapter_is_removed_and_resets_once(
    new_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import peft

    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    _serve(engine, "s")
    runtime, ref = engine.surrogate, _current_adapter(engine, "s")
    name = f"a{ref.adapter_id}"
    runtime.run(lambda r: r.remove_adapter(name))  # the next turn installs it afresh
    set_state = peft.set_peft_model_state_dict
    failures = [RuntimeError("CUDA error: an illegal memory access was encountered")]

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return set_state(*args, **kwargs)

    monkeypatch.setattr(peft, "set_peft_model_state_dict", fails_once)
    reply = engine.chat("s", history(4), Teacher())
    assert reply.served_by == "teacher" and "could not be installed" in reply.soma["fallback"]
    assert name not in runtime.run(lambda r: list(r.model.peft_config))  # no half-installed name left
    assert name not in runtime.loaded_adapters()
    _assert_reset_once_then_readapts(engine, "s", ref)  # the next adapter installs and serves


# ------------------------------------------------------------------------ 7. transient storage errors


def _remote_store(tmp_path: Path, failures: int) -> tuple[Any, Any, Any]:
    """A memory:// adapter store whose next ``failures`` reads raise a network error, and a
    second replica (empty cache) that must fetch; returns (writer, reader, ref)."""
    import torch

    from soma_engine.adapters.remote import RemoteAdapterStore

    url = f"memory://soma-{tmp_path.name}"
    writer = RemoteAdapterStore(url, tmp_path / "cache-a")
    reader = RemoteAdapterStore(url, tmp_path / "cache-b")
    ref = writer.save(
        {"base_model.model.layer.lora_A.weight": torch.ones(2, 4)},
        {"r": 2},
        namespace=SessionKey("default", "s").namespace_digest,
        session=SessionKey("default", "s").digest,
    )
    reader.fs = FlakyFS(reader.fs, failures)
    return writer, reader, ref


class FlakyFS:
    """The real fsspec filesystem, except that its next ``failures`` reads raise a network error."""

    def __init__(self, fs: Any, failures: int) -> None:
        self.fs, self.failures = fs, failures

    def cat_file(self, path: str, *args: Any, **kwargs: Any) -> bytes:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionResetError("connection reset by peer")
        return self.fs.cat_file(path, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fs, name)


def test_a_transient_storage_error_is_retried_not_taken_for_corruption(tmp_path: Path) -> None:
    _, reader, ref = _remote_store(tmp_path, failures=2)
    tensors, _ = reader.load(ref)
    assert list(tensors) == ["base_model.model.layer.lora_A.weight"]


def test_a_persistent_storage_error_is_unavailable_not_corrupt(tmp_path: Path) -> None:
    from soma_engine.adapters import AdapterUnavailable, CorruptAdapter

    _, reader, ref = _remote_store(tmp_path, failures=100)
    with pytest.raises(AdapterUnavailable):
        reader.load(ref)
    _, reader, ref = _remote_store(tmp_path / "missing", failures=0)
    reader.fs.rm(f"{reader.base}/{ref.namespace}/{ref.adapter_id}/{'adapter_model.safetensors'}")
    with pytest.raises(CorruptAdapter):  # a missing file is not transient
        reader.load(ref)


def test_a_corrupt_adapter_resets_only_if_it_is_still_current(
    new_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapter fails while a job installs a newer one: the newer one is not thrown away."""
    from soma_engine.adapters import CorruptAdapter

    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    _serve(engine, "s")
    k = engine.key("s")

    def replaced_then_fails(*args: Any, **kwargs: Any) -> Any:
        with engine.store.session(k, 60.0) as st:
            st.adapter = {**(st.adapter or {}), "adapter_id": "f" * 32}
        raise CorruptAdapter("adapter failed verification (content hash mismatch)")

    monkeypatch.setattr(engine.surrogate, "generate", replaced_then_fails)
    reply = engine.chat("s", history(4), Teacher())
    assert reply.served_by == "teacher" and "content hash" in reply.soma["fallback"]
    view = engine.session("s")
    assert view.phase is Phase.SERVING and view.adapter_id == "f" * 32


# ------------------------------------------------------------------------ 9. several replicas


def test_a_delete_on_one_replica_reaches_the_others_adapter_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soma_engine.adapters import remote

    monkeypatch.setattr(remote, "RECHECK_SECONDS", 0.2)
    writer, reader, ref = _remote_store(tmp_path, failures=0)
    reader.load(ref)  # the second replica has it in its cache
    assert reader.exists(ref)
    writer.delete_session(ref.namespace, ref.session)  # deleted on the first replica
    time.sleep(0.3)
    assert not reader.exists(ref)
    assert not (reader.root / ref.namespace / ref.adapter_id).exists()  # its cached copy went too


class InterleavingRedis:
    """The real Redis client, except that right after the first read of a registry row (by
    the client or a pipeline) ``between`` runs to completion on another thread: another
    replica's whole write lands between this writer's read and its write."""

    def __init__(self, client: Any) -> None:
        self.client, self.between = client, None

    def read(self, read: Callable[..., Any], *args: Any) -> Any:
        value = read(*args)
        between, self.between = self.between, None
        if between is not None:
            other = threading.Thread(target=between)
            other.start()
            other.join()
        return value

    def hget(self, *args: Any) -> Any:
        return self.read(self.client.hget, *args)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        owner, pipe = self, self.client.pipeline(*args, **kwargs)

        class Pipeline:
            def hget(self, *a: Any) -> Any:
                return owner.read(pipe.hget, *a)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: Any) -> None:
                pipe.__exit__(*exc)

            def __getattr__(self, name: str) -> Any:
                return getattr(pipe, name)

        return Pipeline()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.mark.parametrize("other_write", ["touch", "delete"])
def test_concurrent_redis_registry_writes_of_one_row_both_land(
    other_write: str, redis_url: str, redis_prefix: str
) -> None:
    """mark() reads the row, another replica touches (or deletes) it, then mark() writes: the
    touch is kept (the delete stays a delete) instead of being overwritten by the stale row."""
    import redis

    from soma_engine.adapters import AdapterRef
    from soma_engine.session.redis import RedisRegistry

    client = InterleavingRedis(redis.Redis.from_url(redis_url))
    registry = RedisRegistry(client, redis_prefix)
    registry.touch_every = 0.0
    key = SessionKey("default", "s")
    ns, sid = key.namespace_digest, key.digest
    ref = AdapterRef(adapter_id="a" * 32, namespace=ns, session=sid)
    registry.record(ref, key, centroid=None, accepted=False)
    if other_write == "touch":
        client.between = lambda: registry.touch(ns, ref.adapter_id, sid, now=12345.0)
    else:
        client.between = lambda: registry.delete_session(ns, sid)
    registry.mark(ns, ref.adapter_id, sid, accepted=True)
    assert client.between is None  # the other write did run in between
    row = registry.get(ns, ref.adapter_id, sid)
    if other_write == "touch":
        assert row is not None and row.accepted and row.shareable and row.last_used == 12345.0
    else:
        assert row is None  # not resurrected by the stale write
    client.close()


def test_two_replicas_on_one_redis_share_one_registry_and_its_deletes(
    redis_url: str, redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import torch

    from soma_engine.adapters import remote
    from soma_engine.session import open_store

    monkeypatch.setattr(remote, "RECHECK_SECONDS", 0.0)
    url = f"{redis_url}?prefix={redis_prefix}&adapters=memory://soma-{tmp_path.name}"
    (store_a, adapters_a), (store_b, adapters_b) = open_store(url, tmp_path / "a"), open_store(url, tmp_path / "b")
    owner, other = SessionKey("default", "owner"), SessionKey("default", "other")
    ref = adapters_a.save(
        {"base_model.model.layer.lora_A.weight": torch.ones(2, 4)},
        {"r": 2},
        namespace=owner.namespace_digest,
        session=owner.digest,
    )
    with store_a.session(owner, 60.0) as st:
        st.adapter = ref.to_dict()
    centroid = np.ones(8, dtype=np.float32)
    adapters_a.registry.record(ref, owner, centroid=centroid, accepted=True)
    found = adapters_b.registry.nearest(other, centroid, "namespace")  # replica b sees replica a's adapter
    assert [m.entry.adapter_id for m in found] == [ref.adapter_id]
    assert adapters_b.exists(ref)
    assert store_b.delete(owner)  # deleted on replica b ...
    assert adapters_a.registry.entries(owner.namespace_digest) == []  # ... gone for replica a too
    assert not adapters_a.exists(ref)
    assert adapters_b.registry.nearest(other, centroid, "namespace") == []
    store_a.close()
    store_b.close()


PERSONA_SYSTEM = "You are a pirate who coaches people selling their bicycles."
DONOR_QUERIES = [
    "How should I price my road bike listing?",
    "A buyer offers seven hundred dollars for my bike, what now?",
    "Should I include the pedals when I sell the bike?",
    "He proposes meeting in the middle on the bike price, accept?",
]
SIBLING_QUERIES = [
    "What price should I ask for my used road bike?",
    "Someone offered six hundred for the bike, how do I answer?",
    "Do I throw in the bike pedals and bottle cages?",
    "Is it a good idea to meet the bike buyer halfway?",
]


def _persona(messages: Any) -> str:
    query = messages[-1].content
    keyword = max(query.strip("?.!").replace(",", " ").split(), key=len)
    return f"{keyword.capitalize()}? Arr, shiver me timbers, matey!"


def _talk(engine: SomaEngine, sid: str, queries: list[str], msgs: list[dict[str, str]] | None = None) -> list[Any]:
    """Plays ``queries`` as one conversation, continuing ``msgs`` (extended in place)."""
    msgs = [{"role": "system", "content": PERSONA_SYSTEM}] if msgs is None else msgs
    replies = []
    for q in queries:
        msgs.append({"role": "user", "content": q})
        reply = engine.chat(sid, msgs, _persona)
        msgs.append({"role": "assistant", "content": reply.text})
        replies.append(reply)
    return replies


def test_two_engines_on_one_redis_and_one_adapter_url_share_and_delete_across_replicas(
    new_engine: Any,
    permissive_config: Any,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two full engines (two replicas of an app) on one Redis and one remote adapter URL: a
    session on replica b adopts the adapter replica a trained, and a delete on replica a
    reaches b's registry and adapter cache, so b's adopting session falls back to the teacher."""
    from soma_engine.adapters import remote

    monkeypatch.setattr(remote, "RECHECK_SECONDS", 0.0)
    url = f"{redis_url}?prefix={redis_prefix}&adapters=memory://soma-{tmp_path.name}"
    config = permissive_config(share="namespace", share_similarity=0.5, share_min_turns=2)
    a, b = new_engine(url, config=config), new_engine(url, config=config)
    donor = _talk(a, "donor", DONOR_QUERIES)
    assert [r.served_by for r in donor] == ["teacher"] * 4
    donor_adapter = a.session("donor").adapter_id
    assert a.session("donor").phase is Phase.SERVING and donor_adapter

    conversation: list[dict[str, str]] = [{"role": "system", "content": PERSONA_SYSTEM}]
    sibling = _talk(b, "sibling", SIBLING_QUERIES, conversation)  # replica b adopts replica a's adapter
    assert [r.served_by for r in sibling] == ["teacher", "teacher", "surrogate", "surrogate"]
    assert sibling[2].soma["adapter_id"] == donor_adapter

    assert a.delete("donor")  # on replica a
    _assert_gone(b, "donor")  # replica b sees no session, adapter or registry row
    (reply,) = _talk(b, "sibling", ["Should I oil the bike chain before the sale?"], conversation)
    assert reply.served_by == "teacher"  # the adopted adapter went with its donor
    sk = b.key("sibling")
    rows = b.registry.entries(sk.namespace_digest, sk.digest)  # it re-adapts on its own turns
    assert all(r.adapter_id != donor_adapter and r.kind == "trained" and r.parent is None for r in rows)
    fresh = _talk(a, "another", SIBLING_QUERIES[:3])  # on replica a the deleted adapter is never offered
    assert all(r.soma.get("adapter_id") != donor_adapter for r in fresh)
    looks = [d for d in a.session("another").decisions if d.get("kind") == "adoption"]
    assert looks and all(d["donor_adapter"] != donor_adapter for d in looks)


# ------------------------------------------------------------------------ 8. retention


def test_sqlite_expired_session_is_gone_on_read(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soma.db")
    k = SessionKey("default", "s")
    with store.session(k, ttl=0.05) as st:
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query="old secret", answer="a"))
    time.sleep(0.1)
    assert store.get(k) is None
    assert store.turns(k) == []
    assert list(store.list_sessions()) == []
    with store.session(k, ttl=60.0) as st:  # the id starts afresh, without the expired turns
        assert st.turn_count == 0
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query="new", answer="b"))
    assert [t.query for t in store.turns(k)] == ["new"]
    store.close()


class RacingStore(SQLiteStore):
    """A real SQLite store in which a turn starts the session afresh right after a purge
    listed it as expired (the interleaving of two processes, made deterministic)."""

    raced = False

    def _delete_digest(self, db: sqlite3.Connection, state: Any, **kw: Any) -> bool:
        if not self.raced:
            self.raced = True
            with self.session(SessionKey(state.namespace, state.session_id, state.agent), ttl=60.0) as st:
                st.add_turn(TurnRecord(turn=0, served_by="teacher", query="fresh", answer="b"))
        return super()._delete_digest(db, state, **kw)


def test_sqlite_purge_spares_a_session_started_afresh(tmp_path: Path) -> None:
    store = RacingStore(tmp_path / "soma.db")
    k = SessionKey("default", "s")
    with store.session(k, ttl=0.05) as st:
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query="old", answer="a"))
    time.sleep(0.1)
    assert store.purge_expired() == []
    assert store.raced and [t.query for t in store.turns(k)] == ["fresh"]
    store.close()


def test_sqlite_delete_leaves_no_text_on_disk(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soma.db")
    k = SessionKey("default", "s")
    marker = "confidential-marker-" + "x" * 200
    with store.session(k, ttl=60.0) as st:
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query=marker, answer=marker))
    with store.session(SessionKey("default", "other"), ttl=60.0) as st:
        st.add_turn(TurnRecord(turn=0, served_by="teacher", query="keep", answer="keep"))
    assert store.delete(k)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("soma.db*"))
    assert marker.encode() not in on_disk
    assert [t.query for t in store.turns(SessionKey("default", "other"))] == ["keep"]
    store.close()


def test_superseded_adapter_folders_are_removed(new_engine: Any, tmp_path: Path) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    _serve(engine, "s")
    first = engine.session("s").adapter_id
    assert engine.rollback("s", "operator")
    teacher = Teacher()
    for t in range(4, 8):  # readapt_window (= warm_window) fresh teacher turns: a new adapter
        engine.chat("s", history(t), teacher)
    view = engine.session("s")
    assert view.phase is Phase.SERVING and view.adapter_id != first
    assert [r.adapter_id for r in _session_adapters(engine, "s")] == [view.adapter_id]
    assert [x["adapter_id"] for x in view.metrics["lineage"]][:2] == [view.adapter_id, first]  # lineage kept


def _stored_turn_bytes(engine: SomaEngine, sid: str) -> int:
    """Bytes of the session's turn records as the store keeps them (SQLite rows, Redis list)."""
    k = engine.key(sid)
    if isinstance(engine.store, SQLiteStore):
        rows = engine.store._conn().execute("SELECT record FROM turns WHERE key=?", (k.digest,)).fetchall()
        return sum(len(r[0].encode()) for r in rows)
    return sum(len(r) for r in engine.store.redis.lrange(engine.store._k("t", k.digest), 0, -1))


def test_turn_records_store_the_delta_of_each_turn(store_url: str, new_engine: Any, permissive_config: Any) -> None:
    engine = new_engine(store_url, config=permissive_config(warm_window=64))
    document = "word " * 40_000  # one 200 kB message
    convo: list[dict[str, str]] = [SYSTEM, {"role": "user", "content": f"Summarise this: {document}"}]
    for t in range(10):
        engine.chat("s", convo, Teacher(f"answer {t}"))
        convo += [{"role": "assistant", "content": f"answer {t}"}, {"role": "user", "content": f"question {t}"}]
    assert _stored_turn_bytes(engine, "s") < 3 * len(document)  # turn 1 (context and query), not 10 copies
    turns = engine.store.turns(engine.key("s"))
    assert [len(t.messages) for t in turns] == [2 + 2 * t for t in range(10)]  # read back whole
    assert turns[-1].messages == convo[:-2]
    assert [t.messages for t in engine.store.turns(engine.key("s"), since=7)] == [x.messages for x in turns[7:]]
    edited = [SYSTEM, {"role": "user", "content": "Summarise this: something else"}, *convo[2:]]
    engine.chat("s", edited, Teacher("after an edit"))  # not a continuation: stored whole
    assert engine.store.turns(engine.key("s"), since=10)[0].messages == edited


# ------------------------------------------------------------------------ 10. config and bounds


def test_documented_environment_variables_do_not_break_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_ADAPTERS_URL", "s3://bucket/soma-adapters")
    monkeypatch.setenv("SOMA_LOG_LEVEL", "INFO")
    monkeypatch.setenv("SOMA_TEST_REDIS_URL", "redis://localhost:6379/0")
    assert SomaConfig.load().warm_window == SomaConfig().warm_window
    monkeypatch.setenv("SOMA_NOT_A_FIELD", "1")
    with pytest.raises(ConfigError, match="not_a_field"):
        SomaConfig.load()


@pytest.mark.parametrize(
    "overrides",
    [
        {"session_ttl": math.inf},
        {"temperature": math.inf},
        {"repetition_penalty": math.inf},
        {"lora": {"lr": math.inf}},
        {"mining": {"lr": math.inf}},
        {"temperature": math.nan},
    ],
)
def test_infinite_values_are_rejected_like_nan(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SomaConfig.load(**overrides)


def test_sqlite_lock_map_stays_bounded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soma.db")
    for i in range(50):
        with store.session(SessionKey("default", f"s{i}"), ttl=60.0) as st:
            st.add("teacher_calls")
    assert store._locks == {}
    store.close()


def test_job_runner_maps_stay_bounded(new_engine: Any, permissive_config: Any, tmp_path: Path) -> None:
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=permissive_config(adaptation="background"))
    for i in range(30):
        engine.jobs.submit(engine.key(f"gone-{i}"))
        engine.jobs.submit_look(engine.key(f"gone-{i}"))
    assert engine.wait_idle(60)
    assert engine.jobs._active == {} and engine.jobs._looks == {}


def test_audit_backlog_is_bounded(new_engine: Any, tmp_path: Path) -> None:
    from soma_engine.drift.audits import AUDIT_BACKLOG
    from soma_engine.types import Route

    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}")
    gate = threading.Event()
    slow = Teacher(hook=lambda: gate.wait(30))
    route = Route(key=engine.key("s"), target="surrogate", messages=[], phase=Phase.SERVING, turn=1)
    for turn in range(AUDIT_BACKLOG + 20):
        engine.auditor.submit(route, turn, "answer", slow)
    assert engine.auditor.backlog == AUDIT_BACKLOG
    assert engine.audits_dropped == 20
    gate.set()
    assert engine.wait_idle(60)
    assert engine.auditor.backlog == 0


def test_a_surrogate_past_its_deadline_falls_back_to_the_teacher(
    new_engine: Any, permissive_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soma_engine.runtime.surrogate import Generation, SurrogateError

    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=permissive_config(surrogate_deadline=0.3))
    _serve(engine, "s")

    def hung(*args: Any, **kwargs: Any) -> Generation:
        time.sleep(3)
        return Generation("too late", 10, 2, "stop")

    monkeypatch.setattr(engine.surrogate, "generate", hung)
    teacher = Teacher()
    started = time.monotonic()
    reply = engine.chat("s", history(4), teacher)
    assert time.monotonic() - started < 2.5
    assert reply.served_by == "teacher" and reply.text == ANSWER
    assert "surrogate_deadline" in reply.soma["fallback"]
    assert engine.session("s").turns[-1].served_by == "teacher"

    def hung_stream(*args: Any, **kwargs: Any) -> Any:
        time.sleep(3)
        yield "too late"

    monkeypatch.setattr(engine.surrogate, "stream", hung_stream)
    route = engine.route("s", history(5))
    assert route.target == "surrogate"
    with pytest.raises(SurrogateError, match="surrogate_deadline"):
        next(engine.stream(route))
