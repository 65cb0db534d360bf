"""LlamaIndex chat messages and tools as the engine's messages and OpenAI-style tools:
content blocks, tool calls (blocks, or the legacy ``additional_kwargs``) and leniently parsed
tool arguments; the usage a response reports, a teacher's whole streamed answer, and ReAct
steps (the shape a ReAct agent's turn must have)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.react import ReActOutputParser
from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CitationBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from soma_engine.teacher import estimate_tokens
from soma_engine.types import Usage

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


REACT_MARKERS = ("Action Input:", "Thought:")  # in the format instructions of ReActAgent's system prompt


def is_react(messages: Sequence[ChatMessage]) -> bool:
    """Whether the call is a ReAct agent's (its system prompt describes the ReAct format)."""
    return any(m.role == MessageRole.SYSTEM and all(k in (m.content or "") for k in REACT_MARKERS) for m in messages)


def react_step(text: str) -> None:
    """A ReAct step or it does not hold up: a surrogate answer in another shape is served by
    the teacher (LlamaIndex's parser alone reads any text as a final answer)."""
    if not text.lstrip().startswith("Thought:"):
        raise ValueError("not a ReAct step: it does not start with 'Thought:'")
    ReActOutputParser().parse(text.strip(), is_streaming=False)


def usage_of(resp: Any) -> Usage | None:
    """The token usage a response reports: OpenAI-style counts in ``additional_kwargs``
    (as LlamaIndex's integrations put them), else a ``usage`` in ``raw``."""
    sources: list[Any] = [getattr(resp, "additional_kwargs", None) or {}]
    raw = getattr(resp, "raw", None)
    if isinstance(raw, dict):
        sources.append(raw.get("usage"))
    elif raw is not None:
        sources.append(getattr(raw, "usage", None))
    for src in sources:
        if src is None:
            continue
        get = src.get if isinstance(src, dict) else (lambda k, s=src: getattr(s, k, None))
        for i_key, o_key in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
            i, o = get(i_key), get(o_key)
            if isinstance(i, int) or isinstance(o, int):
                return Usage(int(i or 0), int(o or 0))
    return None


def token_counts(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": int(usage.input_tokens),
        "completion_tokens": int(usage.output_tokens),
        "total_tokens": int(usage.input_tokens + usage.output_tokens),
    }


def prompt_estimate(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content or "") for m in messages)


def final_teacher_message(last: ChatResponse | None, deltas: str) -> ChatResponse:
    """The teacher's whole answer after its stream: the last chunk (LlamaIndex streams are
    cumulative), or the joined deltas when a teacher streams only deltas."""
    if last is None:
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=""), delta="")
    if (
        not (last.message.content or "")
        and deltas
        and not any(isinstance(b, ToolCallBlock) for b in last.message.blocks)
    ):
        message = last.message.model_copy(update={"blocks": [TextBlock(text=deltas)]})
        return last.model_copy(update={"message": message})
    return last
