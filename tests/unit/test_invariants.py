"""docs/design.md invariants on a real engine: tiny random surrogate, real SQLite, real encoder.

* No turn is lost: a surrogate that raises, returns empty text, or meets an input over its
  context length -> the teacher serves that same turn and the reply says so.
* A corrupt adapter file -> the teacher serves, the session re-adapts to a new adapter.
* Bad input -> ValueError naming the problem (and the teacher is not called).
* Concurrent turns: none lost, numbered in order, counters add up.
* State survives a restart.

The session switches to the surrogate after its 4th teacher turn (permissive gate, inline
adaptation). Every turn asks the same on-topic question, so the locality gate (calibrated on
the warm turns) keeps routing to the surrogate and never rolls back behind a test's back.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from soma_engine import Message, Phase, SessionKey, SomaEngine
from soma_engine.adapters import WEIGHTS, AdapterRef
from soma_engine.runtime.surrogate import Generation

QUERY = "Can you lower the price of the red bicycle?"
ANSWER = "The red bicycle costs eight hundred dollars."
MAX_CONTEXT = 160  # a warm context fits; a long system prompt does not


class Teacher:
    """A scripted teacher: always the same answer; remembers what it was sent."""

    def __init__(self, answer: str = ANSWER) -> None:
        self.answer = answer
        self.calls: list[Any] = []

    def __call__(self, messages: Any) -> str:
        self.calls.append(messages)
        return self.answer


def history(n_turns: int, query: str = QUERY) -> list[dict[str, str]]:
    """The conversation an app sends at turn n_turns + 1: n_turns past turns + the new query."""
    msgs: list[dict[str, str]] = []
    for _ in range(n_turns):
        msgs += [{"role": "user", "content": QUERY}, {"role": "assistant", "content": ANSWER}]
    return [*msgs, {"role": "user", "content": query}]


def warm_up(engine: SomaEngine, sid: str, teacher: Teacher) -> str:
    """Four teacher turns; returns the adapter id the session switched to."""
    for t in range(4):
        reply = engine.chat(sid, history(t), teacher)
        assert reply.served_by == "teacher"
        assert reply.soma["turn"] == t + 1
    view = engine.session(sid)
    assert view.phase is Phase.SERVING, view.decisions
    assert view.adapter_id
    return view.adapter_id


def next_turn(engine: SomaEngine, sid: str) -> list[dict[str, str]]:
    return history(len(engine.session(sid).turns))


# ------------------------------------------------------------------------------- the serving session


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("invariants") / "soma.db"


@pytest.fixture(scope="module")
def serving(new_engine: Any, permissive_config: Any, db_path: Path) -> Any:
    """One engine with one session already switched to the surrogate."""
    config = permissive_config(recent_turns=1, summary_tokens=0)
    engine = new_engine(f"sqlite:///{db_path}", config=config, max_context=MAX_CONTEXT)
    engine.sid = "serving-session"
    engine.adapter_id = warm_up(engine, engine.sid, Teacher())
    yield engine
    engine.close()


def test_surrogate_serves_when_it_works(serving: SomaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the fallback tests below: with a working surrogate the turn is its."""
    monkeypatch.setattr(serving.surrogate, "generate", lambda *a, **k: Generation("Seven fifty, final.", 30, 5, "stop"))
    teacher = Teacher()
    reply = serving.chat(serving.sid, next_turn(serving, serving.sid), teacher)
    assert reply.served_by == "surrogate"
    assert reply.text == "Seven fifty, final."
    assert "fallback" not in reply.soma
    assert reply.soma["adapter_id"] == serving.adapter_id
    assert teacher.calls == []
    assert serving.session(serving.sid).turns[-1].served_by == "surrogate"


