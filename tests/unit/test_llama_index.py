"""SomaLLM (LlamaIndex) end to end on a tiny surrogate and a real engine.

One engine per module (tiny random surrogate that always answers visible text, the bundled
MiniLM encoder shared with the run, SQLite under tmp): with ``warm_window=4``, inline
adaptation and an always-passing gate, a session switches to the surrogate deterministically
after its fourth teacher turn; rollbacks are triggered explicitly (``engine.rollback``).
The LlamaIndex components are real (chat engines, a ``VectorStoreIndex`` over a local
embedding, ``Memory``, ``FunctionAgent``, ``ReActAgent``, instrumentation); the teacher is a
scripted ``FunctionCallingLLM``. Surrogate answers that must have a given shape (tool calls,
ReAct steps) are scripted by patching the surrogate runtime's generation methods; the
others come from the real (tiny) model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.react import ReActOutputParser
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.chat_engine import (
    CondensePlusContextChatEngine,
    CondenseQuestionChatEngine,
    ContextChatEngine,
    SimpleChatEngine,
)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.mock import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from soma_engine import SomaEngine
from soma_engine.runtime.surrogate import Generation
from soma_engine.testing import save_tiny_model
from soma_integrations.llama_index import EncoderEmbedding, SomaLLM, to_soma_messages

WARM = 4
SYSTEM = "You are a cycling coach."


# ----------------------------------------------------------------------------- the teacher


class TeacherDown(RuntimeError):
    """The teacher's own error type (stands for openai.RateLimitError and the like)."""


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def default_reply(messages: Sequence[ChatMessage], tools: Sequence[Any]) -> ChatMessage:
    """Deterministic: calls a bound tool when asked to, answers tool results, speaks ReAct
    to a ReAct prompt, else answers the last user message."""
    last = messages[-1]
    text = last.content or ""
    react = "Action Input" in (messages[0].content or "")
    if react:
        if text.startswith("Observation:"):
            return _assistant(
                f"Thought: I can answer without using any more tools.\nAnswer: It is {_numbers(text)[-1]}."
            )
        nums = _numbers(text)
        for word, name in (("plus", "add"), ("times", "multiply")):
            if word in text and len(nums) >= 2:
                args = json.dumps({"a": nums[0], "b": nums[1]})
                return _assistant(f"Thought: I need to use a tool.\nAction: {name}\nAction Input: {args}")
        return _assistant(f"Thought: I can answer without using any tools.\nAnswer: Teacher answer to: {text}")
    if last.role == MessageRole.TOOL:
        return _assistant(f"The result is {text}.")
    if "<Follow Up Message>" in text:  # CondenseQuestionChatEngine's condensing prompt
        return _assistant(text.split("<Follow Up Message>")[1].split("<Standalone question>")[0].strip())
    names = [t.metadata.name for t in tools]
    nums = _numbers(text)
    for word, name in (("plus", "add"), ("times", "multiply")):
        if word in text and name in names and len(nums) >= 2:
            call = ToolCallBlock(
                tool_call_id=f"t-{name}-{len(messages)}", tool_name=name, tool_kwargs={"a": nums[0], "b": nums[1]}
            )
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
    return _assistant(f"Teacher answer to: {text}")


def _assistant(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=text)


