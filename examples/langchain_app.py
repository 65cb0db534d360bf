"""A multi-turn LangChain chat app with message history, served through SOMA.

The app is ordinary LangChain: a chat model called with the conversation so far, streamed
to the screen. The only SOMA line is ``SomaChatModel(teacher=...)``; the session is named
by ``session_id=`` (``configurable.session_id`` as ``RunnableWithMessageHistory`` passes it,
and LangGraph's ``thread_id``, work too: see the tests and ``langgraph_agent.py``). The
first turns of the session go to the teacher; once the session's adapter passes the gate,
the local surrogate answers, and ``response_metadata["soma"]`` says who served each turn.

    python examples/langchain_app.py              # bundled SmolLM2 surrogate (CPU, minutes)
    python examples/langchain_app.py --tiny       # tiny random surrogate: seconds, gibberish
                                                  # answers, shows the mechanics only

Teacher: ``ChatOpenAI`` when ``OPENAI_API_KEY`` is set and ``langchain-openai`` is installed;
otherwise a local scripted stand-in (no network, no API key), which the app says on screen.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from soma_engine import SomaConfig
from soma_integrations.langchain import SomaChatModel

QUESTIONS = [
    "I want to ride my first 100 km. How should I train?",
    "How long should my first training rides be?",
    "How much should I add to my long ride each week?",
    "How many training rides a week do I need?",
    "How long should my longest training ride be before the 100 km?",
    "Should my weekday training rides be short and fast?",
    "How should I train in the last week before the 100 km ride?",
    "How do I know my training is working?",
]


class StandInCoach(BaseChatModel):
    """A scripted cycling coach with a fixed style: a local stand-in for a real LLM."""

    @property
    def _llm_type(self) -> str:
        return "stand-in-coach"

    def _answer(self, messages: list[BaseMessage]) -> str:
        question = str(messages[-1].text).rstrip("?")
        topic = re.sub(r"^(how|what|should|i want to)\s+", "", question, flags=re.I)
        return f"Coach says: for '{topic}', go steady, build 10% a week, and rest one day in three."

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._answer(messages)))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        for word in re.split(r"(\s)", self._answer(messages)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))


def build_teacher() -> tuple[BaseChatModel, str]:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            model = os.environ.get("SOMA_EXAMPLE_MODEL", "gpt-4o-mini")
            return ChatOpenAI(model=model), f"ChatOpenAI({model})"
        except ImportError:
            print("OPENAI_API_KEY is set but langchain-openai is not installed.")
    return StandInCoach(), "local scripted stand-in (no OPENAI_API_KEY): not an LLM, answers from a template"


def engine_args(tiny: bool, home: Path) -> dict[str, Any]:
    """Store under ``home``; ``tiny``: a tiny random surrogate and a gate that always passes."""
    args: dict[str, Any] = {"store": f"sqlite:///{home / 'soma.db'}", "namespace": "examples"}
    if tiny:
        from soma_engine.testing import save_tiny_model

        args["surrogate"] = str(save_tiny_model(home / "tiny-surrogate", visible_only=True))
        args["config"] = SomaConfig(
            warm_window=4,
            adaptation="inline",
            max_new_tokens=16,
            lora={"steps": 10, "lr": 5e-3},
            gate={"min_fidelity": 0.0, "min_improvement": None, "locality_threshold": 2.0, "audit_rate": 0.0},
        )
    else:
        args["config"] = SomaConfig(warm_window=4, max_new_tokens=64, lora={"steps": 30})
    return args


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=len(QUESTIONS))
    parser.add_argument("--session", default="demo-user")
    parser.add_argument("--tiny", action="store_true", help="tiny random surrogate (fast, gibberish)")
    parser.add_argument("--home", type=Path, default=None, help="where SOMA keeps its store (default: a temp dir)")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="soma-example-"))

    teacher, label = build_teacher()
    print(f"Teacher: {label}")
    model = SomaChatModel(teacher=teacher, **engine_args(args.tiny, home))  # the one SOMA line

    history: list[BaseMessage] = [SystemMessage("You are a friendly cycling coach.")]
    engine = model.get_engine()
    try:
        for question in (QUESTIONS * 2)[: args.turns]:
            print(f"\nuser> {question}")
            history.append(HumanMessage(question))
            final: AIMessageChunk | None = None
            print("bot > ", end="", flush=True)
            for chunk in model.stream(history, session_id=args.session):
                print(chunk.content, end="", flush=True)
                final = chunk if final is None else final + chunk
            assert final is not None
            history.append(AIMessage(content=final.content, response_metadata=final.response_metadata))
            soma = final.response_metadata["soma"]
            print(f"\n      [turn {soma.get('turn')} | served by {soma.get('served_by')} | phase {soma.get('phase')}]")
            if engine.config.adaptation == "background":
                engine.wait_idle()  # a demo waits for the adapter; a real app keeps serving by the teacher
        view = engine.session(args.session)
        print(f"\nSession {args.session}: {view.phase.value}; served by turn: {', '.join(view.served_by)}")
    finally:
        engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