def _assert_fallback_turn(engine: SomaEngine, reply: Any, teacher: Teacher, before: Any, reason: str) -> None:
    assert reply.served_by == "teacher"
    assert reply.text == ANSWER
    assert "fallback" in reply.soma
    assert reason in reply.soma["fallback"]
    assert len(teacher.calls) == 1  # the same turn, served once by the teacher
    after = engine.session(engine.sid)
    assert len(after.turns) == len(before.turns) + 1
    last = after.turns[-1]
    assert last.turn == reply.soma["turn"] == before.metrics["turns"] + 1
    assert last.served_by == "teacher" and last.answer == ANSWER
    assert last.fallback and reason in last.fallback
    assert after.metrics["fallbacks"] == before.metrics["fallbacks"] + 1
    assert after.metrics["teacher_calls"] == before.metrics["teacher_calls"] + 1
    # A surrogate failure is not a reason to drop the adapter.
    assert after.phase is Phase.SERVING
    assert after.adapter_id == engine.adapter_id


def test_surrogate_exception_falls_back_to_teacher(serving: SomaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(*args: Any, **kwargs: Any) -> Generation:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(serving.surrogate, "generate", oom)
    before, teacher = serving.session(serving.sid), Teacher()
    reply = serving.chat(serving.sid, next_turn(serving, serving.sid), teacher)
    _assert_fallback_turn(serving, reply, teacher, before, "out of memory")


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_empty_surrogate_output_falls_back_to_teacher(
    serving: SomaEngine, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setattr(serving.surrogate, "generate", lambda *a, **k: Generation(text, 30, 0, "stop"))
    before, teacher = serving.session(serving.sid), Teacher()
    reply = serving.chat(serving.sid, next_turn(serving, serving.sid), teacher)
    _assert_fallback_turn(serving, reply, teacher, before, "empty")


def test_input_over_context_length_falls_back_to_teacher(serving: SomaEngine) -> None:
    """The real surrogate runtime refuses a context longer than its window (here a long
    retrieved-context system prompt, as RAG apps send); the teacher serves the turn."""
    before, teacher = serving.session(serving.sid), Teacher()
    system = {"role": "system", "content": "Shop policy: " + "prices are final on weekends. " * 40}
    reply = serving.chat(serving.sid, [system, *next_turn(serving, serving.sid)], teacher)
    _assert_fallback_turn(serving, reply, teacher, before, "exceeds")
    assert teacher.calls[0][0].content == system["content"]  # the teacher got the whole input


def test_non_text_content_goes_to_the_teacher_untouched(serving: SomaEngine) -> None:
    before, teacher = serving.session(serving.sid), Teacher()
    msgs: list[Any] = next_turn(serving, serving.sid)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    msgs[-1] = {"role": "user", "content": [{"type": "text", "text": QUERY}, image]}
    reply = serving.chat(serving.sid, msgs, teacher)
    assert reply.served_by == "teacher"
    assert teacher.calls == [msgs]  # the image part reaches the teacher as sent
    after = serving.session(serving.sid)
    assert len(after.turns) == len(before.turns) + 1
    assert after.turns[-1].query == QUERY
    assert after.phase is Phase.SERVING


def test_state_survives_restart(serving: SomaEngine, new_engine: Any, permissive_config: Any, db_path: Path) -> None:
    before = serving.session(serving.sid)
    config = permissive_config(recent_turns=1, summary_tokens=0)
    with new_engine(f"sqlite:///{db_path}", config=config, max_context=MAX_CONTEXT) as again:
        view = again.session(serving.sid)
        assert view.phase is before.phase is Phase.SERVING
        assert view.metrics["turns"] == len(view.turns) == len(before.turns)
        assert view.adapter_id == before.adapter_id == serving.adapter_id
        assert [t.served_by for t in view.turns] == [t.served_by for t in before.turns]
        assert view.metrics["teacher_calls"] == before.metrics["teacher_calls"]
        # The new process routes the next turn to the surrogate with the stored adapter...
        route = again.route(serving.sid, next_turn(again, serving.sid))
        assert route.target == "surrogate"
        assert route.adapter_id == serving.adapter_id
        assert route.turn == len(before.turns) + 1
        # ...and the adapter it points at is on disk and verifies.
        state = again.store.get(SessionKey("default", serving.sid))
        tensors, cfg = again.adapters.load(AdapterRef.from_dict(state.adapter))
        assert tensors and cfg["r"] == again.config.lora.rank


# ------------------------------------------------------------------------------- corrupt adapter


def test_corrupt_adapter_falls_back_then_readapts(new_engine: Any, permissive_config: Any, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'soma.db'}"
    config = permissive_config(recent_turns=1, summary_tokens=0)
    teacher = Teacher()
    with new_engine(store, config=config, max_context=MAX_CONTEXT) as first:
        old_id = warm_up(first, "fragile", teacher)
        ref = AdapterRef.from_dict(first.store.get(SessionKey("default", "fragile")).adapter)
        weights = first.adapters.path(ref) / WEIGHTS
    data = bytearray(weights.read_bytes())
    for i in range(len(data) - 64, len(data)):
        data[i] ^= 0xA5
    weights.write_bytes(bytes(data))

    # A new process (or a replica) loads the adapter from disk and finds it corrupt.
    with new_engine(store, config=config, max_context=MAX_CONTEXT) as engine:
        teacher.calls.clear()
        reply = engine.chat("fragile", history(4), teacher)
        assert reply.served_by == "teacher"
        assert reply.text == ANSWER
        assert "fallback" in reply.soma
        assert "verification" in reply.soma["fallback"] or "Corrupt" in reply.soma["fallback"]
        assert len(teacher.calls) == 1
        view = engine.session("fragile")
        assert any("corrupt_adapter" in d for d in view.decisions)
        if view.phase is not Phase.SERVING:  # re-adaptation may wait for the next teacher turn
            assert engine.chat("fragile", history(5), teacher).served_by == "teacher"
            view = engine.session("fragile")
        assert view.phase is Phase.SERVING, view.decisions
        assert view.adapter_id and view.adapter_id != old_id
        new_ref = AdapterRef.from_dict(engine.store.get(SessionKey("default", "fragile")).adapter)
        assert engine.adapters.load(new_ref)[0]  # the new adapter verifies
        assert view.turns[4].fallback  # the fallback turn is recorded as such
        route = engine.route("fragile", history(len(view.turns)))
        assert route.target == "surrogate" and route.adapter_id == view.adapter_id


# ------------------------------------------------------------------------------- adaptation on one engine


def test_two_sessions_adapt_on_one_engine(new_engine: Any, permissive_config: Any, tmp_path: Path) -> None:
    """The surrogate's base model is shared by every session: a second session must be able
    to train its own adapter after the first one's adapter has served (been generated with)."""
    config = permissive_config(recent_turns=1, summary_tokens=0)
    with new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=config, max_context=MAX_CONTEXT) as engine:
        first = warm_up(engine, "first", Teacher())
        engine.chat("first", history(4), Teacher())  # a real surrogate (or fallback) turn
        second = warm_up(engine, "second", Teacher("Eight hundred, and that includes the helmet."))
        assert second != first
        assert engine.session("first").adapter_id == first


def test_inline_adaptation_failure_does_not_lose_the_turn(
    new_engine: Any, permissive_config: Any, tmp_path: Path
) -> None:
    """Adaptation that fails (here: the held-out context does not fit a 40-token surrogate)
    must not turn the teacher's answered turn into an exception for the caller."""
    config = permissive_config(recent_turns=1, summary_tokens=0)
    teacher = Teacher()
    with new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=config, max_context=40) as engine:
        for t in range(6):
            reply = engine.chat("small-window", history(t), teacher)
            assert reply.served_by == "teacher"
            assert reply.text == ANSWER
            assert reply.soma["turn"] == t + 1
        view = engine.session("small-window")
        assert len(view.turns) == 6
        assert view.phase is not Phase.SERVING


