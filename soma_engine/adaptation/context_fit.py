"""How a training or mining context is cut to fit ``lora.max_seq_len``.

The oldest conversation tokens go first, but the leading system message and the newest message
(the question being answered) stay whenever the two fit together, as LangChain's
``trim_messages(strategy="last", include_system=True)`` keeps them. The system message holds
what later answers are read from (a RAG app's retrieved documents, the app's instructions,
S~_t's summary); cutting it from the left would train the adapter to answer without it while
the served context, never cut, has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["fit_prompt", "kept_ends"]


def fit_prompt(prompt: list[int], head: int, tail: int, room: int) -> list[int]:
    """``prompt`` cut to at most ``room`` tokens. When its first ``head`` tokens (the system
    message) and last ``tail`` tokens (the newest message) fit together, they stay and the
    tokens between lose their oldest first; otherwise (or ``head`` 0) the newest ``room``
    tokens stay."""
    room = max(0, room)
    if len(prompt) <= room:
        return prompt
    if head > 0 and head + tail <= room:
        return prompt[:head] + prompt[len(prompt) - (room - head) :]
    return prompt[len(prompt) - room :] if room else []


def _role(message: Any) -> str:
    return message["role"] if isinstance(message, dict) else message.role


def kept_ends(
    prompt: list[int], messages: Sequence[Any], render_ids: Callable[[list[Any]], list[int]]
) -> tuple[int, int]:
    """``(head, tail)`` for :func:`fit_prompt`: the tokens of ``prompt`` that render the leading
    system message(s) of ``messages``, and those after the rendering of all but the newest
    message. ``render_ids(messages)`` renders the chat template without a generation prompt.
    ``(0, 0)`` when there is no system message with a message after it, or when the template
    does not render them as token prefixes of ``prompt``."""
    n = 0
    while n < len(messages) and _role(messages[n]) == "system":
        n += 1
    if n == 0 or n == len(messages):
        return 0, 0
    head, before_newest = render_ids(list(messages[:n])), render_ids(list(messages[:-1]))
    if prompt[: len(head)] != head or prompt[: len(before_newest)] != before_newest:
        return 0, 0
    return len(head), len(prompt) - len(before_newest)
