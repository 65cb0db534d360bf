"""LangChain messages as the engine's and back: ``to_soma_messages`` (a conversation as the
engine's message dicts), the teacher's reply as text and usage, our replies and stream chunks
(``AIMessage`` / ``AIMessageChunk``), and OpenAI-style tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from soma_engine.tools import render_tool_calls
from soma_engine.types import Usage

LC_ID_PREFIX = "lc_"


def to_soma_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the engine's message dicts (role, content, tool calls, ids).

    AI messages keep their text (provider blocks such as ``tool_use`` are carried by
    ``tool_calls``); other messages keep their content parts, so images or files make the
    engine serve the turn by the teacher.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            role = "system"
        elif isinstance(m, HumanMessage):
            role = "user"
        elif isinstance(m, AIMessage):
            role = "assistant"
        elif isinstance(m, (ToolMessage, FunctionMessage)):
            role = "tool"
        elif isinstance(m, ChatMessage):
            role = m.role
        else:
            role = m.type
        content: Any = str(m.text) if isinstance(m, AIMessage) else m.content
        d: dict[str, Any] = {"role": role, "content": content}
        if isinstance(m, AIMessage) and m.tool_calls:
            d["tool_calls"] = [
                {"id": tc.get("id"), "name": tc["name"], "args": tc.get("args", {})} for tc in m.tool_calls
            ]
        if isinstance(m, ToolMessage):
            d["tool_call_id"] = m.tool_call_id
        if isinstance(m, (ToolMessage, FunctionMessage)) and m.name:
            d["name"] = m.name
        out.append(d)
    return out


def openai_tool(tool: Any, strict: bool | None = None) -> dict[str, Any]:
    if isinstance(tool, dict) and tool.get("type") not in (None, "function"):
        return tool  # a provider's built-in tool: the teacher only
    try:
        return convert_to_openai_tool(tool, strict=strict)
    except Exception:
        if isinstance(tool, dict):
            return tool
        raise


def teacher_text(msg: BaseMessage | None) -> tuple[str, Any]:
    if msg is None:
        return "", None
    text = str(msg.text)
    calls = getattr(msg, "tool_calls", None) or []
    if calls:
        text = render_tool_calls(text, calls)
    return text, getattr(msg, "usage_metadata", None) or None


def usage_metadata(usage: Usage) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=int(usage.input_tokens),
        output_tokens=int(usage.output_tokens),
        total_tokens=int(usage.input_tokens + usage.output_tokens),
    )


def as_ai_message(msg: Any) -> AIMessage:
    if isinstance(msg, AIMessage):
        return msg
    if isinstance(msg, BaseMessage):
        return AIMessage(content=msg.content, response_metadata=dict(msg.response_metadata or {}), id=msg.id)
    return AIMessage(content=str(msg))


def as_chunk(msg: Any) -> AIMessageChunk:
    if isinstance(msg, AIMessageChunk):
        return msg
    ai = as_ai_message(msg)
    return AIMessageChunk(
        content=ai.content,
        additional_kwargs=dict(ai.additional_kwargs),
        response_metadata=dict(ai.response_metadata),
        tool_calls=list(ai.tool_calls),
        usage_metadata=ai.usage_metadata,
        id=ai.id,
    )


def forward_chunk(chunk: AIMessageChunk) -> AIMessageChunk:
    """A teacher chunk as ours: our run's id (unless the provider gave one), never 'last'."""
    update: dict[str, Any] = {"chunk_position": None}
    if isinstance(chunk.id, str) and chunk.id.startswith(LC_ID_PREFIX):
        update["id"] = None
    return chunk.model_copy(update=update)


def json_mode_raw(output: dict[str, Any]) -> AIMessage:
    """The teacher's raw JSON-mode reply; a teacher that answered by a tool call (its
    structured output works by tool calling) gets its arguments as the JSON content."""
    raw = as_ai_message(output["raw"])
    if raw.tool_calls and not str(raw.text).strip():
        content = json.dumps(raw.tool_calls[0].get("args", {}), ensure_ascii=False)
        return raw.model_copy(update={"content": content, "tool_calls": [], "invalid_tool_calls": []})
    return raw


def chat_result(msg: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=msg)])


def piece_chunk(_sent: str, piece: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=piece))
