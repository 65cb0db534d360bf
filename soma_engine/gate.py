"""Acceptance gate, locality and drift (paper Sec. 3.3, 4.1 and appendix E).

Pure numpy: embeddings φ(·) arrive as arrays of shape ``[n, d]`` computed elsewhere.

* :func:`gap` — Gap_Θ(S) = 1 − cos(φ(a^G), φ(a^F)) ∈ [0, 1] (Sec. 4.1).
* :func:`effective_sample_size` — N_eff of appendix E, used by Lemma 4.1 and Thm 4.2.
* :func:`warm_start_margin` (Lemma 4.1), :func:`acceptance_margin` (Thm 4.2),
  :func:`turns_needed` and :func:`decide_acceptance` (Thm 4.2 / Cor. 4.3).
* :class:`LocalityModel` — per-session locality gate: nearest neighbours among the session's
  turns plus a calibration from the warm turns' own spread (NOTES.md, "Drift and locality").
* :class:`DriftMonitor` — consecutive audit-Gap / locality breaches trigger rollback (Sec. 3.3).
* :func:`should_audit` — sampled audits, always on borderline locality.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

__all__ = [
    "AcceptanceDecision",
    "DriftMonitor",
    "LocalityModel",
    "LocalityScore",
    "acceptance_margin",
    "decide_acceptance",
    "effective_sample_size",
    "gap",
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
# Locality (Sec. 3.3; NOTES.md "Drift and locality")
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalityScore:
    """One query's locality against the session (cosine distances, 1 − cos).

    ``margin`` is the smaller slack of the two bounds, in cosine distance:
    min(threshold − distance_to_centroid, nn_bound − nn_distance); negative when failing.
    ``severe`` (not ok and not borderline) marks a query far beyond a bound.
    """

    distance_to_centroid: float
    nn_distance: float
    z: float
    ok: bool
    borderline: bool
    margin: float = 0.0

    @property
    def severe(self) -> bool:
        return not self.ok and not self.borderline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _GateLike(Protocol):
    locality_threshold: float


class LocalityModel:
    """Per-session locality gate (Sec. 3.3), built from the warm turns' embeddings.

    Each row is φ of a warm query *together with its previous turn's context* (the caller
    embeds the text). NOTES.md measured that a fixed threshold on a bare query's distance to
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
        params = {
            "threshold": threshold,
            "z_max": z_max,
            "border_z": border_z,
            "border_abs": border_abs,
            "min_std": min_std,
            "rel_std_floor": rel_std_floor,
        }
        for name, value in params.items():
            v = float(value)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"LocalityModel: {name} must be finite and >= 0, got {value}")
        if min_std <= 0.0:
            raise ValueError(f"LocalityModel: min_std must be > 0, got {min_std}")
        self.threshold = float(threshold)
        self.z_max = float(z_max)
        self.border_z = float(border_z)
        self.border_abs = float(border_abs)
        self.min_std = float(min_std)
        self.rel_std_floor = float(rel_std_floor)
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

    Streaks are not cleared on a True result: call :meth:`reset` after rolling back.
    ``window`` recent values of each kind are kept for inspection.
    """

    def __init__(self, drift_threshold: float = 0.5, consecutive: int = 2, window: int = 32) -> None:
        thr = float(drift_threshold)
        if not (math.isfinite(thr) and 0.0 <= thr <= 1.0):
            raise ValueError(f"drift_threshold must be in [0, 1], got {drift_threshold}")
        if int(consecutive) != consecutive or consecutive < 1:
            raise ValueError(f"consecutive must be an integer >= 1, got {consecutive}")
        if int(window) != window or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window}")
        self.drift_threshold = thr
        self.consecutive = int(consecutive)
        self.window = int(window)
        self.gaps: deque[float] = deque(maxlen=self.window)
        self.locality: deque[str] = deque(maxlen=self.window)  # "ok" | "borderline" | "severe"
        self.gap_streak = 0
        self.locality_streak = 0

    @classmethod
    def from_config(cls, gate: Any, window: int = 32) -> DriftMonitor:
        """Build from a :class:`~soma_engine.config.GateConfig`."""
        return cls(gate.drift_threshold, gate.consecutive, window)

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
        """Record a :class:`LocalityScore`; True → roll back (severe now, borderline streak)."""
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
        self.gap_streak = 0
        self.locality_streak = 0

    def state(self) -> dict[str, Any]:
        return {
            "drift_threshold": self.drift_threshold,
            "consecutive": self.consecutive,
            "window": self.window,
            "gaps": list(self.gaps),
            "locality": list(self.locality),
            "gap_streak": self.gap_streak,
            "locality_streak": self.locality_streak,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DriftMonitor:
        mon = cls(state["drift_threshold"], state["consecutive"], state.get("window", 32))
        mon.gaps.extend(float(g) for g in state.get("gaps", ()))
        for item in state.get("locality", ()):
            if item not in ("ok", "borderline", "severe"):
                raise ValueError(f"DriftMonitor.from_state: bad locality outcome {item!r}")
            mon.locality.append(item)
        mon.gap_streak = int(state.get("gap_streak", 0))
        mon.locality_streak = int(state.get("locality_streak", 0))
        return mon


def should_audit(rng: random.Random, audit_rate: float, borderline: bool = False) -> bool:
    """Audit this surrogate turn against the teacher? Always when locality is borderline,
    otherwise with probability ``audit_rate`` (one ``rng.random()`` draw)."""
    rate = float(audit_rate)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"audit_rate must be in [0, 1], got {audit_rate}")
    if borderline:
        return True
    return rng.random() < rate
