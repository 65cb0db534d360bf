"""The LlamaIndex example on the bundled SmolLM2-135M-Instruct, as a new user runs it.

``examples/llama_index_chat_engine.py`` in its default (SmolLM2) mode with the offline
stand-in teacher: a ``CondensePlusContextChatEngine`` over a ``VectorStoreIndex`` (MiniLM
embeddings) and a ``FunctionAgent`` with two tools, 12 questions each. Nothing is mocked:
real engine, store, surrogate, adaptation (the default strategy under the default CPU time
budget) and gate (its fidelity floor, see ``engine_args``). Who serves each turn must follow the
gate's decisions, the agent's later turns must be served by the surrogate, and every question
that needs a tool must get the right tool call, whoever makes it.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

TURNS = 12
WARM = 4  # the example's warm window on SmolLM2
MIN_FIDELITY = 0.6  # the default gate floor the example keeps


def _served(row: dict[str, Any]) -> list[str]:
    return [t["served_by"] for t in row["turns"]]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the offline stand-in teacher
    try:
        import llama_index_chat_engine  # examples/ is on pytest's pythonpath

        return llama_index_chat_engine.run(
            tiny=False, home=tmp_path_factory.mktemp("smollm2"), session="smollm2", turns=TURNS
        )
    finally:
        monkeypatch.undo()


def _follows_the_gate(rows: list[dict[str, Any]], gate: list[dict[str, Any]]) -> None:
    """Warm turns by the teacher; a turn by the surrogate only while the latest decision before
    it accepted, and every turn after a refusal by the teacher until a later decision accepts."""
    turns = [t for r in rows for t in r["turns"]]
    assert gate and gate[0]["turn"] == turns[WARM - 1]["turn"]  # adapted when the warm window filled
    for d in gate:  # the example's gate keeps the fidelity floor (min_improvement None)
        assert d["n"] >= 1 and d["reason"], d
        if d["fidelity"] < MIN_FIDELITY:
            assert not d["accepted"] and "min_fidelity" in d["reason"], d
    for t in turns:
        before = [d for d in gate if d["turn"] < t["turn"]]
        if not before:
            assert t["served_by"] == "teacher" and t["phase"] == "warm"
        elif not before[-1]["accepted"]:
            assert t["served_by"] == "teacher" and not t["fallback"], t
        if t["served_by"] == "surrogate":
            assert before and before[-1]["accepted"], t


def test_chat_engine_turns_follow_the_gate(results: dict[str, Any]) -> None:
    rows = results["chat_engine"]["rows"]
    assert len(rows) == TURNS
    assert all(len(r["turns"]) == 1 for r in rows)  # one turn per question: condensing is not a turn
    _follows_the_gate(rows, results["chat_engine"]["gate"])


def test_agent_tool_calls_stay_correct_and_later_turns_are_local(results: dict[str, Any]) -> None:
    rows = results["agent"]["rows"]
    assert len(rows) == TURNS
    # every question needs a tool: the right one with the right numbers, surrogate or teacher
    assert all(r["tool_call_correct"] for r in rows)
    _follows_the_gate(rows, results["agent"]["gate"])
    later = [t for r in rows[WARM // 2 :] for t in r["turns"]]
    assert any(t["served_by"] == "surrogate" for t in later)
