"""SomaChatModel (LangChain) end to end on a tiny surrogate and a real engine.

One engine per module (tiny random surrogate, bundled MiniLM encoder, SQLite under tmp):
with ``warm_window=4``, inline adaptation and an always-passing gate, a session switches to
the surrogate deterministically on its fifth turn. Teachers are scripted chat models.
Surrogate answers that must have a given shape (tool calls, JSON) are scripted by patching
the surrogate runtime's generation methods; everything else runs the real model.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import json
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool
from langchain_core.tracers.base import BaseTracer
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_tests.integration_tests import ChatModelIntegrationTests
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from soma_engine import SomaConfig, SomaEngine
from soma_engine.runtime.surrogate import Generation
from soma_engine.testing import save_tiny_model
from soma_engine.tools import (
    StopFilter,
    ToolCallError,
    check_json_output,
    check_tool_output,
    parse_tool_calls,
    render_tool_calls,
    tool_choice,
    truncate_at_stop,
    validate_json,
)
from soma_engine.types import normalize_messages
from soma_integrations.langchain import SomaChatModel, to_soma_messages

SUITE_DIR = Path(tempfile.mkdtemp(prefix="soma-lc-suite-"))
WARM = 4


def soma_config() -> SomaConfig:
    return SomaConfig(
        warm_window=WARM,
        adaptation="inline",
        max_new_tokens=16,
        lora={"steps": 10, "lr": 5e-3},
        gate={"min_fidelity": 0.0, "min_improvement": None, "locality_threshold": 2.0, "audit_rate": 0.0},
    )


# ----------------------------------------------------------------------------- teachers


class TeacherDown(RuntimeError):
    """The teacher's own error type (stands for openai.RateLimitError and the like)."""


def _example_args(schema: dict[str, Any]) -> dict[str, Any]:
    values = {"string": "Ann", "integer": 31, "number": 1.5, "boolean": True, "array": [], "object": {}}
    return {k: values.get(v.get("type", "string"), "x") for k, v in (schema.get("properties") or {}).items()}


def default_reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
    """Deterministic: calls a tool when asked to (or forced), answers tool results, else echoes."""
    tools = kwargs.get("tools") or []
    choice = kwargs.get("tool_choice")
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(f"The result is {last.content}.")
    text = str(last.text)
    if tools and choice != "none":
        names = [t["function"]["name"] for t in tools]
        forced = choice if isinstance(choice, str) and choice in names else None
        if forced is None and choice in ("any", "required", True) and len(names) == 1:
            forced = names[0]
        if forced:
            spec = next(t["function"] for t in tools if t["function"]["name"] == forced)
            return AIMessage("", tool_calls=[{"name": forced, "args": _example_args(spec["parameters"]), "id": "c1"}])
        nums = [int(n) for n in re.findall(r"\d+", text)]
        for word, name in (("plus", "add"), ("times", "multiply"), ("weather", "get_weather")):
            if word in text and name in names:
                args = {"city": "Paris"} if name == "get_weather" else {"a": nums[0], "b": nums[1]}
                return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}-{len(messages)}"}])
    return AIMessage(f"Teacher answer to: {text}")


class ScriptedTeacher(BaseChatModel):
    """A teacher with native sync/async streaming, tool binding, usage and its own errors."""

    model_name: str = "scripted-teacher-1"
    reply: Callable[[list[BaseMessage], dict[str, Any]], AIMessage] = default_reply
    error: BaseException | None = None
    calls: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted-teacher"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _answer(
        self, messages: list[BaseMessage], kwargs: dict[str, Any], how: str, stop: list[str] | None = None
    ) -> AIMessage:
        self.calls.append({"how": how, "messages": messages, "kwargs": kwargs, "stop": stop})
        if self.error is not None:
            raise self.error
        msg = self.reply(messages, kwargs)
        msg.usage_metadata = {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
        msg.response_metadata = {"model_name": kwargs.get("model") or self.model_name, "finish_reason": "stop"}
        return msg

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, kwargs, "generate", stop))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:  # type: ignore[override]
        msg = self._answer(messages, kwargs, "stream", stop)
        yield from _chunks(msg)

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs) -> AsyncIterator[ChatGenerationChunk]:  # type: ignore[override]
        msg = self._answer(messages, kwargs, "astream", stop)
        for chunk in _chunks(msg):
            await asyncio.sleep(0)
            yield chunk

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        await asyncio.sleep(0)
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, kwargs, "agenerate", stop))])


def _chunks(msg: AIMessage) -> Iterator[ChatGenerationChunk]:
    words = re.split(r"(\s)", str(msg.content)) if msg.content else []
    for w in words:
        yield ChatGenerationChunk(message=AIMessageChunk(content=w))
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type": "tool_call_chunk"}
                for i, c in enumerate(msg.tool_calls)
            ],
            usage_metadata=msg.usage_metadata,
            response_metadata=msg.response_metadata,
            chunk_position="last",
        )
    )


# ----------------------------------------------------------------------------- fixtures


SERVING = "serving-shared"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # visible_only: the tiny random surrogate always answers visible plain text (never only
    # newlines, which the engine treats as a failed turn, nor text that looks like a tool call)
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", visible_only=True)


@pytest.fixture(scope="module")
def engine(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SomaEngine]:
    """The module's engine. Its one adapted session (``SERVING``) is warmed up first thing."""
    root = tmp_path_factory.mktemp("soma-lc")
    eng = SomaEngine(config=soma_config(), surrogate=str(tiny), store=f"sqlite:///{root}/soma.db", namespace="lc")
    # The locality gate (tested with the gate) would roll sessions back on the off-topic
    # queries these tests send on purpose; the integration is tested with it out of the way
    # (rollbacks are triggered explicitly in test_rollback_*).
    eng.detector.score = lambda messages, model, previous=None: None  # type: ignore[method-assign]
    warm_up(make_model(eng, ScriptedTeacher(calls=[])), SERVING)
    assert eng.session(SERVING).phase.value == "serving"
    yield eng
    eng.close()


@pytest.fixture
def teacher() -> ScriptedTeacher:
    return ScriptedTeacher(calls=[])


def make_model(engine: SomaEngine, teacher: BaseChatModel, **kw: Any) -> SomaChatModel:
    return SomaChatModel(teacher=teacher, engine=engine, **kw)


def conversation(n: int, topic: str = "bicycles") -> list[BaseMessage]:
    msgs: list[BaseMessage] = [SystemMessage(f"You are an expert on {topic}.")]
    for i in range(n):
        msgs += [HumanMessage(f"Question {i} about {topic}?"), AIMessage(f"Answer {i} about {topic}.")]
    return msgs


def warm_up(model: SomaChatModel, session_id: str, topic: str = "bicycles") -> list[BaseMessage]:
    """Four teacher turns of one session; returns the history (ending with an AI turn)."""
    msgs: list[BaseMessage] = [SystemMessage(f"You are an expert on {topic}.")]
    for i in range(WARM):
        msgs.append(HumanMessage(f"Question {i} about {topic}?"))
        out = model.invoke(msgs, session_id=session_id)
        assert out.response_metadata["soma"]["served_by"] == "teacher"
        msgs.append(out)
    return msgs


@pytest.fixture
def serving(engine: SomaEngine) -> str:
    """A session that has passed its gate: every later turn goes to the surrogate."""
    return SERVING


def ask(history: list[BaseMessage] | None, text: str) -> list[BaseMessage]:
    base = history if history is not None else [SystemMessage("You are an expert on bicycles.")]
    return [*base, HumanMessage(text)]


