"""A LlamaIndex chat engine over a small document index, and a tool-calling agent, served
through SOMA.

The app is ordinary LlamaIndex: a ``VectorStoreIndex`` over a few training notes (MiniLM
embeddings), a ``CondensePlusContextChatEngine`` with a ``Memory`` named after the user,
answers streamed to the screen; then a ``FunctionAgent`` with two tools (``add``,
``multiply``) in a conversation of its own. The only SOMA line is ``SomaLLM(teacher=...)``.
Each conversation is a session (the memory's ``session_id``): its first turns go to the
teacher, and once the session's adapter passes the gate the local surrogate answers. The
chat engine condenses every follow-up question with the LLM's ``complete``: SOMA sends those
calls to the teacher and keeps them out of the session's records (they are not the user's
turns). Tool calls go through the teacher's native tool calling on teacher turns, and through
the surrogate's validated calls (or the teacher, when a call does not hold up) later on.

    python examples/llama_index_chat_engine.py            # bundled SmolLM2-135M surrogate (CPU, minutes)
    python examples/llama_index_chat_engine.py --tiny     # tiny random surrogate: seconds, gibberish
                                                          # answers, shows the mechanics only

On SmolLM2 the example runs the default strategy (mining, then the hardness-weighted LoRA)
under the default CPU time budget, with inline adaptation (the turn that fills the warm window
waits for it, so the demo is deterministic; a real app keeps ``adaptation="background"`` and
keeps serving by the teacher), a warm window of 4 turns and 48 new tokens per answer. The gate
keeps its fidelity floor without the improvement rule (see ``engine_args``). At the end it
prints, per turn, who served it and how long it took, and the gate's decisions (``--json PATH``
writes them). With the offline stand-in, SmolLM2's adapters do not learn which of the two
retrieved notes the coach quotes, and the gate keeps the chat engine on the teacher; the
agent's answers after a tool call pass the gate (the base model already gives them) and
are served locally.

Teacher: ``llama_index.llms.openai.OpenAI`` when ``OPENAI_API_KEY`` is set and
``llama-index-llms-openai`` is installed; otherwise a local scripted stand-in (no network,
no API key), which the app says on screen. Embeddings: the bundled all-MiniLM-L6-v2, offline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.chat_engine import CondensePlusContextChatEngine
from llama_index.core.llms import LLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.memory import Memory
from llama_index.core.tools import FunctionTool

from soma_engine import SomaConfig
from soma_integrations.llama_index import EncoderEmbedding, SomaLLM

NOTES = [
    "Long ride: build the weekly long ride by about ten percent a week, never more than fifteen.",
    "Rest: take one easy day in three and sleep at least eight hours; fatigue hides fitness.",
    "Fuel: on rides over two hours eat every forty minutes and drink half a litre an hour.",
    "Intervals: one session a week of 4 x 4 minutes hard with 4 minutes easy raises your ceiling.",
    "Taper: in the last week halve the volume but keep two short efforts to stay sharp.",
    "Pacing: ride the first hour of a 100 km event slower than feels right; you will be faster at the end.",
]

QUESTIONS = [
    "I want to ride my first 100 km. How should I build my long ride?",
    "How often should I rest?",
    "What should I eat on the long rides?",
    "Should I do intervals as well?",
    "How do I taper in the last week?",
    "How should I pace the event itself?",
    "How much should the long ride grow each week?",
    "What if I feel tired all the time?",
    "How much should I drink on a long ride?",
    "How hard should the intervals be?",
    "Should I still ride in the taper week?",
    "What is the most common pacing mistake?",
]

AGENT_QUESTIONS = [
    "My long ride is 40 km and I add 4 km. What is 40 plus 4?",
    "I ride 3 times a week, 25 km each. What is 3 times 25?",
    "I rode 35 km on Saturday and 42 km on Sunday. What is 35 plus 42?",
    "Four weeks of 60 km: what is 4 times 60?",
    "What is 18 plus 27?",
    "What is 12 times 8?",
]


# ----------------------------------------------------------------------------- the teacher


class StandInCoach(FunctionCallingLLM):
    """A scripted coach with a fixed style, answering from the retrieved notes: a local
    stand-in for a real LLM (no network). It calls ``add``/``multiply`` when a question
    asks for a sum or product and tools are bound."""

    @classmethod
    def class_name(cls) -> str:
        return "StandInCoach"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=8192,
            num_output=256,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name="stand-in-coach",
        )

    def _answer(self, messages: Sequence[ChatMessage], tools: Sequence[Any]) -> ChatMessage:
        last = messages[-1]
        text = last.content or ""
        if last.role == MessageRole.TOOL:
            return ChatMessage(role="assistant", content=f"Coach says: that comes to {text}. Keep it steady!")
        names = {t.metadata.name for t in tools}
        nums = [int(n) for n in re.findall(r"\d+", text)]
        for word, name in (("plus", "add"), ("times", "multiply")):
            if word in text and name in names and len(nums) >= 2:
                a, b = nums[-2], nums[-1]
                call = ToolCallBlock(tool_call_id=f"call-{len(messages)}", tool_name=name, tool_kwargs={"a": a, "b": b})
                return ChatMessage(role="assistant", blocks=[call])
        context = (messages[0].content or "") if messages[0].role == MessageRole.SYSTEM else ""
        found = [(context.find(n), n) for n in NOTES if n in context]
        note = min(found)[1] if found else NOTES[0]  # the best retrieved note comes first
        return ChatMessage(role="assistant", content=f"Coach says: {note.split(': ', 1)[1]}")

    def _chunks(self, msg: ChatMessage) -> Iterator[ChatResponse]:
        text = ""
        for word in re.split(r"(\s)", msg.content or ""):
            text += word
            yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=word)
        if any(isinstance(b, ToolCallBlock) for b in msg.blocks):
            yield ChatResponse(message=msg, delta="")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=self._answer(messages, kwargs.get("tools") or []))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._chunks(self._answer(messages, kwargs.get("tools") or []))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=self._answer(messages, kwargs.get("tools") or []))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        chunks = list(self._chunks(self._answer(messages, kwargs.get("tools") or [])))

        async def gen() -> AsyncIterator[ChatResponse]:
            for chunk in chunks:
                yield chunk

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        # "Condensing": the follow-up question itself.
        found = re.findall(r"Follow Up (?:Input|Message):\s*(.*)", prompt)
        return CompletionResponse(text=found[-1].strip() if found else prompt)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self.complete(prompt).text

        def gen() -> Iterator[CompletionResponse]:
            yield CompletionResponse(text=text, delta=text)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self.complete(prompt)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        text = self.complete(prompt).text

        async def gen() -> AsyncIterator[CompletionResponse]:
            yield CompletionResponse(text=text, delta=text)

        return gen()

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: Any = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if user_msg:
            messages.append(
                user_msg if isinstance(user_msg, ChatMessage) else ChatMessage(role="user", content=user_msg)
            )
        return {"messages": messages, "tools": tools, **kwargs}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
        if not calls and error_on_no_tool_call:
            raise ValueError("no tool call in the response")
        return [
            ToolSelection(
                tool_id=c.tool_call_id or "",
                tool_name=c.tool_name,
                tool_kwargs=c.tool_kwargs if isinstance(c.tool_kwargs, dict) else {},
            )
            for c in calls
        ]


def build_teacher() -> tuple[LLM, str]:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from llama_index.llms.openai import OpenAI  # type: ignore[import-not-found]

            model = os.environ.get("SOMA_EXAMPLE_MODEL", "gpt-4o-mini")
            return OpenAI(model=model), f"OpenAI({model})"
        except ImportError:
            print("OPENAI_API_KEY is set but llama-index-llms-openai is not installed.")
    return StandInCoach(), "local scripted stand-in (no OPENAI_API_KEY): not an LLM, answers from a template"


# ----------------------------------------------------------------------------- SOMA


def engine_args(tiny: bool, home: Path) -> dict[str, Any]:
    """Store under ``home``; ``tiny``: a tiny random surrogate and a gate that always passes;
    else the bundled SmolLM2 with settings that make adaptation quick on a CPU."""
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
        # Four warm turns: the agent's adapter then has not learnt to call tools, so the tool
        # turns fall back to the teacher; with six it calls them itself, and copies numbers from
        # earlier turns (valid calls, wrong arguments) on some.
        # The offline stand-in teacher is a scripted coach (StandInCoach), not an LLM: the gate
        # keeps its fidelity floor without the improvement rule (a permissive setup).
        # Measured (12 questions each, 2-core CPU): every chat-engine adaptation (turns 4 to 12,
        # 33-51 s each) is refused, at fidelity 0.24-0.56: the coach quotes the first of the two
        # retrieved notes, and the adapters copy the other one, or an earlier answer. The
        # agent's adapter is accepted at turn 4 (fidelity 1.0, no better than the base: Δ̂ 0)
        # and serves each answer after a tool call. History-FT at 12 LoRA steps copied the wrong
        # note at turn 4 as well and the right one at turn 6 (one held-out turn per gate: a
        # coin, not a measured advantage).
        args["config"] = SomaConfig(
            warm_window=4, adaptation="inline", max_new_tokens=48, gate={"min_improvement": None}
        )
    return args


def add(a: int, b: int) -> int:
    """Add two whole numbers (distances in km)."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers."""
    return a * b


