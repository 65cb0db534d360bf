"""Adapter sharing (issue 8): the AdapterRegistry, adoption of a shared adapter on a session's
own turns, isolation between namespaces and agents, retention, and agents on one engine.

Real engines on the tiny surrogate and the bundled MiniLM encoder, SQLite stores under tmp,
adaptation inline; the teacher is a scripted persona whose answers mirror the query."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soma_engine import Phase, SomaEngine
from soma_engine.adapters import AdapterRef, AdapterRegistry, agent_digest
from soma_engine.types import Message, SessionKey

SYSTEM = "You are a pirate who coaches people selling their bicycles."
FAMILY = [
    "How should I price my road bike listing?",
    "A buyer offers seven hundred dollars for my bike, what now?",
    "Should I include the pedals when I sell the bike?",
    "He proposes meeting in the middle on the bike price, accept?",
    "Should I clean the bike before the buyer comes?",
    "Is a test ride on my bike safe?",
]
SIBLING = [
    "What price should I ask for my used road bike?",
    "Someone offered six hundred for the bike, how do I answer?",
    "Do I throw in the bike pedals and bottle cages?",
    "Is it a good idea to meet the bike buyer halfway?",
    "Should I oil the bike chain before the sale?",
]


def persona(messages: list[Message]) -> str:
    query = messages[-1].content
    keyword = max(query.strip("?.!").replace(",", " ").split(), key=len)
    return f"{keyword.capitalize()}? Arr, shiver me timbers, matey!"


def talk(engine: SomaEngine, sid: str, queries: list[str], agent: str = "") -> list[Any]:
    history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    replies = []
    for q in queries:
        history.append({"role": "user", "content": q})
        reply = engine.chat(sid, history, persona, agent=agent)
        history.append({"role": "assistant", "content": reply.text})
        replies.append(reply)
    return replies


def adoptions(engine: SomaEngine, sid: str, agent: str = "") -> list[dict[str, Any]]:
    return [d for d in engine.session(sid, agent=agent).decisions if d.get("kind") == "adoption"]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'soma.db'}"


@pytest.fixture
def sharing_engine(new_engine: Any, permissive_config: Any, store: str) -> Any:
    def make(share: str = "namespace", namespace: str = "default", **overrides: Any) -> SomaEngine:
        cfg = permissive_config(share=share, share_similarity=0.5, share_min_turns=2, **overrides)
        return new_engine(store, config=cfg, namespace=namespace)

    return make


# -- the registry on its own -------------------------------------------------------------------


def _ref(key: SessionKey, adapter_id: str) -> AdapterRef:
    return AdapterRef(adapter_id=adapter_id, namespace=key.namespace_digest, session=key.digest, size_bytes=10)


def test_registry_query_stays_in_namespace_policy_and_sees_other_writers(tmp_path: Path) -> None:
    reg = AdapterRegistry(tmp_path / "registry.db")
    v = np.ones(8, dtype=np.float32)
    a1, a2 = SessionKey("tenant-a", "s1", "planner"), SessionKey("tenant-a", "s2", "planner")
    a_writer = SessionKey("tenant-a", "s3", "writer")
    b1 = SessionKey("tenant-b", "s1", "planner")
    reg.record(_ref(a1, "aaaa"), a1, centroid=v, accepted=True)
    # B has nothing yet: A's identical centroid never comes back, whatever the policy.
    for share in ("none", "agent", "namespace"):
        assert reg.nearest(b1, v, share) == []
    assert reg.nearest(a2, v, "none") == []
    assert [m.entry.adapter_id for m in reg.nearest(a2, v, "namespace")] == ["aaaa"]
    assert reg.nearest(a1, v, "namespace") == []  # never the session itself
    assert reg.nearest(a_writer, v, "agent") == []  # another agent's adapter
    assert [m.entry.adapter_id for m in reg.nearest(a_writer, v, "namespace")] == ["aaaa"]
    match = reg.nearest(a2, v, "agent")[0]
    assert match.similarity == pytest.approx(1.0, abs=1e-5)
    assert match.entry.agent == agent_digest(a1) and "planner" not in match.entry.agent
    assert np.linalg.norm(match.entry.centroid) == pytest.approx(1.0, abs=1e-5)

    # B's own row, same centroid: B sees only B's; A only A's.
    reg.record(_ref(b1, "bbbb"), b1, centroid=v, accepted=True)
    b2 = SessionKey("tenant-b", "s2", "planner")
    assert [m.entry.adapter_id for m in reg.nearest(b2, v, "namespace")] == ["bbbb"]
    assert [m.entry.adapter_id for m in reg.nearest(a2, v, "namespace")] == ["aaaa"]
    assert {e.session for e in reg.entries(b1.namespace_digest)} == {b1.digest}

    # Rejected rows are not shareable; a second registry on the same file (another process)
    # sees writes after building its own index.
    other = AdapterRegistry(tmp_path / "registry.db")
    assert [m.entry.adapter_id for m in other.nearest(a2, v, "namespace")] == ["aaaa"]
    reg.mark(a1.namespace_digest, "aaaa", a1.digest, accepted=False)
    assert other.nearest(a2, v, "namespace") == []
    reg.record(_ref(a_writer, "cccc"), a_writer, centroid=-v, accepted=True)
    assert [m.entry.adapter_id for m in other.nearest(a2, -v, "namespace")] == ["cccc"]
    assert other.nearest(a2, v, "namespace", min_similarity=0.5) == []
    # A row is recorded under its own session's key only.
    with pytest.raises(ValueError):
        reg.record(_ref(a1, "dddd"), b1, centroid=v, accepted=True)


# -- reuse ---------------------------------------------------------------------------------


def test_similar_session_adopts_after_the_gate_passes_on_its_own_turns(sharing_engine: Any, store: str) -> None:
    with sharing_engine() as engine:
        first = talk(engine, "donor", FAMILY[:4])
        assert [r.served_by for r in first] == ["teacher"] * 4
        donor = engine.session("donor")
        assert donor.phase is Phase.SERVING
        donor_key = engine.key("donor")
        (row,) = engine.registry.entries(donor_key.namespace_digest, donor_key.digest)
        assert row.kind == "trained" and row.accepted and row.shareable and row.adapter_id == donor.adapter_id
        assert row.size_bytes > 0 and row.parent is None and row.centroid is not None

        replies = talk(engine, "sibling", SIBLING[:4])
        # Turn 1: too few own turns to look. Turn 2: the look, gated on turns 1-2. Turn 3 on:
        # the donor's adapter serves, before the sibling's own window (4) is full.
        assert [r.served_by for r in replies] == ["teacher", "teacher", "surrogate", "surrogate"]
        assert "adoption" not in replies[0].soma and replies[1].soma["adoption"]["adopted"] is True
        assert replies[2].soma["adapter_id"] == donor.adapter_id
        (look,) = adoptions(engine, "sibling")
        assert look["accepted"] and look["adopted"] and look["turn"] == 2
        assert look["n"] == 2 and look["own_turns"] == 2 and look["donor_adapter"] == donor.adapter_id
        assert look["similarity"] >= engine.config.share_similarity

        view = engine.session("sibling")
        assert view.phase is Phase.SERVING and view.metrics["adoptions"] == 1 and view.metrics["adaptations"] == 0
        key = engine.key("sibling")
        (mine,) = engine.registry.entries(key.namespace_digest, key.digest)
        assert mine.kind == "adopted" and mine.parent == donor.adapter_id and mine.donor == donor_key.digest
        lineage = view.metrics["lineage"]
        assert [(x["kind"], x["session"]) for x in lineage] == [("adopted", key.digest), ("trained", donor_key.digest)]
        # Serving updates last_used (off the request path; at most every touch_every seconds).
        engine.registry.touch_every = 0.0
        history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": SIBLING[4]}]
        assert engine.chat("sibling", history, persona).served_by == "surrogate"
        engine.wait_idle()
        assert engine.registry.get(key.namespace_digest, mine.adapter_id, key.digest).last_used > mine.last_used

    # `soma adapters` shows the lineage: one adapter folder, trained by the donor, adopted by the sibling.
    from typer.testing import CliRunner

    from soma_engine.cli import app

    cli = CliRunner()
    listed = json.loads(cli.invoke(app, ["adapters", "list", "--store", store, "--json"]).output)
    (shown,) = [a for a in listed if a["adapter_id"] == donor.adapter_id]
    assert sorted((r["kind"], r["session"]) for r in shown["registry"]) == sorted(
        [("trained", donor_key.digest), ("adopted", key.digest)]
    )
    detail = json.loads(cli.invoke(app, ["adapters", "show", donor.adapter_id[:12], "--store", store]).output)
    assert [[x["kind"] for x in chain] for chain in detail["lineage"]] in (
        [["trained"], ["adopted", "trained"]],
        [["adopted", "trained"], ["trained"]],
    )


def test_refused_adoption_warm_starts_the_own_adaptation(sharing_engine: Any) -> None:
    with sharing_engine() as engine:
        talk(engine, "donor", FAMILY[:4])
        donor_id = engine.session("donor").adapter_id
    # The same store and namespace, with a gate no candidate can pass.
    with sharing_engine(gate={"min_fidelity": 1.0}) as strict:
        replies = talk(strict, "sibling", SIBLING[:4])
        assert [r.served_by for r in replies] == ["teacher"] * 4
        looks = adoptions(strict, "sibling")
        assert looks and not any(d["adopted"] for d in looks) and looks[0]["donor_adapter"] == donor_id
        assert looks[0]["n"] == 2 and looks[0]["fidelity"] < 1.0
        (own,) = [d for d in strict.session("sibling").decisions if d.get("kind") == "adaptation"]
        assert own["warm_start"] == donor_id and own["parent"] == donor_id
        key = strict.key("sibling")
        (row,) = strict.registry.entries(key.namespace_digest, key.digest)
        assert row.kind == "trained" and row.parent == donor_id and not row.shareable


def test_share_none_never_reuses(sharing_engine: Any) -> None:
    with sharing_engine(share="none") as engine:
        talk(engine, "donor", FAMILY[:4])
        replies = talk(engine, "twin", FAMILY[:5])
        assert [r.served_by for r in replies] == ["teacher"] * 4 + ["surrogate"]
        assert adoptions(engine, "twin") == []
        key = engine.key("twin")
        (row,) = engine.registry.entries(key.namespace_digest, key.digest)
        assert row.kind == "trained" and row.parent is None
        assert engine.registry.nearest(key, row.centroid, "none") == []


def test_two_namespaces_with_identical_conversations_never_share(sharing_engine: Any) -> None:
    with sharing_engine(namespace="tenant-a") as a, sharing_engine(namespace="tenant-b") as b:
        talk(a, "same-id", FAMILY[:4])
        replies = talk(b, "same-id", FAMILY[:4])
        assert [r.served_by for r in replies] == ["teacher"] * 4
        assert adoptions(b, "same-id") == []
        ka, kb = a.key("same-id"), b.key("same-id")
        (row_a,) = a.registry.entries(ka.namespace_digest)
        (row_b,) = b.registry.entries(kb.namespace_digest)
        assert row_b.kind == "trained" and row_b.parent is None and row_b.session == kb.digest
        assert b.adapters.path(AdapterRef.from_dict(b.store.get(kb).adapter)).parent.name == kb.namespace_digest
        # Even A's identical centroid finds only B's own rows from B's side.
        probe = SessionKey("tenant-b", "another")
        assert [m.entry.session for m in b.registry.nearest(probe, row_a.centroid, "namespace")] == [kb.digest]
        b.delete("same-id")
        assert b.registry.nearest(probe, row_a.centroid, "namespace") == []
        assert [e.session for e in a.registry.entries(ka.namespace_digest)] == [ka.digest]


def test_share_agent_never_crosses_agents(sharing_engine: Any) -> None:
    with sharing_engine(share="agent") as engine:
        talk(engine, "s1", FAMILY[:4], agent="planner")
        donor_id = engine.session("s1", agent="planner").adapter_id
        writer = talk(engine, "s2", SIBLING[:3], agent="writer")
        assert [r.served_by for r in writer] == ["teacher"] * 3 and adoptions(engine, "s2", agent="writer") == []
        planner = talk(engine, "s3", SIBLING[:3], agent="planner")
        assert [r.served_by for r in planner] == ["teacher", "teacher", "surrogate"]
        assert planner[2].soma["adapter_id"] == donor_id and planner[2].soma["agent"] == "planner"


HOSTILE = [
    "../tenant-a",
    "../../" + "x" * 50,
    "tenant-a/../../etc/passwd",
    SessionKey("tenant-a", "victim").digest,
    SessionKey("tenant-a", "victim").namespace_digest,
    "ｔｅｎａｎｔ－ａ\u202e\u0000",
    "victim" * 2000,
]


def test_crafted_ids_cannot_reach_another_namespace(sharing_engine: Any) -> None:
    with sharing_engine(namespace="tenant-a") as victim, sharing_engine(namespace="tenant-b") as attacker:
        talk(victim, "victim", FAMILY[:4])
        vkey = victim.key("victim")
        (vrow,) = victim.registry.entries(vkey.namespace_digest)
        with pytest.raises(ValueError):
            attacker.key(vkey)  # a key of another namespace is refused outright
        for i, crafted in enumerate(HOSTILE):
            agent = HOSTILE[-1 - i]
            replies = talk(attacker, crafted, FAMILY[:3], agent=agent)
            assert [r.served_by for r in replies] == ["teacher"] * 3
            assert adoptions(attacker, crafted, agent=agent) == []
            key = attacker.key(crafted, agent=agent)
            assert key.namespace_digest != vkey.namespace_digest
            for share in ("agent", "namespace"):
                assert attacker.registry.nearest(key, vrow.centroid, share) == []
        # Nothing of B's was written under A's folder or rows; A's adapter is intact.
        assert [r.session for r in victim.adapters.list(vkey.namespace_digest)] == [vkey.digest]
        assert [e.session for e in victim.registry.entries(vkey.namespace_digest)] == [vkey.digest]
        assert all(p.parent == victim.adapters.root for p in victim.adapters.root.glob("*") if p.is_dir())


# -- retention ------------------------------------------------------------------------------


def test_delete_and_ttl_remove_adapter_folders_and_registry_rows(sharing_engine: Any) -> None:
    with sharing_engine() as engine:
        talk(engine, "donor", FAMILY[:4])
        talk(engine, "sibling", SIBLING[:3])
        talk(engine, "cousin", SIBLING[1:4])
        ns = engine.key("donor").namespace_digest
        donor_ref = AdapterRef.from_dict(engine.store.get(engine.key("donor")).adapter)
        assert engine.adapters.exists(donor_ref) and len(engine.registry.entries(ns)) == 3

        # An adopter's deletion takes its rows; the donor's adapter (the donor's data) stays.
        assert engine.delete("cousin")
        assert engine.adapters.exists(donor_ref)
        assert {e.kind for e in engine.registry.entries(ns)} == {"trained", "adopted"}
        assert engine.registry.entries(ns, engine.key("cousin").digest) == []

        assert engine.delete("donor")
        # The donor's folder goes, with every row of its adapter (the sibling adopted it) ...
        assert not engine.adapters.path(donor_ref).exists() and engine.registry.entries(ns) == []
        # ... and the sibling falls back to the teacher for that turn, then re-adapts alone.
        history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": SIBLING[3]}]
        reply = engine.chat("sibling", history, persona)
        assert reply.served_by == "teacher" and "fallback" in reply.soma

        talk(engine, "expiring", FAMILY[:4])
        key = engine.key("expiring")
        ref = AdapterRef.from_dict(engine.store.get(key).adapter)
        assert engine.registry.entries(ns, key.digest)
        purged = engine.store.purge_expired(now=time.time() + engine.config.session_ttl + 1)
        assert key.digest in {s.key for s in purged}
        assert not engine.adapters.path(ref).exists() and engine.registry.entries(ns, key.digest) == []


def test_public_rollback(sharing_engine: Any) -> None:
    with sharing_engine(share="none") as engine:
        talk(engine, "s", FAMILY[:4])
        assert engine.rollback("s", "test: drift") is True
        assert engine.session("s").phase is Phase.ROLLED_BACK
        assert engine.rollback("s", "again") is False  # not serving any more
        assert engine.session("s").decisions[-1]["rollback"] == "test: drift"


# -- agents on one engine ---------------------------------------------------------------------


def test_two_chat_models_share_one_surrogate_with_separate_sessions(sharing_engine: Any) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from soma_integrations.langchain import SomaChatModel

    with sharing_engine() as engine:
        planner = SomaChatModel(teacher=FakeListChatModel(responses=["plan it"]), engine=engine, agent="planner")
        writer = SomaChatModel(teacher=FakeListChatModel(responses=["write it"]), engine=engine, agent="writer")
        assert planner.invoke("Plan a trip to Lisbon.", session_id="thread-1").content == "plan it"
        assert writer.invoke("Plan a trip to Lisbon.", session_id="thread-1").content == "write it"
        assert planner.get_engine() is writer.get_engine() is engine
        assert planner.get_engine().surrogate is writer.get_engine().surrogate
        p, w = engine.session("thread-1", agent="planner"), engine.session("thread-1", agent="writer")
        assert (p.agent, w.agent) == ("planner", "writer")
        assert [t.answer for t in p.turns] == ["plan it"] and [t.answer for t in w.turns] == ["write it"]
        assert engine.key("thread-1", agent="planner").digest != engine.key("thread-1", agent="writer").digest


def test_share_min_turns_must_leave_room_before_the_window_fills() -> None:
    from pydantic import ValidationError

    from soma_engine import SomaConfig

    with pytest.raises(ValidationError, match="share_min_turns"):
        SomaConfig(share="namespace", warm_window=4, share_min_turns=4)
    assert SomaConfig(share="none", warm_window=2).share_min_turns == 2  # unused without sharing
    assert SomaConfig(share="agent", warm_window=4, share_min_turns=3).share_similarity == 0.3


def test_agents_sharing_example_runs_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import agents_sharing  # examples/ is on pytest's pythonpath

    agents_sharing.main(["--tiny", "--home", str(tmp_path)])
    out = capsys.readouterr().out
    assert "One base model for both agents: True" in out
    # The second thread's agents adopt their own role's adapter from the first thread.
    assert out.count("adapter adopted") == 2 and "surrogate" in out