class ScriptSurrogate:
    """Patch the surrogate runtime so it answers ``text`` (and records what it was given)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, engine: SomaEngine, text: str | BaseException) -> None:
        self.seen: list[dict[str, Any]] = []
        self.text = text
        rt = engine.surrogate
        monkeypatch.setattr(rt, "generate", self._generate)
        monkeypatch.setattr(rt, "agenerate", self._agenerate)
        monkeypatch.setattr(rt, "stream", self._stream)
        monkeypatch.setattr(rt, "astream", self._astream)

    def _gen(self, messages: Any, kw: dict[str, Any]) -> Generation:
        self.seen.append({"messages": messages, **kw})
        if isinstance(self.text, BaseException):
            raise self.text
        return Generation(self.text, 10, max(1, len(self.text) // 4), "stop")

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


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    out = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return out


def served(msg: BaseMessage) -> str:
    return msg.response_metadata["soma"]["served_by"]


# ----------------------------------------------------------------------------- soma_engine.tools

WEATHER = convert_to_openai_tool(
    {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
)
ADD = convert_to_openai_tool(
    {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    }
)


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        '[{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}]',
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}',
        '{"tool_calls": [{"name": "get_weather", "args": {"city": "Paris"}}]}',
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]',
        '<function=get_weather>{"city": "Paris"}</function>',
    ],
)
def test_parse_tool_call_formats(text: str) -> None:
    parsed = check_tool_output(text, [WEATHER, ADD])
    assert parsed.attempted
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert parsed.tool_calls[0].id.startswith("call_")


def test_parse_keeps_content_and_plain_text() -> None:
    parsed = parse_tool_calls('Let me check.\n<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')
    assert parsed.content == "Let me check."
    assert parsed.tool_calls[0].arguments == {"a": 1, "b": 2}
    plain = parse_tool_calls("  The weather is fine.  ")
    assert (plain.content, plain.tool_calls, plain.attempted) == ("The weather is fine.", [], False)


def test_forced_tool_reads_bare_arguments() -> None:
    person = convert_to_openai_tool(
        {
            "name": "Person",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
            },
        }
    )
    parsed = check_tool_output('{"name": "Ann", "age": 31}', [person], "Person")
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("Person", {"name": "Ann", "age": 31})]
    with pytest.raises(ToolCallError, match="age"):
        check_tool_output('{"name": "Ann"}', [person], "Person")


@pytest.mark.parametrize(
    ("text", "choice", "match"),
    [
        ('{"name": "get_wether", "arguments": {"city": "Paris"}}', None, "unknown tool"),
        ('{"name": "get_weather", "arguments": {"city": 3}}', None, "city"),
        ('{"name": "get_weather", "arguments": {}}', None, "city"),
        ('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>', None, "JSON"),
        ('{"name": "get_weather", "argu', None, "JSON"),
        ("It is sunny.", "any", "required"),
        ("It is sunny.", "get_weather", "required"),
        ('{"name": "add", "arguments": {"a": 1, "b": 2}}', "get_weather", "get_weather"),
        ('{"name": "add", "arguments": {"a": 1, "b": 2}}', "none", "none"),
    ],
)
def test_invalid_tool_calls_raise(text: str, choice: Any, match: str) -> None:
    with pytest.raises(ToolCallError, match=match):
        check_tool_output(text, [WEATHER, ADD], choice)


def test_parallel_calls_and_choice_forms() -> None:
    two = (
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    )
    assert len(check_tool_output(two, [WEATHER, ADD]).tool_calls) == 2
    with pytest.raises(ToolCallError, match="parallel"):
        check_tool_output(two, [WEATHER, ADD], parallel=False)
    assert tool_choice({"type": "function", "function": {"name": "add"}}).name == "add"
    assert tool_choice({"type": "tool", "name": "add"}).name == "add"
    assert tool_choice(True).mode == tool_choice("any").mode == tool_choice({"type": "any"}).mode == "required"
    assert tool_choice(None).mode == tool_choice("auto").mode == "auto"


def test_render_round_trips_through_parse() -> None:
    text = render_tool_calls("Checking.", [{"name": "add", "args": {"a": 2, "b": 3}, "id": "x"}])
    assert text.startswith("Checking.\n<tool_call>")
    parsed = check_tool_output(text, [ADD])
    assert parsed.content == "Checking." and parsed.tool_calls[0].arguments == {"a": 2, "b": 3}


def test_json_output_and_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert check_json_output('```json\n{"n": 3}\n```', schema) == {"n": 3}
    for bad in ('{"n": "three"}', "not json", "[1, 2]", "{}"):
        with pytest.raises(ToolCallError):
            check_json_output(bad, schema)
    with pytest.raises(ToolCallError, match="additional|unexpected"):
        validate_json({"n": 1, "m": 2}, {**schema, "additionalProperties": False})


def test_stop_sequences() -> None:
    assert truncate_at_stop("hello world STOP more", ["STOP"]) == "hello world "
    assert truncate_at_stop("abc", None) == "abc"
    f = StopFilter(["STOP"])
    out = "".join(f.feed(p) for p in ["  hello", " wor", "ld ST", "OP more"]) + f.flush()
    assert out == "hello world"
    g = StopFilter(["STOP"])
    out = "".join(g.feed(p) for p in ["hello", " ST", "ay"]) + g.flush()
    assert out == "hello STay"


# ----------------------------------------------------------------------------- construction


def test_construction_is_lazy_and_validated() -> None:
    model = SomaChatModel(teacher=FakeListChatModel(responses=["x"]), store="sqlite:////no/such/dir/s.db")
    assert model._engine is None and model.engine is None
    assert model._llm_type == "soma-chat"
    params = model._get_ls_params(stop=["\n"])
    teacher_provider = model.teacher._get_ls_params()["ls_provider"]  # a teacher turn is priced as the teacher's
    assert params["ls_provider"] == teacher_provider and params["ls_model_type"] == "chat"
    assert params["ls_stop"] == ["\n"]
    assert params["ls_model_name"] == "fake-list-chat-model"
    assert model._get_ls_params(model="gpt-x")["ls_model_name"] == "gpt-x"
    assert model._identifying_params["teacher_type"] == "fake-list-chat-model"
    with pytest.raises(ValueError, match="cache"):
        SomaChatModel(teacher=FakeListChatModel(responses=["x"]), cache=True)
    with pytest.raises(TypeError):
        SomaChatModel(teacher=FakeListChatModel(responses=["x"]), engine=object())
    cfg = SomaChatModel(teacher=FakeListChatModel(responses=["x"]), config={"warm_window": 6}).config
    assert isinstance(cfg, SomaConfig) and cfg.warm_window == 6


def test_engines_built_from_arguments_are_shared(tmp_path: Path) -> None:
    kw = {"store": f"sqlite:///{tmp_path}/s.db", "surrogate": str(tmp_path / "none"), "namespace": "share"}
    a = SomaChatModel(teacher=FakeListChatModel(responses=["x"]), **kw)
    b = SomaChatModel(teacher=FakeListChatModel(responses=["y"]), **kw)
    try:
        assert a.get_engine() is b.get_engine()
        assert a.get_engine().namespace == "share"
    finally:
        a.get_engine().close()


def test_message_conversion() -> None:
    msgs = [
        SystemMessage("sys"),
        HumanMessage([{"type": "text", "text": "hi"}]),
        AIMessage(
            [{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "t1", "name": "add", "input": {}}],
            tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "t1"}],
        ),
        ToolMessage("3", tool_call_id="t1", name="add"),
    ]
    out = to_soma_messages(msgs)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool"]
    assert out[2]["content"] == "calling"
    assert out[2]["tool_calls"] == [{"id": "t1", "name": "add", "args": {"a": 1, "b": 2}}]
    assert out[3]["tool_call_id"] == "t1" and out[3]["name"] == "add"


# ----------------------------------------------------------------------------- the switch


def test_multi_turn_app_switches_to_surrogate(engine: SomaEngine) -> None:
    teacher = FakeListChatModel(responses=[f"Teacher reply {i}." for i in range(WARM)])
    model = make_model(engine, teacher, session_id="app-1")
    history: list[BaseMessage] = [SystemMessage("You are a cycling coach.")]
    seen = []
    for i in range(WARM + 2):
        history.append(HumanMessage(f"How should I train for week {i}?"))
        out = model.invoke(history)
        meta = out.response_metadata
        assert {"model_name", "model_provider", "finish_reason", "soma"} <= set(meta)
        assert out.usage_metadata and out.usage_metadata["total_tokens"] > 0
        assert meta["soma"]["session_id"] == "app-1" and meta["soma"]["turn"] == i + 1
        seen.append(meta["soma"]["served_by"])
        history.append(out)
    assert seen == ["teacher"] * WARM + ["surrogate"] * 2
    last = history[-1]
    assert last.response_metadata["model_provider"] == "soma"
    assert last.response_metadata["soma"]["phase"] == "serving" and last.response_metadata["soma"]["adapter_id"]
    assert last.content  # the surrogate's own (counted) text
    assert engine.session("app-1").served_by == seen
    assert (
        history[2].content == "Teacher reply 0."
        and history[2].response_metadata["model_name"] == "fake-list-chat-model"
    )


def test_rollback_returns_to_teacher_and_app_keeps_working(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    model = make_model(engine, teacher, session_id="rollback-1")
    history = warm_up(model, "rollback-1")
    out = model.invoke(ask(history, "One more?"))
    assert served(out) == "surrogate"
    assert engine.rollback("rollback-1", "test: drift")
    out = model.invoke(ask(history, "And now?"))
    assert served(out) == "teacher"
    assert out.response_metadata["soma"]["phase"] == "rolled_back"
    assert out.content == "Teacher answer to: And now?"


def test_second_session_adapts_after_a_surrogate_turn(engine: SomaEngine) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[]))
    history = warm_up(model, "first")
    assert served(model.invoke(ask(history, "next"), session_id="first")) == "surrogate"
    warm_up(model, "second")
    assert engine.session("second").phase.value == "serving"


# ----------------------------------------------------------------------------- streaming / async


class TokenCounter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.starts: list[dict[str, Any]] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts.append(kwargs)


def test_stream_teacher_path(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    model = make_model(engine, teacher)
    counter = TokenCounter()
    chunks = list(model.stream(ask(None, "Stream please"), session_id="stream-t", config={"callbacks": [counter]}))
    assert len(chunks) > 3
    assert chunks[-1].chunk_position == "last"
    assert all(c.chunk_position is None for c in chunks[:-1])
    full = merge(chunks)
    assert full.content == "Teacher answer to: Stream please"
    assert full.response_metadata["soma"]["served_by"] == "teacher"
    assert full.response_metadata["model_name"] == "scripted-teacher-1"
    assert full.usage_metadata == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}  # the teacher's own
    assert teacher.calls[-1]["how"] == "stream"  # the teacher streamed natively
    assert "".join(counter.tokens) == full.content  # our run's tokens (not the teacher's twice)
    assert len(counter.starts) == 1  # the app's handlers see one model


class LLMRuns(BaseTracer):
    """A tracer keeping the LLM runs it sees (with their metadata and outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Any] = []

    def _persist_run(self, run: Any) -> None:
        pass

    def _end_trace(self, run: Any) -> None:
        super()._end_trace(run)
        if run.run_type == "llm":
            self.runs.append(run)

    def usage(self, run: Any) -> dict[str, Any]:
        return run.outputs["generations"][0][0]["message"]["kwargs"]["usage_metadata"]


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_teacher_turn_is_one_traced_run(engine: SomaEngine, teacher: ScriptedTeacher, how: str) -> None:
    """A teacher turn is one LLM run, traced as the teacher's model with its usage once, for
    the app's tracers and its other handlers alike."""
    tracer, counter = LLMRuns(), TokenCounter()
    out = _call(
        make_model(engine, teacher),
        how,
        ask(None, "Trace me"),
        session_id=f"trace-{how}",
        config={"callbacks": [tracer, counter]},
    )
    assert served(out) == "teacher"
    (run,) = tracer.runs
    assert run.extra["metadata"]["ls_model_name"] == "scripted-teacher-1" == out.response_metadata["model_name"]
    assert run.extra["metadata"]["ls_provider"] == teacher._get_ls_params()["ls_provider"]
    assert tracer.usage(run)["total_tokens"] == 18 == out.usage_metadata["total_tokens"]
    assert len(counter.starts) == 1


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_surrogate_turn_is_traced_as_the_surrogate(engine: SomaEngine, serving: str, how: str) -> None:
    tracer = LLMRuns()
    out = _call(
        make_model(engine, ScriptedTeacher(calls=[])),
        how,
        ask(None, "Question 30 about bicycles?"),
        session_id=serving,
        config={"callbacks": [tracer]},
    )
    assert served(out) == "surrogate"
    (run,) = tracer.runs
    assert run.extra["metadata"]["ls_model_name"] == out.response_metadata["model_name"] == "model"  # tiny's folder
    assert run.extra["metadata"]["ls_provider"] == "soma"
    assert out.usage_metadata["output_tokens"] > 0 and tracer.usage(run) == out.usage_metadata