class ScriptedTeacher(FunctionCallingLLM):
    """A function-calling chat LLM with native sync/async streaming, usage reporting and
    its own errors; ``calls`` logs every call (``how``, messages, kwargs)."""

    calls: list[dict[str, Any]] = Field(default_factory=list, exclude=True)
    error: Any = Field(default=None, exclude=True)
    report_usage: bool = True
    context_window: int = 4096
    model: str = "scripted-teacher-1"

    @classmethod
    def class_name(cls) -> str:
        return "ScriptedTeacher"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=128,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=self.model,
        )

    def _answer(self, how: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatMessage:
        self.calls.append({"how": how, "messages": list(messages), "kwargs": kwargs})
        if self.error is not None:
            raise self.error
        return default_reply(messages, kwargs.get("tools") or [])

    def _extra(self) -> dict[str, Any]:
        return {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18} if self.report_usage else {}

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        msg = self._answer("chat", messages, kwargs)
        return ChatResponse(message=msg, raw={"model": self.model}, additional_kwargs=self._extra())

    def _chunks(self, msg: ChatMessage) -> Iterator[ChatResponse]:
        words = re.split(r"(\s)", msg.content or "") if msg.content else []
        text = ""
        for w in words:
            text += w
            yield ChatResponse(message=_assistant(text), delta=w, raw={"model": self.model})
        calls = [b for b in msg.blocks if isinstance(b, ToolCallBlock)]
        if calls:  # tool calls stream as JSON strings, complete in the last chunk
            blocks = [*([TextBlock(text=text)] if text else []), *calls]
            partial = ToolCallBlock(
                tool_call_id=calls[0].tool_call_id, tool_name=calls[0].tool_name, tool_kwargs='{"a": '
            )
            yield ChatResponse(message=ChatMessage(role="assistant", blocks=[partial]), delta="")
            yield ChatResponse(
                message=ChatMessage(role="assistant", blocks=blocks), delta="", additional_kwargs=self._extra()
            )
        elif words:
            yield ChatResponse(message=_assistant(text), delta="", additional_kwargs=self._extra())

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        msg = self._answer("stream_chat", messages, kwargs)
        return self._chunks(msg)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        await asyncio.sleep(0)
        msg = self._answer("achat", messages, kwargs)
        return ChatResponse(message=msg, raw={"model": self.model}, additional_kwargs=self._extra())

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        msg = self._answer("astream_chat", messages, kwargs)

        async def gen() -> AsyncIterator[ChatResponse]:
            for chunk in self._chunks(msg):
                await asyncio.sleep(0)
                yield chunk

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.calls.append({"how": "complete", "prompt": prompt, "kwargs": kwargs})
        if self.error is not None:
            raise self.error
        return CompletionResponse(text=_condensed(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self.complete(prompt, formatted=formatted, **kwargs).text

        def gen() -> Iterator[CompletionResponse]:
            yield CompletionResponse(text=text, delta=text)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self.complete(prompt, formatted=formatted, **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        text = self.complete(prompt, formatted=formatted, **kwargs).text

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
        return {"messages": messages, "tools": tools, "tool_required": tool_required, **kwargs}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
        if not calls and error_on_no_tool_call:
            raise ValueError("no tool call")
        out = []
        for c in calls:
            args = c.tool_kwargs if isinstance(c.tool_kwargs, dict) else {}  # partial JSON while streaming
            out.append(ToolSelection(tool_id=c.tool_call_id or "", tool_name=c.tool_name, tool_kwargs=args))
        return out


def _condensed(prompt: str) -> str:
    """The scripted condensing: the follow-up question is the prompt's last non-empty line."""
    found = re.findall(r"Follow Up (?:Input|Message):\s*(.*)", prompt)
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    return found[-1].strip() if found else (lines[-1] if lines else "")


# ----------------------------------------------------------------------------- fixtures

SERVING = "li-serving"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-li") / "model", visible_only=True)


@pytest.fixture(scope="module")
def engine(
    tiny: Path, shared_encoder: Any, permissive_config: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SomaEngine]:
    """The module's engine; its one shared adapted session (``SERVING``) is warmed up first."""
    root = tmp_path_factory.mktemp("soma-li")
    eng = SomaEngine(
        config=permissive_config(),
        surrogate=str(tiny),
        encoder=shared_encoder,
        store=f"sqlite:///{root}/soma.db",
        namespace="li",
    )
    # The locality gate (tested with the gate) would roll back the off-topic turns these tests
    # send on purpose; rollbacks are triggered explicitly instead.
    eng._locality = lambda state, messages, previous=None: None  # type: ignore[method-assign]
    llm = SomaLLM(teacher=ScriptedTeacher(), engine=eng, session_id=SERVING)
    history = [ChatMessage(role="system", content=SYSTEM)]
    for i in range(WARM):
        history.append(ChatMessage(role="user", content=f"Question {i} about training?"))
        history.append(llm.chat(history).message)
    assert eng.session(SERVING).phase.value == "serving"
    yield eng
    eng.close()


@pytest.fixture
def teacher() -> ScriptedTeacher:
    return ScriptedTeacher()


@pytest.fixture(scope="module")
def index(engine: SomaEngine) -> VectorStoreIndex:
    docs = [
        Document(text="Long rides: build the weekly long ride by about ten percent a week."),
        Document(text="Rest: take one easy day in three and sleep eight hours."),
        Document(text="Fuel: eat every forty minutes on rides longer than two hours."),
        Document(text="Bike fit: saddle height so the knee is slightly bent at the bottom."),
    ]
    return VectorStoreIndex.from_documents(docs, embed_model=EncoderEmbedding(engine.encoder))


def served(resp: Any) -> str:
    return resp.additional_kwargs["soma"]["served_by"]


def history_of(engine: SomaEngine, session: str) -> list[str]:
    return engine.session(session).served_by


class ScriptSurrogate:
    """Patch the surrogate runtime so it answers the given texts in turn (the last one
    repeats; an exception is raised), recording what it was given."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, engine: SomaEngine, *answers: str | BaseException) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []
        rt = engine.surrogate
        monkeypatch.setattr(rt, "generate", self._generate)
        monkeypatch.setattr(rt, "agenerate", self._agenerate)
        monkeypatch.setattr(rt, "stream", self._stream)
        monkeypatch.setattr(rt, "astream", self._astream)

    def _gen(self, messages: Any, kw: dict[str, Any]) -> Generation:
        self.seen.append({"messages": messages, **kw})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return Generation(answer, 10, max(1, len(answer) // 4), "stop")

    def _generate(self, messages: Any, adapter: Any = None, **kw: Any) -> Generation:
        return self._gen(messages, kw)

    async def _agenerate(self, messages: Any, adapter: Any = None, **kw: Any) -> Generation:
        return self._gen(messages, kw)

    def _stream(self, messages: Any, adapter: Any = None, **kw: Any) -> Iterator[Any]:
        gen = self._gen(messages, kw)
        yield from re.split(r"(\s)", gen.text)
        yield gen

    async def _astream(self, messages: Any, adapter: Any = None, **kw: Any) -> AsyncIterator[Any]:
        gen = self._gen(messages, kw)
        for piece in re.split(r"(\s)", gen.text):
            yield piece
        yield gen


def ask(text: str, history: list[ChatMessage] | None = None) -> list[ChatMessage]:
    base = history if history is not None else [ChatMessage(role="system", content=SYSTEM)]
    return [*base, ChatMessage(role="user", content=text)]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


TOOLS = [FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)]


# ----------------------------------------------------------------------------- construction, metadata


def test_construction_is_lazy_and_metadata_follows_teacher(tmp_path: Path) -> None:
    teacher = ScriptedTeacher(context_window=1234)
    llm = SomaLLM(teacher=teacher, surrogate=str(tmp_path / "never-loaded"), store=f"sqlite:///{tmp_path}/a.db")
    assert llm._engine is None  # nothing built, nothing loaded
    assert llm.metadata == teacher.metadata
    assert llm.metadata.context_window == 1234 and llm.metadata.is_function_calling_model
    assert llm.metadata.model_name == "scripted-teacher-1"
    plain = SomaLLM(teacher=MockLLM(max_tokens=5))
    assert not plain.metadata.is_chat_model and not plain.metadata.is_function_calling_model
    assert SomaLLM(teacher=teacher, config={"warm_window": 3}).config.warm_window == 3
    with pytest.raises((TypeError, ValueError)):
        SomaLLM(teacher=teacher, engine="not an engine")
    payload = llm.to_payload()
    assert payload["class_name"] == "SomaLLM" and payload["teacher_class"] == "ScriptedTeacher"


def test_engines_built_from_arguments_are_shared(tmp_path: Path) -> None:
    kw = {"surrogate": str(tmp_path / "never-loaded"), "store": f"sqlite:///{tmp_path}/s.db", "namespace": "share"}
    a, b = SomaLLM(teacher=ScriptedTeacher(), **kw), SomaLLM(teacher=ScriptedTeacher(), **kw)
    try:
        assert a.get_engine() is b.get_engine() and a.get_engine().namespace == "share"
    finally:
        a.get_engine().close()


def test_message_conversion() -> None:
    msgs = [
        ChatMessage(role="system", content="sys"),
        ChatMessage(role="user", blocks=[TextBlock(text="look"), ImageBlock(url="http://x/y.png")]),
        ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="hmm"),
                TextBlock(text="ok"),
                ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs='{"a": 1, "b": 2}'),
            ],
        ),
        ChatMessage(role="tool", content="3", additional_kwargs={"tool_call_id": "c1", "name": "add"}),
        ChatMessage(
            role="chatbot",
            content="legacy",
            additional_kwargs={"tool_calls": [{"id": "c2", "function": {"name": "multiply", "arguments": '{"a": 2}'}}]},
        ),
        ChatMessage(role="user", content="next"),
    ]
    out = to_soma_messages(msgs)
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[1]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image"},
    ]  # the engine sends it to the teacher
    assert out[2] == {
        "role": "assistant",
        "content": "ok",
        "tool_calls": [{"id": "c1", "name": "add", "args": {"a": 1, "b": 2}}],
    }
    assert out[3] == {"role": "tool", "content": "3", "tool_call_id": "c1", "name": "add"}
    assert out[4]["role"] == "assistant" and out[4]["tool_calls"] == [
        {"id": "c2", "name": "multiply", "args": {"a": 2}}
    ]


def test_tool_calls_from_response_tolerate_partial_json(engine: SomaEngine) -> None:
    llm = SomaLLM(teacher=MockLLM(), engine=engine)  # not function calling: our own reader
    partial = ChatResponse(
        message=ChatMessage(
            role="assistant", blocks=[ToolCallBlock(tool_call_id="c", tool_name="add", tool_kwargs='{"a": 1, "b"')]
        )
    )
    assert llm.get_tool_calls_from_response(partial)[0].tool_kwargs == {"a": 1}
    garbage = ChatResponse(
        message=ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="add", tool_kwargs="{]")])
    )
    assert llm.get_tool_calls_from_response(garbage)[0].tool_kwargs == {}
    none = ChatResponse(message=_assistant("no call"))
    assert llm.get_tool_calls_from_response(none, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        llm.get_tool_calls_from_response(none)


# ----------------------------------------------------------------------------- direct calls


def test_direct_calls_across_the_switch_sync_async_stream(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)
    history = [ChatMessage(role="system", content="You are a travel agent.")]

    def turn(how: str, text: str) -> ChatResponse:
        msgs = ask(text, history)
        if how == "chat":
            out = llm.chat(msgs, session_id="direct-1")
        elif how == "achat":
            out = asyncio.run(llm.achat(msgs, session_id="direct-1"))
        elif how == "stream":
            chunks = list(llm.stream_chat(msgs, session_id="direct-1"))
            _check_cumulative(chunks)
            out = chunks[-1]
        else:

            async def collect() -> list[ChatResponse]:
                return [c async for c in await llm.astream_chat(msgs, session_id="direct-1")]

            chunks = asyncio.run(collect())
            _check_cumulative(chunks)
            out = chunks[-1]
        history.extend([msgs[-1], out.message])
        return out

    modes = ["chat", "stream", "achat", "astream"]
    outs = [turn(how, f"Day {i} in Lisbon?") for i, how in enumerate(modes * 2)]
    assert [served(o) for o in outs] == ["teacher"] * WARM + ["surrogate"] * WARM
    for o in outs:
        soma = o.additional_kwargs["soma"]
        assert soma["session_id"] == "direct-1" and soma["namespace"] == "li"
        assert (
            o.additional_kwargs["total_tokens"]
            == o.additional_kwargs["prompt_tokens"] + o.additional_kwargs["completion_tokens"]
            > 0
        )
    assert outs[0].message.content == "Teacher answer to: Day 0 in Lisbon?"
    assert outs[0].additional_kwargs["prompt_tokens"] == 11  # the teacher's reported counts
    assert [o.additional_kwargs["soma"]["turn"] for o in outs] == list(range(1, 9))
    last = outs[-1]
    assert last.additional_kwargs["soma"]["phase"] == "serving" and last.additional_kwargs["soma"]["adapter_id"]
    assert last.message.content and last.raw["model"] == "model"  # the (tiny) surrogate's own text
    assert [c["how"] for c in teacher.calls] == ["chat", "stream_chat", "achat", "astream_chat"]

    assert engine.rollback("direct-1", "test: drift")
    for how in ("chat", "stream"):
        out = turn(how, "And now?")
        assert served(out) == "teacher" and out.additional_kwargs["soma"]["phase"] == "rolled_back"
        assert out.message.content == "Teacher answer to: And now?"
    assert history_of(engine, "direct-1") == ["teacher"] * 4 + ["surrogate"] * 4 + ["teacher"] * 2


def _check_cumulative(chunks: list[ChatResponse]) -> None:
    """Streamed responses: cumulative ``message.content``, deltas that add up to it, the
    full ``soma`` metadata on the last one."""
    text = ""
    for c in chunks:
        text += c.delta or ""
        assert (c.message.content or "") == text
        assert "soma" in c.additional_kwargs
    assert text and "partial" not in chunks[-1].additional_kwargs["soma"]
    assert chunks[-1].additional_kwargs["soma"]["turn"] >= 1


def test_teacher_usage_is_estimated_when_not_reported(engine: SomaEngine) -> None:
    llm = SomaLLM(teacher=ScriptedTeacher(report_usage=False), engine=engine)
    out = llm.chat(ask("How far today?"), session_id="estimate-1")
    assert out.additional_kwargs["completion_tokens"] > 0 and out.additional_kwargs["prompt_tokens"] > 0
    chunks = list(llm.stream_chat(ask("How far today?"), session_id="estimate-2"))
    assert chunks[-1].additional_kwargs["completion_tokens"] > 0


def test_completions_go_to_the_teacher_untracked(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine, session_id=SERVING)
    before = len(engine.session(SERVING).turns)
    out = llm.complete("Follow Up Input: how far?")
    assert out.text == "how far?" and out.additional_kwargs["soma"] == {
        "served_by": "teacher",
        "tracked": False,
        "reason": out.additional_kwargs["soma"]["reason"],
    }
    assert [r.text for r in llm.stream_complete("x\nFollow Up Input: a")] == ["a"]
    assert asyncio.run(llm.acomplete("b")).text == "b"

    async def astream() -> list[str]:
        return [r.delta async for r in await llm.astream_complete("c", session_id="ignored")]

    assert asyncio.run(astream()) == ["c"]
    assert [c["how"] for c in teacher.calls] == ["complete"] * 4
    assert len(engine.session(SERVING).turns) == before  # nothing recorded
    assert "session_id" not in teacher.calls[-1]["kwargs"]


# ----------------------------------------------------------------------------- chat engines


def _drive(chat_engine: Any, questions: list[str]) -> list[str]:
    """One question per mode in turn: chat, stream_chat, achat, astream_chat."""
    answers = []
    for i, q in enumerate(questions):
        how = ("chat", "stream", "achat", "astream")[i % 4]
        if how == "chat":
            answers.append(str(chat_engine.chat(q)))
        elif how == "stream":
            r = chat_engine.stream_chat(q)
            answers.append("".join(r.response_gen))
        elif how == "achat":
            answers.append(str(asyncio.run(chat_engine.achat(q))))
        else:

            async def collect(q: str = q) -> str:
                r = await chat_engine.astream_chat(q)
                return "".join([t async for t in r.async_response_gen()])

            answers.append(asyncio.run(collect()))
    return answers


def _switch_and_rollback(engine: SomaEngine, chat_engine: Any, session: str, topic: str) -> list[str]:
    questions = [f"Week {i}: how should I train for {topic}?" for i in range(2 * WARM)]
    answers = _drive(chat_engine, questions)
    assert history_of(engine, session) == ["teacher"] * WARM + ["surrogate"] * WARM
    assert all(a.strip() for a in answers)
    assert answers[0] == f"Teacher answer to: {questions[0]}"
    assert not any(a.startswith("Teacher answer") for a in answers[WARM:])
    assert engine.rollback(session, "test: drift")
    after = _drive(chat_engine, ["And after the rollback?", "And streamed?"])
    assert after == ["Teacher answer to: And after the rollback?", "Teacher answer to: And streamed?"]
    view = engine.session(session)
    assert view.served_by[-2:] == ["teacher", "teacher"] and view.phase.value == "rolled_back"
    return answers


def test_simple_chat_engine_switches_and_rolls_back(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    memory = Memory.from_defaults(session_id="simple-1", token_limit=3000)
    chat_engine = SimpleChatEngine.from_defaults(
        llm=SomaLLM(teacher=teacher, engine=engine), memory=memory, system_prompt=SYSTEM
    )
    _switch_and_rollback(engine, chat_engine, "simple-1", "a century ride")
    # the memory holds the whole conversation, surrogate answers included
    assert len(memory.get_all()) == 2 * (2 * WARM + 2)


def test_context_chat_engine_over_an_index(
    engine: SomaEngine, teacher: ScriptedTeacher, index: VectorStoreIndex
) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)
    chat_engine = ContextChatEngine.from_defaults(
        retriever=index.as_retriever(similarity_top_k=2), llm=llm, system_prompt=SYSTEM
    )
    session = chat_engine._memory.session_id  # the chat engine's default Memory: one session per chat engine
    _switch_and_rollback(engine, chat_engine, session, "long rides")
    first = teacher.calls[0]["messages"]
    assert "ten percent" in first[0].content  # retrieved context reached the teacher
    assert chat_engine.chat("Fuel?").source_nodes  # retrieval works on every turn


def test_condense_plus_context_condensing_is_not_a_turn(
    engine: SomaEngine, teacher: ScriptedTeacher, index: VectorStoreIndex
) -> None:
    memory = Memory.from_defaults(session_id="condense-1", token_limit=3000)
    llm = SomaLLM(teacher=teacher, engine=engine)
    chat_engine = CondensePlusContextChatEngine.from_defaults(
        retriever=index.as_retriever(similarity_top_k=2), llm=llm, memory=memory
    )
    answers = _switch_and_rollback(engine, chat_engine, "condense-1", "a sportive")
    condensed = [c for c in teacher.calls if c["how"] == "complete"]
    # every turn after the first condenses the question: always by the teacher, never recorded
    assert len(condensed) == 2 * WARM + 2 - 1
    view = engine.session("condense-1")
    assert len(view.turns) == 2 * WARM + 2
    assert [t.query for t in view.turns[:2]] == [
        "Week 0: how should I train for a sportive?",
        "Week 1: how should I train for a sportive?",
    ]
    assert all("Follow Up" not in t.query for t in view.turns)
    assert len(answers) == 2 * WARM


def test_condense_question_condensing_is_not_a_turn(
    engine: SomaEngine, teacher: ScriptedTeacher, index: VectorStoreIndex
) -> None:
    """CondenseQuestionChatEngine condenses through ``LLM.predict`` (a chat call): served by
    the teacher, untracked; the query engine's answer under it is the user's turn."""
    memory = Memory.from_defaults(session_id="condense-q-1", token_limit=3000)
    llm = SomaLLM(teacher=teacher, engine=engine)
    chat_engine = CondenseQuestionChatEngine.from_defaults(
        query_engine=index.as_query_engine(llm=llm, similarity_top_k=2), llm=llm, memory=memory
    )
    questions = [f"Week {i}: how long should my long ride be?" for i in range(WARM + 4)]
    answers = _drive(chat_engine, questions)  # chat, stream_chat, achat, astream_chat in turn
    view = engine.session("condense-q-1")
    assert len(view.turns) == len(questions)  # one turn per user message, none for condensing
    assert view.served_by == ["teacher"] * WARM + ["surrogate"] * 4
    assert all(questions[i] in answers[i] for i in range(WARM))  # the teacher answered the condensed question
    condensing = [c for c in teacher.calls if "<Follow Up Message>" in (c["messages"][-1].content or "")]
    # every follow-up is condensed, by the teacher, before and after the switch
    assert len(condensing) == len(questions) - 1
    assert all("<Follow Up Message>" not in t.query and questions[i] in t.query for i, t in enumerate(view.turns))


def test_chat_engine_session_from_memory_buffer_key_or_tag(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)
    buffer = ChatMemoryBuffer.from_defaults(chat_store_key="user-7")
    SimpleChatEngine.from_defaults(llm=llm, memory=buffer).chat("hello")
    assert engine.session("user-7").served_by == ["teacher"]
    with instrument_tags({"session_id": "tagged-7"}):
        SimpleChatEngine.from_defaults(llm=llm).chat("hello")
    assert engine.session("tagged-7").served_by == ["teacher"]


# ----------------------------------------------------------------------------- agents


async def _run(agent: Any, msg: str, memory: Memory) -> tuple[Any, list[Any]]:
    handler = agent.run(user_msg=msg, memory=memory)
    events = [ev async for ev in handler.stream_events()]
    return await handler, events


def _tool_results(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.tool_name, str(e.tool_output.content)) for e in events if isinstance(e, ToolCallResult)]


@pytest.mark.parametrize("streaming", [True, False])
def test_function_agent_switch_tools_and_rollback(
    engine: SomaEngine, teacher: ScriptedTeacher, monkeypatch: pytest.MonkeyPatch, streaming: bool
) -> None:
    session = f"agent-{streaming}"
    llm = SomaLLM(teacher=teacher, engine=engine)
    agent = FunctionAgent(tools=TOOLS, llm=llm, system_prompt="You do arithmetic.", streaming=streaming, timeout=None)
    memory = Memory.from_defaults(session_id=session, token_limit=3000)

    async def conversation() -> None:
        # warm window: 2 runs x (tool call + answer) = 4 teacher turns
        out, events = await _run(agent, "What is 2 plus 3?", memory)
        assert _tool_results(events) == [("add", "5")] and str(out.response.content) == "The result is 5."
        out, events = await _run(agent, "What is 4 times 5?", memory)
        assert _tool_results(events) == [("multiply", "20")]
        assert history_of(engine, session) == ["teacher"] * 4
        assert "tools" in teacher.calls[0]["kwargs"]  # the tools went to the teacher natively

        # served locally: the surrogate calls a tool (validated), then answers the result
        script = ScriptSurrogate(
            monkeypatch,
            engine,
            '<tool_call>\n{"name": "multiply", "arguments": {"a": 6, "b": 7}}\n</tool_call>',
            "Six times seven is 42.",
        )
        out, events = await _run(agent, "What is 6 times 7?", memory)
        assert _tool_results(events) == [("multiply", "42")]
        assert str(out.response.content) == "Six times seven is 42."
        assert history_of(engine, session)[-2:] == ["surrogate", "surrogate"]
        assert {t["function"]["name"] for t in script.seen[0]["tools"]} == {"add", "multiply"}
        assert script.seen[1]["messages"][-1].role == "tool"  # the tool result reached the surrogate
        if streaming:
            assert any(isinstance(e, AgentStream) and e.tool_calls for e in events)

        # a call to an unknown tool does not hold up: the teacher serves that turn
        ScriptSurrogate(monkeypatch, engine, '<tool_call>{"name": "divide", "arguments": {"a": 1}}</tool_call>')
        out, events = await _run(agent, "What is 1 plus 1?", memory)
        assert _tool_results(events) == [("add", "2")] and str(out.response.content) == "The result is 2."
        view = engine.session(session)
        assert view.served_by[-2:] == ["teacher", "teacher"] and view.turns[-2].fallback
        monkeypatch.undo()

        assert engine.rollback(session, "test: drift")
        out, events = await _run(agent, "What is 3 plus 4?", memory)
        assert _tool_results(events) == [("add", "7")] and str(out.response.content) == "The result is 7."
        assert engine.session(session).phase.value == "rolled_back"

    asyncio.run(conversation())


def test_agent_surrogate_must_call_a_tool_when_the_teacher_always_did(
    engine: SomaEngine, teacher: ScriptedTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adapted surrogate that answers a tool question in the teacher's style but without
    the tool (a made-up number) does not hold up when the teacher always called a tool."""
    llm = SomaLLM(teacher=teacher, engine=engine)
    agent = FunctionAgent(tools=TOOLS, llm=llm, system_prompt="You do arithmetic.", timeout=None)
    memory = Memory.from_defaults(session_id="agent-must-call", token_limit=3000)

    async def conversation() -> None:
        for question in ("What is 2 plus 3?", "What is 4 times 5?"):
            await _run(agent, question, memory)
        ScriptSurrogate(monkeypatch, engine, "The result is 24.", "Six times seven is 42.")
        out, events = await _run(agent, "What is 6 times 7?", memory)
        assert _tool_results(events) == [("multiply", "42")]  # the teacher made the call
        assert str(out.response.content) == "Six times seven is 42."  # the surrogate answered its result
        view = engine.session("agent-must-call")
        assert view.served_by[-2:] == ["teacher", "surrogate"]
        assert "a tool call is required" in (view.turns[-2].fallback or "")

    asyncio.run(conversation())


def test_chat_with_tools_sync_and_predict_and_call(
    engine: SomaEngine, teacher: ScriptedTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine, session_id=SERVING)
    ScriptSurrogate(
        monkeypatch,
        engine,
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>\n'
        '<tool_call>{"name": "add", "arguments": {"a": 3, "b": 4}}</tool_call>',
    )
    out = llm.chat_with_tools(TOOLS, user_msg="Add 1 and 2.", chat_history=[ChatMessage(role="system", content=SYSTEM)])
    assert served(out) == "surrogate"
    calls = llm.get_tool_calls_from_response(out)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("add", {"a": 1, "b": 2})]  # parallel calls off: the first
    out = llm.chat_with_tools(TOOLS, user_msg="Add both.", allow_parallel_tool_calls=True)
    assert len(llm.get_tool_calls_from_response(out)) == 2
    assert str(llm.predict_and_call(TOOLS, user_msg="Add 1 and 2.")) == "3"

    # tool_required with a plain answer does not hold up: the teacher serves, with the tools
    ScriptSurrogate(monkeypatch, engine, "I would rather not.")
    out = llm.chat_with_tools(TOOLS, user_msg="What is 2 plus 2?", tool_required=True)
    assert served(out) == "teacher" and out.additional_kwargs["soma"]["fallback"]
    assert [(c.tool_name, c.tool_kwargs) for c in llm.get_tool_calls_from_response(out)] == [("add", {"a": 2, "b": 2})]
    assert teacher.calls[-1]["kwargs"]["tool_required"] is True and teacher.calls[-1]["kwargs"]["tools"]

    # streamed on the teacher path: partial JSON chunks do not raise
    chunks = list(llm.stream_chat_with_tools(TOOLS, user_msg="What is 5 plus 6?", tool_required=True))
    assert all(isinstance(llm.get_tool_calls_from_response(c, error_on_no_tool_call=False), list) for c in chunks)
    assert served(chunks[-1]) == "teacher" and llm.get_tool_calls_from_response(chunks[-1])[0].tool_kwargs == {
        "a": 5,
        "b": 6,
    }
    rec = engine.session(SERVING).turns[-1]
    assert rec.served_by == "teacher" and '"name": "add"' in rec.answer  # recorded in the format the surrogate learns


def test_react_agent_switch_validation_and_rollback(
    engine: SomaEngine, teacher: ScriptedTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = ReActOutputParser()

    def react_step(text: str) -> None:
        """A ReAct step or it does not hold up (the parser alone reads any text as an answer)."""
        if not text.startswith("Thought:"):
            raise ValueError("not a ReAct step")
        parser.parse(text, is_streaming=False)

    llm = SomaLLM(teacher=teacher, engine=engine, output_check=react_step)
    memory = Memory.from_defaults(session_id="react-1", token_limit=3000)

    async def conversation() -> None:
        for streaming in (True, False):
            agent = ReActAgent(tools=TOOLS, llm=llm, streaming=streaming, timeout=None)
            out, events = await _run(agent, "What is 2 plus 3?" if streaming else "What is 3 times 4?", memory)
            assert _tool_results(events) == ([("add", "5")] if streaming else [("multiply", "12")])
        assert history_of(engine, "react-1") == ["teacher"] * 4

        for streaming in (True, False):
            ScriptSurrogate(
                monkeypatch,
                engine,
                'Thought: I need to use a tool.\nAction: add\nAction Input: {"a": 20, "b": 22}',
                "Thought: I can answer without using any more tools.\nAnswer: Forty-two.",
            )
            agent = ReActAgent(tools=TOOLS, llm=llm, streaming=streaming, timeout=None)
            out, events = await _run(agent, "What is 20 plus 22?", memory)
            assert _tool_results(events) == [("add", "42")] and "Forty-two" in str(out.response.content)
        assert history_of(engine, "react-1")[-4:] == ["surrogate"] * 4

        # an answer that is not a ReAct step is caught by output_check: the teacher serves
        ScriptSurrogate(monkeypatch, engine, "eeee to to to")
        agent = ReActAgent(tools=TOOLS, llm=llm, timeout=None)
        out, events = await _run(agent, "What is 1 plus 2?", memory)
        assert _tool_results(events) == [("add", "3")] and "It is 3" in str(out.response.content)
        assert history_of(engine, "react-1")[-2:] == ["teacher", "teacher"]
        monkeypatch.undo()

        assert engine.rollback("react-1", "test: drift")
        out, events = await _run(agent, "What is 2 times 2?", memory)
        assert _tool_results(events) == [("multiply", "4")]
        assert engine.session("react-1").phase.value == "rolled_back"

    asyncio.run(conversation())


# ----------------------------------------------------------------------------- failures and sessions


def test_surrogate_failures_are_served_by_the_teacher(
    engine: SomaEngine, teacher: ScriptedTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine, session_id=SERVING)
    ScriptSurrogate(monkeypatch, engine, RuntimeError("out of memory"))
    out = llm.chat(ask("Fail?"))
    assert served(out) == "teacher" and "out of memory" in out.additional_kwargs["soma"]["fallback"]
    ScriptSurrogate(monkeypatch, engine, "   ")
    out = asyncio.run(llm.achat(ask("Empty?")))
    assert served(out) == "teacher" and "empty" in out.additional_kwargs["soma"]["fallback"]
    assert engine.session(SERVING).phase.value == "serving"  # a failure is not a rollback

    def dies_mid_stream(*args: Any, **kwargs: Any) -> Iterator[str]:
        yield "partial "
        raise RuntimeError("died mid-stream")

    monkeypatch.setattr(engine.surrogate, "stream", dies_mid_stream)
    chunks = list(llm.stream_chat(ask("Stream?")))
    soma = chunks[-1].additional_kwargs["soma"]
    assert soma["served_by"] == "teacher" and soma["partial_surrogate_output"] and "mid-stream" in soma["fallback"]
    assert chunks[0].delta == "partial" and chunks[-1].message.content == "Teacher answer to: Stream?"


def test_teacher_error_is_raised_as_the_teachers_own(engine: SomaEngine) -> None:
    llm = SomaLLM(teacher=ScriptedTeacher(error=TeacherDown("429")), engine=engine)
    with pytest.raises(TeacherDown):
        llm.chat(ask("Hello?"), session_id="down-1")
    with pytest.raises(TeacherDown):
        list(llm.stream_chat(ask("Hello?"), session_id="down-1"))
    with pytest.raises(TeacherDown):
        asyncio.run(llm.achat(ask("Hello?"), session_id="down-1"))
    with pytest.raises(KeyError):
        engine.session("down-1")  # no turn recorded


def test_untracked_and_non_text_calls_go_to_the_teacher(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine, session_id=SERVING)
    ends_with_ai = [*ask("Hi"), _assistant("Hello!")]
    out = llm.chat(ends_with_ai)
    assert out.additional_kwargs["soma"]["tracked"] is False and teacher.calls
    image = [ChatMessage(role="user", blocks=[TextBlock(text="What is this?"), ImageBlock(url="http://x/y.png")])]
    out = llm.chat(image)
    assert served(out) == "teacher" and "non-text" in out.additional_kwargs["soma"]["reason"]


def test_session_identity_order(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)
    msgs = ask("Which saddle?")
    first = llm.chat(msgs)
    fp = first.additional_kwargs["soma"]["session_id"]
    follow_up = ask("And pedals?", [*msgs, first.message])  # the fingerprinted session continues
    assert fp.startswith("fp-") and llm.chat(follow_up).additional_kwargs["soma"]["session_id"] == fp
    assert llm.chat(msgs).additional_kwargs["soma"]["session_id"] != fp  # another user, same opening
    with instrument_tags({"session_id": "tag-1"}):
        assert llm.chat(msgs).additional_kwargs["soma"]["session_id"] == "tag-1"
        assert llm.chat(msgs, session_id="kw-1").additional_kwargs["soma"]["session_id"] == "kw-1"
        fixed = SomaLLM(teacher=teacher, engine=engine, session_id="field-1")
        assert fixed.chat(msgs).additional_kwargs["soma"]["session_id"] == "field-1"
    memory = Memory.from_defaults(session_id="mem-1")
    chat_engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    chat_engine.chat("Which saddle?")
    with instrument_tags({"session_id": "tag-2"}):  # a tag names the session over the memory
        chat_engine.chat("And pedals?")
    assert engine.session("mem-1").served_by == ["teacher"] and engine.session("tag-2").served_by == ["teacher"]


def test_calls_inside_a_tool_are_not_turns_of_the_agents_session(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)
    inner: list[str] = []

    def add(a: int, b: int) -> int:
        """Add two integers (and ask an LLM about it, as a query engine tool would)."""
        inner.append(llm.chat(ask(f"Check {a} + {b}")).additional_kwargs["soma"]["session_id"])
        return a + b

    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm, timeout=None)
    out, _ = asyncio.run(_run(agent, "What is 2 plus 2?", Memory.from_defaults(session_id="outer-1")))
    assert str(out.response.content) == "The result is 4."
    assert engine.session("outer-1").served_by == ["teacher", "teacher"]  # the agent's two calls only
    assert inner and inner[0] != "outer-1"


def test_completion_model_teacher_turns_are_untracked_with_a_warning(
    engine: SomaEngine, caplog: pytest.LogCaptureFixture
) -> None:
    llm = SomaLLM(teacher=MockLLM(), engine=engine)
    with caplog.at_level(logging.WARNING, logger="soma.llama_index"):
        assert llm.predict(PromptTemplate("Say {x}"), x="hi") == "Say hi"  # LlamaIndex sends a completion
        llm.predict(PromptTemplate("Say {x}"), x="again")
    assert sum("is_chat_model=False" in r.getMessage() for r in caplog.records) == 1


def test_instrumentation_sees_our_calls_and_tags_the_teachers(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    class Collect(BaseEventHandler):
        events: list[Any] = []

        @classmethod
        def class_name(cls) -> str:
            return "Collect"

        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, (LLMChatStartEvent, LLMChatEndEvent)):
                self.events.append(event)

    handler = Collect(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        SomaLLM(teacher=teacher, engine=engine).chat(ask("Traced?"), session_id="traced-1")
    finally:
        dispatcher.event_handlers.remove(handler)
    starts = {e.model_dict["class_name"]: e for e in handler.events if isinstance(e, LLMChatStartEvent)}
    ends = {"soma" in e.response.additional_kwargs: e for e in handler.events if isinstance(e, LLMChatEndEvent)}
    assert set(starts) == {"SomaLLM", "ScriptedTeacher"} and len(ends) == 2
    assert (
        starts["ScriptedTeacher"].tags.get("soma.call") == "teacher" and ends[False].tags.get("soma.call") == "teacher"
    )
    assert "soma.call" not in starts["SomaLLM"].tags and "soma.call" not in ends[True].tags
    assert ends[True].response.additional_kwargs["soma"]["session_id"] == "traced-1"
    assert starts["ScriptedTeacher"].span_id != starts["SomaLLM"].span_id  # the teacher's call is nested in ours


# ----------------------------------------------------------------------------- the example


def test_example_runs_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    import llama_index_chat_engine  # examples/ is on pytest's pythonpath

    llama_index_chat_engine.main(["--tiny", "--home", str(tmp_path), "--turns", "5"])
    out = capsys.readouterr().out
    assert "stand-in" in out and "5 turns recorded for 5 questions" in out  # condensing is not a turn
    # served by the surrogate after the warm window, or by the teacher after a locality rollback
    assert "served by surrogate" in out or "rolled_back" in out


# ----------------------------------------------------------------------------- drop-in habits (issue 21)


@pytest.mark.parametrize("how", ["chat", "stream_chat", "achat", "astream_chat"])
def test_token_counting_handler_counts_each_turn_once(engine: SomaEngine, how: str) -> None:
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

    counter = TokenCountingHandler(tokenizer=lambda text: text.split())
    manager = CallbackManager([counter])
    llm = SomaLLM(teacher=ScriptedTeacher(callback_manager=manager), engine=engine, callback_manager=manager)

    def call(messages: list[ChatMessage], session: str) -> ChatResponse:
        if how == "chat":
            return llm.chat(messages, session_id=session)
        if how == "stream_chat":
            return list(llm.stream_chat(messages, session_id=session))[-1]

        async def run() -> ChatResponse:
            if how == "achat":
                return await llm.achat(messages, session_id=session)
            return [r async for r in await llm.astream_chat(messages, session_id=session)][-1]

        return asyncio.run(run())

    first = call(ask("Count me"), f"count-{how}")
    assert served(first) == "teacher" and len(counter.llm_token_counts) == 1
    second = call(ask("Question 40 about training?"), SERVING)
    assert served(second) == "surrogate" and len(counter.llm_token_counts) == 2


def test_llm_engine_is_the_engine_in_use(tiny: Path, tmp_path: Path) -> None:
    llm = SomaLLM(teacher=ScriptedTeacher(), surrogate=str(tiny), store=f"sqlite:///{tmp_path}/e.db", namespace="own")
    assert llm.engine is None  # construction loads nothing
    llm.chat(ask("Hello"), session_id="own-1")
    assert isinstance(llm.engine, SomaEngine) and llm.engine is llm.get_engine()
    assert len(llm.engine.session("own-1").turns) == 1
    llm.engine.close()


def test_unknown_settings_refused_and_call_settings_honoured(
    engine: SomaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="set them on the teacher"):
        SomaLLM(teacher=ScriptedTeacher(), temperature=0.2)
    with pytest.raises(ValueError, match="model"):
        SomaLLM(teacher=ScriptedTeacher(), model="gpt-4o")
    teacher = ScriptedTeacher()
    llm = SomaLLM(teacher=teacher, engine=engine)
    llm.chat(ask("Settings?"), session_id="li-settings", max_tokens=3, temperature=0.5)
    assert teacher.calls[-1]["kwargs"]["max_tokens"] == 3 and teacher.calls[-1]["kwargs"]["temperature"] == 0.5
    seen: list[dict[str, Any]] = []
    real = engine.surrogate.generate

    def spy(messages: Any, adapter: Any = None, **kw: Any) -> Any:
        seen.append(kw)
        return real(messages, adapter, **kw)

    monkeypatch.setattr(engine.surrogate, "generate", spy)
    out = llm.chat(ask("Question 41 about training?"), session_id=SERVING, max_tokens=3, temperature=0.5)
    assert served(out) == "surrogate" and out.additional_kwargs["completion_tokens"] <= 3
    assert seen[-1]["max_new_tokens"] == 3 and seen[-1]["temperature"] == 0.5


def test_react_agent_output_is_checked_by_default(
    engine: SomaEngine, teacher: ScriptedTeacher, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)  # no output_check
    memory = Memory.from_defaults(session_id="react-default", token_limit=3000)

    async def conversation() -> None:
        for question in ("What is 2 plus 3?", "What is 3 times 4?"):
            await _run(ReActAgent(tools=TOOLS, llm=llm, timeout=None), question, memory)
        assert history_of(engine, "react-default") == ["teacher"] * 4
        ScriptSurrogate(monkeypatch, engine, "eeee to to to")  # not a ReAct step
        out, events = await _run(ReActAgent(tools=TOOLS, llm=llm, timeout=None), "What is 1 plus 2?", memory)
        assert _tool_results(events) == [("add", "3")] and "It is 3" in str(out.response.content)
        assert history_of(engine, "react-default")[-2:] == ["teacher", "teacher"]
        ScriptSurrogate(monkeypatch, engine, "Thought: I can answer without using any more tools.\nAnswer: Forty-two.")
        out, _ = await _run(ReActAgent(tools=TOOLS, llm=llm, timeout=None), "What is 20 plus 22?", memory)
        assert "Forty-two" in str(out.response.content) and history_of(engine, "react-default")[-1] == "surrogate"

    asyncio.run(conversation())


class PersonOut(BaseModel):
    """A person."""

    name: str
    age: int


class StructuredTeacher(ScriptedTeacher):
    """Calls the output class's tool when it is bound (as a function-calling teacher does)."""

    def _answer(self, how: str, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatMessage:
        tools = kwargs.get("tools") or []
        if any(t.metadata.name == "PersonOut" for t in tools):
            self.calls.append({"how": how, "messages": list(messages), "kwargs": kwargs})
            call = ToolCallBlock(tool_call_id="p1", tool_name="PersonOut", tool_kwargs={"name": "Ann", "age": 31})
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return super()._answer(how, messages, kwargs)


def _session_count(engine: SomaEngine) -> int:
    return sum(1 for _ in engine.store.list_sessions(engine.namespace))


@pytest.mark.parametrize("how", ["structured_predict", "as_structured_llm"])
def test_structured_output_on_both_paths(engine: SomaEngine, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from llama_index.core.prompts import PromptTemplate

    teacher = StructuredTeacher()
    llm = SomaLLM(teacher=teacher, engine=engine)

    def ask_person(question: str, **llm_kwargs: Any) -> PersonOut:
        if how == "structured_predict":
            return llm.structured_predict(PersonOut, PromptTemplate(question), llm_kwargs=llm_kwargs)
        return llm.as_structured_llm(PersonOut).chat(ask(question), **llm_kwargs).raw

    before = _session_count(engine)
    for i in range(3):  # one-off calls: the teacher serves, and no session is stored for them
        assert ask_person(f"Who is person {i}?") == PersonOut(name="Ann", age=31)
    assert _session_count(engine) == before and len(teacher.calls) == 3
    ScriptSurrogate(
        monkeypatch, engine, '<tool_call>{"name": "PersonOut", "arguments": {"name": "Bob", "age": 40}}</tool_call>'
    )
    assert ask_person("Question 42 about training?", session_id=SERVING) == PersonOut(name="Bob", age=40)
    assert history_of(engine, SERVING)[-1] == "surrogate" and len(teacher.calls) == 3
    ScriptSurrogate(monkeypatch, engine, '<tool_call>{"name": "PersonOut", "arguments": {"name": "Bob"}}</tool_call>')
    assert ask_person("Question 43 about training?", session_id=SERVING) == PersonOut(name="Ann", age=31)
    assert history_of(engine, SERVING)[-1] == "teacher"  # invalid against the schema: the teacher served


def test_session_finder_internals_are_pinned(engine: SomaEngine) -> None:
    """The span walk reads LlamaIndex internals (span ids ``Class.method-<uuid4>``, a chat
    engine's ``_memory``); this pins them for the range SOMA says it supports, and fails
    when the installed LlamaIndex leaves it or changes them."""
    from llama_index.core.chat_engine import SimpleChatEngine

    from soma_integrations import llama_index_session as li

    assert li._supported_llama_index(), (li._llama_index_version(), li.LLAMA_INDEX_SUPPORTED)
    llm = SomaLLM(teacher=ScriptedTeacher(), engine=engine)
    chat_engine = SimpleChatEngine.from_defaults(llm=llm, memory=Memory.from_defaults(session_id="pinned-1"))
    assert chat_engine._memory.session_id == "pinned-1"
    chat_engine.chat("Hello there")
    assert history_of(engine, "pinned-1") == ["teacher"]  # found through the chat engine's span
    ids = list(li._SPANS._spans)[-20:]
    assert ids and all(re.fullmatch(r"\w+\.\w+-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", i) for i in ids)
    assert any(li._method(i) == "chat" and i.startswith("SimpleChatEngine.") for i in ids)


class AsyncOnlyTeacher(ScriptedTeacher):
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        raise NotImplementedError("async only")


def test_audits_of_an_async_only_teacher_use_achat(engine: SomaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.config.gate, "audit_rate", 1.0)
    teacher = AsyncOnlyTeacher()
    before = engine.session(SERVING).metrics.get("audit_calls", 0)
    out = asyncio.run(
        SomaLLM(teacher=teacher, engine=engine).achat(ask("Question 44 about training?"), session_id=SERVING)
    )
    assert served(out) == "surrogate"
    assert engine.wait_idle(timeout=60)
    assert engine.session(SERVING).metrics.get("audit_calls", 0) == before + 1
    assert [c["how"] for c in teacher.calls] == ["achat"]


def test_responses_name_the_model_that_served(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm = SomaLLM(teacher=teacher, engine=engine)
    first = llm.chat(ask("Who serves?"), session_id="li-who")
    assert served(first) == "teacher" and first.raw["model"] == "scripted-teacher-1"
    later = llm.chat(ask("Question 45 about training?"), session_id=SERVING)
    assert served(later) == "surrogate" and later.raw["model"] == "model"  # the tiny surrogate's folder
    named = llm.chat(ask("Question 46 about training?"), session_id=SERVING, model="scripted-teacher-2")
    assert served(named) == "teacher" and teacher.calls[-1]["kwargs"]["model"] == "scripted-teacher-2"


def test_metadata_model_name_says_who_served_the_turn(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    llm, other = SomaLLM(teacher=teacher, engine=engine), SomaLLM(teacher=teacher, engine=engine)
    teacher_name = teacher.metadata.model_name
    assert llm.metadata.model_name == teacher_name  # before any turn
    seen: list[str] = []

    class Names(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, LLMChatEndEvent):
                seen.append(llm.metadata.model_name)

    handler = Names()
    get_dispatcher().add_event_handler(handler)
    try:
        assert served(llm.chat(ask("Question 47 about training?"), session_id=SERVING)) == "surrogate"
        assert llm.metadata.model_name == "model" and seen[-1] == "model"  # the tiny surrogate's folder
        assert other.metadata.model_name == teacher_name  # another LLM's turns are its own
        in_thread: list[str] = []
        worker = threading.Thread(target=lambda: in_thread.append(llm.metadata.model_name))
        worker.start()
        worker.join()
        assert in_thread == [teacher_name]  # another thread (another user's request) did not serve it
        assert served(llm.chat(ask("A first question"), session_id="li-meta")) == "teacher"
        assert llm.metadata.model_name == teacher_name and seen[-1] == teacher_name
        chunks = list(llm.stream_chat(ask("Question 48 about training?"), session_id=SERVING))
        assert served(chunks[-1]) == "surrogate" and llm.metadata.model_name == "model"

        async def turn() -> str:
            reply = await llm.achat(ask("A second question"), session_id="li-meta-async")
            assert served(reply) == "teacher"
            return llm.metadata.model_name

        assert asyncio.run(turn()) == teacher_name
    finally:
        get_dispatcher().event_handlers.remove(handler)
