"""One LangChain call's turn: its state (what it was asked with, how a surrogate answer is
checked), the call settings SomaChatModel knows, and the messages a surrogate reply becomes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk

from soma_engine.teacher import estimate_tokens
from soma_engine.tools import StopFilter, check_json_output, check_tool_output, truncate_at_stop
from soma_engine.types import Reply, Usage

from . import _core
from ._core import surrogate_name
from .langchain_messages import usage_metadata


@dataclass(kw_only=True)
class Turn(_core.Turn):
    messages: list[BaseMessage]
    stop: list[str] | None
    tools: list[dict[str, Any]] | None
    tool_choice: Any
    bind_kwargs: dict[str, Any]
    call_kwargs: dict[str, Any]
    json_mode: dict[str, Any] | None
    configurable: dict[str, Any] | None = None
    usage_estimate: UsageMetadata | None = None

    @property
    def validates(self) -> bool:
        return bool(self.tools) or self.json_mode is not None

    def check(self, text: str) -> Any:
        """Validate the surrogate's answer (tools, JSON mode); raises on invalid output."""
        text = truncate_at_stop(text, self.stop)
        if self.tools:
            return check_tool_output(
                text,
                self.surrogate_tools,
                self.choice,
                parallel=self.bind_kwargs.get("parallel_tool_calls", True) is not False,
            )
        if self.json_mode is not None:
            return check_json_output(text, self.json_mode.get("schema"))
        return text


SETTINGS = ("temperature", "max_tokens", "logprobs", "top_logprobs")
TEACHER_ONLY = ("model", "logprobs", "top_logprobs", "response_format")  # asks for the teacher itself
CLIENT_SETTINGS = {"timeout", "request_timeout", "max_retries", "api_key", "base_url", "organization", "rate_limiter"}


def check_n(value: int | None) -> int | None:
    if value not in (None, 1):
        raise ValueError(
            f"n={value}: SomaChatModel answers each turn once (a turn is one recorded answer). "
            "Call the teacher directly for several candidates."
        )
    return value


def estimate_usage(turn: Turn, text: str) -> UsageMetadata:
    prompt = sum(estimate_tokens(str(m.text)) for m in turn.messages)
    return usage_metadata(Usage(prompt, estimate_tokens(text)))


# ----------------------------------------------------------------------------- surrogate replies


def _surrogate_parts(turn: Turn, reply: Reply) -> tuple[str, list[dict[str, Any]], str]:
    text = truncate_at_stop(reply.text, turn.stop).strip()
    finish = "stop" if text != reply.text.strip() else reply.finish_reason
    calls: list[dict[str, Any]] = []
    if turn.tools and turn.choice.mode != "none":
        parsed = turn.check(reply.text)
        text = parsed.content
        calls = [{"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"} for c in parsed.tool_calls]
        if calls:
            finish = "tool_calls"
    return text, calls, finish


def _surrogate_meta(turn: Turn, reply: Reply, finish: str) -> dict[str, Any]:
    return {
        "model_name": surrogate_name(turn.engine),
        "model_provider": "soma",
        "finish_reason": finish,
        "soma": dict(reply.soma),
    }


def surrogate_message(turn: Turn, reply: Reply) -> AIMessage:
    text, calls, finish = _surrogate_parts(turn, reply)
    return AIMessage(
        content=text,
        tool_calls=calls,
        usage_metadata=usage_metadata(reply.usage),
        response_metadata=_surrogate_meta(turn, reply, finish),
    )


def surrogate_final(turn: Turn) -> Callable[[Reply, str, StopFilter], ChatGenerationChunk]:
    return lambda reply, sent, filt: ChatGenerationChunk(message=surrogate_final_chunk(turn, reply, sent, filt))


def surrogate_final_chunk(turn: Turn, reply: Reply, sent: str, filt: StopFilter) -> AIMessageChunk:
    text, calls, finish = _surrogate_parts(turn, reply)
    content = text if turn.buffered else filt.flush()
    streamed = (sent + content).strip()
    if not turn.buffered and not calls and text.startswith(streamed):
        # text the token streamer held back (an incomplete UTF-8 sequence) is in the reply
        content += text[len(streamed) :]
    return AIMessageChunk(
        content=content,
        tool_call_chunks=[
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type": "tool_call_chunk"}
            for i, c in enumerate(calls)
        ],
        usage_metadata=usage_metadata(reply.usage),
        response_metadata=_surrogate_meta(turn, reply, finish),
        chunk_position="last",
    )
