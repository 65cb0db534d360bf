"""A LlamaIndex chat engine over a small document index, served through SOMA.

The app is ordinary LlamaIndex: a ``VectorStoreIndex`` over a few training notes, a
``CondensePlusContextChatEngine`` with a ``Memory`` named after the user, answers streamed
to the screen. The only SOMA line is ``SomaLLM(teacher=...)``. The session is the memory's
``session_id``; the first turns go to the teacher, and once the session's adapter passes the
gate the local surrogate answers. The chat engine condenses every follow-up question with
the LLM's ``complete``: SOMA sends those calls to the teacher and keeps them out of the
session's records (they are not the user's turns).

With ``--agent`` a ``FunctionAgent`` with two tools runs a conversation of its own: tool
calls go through the teacher's native tool calling on teacher turns, and through the
surrogate's validated calls (or the teacher, when a call does not hold up) later on.

    python examples/llama_index_chat_engine.py            # bundled SmolLM2 surrogate (CPU, minutes)
    python examples/llama_index_chat_engine.py --tiny     # tiny random surrogate: seconds, gibberish
                                                          # answers, shows the mechanics only

Teacher: ``llama_index.llms.openai.OpenAI`` when ``OPENAI_API_KEY`` is set and
``llama-index-llms-openai`` is installed; otherwise a local scripted stand-in (no network,
no API key), which the app says on screen. Embeddings: the bundled all-MiniLM-L6-v2, offline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
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
        topic = re.sub(r"[?.!]+$", "", text)
        return ChatMessage(role="assistant", content=f"Coach says, on '{topic}': {note.split(': ', 1)[1]}")

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
            gate={"min_fidelity": 0.0, "locality_threshold": 2.0, "audit_rate": 0.0},
        )
    else:
        args["config"] = SomaConfig(warm_window=4, max_new_tokens=64, lora={"steps": 30})
    return args


def add(a: int, b: int) -> int:
    """Add two whole numbers (distances in km)."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers."""
    return a * b


def show_turn(llm: SomaLLM, session: str) -> None:
    engine = llm.get_engine()
    view = engine.session(session)
    last = view.turns[-1]
    print(f"\n      [turn {last.turn} | served by {last.served_by} | phase {view.phase.value}]")
    if engine.config.adaptation == "background":
        engine.wait_idle()  # a demo waits for the adapter; a real app keeps serving by the teacher


def chat_engine_demo(llm: SomaLLM, session: str, turns: int) -> None:
    engine = llm.get_engine()
    embed = EncoderEmbedding(engine.encoder)  # the same MiniLM the engine uses, loaded once
    index = VectorStoreIndex.from_documents([Document(text=n) for n in NOTES], embed_model=embed)
    chat_engine = CondensePlusContextChatEngine.from_defaults(
        retriever=index.as_retriever(similarity_top_k=2),
        llm=llm,
        memory=Memory.from_defaults(session_id=session, token_limit=3000),  # the session is the memory's id
        system_prompt="You are a friendly cycling coach. Answer from the notes.",
    )
    for question in (QUESTIONS * 2)[:turns]:
        print(f"\nuser> {question}")
        print("bot > ", end="", flush=True)
        for token in chat_engine.stream_chat(question).response_gen:
            print(token, end="", flush=True)
        show_turn(llm, session)
    view = engine.session(session)
    print(f"\nSession {session}: {view.phase.value}; served by turn: {', '.join(view.served_by)}")
    print(f"({len(view.turns)} turns recorded for {turns} questions: the condensing calls are not turns)")


def agent_demo(llm: SomaLLM, session: str, turns: int) -> None:
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)],
        llm=llm,
        system_prompt="You are a cycling coach who does the arithmetic with the tools.",
        timeout=None,
    )
    memory = Memory.from_defaults(session_id=session, token_limit=3000)

    async def run() -> None:
        for question in (AGENT_QUESTIONS * 3)[:turns]:
            print(f"\nuser> {question}")
            handler = agent.run(user_msg=question, memory=memory)
            async for ev in handler.stream_events():
                if isinstance(ev, ToolCallResult):
                    print(f"      tool {ev.tool_name}({ev.tool_kwargs}) -> {ev.tool_output.content}")
            out = await handler
            print(f"bot > {out.response.content}", end="")
            show_turn(llm, session)

    asyncio.run(run())
    view = llm.get_engine().session(session)
    print(f"\nAgent session {session}: {view.phase.value}; served by turn: {', '.join(view.served_by)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=len(QUESTIONS))
    parser.add_argument("--session", default="demo-user")
    parser.add_argument("--tiny", action="store_true", help="tiny random surrogate (fast, gibberish)")
    parser.add_argument("--agent", action="store_true", help="also run a FunctionAgent with two tools")
    parser.add_argument("--home", type=Path, default=None, help="where SOMA keeps its store (default: a temp dir)")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="soma-example-"))

    teacher, label = build_teacher()
    print(f"Teacher: {label}")
    llm = SomaLLM(teacher=teacher, **engine_args(args.tiny, home))  # the one SOMA line
    try:
        chat_engine_demo(llm, args.session, args.turns)
        if args.agent:
            agent_demo(llm, f"{args.session}-agent", args.turns)
    finally:
        llm.get_engine().close()


if __name__ == "__main__":
    main(sys.argv[1:])
