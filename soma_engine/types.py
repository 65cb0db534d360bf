"""Plain data types shared by the engine, the stores and the integrations."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any, Literal

ROLES = ("system", "user", "assistant", "tool")
ROLE_ALIASES = {"human": "user", "ai": "assistant", "developer": "system", "model": "assistant"}


class Phase(str, Enum):
    """Session life cycle: warm -> adapting -> serving -> rolled_back -> adapting ...;
    ``rejected`` when the gate refused (teacher keeps serving, retried after more turns)."""

    WARM = "warm"
    ADAPTING = "adapting"
    SERVING = "serving"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"


Served = Literal["teacher", "surrogate"]


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Message:
        return cls(
            role=d["role"],
            content=d.get("content") or "",
            tool_calls=tuple(d.get("tool_calls") or ()),
            tool_call_id=d.get("tool_call_id"),
            name=d.get("name"),
        )


class NonTextContent(ValueError):
    """A message holds content the surrogate cannot read (images, audio...)."""


def normalize_messages(messages: Iterable[Any]) -> list[Message]:
    """Accept OpenAI-style dicts or objects with ``.role``/``.content``; validate them.

    Raises ``ValueError`` naming the problem for an empty list, an unknown role, or a
    conversation that does not end with the user's turn (or a tool result).
    Non-text content parts raise :class:`NonTextContent` (a ``ValueError``) so that the
    caller can serve the turn by the teacher.
    """
    if messages is None or isinstance(messages, (str, bytes)):
        raise ValueError("messages must be a list of {'role', 'content'} items, not a string")
    out: list[Message] = []
    non_text = False
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            role = ROLE_ALIASES.get(m.role.lower(), m.role.lower()) if isinstance(m.role, str) else None
            if role not in ROLES:
                raise ValueError(f"message {i} has unknown role {m.role!r}; expected one of {', '.join(ROLES)}")
            if not isinstance(m.content, str):
                raise ValueError(f"message {i} content must be text")
            out.append(m if role == m.role else replace(m, role=role))
            continue
        if isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
            extra = m
        else:
            role, content = getattr(m, "role", None), getattr(m, "content", None)
            extra = {}
        if not isinstance(role, str):
            raise ValueError(f"message {i} has no 'role'; expected one of {', '.join(ROLES)}")
        _check_extras(i, extra)
        role = ROLE_ALIASES.get(role.lower(), role.lower())
        if role not in ROLES:
            raise ValueError(f"message {i} has unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if content is None:
            content = ""
        if isinstance(content, list):
            texts = []
            for part in content:
                if isinstance(part, str):
                    texts.append(part)
                elif isinstance(part, Mapping) and part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                else:
                    non_text = True
            content = "\n".join(texts)
        elif not isinstance(content, str):
            raise ValueError(f"message {i} content must be text or a list of content parts")
        out.append(
            Message(
                role=role,
                content=content,
                tool_calls=tuple(extra.get("tool_calls") or ()),
                tool_call_id=extra.get("tool_call_id"),
                name=extra.get("name"),
            )
        )
    if not out:
        raise ValueError("messages is empty: pass the conversation so far, ending with the user's turn")
    if out[-1].role not in ("user", "tool"):
        raise ValueError(f"the last message has role {out[-1].role!r}: the conversation must end with the user's turn")
    if non_text:
        raise NonTextContent("a message holds non-text content (image, audio or file parts)")
    return out


def _check_extras(i: int, extra: Mapping[str, Any]) -> None:
    """The optional fields a turn record stores: checked before the teacher is paid, so a
    malformed message fails here and not inside the turn's write."""
    calls = extra.get("tool_calls")
    if calls is not None and (not isinstance(calls, (list, tuple)) or not all(isinstance(c, Mapping) for c in calls)):
        raise ValueError(f"message {i} 'tool_calls' must be a list of objects, not {type(calls).__name__}")
    for name in ("tool_call_id", "name"):
        if extra.get(name) is not None and not isinstance(extra[name], str):
            raise ValueError(f"message {i} {name!r} must be a string, not {type(extra[name]).__name__}")


def transcript_digest(messages: list[Message]) -> str:
    """Digest of a conversation's messages (role and text), to tell whether a stored
    transcript is a prefix of an incoming conversation."""
    return hash_id(*(f"{m.role}\n{m.content.strip()}" for m in messages))


def messages_digest(messages: list[dict[str, Any]]) -> str:
    """Exact digest of stored message dicts (a delta's base must match byte for byte)."""
    return hash_id(*(json.dumps(m, sort_keys=True, default=str) for m in messages))


