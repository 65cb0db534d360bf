"""Gap, N_eff and the margins of the acceptance bound (paper Sec. 4.1 and appendix E).

Pure numpy: embeddings φ(·) arrive as arrays of shape ``[n, d]`` computed elsewhere.

* :func:`gap` — Gap_Θ(S) = 1 − cos(φ(a^G), φ(a^F)) ∈ [0, 1] (Sec. 4.1).
* :func:`effective_sample_size` — N_eff of appendix E, used by Lemma 4.1 and Theorem 4.2.
* :func:`warm_start_margin` (Lemma 4.1), :func:`acceptance_margin` (Theorem 4.2, Thm 4.2) and
  :func:`turns_needed` (Corollary 4.3, Cor. 4.3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONST_TOL = 1e-12
# Gap values may overshoot [0, 1] by rounding; more than this is a caller error.
RANGE_TOL = 1e-9


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
    a = unit_rows(a)
    b = unit_rows(b)
    return np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)


def unit_rows(x: np.ndarray) -> np.ndarray:
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
    if float(np.max(np.abs(y))) <= CONST_TOL:
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


def check_delta(delta: float) -> float:
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
    return math.sqrt(2.0 * math.log(2.0 / check_delta(delta)) / w)


def acceptance_margin(b_eff: float, delta: float) -> float:
    """γ_B(δ) = sqrt(2 log(1/δ) / |B|_eff): Thm 4.2's one-sided margin for X_j ∈ [−1, 1]."""
    b = _check_size(b_eff, "b_eff")
    return math.sqrt(2.0 * math.log(1.0 / check_delta(delta)) / b)


def turns_needed(epsilon: float, delta: float, target_delta_hat: float = 1.0) -> int:
    """Smallest integer |B|_eff with ε + γ_B(δ) ≤ ``target_delta_hat`` (Thm 4.2).

    That is ⌈2 log(1/δ) / (target − ε)²⌉. The default target 1 is the largest Δ̂ possible
    (X_j ≤ 1), so the result is a lower bound for any batch. Raises ``ValueError`` when
    ``target_delta_hat <= epsilon``: no batch size can clear the margin then.
    """
    eps = float(epsilon)
    target = float(target_delta_hat)
    check_delta(delta)
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
