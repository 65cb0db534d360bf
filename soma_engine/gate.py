"""Acceptance gate, locality and drift (paper Sec. 3.3, 4.1 and appendix E).

Pure numpy: embeddings φ(·) arrive as arrays of shape ``[n, d]`` computed elsewhere.

* :func:`gap` — Gap_Θ(S) = 1 − cos(φ(a^G), φ(a^F)) ∈ [0, 1] (Sec. 4.1).
* :func:`effective_sample_size` — N_eff of appendix E, used by Lemma 4.1 and Thm 4.2.
* :func:`warm_start_margin` (Lemma 4.1), :func:`acceptance_margin` (Thm 4.2),
  :func:`turns_needed` and :func:`decide_acceptance` (Thm 4.2 / Cor. 4.3).
* :func:`look_sizes`, :func:`look_delta`, :func:`decide_sequential` — Thm 4.2 applied to an
  acceptance batch that grows by shadow evaluation, with δ spent over the looks.
* :class:`SessionLocality` — the locality statistic the engine uses on every surrogate turn:
  nearest neighbours among the session's warm texts for the bare query and for the query with
  its previous user turn, plus lexical novelty (measured in ``benchmarks/drift.py``).
* :class:`LocalityModel` — the nearest-neighbour + warm-spread (z-score) gate; kept as a
  building block (docs/notes.md, "Drift and locality": the warm-spread calibration measured worse).
* :class:`DriftMonitor` — audit-Gap breaches, severe locality and the two-turn locality sum
  trigger rollback (Sec. 3.3).
* :func:`should_audit` — sampled audits, always on borderline locality.

Why ``gate.mode="fidelity"`` is the default — the paper's numbers. Thm 4.2 switches when
Δ̂_B ≥ ε + γ_B(δ), γ_B(δ) = sqrt(2 log(1/δ) / |B|_eff), for X_j = Gap_old − Gap_new ∈ [−1, 1].
At ε = 0.05, δ = 0.1 (C.2's smallest ε): even a perfect adapter (Gap_new = 0) on a batch whose
Gap_old averages 1 needs |B|_eff ≥ 6 (:func:`turns_needed`); at a realistic Gap_old ≈ 0.4 it
needs 38, and a realistic improvement Δ̂ ≈ 0.25 needs 116. C.2's own batch range |B| ∈ [6, 24]
requires Δ̂ ≥ 0.93 at |B| = 6 and Δ̂ ≥ 0.49 at |B| = 24. The warm window W = 4 with one turn
held out leaves |B| = 1 (γ = 2.15: unreachable). The batch is grown without training on it
and without teacher calls by *shadow evaluation* (:func:`decide_sequential`, jobs.shadow_step):
after adaptation the teacher keeps serving, and each of its turns becomes one more held-out
context, answered in the background by the candidate and the old surrogate. Because the rule
is then checked repeatedly, δ is spent over looks at |B| = 7, 14, 28, ... (δ/2, δ/4, ...):
the first look needs Δ̂ ≥ 0.98, |B| = 14 needs 0.78, |B| = 28 needs 0.61 (at N_eff = |B|). So at the paper's
ε, δ a 16-turn session can switch, at the earliest, after turn 4 + 6 = 10 and only with a
near-perfect adapter: too late to save 60% of its teacher tokens. ``bound`` is therefore an
opt-in mode for long sessions or stricter deployments; ``fidelity`` (:func:`decide_fidelity`)
switches when the adapted surrogate beats the old one (the base model at first) on the same
held-out turns (Δ̂_B > ``gate.min_improvement``, Thm 4.2's quantity without its margin) and
clears the fidelity floor, stores the Thm 4.2 numbers with every decision (``bound_met``), and relies on
the locality gate, the audits and rollback for safety. Sentence-level Gaps within one answer
were considered and not used: they share one context and one generated answer, so they are
strongly dependent (N_eff ≈ the number of contexts) and estimate a different quantity.
"""

from __future__ import annotations

import base64
import math
import random
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

__all__ = [
    "AcceptanceDecision",
    "DriftMonitor",
    "LocalityModel",
    "LocalityScore",
    "SessionLocality",
    "acceptance_margin",
    "content_words",
    "context_embedding",
    "decide_acceptance",
    "decide_fidelity",
    "decide_sequential",
    "effective_sample_size",
    "far_words",
    "gap",
    "look_delta",
    "look_sizes",
    "novel_words",
    "should_audit",
    "turns_needed",
    "warm_start_margin",
]