def last_query(messages: list[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return m.content
    return messages[-1].content


@dataclass(frozen=True)
class SessionKey:
    """Namespace, agent and the caller's session id. ``digest`` is the only form used in
    storage keys and file paths, so a hostile id (``../../etc``, NUL bytes, 10 kB) is inert."""

    namespace: str
    session_id: str
    agent: str = ""

    def __post_init__(self) -> None:
        for name in ("namespace", "session_id", "agent"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string")
        if not self.namespace:
            raise ValueError("namespace must be a non-empty string")
        if not self.session_id:
            raise ValueError("session_id must be a non-empty string")

    @property
    def digest(self) -> str:
        return hash_id(self.namespace, self.agent, self.session_id)

    @property
    def namespace_digest(self) -> str:
        return hash_id(self.namespace)


def hash_id(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()[:40]


def fingerprint(messages: list[Message]) -> str:
    """Session id of last resort: the conversation's opening (system prompt + first user
    message), so every later turn of the same conversation maps to the same session. Two
    users with the same opening get the same fingerprint: ``SomaEngine.route`` keeps them
    apart by checking the stored transcript (see ``SomaEngine.key``)."""
    first = next((i for i, m in enumerate(messages) if m.role == "user"), len(messages))
    system = "\n".join(m.content for m in messages[:first] if m.role == "system")  # the opening's only
    first_user = messages[first].content if first < len(messages) else ""
    return "fp-" + hash_id(system, first_user)[:32]


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class TurnRecord:
    """One turn of a session. ``messages`` (the context S_t = D_{t-1} + q_t as the app sent
    it) is kept for teacher turns, which are the training and acceptance data. Stored as a
    delta: with ``base_turn`` set, ``messages`` holds only what follows that earlier teacher
    turn's context (the stores join them on read, so readers always see the full S_t)."""

    turn: int
    served_by: Served
    query: str
    answer: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    phase: str = Phase.WARM.value
    fallback: str | None = None
    gap: float | None = None
    locality: float | None = None
    adapter_id: str | None = None
    # "base": a surrogate turn served by the base model without an adapter (the permissive gate
    # let the unadapted surrogate serve; adapters.BASE_SURROGATE), never reported as an adapter.
    served_by_detail: str | None = None
    created: float = field(default_factory=time.time)
    request_id: str | None = None  # the client's idempotency key (``SomaEngine.chat(request_id=...)``)
    base_turn: int | None = None  # stored as a delta after this turn's context (see above)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TurnRecord:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def context(self) -> list[Message]:
        return [Message.from_dict(m) for m in self.messages]


@dataclass
class Route:
    """Where one turn goes. Returned by ``SomaEngine.route``; hand it back to
    ``record_teacher`` (teacher path) or ``generate``/``stream`` (surrogate path)."""

    key: SessionKey
    target: Served
    messages: list[Message]
    phase: Phase
    turn: int
    reason: str = ""
    adapter_id: str | None = None
    locality: float | None = None
    tools: list[dict[str, Any]] | None = None
    fallback: str | None = None  # why the surrogate could not serve, when it could not
    audit: bool = False  # borderline locality: audit this surrogate turn
    drift: dict[str, Any] | None = None  # drift monitor state after this turn's locality check
    raw: Any = None  # the caller's messages when they hold non-text parts (teacher only)
    started: float = field(default_factory=time.perf_counter)
    # Called with the surrogate's text before the turn is recorded; raising (bad tool call,
    # invalid structured output) turns the answer into a SurrogateError: the teacher serves.
    validate: Callable[[str], Any] | None = None
    existed: bool = False  # the session existed when routed: its write must not create it again
    fingerprinted: bool = False  # no session id was given: the key is the opening's fingerprint
    request_id: str | None = None  # the client's idempotency key: the same id twice gives one turn
    replay: TurnRecord | None = None  # the turn already recorded under ``request_id``

    @property
    def teacher_messages(self) -> Any:
        return self.raw if self.raw is not None else self.messages


@dataclass
class Reply:
    text: str
    served_by: Served
    usage: Usage
    soma: dict[str, Any]
    finish_reason: str = "stop"


@dataclass
class SessionView:
    session_id: str
    namespace: str
    agent: str
    phase: Phase
    turns: list[TurnRecord]
    metrics: dict[str, Any]
    adapter_id: str | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def served_by(self) -> list[Served]:
        return [t.served_by for t in self.turns]
