"""The teacher's side of one LangChain turn: the runnable it is called with (tools bound, the
teacher's own JSON mode or structured output), the model name and provider it is traced and
priced under, and the message its reply becomes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import Runnable, RunnableBinding, RunnableLambda
from langchain_core.runnables.config import RunnableConfig

from ._core import safe
from .langchain_messages import LC_ID_PREFIX, json_mode_raw
from .langchain_teacher import Isolated, chat_model, shape, with_kwargs

if TYPE_CHECKING:
    from .langchain_turn import Turn


def teacher_call(teacher: Runnable, turn: Turn) -> tuple[Any, dict[str, Any]]:
    """The teacher runnable for this turn (tools bound, JSON mode) and its call kwargs."""
    kwargs = dict(turn.call_kwargs)
    if turn.stop:
        kwargs["stop"] = turn.stop
    config = RunnableConfig(configurable=turn.configurable or {})
    if turn.json_mode is not None:
        schema, method = turn.json_mode.get("schema"), turn.json_mode.get("method", "json_mode")
        # The teacher's native method (``response_format`` for json_schema / json_mode), else
        # its default structured output (tool calling), whose arguments become the JSON.
        tries = [{"method": method}, {}] if schema is not None else [{"method": method}]
        if turn.json_mode.get("strict") is not None:
            tries[0]["strict"] = turn.json_mode["strict"]
        for extra in tries:

            def structured(chat: BaseChatModel, extra: dict[str, Any] = extra) -> Runnable:
                out = chat.with_structured_output(schema, include_raw=True, **extra)
                return with_kwargs(out, chat, kwargs)  # the call's settings reach the model inside

            try:
                return Isolated(shape(teacher, config, structured) | RunnableLambda(json_mode_raw)), {}
            except (NotImplementedError, ValueError, TypeError):
                continue  # a teacher without this method: the next, else the prompt asks for JSON
    if turn.tools:
        bind: dict[str, Any] = dict(turn.bind_kwargs)
        if turn.tool_choice is not None:
            bind["tool_choice"] = turn.tool_choice
        bound = shape(teacher, config, lambda chat: chat.bind_tools(turn.tools, **bind))
        # Call the chat model itself with the bound kwargs: a RunnableBinding merges the
        # enclosing context's callbacks back in, and the app's handlers must see one model.
        if isinstance(bound, RunnableBinding) and isinstance(bound.bound, BaseChatModel) and not bound.config:
            return bound.bound, {**bound.kwargs, **kwargs}
        return bound, kwargs
    return shape(teacher, config, lambda chat: chat), kwargs


def model_name(teacher: Runnable, chat: Any = None) -> str:
    """The teacher's model name as tracers see it (``ls_model_name``, else its ``_llm_type``)."""
    chat = chat if chat is not None else safe(lambda: chat_model(teacher), teacher)
    params = safe(lambda: chat._get_ls_params(), {}) or {}
    name = params.get("ls_model_name")
    if not isinstance(name, str) or not name:
        name = safe(lambda: chat._llm_type, type(chat).__name__)
    return str(name)


def provider(teacher: Runnable, chat: Any = None) -> str:
    chat = chat if chat is not None else safe(lambda: chat_model(teacher), teacher)
    params = safe(lambda: chat._get_ls_params(), {}) or {}
    return str(params.get("ls_provider") or type(chat).__name__.lower())


def teacher_message(teacher: Runnable, turn: Turn, msg: AIMessage, soma: dict[str, Any]) -> AIMessage:
    """The teacher's reply as this model's message: its metadata completed, ``soma`` added."""
    meta = dict(msg.response_metadata or {})
    meta.setdefault("model_name", model_name(teacher))
    meta.setdefault("model_provider", provider(teacher))
    meta.setdefault("finish_reason", "tool_calls" if msg.tool_calls else "stop")
    meta["soma"] = soma
    update: dict[str, Any] = {"response_metadata": meta}
    if not msg.usage_metadata:
        update["usage_metadata"] = turn.usage_estimate
    if isinstance(msg.id, str) and msg.id.startswith(LC_ID_PREFIX):
        update["id"] = None  # our run's id, not the inner teacher run's
    return msg.model_copy(update=update)


def teacher_final_chunk(
    teacher: Runnable, turn: Turn, acc: AIMessageChunk | None, soma: dict[str, Any]
) -> AIMessageChunk:
    """The last chunk of a streamed teacher reply: the metadata its chunks lacked, and ``soma``."""
    seen = dict(acc.response_metadata or {}) if acc is not None else {}
    meta: dict[str, Any] = {}
    if "model_name" not in seen:
        meta["model_name"] = model_name(teacher)
    if "model_provider" not in seen:
        meta["model_provider"] = provider(teacher)
    if "finish_reason" not in seen:
        meta["finish_reason"] = "tool_calls" if acc is not None and acc.tool_call_chunks else "stop"
    meta["soma"] = soma
    content: Any = [] if acc is not None and isinstance(acc.content, list) else ""
    usage = None if acc is not None and acc.usage_metadata else turn.usage_estimate
    return AIMessageChunk(content=content, response_metadata=meta, usage_metadata=usage, chunk_position="last")
