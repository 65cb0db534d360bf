"""One LlamaIndex call's turn: its state (tools, how a surrogate answer is checked) and the
responses it gives: surrogate answers, streamed pieces, forwarded teacher chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, TextBlock, ToolCallBlock

from soma_engine.tools import ParsedOutput, StopFilter, check_tool_output
from soma_engine.types import Reply, Usage

from . import _core
from ._core import surrogate_name
from .llama_index_messages import token_counts


@dataclass(kw_only=True)
class Turn(_core.Turn):
    messages: list[ChatMessage]
    tools: list[Any] | None
    tool_required: bool
    parallel: bool
    choice_arg: Any
    teacher_kwargs: dict[str, Any]
    output_check: Callable[[str], Any] | None
    usage: Usage | None = None

    @property
    def validates(self) -> bool:
        return bool(self.tools) or self.output_check is not None

    def check(self, text: str) -> ParsedOutput | None:
        """Validate the surrogate's answer (tool calls, ``output_check``); raises when it
        does not hold up, and the engine then has the teacher serve the turn."""
        parsed = None
        if self.tools:
            parsed = check_tool_output(text, self.surrogate_tools, self.choice)
            if not self.parallel and len(parsed.tool_calls) > 1:
                parsed.tool_calls = parsed.tool_calls[:1]  # as LlamaIndex's force_single_tool_call
        if self.output_check is not None and not (parsed and parsed.tool_calls):
            self.output_check(parsed.content if parsed is not None else text.strip())
        return parsed


def partial_meta(turn: Turn, served_by: str) -> dict[str, Any]:
    if turn.route is None:
        return {"served_by": served_by, "tracked": False}
    return {
        "served_by": served_by,
        "session_id": turn.route.key.session_id,
        "namespace": turn.route.key.namespace,
        "turn": turn.route.turn,
        "partial": True,
    }


def piece(turn: Turn) -> Callable[[str, str], ChatResponse]:
    return lambda sent, delta: partial_response(turn, "surrogate", sent, delta)


def surrogate_final(turn: Turn) -> Callable[[Reply, str, StopFilter], ChatResponse]:
    def final(reply: Reply, sent: str, filt: StopFilter) -> ChatResponse:
        return surrogate_response(turn, reply, streamed=None if turn.buffered else (sent, filt))

    return final


def partial_response(turn: Turn, served_by: str, content: str, delta: str) -> ChatResponse:
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=content),
        delta=delta,
        additional_kwargs={"soma": partial_meta(turn, served_by)},
    )


def forward(turn: Turn, resp: ChatResponse) -> ChatResponse:
    """A teacher chunk as ours, marked as the teacher's (for the tool-call reader)."""
    extra = {**(resp.additional_kwargs or {}), "soma": partial_meta(turn, "teacher")}
    return resp.model_copy(update={"additional_kwargs": extra})


def _surrogate_parts(turn: Turn, reply: Reply) -> tuple[str, list[ToolCallBlock], str]:
    text, finish, blocks = reply.text.strip(), reply.finish_reason, []
    if turn.tools and turn.choice.mode != "none":
        parsed = turn.check(reply.text)
        assert parsed is not None
        text = parsed.content
        blocks = [
            ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=c.arguments) for c in parsed.tool_calls
        ]
        if blocks:
            finish = "tool_calls"
    return text, blocks, finish


def surrogate_response(turn: Turn, reply: Reply, *, streamed: tuple[str, StopFilter] | None = None) -> ChatResponse:
    text, calls, finish = _surrogate_parts(turn, reply)
    if streamed is None:
        delta = text
    else:
        sent, filt = streamed
        delta = filt.flush()
        text = sent + delta
    blocks: list[Any] = [TextBlock(text=text)] if text or not calls else []
    counts = token_counts(reply.usage)
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, blocks=[*blocks, *calls]),
        delta=delta,
        raw={"model": surrogate_name(turn.engine), "finish_reason": finish, "usage": counts},
        additional_kwargs={**counts, "soma": dict(reply.soma)},
    )
