"""The locality statistic of a surrogate turn and the session's bank of warm texts (paper
Sec. 3.3; measured in ``benchmarks/drift.py``, calibration history in docs/drift-calibration.md).

* :class:`SessionLocality` — the statistic x_t the engine uses on every surrogate turn:
  nearest neighbours among the session's warm texts for the bare query and for the query with
  its previous user turn, plus lexical novelty.
* :class:`LocalityModel` — the nearest-neighbour + warm-spread (z-score) gate; kept as a
  building block (docs/notes.md, "Drift and locality": the warm-spread calibration measured worse).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..acceptance.bounds import unit_rows

# --------------------------------------------------------------------------------------------
# Locality (Sec. 3.3; docs/notes.md "Drift and locality")
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalityScore:
    """One query's locality against the session (cosine distances, 1 − cos).

    ``margin`` is the smaller slack of the two bounds, in cosine distance:
    min(threshold − distance_to_centroid, nn_bound − nn_distance); negative when failing.
    ``severe`` (not ok and not borderline) marks a query far beyond a bound.
    :class:`SessionLocality` also fills ``statistic`` (x_t), ``context_distance`` and
    ``novel``; its ``margin`` is threshold − x_t.
    """

    distance_to_centroid: float
    nn_distance: float
    z: float
    ok: bool
    borderline: bool
    margin: float = 0.0
    statistic: float | None = None  # SessionLocality's x_t; None for LocalityModel scores
    context_distance: float | None = None
    novel: int | None = None
    far: int | None = None
    pmi: float | None = None  # context_pmi of the query, when the surrogate scored it

    @property
    def severe(self) -> bool:
        return not self.ok and not self.borderline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _GateLike(Protocol):
    locality_threshold: float


def _set_non_negative(owner: object, **params: float) -> None:
    """Set each parameter on ``owner`` as a float, refusing NaN, infinities and negatives."""
    for name, value in params.items():
        v = float(value)
        if not (math.isfinite(v) and v >= 0.0):
            raise ValueError(f"{type(owner).__name__}: {name} must be finite and >= 0, got {value}")
        setattr(owner, name, v)


class LocalityModel:
    """Per-session locality gate (Sec. 3.3), built from the warm turns' embeddings.

    Each row is φ of a warm query *together with its previous turn's context* (the caller
    embeds the text). docs/notes.md measured that a fixed threshold on a bare query's distance to
    the centroid cannot separate follow-ups from topic shifts, so a query is judged by

    * ``nn_distance``: cosine distance to its nearest session turn (not only the centroid);
    * a per-session calibration: the warm turns' leave-one-out nearest-neighbour distances
      d_i = min_{j≠i} (1 − cos(e_i, e_j)) give μ and σ (population std). σ is floored,
      σ_eff = max(σ, ``rel_std_floor`` · μ, ``min_std``), because 3–12 warm turns estimate it
      poorly; z = (nn_distance − μ) / σ_eff;
    * ``ok`` iff distance_to_centroid ≤ ``threshold`` (absolute ceiling, config
      ``locality_threshold``) and z ≤ ``z_max`` (calibrated bound nn ≤ μ + z_max·σ_eff);
    * ``borderline`` iff the query lies within ``border_z`` σ_eff of the calibrated bound or
      within ``border_abs`` of the absolute ceiling, on either side: audit it always.

    A widely spread session thus tolerates larger distances than a tight one. ``update`` adds
    accepted on-topic turns (calibration recomputed); after a rollback, rebuild from fresh turns.
    """

    threshold: float
    z_max: float
    border_z: float
    border_abs: float
    min_std: float
    rel_std_floor: float

    def __init__(
        self,
        embeddings: np.ndarray | Sequence[Sequence[float]],
        *,
        threshold: float = 0.9,
        z_max: float = 3.0,
        border_z: float = 1.0,
        border_abs: float = 0.05,
        min_std: float = 0.02,
        rel_std_floor: float = 0.25,
    ) -> None:
        _set_non_negative(
            self,
            threshold=threshold,
            z_max=z_max,
            border_z=border_z,
            border_abs=border_abs,
            min_std=min_std,
            rel_std_floor=rel_std_floor,
        )
        if min_std <= 0.0:
            raise ValueError(f"LocalityModel: min_std must be > 0, got {min_std}")
        emb = self._check_rows(embeddings, dim=None)
        if emb.shape[0] < 2:
            raise ValueError(f"LocalityModel needs >= 2 warm embeddings to calibrate, got {emb.shape[0]}")
        self._emb = emb
        self._refresh()

    @classmethod
    def from_config(
        cls, embeddings: np.ndarray | Sequence[Sequence[float]], gate: _GateLike, **kw: float
    ) -> LocalityModel:
        """Build with ``gate.locality_threshold`` (a :class:`~soma_engine.config.GateConfig`)."""
        return cls(embeddings, threshold=gate.locality_threshold, **kw)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _check_rows(x: np.ndarray | Sequence[Any], dim: int | None) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"LocalityModel: expected [n, d] embeddings, got shape {arr.shape}")
        if dim is not None and arr.shape[1] != dim:
            raise ValueError(f"LocalityModel: embedding dim {arr.shape[1]} != model dim {dim}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("LocalityModel: embeddings contain NaN or inf")
        unit = unit_rows(arr)
        if np.any(np.linalg.norm(unit, axis=1) == 0.0):
            raise ValueError("LocalityModel: zero embedding (no direction)")
        return unit

    def _refresh(self) -> None:
        mean = self._emb.mean(axis=0)
        self._centroid = unit_rows(mean[None, :])[0]
        sims = np.clip(self._emb @ self._emb.T, -1.0, 1.0)
        np.fill_diagonal(sims, -np.inf)
        loo = 1.0 - sims.max(axis=1)  # leave-one-out nearest-neighbour distances
        self.mu = float(loo.mean())
        self.sigma = float(loo.std())
        self.sigma_eff = max(self.sigma, self.rel_std_floor * self.mu, self.min_std)

    # -- public ---------------------------------------------------------------------------

    @property
    def centroid(self) -> np.ndarray:
        return self._centroid.copy()

    @property
    def embeddings(self) -> np.ndarray:
        return self._emb.copy()

    @property
    def nn_bound(self) -> float:
        """Calibrated ceiling on the nearest-neighbour distance: μ + z_max · σ_eff."""
        return self.mu + self.z_max * self.sigma_eff

    def __len__(self) -> int:
        return int(self._emb.shape[0])

    def score(self, embedding: np.ndarray | Sequence[float]) -> LocalityScore:
        """Score one query embedding ``[d]`` (query with its previous turn's context)."""
        q = np.asarray(embedding, dtype=np.float64)
        if q.ndim != 1:
            raise ValueError(f"LocalityModel.score: expected one [d] embedding, got {q.shape}")
        u = self._check_rows(q, dim=self._emb.shape[1])[0]
        d_c = float(1.0 - np.clip(u @ self._centroid, -1.0, 1.0))
        nn = float(1.0 - np.clip(self._emb @ u, -1.0, 1.0).max())
        z = (nn - self.mu) / self.sigma_eff
        ok = d_c <= self.threshold and z <= self.z_max
        borderline = abs(z - self.z_max) <= self.border_z or abs(d_c - self.threshold) <= self.border_abs
        margin = min(self.threshold - d_c, self.nn_bound - nn)
        return LocalityScore(d_c, nn, float(z), bool(ok), bool(borderline), float(margin))

    def update(self, embedding: np.ndarray | Sequence[Any]) -> None:
        """Add accepted on-topic turn(s) ``[d]`` or ``[k, d]``; recompute centroid/calibration."""
        rows = self._check_rows(embedding, dim=self._emb.shape[1])
        self._emb = np.vstack([self._emb, rows])
        self._refresh()

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/floats for storage; ``centroid``/``mu``/``sigma`` are informational."""
        return {
            "embeddings": self._emb.tolist(),
            "threshold": self.threshold,
            "z_max": self.z_max,
            "border_z": self.border_z,
            "border_abs": self.border_abs,
            "min_std": self.min_std,
            "rel_std_floor": self.rel_std_floor,
            "centroid": self._centroid.tolist(),
            "mu": self.mu,
            "sigma": self.sigma,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalityModel:
        """Rebuild from :meth:`to_dict` (calibration recomputed from the stored embeddings)."""
        try:
            emb = data["embeddings"]
        except KeyError:
            raise ValueError("LocalityModel.from_dict: missing 'embeddings'") from None
        keys = ("threshold", "z_max", "border_z", "border_abs", "min_std", "rel_std_floor")
        return cls(emb, **{k: float(data[k]) for k in keys if k in data})


def _rows_to_b64(rows: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(rows, dtype="<f2").tobytes()).decode("ascii")


def _rows_from_b64(data: str, dim: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data.encode("ascii"), validate=True), dtype="<f2")
    if dim < 1 or raw.size == 0 or raw.size % dim:
        raise ValueError(f"SessionLocality: stored bank does not hold whole rows of dim {dim}")
    return raw.reshape(-1, dim).astype(np.float64)


class SessionLocality:
    """The locality statistic of a surrogate turn (Sec. 3.3), as measured in
    ``benchmarks/drift.py`` (six domains, topic-shift stress test).

    ``bank``: φ of the session's local state, one row per text: the system prompt, the warm
    queries and the warm answers (the teacher's); ``vocab``: the content words of those texts.
    For the t-th query,

        x_t = d(φ(q_t)) + w_context · d(c_t) + w_novel · min(novel_t, novel_cap) / novel_cap
              + w_far · min(far_t, far_cap) / far_cap − w_lm · clip(pmi_t, 0, lm_cap)

    with d(e) = 1 − max_i cos(e, bank_i) (nearest neighbour, not the centroid: a session has
    sub-topics), c_t = :func:`context_embedding` (φ(q_t), φ(q_{t−1})), novel_t = the number
    of content words of q_t that the conversation has not used yet (:func:`novel_words`) and
    far_t = how many of those are unrelated to every word of ``vocab`` (:func:`far_words`).
    The bare query catches an abrupt question at once; the query with the previous user turn
    keeps short dependent follow-ups ("Should I accept 780?") near the bank; novelty
    separates a specific new subject from a generic follow-up ("Why?"), which embeddings
    cannot (docs/notes.md measured 0.35-0.95 vs 0.84-1.07 for the bare query alone), and far
    words separate a new subject ("What causes the northern lights?") from a follow-up that
    names something new inside the session's subject ("Is there a linter rule for it?").
    pmi_t = :func:`context_pmi` of q_t under the base surrogate, with ``turns`` (the bank's
    teacher turns, as text) and the two turns before q_t as context: it takes back what the
    word terms charge a follow-up whose new words the language model relates to the session
    ("Is a cortisone shot an option?" after heel pain). No pmi_t (no surrogate, a context
    too long for it): the term is 0, as for an unrelated query — the cautious side.

    * ``severe``: x_t > ``severe`` — roll back at once;
    * ``ok``: x_t ≤ ``threshold``; the :class:`DriftMonitor` rolls back when two consecutive
      turns average above ``threshold`` (x_{t−1} + x_t > 2 · threshold), so a lone on-topic
      outlier between ``threshold`` and ``severe`` is served (and audited), while a shift,
      whose next turn stays off the session, goes back to the teacher one turn later;
    * ``borderline``: ``border`` < x_t ≤ ``severe`` — audited always.

    The weights and thresholds were chosen by grids on the drift benchmark's development
    splits and then run once on splits written blind; how, in which order, and with which
    results: docs/drift-calibration.md. The warm turns' own spread is *not* used for calibration:
    warm turns are long and information-dense, follow-ups short, so their spread says little
    about follow-ups (the z-score of :class:`LocalityModel` separated shifts worse than the raw
    distance).
    """

    threshold: float
    severe: float
    border: float
    w_context: float
    w_novel: float
    w_far: float
    w_lm: float
    lm_cap: float
    warm_bound: float

    def __init__(
        self,
        bank: np.ndarray | Sequence[Sequence[float]],
        *,
        threshold: float = 1.275,
        severe: float = 1.45,
        border: float = 1.2,
        w_context: float = 0.1,
        w_novel: float = 0.6,
        novel_cap: int = 4,
        w_far: float = 0.3,
        far_cap: int = 3,
        vocab: Sequence[str] = (),
        warm_bound: float = 0.85,
        w_lm: float = 0.25,
        lm_cap: float = 2.0,
        turns: Sequence[Sequence[str]] = (),
        system: str = "",
    ) -> None:
        _set_non_negative(
            self,
            threshold=threshold,
            severe=severe,
            border=border,
            w_context=w_context,
            w_novel=w_novel,
            w_far=w_far,
            w_lm=w_lm,
            lm_cap=lm_cap,
            warm_bound=warm_bound,
        )
        for name, cap in (("novel_cap", novel_cap), ("far_cap", far_cap)):
            if int(cap) != cap or cap < 1:
                raise ValueError(f"SessionLocality: {name} must be an integer >= 1, got {cap}")
        if isinstance(vocab, str) or not all(isinstance(w, str) for w in vocab):
            raise ValueError("SessionLocality: vocab must be a list of words")
        self.novel_cap = int(novel_cap)
        self.far_cap = int(far_cap)
        self.vocab = tuple(vocab)
        if not all(len(t) == 2 and all(isinstance(x, str) for x in t) for t in turns):
            raise ValueError("SessionLocality: turns must be (query, answer) pairs of strings")
        if not isinstance(system, str):
            raise ValueError("SessionLocality: system must be a string")
        self.turns = tuple((str(q), str(a)) for q, a in turns)
        self.system = system
        self._bank = LocalityModel._check_rows(bank, dim=None)
        centroid = self._bank.mean(axis=0)
        self._centroid = unit_rows(centroid[None, :])[0]

    @classmethod
    def from_config(
        cls,
        bank: np.ndarray | Sequence[Sequence[float]],
        gate: Any,
        vocab: Sequence[str] = (),
        *,
        turns: Sequence[Sequence[str]] = (),
        system: str = "",
    ) -> SessionLocality:
        """Thresholds from a :class:`~soma_engine.config.GateConfig`."""
        return cls(bank, vocab=vocab, turns=turns, system=system, **cls.config_kwargs(gate))

    @staticmethod
    def config_kwargs(gate: Any) -> dict[str, float]:
        thr = float(gate.locality_threshold)
        return {
            "threshold": thr,
            "severe": thr + float(gate.locality_severe_margin),
            "border": max(0.0, thr - float(gate.locality_audit_margin)),
        }

    def __len__(self) -> int:
        return int(self._bank.shape[0])

    @property
    def dim(self) -> int:
        return int(self._bank.shape[1])

    @property
    def bank(self) -> np.ndarray:
        return self._bank.copy()

    def _nn(self, emb: np.ndarray | Sequence[float], what: str) -> tuple[float, np.ndarray]:
        e = np.asarray(emb, dtype=np.float64)
        if e.ndim != 1:
            raise ValueError(f"SessionLocality.score: {what} must be one [d] embedding, got shape {e.shape}")
        u = LocalityModel._check_rows(e, dim=self.dim)[0]
        return float(1.0 - np.clip(self._bank @ u, -1.0, 1.0).max()), u

    def statistic(
        self, query: np.ndarray | Sequence[float], context: np.ndarray | Sequence[float], novel: int, far: int = 0
    ) -> float:
        """x_t for φ(q_t), the context embedding and the novel- and far-word counts."""
        return self.score(query, context, novel, far).statistic or 0.0

    def _words(self, novel: int, far: int) -> float:
        for name, n in (("novel", novel), ("far", far)):
            if int(n) != n or n < 0:
                raise ValueError(f"SessionLocality.score: {name} must be an integer >= 0, got {n}")
        if far > novel:
            raise ValueError(f"SessionLocality.score: far ({far}) counts novel words, so it cannot exceed {novel}")
        return (
            self.w_novel * min(int(novel), self.novel_cap) / self.novel_cap
            + self.w_far * min(int(far), self.far_cap) / self.far_cap
        )

    def score(
        self,
        query: np.ndarray | Sequence[float],
        context: np.ndarray | Sequence[float],
        novel: int,
        far: int = 0,
        pmi: float | None = None,
    ) -> LocalityScore:
        """Score one turn: ``query`` = φ(q_t), ``context`` = :func:`context_embedding`
        (φ(q_t), φ(q_{t−1})), ``novel`` = len(:func:`novel_words` (q_t, conversation so far)),
        ``far`` = :func:`far_words` of those against φ(``vocab``), ``pmi`` = :func:`context_pmi`
        (None: unknown, no credit)."""
        words = self._words(novel, far)
        if pmi is not None and not np.isfinite(pmi):
            raise ValueError(f"SessionLocality.score: pmi must be a finite number, got {pmi}")
        d_q, u = self._nn(query, "query")
        d_c, _ = self._nn(context, "context")
        lm = 0.0 if pmi is None else self.w_lm * float(np.clip(pmi, 0.0, self.lm_cap))
        x = d_q + self.w_context * d_c + words - lm
        d_centroid = float(1.0 - np.clip(u @ self._centroid, -1.0, 1.0))
        ok = x <= self.threshold
        borderline = self.border < x <= self.severe
        return LocalityScore(
            distance_to_centroid=d_centroid,
            nn_distance=d_q,
            z=0.0,
            ok=bool(ok),
            borderline=bool(borderline),
            margin=float(self.threshold - x),
            statistic=float(x),
            context_distance=d_c,
            novel=int(novel),
            far=int(far),
            pmi=None if pmi is None else float(pmi),
        )

    def needs_pmi(self, statistic: float) -> bool:
        """Can the PMI credit change a decision for a turn whose x_t without it is ``statistic``?
        Not at or below min(border, 2 · threshold − severe): such a turn is ok and not
        borderline with or without the credit, and the pair rule cannot fire on it as x_{t−1}
        (x_{t−1} + x_t > 2 · threshold needs x_t > severe, which rolls back alone)."""
        return statistic > min(self.border, 2.0 * self.threshold - self.severe)

    def warm_local(self, score: LocalityScore) -> bool:
        """Cor. 4.3's locality check at acceptance: is the newest *warm* turn near the rest of
        the window? Warm turns are long, so their novel and far words always reach the caps and
        say nothing; the check uses the embedding terms, d(φ(q_t)) + w_context · d(c_t) ≤
        ``warm_bound``. Measured on benchmarks/drift.py's sessions (all splits): the 4th warm
        turn scored against the first three is at most 0.83 on-topic, and a 4th warm turn of
        another domain's session exceeds 0.85 nine times in ten."""
        return score.nn_distance + self.w_context * (score.context_distance or 0.0) <= self.warm_bound

    def resume_statistic(self, score: LocalityScore) -> float:
        """y_t = x_t − w_context · d(c_t), for a query asked while this bank's adapter is
        parked: x_t without its context term, whose previous user turn is the detour's and
        would hide a return ("Back to the bike: ..."). Measured in benchmarks/drift.py
        (resume part)."""
        if score.novel is None:
            raise ValueError("resume_statistic needs a SessionLocality score")
        return score.nn_distance + self._words(score.novel, score.far or 0)

    def to_dict(self) -> dict[str, Any]:
        """For the session store: the bank as base64 float16 (≈1 KiB a row at d = 384)."""
        return {
            "kind": "session-locality",
            "dim": self.dim,
            "bank": _rows_to_b64(self._bank),
            "threshold": self.threshold,
            "severe": self.severe,
            "border": self.border,
            "w_context": self.w_context,
            "w_novel": self.w_novel,
            "novel_cap": self.novel_cap,
            "w_far": self.w_far,
            "far_cap": self.far_cap,
            "warm_bound": self.warm_bound,
            "w_lm": self.w_lm,
            "lm_cap": self.lm_cap,
            "vocab": list(self.vocab),
            "turns": [list(t) for t in self.turns],
            "system": self.system,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], gate: Any = None) -> SessionLocality:
        """Rebuild from :meth:`to_dict`. With ``gate`` (a GateConfig) the thresholds come from
        it and the weights are this version's (they were measured together), so a changed
        configuration or a new release applies without re-adapting; without it, the stored
        values come back exactly. A :class:`LocalityModel` dict (older sessions) is read too:
        its embeddings become the bank."""
        keys = (
            "threshold",
            "severe",
            "border",
            "w_context",
            "w_novel",
            "novel_cap",
            "w_far",
            "far_cap",
            "warm_bound",
            "w_lm",
            "lm_cap",
        )
        kw: dict[str, Any] = {k: data[k] for k in (keys if gate is None else ()) if k in data}
        for k in ("vocab", "turns", "system"):
            if k in data:
                kw[k] = data[k]
        if gate is not None:
            kw.update(cls.config_kwargs(gate))
        if "bank" in data:
            try:
                rows = _rows_from_b64(str(data["bank"]), int(data["dim"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"SessionLocality.from_dict: bad bank ({exc})") from None
            return cls(rows, **kw)
        if "embeddings" in data:
            return cls(data["embeddings"], **{k: v for k, v in kw.items() if k != "threshold" or gate is not None})
        raise ValueError("SessionLocality.from_dict: missing 'bank'")
