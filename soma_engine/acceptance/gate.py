"""The acceptance gate (paper Theorem 4.2, Thm 4.2; Corollary 4.3): decide from held-out
Gaps whether the adapted surrogate may serve.

* :func:`decide_acceptance` — Theorem 4.2 / Corollary 4.3 on one batch.
* :func:`look_sizes`, :func:`look_delta`, :func:`decide_sequential` — Theorem 4.2 applied to an
  acceptance batch that grows by shadow evaluation, with δ spent over the looks.
* :func:`decide_fidelity` — the default mode (below).

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

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .bounds import RANGE_TOL, acceptance_margin, check_delta, effective_sample_size, turns_needed, warm_start_margin

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
    if np.any(arr < -RANGE_TOL) or np.any(arr > 1.0 + RANGE_TOL):
        raise ValueError(f"{name}: Gap values must lie in [0, 1]")
    return np.clip(arr, 0.0, 1.0)


def _checked_inputs(
    gap_old: Sequence[float] | np.ndarray,
    gap_new: Sequence[float] | np.ndarray,
    epsilon: float,
    delta: float,
    min_fidelity: float,
    locality_margin: float | None,
) -> tuple[np.ndarray, np.ndarray, float, float, float, float | None]:
    """decide_acceptance's arguments validated: the two Gap series, ε, δ, the fidelity floor
    and the locality margin (ValueError naming the bad one)."""
    eps = float(epsilon)
    if not (math.isfinite(eps) and 0.0 <= eps <= 1.0):
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    dlt = check_delta(delta)
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
    return old, new, eps, dlt, fmin, margin


def _more_turns_needed(old: np.ndarray, eps: float, dlt: float, n_eff: float, passed: bool) -> int | None:
    """Held-out contexts still missing before ε + γ can be reached (decide_acceptance's
    ``more_turns_needed``): 0 when the batch passed or is large enough, None when no size can."""
    n = int(old.size)
    best = float(old.mean())  # largest Δ̂ attainable on B: gap_new = 0 everywhere
    # total = needed |B|_eff · n / n_eff: the batch size at which ε + γ ≤ best, if n_eff ∝ n
    sq = (best - eps) ** 2
    total = 2.0 * math.log(1.0 / dlt) / sq * n / n_eff if best > eps and sq > 0.0 else math.inf
    if passed:
        return 0
    if not math.isfinite(total):
        return None  # mean(gap_old) <= ε (up to rounding): no batch size can suffice
    return 0 if total <= n else max(1, math.ceil(total - 1e-9) - n)


def _failures(d: AcceptanceDecision, best: float) -> list[str]:
    """Why a decision's numbers fail the rule (empty: accepted); ``best`` = mean(gap_old)."""
    fails: list[str] = []
    if d.delta_hat < d.epsilon + d.gamma:
        msg = f"improvement {d.delta_hat:.4f} < epsilon + gamma = {d.epsilon:.4f} + {d.gamma:.4f}"
        if d.more_turns_needed is None:
            msg += f" (unreachable: mean old Gap {best:.4f} <= epsilon)"
        elif d.more_turns_needed > 0:
            msg += f" (batch too small: {d.more_turns_needed} more held-out contexts needed, n_eff={d.n_eff:.2f})"
        fails.append(msg)
    if d.fidelity < d.min_fidelity:
        fails.append(f"fidelity {d.fidelity:.4f} < min_fidelity {d.min_fidelity:.4f}")
    if not d.locality_ok:
        fails.append("locality gate failed")
    if d.locality_margin is not None and d.locality_required is not None and d.locality_margin < d.locality_required:
        fails.append(f"locality margin {d.locality_margin:.4f} < eta + gamma = {d.locality_required:.4f}")
    return fails


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
    old, new, eps, dlt, fmin, margin = _checked_inputs(gap_old, gap_new, epsilon, delta, min_fidelity, locality_margin)
    x = old - new
    n_eff = effective_sample_size(x)
    delta_hat = float(x.mean())
    gamma = acceptance_margin(n_eff, dlt)
    eta = warm_start_margin(w_eff, dlt) if w_eff is not None else None
    numbers = AcceptanceDecision(
        accepted=False,
        reason="",
        n=int(x.size),
        n_eff=n_eff,
        delta_hat=delta_hat,
        gamma=gamma,
        epsilon=eps,
        delta=dlt,
        fidelity=float(np.mean(1.0 - new)),
        min_fidelity=fmin,
        locality_ok=bool(locality_ok),
        locality_margin=margin,
        locality_required=None if margin is None else (eta or 0.0) + gamma,
        eta=eta,
        more_turns_needed=_more_turns_needed(old, eps, dlt, n_eff, delta_hat >= eps + gamma),
    )
    fails = _failures(numbers, float(old.mean()))
    reason = (
        f"accepted: improvement {delta_hat:.4f} >= {eps + gamma:.4f}, fidelity {numbers.fidelity:.4f}"
        if not fails
        else "; ".join(fails)
    )
    return _replace(numbers, accepted=not fails, reason=reason)


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
    return check_delta(delta) / 2.0**k


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
