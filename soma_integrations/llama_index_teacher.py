"""The teacher's own call under SomaLLM: without callback handlers (our LLM event reports the
turn once) and with its instrumentation events tagged as the teacher's or an audit's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation.dispatcher import active_instrument_tags, instrument_tags
from llama_index.core.llms.llm import LLM

TEACHER_TAG = "soma.call"  # instrumentation tag on the teacher's own events: "teacher" or "audit"


def quiet(teacher: LLM) -> LLM:
    """The teacher without callback handlers: our LLM event carries the teacher's response
    and usage, so a handler counting LLM events (``TokenCountingHandler``) counts a teacher
    turn once. Its instrumentation events still fire, tagged ``soma.call="teacher"``."""
    return teacher.model_copy(update={"callback_manager": CallbackManager([])})


@contextlib.contextmanager
def teacher_tags(kind: str = "teacher") -> Iterator[None]:
    with instrument_tags({**(active_instrument_tags.get() or {}), TEACHER_TAG: kind}):
        yield