def expected_call(question: str) -> tuple[str, dict[str, int]]:
    """The tool call a question asks for: ``add`` for "plus", ``multiply`` for "times", on its
    last two numbers."""
    a, b = (int(n) for n in re.findall(r"\d+", question)[-2:])
    return ("add" if "plus" in question else "multiply"), {"a": a, "b": b}


def new_turns(llm: SomaLLM, session: str, seen: int) -> list[dict[str, Any]]:
    """The session's turns recorded since ``seen``: who served each, and why not the surrogate."""
    view = llm.get_engine().session(session)
    return [
        {
            "turn": t.turn,
            "served_by": t.served_by,
            "detail": t.served_by_detail,  # "base": the base surrogate, no adapter
            "phase": t.phase,
            "fallback": t.fallback,
        }
        for t in view.turns[seen:]
    ]


def chat_engine_demo(llm: SomaLLM, session: str, turns: int) -> list[dict[str, Any]]:
    engine = llm.get_engine()
    embed = EncoderEmbedding(engine.encoder)  # the same MiniLM the engine uses, loaded once
    index = VectorStoreIndex.from_documents([Document(text=n) for n in NOTES], embed_model=embed)
    chat_engine = CondensePlusContextChatEngine.from_defaults(
        retriever=index.as_retriever(similarity_top_k=2),
        llm=llm,
        memory=Memory.from_defaults(session_id=session, token_limit=1500),  # the session is the memory's id
        system_prompt="You are a friendly cycling coach. Answer from the notes.",
    )
    rows: list[dict[str, Any]] = []
    for question in (QUESTIONS * 2)[:turns]:
        print(f"\nuser> {question}")
        print("bot > ", end="", flush=True)
        started = time.perf_counter()
        for token in chat_engine.stream_chat(question).response_gen:
            print(token, end="", flush=True)
        row = {"question": question, "seconds": round(time.perf_counter() - started, 2), "turns": []}
        row["turns"] = new_turns(llm, session, sum(len(r["turns"]) for r in rows))
        rows.append(row)
        print(f"\n      [{describe(row)}]")
    view = engine.session(session)
    print(f"\nSession {session}: {view.phase.value}; served by turn: {', '.join(view.served_by)}")
    print(f"({len(view.turns)} turns recorded for {turns} questions: the condensing calls are not turns)")
    return rows


