"""A session's phases as one state machine: one function per edge; nothing else assigns ``phase``.

    warm ──start_job──> adapting ──start_serving (gate accepted, Thm 4.2 / Theorem 4.2)──> serving
      │                    └──reject (refused, no improvement, job failed)──> rejected
      └──start_serving (a shared adapter adopted)──> serving
    serving ──roll_back(park=)──> rolled_back ──start_job──> adapting ...
    rejected ──start_serving (shadow evaluation accepted)──> serving; ──reject (it stopped)──> rejected
    rolled_back | rejected ──resume (back on a parked adapter's topic)──> serving
    any ──discard_adapter (a corrupt adapter)──> rolled_back

``start_serving`` without an adapter serves the base surrogate (``adapters.BASE_SURROGATE``: the
permissive gate let an adaptation that learned nothing serve as the base, never as an adapter).

Each edge runs inside the session's locked write (``SessionStore.session``); the caller checks
that its view is still current (same job, same candidate) first. An edge from a phase it does not
leave raises :class:`ForbiddenTransition`. The state is stored as dicts (SQLite, Redis): the
typed records here convert to and from those dicts unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..adapters import BASE_SURROGATE, AdapterRef
from ..types import Phase
from .base import SessionState

DECISIONS_KEPT = 50  # decision records kept per session (gate decisions, looks, audits, rollbacks)


class ForbiddenTransition(RuntimeError):
    """An edge of the phase machine taken from a phase it does not start from (a bug)."""


class JobStatus(str, Enum):
    """``SessionState.job["status"]``: an adaptation job's life (adaptation.queue shows the fields)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SHADOW = "shadow"  # the candidate is in shadow evaluation (gate.mode="bound")


@dataclass
class JobRecord:
    """A session's job record; ``detail`` holds the status's own fields (queue id, shadow batch)."""

    status: JobStatus
    owner: str | None = None
    reason: str | None = None
    error: str | None = None
    seconds: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        named = {"owner": self.owner, "reason": self.reason, "error": self.error, "seconds": self.seconds}
        return {"status": self.status.value, **{k: v for k, v in named.items() if v is not None}, **self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRecord:
        named = ("owner", "reason", "error", "seconds")
        detail = {k: v for k, v in d.items() if k not in (*named, "status")}
        return cls(JobStatus(d["status"]), *(d.get(k) for k in named), detail=detail)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Parked:
    """The adapter a locality rollback set aside, with its locality bank, and the turn it was parked."""

    adapter: dict[str, Any]  # AdapterRef.to_dict()
    locality: dict[str, Any]  # SessionLocality.to_dict()
    turn: int

    def to_dict(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "locality": self.locality, "turn": self.turn}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Parked:
        return cls(d["adapter"], d["locality"], int(d["turn"]))


@dataclass(frozen=True)
class RollbackDecision:
    reason: str
    adapter_id: str | None
    turn: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "rollback",
            "rollback": self.reason,
            "adapter_id": self.adapter_id,
            "turn": self.turn,
            "time": time.time(),
        }


@dataclass(frozen=True)
class ResumeDecision:
    adapter_id: str | None
    parked_at: int
    resume_statistic: float
    turn: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "resume",
            "adapter_id": self.adapter_id,
            "parked_at": self.parked_at,
            "resume_statistic": round(self.resume_statistic, 4),
            "turn": self.turn,
            "time": time.time(),
        }


@dataclass(frozen=True)
class CorruptAdapterDecision:
    reason: str
    turn: int

    def to_dict(self) -> dict[str, Any]:
        return {"corrupt_adapter": self.reason, "turn": self.turn, "time": time.time()}


ALL = frozenset(Phase)
# Edge -> the phases it may start from.
ALLOWED: dict[str, frozenset[Phase]] = {
    # adapting: a job that died with its process is started again
    "start_job": frozenset({Phase.WARM, Phase.ROLLED_BACK, Phase.REJECTED, Phase.ADAPTING}),
    # warm: adoption; adapting: the gate accepted; rejected: shadow evaluation accepted
    "start_serving": frozenset({Phase.WARM, Phase.ADAPTING, Phase.REJECTED}),
    "roll_back": frozenset({Phase.SERVING}),
    "resume": frozenset({Phase.ROLLED_BACK, Phase.REJECTED}),
    # rejected: shadow evaluation stopped without accepting
    "reject": frozenset({Phase.ADAPTING, Phase.REJECTED}),
    "discard_adapter": ALL,
}
TARGET: dict[str, Phase] = {
    "start_job": Phase.ADAPTING,
    "start_serving": Phase.SERVING,
    "roll_back": Phase.ROLLED_BACK,
    "resume": Phase.SERVING,
    "reject": Phase.REJECTED,
    "discard_adapter": Phase.ROLLED_BACK,
}