# Relative spread below which a series counts as constant (values are rescaled to max |x| = 1).
_CONST_TOL = 1e-12
# Gap values may overshoot [0, 1] by rounding; more than this is a caller error.
_RANGE_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# Gap (Sec. 4.1)
# --------------------------------------------------------------------------------------------


def gap(a_surrogate: np.ndarray, a_teacher: np.ndarray) -> np.ndarray | float:
    """Gap_Θ(S) = 1 − cos(φ(a^G), φ(a^F)), clipped to [0, 1] (Sec. 4.1).

    Takes two vectors ``[d]`` (returns a float) or two matrices ``[n, d]`` (returns ``[n]``,
    row-wise). 1 − cos lies in [0, 2]; opposite directions are clipped to the paper's range.
    A zero embedding has no direction: its Gap is 1 (the conservative value).
    """
    g = np.asarray(a_surrogate, dtype=np.float64)
    f = np.asarray(a_teacher, dtype=np.float64)
    if g.shape != f.shape:
        raise ValueError(f"gap: shapes differ, surrogate {g.shape} vs teacher {f.shape}")
    if g.ndim not in (1, 2) or g.shape[-1] == 0:
        raise ValueError(f"gap: expected [d] or [n, d] embeddings with d >= 1, got {g.shape}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(f))):
        raise ValueError("gap: embeddings contain NaN or inf")
    cos = _row_cosine(g.reshape(-1, g.shape[-1]), f.reshape(-1, f.shape[-1]))
    out = np.clip(1.0 - cos, 0.0, 1.0)
    return float(out[0]) if g.ndim == 1 else out


def _row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; 0 where either row is zero. Rows are rescaled first (no overflow)."""
    a = _unit_rows(a)
    b = _unit_rows(b)
    return np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; zero rows stay zero."""
    scale = np.max(np.abs(x), axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    y = x / scale
    norm = np.linalg.norm(y, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return y / norm


# --------------------------------------------------------------------------------------------
# Effective sample size and margins (appendix E, Lemma 4.1, Thm 4.2)
# --------------------------------------------------------------------------------------------


def effective_sample_size(x: Sequence[float] | np.ndarray) -> float:
    """N_eff = N / (1 + 2 Σ_{ℓ=1}^{N−1} (1 − ℓ/N) ρ(ℓ)) of appendix E, clipped to [1, N].

    ``x`` is a 1-D series in time order (e.g. warm-turn Gaps or held-out X_j).

    * ρ estimator: the standard biased sample autocovariance
      γ̂(ℓ) = (1/N) Σ_{t=1}^{N−ℓ} (x_t − x̄)(x_{t+ℓ} − x̄), normalised ρ̂(ℓ) = γ̂(ℓ)/γ̂(0)
      (positive semi-definite, |ρ̂| ≤ 1), computed by FFT.
    * Truncation of noisy lags: Geyer's (1992) initial positive sequence with the initial
      monotone refinement, applied to the weighted terms r(ℓ) = (1 − ℓ/N) ρ̂(ℓ), r(0) = 1:
      pair sums Γ_k = r(2k) + r(2k+1) are kept up to the first non-positive one and made
      non-increasing; then 1 + 2 Σ_ℓ r(ℓ) = 2 Σ_k Γ_k − 1.
    * Clipping: the result is clipped to [1, N]. Negative correlation (which would give
      N_eff > N) is not credited — N_eff ≤ N always, the conservative side for every bound.
    * Constant series (no variance, ρ undefined): returns 1. A constant series is the
      ρ ≡ 1 limit of the formula (N / (1 + (N−1)) = 1) and gives the largest margins, so the
      gate stays conservative: identical values carry no evidence that the draws are
      independent. N = 0 is an error; N = 1 gives 1.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"effective_sample_size: expected a 1-D series, got shape {arr.shape}")
    n = arr.size
    if n == 0:
        raise ValueError("effective_sample_size: empty series")
    if not np.all(np.isfinite(arr)):
        raise ValueError("effective_sample_size: series contains NaN or inf")
    if n == 1:
        return 1.0
    scale = float(np.max(np.abs(arr)))
    if scale == 0.0:
        return 1.0
    y = arr / scale  # rescale first: no overflow in the mean or the products
    y = y - y.mean()
    if float(np.max(np.abs(y))) <= _CONST_TOL:
        return 1.0
    nfft = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(y, nfft)
    acov = np.fft.irfft(spec * np.conj(spec), nfft)[:n] / n
    if acov[0] <= 0.0:
        return 1.0
    r = (acov / acov[0]) * (1.0 - np.arange(n) / n)
    r[0] = 1.0
    k = n // 2
    pairs = r[0 : 2 * k : 2] + r[1 : 2 * k : 2]
    nonpos = np.flatnonzero(pairs <= 0.0)
    if nonpos.size:
        pairs = pairs[: nonpos[0]]
    pairs = np.minimum.accumulate(pairs) if pairs.size else pairs
    denom = 2.0 * float(pairs.sum()) - 1.0
    if denom <= 1.0:  # no positive correlation detected
        return float(n)
    return float(min(max(n / denom, 1.0), n))


def _check_delta(delta: float) -> float:
    d = float(delta)
    if not 0.0 < d < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    return d


def _check_size(value: float, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return v


def warm_start_margin(w_eff: float, delta: float) -> float:
    """η = sqrt(2 log(2/δ) / W_eff): Lemma 4.1's two-sided bound on a bounded warm statistic."""
    w = _check_size(w_eff, "w_eff")
    return math.sqrt(2.0 * math.log(2.0 / _check_delta(delta)) / w)


def acceptance_margin(b_eff: float, delta: float) -> float:
    """γ_B(δ) = sqrt(2 log(1/δ) / |B|_eff): Thm 4.2's one-sided margin for X_j ∈ [−1, 1]."""
    b = _check_size(b_eff, "b_eff")
    return math.sqrt(2.0 * math.log(1.0 / _check_delta(delta)) / b)


def turns_needed(epsilon: float, delta: float, target_delta_hat: float = 1.0) -> int:
    """Smallest integer |B|_eff with ε + γ_B(δ) ≤ ``target_delta_hat`` (Thm 4.2).

    That is ⌈2 log(1/δ) / (target − ε)²⌉. The default target 1 is the largest Δ̂ possible
    (X_j ≤ 1), so the result is a lower bound for any batch. Raises ``ValueError`` when
    ``target_delta_hat <= epsilon``: no batch size can clear the margin then.
    """
    eps = float(epsilon)
    target = float(target_delta_hat)
    _check_delta(delta)
    if not (math.isfinite(eps) and 0.0 <= eps <= 1.0):
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if not (math.isfinite(target) and target <= 1.0):
        raise ValueError(f"target_delta_hat must be <= 1 (X_j <= 1), got {target_delta_hat}")
    if target <= eps:
        raise ValueError(f"unreachable: target_delta_hat={target} <= epsilon={eps}; no batch size passes")
    sq = (target - eps) ** 2
    raw = 2.0 * math.log(1.0 / delta) / sq if sq > 0.0 else math.inf
    if not math.isfinite(raw):
        raise ValueError(f"unreachable: target_delta_hat - epsilon = {target - eps} is too small")
    need = max(1, math.ceil(raw - 1e-9))
    while eps + acceptance_margin(need, delta) > target + 1e-12:  # guard float rounding
        need += 1
    return need


# --------------------------------------------------------------------------------------------
# Acceptance decision (Thm 4.2 / Cor. 4.3)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptanceDecision:
    """Outcome of :func:`decide_acceptance`, with every number it was based on.

    ``more_turns_needed``: 0 when the batch is large enough for ε + γ to be reachable,
    k > 0 when k more held-out contexts are needed before it can be, ``None`` when no batch
    size can ever show an improvement of ε (the old Gap already averages ≤ ε).
    (:func:`decide_sequential` sets it to the contexts still missing before its next look.)

    The fields after ``more_turns_needed`` describe how the decision was taken: ``mode``
    ("bound": Thm 4.2 decides; "fidelity": the fidelity floor decides, the bound's verdict is
    kept in ``bound_met``), ``final`` (False while the shadow gate is still collecting),
    ``look`` / ``next_look`` (the look index and the batch size of the next look, sequential
    mode) and ``projected_turns`` (more contexts needed if Δ̂ stayed at its current value;
    ``None`` when Δ̂ ≤ ε or no look within the cap could pass).
    """

    accepted: bool
    reason: str
    n: int
    n_eff: float
    delta_hat: float  # Δ̂_B = mean X_j, X_j = Gap_old − Gap_new
    gamma: float  # γ_B(δ), Thm 4.2
    epsilon: float
    delta: float
    fidelity: float  # mean (1 − Gap_new)
    min_fidelity: float
    locality_ok: bool
    locality_margin: float | None  # caller's slack of the locality statistic
    locality_required: float | None  # η + γ it must exceed (Cor. 4.3); None if not checked
    eta: float | None  # warm_start_margin(w_eff, δ), Lemma 4.1; None without w_eff
    more_turns_needed: int | None
    mode: str = "bound"
    final: bool = True
    look: int | None = None
    next_look: int | None = None
    projected_turns: int | None = None
    bound_met: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gap_series(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence of Gaps, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    if np.any(arr < -_RANGE_TOL) or np.any(arr > 1.0 + _RANGE_TOL):
        raise ValueError(f"{name}: Gap values must lie in [0, 1]")
    return np.clip(arr, 0.0, 1.0)


def decide_acceptance(
    gap_old: Sequence[float] | np.ndarray,
    gap_new: Sequence[float] | np.ndarray,
    *,
    epsilon: float,
    delta: float,
    min_fidelity: float,
    locality_ok: bool = True,
    locality_margin: float | None = None,
    w_eff: float | None = None,
) -> AcceptanceDecision:
    """Switching rule of Thm 4.2 / Cor. 4.3 on a held-out acceptance batch B.

    ``gap_old[j]`` / ``gap_new[j]`` are Gap_Θold(S_j) / Gap_Θnew(S_j) on held-out contexts
    (never the turns the adapter trained on), in time order. X_j = gap_old − gap_new ∈ [−1, 1],
    Δ̂_B = mean X_j, |B|_eff = :func:`effective_sample_size` (X), γ = γ_B(δ). Accept iff all of

    1. Δ̂_B ≥ ε + γ (Thm 4.2: true improvement ≥ ε with confidence 1 − δ);
    2. mean(1 − gap_new) ≥ ``min_fidelity`` (output-fidelity floor);
    3. ``locality_ok`` and, when ``locality_margin`` is given, ``locality_margin ≥ η + γ``
       (Cor. 4.3), with η = :func:`warm_start_margin` (w_eff, δ) when ``w_eff`` is given
       (Lemma 4.1 applied to the locality statistic estimated on the warm window), else 0.
       ``locality_margin`` is the slack of a bounded locality statistic (e.g.
       :attr:`LocalityScore.margin`). The joint decision holds at confidence 1 − 2δ
       (union bound, Cor. 4.3 / E.1).

    ``more_turns_needed`` (for the engine to keep collecting warm turns, Lemma 4.1): with the
    best case Δ̂ = mean(gap_old) (a perfect new surrogate, gap_new = 0), the needed
    |B|_eff = 2 log(1/δ) / (mean(gap_old) − ε)² (as in :func:`turns_needed`); assuming n_eff
    grows in proportion to n, the extra held-out contexts are ⌈needed · n / n_eff⌉ − n (0 if
    already enough or if the batch passed; ``None`` if mean(gap_old) ≤ ε: no size suffices).
    """
    eps = float(epsilon)
    if not (math.isfinite(eps) and 0.0 <= eps <= 1.0):
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    dlt = _check_delta(delta)
    fmin = float(min_fidelity)
    if not (math.isfinite(fmin) and 0.0 <= fmin <= 1.0):
        raise ValueError(f"min_fidelity must be in [0, 1], got {min_fidelity}")
    old = _gap_series(gap_old, "gap_old")
    new = _gap_series(gap_new, "gap_new")
    if old.shape != new.shape:
        raise ValueError(f"gap_old and gap_new differ in length: {old.size} vs {new.size}")
    margin = None if locality_margin is None else float(locality_margin)
    if margin is not None and not math.isfinite(margin):
        raise ValueError(f"locality_margin must be finite, got {locality_margin}")

    x = old - new
    n = int(x.size)
    n_eff = effective_sample_size(x)
    delta_hat = float(x.mean())
    gamma = acceptance_margin(n_eff, dlt)
    fidelity = float(np.mean(1.0 - new))
    eta = warm_start_margin(w_eff, dlt) if w_eff is not None else None
    required = None if margin is None else (eta or 0.0) + gamma

    best = float(old.mean())  # largest Δ̂ attainable on B: gap_new = 0 everywhere
    # total = needed |B|_eff · n / n_eff: the batch size at which ε + γ ≤ best, if n_eff ∝ n
    sq = (best - eps) ** 2
    total = 2.0 * math.log(1.0 / dlt) / sq * n / n_eff if best > eps and sq > 0.0 else math.inf
    more: int | None
    if delta_hat >= eps + gamma:
        more = 0
    elif not math.isfinite(total):
        more = None  # mean(gap_old) <= ε (up to rounding): no batch size can suffice
    else:
        more = 0 if total <= n else max(1, math.ceil(total - 1e-9) - n)

    fails: list[str] = []
    if delta_hat < eps + gamma:
        msg = f"improvement {delta_hat:.4f} < epsilon + gamma = {eps:.4f} + {gamma:.4f}"
        if more is None:
            msg += f" (unreachable: mean old Gap {best:.4f} <= epsilon)"
        elif more > 0:
            msg += f" (batch too small: {more} more held-out contexts needed, n_eff={n_eff:.2f})"
        fails.append(msg)
    if fidelity < fmin:
        fails.append(f"fidelity {fidelity:.4f} < min_fidelity {fmin:.4f}")
    if not locality_ok:
        fails.append("locality gate failed")
    if margin is not None and required is not None and margin < required:
        fails.append(f"locality margin {margin:.4f} < eta + gamma = {required:.4f}")

    accepted = not fails
    reason = (
        f"accepted: improvement {delta_hat:.4f} >= {eps + gamma:.4f}, fidelity {fidelity:.4f}"
        if accepted
        else "; ".join(fails)
    )
    return AcceptanceDecision(
        accepted=accepted,
        reason=reason,
        n=n,
        n_eff=n_eff,
        delta_hat=delta_hat,
        gamma=gamma,
        epsilon=eps,
        delta=dlt,
        fidelity=fidelity,
        min_fidelity=fmin,
        locality_ok=bool(locality_ok),
        locality_margin=margin,
        locality_required=required,
        eta=eta,
        more_turns_needed=more,
    )


# --------------------------------------------------------------------------------------------
# Growing the acceptance batch: shadow evaluation with sequential looks (Thm 4.2)
# --------------------------------------------------------------------------------------------


def look_delta(look: int, delta: float) -> float:
    """δ_k = δ / 2^k spent at look k = 1, 2, ...: Σ_k δ_k < δ (union bound over the looks).

    A fixed-size bound re-checked after every new context is not valid at δ (optional
    stopping); spending δ over a fixed schedule of looks is.
    """
    k = int(look)
    if k != look or k < 1:
        raise ValueError(f"look must be an integer >= 1, got {look}")
    return _check_delta(delta) / 2.0**k


def look_sizes(epsilon: float, delta: float, max_batch: int) -> list[int]:
    """Batch sizes at which :func:`decide_sequential` looks: n_1, 2 n_1, 4 n_1, ... capped by
    ``max_batch`` (always the last look).

    n_1 = :func:`turns_needed` (ε, δ_1): the smallest batch on which even a perfect adapter
    (Gap_old = 1, Gap_new = 0) could pass Thm 4.2 at δ_1 = δ/2; looking earlier wastes δ.
    With ε = 0.05, δ = 0.1: n_1 = ⌈2 log 20 / 0.95²⌉ = 7, looks at 7, 14, 28, then ``max_batch``.
    """
    cap = int(max_batch)
    if cap != max_batch or cap < 1:
        raise ValueError(f"max_batch must be an integer >= 1, got {max_batch}")
    first = turns_needed(epsilon, look_delta(1, delta), 1.0)
    sizes: list[int] = []
    n = first
    while n < cap:
        sizes.append(n)
        n *= 2
    sizes.append(cap)
    return sizes


def decide_sequential(
    gap_old: Sequence[float] | np.ndarray,
    gap_new: Sequence[float] | np.ndarray,
    *,
    epsilon: float,
    delta: float,
    min_fidelity: float,
    max_batch: int,
    locality_ok: bool = True,
) -> AcceptanceDecision:
    """Thm 4.2 on an acceptance batch that grows one held-out context at a time.

    The batch B holds Gap_old/Gap_new of contexts the candidate never trained on: the held-out
    warm turns, then every later teacher turn answered in the background by the candidate and
    the old surrogate (*shadow evaluation*: the teacher's real answer is the reference, so B
    grows at no teacher cost). Call with the whole batch after each new context.

    Decisions are taken only when |B| reaches a look size n_k (:func:`look_sizes`), with
    δ_k = δ/2^k (:func:`look_delta`), so the whole procedure errs with probability ≤ δ:

    * accept when :func:`decide_acceptance` (δ_k) accepts (Δ̂ ≥ ε + γ_B(δ_k), fidelity floor,
      locality);
    * stop as futile (``final=True``, rejected) when even the upper bound Δ̂ + γ_B(δ_k) < ε,
      or at the last look (``max_batch``);
    * otherwise keep collecting: ``final=False``, ``more_turns_needed`` = n_{k+1} − |B|.

    Between looks the numbers are informational (γ at the next look's δ) and ``final=False``.
    """
    eps = float(epsilon)
    sizes = look_sizes(eps, delta, max_batch)
    n = len(np.atleast_1d(np.asarray(gap_old, dtype=np.float64)))
    at_look = n in sizes
    look = sizes.index(n) + 1 if at_look else next((i + 1 for i, m in enumerate(sizes) if m > n), len(sizes))
    dk = look_delta(look, delta)
    base = decide_acceptance(
        gap_old, gap_new, epsilon=eps, delta=dk, min_fidelity=min_fidelity, locality_ok=locality_ok
    )

    projected: int | None = None
    if base.delta_hat > eps:
        ratio = base.n_eff / n
        for j, m in enumerate(sizes, start=1):
            if m >= n and base.delta_hat >= eps + acceptance_margin(max(m * ratio, 1e-9), look_delta(j, delta)):
                projected = m - n
                break

    next_look = next((m for m in sizes if m > n), None)
    if at_look and base.accepted:
        return _replace(base, final=True, look=look, next_look=None, projected_turns=0, more_turns_needed=0)
    futile = base.delta_hat + base.gamma < eps
    if n >= sizes[-1] or (at_look and futile):
        why = "upper bound below epsilon" if futile else f"no decision within max_batch={sizes[-1]}"
        return _replace(
            base,
            accepted=False,
            reason=f"{base.reason}; stopped: {why}",
            final=True,
            look=look if at_look else None,
            next_look=None,
            projected_turns=projected,
            more_turns_needed=None,
        )
    target = next_look if next_look is not None else sizes[-1]
    if at_look:
        reason = f"look {look} at |B|={n}: {base.reason}; next look at |B|={target}"
    else:
        reason = f"collecting the acceptance batch: {n}/{target} held-out contexts before look {look}"
    return _replace(
        base,
        accepted=False,
        reason=reason,
        final=False,
        look=look if at_look else None,
        next_look=target,
        projected_turns=projected,
        more_turns_needed=target - n,
    )


def _replace(d: AcceptanceDecision, **kw: Any) -> AcceptanceDecision:
    return AcceptanceDecision(**{**asdict(d), **kw})


def decide_fidelity(
    gap_old: Sequence[float] | np.ndarray,
    gap_new: Sequence[float] | np.ndarray,
    *,
    epsilon: float,
    delta: float,
    min_fidelity: float,
    min_improvement: float | None = 0.0,
    locality_ok: bool = True,
    retry_after: int = 1,
) -> AcceptanceDecision:
    """The default switching rule (``gate.mode="fidelity"``) on the held-out batch B.

    Accept iff all of

    1. Δ̂_B = mean(Gap_old − Gap_new) > ``min_improvement``: the adapted surrogate beats the
       one it replaces (the base model at first) on the SAME held-out turns — Thm 4.2's
       quantity, without its confidence margin γ (unreachable at |B| of a few turns, see the
       module docstring). An adapter no better than the base is never served as adapted, even
       when the base alone would clear the fidelity floor;
    2. mean(1 − Gap_new) ≥ ``min_fidelity``;
    3. ``locality_ok``.

    Thm 4.2's own verdict at (ε, δ) is kept in ``bound_met``. ``retry_after``: the held-out
    contexts to wait before retrying after a rejection (``more_turns_needed``).
    ``min_improvement=None`` drops rule 1 (the floor alone decides: permissive setups only)."""
    imp = None if min_improvement is None else float(min_improvement)
    if imp is not None and not (math.isfinite(imp) and 0.0 <= imp <= 1.0):
        raise ValueError(f"min_improvement must be in [0, 1] or None, got {min_improvement}")
    bound = decide_acceptance(
        gap_old, gap_new, epsilon=epsilon, delta=delta, min_fidelity=min_fidelity, locality_ok=locality_ok
    )
    fails: list[str] = []
    if imp is not None and not bound.delta_hat > imp:
        fails.append(f"no improvement: held-out Gap_old - Gap_new = {bound.delta_hat:.4f} <= min_improvement {imp:.4f}")
    if bound.fidelity < bound.min_fidelity:
        fails.append(f"fidelity {bound.fidelity:.4f} < min_fidelity {bound.min_fidelity}")
    if not locality_ok:
        fails.append("locality gate failed")
    ok = not fails
    reason = (
        f"improvement {bound.delta_hat:.4f} > {imp if imp is not None else '(off)'} and fidelity "
        f"{bound.fidelity:.4f} >= min_fidelity {bound.min_fidelity}"
        if ok
        else "; ".join(fails)
    )
    bound_note = "met" if bound.accepted else f"not met: {bound.reason}"
    return _replace(
        bound,
        accepted=ok,
        reason=f"{reason} (Thm 4.2 bound {bound_note})",
        mode="fidelity",
        bound_met=bound.accepted,
        more_turns_needed=0 if ok else max(1, int(retry_after)),
    )


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
        unit = _unit_rows(arr)
        if np.any(np.linalg.norm(unit, axis=1) == 0.0):
            raise ValueError("LocalityModel: zero embedding (no direction)")
        return unit

    def _refresh(self) -> None:
        mean = self._emb.mean(axis=0)
        self._centroid = _unit_rows(mean[None, :])[0]
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
    sims = _unit_rows(w.reshape(len(w), -1)) @ _unit_rows(v.reshape(len(v), -1)).T
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
    q = _unit_rows(np.asarray(query, dtype=np.float64).reshape(1, -1))[0]
    if previous is None:
        return q
    p = _unit_rows(np.asarray(previous, dtype=np.float64).reshape(1, -1))[0]
    if p.shape != q.shape:
        raise ValueError(f"context_embedding: shapes differ, {q.shape} vs {p.shape}")
    m = q + p
    norm = float(np.linalg.norm(m))
    return q if norm == 0.0 else m / norm


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
        self._centroid = _unit_rows(centroid[None, :])[0]

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


# --------------------------------------------------------------------------------------------
# Drift monitor and audits (Sec. 3.3)
# --------------------------------------------------------------------------------------------


class _ScoreLike(Protocol):
    ok: bool
    borderline: bool


class DriftMonitor:
    """Rollback trigger from audit Gaps and locality outcomes (Sec. 3.3).

    * ``observe_gap(g)``: a breach is g > ``drift_threshold``; True (roll back) once
      ``consecutive`` breaches come in a row. A non-breach resets the streak.
    * ``observe_locality(score)``: a *severe* failure (not ok and not borderline, i.e. beyond
      the border band of a bound) rolls back at once; a borderline failure counts toward a
      streak of min(``consecutive``, 2); an ok score resets it. So an abrupt topic shift rolls
      back within two turns whatever ``consecutive`` is.

    * ``pair_threshold`` set (the engine: 2 · ``gate.locality_threshold``): scores that carry a
      ``statistic`` (:class:`SessionLocality`) roll back when two consecutive statistics sum
      above it, x_{t−1} + x_t > pair_threshold, or at once when severe. This is the two-turn
      rule measured in ``benchmarks/drift.py``; it replaces the borderline streak.

    Streaks are not cleared on a True result: call :meth:`reset` after rolling back.
    ``window`` recent values of each kind are kept for inspection.
    """

    def __init__(
        self,
        drift_threshold: float = 0.5,
        consecutive: int = 2,
        window: int = 32,
        pair_threshold: float | None = None,
    ) -> None:
        thr = float(drift_threshold)
        if not (math.isfinite(thr) and 0.0 <= thr <= 1.0):
            raise ValueError(f"drift_threshold must be in [0, 1], got {drift_threshold}")
        if int(consecutive) != consecutive or consecutive < 1:
            raise ValueError(f"consecutive must be an integer >= 1, got {consecutive}")
        if int(window) != window or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window}")
        if pair_threshold is not None and not (math.isfinite(float(pair_threshold)) and pair_threshold >= 0.0):
            raise ValueError(f"pair_threshold must be finite and >= 0, got {pair_threshold}")
        self.drift_threshold = thr
        self.consecutive = int(consecutive)
        self.window = int(window)
        self.pair_threshold = None if pair_threshold is None else float(pair_threshold)
        self.gaps: deque[float] = deque(maxlen=self.window)
        self.locality: deque[str] = deque(maxlen=self.window)  # "ok" | "borderline" | "severe"
        self.statistics: deque[float] = deque(maxlen=self.window)
        self.last_statistic: float | None = None
        self.gap_streak = 0
        self.locality_streak = 0

    @classmethod
    def from_config(cls, gate: Any, window: int = 32) -> DriftMonitor:
        """Build from a :class:`~soma_engine.config.GateConfig` (pair rule at 2 · locality_threshold)."""
        return cls(gate.drift_threshold, gate.consecutive, window, 2.0 * float(gate.locality_threshold))

    @property
    def locality_limit(self) -> int:
        return min(self.consecutive, 2)

    def observe_gap(self, g: float) -> bool:
        """Record an audit Gap; True when ``consecutive`` breaches in a row → roll back."""
        v = float(g)
        if not (math.isfinite(v) and -_RANGE_TOL <= v <= 1.0 + _RANGE_TOL):
            raise ValueError(f"audit Gap must be in [0, 1], got {g}")
        v = min(max(v, 0.0), 1.0)
        self.gaps.append(v)
        self.gap_streak = self.gap_streak + 1 if v > self.drift_threshold else 0
        return self.gap_streak >= self.consecutive

    def observe_locality(self, score: _ScoreLike) -> bool:
        """Record a :class:`LocalityScore`; True → roll back (severe now; then the two-turn
        sum in pair mode, else a borderline streak)."""
        stat = getattr(score, "statistic", None)
        if self.pair_threshold is not None and stat is not None:
            x = float(stat)
            outcome = "ok" if score.ok else ("borderline" if score.borderline else "severe")
            self.locality.append(outcome)
            self.statistics.append(x)
            fire = outcome == "severe" or (
                self.last_statistic is not None and self.last_statistic + x > self.pair_threshold
            )
            self.locality_streak = self.locality_streak + 1 if not score.ok else 0
            self.last_statistic = x
            return fire
        if score.ok:
            self.locality.append("ok")
            self.locality_streak = 0
            return False
        if not score.borderline:
            self.locality.append("severe")
            self.locality_streak += 1
            return True
        self.locality.append("borderline")
        self.locality_streak += 1
        return self.locality_streak >= self.locality_limit

    def reset(self) -> None:
        """Clear streaks and windows (after a rollback or a new adapter)."""
        self.gaps.clear()
        self.locality.clear()
        self.statistics.clear()
        self.last_statistic = None
        self.gap_streak = 0
        self.locality_streak = 0

    def state(self) -> dict[str, Any]:
        return {
            "drift_threshold": self.drift_threshold,
            "consecutive": self.consecutive,
            "window": self.window,
            "pair_threshold": self.pair_threshold,
            "gaps": list(self.gaps),
            "locality": list(self.locality),
            "statistics": list(self.statistics),
            "last_statistic": self.last_statistic,
            "gap_streak": self.gap_streak,
            "locality_streak": self.locality_streak,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DriftMonitor:
        mon = cls(state["drift_threshold"], state["consecutive"], state.get("window", 32), state.get("pair_threshold"))
        mon.gaps.extend(float(g) for g in state.get("gaps", ()))
        mon.statistics.extend(float(x) for x in state.get("statistics", ()))
        last = state.get("last_statistic")
        mon.last_statistic = None if last is None else float(last)
        for item in state.get("locality", ()):
            if item not in ("ok", "borderline", "severe"):
                raise ValueError(f"DriftMonitor.from_state: bad locality outcome {item!r}")
            mon.locality.append(item)
        mon.gap_streak = int(state.get("gap_streak", 0))
        mon.locality_streak = int(state.get("locality_streak", 0))
        return mon


def audit_rng(seed: int, session: str, turn: int) -> random.Random:
    """The audit draw's generator for one turn of one session under ``gate.audit_seed``:
    seeded by the three, so a session's audits do not depend on what other sessions (or
    replicas) drew before it, and one seed does not give every session the same stream."""
    return random.Random(f"audit-{int(seed)}-{session}-{int(turn)}")


def should_audit(rng: random.Random, audit_rate: float, borderline: bool = False) -> bool:
    """Audit this surrogate turn against the teacher? Always when locality is borderline,
    otherwise with probability ``audit_rate`` (one ``rng.random()`` draw)."""
    rate = float(audit_rate)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"audit_rate must be in [0, 1], got {audit_rate}")
    if borderline:
        return True
    return rng.random() < rate
