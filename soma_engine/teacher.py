"""What a teacher F returns, read the same way everywhere: text, usage, and awaitables.

A teacher is any callable taking ``list[Message]`` and returning text, ``(text, usage)``, an
object with ``.content`` (LangChain's ``AIMessage``), or an awaitable of one of those.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from .types import Message, Usage


def estimate_tokens(text: str) -> int:
    """Rough count for teachers that report no usage (about 4 characters a token)."""
    return max(1, (len(text) + 3) // 4) if text else 0


def split_teacher_result(result: Any) -> tuple[str, Usage | dict[str, Any] | None]:
    """A teacher returns text, or (text, usage), or an object with ``.content``."""
    if isinstance(result, tuple) and len(result) == 2:
        return str(result[0]), result[1]
    if isinstance(result, str):
        return result, None
    content = getattr(result, "content", None)
    if isinstance(content, str):
        return content, getattr(result, "usage_metadata", None)
    raise TypeError(f"the teacher must return a string, got {type(result).__name__}")


def teacher_usage(usage: Usage | dict[str, Any] | None, messages: list[Any], text: str) -> Usage:
    """The teacher's reported usage (``Usage``, or an OpenAI/LangChain-style dict), else an estimate."""
    if isinstance(usage, Usage):
        return usage
    if isinstance(usage, dict) and ("input_tokens" in usage or "prompt_tokens" in usage):
        return Usage(
            int(usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0),
            int(usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0),
        )
    prompt = sum(estimate_tokens(getattr(m, "content", "") or "") for m in messages if isinstance(m, Message))
    return Usage(prompt, estimate_tokens(text), estimated=True)


def resolve_sync(result: Any) -> Any:
    """A teacher's answer in a thread without a running event loop (background audits,
    teacher probes): an awaitable is run to completion here. Inside a running loop it cannot
    be, so it is closed and ``RuntimeError`` raised."""
    if not inspect.isawaitable(result):
        return result
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wait(result))
    if inspect.iscoroutine(result):
        result.close()
    raise RuntimeError("an async teacher cannot be awaited from inside a running event loop")


async def _wait(awaitable: Any) -> Any:
    return await awaitable