def _move(st: SessionState, edge: str) -> None:
    phase = Phase(st.phase)
    if phase not in ALLOWED[edge]:
        allowed = ", ".join(sorted(p.value for p in ALLOWED[edge]))
        raise ForbiddenTransition(
            f"session {st.key[:12]}: {edge} is not allowed from phase {phase.value} (only from {allowed})"
        )
    st.phase = TARGET[edge].value


def push_decision(st: SessionState, record: dict[str, Any]) -> None:
    """Append a decision record, keeping the last ``DECISIONS_KEPT``; the latest gate decision
    (a record with ``accepted``) is never the one dropped."""
    kept = [*st.decisions, record]
    if len(kept) > DECISIONS_KEPT:
        last_gate = max((i for i, d in enumerate(kept) if "accepted" in d), default=None)
        drop = next(i for i in range(len(kept)) if i != last_gate)
        kept.pop(drop)
        kept = kept[-DECISIONS_KEPT:]
    st.decisions = kept


def start_job(st: SessionState, job: JobRecord) -> None:
    """An adaptation job starts: the teacher serves every turn until it ends."""
    _move(st, "start_job")
    st.job = job.to_dict()


def start_serving(
    st: SessionState, adapter: AdapterRef | None, locality: dict[str, Any], job: JobRecord | None = None
) -> None:
    """The surrogate serves from the next turn with ``adapter`` (accepted by the gate, or
    adopted; None: the base surrogate, ``adapters.BASE_SURROGATE``); ``locality`` is the
    session's bank for it; the drift monitor starts afresh."""
    _move(st, "start_serving")
    st.adapter = adapter.to_dict() if adapter is not None else dict(BASE_SURROGATE)
    if adapter is not None:
        st.adapter_version = adapter.version
    st.locality = locality
    st.drift = {}
    st.donor = None
    if job is not None:
        st.job = job.to_dict()


def roll_back(st: SessionState, reason: str, *, park: bool, readapt_after: int) -> None:
    """Back to the teacher; re-adapt ``readapt_after`` fresh teacher turns later, from the
    current adapter (kept as the parent). ``park`` (a locality rollback: the topic left, the
    answers were not shown wrong) sets the adapter and its bank aside for :func:`resume`."""
    _move(st, "roll_back")
    st.add("rollbacks")
    st.parked = (
        Parked(st.adapter, st.locality, st.turn_count).to_dict() if park and st.adapter and st.locality else None
    )
    st.adapt_from = st.turn_count
    st.next_adapt_at = st.turn_count + readapt_after
    st.drift = {}
    push_decision(st, RollbackDecision(reason, (st.adapter or {}).get("adapter_id"), st.turn_count).to_dict())


def resume(st: SessionState, parked: Parked, statistic: float) -> None:
    """The parked adapter serves again: the query is back on its topic (``statistic`` below
    ``gate.resume_threshold``)."""
    _move(st, "resume")
    st.adapter, st.locality = parked.adapter, parked.locality
    st.parked, st.drift = None, {}
    st.add("resumes")
    push_decision(st, ResumeDecision(parked.adapter.get("adapter_id"), parked.turn, statistic, st.turn_count).to_dict())


def reject(st: SessionState, *, retry_at: int, job: JobRecord | None = None) -> None:
    """The teacher keeps serving: the gate refused, the job found no improvement or failed, or
    shadow evaluation stopped. Adaptation is tried again once ``turn_count`` reaches ``retry_at``."""
    _move(st, "reject")
    st.next_adapt_at = retry_at
    if job is not None:
        st.job = job.to_dict()


def discard_adapter(st: SessionState, reason: str) -> None:
    """A corrupt adapter: back to the teacher without it (nothing parked), re-adapt on the next teacher turn."""
    _move(st, "discard_adapter")
    st.adapter = st.parked = None
    st.next_adapt_at = st.turn_count + 1
    push_decision(st, CorruptAdapterDecision(reason, st.turn_count).to_dict())