def test_stream_surrogate_path(engine: SomaEngine, serving: str) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[]))
    counter = TokenCounter()
    chunks = list(
        model.stream(ask(None, "Question 9 about bicycles?"), session_id=serving, config={"callbacks": [counter]})
    )
    assert chunks[-1].chunk_position == "last"
    full = merge(chunks)
    assert full.response_metadata["soma"]["served_by"] == "surrogate"
    assert full.usage_metadata["output_tokens"] > 0
    assert len(chunks) > 2  # token by token, then the last chunk with the metadata
    assert "".join(counter.tokens) == full.content
    assert engine.session(serving).turns[-1].answer.strip().startswith(str(full.content)[:5])


def test_invoke_with_streaming_handler_uses_stream(engine: SomaEngine, serving: str) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[]), streaming=True)
    out = model.invoke(ask(None, "Question 10 about bicycles?"), session_id=serving)
    assert served(out) == "surrogate" and out.usage_metadata


def test_async_paths(engine: SomaEngine, serving: str) -> None:
    teacher = ScriptedTeacher(calls=[])
    model = make_model(engine, teacher)

    async def run() -> None:
        out = await model.ainvoke(ask(None, "async teacher"), session_id="async-t")
        assert served(out) == "teacher" and teacher.calls[-1]["how"] == "agenerate"
        chunks = [c async for c in model.astream(ask(None, "async stream"), session_id="async-t2")]
        assert chunks[-1].chunk_position == "last" and teacher.calls[-1]["how"] == "astream"
        assert merge(chunks).content == "Teacher answer to: async stream"
        outs = await model.abatch(
            [ask(None, "batch a"), ask(None, "batch b")], config=[{"metadata": {"thread_id": "ab-1"}}] * 1 + [{}]
        )
        assert [o.content for o in outs] == ["Teacher answer to: batch a", "Teacher answer to: batch b"]
        assert outs[0].response_metadata["soma"]["session_id"] == "ab-1"
        # surrogate path
        out = await model.ainvoke(ask(None, "Question 11 about bicycles?"), session_id=serving)
        assert served(out) == "surrogate"
        chunks = [c async for c in model.astream(ask(None, "Question 12 about bicycles?"), session_id=serving)]
        assert served(merge(chunks)) == "surrogate" and chunks[-1].chunk_position == "last"
        outs = await model.abatch([ask(None, "Question 13?"), ask(None, "Question 14?")], session_id=serving)
        assert [served(o) for o in outs] == ["surrogate", "surrogate"]

    asyncio.run(run())


def test_sync_batch(engine: SomaEngine, serving: str) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[]))
    outs = model.batch([ask(None, "Question 15?"), ask(None, "Question 16?")], session_id=serving)
    assert [served(o) for o in outs] == ["surrogate", "surrogate"]


# ----------------------------------------------------------------------------- errors and fallback


