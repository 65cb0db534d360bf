"""The drift detector of a live session (paper Sec. 3.3): the locality statistic x_t of each
surrogate turn, the two-turn rule and the audit Gaps of :class:`DriftMonitor`, and the rule that
resumes a parked adapter. :class:`LocalityDetector` is what ``SomaEngine.route()`` calls and
what ``benchmarks/drift.py`` measures; the functions below are its pieces (the session's bank of
warm texts, the inputs of x_t: query, previous user turn, novelty, far words, the surrogate's
context PMI), which adaptation also uses for Corollary 4.3's (Cor. 4.3) locality check."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..types import Message, Phase, TurnRecord
from .features import content_words, context_embedding, context_pmi, far_words, novel_words
from .locality import LocalityScore, SessionLocality
from .monitor import DriftMonitor

if TYPE_CHECKING:
    from ..config import GateConfig

log = logging.getLogger("soma.drift")

# Most recent teacher turns whose texts form a session's locality bank (SessionLocality).
LOCALITY_BANK_TURNS = 12
# Teacher turns the locality statistic's language-model term conditions on (its PMI was
# measured with the four warm turns); the two turns before the query come on top.
LM_CONTEXT_TURNS = 4
LM_RECENT_TURNS = 2
# Phases from which a parked adapter may resume (not while a re-adaptation job runs).
RESUMABLE = (Phase.ROLLED_BACK, Phase.REJECTED)


class TextEncoder(Protocol):
    """φ: the engine's ``Encoder`` (unit-norm rows), or any cache in front of it."""

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_words(self, words: list[str]) -> np.ndarray: ...


# SurrogateRuntime.query_nll: (messages, stable=leading messages shared by every turn) -> NLL.
QueryNLL = Callable[..., float]


def locality_inputs(messages: list[Message]) -> tuple[str, str, list[str]]:
    """The texts of one turn's locality statistic (SessionLocality): the query q_t, the
    previous *user* turn q_{t-1} ("" if none; its embedding is averaged with the query's, which
    narrows the distance of short dependent follow-ups; an assistant answer would be the
    surrogate's own words after a switch) and the conversation so far (for novel words).
    Measured in benchmarks/drift.py."""
    users = [m.content for m in messages if m.role == "user" and m.content]
    query = users[-1] if users else messages[-1].content
    previous = users[-2] if len(users) >= 2 else ""
    history = [m.content for m in messages[:-1] if m.content]
    return query, previous, history