def agent_demo(llm: SomaLLM, session: str, turns: int) -> list[dict[str, Any]]:
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)],
        llm=llm,
        system_prompt="You are a cycling coach who does the arithmetic with the tools.",
        timeout=None,
    )
    memory = Memory.from_defaults(session_id=session, token_limit=1500)
    rows: list[dict[str, Any]] = []

    async def run() -> None:
        for question in (AGENT_QUESTIONS * 3)[:turns]:
            print(f"\nuser> {question}")
            started = time.perf_counter()
            handler = agent.run(user_msg=question, memory=memory)
            calls = []
            async for ev in handler.stream_events():
                if isinstance(ev, ToolCallResult):
                    calls.append((ev.tool_name, dict(ev.tool_kwargs)))
                    print(f"      tool {ev.tool_name}({ev.tool_kwargs}) -> {ev.tool_output.content}")
            out = await handler
            print(f"bot > {out.response.content}")
            row: dict[str, Any] = {"question": question, "seconds": round(time.perf_counter() - started, 2)}
            row["tool_calls"] = calls
            row["tool_call_correct"] = calls[:1] == [expected_call(question)]
            row["turns"] = new_turns(llm, session, sum(len(r["turns"]) for r in rows))
            rows.append(row)
            print(f"      [{describe(row)}]")

    asyncio.run(run())
    view = llm.get_engine().session(session)
    print(f"\nAgent session {session}: {view.phase.value}; served by turn: {', '.join(view.served_by)}")
    return rows