# ------------------------------------------------------------------------------- bad input


@pytest.fixture
def plain_engine(new_engine: Any, permissive_config: Any, tmp_path: Path) -> Any:
    with new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=permissive_config(warm_window=50)) as engine:
        yield engine


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([], "empty"),
        ([{"role": "wizard", "content": "hi"}], "wizard"),
        ([{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}], "unknown role"),
        ([{"content": "no role"}], "role"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "must end with the user"),
        ("just a string", "not a string"),
        ([Message("wizard", "hi"), Message("user", "hi")], "wizard"),
        ([{"role": "user", "content": 42}], "content"),
    ],
)
def test_bad_messages_raise_value_error(plain_engine: SomaEngine, messages: Any, problem: str) -> None:
    teacher = Teacher()
    with pytest.raises(ValueError, match=problem):
        plain_engine.chat("bad-input", messages, teacher)
    assert teacher.calls == []
    with pytest.raises(KeyError):
        plain_engine.session("bad-input")  # nothing was recorded


def test_bad_session_id_and_teacher_reply(plain_engine: SomaEngine) -> None:
    with pytest.raises(ValueError, match="session_id"):
        plain_engine.chat(42, history(0), Teacher())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="string"):
        plain_engine.chat("s", history(0), lambda m: 42)


def test_teacher_error_reaches_the_caller(plain_engine: SomaEngine) -> None:
    class TeacherDown(Exception):
        pass

    def teacher(messages: Any) -> str:
        raise TeacherDown("503 from the provider")

    with pytest.raises(TeacherDown, match="503"):
        plain_engine.chat("teacher-down", history(0), teacher)


