"""LlamaIndex chat messages and tools as the engine's messages and OpenAI-style tools:
content blocks, tool calls (blocks, or the legacy ``additional_kwargs``) and leniently parsed
tool arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    CitableBlock,
    CitationBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

_ROLE_MAP = {"chatbot": "assistant", "function": "tool"}


def to_soma_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """LlamaIndex messages as the engine's message dicts (role, content, tool calls, ids).

    Text blocks are joined as ``ChatMessage.content`` joins them; ``ToolCallBlock``s (or the
    legacy ``additional_kwargs["tool_calls"]``) become tool calls; thinking blocks are
    dropped. Images, audio, video and documents in a non-assistant message are kept as
    content parts, so the engine serves that turn by the teacher."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.role.value if isinstance(m.role, MessageRole) else str(m.role)
        role = _ROLE_MAP.get(role, role)
        texts: list[str] = []
        other: list[str] = []
        calls: list[dict[str, Any]] = []
        for b in m.blocks:
            if isinstance(b, TextBlock):
                texts.append(b.text)
            elif isinstance(b, ToolCallBlock):
                calls.append({"id": b.tool_call_id, "name": b.tool_name, "args": kwargs_dict(b.tool_kwargs)})
            elif isinstance(b, (ThinkingBlock, CachePoint)):
                continue
            elif isinstance(b, CitableBlock):
                for c in b.content:
                    (texts.append(c.text) if isinstance(c, TextBlock) else other.append(c.block_type))
            elif isinstance(b, CitationBlock):
                c = b.cited_content
                (texts.append(c.text) if isinstance(c, TextBlock) else other.append(c.block_type))
            else:
                other.append(str(getattr(b, "block_type", type(b).__name__)))
        extra = m.additional_kwargs or {}
        if not calls and role == "assistant" and extra.get("tool_calls"):
            calls = [c for c in (legacy_call(x) for x in extra["tool_calls"]) if c is not None]
        content: Any = "\n".join(texts)
        if other and role != "assistant":
            content = [{"type": "text", "text": t} for t in texts] + [{"type": kind} for kind in other]
        d: dict[str, Any] = {"role": role, "content": content}
        if calls:
            d["tool_calls"] = calls
        if role == "tool":
            if extra.get("tool_call_id"):
                d["tool_call_id"] = str(extra["tool_call_id"])
            name = extra.get("name") or extra.get("tool_name")
            if name:
                d["name"] = str(name)
        out.append(d)
    return out


def legacy_call(item: Any) -> dict[str, Any] | None:
    """A tool call in ``additional_kwargs["tool_calls"]``: OpenAI objects or dicts, or
    LlamaIndex ``ToolSelection``s."""
    if isinstance(item, ToolSelection):
        return {"id": item.tool_id, "name": item.tool_name, "args": dict(item.tool_kwargs)}
    get = item.get if isinstance(item, dict) else (lambda k, d=None: getattr(item, k, d))
    fn = get("function")
    if fn is None:
        return None
    fget = fn.get if isinstance(fn, dict) else (lambda k, d=None: getattr(fn, k, d))
    name = fget("name")
    if not name:
        return None
    return {"id": get("id"), "name": str(name), "args": kwargs_dict(fget("arguments") or {})}


def kwargs_dict(value: Any) -> dict[str, Any]:
    """Tool arguments as a dict; a (possibly partial, while streaming) JSON string is parsed
    leniently and never raises."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value.strip()
        for _ in range(8):  # a half-written key or value: drop it and read what came before
            if not text:
                return {}
            try:
                parsed = parse_partial_json(text)
            except (ValueError, TypeError):
                cut = max(text.rfind(","), text.rfind("{", 1))
                text = text[:cut] if cut > 0 else ""
                continue
            return parsed if isinstance(parsed, dict) else {}
    return {}


def openai_tool(tool: Any) -> dict[str, Any]:
    if isinstance(tool, dict):
        return tool
    return tool.metadata.to_openai_tool(skip_length_check=True)
