"""A LangGraph agent with two tools and a thread id, served through SOMA.

``create_agent`` (LangChain 1.x, on LangGraph) with a checkpointer: the thread id is the
SOMA session. Teacher turns call the teacher with the tools bound; surrogate turns give
the tool schemas to the surrogate's chat template, and a tool call that does not parse or
validate is served by the teacher instead.

    python examples/langgraph_agent.py            # bundled SmolLM2 surrogate (CPU, minutes)
    python examples/langgraph_agent.py --tiny     # tiny random surrogate: seconds, mechanics only

Teacher: ``ChatOpenAI`` when ``OPENAI_API_KEY`` is set and ``langchain-openai`` is installed;
otherwise a local scripted stand-in that calls the tools by keyword (said on screen).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from soma_engine import SomaConfig
from soma_integrations.langchain import SomaChatModel

QUESTIONS = [
    "What is 12 plus 30?",
    "Now what is 6 times 7?",
    "And 100 plus 23?",
    "What is 9 times 9?",
    "Thanks! What is 2 plus 2?",
]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class StandInToolCaller(BaseChatModel):
    """A scripted stand-in for a tool-calling LLM: 'plus' calls add, 'times' calls multiply."""

    @property
    def _llm_type(self) -> str:
        return "stand-in-tool-caller"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _answer(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(f"The answer is {last.content}.")
        text = str(last.text)
        names = {t["function"]["name"] for t in tools}
        nums = [int(n) for n in re.findall(r"\d+", text)]
        for word, name in (("plus", "add"), ("times", "multiply")):
            if word in text and name in names and len(nums) >= 2:
                call = {"name": name, "args": {"a": nums[0], "b": nums[1]}, "id": f"call_{name}_{len(messages)}"}
                return AIMessage("", tool_calls=[call])
        return AIMessage("Happy to help with any other sums.")

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, kw.get("tools") or []))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        msg = self._answer(messages, kw.get("tools") or [])
        for word in re.split(r"(\s)", str(msg.content)) if msg.content else []:
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        chunks = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type": "tool_call_chunk"}
            for i, c in enumerate(msg.tool_calls)
        ]
        yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))


def build_teacher() -> tuple[BaseChatModel, str]:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI

            model = os.environ.get("SOMA_EXAMPLE_MODEL", "gpt-4o-mini")
            return ChatOpenAI(model=model), f"ChatOpenAI({model})"
        except ImportError:
            print("OPENAI_API_KEY is set but langchain-openai is not installed.")
    return StandInToolCaller(), "local scripted stand-in (no OPENAI_API_KEY): not an LLM, calls tools by keyword"


def engine_args(tiny: bool, home: Path) -> dict[str, Any]:
    args: dict[str, Any] = {"store": f"sqlite:///{home / 'soma.db'}", "namespace": "examples", "agent": "calculator"}
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
        args["config"] = SomaConfig(warm_window=4, max_new_tokens=96, lora={"steps": 30})
    return args


def main(argv: list[str] | None = None) -> None:
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=len(QUESTIONS))
    parser.add_argument("--thread", default="demo-thread")
    parser.add_argument("--tiny", action="store_true", help="tiny random surrogate (fast, gibberish)")
    parser.add_argument("--home", type=Path, default=None, help="where SOMA keeps its store (default: a temp dir)")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="soma-example-"))

    teacher, label = build_teacher()
    print(f"Teacher: {label}")
    model = SomaChatModel(teacher=teacher, **engine_args(args.tiny, home))
    agent = create_agent(
        model=model,
        tools=[add, multiply],
        system_prompt="You are a calculator. Use the tools for arithmetic.",
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": args.thread}}
    engine = model.get_engine()
    try:
        for question in (QUESTIONS * 2)[: args.turns]:
            print(f"\nuser> {question}")
            before = len(agent.get_state(config).values.get("messages", []))
            result = agent.invoke({"messages": [("user", question)]}, config)
            for msg in result["messages"][before + 1 :]:
                if isinstance(msg, AIMessage):
                    soma = msg.response_metadata.get("soma", {})
                    side = f"[{soma.get('served_by')} | turn {soma.get('turn')} | {soma.get('phase')}]"
                    if msg.tool_calls:
                        calls = ", ".join(f"{c['name']}({c['args']})" for c in msg.tool_calls)
                        print(f"  model {side} calls {calls}")
                    else:
                        print(f"  model {side}: {msg.content}")
                elif isinstance(msg, ToolMessage):
                    print(f"  tool  {msg.name} -> {msg.content}")
            if engine.config.adaptation == "background":
                engine.wait_idle()  # a demo waits for the adapter; a real app keeps serving by the teacher
        view = engine.session(args.thread, agent="calculator")
        print(f"\nThread {args.thread}: {view.phase.value}; model calls served by: {', '.join(view.served_by)}")
    finally:
        engine.close()


if __name__ == "__main__":
    main(sys.argv[1:])