def test_teacher_error_type_preserved(engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[], error=TeacherDown("429 rate limited")))
    with pytest.raises(TeacherDown):
        model.invoke(ask(None, "hello"), session_id="err-1")
    with pytest.raises(TeacherDown):
        list(model.stream(ask(None, "hello"), session_id="err-1"))
    with pytest.raises(TeacherDown):
        asyncio.run(model.ainvoke(ask(None, "hello"), session_id="err-1"))

    async def consume() -> None:
        async for _ in model.astream(ask(None, "hello"), session_id="err-1"):
            pass

    with pytest.raises(TeacherDown):
        asyncio.run(consume())
    assert engine.store.get(engine.key("err-1")) is None  # nothing recorded for failed turns
    # a surrogate failure that falls back to a failing teacher raises the teacher's error
    ScriptSurrogate(monkeypatch, engine, RuntimeError("CUDA out of memory"))
    with pytest.raises(TeacherDown):
        model.invoke(ask(None, "Question 17?"), session_id=serving)


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_surrogate_failure_is_served_by_teacher(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    ScriptSurrogate(monkeypatch, engine, RuntimeError("CUDA out of memory"))
    teacher = ScriptedTeacher(calls=[])
    model = make_model(engine, teacher)
    out = _call(model, how, ask(None, "Fallback?"), session_id=serving)
    assert served(out) == "teacher"
    assert "out of memory" in out.response_metadata["soma"]["fallback"]
    assert out.content == "Teacher answer to: Fallback?"
    assert engine.session(serving).phase.value == "serving"  # one failure is not a rollback


def test_empty_surrogate_answer_is_served_by_teacher(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ScriptSurrogate(monkeypatch, engine, "   ")
    model = make_model(engine, ScriptedTeacher(calls=[]))
    for how in ("invoke", "stream"):
        out = _call(model, how, ask(None, "Empty?"), session_id=serving)
        assert served(out) == "teacher" and "empty" in out.response_metadata["soma"]["fallback"]
        assert out.content == "Teacher answer to: Empty?"


def test_mid_stream_surrogate_failure(engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(messages: Any, adapter: Any = None, **kw: Any) -> Iterator[Any]:
        yield "partial"
        raise RuntimeError("worker died")

    monkeypatch.setattr(engine.surrogate, "stream", broken)
    out = merge(list(make_model(engine, ScriptedTeacher(calls=[])).stream(ask(None, "Mid?"), session_id=serving)))
    soma = out.response_metadata["soma"]
    assert soma["served_by"] == "teacher" and soma["partial_surrogate_output"] is True
    # buffered: the caller never sees the partial surrogate text
    model = make_model(engine, ScriptedTeacher(calls=[]), buffer_stream=True)
    out = merge(list(model.stream(ask(None, "Mid?"), session_id=serving)))
    assert out.content == "Teacher answer to: Mid?" and served(out) == "teacher"


def test_stop_applies_to_surrogate(engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ScriptSurrogate(monkeypatch, engine, "Shift to a lower gear. Observation: more")
    model = make_model(engine, ScriptedTeacher(calls=[]))
    for how in ("invoke", "stream", "astream"):
        out = _call(model, how, ask(None, "Stop?"), session_id=serving, stop=["Observation:"])
        assert served(out) == "surrogate" and out.content == "Shift to a lower gear."
        assert out.response_metadata["finish_reason"] == "stop"


def test_untracked_and_non_text_calls_go_to_teacher(engine: SomaEngine, serving: str) -> None:
    teacher = ScriptedTeacher(calls=[], reply=lambda m, k: AIMessage("continued"))
    model = make_model(engine, teacher)
    out = model.invoke([HumanMessage("hi"), AIMessage("Sure, I")], session_id="untracked")  # ends with the AI
    assert out.content == "continued" and out.response_metadata["soma"]["tracked"] is False
    image = HumanMessage(
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
        ]
    )
    out = model.invoke([SystemMessage("You are an expert on bicycles."), image], session_id=serving)
    assert served(out) == "teacher"
    assert teacher.calls[-1]["messages"][-1].content == image.content  # the teacher got the image


def test_global_cache_is_not_used(engine: SomaEngine) -> None:
    set_llm_cache(InMemoryCache())
    try:
        model = make_model(engine, ScriptedTeacher(calls=[]), session_id="cache-1")
        msgs = ask(None, "same question")
        a, b = model.invoke(msgs), model.invoke(msgs)
        assert [a.response_metadata["soma"]["turn"], b.response_metadata["soma"]["turn"]] == [1, 2]
    finally:
        set_llm_cache(None)


def test_audits_call_the_teacher_in_the_background(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.config.gate, "audit_rate", 1.0)
    teacher = ScriptedTeacher(calls=[])
    before = engine.session(serving).metrics.get("audit_calls", 0)
    out = make_model(engine, teacher).invoke(ask(None, "Question 18 about bicycles?"), session_id=serving)
    assert served(out) == "surrogate"
    assert engine.wait_idle(timeout=60)
    assert engine.session(serving).metrics.get("audit_calls", 0) == before + 1
    assert len(teacher.calls) == 1


# ----------------------------------------------------------------------------- tools


@tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"Sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_tools_on_teacher_turns(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    model = make_model(engine, teacher).bind_tools([get_weather, add], tool_choice="auto")
    out = model.invoke(ask(None, "What's the weather in Paris?"), session_id="tools-t")
    assert served(out) == "teacher"
    assert out.tool_calls[0]["name"] == "get_weather" and out.tool_calls[0]["args"] == {"city": "Paris"}
    assert out.response_metadata["finish_reason"] in ("tool_calls", "stop")
    assert [t["function"]["name"] for t in teacher.calls[-1]["kwargs"]["tools"]] == ["get_weather", "add"]
    assert teacher.calls[-1]["kwargs"]["tool_choice"] == "auto"
    # the recorded answer is the call in the format the surrogate is trained and parsed on
    answer = engine.session("tools-t").turns[-1].answer
    assert check_tool_output(answer, [WEATHER]).tool_calls[0].arguments == {"city": "Paris"}
    # streamed tool calls
    chunks = list(model.stream(ask(None, "weather in Oslo"), session_id="tools-t"))
    full = merge(chunks)
    assert full.tool_calls and full.tool_calls[0]["name"] == "get_weather"
    # history with tool calls and tool results, on the teacher path
    history = ask(None, "What's the weather in Paris?") + [
        out,
        ToolMessage("Sunny", tool_call_id=out.tool_calls[0]["id"]),
    ]
    final = model.invoke(history, session_id="tools-t")
    assert final.content == "The result is Sunny."
    record = engine.session("tools-t").turns[-1]
    assert record.messages[-2]["tool_calls"][0]["name"] == "get_weather"
    assert record.messages[-1]["role"] == "tool" and record.messages[-1]["tool_call_id"] == out.tool_calls[0]["id"]


VALID_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_surrogate_tool_calls_parsed_and_validated(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    script = ScriptSurrogate(monkeypatch, engine, VALID_CALL)
    teacher = ScriptedTeacher(calls=[])
    model = make_model(engine, teacher).bind_tools([get_weather, add])
    out = _call(model, how, ask(None, "What's the weather in Paris?"), session_id=serving)
    assert served(out) == "surrogate"
    assert [(c["name"], c["args"]) for c in out.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert out.tool_calls[0]["id"]
    assert out.content == ""
    assert out.response_metadata["finish_reason"] == "tool_calls"
    assert [t["function"]["name"] for t in script.seen[-1]["tools"]] == ["get_weather", "add"]  # in the template
    assert teacher.calls == []


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ('<tool_call>{"name": "get_wether", "arguments": {"city": "Paris"}}</tool_call>', None),  # unknown tool
        ('<tool_call>{"name": "get_weather", "arguments": {"town": "Paris"}}</tool_call>', None),  # bad args
        ('{"name": "get_weather", "arguments": {"city": "Par', None),  # malformed JSON
        ("It is sunny in Paris.", "any"),  # a call was required
    ],
)
@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_invalid_surrogate_tool_call_served_by_teacher(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch, text: str, choice: Any, how: str
) -> None:
    ScriptSurrogate(monkeypatch, engine, text)
    teacher = ScriptedTeacher(calls=[])
    model = make_model(engine, teacher).bind_tools([get_weather, add], tool_choice=choice)
    counter = TokenCounter()
    out = _call(
        model, how, ask(None, "What's the weather in Paris?"), session_id=serving, config={"callbacks": [counter]}
    )
    assert served(out) == "teacher" and "invalid surrogate output" in out.response_metadata["soma"]["fallback"]
    assert out.tool_calls[0]["name"] == "get_weather" and out.tool_calls[0]["args"] == {"city": "Paris"}
    assert text not in "".join(counter.tokens)  # buffered: the bad output never reached the caller


def test_surrogate_plain_answer_with_tools_bound(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ScriptSurrogate(monkeypatch, engine, "The result is 7.")
    history = ask(None, "What is 3 plus 4?")
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 3, "b": 4}, "id": "c9"}])
    history += [call, ToolMessage("7", tool_call_id="c9", name="add")]
    out = make_model(engine, ScriptedTeacher(calls=[])).bind_tools([add]).invoke(history, session_id=serving)
    assert served(out) == "surrogate" and out.content == "The result is 7." and out.tool_calls == []