def describe(row: dict[str, Any]) -> str:
    """One question's turns (an agent's question is two: the tool call, then the answer)."""
    served = " + ".join(
        t["served_by"] + (f" ({t['detail']})" if t["detail"] else "") + (" (fallback)" if t["fallback"] else "")
        for t in row["turns"]
    )
    phase = row["turns"][-1]["phase"] if row["turns"] else "-"
    tool = f" | tool call {'ok' if row['tool_call_correct'] else 'WRONG'}" if "tool_call_correct" in row else ""
    return f"served by {served or 'nothing recorded'} | phase {phase} | {row['seconds']:.1f} s{tool}"


def gate_decisions(llm: SomaLLM, session: str) -> list[dict[str, Any]]:
    keys = ("turn", "accepted", "fidelity", "delta_hat", "n", "seconds", "reason")
    decisions = llm.get_engine().session(session).decisions
    return [{k: d.get(k) for k in keys} for d in decisions if d.get("kind", "adaptation") == "adaptation"]


def report(results: dict[str, Any]) -> None:
    for name in ("chat_engine", "agent"):
        if name not in results:
            continue
        print(f"\n== {name}: per question")
        for i, row in enumerate(results[name]["rows"], 1):
            print(f"{i:3d}. {describe(row)}")
        for d in results[name]["gate"]:
            verdict = "accepted" if d["accepted"] else "rejected"
            print(f"     gate at turn {d['turn']}: {verdict}, fidelity {d['fidelity']:.3f}, {d['seconds']} s")


def run(tiny: bool, home: Path, session: str, turns: int, agent: bool = True) -> dict[str, Any]:
    """Both conversations; returns their per-question rows and the gate's decisions."""
    teacher, label = build_teacher()
    print(f"Teacher: {label}")
    llm = SomaLLM(teacher=teacher, **engine_args(tiny, home))  # the one SOMA line
    results: dict[str, Any] = {"surrogate": "tiny" if tiny else "SmolLM2-135M-Instruct", "teacher": label}
    try:
        rows = chat_engine_demo(llm, session, turns)
        results["chat_engine"] = {"rows": rows, "gate": gate_decisions(llm, session)}
        if agent:
            rows = agent_demo(llm, f"{session}-agent", turns)
            results["agent"] = {"rows": rows, "gate": gate_decisions(llm, f"{session}-agent")}
    finally:
        llm.get_engine().close()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=len(QUESTIONS), help="questions per conversation")
    parser.add_argument("--session", default="demo-user")
    parser.add_argument("--tiny", action="store_true", help="tiny random surrogate (fast, gibberish)")
    parser.add_argument("--chat-only", action="store_true", help="skip the FunctionAgent conversation")
    parser.add_argument("--home", type=Path, default=None, help="where SOMA keeps its store (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the per-turn results here")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="soma-example-"))
    results = run(args.tiny, home, args.session, args.turns, agent=not args.chat_only)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