def locality_embeddings(
    encoder: TextEncoder, messages: list[Message], model: SessionLocality
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """φ(q_t), the context embedding (context_embedding of q_t and q_{t-1}), the number
    of novel words and how many of them are far from ``model``'s vocabulary: the inputs of
    SessionLocality.score for this turn."""
    query, previous, history = locality_inputs(messages)
    emb = encoder.encode([query, previous] if previous else [query])
    context = context_embedding(emb[0], emb[1] if previous else None)
    novel = novel_words(query, history)
    return emb[0], context, len(novel), far_count(encoder, novel, model.vocab)


def far_count(encoder: TextEncoder, novel: list[str], vocab: tuple[str, ...]) -> int:
    """far_words of the novel words against the bank's vocabulary (0 for a bank stored
    without one, by an older version)."""
    if not novel or not vocab:
        return 0
    return far_words(encoder.encode_words(novel), encoder.encode_words(list(vocab)))


def bank_vocab(texts: list[str]) -> list[str]:
    """The content words of the locality bank's texts (far_words compares novel words to them)."""
    return sorted({w for t in texts for w in content_words(t)})


def lm_context(records: list[TurnRecord]) -> tuple[str, list[tuple[str, str]]]:
    """The system prompt and the (query, answer) texts of the most recent ``LM_CONTEXT_TURNS``
    teacher turns: what context_pmi conditions a query on."""
    recent = [r for r in records if r.served_by == "teacher" and r.query and r.answer][-LM_CONTEXT_TURNS:]
    system = next(
        (m["content"] for r in recent[-1:] for m in r.messages if m.get("role") == "system" and m.get("content")), ""
    )
    return system, [(r.query, r.answer) for r in recent]


def pmi_messages(messages: list[Message], model: SessionLocality) -> tuple[list[Message], list[Message], int]:
    """The two prompts of context_pmi for this turn's query: the system prompt alone, and
    the system prompt with ``model.turns`` and the last ``LM_RECENT_TURNS`` exchanges before
    the query that are not among them; and how many leading messages of the second recur
    on every turn of the session (SurrogateRuntime.query_nll's ``stable``)."""
    query = locality_inputs(messages)[0]
    system = [Message("system", model.system)] if model.system else []
    pairs = [
        (u.content, a.content)
        for u, a in zip(messages[:-1], messages[1:-1], strict=False)
        if u.role == "user" and a.role == "assistant"
    ]
    known = set(model.turns)
    recent = [p for p in pairs if p not in known][-LM_RECENT_TURNS:]
    context = [m for q, a in (*model.turns, *recent) for m in (Message("user", q), Message("assistant", a))]
    stable = len(system) + 2 * len(model.turns)
    return [*system, Message("user", query)], [*system, *context, Message("user", query)], stable


def locality_pmi(query_nll: QueryNLL | None, messages: list[Message], model: SessionLocality) -> float | None:
    """context_pmi of this turn's query under the base surrogate (``query_nll``:
    SurrogateRuntime.query_nll); None when the bank keeps no turns (stored by an older
    version), the term is off, there is no scorer or it cannot score the query (the statistic
    then gives no credit)."""
    if query_nll is None or not model.turns or model.w_lm == 0:
        return None
    alone, in_context, stable = pmi_messages(messages, model)
    try:
        nll_alone = query_nll(alone)
        return context_pmi(nll_alone, query_nll(in_context, stable=stable))
    except Exception as exc:  # noqa: BLE001 - scoring must never cost the turn
        log.warning("locality: the surrogate could not score the query (%s); no PMI credit", exc)
        return None


def trusted_messages(messages: list[Message], previous: float | None, model: SessionLocality) -> list[Message]:
    """The conversation a query is scored in: without its last exchange when that turn's
    statistic ``previous`` (x_{t−1}) was above ``model.threshold``. A turn the detector
    doubted must not vouch for the next one: after an abrupt new subject, its follow-ups ("Can
    I turn them pink?") are near the previous query, share its words and are likely after it,
    so the context distance, novelty and PMI terms would take them for local, and the two-turn
    rule would never see its second turn."""
    if previous is None or previous <= model.threshold:
        return messages
    users = [i for i, m in enumerate(messages[:-1]) if m.role == "user"]
    return messages if not users else [*messages[: users[-1]], messages[-1]]


def locality_score(
    encoder: TextEncoder, query_nll: QueryNLL | None, messages: list[Message], model: SessionLocality
) -> LocalityScore:
    """This turn's SessionLocality score. The PMI credit can only lower x_t, so the
    surrogate scores the query only when the credit could change a decision
    (``SessionLocality.needs_pmi``): a clearly local turn costs no forward pass (its reported
    x_t then omits the credit), and decisions are those of always scoring."""
    inputs = locality_embeddings(encoder, messages, model)
    score = model.score(*inputs)
    if not model.needs_pmi(score.statistic or 0.0):
        return score
    pmi = locality_pmi(query_nll, messages, model)
    return score if pmi is None else model.score(*inputs, pmi=pmi)


def locality_bank_texts(records: list[TurnRecord]) -> list[str]:
    """The session's local state for SessionLocality: the system prompt and the queries
    and teacher answers of the most recent ``LOCALITY_BANK_TURNS`` teacher turns."""
    recent = [r for r in records if r.served_by == "teacher"][-LOCALITY_BANK_TURNS:]
    texts: list[str] = []
    for r in recent[-1:]:
        texts += [m["content"] for m in r.messages if m.get("role") == "system" and m.get("content")][:1]
    for r in recent:
        texts += [t for t in (r.query, r.answer) if t and t.strip()]
    return list(dict.fromkeys(texts))


def session_locality(
    encoder: TextEncoder, gate: GateConfig, records: list[TurnRecord]
) -> tuple[SessionLocality, bool, float | None]:
    """The locality model of the session's current turns and Cor. 4.3's locality check: the
    latest teacher turn scored against a bank built without it (SessionLocality.warm_local,
    its statistic x_t)."""
    texts = locality_bank_texts(records)
    teacher = [r for r in records if r.served_by == "teacher" and r.messages]
    probe = teacher[-1] if len(teacher) >= 2 else None
    loo = locality_bank_texts([r for r in records if r is not probe]) if probe is not None else []
    inputs = locality_inputs(probe.context()) if probe is not None else None
    extra = [t for t in inputs[:2] if t] if inputs else []
    unique = list(dict.fromkeys([*texts, *loo, *extra]))
    rows = dict(zip(unique, encoder.encode(unique), strict=True))
    system, turns = lm_context(records)
    model = SessionLocality.from_config(
        np.stack([rows[t] for t in texts]), gate, bank_vocab(texts), turns=turns, system=system
    )
    if probe is None or inputs is None or not loo:
        return model, True, None
    check = SessionLocality.from_config(np.stack([rows[t] for t in loo]), gate, bank_vocab(loo))
    query, previous, history = inputs
    context = context_embedding(rows[query], rows[previous] if previous else None)
    novel = novel_words(query, history)
    score = check.score(rows[query], context, len(novel), far_count(encoder, novel, check.vocab))
    return model, check.warm_local(score), score.statistic


@dataclass
class Observation:
    """One serving turn as :meth:`LocalityDetector.observe` saw it: its locality score (None:
    the session keeps no bank), the monitor that took it, and whether (and why) the session
    rolls back at this turn."""

    score: LocalityScore | None
    monitor: DriftMonitor
    rollback: bool = False
    reason: str = ""


class LocalityDetector:
    """The detector of Sec. 3.3 over the engine's services, each passed as a getter so that a
    replaced encoder or configuration applies at once: ``encoder`` (φ), ``query_nll`` (the base
    surrogate's, for the PMI term; None: no credit) and ``gate`` (GateConfig thresholds).

    Per serving turn, :meth:`observe` scores x_t (in the conversation without the previous
    exchange when x_{t−1} was above the threshold, :func:`trusted_messages`) and feeds it to the
    session's :class:`DriftMonitor`: severe, or x_{t−1} + x_t > 2 · threshold, rolls back this
    turn; borderline turns are always audited. Audit Gaps reach the same monitor
    (``DriftMonitor.observe_gap``). After a locality rollback the adapter is parked;
    :meth:`resume` says when a query is back on its topic."""

    def __init__(
        self,
        encoder: Callable[[], TextEncoder],
        query_nll: QueryNLL | None,
        gate: Callable[[], GateConfig],
    ) -> None:
        self._encoder = encoder
        self._query_nll = query_nll
        self._gate = gate

    def session_locality(self, records: list[TurnRecord]) -> tuple[SessionLocality, bool, float | None]:
        """The session's locality model and Cor. 4.3's check (:func:`session_locality`)."""
        return session_locality(self._encoder(), self._gate(), records)

    def model(self, bank: Mapping[str, Any] | None) -> SessionLocality | None:
        """A stored bank (``SessionState.locality``) under the current thresholds; None: none kept."""
        return SessionLocality.from_dict(bank, self._gate()) if bank else None

    def monitor(self, drift: Mapping[str, Any] | None) -> DriftMonitor:
        """The session's drift monitor from its stored state; thresholds always from the
        current configuration."""
        g = self._gate()
        if not drift:
            return DriftMonitor.from_config(g)
        mon = DriftMonitor.from_state(drift)
        mon.drift_threshold, mon.consecutive = g.drift_threshold, g.consecutive
        mon.pair_threshold = 2.0 * g.locality_threshold
        return mon

    def score(
        self, messages: list[Message], model: SessionLocality | None, previous: float | None = None
    ) -> LocalityScore | None:
        """x_t of this turn (:func:`locality_score`): the query and the query with the previous
        user turn against the bank, its novel and far words and PMI; in the conversation
        without the last exchange when x_{t−1} (``previous``) was above the threshold."""
        if model is None:
            return None
        return locality_score(self._encoder(), self._query_nll, trusted_messages(messages, previous, model), model)

    def observe(
        self,
        messages: list[Message],
        model: SessionLocality | None,
        monitor: DriftMonitor,
        score: LocalityScore | None = None,
    ) -> Observation:
        """Score one serving turn (``score`` given: already scored, e.g. by :meth:`resume`) and
        feed it to ``monitor`` (updated in place); ``rollback``: the teacher serves this turn."""
        score = score or self.score(messages, model, monitor.last_statistic)
        if score is None:
            return Observation(None, monitor)
        if not monitor.observe_locality(score):
            return Observation(score, monitor)
        return Observation(score, monitor, rollback=True, reason=locality_reason(score, monitor))

    def resumable(self, phase: Phase, parked: Mapping[str, Any] | None) -> bool:
        """May this session resume a parked adapter now (resuming on, not during a job)?"""
        return bool(parked) and phase in RESUMABLE and self._gate().resume_threshold > 0

    def resume_statistic(self, messages: list[Message], parked: SessionLocality) -> tuple[LocalityScore, float]:
        """This turn's score against the parked bank (no PMI, the whole conversation) and
        y_t = ``SessionLocality.resume_statistic``."""
        score = parked.score(*locality_embeddings(self._encoder(), messages, parked))
        return score, parked.resume_statistic(score)

    def resume(self, messages: list[Message], parked: Mapping[str, Any]) -> tuple[LocalityScore, float] | None:
        """A query clearly back on the parked adapter's topic (y_t below ``gate.resume_threshold``)
        brings that adapter back at once: the gate accepted it for this topic and locality says
        the conversation returned, so re-adapting on the detour's turns would only cost teacher
        turns. ``parked``: the parked bank as stored. Returns (x_t's score, y_t), or None."""
        model = SessionLocality.from_dict(parked, self._gate())
        score, y = self.resume_statistic(messages, model)
        return (score, y) if y < self._gate().resume_threshold else None


def locality_reason(score: LocalityScore, monitor: DriftMonitor) -> str:
    """Why locality rolled a session back: x_t, its terms and the last two statistics."""
    stats = list(monitor.statistics)[-2:]
    pmi = "n/a" if score.pmi is None else f"{score.pmi:.2f}"
    return (
        f"locality x={score.statistic:.3f} (query {score.nn_distance:.3f}, context {score.context_distance:.3f}, "
        f"{score.novel} new words, PMI {pmi}; last two {[round(x, 3) for x in stats]}, "
        f"pair bound {monitor.pair_threshold}, severe={score.severe})"
    )
