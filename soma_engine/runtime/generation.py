"""What one generation is made of, apart from the model: the request, the chat-template message
dicts, the ``generate`` keyword arguments, the cut of a row's ids into a :class:`Generation`, left
padding for a batch, and the streamer that turns generated ids into text pieces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..adapters import AdapterRef
from ..types import Message

__all__ = [
    "Generation",
    "GenerationRequest",
    "PieceStreamer",
    "finish_generation",
    "generate_kwargs",
    "left_padded",
    "template_dict",
]


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str
    token_ids: list[int] = field(default_factory=list, repr=False)  # the generated ids, EOS included


@dataclass
class GenerationRequest:
    messages: list[Message]
    adapter: AdapterRef | None
    max_new_tokens: int
    temperature: float
    tools: list[dict[str, Any]] | None
    stop: list[str] | None = None


def template_dict(m: Message) -> dict[str, Any]:
    """A message as the chat template takes it (tool calls in the OpenAI shape)."""
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        d["tool_calls"] = [
            {"type": "function", "id": c.get("id"), "function": {"name": c.get("name"), "arguments": c.get("args", {})}}
            for c in m.tool_calls
        ]
    if m.role == "tool" and m.tool_call_id:
        d["tool_call_id"] = m.tool_call_id
    return d


def generate_kwargs(
    tokenizer: Any,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    stop: list[str] | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """``model.generate`` arguments: greedy at temperature 0, else nucleus sampling; ``options``
    (the runtime's ``generation_options``) override."""
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "max_new_tokens": max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=0.95)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if stop:  # end generation at a stop sequence (the caller cuts the text at it)
        kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
    return {**kwargs, **options}


def finish_generation(tokenizer: Any, new: list[int], input_tokens: int, max_new_tokens: int) -> Generation:
    """A row's Generation from its generated ids, cut at its own limit and first EOS (a
    batch runs to the longest row's limit and pads finished rows)."""
    eos = tokenizer.eos_token_id
    new = new[:max_new_tokens]
    if eos in new:
        new = new[: new.index(eos) + 1]
    finish = "length" if len(new) >= max_new_tokens and new[-1] != eos else "stop"
    text = tokenizer.decode(new, skip_special_tokens=True).strip()
    return Generation(text, input_tokens, len(new), finish, new)


def left_padded(rows: list[list[int]], pad: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of left-padded rows: every row's last prompt token sits at
    the same position, where decoding starts."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows], device=device)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows], device=device)
    return input_ids, mask


class PieceStreamer:
    """transformers streamer that decodes generated ids incrementally and emits text pieces
    token by token, holding back incomplete UTF-8 sequences."""

    def __init__(self, tokenizer: Any, emit: Callable[[Any], None]) -> None:
        self.tok = tokenizer
        self.emit = emit
        self.ids: list[int] = []
        self.sent = 0
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first pushes the prompt ids
            self.prompt_seen = True
            return
        self.ids.extend(int(x) for x in value.reshape(-1).tolist())
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            self._emit_from(text)

    def _emit_from(self, text: str) -> None:
        piece = text[self.sent :]
        if piece:
            self.sent = len(text)
            self.emit(piece)

    def end(self) -> None:
        return None

    def flush(self) -> None:
        self._emit_from(self.tok.decode(self.ids, skip_special_tokens=True).rstrip("\ufffd"))
