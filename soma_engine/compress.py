"""Compressed context S~_t (Sec. 3.3): a fixed-budget extractive summary of older turns plus
the last K turns verbatim.

The summary picks whole sentences from older turns, scored by how much their content words
recur in the recent turns and the current query (what the conversation still talks
about), with a bonus for the opening turn (early turns carry the task and constraints,
Sec. 2.2). Sentences are kept in their original order, labelled by speaker, until the
``summary_tokens`` budget (counted by the surrogate's tokenizer) is spent.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .types import Message

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[A-Za-z0-9À-ɏ']+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "not",
        "no",
        "so",
        "can",
        "could",
        "would",
        "should",
        "will",
        "what",
        "which",
        "who",
        "how",
        "when",
        "where",
        "why",
        "please",
        "thanks",
        "thank",
        "yes",
        "ok",
        "okay",
        "just",
        "about",
        "than",
        "then",
        "there",
        "here",
        "also",
    ]
)
SUMMARY_HEADER = "Summary of the earlier conversation:"


@dataclass
class _Sentence:
    turn: int
    order: int
    speaker: str
    text: str
    score: float = 0.0


def split_turns(messages: list[Message]) -> tuple[list[Message], list[list[Message]]]:
    """Leading system messages, then turns: each starts at a user message."""
    system: list[Message] = []
    turns: list[list[Message]] = []
    for m in messages:
        if m.role == "system" and not turns:
            system.append(m)
        elif m.role == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return system, turns


def _words(text: str) -> list[str]:
    return [w for w in (x.lower() for x in _WORD.findall(text)) if w not in _STOP and len(w) > 1]


def extractive_summary(
    older: list[list[Message]],
    focus: str,
    budget: int,
    count_tokens: Callable[[str], int],
) -> str:
    """Pick sentences of ``older`` turns within ``budget`` tokens, most relevant to ``focus``."""
    if budget <= 0 or not older:
        return ""
    sentences: list[_Sentence] = []
    for t, turn in enumerate(older):
        for m in turn:
            if m.role not in ("user", "assistant") or not m.content.strip():
                continue
            speaker = "User" if m.role == "user" else "Assistant"
            for s in _SENTENCE.split(m.content.strip()):
                if s.strip():
                    sentences.append(_Sentence(t, len(sentences), speaker, s.strip()))
    if not sentences:
        return ""
    doc_freq = Counter(w for s in sentences for w in set(_words(s.text)))
    focus_words = Counter(_words(focus))
    n = len(sentences)
    for s in sentences:
        words = _words(s.text)
        if not words:
            continue
        idf = {w: math.log(1 + n / doc_freq[w]) for w in set(words)}
        relevance = sum(idf[w] * (1 + focus_words.get(w, 0)) for w in set(words)) / math.sqrt(len(words))
        s.score = relevance * (1.5 if s.turn == 0 else 1.0) * (1.2 if s.speaker == "User" else 1.0)
    chosen: list[_Sentence] = []
    used = count_tokens(SUMMARY_HEADER)
    for s in sorted(sentences, key=lambda x: -x.score):
        line = f"{s.speaker}: {s.text}"
        cost = count_tokens(line) + 1
        if used + cost > budget:
            continue
        chosen.append(s)
        used += cost
    if not chosen:
        return ""
    lines = [f"{s.speaker}: {s.text}" for s in sorted(chosen, key=lambda x: x.order)]
    return "\n".join([SUMMARY_HEADER, *lines])


def compress_context(
    messages: list[Message],
    *,
    recent_turns: int,
    summary_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[Message]:
    """S~_t: system prompt (+ summary of older turns), the last ``recent_turns`` complete
    turns and the current turn, verbatim."""
    system, turns = split_turns(messages)
    if not turns:
        return list(messages)
    current, previous = turns[-1], turns[:-1]
    keep = previous[max(0, len(previous) - recent_turns) :] if recent_turns > 0 else []
    older = previous[: len(previous) - len(keep)]
    focus = " ".join(m.content for t in [*keep, current] for m in t)
    summary = extractive_summary(older, focus, summary_tokens, count_tokens)
    head: list[Message] = []
    system_text = "\n\n".join(m.content for m in system if m.content)
    if summary:
        system_text = f"{system_text}\n\n{summary}" if system_text else summary
    if system_text:
        head.append(Message(role="system", content=system_text))
    return head + [m for t in keep for m in t] + current
