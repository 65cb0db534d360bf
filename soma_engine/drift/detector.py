"""The locality statistic on a live session (paper Sec. 3.3): the session's bank of warm
texts, the inputs of one turn's statistic x_t (query, previous user turn, novelty, far words,
the surrogate's context PMI) and the session locality model with Corollary 4.3's locality
check. ``route()`` scores surrogate turns with these; ``benchmarks/drift.py`` measures them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..types import Message, TurnRecord
from .features import content_words, context_embedding, context_pmi, far_words, novel_words
from .locality import LocalityScore, SessionLocality

if TYPE_CHECKING:
    from ..engine import SomaEngine

log = logging.getLogger("soma.drift")

# Most recent teacher turns whose texts form a session's locality bank (SessionLocality).
LOCALITY_BANK_TURNS = 12
# Teacher turns the locality statistic's language-model term conditions on (its PMI was
# measured with the four warm turns); the two turns before the query come on top.
LM_CONTEXT_TURNS = 4
LM_RECENT_TURNS = 2


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


def locality_text(messages: list[Message]) -> str:
    """The texts locality looks at for a turn, joined: the previous user turn and the query."""
    query, previous, _ = locality_inputs(messages)
    return "\n".join(t for t in (previous, query) if t)


def locality_embeddings(
    engine: SomaEngine, messages: list[Message], model: SessionLocality
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """φ(q_t), the context embedding (context_embedding of q_t and q_{t-1}), the number
    of novel words and how many of them are far from ``model``'s vocabulary: the inputs of
    SessionLocality.score for this turn."""
    query, previous, history = locality_inputs(messages)
    emb = engine.encoder.encode([query, previous] if previous else [query])
    context = context_embedding(emb[0], emb[1] if previous else None)
    novel = novel_words(query, history)
    return emb[0], context, len(novel), far_count(engine, novel, model.vocab)


def far_count(engine: SomaEngine, novel: list[str], vocab: tuple[str, ...]) -> int:
    """far_words of the novel words against the bank's vocabulary (0 for a bank stored
    without one, by an older version)."""
    if not novel or not vocab:
        return 0
    return far_words(engine.encoder.encode_words(novel), engine.encoder.encode_words(list(vocab)))


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


def locality_pmi(engine: SomaEngine, messages: list[Message], model: SessionLocality) -> float | None:
    """context_pmi of this turn's query under the base surrogate; None when the bank keeps
    no turns (stored by an older version), the term is off or the surrogate cannot score it
    (the statistic then gives no credit)."""
    if not model.turns or model.w_lm == 0:
        return None
    alone, in_context, stable = pmi_messages(messages, model)
    try:
        nll_alone = engine.surrogate.query_nll(alone)
        return context_pmi(nll_alone, engine.surrogate.query_nll(in_context, stable=stable))
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


def locality_score(engine: SomaEngine, messages: list[Message], model: SessionLocality) -> LocalityScore:
    """This turn's SessionLocality score. The PMI credit can only lower x_t, so the
    surrogate scores the query only when the credit could change a decision
    (``SessionLocality.needs_pmi``): a clearly local turn costs no forward pass (its reported
    x_t then omits the credit), and decisions are those of always scoring."""
    inputs = locality_embeddings(engine, messages, model)
    score = model.score(*inputs)
    if not model.needs_pmi(score.statistic or 0.0):
        return score
    pmi = locality_pmi(engine, messages, model)
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


def session_locality(engine: SomaEngine, records: list[TurnRecord]) -> tuple[SessionLocality, bool, float | None]:
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
    rows = dict(zip(unique, engine.encoder.encode(unique), strict=True))
    system, turns = lm_context(records)
    model = SessionLocality.from_config(
        np.stack([rows[t] for t in texts]), engine.config.gate, bank_vocab(texts), turns=turns, system=system
    )
    if probe is None or inputs is None or not loo:
        return model, True, None
    check = SessionLocality.from_config(np.stack([rows[t] for t in loo]), engine.config.gate, bank_vocab(loo))
    query, previous, history = inputs
    context = context_embedding(rows[query], rows[previous] if previous else None)
    novel = novel_words(query, history)
    score = check.score(rows[query], context, len(novel), far_count(engine, novel, check.vocab))
    return model, check.warm_local(score), score.statistic
