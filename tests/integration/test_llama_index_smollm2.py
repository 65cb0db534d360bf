"""The LlamaIndex example on the bundled SmolLM2-135M-Instruct, as a new user runs it.

``examples/llama_index_chat_engine.py`` in its default (SmolLM2) mode with the offline
stand-in teacher: a ``CondensePlusContextChatEngine`` over a ``VectorStoreIndex`` (MiniLM
embeddings) and a ``FunctionAgent`` with two tools, 12 questions each. Nothing is mocked:
real engine, store, surrogate, adaptation and gate (the example's quick-adaptation settings,
see ``engine_args``). Later turns must be served by the surrogate, and every question that
needs a tool must get the right tool call, whoever makes it.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

TURNS = 12
WARM = 4  # the example's warm window on SmolLM2


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


def test_chat_engine_later_turns_are_served_locally(results: dict[str, Any]) -> None:
    rows = results["chat_engine"]["rows"]
    assert len(rows) == TURNS
    assert all(len(r["turns"]) == 1 for r in rows)  # one turn per question: condensing is not a turn
    assert all(_served(r) == ["teacher"] for r in rows[:WARM])
    assert any(d["accepted"] for d in results["chat_engine"]["gate"])
    assert _served(rows[-1]) == ["surrogate"]
    assert sum(_served(r) == ["surrogate"] for r in rows[WARM:]) >= 4


def test_agent_tool_calls_stay_correct_and_later_turns_are_local(results: dict[str, Any]) -> None:
    rows = results["agent"]["rows"]
    assert len(rows) == TURNS
    # every question needs a tool: the right one with the right numbers, surrogate or teacher
    assert all(r["tool_call_correct"] for r in rows)
    later = [t for r in rows[WARM // 2 :] for t in r["turns"]]
    assert any(t["served_by"] == "surrogate" for t in later)