def test_surrogate_sees_tool_history(engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script = ScriptSurrogate(monkeypatch, engine, "It is sunny.")
    history = ask(None, "Weather in Paris?") + [
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("Sunny", tool_call_id="c1", name="get_weather"),
    ]
    make_model(engine, ScriptedTeacher(calls=[])).bind_tools([get_weather]).invoke(history, session_id=serving)
    msgs = script.seen[-1]["messages"]
    assert msgs[-1].role == "tool" and msgs[-1].tool_call_id == "c1"
    assert msgs[-2].tool_calls[0]["name"] == "get_weather"
    rendered = engine.surrogate.render(msgs, script.seen[-1]["tools"])  # the real template accepts it
    assert "Sunny" in rendered


# ----------------------------------------------------------------------------- structured output


class Person(BaseModel):
    """A person."""

    name: str = Field(description="The name")
    age: int = Field(description="Age in years")


class PersonDict(TypedDict):
    """A person."""

    name: str
    age: int


PERSON_SCHEMA = {
    "title": "PersonSchema",
    "description": "A person.",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize("schema", [Person, PersonDict, PERSON_SCHEMA])
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_teacher(engine: SomaEngine, teacher: ScriptedTeacher, schema: Any, method: str) -> None:
    structured = make_model(engine, teacher).with_structured_output(schema, method=method)
    out = structured.invoke(ask(None, f"Who? ({method})"), config={"configurable": {"session_id": f"so-{method}"}})
    value = out.model_dump() if isinstance(out, BaseModel) else out
    assert value == {"name": "Ann", "age": 31}
    if schema is Person:
        assert isinstance(out, Person)


def test_structured_output_include_raw_and_strict(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    structured = make_model(engine, teacher).with_structured_output(
        Person, method="function_calling", include_raw=True, strict=True
    )
    out = structured.invoke(ask(None, "Who is it?"), config={"configurable": {"session_id": "so-raw"}})
    assert out["parsing_error"] is None and out["parsed"] == Person(name="Ann", age=31)
    assert served(out["raw"]) == "teacher"
    assert teacher.calls[-1]["kwargs"]["tool_choice"] == "Person" and teacher.calls[-1]["kwargs"]["strict"] is True


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_surrogate(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    ScriptSurrogate(monkeypatch, engine, '{"name": "Bob", "age": 40}')
    teacher = ScriptedTeacher(calls=[])
    structured = make_model(engine, teacher).with_structured_output(Person, method=method, include_raw=True)
    out = structured.invoke(ask(None, "Who is it?"), config={"configurable": {"session_id": serving}})
    assert served(out["raw"]) == "surrogate", out["raw"].response_metadata
    assert out["parsed"] == Person(name="Bob", age=40)
    assert teacher.calls == []
    # output that does not validate is served by the teacher
    ScriptSurrogate(monkeypatch, engine, '{"name": "Bob"}')
    out = structured.invoke(ask(None, "Who is it?"), config={"configurable": {"session_id": serving}})
    assert served(out["raw"]) == "teacher" and out["parsed"] == Person(name="Ann", age=31)


def json_reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
    fmt = kwargs.get("response_format")
    if fmt is not None:
        return AIMessage(json.dumps(_example_args(fmt["json_schema"]["schema"])))
    return default_reply(messages, kwargs)


class JsonSchemaTeacher(ScriptedTeacher):
    """Answers JSON in its content under a ``response_format`` (as ChatOpenAI's json_schema)."""

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Any:
        if kwargs.get("method") != "json_schema":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": kwargs.get("strict")}}
        parse = RunnableLambda(lambda d: json.loads(d["raw"].content))
        return RunnableMap(raw=self.bind(response_format=fmt)) | RunnablePassthrough.assign(parsed=parse)


def test_structured_output_json_schema_is_the_teachers_native_and_default(engine: SomaEngine) -> None:
    teacher = JsonSchemaTeacher(calls=[], reply=json_reply)
    structured = make_model(engine, teacher, temperature=0.2).with_structured_output(Person)  # ChatOpenAI's default
    out = structured.invoke(ask(None, "Who?"), config={"configurable": {"session_id": "so-native"}})
    assert out == Person(name="Ann", age=31)
    kwargs = teacher.calls[-1]["kwargs"]
    assert kwargs["response_format"]["type"] == "json_schema" and "tools" not in kwargs
    assert kwargs["temperature"] == 0.2  # the call's settings reach the structured teacher call


# ----------------------------------------------------------------------------- session identity


def test_session_identity_explicit_and_fingerprint(engine: SomaEngine) -> None:
    teacher = ScriptedTeacher(calls=[])
    fixed = make_model(engine, teacher, session_id="field-1")
    assert (
        fixed.invoke(ask(None, "a"), config={"metadata": {"thread_id": "ignored"}}).response_metadata["soma"][
            "session_id"
        ]
        == "field-1"
    )
    bound = make_model(engine, teacher).bind(session_id="bound-1")
    assert bound.invoke(ask(None, "a")).response_metadata["soma"]["session_id"] == "bound-1"
    model = make_model(engine, teacher)
    out = model.invoke(ask(None, "a"), session_id="kw-1", config={"metadata": {"thread_id": "t"}})
    assert out.response_metadata["soma"]["session_id"] == "kw-1"
    # no id: the fingerprint of the opening keeps one conversation in one session
    first = [SystemMessage("fp system"), HumanMessage("fp first question")]
    a = model.invoke(first)
    b = model.invoke([*first, a, HumanMessage("fp follow-up")])
    sid = a.response_metadata["soma"]["session_id"]
    assert sid.startswith("fp-") and b.response_metadata["soma"]["session_id"] == sid
    assert b.response_metadata["soma"]["turn"] == 2


def test_session_identity_from_config(engine: SomaEngine) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[]))
    out = model.invoke(ask(None, "a"), config={"metadata": {"thread_id": "meta-thread"}})
    assert out.response_metadata["soma"]["session_id"] == "meta-thread"
    out = model.invoke(ask(None, "a"), config={"configurable": {"thread_id": "cfg-thread", "session_id": "s"}})
    assert out.response_metadata["soma"]["session_id"] == "cfg-thread"  # thread_id before session_id
    out = model.invoke(ask(None, "a"), config={"configurable": {"session_id": "cfg-session"}})
    assert out.response_metadata["soma"]["session_id"] == "cfg-session"
    chain = RunnableLambda(lambda x: x) | model  # inside a chain (the runnable context)
    out = chain.invoke(ask(None, "a"), config={"configurable": {"session_id": "chain-session"}})
    assert out.response_metadata["soma"]["session_id"] == "chain-session"
    chunks = list(chain.stream(ask(None, "a"), config={"configurable": {"session_id": "chain-stream"}}))
    assert merge(chunks).response_metadata["soma"]["session_id"] == "chain-stream"


def test_runnable_with_message_history(engine: SomaEngine) -> None:
    teacher = ScriptedTeacher(calls=[])
    model = make_model(engine, teacher)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a bicycle mechanic."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    histories: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(
        prompt | model,
        lambda sid: histories.setdefault(sid, InMemoryChatMessageHistory()),
        input_messages_key="question",
        history_messages_key="history",
    )
    cfg = {"configurable": {"session_id": "rwmh-1"}}
    sides = []
    for i in range(WARM + 1):
        out = chain.invoke({"question": f"How do I fix my brakes, step {i}?"}, config=cfg)
        sides.append(served(out))
    chunks = list(chain.stream({"question": "And the chain?"}, config=cfg))
    sides.append(served(merge(chunks)))
    assert sides == ["teacher"] * WARM + ["surrogate"] * 2
    assert engine.session("rwmh-1").served_by == sides
    assert len(histories["rwmh-1"].messages) == 2 * (WARM + 2)


def test_langgraph_agent_thread_id(engine: SomaEngine) -> None:
    create_agent = pytest.importorskip("langchain.agents").create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    teacher = ScriptedTeacher(calls=[])
    agent = create_agent(
        model=make_model(engine, teacher),
        tools=[add, multiply],
        system_prompt="You are a calculator.",
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "agent-thread-1"}}
    result = agent.invoke({"messages": [("user", "What is 3 plus 4?")]}, cfg)
    msgs = result["messages"]
    assert msgs[1].tool_calls[0]["name"] == "add" and isinstance(msgs[2], ToolMessage) and msgs[2].content == "7"
    assert msgs[-1].content == "The result is 7." and served(msgs[-1]) == "teacher"
    # streamed agent (LangGraph "messages" mode): only our run's tokens, never the inner teacher's twice
    streamed: dict[str, str] = {}
    for chunk, meta in agent.stream({"messages": [("user", "What is 5 times 6?")]}, cfg, stream_mode="messages"):
        if isinstance(chunk, AIMessageChunk):
            assert "soma:teacher" not in (meta.get("tags") or [])
            streamed[chunk.id] = streamed.get(chunk.id, "") + str(chunk.content)
    assert "The result is 30." in streamed.values()
    session = engine.session("agent-thread-1")
    assert session.served_by == ["teacher"] * 4 and session.phase.value == "serving"
    result = agent.invoke({"messages": [("user", "What is 2 plus 2?")]}, cfg)
    call, tool_result, last = result["messages"][-3:]
    # this teacher called a tool for every question, so the (tiny) surrogate's plain answer does
    # not hold up there: the teacher makes the call; the answer to the tool's result is local
    assert served(call) == "teacher" and call.response_metadata["soma"].get("fallback")
    assert call.tool_calls[0]["name"] == "add" and tool_result.content == "4"
    assert isinstance(last, AIMessage) and served(last) == "surrogate"
    assert last.response_metadata["soma"]["session_id"] == "agent-thread-1"
    assert engine.session("agent-thread-1").served_by[-2:] == ["teacher", "surrogate"]


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("name", ["langchain_app", "langgraph_agent"])
def test_examples_run_offline(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    module = importlib.import_module(name)  # examples/ is on pytest's pythonpath
    module.main(["--tiny", "--home", str(tmp_path), "--turns", "6"])
    out = capsys.readouterr().out
    assert "stand-in" in out
    # served by the surrogate after the warm window, or by the teacher after a locality rollback
    assert "served by surrogate" in out or "[surrogate" in out or "rolled_back" in out


# ----------------------------------------------------------------------------- helpers


def _call(model: Any, how: str, messages: list[BaseMessage], **kw: Any) -> BaseMessage:
    config = kw.pop("config", None)
    if how == "invoke":
        return model.invoke(messages, config=config, **kw)
    if how == "ainvoke":
        return asyncio.run(model.ainvoke(messages, config=config, **kw))
    if how == "stream":
        return merge(list(model.stream(messages, config=config, **kw)))

    async def collect() -> list[AIMessageChunk]:
        return [c async for c in model.astream(messages, config=config, **kw)]

    return merge(asyncio.run(collect()))


def test_generic_fake_teacher_streams(engine: SomaEngine) -> None:
    teacher = GenericFakeChatModel(messages=iter([AIMessage("one two three")]))
    chunks = list(make_model(engine, teacher).stream(ask(None, "count"), session_id="generic-1"))
    assert merge(chunks).content == "one two three" and chunks[-1].chunk_position == "last"
    assert merge(chunks).usage_metadata["output_tokens"] > 0  # estimated when the teacher reports none


# ----------------------------------------------------------------------------- LangChain's integration suite


def suite_reply(messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
    """A scripted teacher for ``ChatModelIntegrationTests``: it calls a bound tool when the
    request names it (or a call is forced), filling arguments from the request (numbers,
    quoted names), and answers tool results and plain questions in text."""
    tools = [t["function"] for t in kwargs.get("tools") or []]
    choice = kwargs.get("tool_choice")
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(f"The tool said: {last.content}")
    text = str(last.text)
    if tools and choice != "none":
        names = [t["name"] for t in tools]
        chosen = choice if isinstance(choice, str) and choice in names else None
        if chosen is None:
            words = text.lower().replace("_", " ")
            chosen = next((n for n in names if any(w in words for w in n.lower().split("_") if len(w) > 3)), None)
        if chosen is None and choice in ("any", "required", True):
            chosen = names[0]
        if chosen is not None:
            spec = next(t for t in tools if t["name"] == chosen)
            return AIMessage("", tool_calls=[{"name": chosen, "args": _fill(spec["parameters"], text), "id": "call_1"}])
    return AIMessage(f"Teacher answer to: {text}")


def _fill(schema: dict[str, Any], text: str) -> dict[str, Any]:
    nums = [int(n) for n in re.findall(r"-?\d+", text)]
    quoted = re.findall(r"'([^']+)'", text)
    args: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type", "string")
        if kind == "integer":
            args[name] = nums.pop(0) if nums else 3
        elif kind == "number":
            args[name] = float(nums.pop(0)) if nums else 1.5
        elif kind == "boolean":
            args[name] = True
        else:
            args[name] = quoted[0] if quoted else f"{name} for: {text[:40]}"
    return args


class TestSomaChatModelIntegration(ChatModelIntegrationTests):
    """The standard integration suite on the teacher path (warm window 64: no switch), with
    a local scripted teacher. What it checks is that the wrapper passes calls, tools,
    histories, structured output, usage and metadata through as a drop-in model."""

    # pyproject sets no asyncio_mode=auto: the suite's async tests get pytest-asyncio's mark
    # here, on this class, not by patching the upstream functions.
    pytestmark = [
        pytest.mark.asyncio,
        pytest.mark.filterwarnings("ignore:.*is marked with '@pytest.mark.asyncio' but it is not an async function"),
    ]

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return SomaChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "teacher": ScriptedTeacher(calls=[], reply=suite_reply),
            "store": f"sqlite:///{SUITE_DIR}/suite.db",
            "surrogate": f"{SUITE_DIR}/never-loaded",
            "namespace": "integration-suite",
            "config": {"warm_window": 64},
        }

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str | None:
        return "scripted-teacher-2"


# ----------------------------------------------------------------------------- drop-in habits (issue 21)


class RuntimeSpy:
    """Records the generation settings the real surrogate runtime is called with (and runs it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, engine: SomaEngine) -> None:
        self.seen: list[dict[str, Any]] = []
        rt = engine.surrogate
        for name in ("generate", "agenerate", "stream", "astream"):
            monkeypatch.setattr(rt, name, self._spy(getattr(rt, name)))

    def _spy(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(messages: Any, adapter: Any = None, **kw: Any) -> Any:
            self.seen.append(kw)
            return fn(messages, adapter, **kw)

        return call


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_settings_reach_the_teacher(engine: SomaEngine, teacher: ScriptedTeacher, how: str) -> None:
    model = make_model(engine, teacher, temperature=0.3, max_tokens=50, model_kwargs={"seed": 7})
    _call(model, how, ask(None, "Settings?"), session_id=f"settings-{how}", temperature=0.9, stop=["END"])
    kwargs = teacher.calls[-1]["kwargs"]
    assert kwargs["temperature"] == 0.9 and kwargs["max_tokens"] == 50 and kwargs["seed"] == 7
    assert teacher.calls[-1]["stop"] == ["END"]
    params = model._get_ls_params(temperature=0.9)
    assert params["ls_temperature"] == 0.9 and params["ls_max_tokens"] == 50


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_surrogate_honours_max_tokens_temperature_and_stop(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    spy = RuntimeSpy(monkeypatch, engine)
    model = make_model(engine, ScriptedTeacher(calls=[]), temperature=0.7)
    out = _call(model, how, ask(None, "Question 31 about bicycles?"), session_id=serving, max_tokens=3, stop=["zz"])
    assert served(out) == "surrogate"
    assert out.usage_metadata["output_tokens"] <= 3  # the engine's own limit is 16
    assert spy.seen[-1]["max_new_tokens"] == 3 and spy.seen[-1]["temperature"] == 0.7
    assert spy.seen[-1]["stop"] == ["zz"]


def test_surrogate_runtime_stops_generating_at_a_stop_sequence(engine: SomaEngine) -> None:
    import torch

    rt = engine.surrogate
    msgs = normalize_messages([{"role": "user", "content": "Tell me about bicycles."}])
    torch.manual_seed(0)  # sampled (the tiny model's greedy answer repeats one byte): same draws twice
    full = rt.generate(msgs, max_new_tokens=16, temperature=1.0)
    pieces = [rt.tokenizer.decode([i]) for i in full.token_ids]
    k = next(i for i in range(2, 12) if pieces[i].strip().isascii() and pieces[i].strip().isalnum())
    torch.manual_seed(0)
    cut = rt.generate(msgs, max_new_tokens=16, temperature=1.0, stop=[pieces[k].strip()])
    assert pieces[k].strip() in cut.text and cut.output_tokens <= k + 1 < full.output_tokens  # generation ended


def test_unknown_settings_and_several_answers_are_refused(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    with pytest.raises(ValueError, match="model_kwargs"):
        SomaChatModel(teacher=teacher, top_p=0.5)
    with pytest.raises(ValueError, match="set them on the teacher"):
        SomaChatModel(teacher=teacher, timeout=30)
    with pytest.raises(ValueError, match="n=2"):
        SomaChatModel(teacher=teacher, n=2)
    with pytest.raises(ValueError, match="n=3"):
        make_model(engine, teacher).invoke(ask(None, "Three?"), n=3)
    assert SomaChatModel(teacher=teacher, model_kwargs={"top_p": 0.5}).model_kwargs == {"top_p": 0.5}


def test_logprobs_turns_are_served_by_the_teacher(engine: SomaEngine, serving: str) -> None:
    teacher = ScriptedTeacher(calls=[])
    out = make_model(engine, teacher, logprobs=True).invoke(
        ask(None, "Question 32 about bicycles?"), session_id=serving
    )
    assert served(out) == "teacher" and teacher.calls[-1]["kwargs"]["logprobs"] is True


class ProfiledTeacher(ScriptedTeacher):
    """A teacher with its own token counter and model profile."""

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return 100 * len(messages)


def test_token_counting_and_profile_are_the_teachers(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.messages import trim_messages

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msgs = [HumanMessage("one two three four five six"), AIMessage("seven eight nine"), HumanMessage("ten")]
    own = SomaChatModel(teacher=ProfiledTeacher(calls=[], profile={"max_input_tokens": 4096}))
    assert own.get_num_tokens_from_messages(msgs) == 300
    assert own.profile == {"max_input_tokens": 4096}
    plain = SomaChatModel(teacher=FakeListChatModel(responses=["x"]))  # LangChain's GPT-2 default needs the hub
    assert plain.get_num_tokens_from_messages(msgs) > 5
    trimmed = trim_messages(msgs, max_tokens=250, token_counter=own, strategy="last")
    assert trimmed == msgs[1:]


def teacher_setups() -> dict[str, Callable[[ScriptedTeacher], Any]]:
    from langchain_core.runnables import ConfigurableField

    return {
        "with_retry": lambda t: t.with_retry(stop_after_attempt=2),
        "bind": lambda t: t.bind(max_tokens=9),
        "configurable_fields": lambda t: t.configurable_fields(
            model_name=ConfigurableField(id="teacher_model", name="Teacher model")
        ),
        "configurable_alternatives": lambda t: t.configurable_alternatives(
            ConfigurableField(id="teacher"), default_key="main", other=ScriptedTeacher(model_name="other", calls=[])
        ),
    }


@pytest.mark.parametrize("setup", list(teacher_setups()))
@pytest.mark.parametrize("how", ["invoke", "astream"])
def test_any_chat_runnable_as_teacher(engine: SomaEngine, setup: str, how: str) -> None:
    base = ScriptedTeacher(calls=[])
    model = make_model(engine, teacher_setups()[setup](base))
    out = _call(model, how, ask(None, "What is 2 plus 3?"), session_id=f"runnable-{setup}-{how}")
    assert out.content == "Teacher answer to: What is 2 plus 3?" and served(out) == "teacher"
    tools = model.bind_tools([add])
    called = _call(tools, how, ask(None, "What is 2 plus 3?"), session_id=f"runnable-tools-{setup}-{how}")
    assert called.tool_calls[0]["name"] == "add"
    assert base.calls[-1]["kwargs"]["tools"][0]["function"]["name"] == "add"
    if setup == "bind":
        assert base.calls[-1]["kwargs"]["max_tokens"] == 9  # the teacher's own bound kwargs kept


def test_configurable_teachers_follow_the_call_config(engine: SomaEngine) -> None:
    setups = teacher_setups()
    fields = make_model(engine, setups["configurable_fields"](ScriptedTeacher(calls=[])))
    config = {"configurable": {"teacher_model": "picked-model", "session_id": "conf-fields"}}
    assert fields.invoke(ask(None, "Who?"), config=config).response_metadata["model_name"] == "picked-model"
    alts = make_model(engine, setups["configurable_alternatives"](ScriptedTeacher(calls=[])))
    config = {"configurable": {"teacher": "other", "session_id": "conf-alts"}}
    assert alts.invoke(ask(None, "Who?"), config=config).response_metadata["model_name"] == "other"


def test_init_chat_model_configurable_teacher(engine: SomaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain.chat_models.base as chat_models
    from langchain.chat_models import init_chat_model

    made: list[str] = []

    def helper(model: str, *, model_provider: str | None = None, **kw: Any) -> BaseChatModel:
        made.append(model)  # stands in for the provider package (no network here)
        return ScriptedTeacher(model_name=model, calls=[])

    monkeypatch.setattr(chat_models, "_init_chat_model_helper", helper)
    teacher = init_chat_model(configurable_fields=("model",), model_provider="openai")
    model = make_model(engine, teacher)
    config = {"configurable": {"model": "gpt-picked", "session_id": "init-chat"}}
    out = model.invoke(ask(None, "Which?"), config=config)
    assert out.response_metadata["model_name"] == "gpt-picked" and made[-1] == "gpt-picked"
    called = model.bind_tools([add]).invoke(ask(None, "What is 1 plus 2?"), config=config)
    assert called.tool_calls[0]["name"] == "add"


def test_configurable_fields_of_the_model_take_effect(engine: SomaEngine, teacher: ScriptedTeacher) -> None:
    from langchain_core.runnables import ConfigurableField

    model = make_model(engine, teacher).configurable_fields(temperature=ConfigurableField(id="temp"))
    model.invoke(ask(None, "Hot?"), config={"configurable": {"temp": 0.42, "session_id": "conf-temp"}})
    assert teacher.calls[-1]["kwargs"]["temperature"] == 0.42


class StreamingTeacher(ScriptedTeacher):
    streaming: bool = True


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
def test_streaming_teacher_streams_through_invoke(engine: SomaEngine, how: str) -> None:
    teacher, counter = StreamingTeacher(calls=[]), TokenCounter()
    out = _call(
        make_model(engine, teacher),
        how,
        ask(None, "Tokens please"),
        session_id=f"stream-teacher-{how}",
        config={"callbacks": [counter]},
    )
    assert teacher.calls[-1]["how"] in ("stream", "astream")
    assert "".join(counter.tokens) == out.content == "Teacher answer to: Tokens please"


class AsyncOnlyTeacher(ScriptedTeacher):
    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        raise NotImplementedError("async only")

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        raise NotImplementedError("async only")


def test_audits_of_an_async_only_teacher_use_ainvoke(
    engine: SomaEngine, serving: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.config.gate, "audit_rate", 1.0)
    teacher = AsyncOnlyTeacher(calls=[])
    before = engine.session(serving).metrics.get("audit_calls", 0)
    out = asyncio.run(make_model(engine, teacher).ainvoke(ask(None, "Question 33 about bicycles?"), session_id=serving))
    assert served(out) == "surrogate"
    assert engine.wait_idle(timeout=60)
    assert engine.session(serving).metrics.get("audit_calls", 0) == before + 1
    assert [c["how"] for c in teacher.calls] == ["agenerate"]


def test_model_engine_is_the_engine_in_use(tiny: Path, tmp_path: Path) -> None:
    model = SomaChatModel(
        teacher=ScriptedTeacher(calls=[]), surrogate=str(tiny), store=f"sqlite:///{tmp_path}/e.db", namespace="own"
    )
    assert model.engine is None  # construction loads nothing
    model.invoke(ask(None, "Hello"), session_id="own-1")
    assert isinstance(model.engine, SomaEngine) and model.engine is model.get_engine()
    assert len(model.engine.session("own-1").turns) == 1
    model.engine.close()
    model.invoke(ask(None, "Hello again"), session_id="own-2")  # a closed engine it built is replaced
    assert not model.engine._closed and model.engine is model.get_engine()
    model.engine.close()


def test_session_travels_through_events_structured_output_and_batch(engine: SomaEngine) -> None:
    model = make_model(engine, ScriptedTeacher(calls=[]))

    def turns_of(session: str) -> int:
        state = engine.store.get(engine.key(session, [], ""))
        return state.turn_count if state else 0

    async def events_v2() -> list[Any]:
        config = {"configurable": {"session_id": "ev-v2"}}
        return [e async for e in model.astream_events(ask(None, "v2?"), config=config, version="v2")]

    assert any(e["event"] == "on_chat_model_stream" for e in asyncio.run(events_v2()))
    assert turns_of("ev-v2") == 1
    stream = model.stream_events(ask(None, "v3?"), config={"configurable": {"session_id": "ev-v3"}}, version="v3")
    assert "v3?" in str(stream.output.content) and turns_of("ev-v3") == 1

    async def events_v3() -> Any:
        stream = await model.astream_events(
            ask(None, "v3?"), config={"configurable": {"session_id": "aev-v3"}}, version="v3"
        )
        return await stream

    asyncio.run(events_v3())
    assert turns_of("aev-v3") == 1
    structured = model.with_structured_output(Person)
    structured.invoke("Ann is 31", config={"configurable": {"session_id": "so-1"}})
    assert turns_of("so-1") == 1
    raw = model.with_structured_output(Person, include_raw=True).invoke(
        "Ann is 31", config={"configurable": {"session_id": "so-raw-2"}}
    )
    assert raw["raw"].response_metadata["soma"]["session_id"] == "so-raw-2" and turns_of("so-raw-2") == 1
    model.batch([ask(None, "b1"), ask(None, "b2")], config=[{"configurable": {"session_id": s}} for s in ("ba", "bb")])
    assert turns_of("ba") == 1 and turns_of("bb") == 1


SUITE_SERVING = "suite-serving"


@functools.cache
def suite_engine() -> SomaEngine:
    """An engine whose session ``SUITE_SERVING`` has passed its gate (tiny surrogate, four
    scripted teacher turns, a permissive gate, locality off as in the module's engine)."""
    tiny = save_tiny_model(SUITE_DIR / "tiny", visible_only=True)
    engine = SomaEngine(
        config=soma_config(), surrogate=str(tiny), store=f"sqlite:///{SUITE_DIR}/serving.db", namespace="suite"
    )
    engine.detector.score = lambda messages, model, previous=None: None  # type: ignore[method-assign]
    warm_up(make_model(engine, ScriptedTeacher(calls=[], reply=suite_reply)), SUITE_SERVING)
    assert engine.session(SUITE_SERVING).phase.value == "serving"
    return engine


class TestSomaChatModelIntegrationSurrogate(TestSomaChatModelIntegration):
    """The same suite with every call in a session served by the (tiny, random) surrogate.
    Turns it cannot serve well (tool calls, structured output: its output does not
    validate) are served by the teacher, as in production; what is xfailed below is what a
    surrogate answer cannot honestly pass."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "teacher": ScriptedTeacher(calls=[], reply=suite_reply),
            "engine": suite_engine(),
            "session_id": SUITE_SERVING,
        }

    @pytest.mark.xfail(
        reason="with tool_choice='auto' the surrogate may answer in text: it must call a tool only in sessions "
        "whose teacher always did (turns.open_turn), and this session's teacher answered in text",
        strict=True,
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)


def test_the_surrogate_suite_is_served_by_the_surrogate() -> None:
    """What the second suite run checks is the surrogate's path: its session does switch."""
    params = TestSomaChatModelIntegrationSurrogate().chat_model_params
    assert served(SomaChatModel(**params).invoke("Hello")) == "surrogate"
    chunks = list(SomaChatModel(**params).stream("Hello"))
    assert served(merge(chunks)) == "surrogate" and merge(chunks).content  # held-back bytes are sent at the end


def test_create_agent_uses_the_teachers_structured_output_strategy(engine: SomaEngine) -> None:
    from langchain.agents import create_agent

    teacher = JsonSchemaTeacher(calls=[], reply=json_reply, profile={"structured_output": True})
    agent = create_agent(model=make_model(engine, teacher), tools=[], response_format=Person)
    out = agent.invoke({"messages": [("user", "Who is it?")]}, config={"configurable": {"thread_id": "agent-so"}})
    assert out["structured_response"] == Person(name="Ann", age=31)
    assert "response_format" in teacher.calls[-1]["kwargs"]  # the provider strategy, as the teacher's profile says


def test_a_turn_served_by_the_base_surrogate_says_so_and_names_no_adapter(tiny: Path, tmp_path: Path) -> None:
    # The permissive gate (min_improvement None) and a teacher whose answers cannot be learned
    # (random letters): training never beats the untrained adapter, the base clears the floor of
    # 0 and serves, and LangChain's response_metadata reports it as the base, with no adapter.
    import random

    rng = random.Random(5)
    noise = [
        " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(5)) for _ in range(12)) for _ in range(8)
    ]
    config = SomaConfig(
        warm_window=WARM,
        adaptation="inline",
        max_new_tokens=16,
        strategy="history-ft",
        lora={"steps": 4, "lr": 1e-7, "eval_every": 1},
        gate={"min_fidelity": 0.0, "min_improvement": None, "locality_threshold": 4.0, "audit_rate": 0.0},
    )
    with SomaEngine(config=config, surrogate=str(tiny), store=f"sqlite:///{tmp_path}/s.db", namespace="lc-base") as eng:
        model = make_model(eng, FakeListChatModel(responses=noise))
        history = warm_up(model, "base")
        assert eng.session("base").adapter_id is None and eng.adapters.list() == []
        out = model.invoke(ask(history, "Question 9 about bicycles?"), session_id="base")
        soma = out.response_metadata["soma"]
        assert soma["served_by"] == "surrogate" and soma["served_by_detail"] == "base" and "adapter_id" not in soma
        decision = next(d for d in reversed(eng.session("base").decisions) if d.get("kind") == "adaptation")
        assert decision["base"] is True and decision["no_improvement"] is True and decision["adapter_id"] is None