# ------------------------------------------------------------------------------- concurrency


def test_concurrent_turns_none_lost_in_order(plain_engine: SomaEngine) -> None:
    n_threads, n_turns, n_sessions = 8, 5, 4
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        sid = f"concurrent-{i % n_sessions}"
        try:
            barrier.wait(10)
            for j in range(n_turns):
                query = f"thread {i} turn {j}"

                def teacher(msgs: Any, i: int = i, j: int = j) -> tuple[str, dict[str, int]]:
                    return f"answer {i}-{j}", {"input_tokens": 7, "output_tokens": 3}

                reply = plain_engine.chat(sid, [{"role": "user", "content": query}], teacher)
                assert reply.text == f"answer {i}-{j}"
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for s in range(n_sessions):
        view = plain_engine.session(f"concurrent-{s}")
        per_session = n_turns * n_threads // n_sessions
        assert [t.turn for t in view.turns] == list(range(1, per_session + 1))
        expected = {f"thread {i} turn {j}" for i in range(n_threads) if i % n_sessions == s for j in range(n_turns)}
        assert {t.query for t in view.turns} == expected
        assert len(view.turns) == len(expected)
        for t in view.turns:  # each answer recorded with its own query
            i, j = t.query.split()[1], t.query.split()[3]
            assert t.answer == f"answer {i}-{j}"
        for i in {t.query.split()[1] for t in view.turns}:  # each thread's turns in its order
            mine = [int(t.query.split()[3]) for t in view.turns if t.query.split()[1] == i]
            assert mine == list(range(n_turns))
        assert view.metrics["turns"] == per_session
        assert view.metrics["teacher_calls"] == per_session
        assert view.metrics["teacher_input_tokens"] == 7 * per_session
        assert view.metrics["teacher_output_tokens"] == 3 * per_session
        assert view.phase is Phase.WARM


def test_wait_idle_with_a_timeout_returns_false_while_an_audit_runs(new_engine: Any, tmp_path: Path) -> None:
    release = threading.Event()
    with new_engine(f"sqlite:///{tmp_path / 's.db'}") as engine:
        engine._audits.submit(release.wait, 10)  # an audit still in flight
        assert engine.wait_idle(timeout=0.05) is False
        release.set()
        assert engine.wait_idle(timeout=10) is True
