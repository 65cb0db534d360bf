"""SessionStore protocol and the state a session keeps between turns and restarts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..types import Phase, SessionKey, TurnRecord

COUNTERS = (
    "teacher_calls",
    "teacher_input_tokens",
    "teacher_output_tokens",
    "surrogate_calls",
    "surrogate_input_tokens",
    "surrogate_output_tokens",
    "audit_calls",
    "audit_input_tokens",
    "audit_output_tokens",
    "probe_calls",
    "fallbacks",
    "adaptations",
    "adoptions",
    "rollbacks",
    "resumes",
    "teacher_latency_ms",
    "surrogate_latency_ms",
    "adaptation_seconds",
)


REQUESTS_KEPT = 64  # request ids remembered per session (client retries come within a few turns)


class StoreError(RuntimeError):
    pass


class LockTimeout(StoreError):
    pass


class SessionGone(StoreError):
    """The session does not exist (never created, deleted or expired) and the writer asked
    not to create it (``session(..., create=False)``), or it was deleted while held."""


@dataclass
class SessionState:
    key: str  # SessionKey.digest
    namespace: str
    agent: str
    session_id: str
    phase: str = Phase.WARM.value
    turn_count: int = 0
    adapter: dict[str, Any] | None = None  # AdapterRef.to_dict()
    adapter_version: int = 0
    # AdapterRef.to_dict() of a shared adapter this warm session was refused: its own
    # adaptation starts from those weights (AdapterRegistry, share != "none").
    donor: dict[str, Any] | None = None
    adapt_from: int = 0  # turns after this one form the current warm window
    next_adapt_at: int = 0  # adapt once turn_count reaches this (0: after warm_window turns)
    locality: dict[str, Any] | None = None
    # {"adapter", "locality", "turn"} of the adapter a locality rollback set aside; the session
    # resumes it when its queries return to that topic (gate.resume_threshold).
    parked: dict[str, Any] | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    job: dict[str, Any] | None = None
    counters: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    expires: float = 0.0
    # Recent request ids -> turn (``SomaEngine.chat(request_id=...)``), the last REQUESTS_KEPT.
    requests: dict[str, int] = field(default_factory=dict)
    # Fingerprinted sessions: {"n": messages, "digest": types.transcript_digest} of the
    # conversation through the last answer; a later turn must start with it.
    transcript: dict[str, Any] | None = None
    # {"turn", "n", "digest"} of the latest stored teacher context: the next one that starts
    # with it is stored as a delta (TurnRecord.base_turn).
    last_context: dict[str, Any] | None = None
    pending: list[TurnRecord] = field(default_factory=list, repr=False)

    @classmethod
    def new(cls, key: SessionKey, ttl: float) -> SessionState:
        now = time.time()
        return cls(
            key=key.digest,
            namespace=key.namespace,
            agent=key.agent,
            session_id=key.session_id,
            created=now,
            updated=now,
            expires=now + ttl,
        )

    def add(self, counter: str, value: float = 1) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + value

    def add_turn(self, record: TurnRecord) -> TurnRecord:
        """Number the turn and queue it; the store writes it with the state, atomically."""
        self.turn_count += 1
        record.turn = self.turn_count
        self.pending.append(record)
        if record.request_id:
            self.requests[record.request_id] = record.turn
            for old in list(self.requests)[:-REQUESTS_KEPT]:
                del self.requests[old]
        return record

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("pending")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionState:
        state = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "pending"})
        for c in COUNTERS:
            state.counters.setdefault(c, 0)
        return state


def expand_contexts(records: list[TurnRecord], load: Callable[[int], TurnRecord | None]) -> list[TurnRecord]:
    """Turn records as stored -> full contexts: a delta record's ``messages`` joined to its
    base turn's context (``load(turn)`` reads a base outside ``records``)."""
    by_turn = {r.turn: r for r in records}
    full: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        chain: list[TurnRecord] = []
        r: TurnRecord | None = record
        while r is not None and r.turn not in full and r.base_turn is not None:
            chain.append(r)
            r = by_turn.get(r.base_turn) or load(r.base_turn)
            if r is not None:
                by_turn.setdefault(r.turn, r)
        prefix = [] if r is None else full.get(r.turn, r.messages)
        if r is not None:
            full[r.turn] = prefix
        for link in reversed(chain):
            prefix = [*prefix, *link.messages]
            full[link.turn] = prefix
    for record in records:
        record.messages = full.get(record.turn, record.messages)
    return records


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. Implementations: ``SQLiteStore`` (embedded), ``RedisStore``."""

    def get(self, key: SessionKey) -> SessionState | None: ...

    def session(
        self, key: SessionKey, ttl: float, timeout: float = 30.0, *, create: bool = True
    ) -> AbstractContextManager[SessionState]:
        """Lock the session, load (or create) its state, and on clean exit write the state
        and its pending turns atomically. Turns of one session serialise; different
        sessions do not wait for each other.

        ``create=False`` is for every writer that is not a new session's first turn (jobs,
        audits, rollbacks, shadow steps, adoptions, a later turn): a missing session raises
        :class:`SessionGone` instead of being created, so a delete is final. A delete while
        the section is held fences the holder: its write raises :class:`SessionGone`."""
        ...

    def turns(self, key: SessionKey, since: int = 0, limit: int | None = None) -> list[TurnRecord]: ...

    def delete(self, key: SessionKey) -> bool: ...

    def purge_expired(self, now: float | None = None) -> list[SessionState]: ...

    def list_sessions(self, namespace: str | None = None) -> Iterator[SessionState]: ...

    def close(self) -> None: ...
