"""Stand-in teachers for tests, benchmarks and the demo: the app's remote model, offline.

Each is an engine teacher (``list[Message]`` or dicts -> ``(text, Usage)``) with honest usage:
``count_prompt`` of the whole history it is given (what an API bills as input) and
``count_answer`` of its answer. ``soma_integrations.testing`` wraps them as a LangChain chat
model and a LlamaIndex LLM.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from ..types import Usage

Counter = Callable[[list[dict[str, str]]], int]


def word_count(msgs: list[dict[str, str]]) -> int:
    """A stand-in tokenizer (whitespace words) where no real one is at hand."""
    return sum(len(m["content"].split()) for m in msgs)


def as_dicts(messages: Sequence[Any]) -> list[dict[str, str]]:
    return [m if isinstance(m, dict) else {"role": m.role, "content": m.content or ""} for m in messages]


class _Billed(ABC):
    """Usage accounting shared by the stand-ins."""

    def __init__(self, count_prompt: Counter, count_answer: Callable[[str], int] | None) -> None:
        self.count_prompt = count_prompt
        self.count_answer = count_answer or (lambda text: word_count([{"role": "assistant", "content": text}]))
        self.calls = 0

    @abstractmethod
    def answer(self, messages: Sequence[Any]) -> str: ...

    def usage(self, messages: Sequence[Any], text: str) -> Usage:
        return Usage(self.count_prompt(as_dicts(messages)), self.count_answer(text))

    def __call__(self, messages: Sequence[Any]) -> tuple[str, Usage]:
        text = self.answer(messages)
        self.calls += 1
        return text, self.usage(messages, text)


class ScriptedTeacher(_Billed):
    """A deterministic persona teacher: the scripted answer to each query (``fallback`` for a
    query not in the script), instantly."""

    def __init__(
        self,
        script: list[tuple[str, str]],
        count_prompt: Counter = word_count,
        count_answer: Callable[[str], int] | None = None,
        fallback: str = "Let me think about that and keep it short.",
    ) -> None:
        super().__init__(count_prompt, count_answer)
        self.answers = dict(script)
        self.fallback = fallback

    def answer(self, messages: Sequence[Any]) -> str:
        query = next((m["content"] for m in reversed(as_dicts(messages)) if m["role"] == "user"), "")
        return self.answers.get(query, self.fallback)


class ReplayTeacher(_Billed):
    """Replays a recorded conversation: turn t (the number of user messages it is given) gets
    the recorded answer of turn t, whoever asks (the live turn or a later audit of it).

    ``turns``: ``[(user message, recorded answer), …]``, e.g. a ShareGPT conversation's
    ``turns``. With ``check_query`` (default) the last user message must be the recorded one,
    so a replay that drifted out of step fails loudly instead of answering another question.
    """

    def __init__(
        self,
        turns: Sequence[tuple[str, str]],
        count_prompt: Counter = word_count,
        count_answer: Callable[[str], int] | None = None,
        *,
        check_query: bool = True,
        name: str = "recorded-answers",
    ) -> None:
        if not turns:
            raise ValueError("ReplayTeacher needs at least one recorded (user, answer) turn")
        super().__init__(count_prompt, count_answer)
        self.turns = [(str(q), str(a)) for q, a in turns]
        self.check_query = check_query
        self.name = name

    @classmethod
    def from_conversation(cls, conversation: Any, **kwargs: Any) -> ReplayTeacher:
        """From anything with ``turns`` and ``id`` (a :class:`~soma_engine.datasets.sharegpt.Conversation`)."""
        return cls(conversation.turns, name=f"sharegpt:{conversation.id}", **kwargs)

    @property
    def queries(self) -> list[str]:
        return [q for q, _ in self.turns]

    def turn_of(self, messages: Sequence[Any]) -> int:
        """The 1-based turn a conversation is at: its number of user messages."""
        return sum(m["role"] == "user" for m in as_dicts(messages))

    def answer(self, messages: Sequence[Any]) -> str:
        msgs = as_dicts(messages)
        turn = self.turn_of(msgs)
        if not 1 <= turn <= len(self.turns):
            raise ValueError(
                f"{self.name} has {len(self.turns)} recorded turns; a conversation with {turn} user messages "
                "has no recorded answer"
            )
        query, answer = self.turns[turn - 1]
        last = next(m["content"] for m in reversed(msgs) if m["role"] == "user")
        if self.check_query and last.strip() != query.strip():
            raise ValueError(
                f"{self.name}: turn {turn} was recorded for {query[:60]!r}, not {last[:60]!r} "
                "(pass check_query=False to answer by position alone)"
            )
        return answer


def teacher_only_tokens(teacher: _Billed, system: str, queries: list[str]) -> list[int]:
    """Per-turn tokens had the teacher served every turn: the whole history with ITS answers
    re-read each turn, plus its answer (exact for a deterministic teacher)."""
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    out = []
    for q in queries:
        history.append({"role": "user", "content": q})
        text = teacher.answer(history)
        out.append(teacher.usage(history, text).total_tokens)
        history.append({"role": "assistant", "content": text})
    return out
