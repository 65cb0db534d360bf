"""End to end on the bundled models: SmolLM2-135M-Instruct (surrogate) and all-MiniLM-L6-v2.

A scripted persona teacher serves the warm window; adaptation runs in the background while
the teacher keeps serving; later on-topic turns are served by the adapted surrogate; an
off-topic question rolls the session back; a new engine on the same SQLite file continues
the session in the right phase with its adapter.
"""

from __future__ import annotations

import pytest

from soma_engine import Phase, SomaConfig, SomaEngine
from soma_engine.adaptation.distiller import Example, answer_nll
from soma_engine.types import Message

pytestmark = pytest.mark.slow

SYSTEM = "You are a pirate who coaches people selling their bicycles."
WARM = [
    "I want to sell my road bike for 900 dollars. How should I price the listing?",
    "A buyer offers 700 dollars for the bike. What should I reply to him?",
    "He asks whether I would include the pedals with the bike. Should I?",
    "He proposes to meet in the middle at 800 dollars for the bike. Accept?",
]
ON_TOPIC = [
    "Should I accept 780 dollars for the bike?",
    "He wants a test ride on the bike first, is that safe?",
]
OFF_TOPIC = "What is the capital of Peru and how many people live there?"
OFF_TOPIC_FOLLOW_UP = "And which language do people speak in Peru?"


def persona_teacher(messages: list[Message]) -> str:
    query = messages[-1].content.lower()
    price = "eight hundred" if "800" in query or "780" in query else "eight hundred and fifty"
    return f"Arr matey! Hold firm on yer bike, ask {price} doubloons and throw in the pedals as treasure."


def _chat(engine: SomaEngine, history: list[dict[str, str]], query: str):
    history.append({"role": "user", "content": query})
    reply = engine.chat("pirate-session", history, persona_teacher)
    history.append({"role": "assistant", "content": reply.text})
    return reply


def test_session_moves_to_the_surrogate_and_back(tmp_path):
    cfg = SomaConfig(
        warm_window=4,
        adaptation="background",
        max_new_tokens=24,
        lora={"steps": 8, "batch_size": 2, "max_seq_len": 256, "lr": 2e-3},
        mining={"steps": 4, "candidates": 2},  # the default strategy, "soma", with a short mining pass
        adaptation_budget_s=0,  # the steps above, not the CPU time budget's
        # A permissive gate (no fidelity floor, no improvement needed): this test is about the
        # session's flow; learning is checked below on held-out NLL.
        gate={"min_fidelity": 0.0, "min_improvement": None, "audit_rate": 0.0},
    )
    store = f"sqlite:///{tmp_path / 'soma.db'}"
    engine = SomaEngine(config=cfg, store=store)
    history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]

    for query in WARM:
        reply = _chat(engine, history, query)
        assert reply.served_by == "teacher"
    # The 4th teacher turn started adaptation in the background; the teacher keeps serving.
    assert engine.session("pirate-session").phase is Phase.ADAPTING
    reply = _chat(engine, history, "Thanks. Should I clean the bike before he comes?")
    assert reply.served_by == "teacher"

    assert engine.wait_idle(timeout=900)
    view = engine.session("pirate-session")
    assert view.phase is Phase.SERVING, view.decisions
    adapter_id = view.adapter_id
    assert adapter_id and view.decisions[-1]["accepted"] is True

    # The adapter learned the teacher: held-out teacher answers are likelier than under the base model.
    held_out = [
        Example([Message("system", SYSTEM), Message("user", q)], persona_teacher([Message("user", q)]))
        for q in ON_TOPIC
    ]
    ref = engine._adapter(engine.route("pirate-session", [*history, {"role": "user", "content": ON_TOPIC[0]}]))
    base_nll = answer_nll(engine.surrogate, held_out)
    adapted_nll = answer_nll(engine.surrogate, held_out, ref)
    assert sum(adapted_nll) < sum(base_nll)

    reply = _chat(engine, history, ON_TOPIC[0])
    assert reply.served_by == "surrogate", reply.soma
    assert reply.soma["adapter_id"] == adapter_id and reply.text.strip()
    engine.close()

    # A restart: a new engine on the same file continues in the right phase with its adapter.
    engine = SomaEngine(config=cfg, store=store)
    view = engine.session("pirate-session")
    assert view.phase is Phase.SERVING and view.adapter_id == adapter_id
    assert view.served_by == ["teacher"] * 5 + ["surrogate"]
    reply = _chat(engine, history, ON_TOPIC[1])
    assert reply.served_by == "surrogate" and reply.soma["adapter_id"] == adapter_id

    # An abrupt change of topic rolls the session back within two turns (drift.monitor.DriftMonitor's
    # two-turn locality rule; a very distant question rolls back at once).
    reply = _chat(engine, history, OFF_TOPIC)
    if reply.served_by == "surrogate":
        reply = _chat(engine, history, OFF_TOPIC_FOLLOW_UP)
    assert reply.served_by == "teacher"
    assert engine.session("pirate-session").phase is Phase.ROLLED_BACK
    assert engine.session("pirate-session").metrics["rollbacks"] == 1
    engine.close()
