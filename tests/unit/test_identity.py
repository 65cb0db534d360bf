"""Session identity: hostile ids are hashed and never become paths; the namespace is part of
every key; without an id, the fingerprint of the conversation's opening is the session."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from soma_engine import Message, Phase, SessionKey
from soma_engine.adapters import CONFIG, META, WEIGHTS
from soma_engine.types import fingerprint, hash_id, normalize_messages

HOSTILE = {
    "traversal": "../../etc",
    "long": "x" * 10_240,
    "nul": "abc\x00def\x00/../../tmp",
    "unicode": "セッション/💥\u202e..\\..\\windows\ud800",
}

QUERY = "Can you lower the price of the red bicycle?"
ANSWER = "The red bicycle costs eight hundred dollars."


def teacher(messages: Any) -> str:
    return ANSWER


def history(n_turns: int) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for _ in range(n_turns):
        msgs += [{"role": "user", "content": QUERY}, {"role": "assistant", "content": ANSWER}]
    return [*msgs, {"role": "user", "content": QUERY}]


# ------------------------------------------------------------------------------- keys


@pytest.mark.parametrize("sid", list(HOSTILE.values()), ids=list(HOSTILE))
def test_digest_is_fixed_length_hex(sid: str) -> None:
    key = SessionKey("default", sid)
    assert re.fullmatch(r"[0-9a-f]{40}", key.digest)
    assert re.fullmatch(r"[0-9a-f]{40}", key.namespace_digest)
    assert key.digest == SessionKey("default", sid).digest  # stable
    assert key.digest != SessionKey("default", sid + "!").digest


def test_key_parts_cannot_be_confused() -> None:
    """Length-prefixed hashing: moving a boundary between parts changes the digest."""
    assert SessionKey("ab", "c").digest != SessionKey("a", "bc").digest
    assert SessionKey("ns", "s", agent="a").digest != SessionKey("ns", "s").digest
    assert hash_id("a", "") != hash_id("", "a")


def test_namespace_is_part_of_the_key() -> None:
    a, b = SessionKey("tenant-a", "s-1"), SessionKey("tenant-b", "s-1")
    assert a.digest != b.digest
    assert a.namespace_digest != b.namespace_digest


@pytest.mark.parametrize(
    ("ns", "sid"),
    [("", "s"), ("ns", ""), (None, "s"), ("ns", 42)],
)
def test_invalid_key_parts_raise(ns: Any, sid: Any) -> None:
    with pytest.raises(ValueError):
        SessionKey(ns, sid)


# ------------------------------------------------------------------------------- hostile ids end to end

ALLOWED_NAMES = {
    "soma.db",
    "soma.db-wal",
    "soma.db-shm",
    "adapters",
    "registry.db",
    "registry.db-wal",
    "registry.db-shm",
    WEIGHTS,
    CONFIG,
    META,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_session_id_never_becomes_a_path(
    name: str, new_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm turns, adaptation (an adapter folder is written) and a surrogate turn with a
    hostile id: every file and folder under SOMA_HOME is named by a hash or a fixed name."""
    sid = HOSTILE[name]
    home = tmp_path / "home" / "soma"
    monkeypatch.setenv("SOMA_HOME", str(home))
    with new_engine(None) as engine:  # default store: a SQLite file under SOMA_HOME
        assert engine.home == home
        for t in range(5):
            reply = engine.chat(sid, history(t), teacher)
            assert reply.soma["session_id"] == sid
            assert reply.soma["turn"] == t + 1
        view = engine.session(sid)
        assert view.session_id == sid
        assert len(view.turns) == 5
        assert view.phase is Phase.SERVING and view.adapter_id
    entries = list(home.rglob("*"))
    assert any(p.name == WEIGHTS for p in entries)  # the adapter really was written
    for p in entries:
        assert p.name in ALLOWED_NAMES or re.fullmatch(r"[0-9a-f]{32,40}", p.name), p
    # Nothing escaped SOMA_HOME either.
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["soma"]
    assert not (tmp_path / "etc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


# ------------------------------------------------------------------------------- namespaces


def test_same_id_in_two_namespaces_is_two_sessions(new_engine: Any, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    with new_engine(store, namespace="tenant-a") as a, new_engine(store, namespace="tenant-b") as b:
        for t in range(4):
            a.chat("same-id", history(t), teacher)
        view_a = a.session("same-id")
        assert view_a.phase is Phase.SERVING and view_a.adapter_id
        # tenant-b cannot see tenant-a's session through its engine...
        with pytest.raises(KeyError):
            b.session("same-id")
        # ...nor reach it with tenant-a's key.
        with pytest.raises(ValueError, match="namespace"):
            b.route(SessionKey("tenant-a", "same-id"), history(0))
        # The same id in tenant-b starts its own session, on the teacher.
        reply = b.chat("same-id", history(0), teacher)
        assert reply.served_by == "teacher"
        assert reply.soma["turn"] == 1
        assert reply.soma["namespace"] == "tenant-b"
        assert "adapter_id" not in reply.soma
        view_b = b.session("same-id")
        assert view_b.namespace == "tenant-b" and len(view_b.turns) == 1 and view_b.adapter_id is None
        assert len(a.session("same-id").turns) == 4
        # tenant-a's adapter lives under tenant-a's namespace only.
        assert [r.adapter_id for r in a.adapters.list(SessionKey("tenant-a", "x").namespace_digest)] == [
            view_a.adapter_id
        ]
        assert a.adapters.list(SessionKey("tenant-b", "x").namespace_digest) == []
        # Deleting in tenant-b leaves tenant-a alone.
        assert b.delete("same-id") is True
        assert len(a.session("same-id").turns) == 4


# ------------------------------------------------------------------------------- fingerprint


def msgs(system: str | None, *turns: str) -> list[Message]:
    out = [Message("system", system)] if system is not None else []
    for i, t in enumerate(turns):
        out.append(Message("user" if i % 2 == 0 else "assistant", t))
    return out


def test_fingerprint_same_opening_same_id() -> None:
    first = msgs("Be brief.", "Plan a trip to Lisbon.")
    later = msgs("Be brief.", "Plan a trip to Lisbon.", "Day 1: trams.", "And day 2?")
    assert fingerprint(first) == fingerprint(later)
    assert fingerprint(first).startswith("fp-")


def test_fingerprint_differs_on_system_prompt_or_first_message() -> None:
    base = fingerprint(msgs("Be brief.", "Plan a trip to Lisbon."))
    assert fingerprint(msgs("Be verbose.", "Plan a trip to Lisbon.")) != base
    assert fingerprint(msgs(None, "Plan a trip to Lisbon.")) != base
    assert fingerprint(msgs("Be brief.", "Plan a trip to Porto.")) != base


def test_fingerprint_ignores_later_system_messages() -> None:
    """Only the opening counts: a system note injected mid-conversation must not move the
    conversation to another session."""
    opening = msgs("Be brief.", "Plan a trip to Lisbon.")
    later = [
        *opening,
        Message("assistant", "Day 1: trams."),
        Message("system", "User is vegan."),
        Message("user", "Food?"),
    ]
    assert fingerprint(later) == fingerprint(opening)


def test_chat_without_session_id_uses_the_fingerprint(new_engine: Any, tmp_path: Path, permissive_config: Any) -> None:
    with new_engine(f"sqlite:///{tmp_path / 'fp.db'}", config=permissive_config(warm_window=50)) as engine:
        convo = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Plan a trip to Lisbon."}]
        r1 = engine.chat(None, convo, teacher)
        convo += [{"role": "assistant", "content": r1.text}, {"role": "user", "content": "And day 2?"}]
        r2 = engine.chat(None, convo, teacher)
        assert r1.soma["session_id"] == r2.soma["session_id"]
        assert (r1.soma["turn"], r2.soma["turn"]) == (1, 2)
        sid = fingerprint(normalize_messages(convo))
        assert r1.soma["session_id"] == sid
        assert [t.query for t in engine.session(sid).turns] == ["Plan a trip to Lisbon.", "And day 2?"]
        # Another conversation (other system prompt) is another session.
        other = [{"role": "system", "content": "Be detailed."}, {"role": "user", "content": "Plan a trip to Lisbon."}]
        r3 = engine.chat(None, other, teacher)
        assert r3.soma["session_id"] != sid
        assert r3.soma["turn"] == 1


def test_each_model_instance_warns_once_when_no_session_id_is_found(new_engine, permissive_config, tmp_path, caplog):
    """Without an id a conversation is tracked by its opening's fingerprint: every model
    instance says so once (not once per engine, which several models may share)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import ChatMessage, MockLLM

    from soma_integrations.langchain import SomaChatModel
    from soma_integrations.llama_index import SomaLLM

    engine = new_engine(f"sqlite:///{tmp_path / 'warn.db'}", config=permissive_config())
    a = SomaChatModel(teacher=FakeListChatModel(responses=["ok"] * 10), engine=engine)
    b = SomaChatModel(teacher=FakeListChatModel(responses=["ok"] * 10), engine=engine)
    c = SomaLLM(teacher=MockLLM(), engine=engine)
    with caplog.at_level("WARNING"):
        a.invoke([("human", "Hi")])
        a.invoke([("human", "Hello again")])
        b.invoke([("human", "Hi there")])
        b.invoke([("human", "Hey")], session_id="explicit")
        c.chat([ChatMessage(role="user", content="Hi")])
    warned = [r.getMessage() for r in caplog.records if "no session id found" in r.getMessage()]
    assert [w.split(":")[0] for w in warned] == ["SomaChatModel", "SomaChatModel", "SomaLLM"]
