"""Two LangGraph agents on one SOMA engine, sharing adapters inside the namespace.

A planner and a writer (two ``SomaChatModel`` with different ``agent`` names on one
``SomaEngine``: one base model in memory, separate sessions) handle a stream of requests; the
LangGraph thread id is the session. ``share="namespace"``: once the first thread's agents have
adapted, the agents of a second, similar thread look for a shared adapter after two teacher
turns and adopt it early if the acceptance gate passes on their own turns.

    python examples/agents_sharing.py --tiny    # tiny random surrogate: seconds, mechanics only
    python examples/agents_sharing.py           # bundled SmolLM2 surrogate (CPU, minutes)

Teacher: ``ChatOpenAI`` when ``OPENAI_API_KEY`` is set and ``langchain-openai`` is installed;
otherwise a local scripted stand-in per agent (said on screen).
"""

from __future__ import annotations

import argparse
import operator
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from soma_engine import SomaConfig, SomaEngine
from soma_integrations.langchain import SomaChatModel

THREADS = {
    "lisbon-1": [
        "Plan a three day trip to Lisbon in May.",
        "Add a day trip to Sintra to the Lisbon plan.",
        "Where should we eat near the river in Lisbon?",
        "Which Lisbon museums fit a rainy afternoon?",
        "Add a fado evening to the Lisbon trip.",
    ],
    "lisbon-2": [
        "Plan a long weekend in Lisbon for two.",
        "Add the castle and the tram ride to the Lisbon weekend.",
        "Where should we have pastries in Lisbon?",
        "Which Lisbon viewpoint is best at sunset?",
    ],
}
PLANNER = "You are a travel planner. Answer with a short numbered plan."
WRITER = "You are a travel writer. Turn the plan into two friendly sentences."


class StandInTeacher(BaseChatModel):
    """A scripted stand-in for an LLM with a fixed style per role (not an LLM)."""

    role: str = "planner"

    @property
    def _llm_type(self) -> str:
        return "stand-in-teacher"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        query = str(messages[-1].content)
        topic = max(query.strip("?.!").split(), key=len)
        text = (
            f"1. Book {topic}. 2. Walk the old town. 3. Keep an evening free."
            if self.role == "planner"
            else f"Your {topic} days will be easy and bright. Enjoy every tram ride and pastry!"
        )
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def build_teachers() -> tuple[BaseChatModel, BaseChatModel, str]:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            model = os.environ.get("SOMA_EXAMPLE_MODEL", "gpt-4o-mini")
            return ChatOpenAI(model=model), ChatOpenAI(model=model), f"ChatOpenAI({model})"
        except ImportError:
            print("OPENAI_API_KEY is set but langchain-openai is not installed.")
    label = "local scripted stand-ins (no OPENAI_API_KEY): not LLMs, a fixed style per agent"
    return StandInTeacher(role="planner"), StandInTeacher(role="writer"), label


def build_engine(tiny: bool, home: Path) -> SomaEngine:
    store = f"sqlite:///{home / 'soma.db'}"
    if tiny:
        from soma_engine.testing import save_tiny_model

        config = SomaConfig(
            warm_window=4,
            adaptation="inline",
            share="namespace",
            max_new_tokens=16,
            lora={"steps": 10, "lr": 5e-3},
            gate={"min_fidelity": 0.0, "min_improvement": None, "locality_threshold": 2.0, "audit_rate": 0.0},
        )
        surrogate = str(save_tiny_model(home / "tiny-surrogate", visible_only=True))
        return SomaEngine(config=config, surrogate=surrogate, store=store, namespace="examples")
    config = SomaConfig(warm_window=4, share="namespace", max_new_tokens=64, lora={"steps": 30})
    return SomaEngine(config=config, store=store, namespace="examples")


class State(TypedDict):
    request: str
    planner_messages: Annotated[list[AnyMessage], operator.add]
    writer_messages: Annotated[list[AnyMessage], operator.add]


def build_graph(planner: SomaChatModel, writer: SomaChatModel) -> Any:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    def plan(state: State) -> dict[str, Any]:
        history = state.get("planner_messages") or [SystemMessage(PLANNER)]
        ask = HumanMessage(state["request"])
        reply = planner.invoke([*history, ask])
        return {"planner_messages": ([] if state.get("planner_messages") else history[:1]) + [ask, reply]}

    def write(state: State) -> dict[str, Any]:
        history = state.get("writer_messages") or [SystemMessage(WRITER)]
        plan_text = state["planner_messages"][-1].content
        ask = HumanMessage(f"Write up this plan for the traveller: {plan_text}")
        reply = writer.invoke([*history, ask])
        return {"writer_messages": ([] if state.get("writer_messages") else history[:1]) + [ask, reply]}

    graph = StateGraph(State)
    graph.add_node("planner", plan)
    graph.add_node("writer", write)
    graph.add_edge(START, "planner")
    graph.add_edge("planner", "writer")
    graph.add_edge("writer", END)
    return graph.compile(checkpointer=InMemorySaver())


def describe(msg: AIMessage) -> str:
    soma = msg.response_metadata.get("soma", {})
    line = f"[{soma.get('agent')}: {soma.get('served_by')} | turn {soma.get('turn')} | {soma.get('phase')}]"
    adoption = soma.get("adoption")
    if adoption and adoption.get("turn") == soma.get("turn"):
        verdict = "adopted" if adoption["adopted"] else "refused"
        line += (
            f" shared adapter {adoption['donor_adapter'][:8]} {verdict} (similarity {adoption['similarity']}, "
            f"fidelity on own turns {adoption['fidelity']})"
        )
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random surrogate (fast, gibberish)")
    parser.add_argument("--home", type=Path, default=None, help="where SOMA keeps its store (default: a temp dir)")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="soma-example-"))

    planner_teacher, writer_teacher, label = build_teachers()
    print(f"Teacher: {label}")
    engine = build_engine(args.tiny, home)
    planner = SomaChatModel(teacher=planner_teacher, engine=engine, agent="planner")
    writer = SomaChatModel(teacher=writer_teacher, engine=engine, agent="writer")
    app = build_graph(planner, writer)
    try:
        for thread, requests in THREADS.items():
            print(f"\n=== thread {thread}")
            config = {"configurable": {"thread_id": thread}}
            for request in requests:
                print(f"user> {request}")
                state = app.invoke({"request": request}, config)
                for key in ("planner_messages", "writer_messages"):
                    msg = state[key][-1]
                    print(f"  {describe(msg)}: {str(msg.content)[:70]!r}")
                if engine.config.adaptation == "background":
                    engine.wait_idle()  # a demo waits; a real app keeps serving by the teacher
        print(f"\nOne base model for both agents: {planner.get_engine().surrogate is writer.get_engine().surrogate}")
        for thread in THREADS:
            for agent in ("planner", "writer"):
                view = engine.session(thread, agent=agent)
                kinds = " <- ".join(f"{x['kind']} {x['adapter_id'][:8]}" for x in view.metrics["lineage"]) or "-"
                print(
                    f"{thread} {agent:8s} {view.phase.value:8s} served by {', '.join(view.served_by)}; adapter {kinds}"
                )
    finally:
        engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
