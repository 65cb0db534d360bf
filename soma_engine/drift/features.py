"""Pure text and vector features of the locality statistic (paper Sec. 3.3): content words,
novelty against the session's vocabulary, far words, the context PMI and the query-plus-
previous-turn embedding."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from ..acceptance.bounds import unit_rows

# --------------------------------------------------------------------------------------------
# The engine's locality statistic (Sec. 3.3), measured in benchmarks/drift.py
# --------------------------------------------------------------------------------------------

# Function words and generic conversational vocabulary: words that say nothing about a topic.
_STOPWORDS_TEXT = """
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for
from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself
his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor
not of off on once only or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's these they they'd
they'll they're they've this those through to too under until up very was wasn't we we'd we'll we're we've were
weren't what what's when when's where where's which while who who's whom why why's with won't would wouldn't you
you'd you'll you're you've your yours yourself yourselves
ok okay yes yeah thanks thank please sure hey hi hello well just really actually maybe still even now again
get got make made want need think know go going come take give tell say said ask asked use used try tried see look
good bad best better great fine right wrong new old first last next another way thing things something anything
much many less lot little long short time times day days week weeks year years today tomorrow
one two three four five six seven eight nine ten will shall may might must done let lets like
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_WORD = re.compile(r"[a-z][a-z']+")
_SUFFIXES = ("'s", "ing", "ed", "ly")


def _stem(word: str) -> str:
    """Crude English stemming, enough to match "bikes"/"bike", "offered"/"offer"."""
    w = word.strip("'")
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    if w.endswith(("ses", "xes", "zes", "ches", "shes")) and len(w) >= 5:
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) >= 4:
        return w[:-1]
    return w


def content_words(text: str) -> list[str]:
    """Lower-cased, crudely stemmed words of ≥ 3 letters that are not in :data:`STOPWORDS`."""
    out = []
    for w in _WORD.findall(text.lower()):
        if len(w) >= 3 and w not in STOPWORDS:
            stem = _stem(w)
            if stem not in STOPWORDS:
                out.append(stem)
    return out


def novel_words(query: str, history: Iterable[str]) -> list[str]:
    """Content words of ``query`` that appear nowhere in ``history`` (the conversation so far,
    system prompt included). On-topic follow-ups reuse the session's words or none at all
    ("Why?"); an abrupt new topic brings its own."""
    seen: set[str] = set()
    for text in history:
        seen.update(content_words(text))
    return [w for w in dict.fromkeys(content_words(query)) if w not in seen]


FAR_WORD_COS = 0.4


def far_words(words: np.ndarray | Sequence[Sequence[float]], vocab: np.ndarray | Sequence[Sequence[float]]) -> int:
    """How many of the ``words`` (φ of a query's novel words, one row each) are unrelated to
    every word of the session's vocabulary (φ of its bank's content words): the largest cosine
    below :data:`FAR_WORD_COS`. A novel word that only rephrases the session ("linter" in a
    code review) stays near some bank word; a new subject ("northern lights" in a bike sale)
    does not. Measured in benchmarks/drift.py: 15% of on-topic follow-ups hold such a word
    against 82% of first off-topic turns (plain novelty: 70% against 100%)."""
    w = np.asarray(words, dtype=np.float64)
    if w.size == 0:
        return 0
    v = np.asarray(vocab, dtype=np.float64)
    if v.size == 0:
        return int(w.shape[0])
    sims = unit_rows(w.reshape(len(w), -1)) @ unit_rows(v.reshape(len(v), -1)).T
    return int((sims.max(axis=1) < FAR_WORD_COS).sum())


def context_pmi(nll_alone: float, nll_in_context: float) -> float:
    """Pointwise mutual information, per token, between a query and the session's context:
    the surrogate's mean negative log-likelihood of the query's tokens after the system prompt
    alone, minus the same after the system prompt and the session's turns (nats). A language
    model knows which new details belong to a subject (a cortisone shot to heel pain, SOH CAH
    TOA to a trigonometry lesson) where word overlap and embeddings do not: the session's turns
    make such a query likelier (PMI about 1-2.5), and leave a new subject's as unlikely (about 0).
    """
    return float(nll_alone) - float(nll_in_context)


def context_embedding(query: np.ndarray | Sequence[float], previous: np.ndarray | Sequence[float] | None) -> np.ndarray:
    """The context of a turn for :class:`SessionLocality`: the normalised mean of φ(q_t) and
    φ(q_{t−1}) (the previous user turn), or φ(q_t) alone for the first one. Averaging
    embeddings, rather than embedding the joined text, keeps a long previous turn from
    drowning the query (measured in ``benchmarks/drift.py``: shifts right after the warm
    window are caught more often)."""
    q = unit_rows(np.asarray(query, dtype=np.float64).reshape(1, -1))[0]
    if previous is None:
        return q
    p = unit_rows(np.asarray(previous, dtype=np.float64).reshape(1, -1))[0]
    if p.shape != q.shape:
        raise ValueError(f"context_embedding: shapes differ, {q.shape} vs {p.shape}")
    m = q + p
    norm = float(np.linalg.norm(m))
    return q if norm == 0.0 else m / norm
