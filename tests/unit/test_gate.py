"""Tests for soma_engine.acceptance (bounds, gate): Gap, N_eff and margins (appendix E, Lemma 4.1, Thm 4.2),
the acceptance decision (Cor. 4.3), locality, drift and audits."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from soma_engine.acceptance.bounds import acceptance_margin, effective_sample_size, gap, turns_needed, warm_start_margin
from soma_engine.acceptance.gate import (
    AcceptanceDecision,
    decide_acceptance,
    decide_fidelity,
    decide_sequential,
    look_delta,
    look_sizes,
)
from soma_engine.drift.features import (
    FAR_WORD_COS,
    content_words,
    context_embedding,
    context_pmi,
    far_words,
    novel_words,
)
from soma_engine.drift.locality import LocalityModel, LocalityScore, SessionLocality
from soma_engine.drift.monitor import DriftMonitor, audit_rng, should_audit

# ---------------------------------------------------------------------------- helpers


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def cluster(rng: np.random.Generator, center: np.ndarray, n: int, spread: float) -> np.ndarray:
    d = center.size
    return center + spread * rng.standard_normal((n, d)) / math.sqrt(d)


def basis(d: int, i: int) -> np.ndarray:
    e = np.zeros(d)
    e[i] = 1.0
    return e


# ---------------------------------------------------------------------------- gap


def test_gap_vectors_and_rows() -> None:
    a = np.array([1.0, 0.0])
    assert gap(a, a) == pytest.approx(0.0)
    assert gap(a, np.array([0.0, 2.0])) == pytest.approx(1.0)
    assert gap(a, -a) == 1.0  # 1 - cos = 2, clipped
    assert gap(a, np.array([1.0, 1.0])) == pytest.approx(1 - 1 / math.sqrt(2))
    rows = gap(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[3.0, 0.0], [0.0, 1.0]]))
    assert isinstance(rows, np.ndarray)
    np.testing.assert_allclose(rows, [0.0, 1.0], atol=1e-12)
    assert gap(np.zeros(2), a) == 1.0  # no direction: conservative


def test_gap_validates() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        gap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        gap(np.array([np.nan, 1.0]), np.ones(2))
    with pytest.raises(ValueError):
        gap(np.ones((2, 2, 2)), np.ones((2, 2, 2)))


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float64, (5, 4), elements=st.floats(-1e6, 1e6)),
    hnp.arrays(np.float64, (5, 4), elements=st.floats(-1e6, 1e6)),
)
def test_gap_in_unit_interval(a: np.ndarray, b: np.ndarray) -> None:
    g = gap(a, b)
    assert np.all((g >= 0.0) & (g <= 1.0))


# ---------------------------------------------------------------------------- N_eff


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_neff_within_one_and_n(x: np.ndarray) -> None:
    n_eff = effective_sample_size(x)
    assert 1.0 <= n_eff <= x.size


def test_neff_iid_close_to_n() -> None:
    ratios = []
    for seed in range(30):
        x = np.random.default_rng(seed).standard_normal(400)
        ratios.append(effective_sample_size(x) / 400)
    assert np.mean(ratios) >= 0.8
    assert min(ratios) >= 0.5
    big = np.random.default_rng(123).standard_normal(2000)
    assert effective_sample_size(big) >= 0.75 * 2000
    single = np.random.default_rng(7).standard_normal(200)
    assert effective_sample_size(single) >= 0.75 * 200


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neff_ar1_matches_theory(seed: int) -> None:
    n, phi = 2000, 0.9
    theory = (1 - phi) / (1 + phi) * n  # ≈ 105
    n_eff = effective_sample_size(ar1(n, phi, seed))
    assert n_eff < 0.2 * n
    assert theory / 2 <= n_eff <= theory * 2


def test_neff_special_cases() -> None:
    assert effective_sample_size([0.3]) == 1.0
    assert effective_sample_size([0.4] * 50) == 1.0  # constant: ρ ≡ 1 limit, conservative
    assert effective_sample_size(np.zeros(10)) == 1.0
    alternating = np.array([1.0, -1.0] * 50)
    assert effective_sample_size(alternating) == 100.0  # negative correlation not credited
    trend = np.linspace(0, 1, 100)
    assert effective_sample_size(trend) < 10
    with pytest.raises(ValueError, match="empty"):
        effective_sample_size([])
    with pytest.raises(ValueError, match="NaN"):
        effective_sample_size([1.0, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        effective_sample_size(np.ones((3, 3)))


# ---------------------------------------------------------------------------- margins


@pytest.mark.parametrize(("n", "delta"), [(50, 0.1), (1, 0.5), (4, 0.05), (37.5, 0.01), (1000, 0.2)])
def test_margins_closed_form(n: float, delta: float) -> None:
    assert acceptance_margin(n, delta) == pytest.approx(math.sqrt(2 * math.log(1 / delta) / n))
    assert warm_start_margin(n, delta) == pytest.approx(math.sqrt(2 * math.log(2 / delta) / n))


def test_margin_known_value() -> None:
    assert acceptance_margin(50, 0.1) == pytest.approx(math.sqrt(2 * math.log(10) / 50))
    assert warm_start_margin(4, 0.1) == pytest.approx(math.sqrt(2 * math.log(20) / 4))


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0.5, 1e5),
    st.floats(1.01, 100.0),
    st.floats(1e-6, 1 - 1e-6, exclude_min=True, exclude_max=True),
)
def test_margins_decrease_with_samples(n: float, factor: float, delta: float) -> None:
    assert acceptance_margin(n * factor, delta) < acceptance_margin(n, delta)
    assert warm_start_margin(n * factor, delta) < warm_start_margin(n, delta)
    assert warm_start_margin(n, delta) > acceptance_margin(n, delta)  # log(2/δ) > log(1/δ)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 0.1), "> 0"),
        ((-1, 0.1), "> 0"),
        ((10, 0.0), "delta"),
        ((10, 1.0), "delta"),
        ((float("inf"), 0.1), "> 0"),
        ((float("nan"), 0.1), "> 0"),
    ],
)
def test_margins_validate(args: tuple[float, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        acceptance_margin(*args)
    with pytest.raises(ValueError, match=match):
        warm_start_margin(*args)


def test_turns_needed() -> None:
    # ε + γ ≤ 1  ⇔  n ≥ 2 log(10) / 0.95² = 5.10 → 6
    assert turns_needed(0.05, 0.1) == 6
    assert 0.05 + acceptance_margin(6, 0.1) <= 1.0 < 0.05 + acceptance_margin(5, 0.1)
    assert turns_needed(0.05, 0.1, 0.4) == math.ceil(2 * math.log(10) / 0.35**2)
    assert turns_needed(0.0, 0.5, 1.0) == 2  # 2 log 2 = 1.386
    with pytest.raises(ValueError, match="unreachable"):
        turns_needed(0.3, 0.1, 0.3)
    with pytest.raises(ValueError, match="delta"):
        turns_needed(0.05, 1.5)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 0.9), st.floats(0.001, 0.5), st.floats(0.05, 1.0))
def test_turns_needed_is_smallest(eps: float, delta: float, extra: float) -> None:
    target = min(1.0, eps + extra)
    if target <= eps:
        return
    k = turns_needed(eps, delta, target)
    assert eps + acceptance_margin(k, delta) <= target + 1e-12
    if k > 1:
        assert eps + acceptance_margin(k - 1, delta) > target


# ---------------------------------------------------------------------------- decide_acceptance

KW = {"epsilon": 0.05, "delta": 0.1, "min_fidelity": 0.6}


def improving_batch(n: int, improvement: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    old = rng.uniform(0.5, 0.8, n)
    new = np.clip(old - improvement + 0.03 * rng.standard_normal(n), 0, 1)
    return old, new


def test_accepts_clear_improvement() -> None:
    old, new = improving_batch(80, 0.45)
    d = decide_acceptance(old, new, **KW)
    assert d.accepted, d.reason
    assert d.n == 80 and d.n_eff > 40
    assert d.delta_hat >= d.epsilon + d.gamma
    assert d.gamma == pytest.approx(acceptance_margin(d.n_eff, 0.1))
    assert d.more_turns_needed == 0
    assert d.reason.startswith("accepted")


def test_rejects_improvement_below_margin() -> None:
    old, new = improving_batch(80, 0.15)  # Δ̂ ≈ 0.15 < 0.05 + γ(80) ≈ 0.29
    d = decide_acceptance(old, new, **KW)
    assert not d.accepted
    assert d.delta_hat < d.epsilon + d.gamma
    assert "improvement" in d.reason
    assert d.more_turns_needed == 0  # a perfect surrogate could pass at this size


def test_rejects_low_fidelity() -> None:
    rng = np.random.default_rng(1)
    old = np.full(80, 1.0) - 0.01 * rng.random(80)
    new = np.clip(old - 0.5 + 0.02 * rng.standard_normal(80), 0, 1)  # fidelity ≈ 0.5
    d = decide_acceptance(old, new, **KW)
    assert d.delta_hat >= d.epsilon + d.gamma
    assert d.fidelity < 0.6
    assert not d.accepted and "fidelity" in d.reason
    assert decide_acceptance(old, new, **{**KW, "min_fidelity": 0.4}).accepted


def test_rejects_locality_failure() -> None:
    old, new = improving_batch(80, 0.45)
    d = decide_acceptance(old, new, **KW, locality_ok=False)
    assert not d.accepted and "locality" in d.reason


def test_locality_margin_uses_eta_plus_gamma() -> None:
    old, new = improving_batch(200, 0.45)
    base = decide_acceptance(old, new, **KW)
    eta = warm_start_margin(400, 0.1)
    required = eta + base.gamma
    ok = decide_acceptance(old, new, **KW, locality_margin=required + 0.01, w_eff=400)
    bad = decide_acceptance(old, new, **KW, locality_margin=required - 0.01, w_eff=400)
    assert ok.accepted, ok.reason
    assert ok.eta == pytest.approx(eta)
    assert ok.locality_required == pytest.approx(required)
    assert not bad.accepted and "locality margin" in bad.reason
    # Without w_eff, η = 0: only γ is required.
    no_w = decide_acceptance(old, new, **KW, locality_margin=base.gamma + 0.01)
    assert no_w.accepted and no_w.eta is None
    assert no_w.locality_required == pytest.approx(base.gamma)


def test_tiny_batch_reports_more_turns() -> None:
    d = decide_acceptance([0.6, 0.7], [0.0, 0.05], **KW)
    assert not d.accepted
    assert d.more_turns_needed is not None and d.more_turns_needed > 0
    # the suggested size makes the best case (gap_new = 0) reachable, if n_eff scales with n
    total = d.n + d.more_turns_needed
    best = 0.65
    assert KW["epsilon"] + acceptance_margin(total * d.n_eff / d.n, 0.1) <= best + 1e-9
    assert KW["epsilon"] + acceptance_margin((total - 1) * d.n_eff / d.n, 0.1) > best
    assert "more held-out contexts" in d.reason


def test_unreachable_when_old_gap_below_epsilon() -> None:
    d = decide_acceptance([0.03] * 20, [0.01] * 20, **KW)
    assert not d.accepted
    assert d.more_turns_needed is None
    assert "unreachable" in d.reason


def test_decision_to_dict_has_numbers() -> None:
    old, new = improving_batch(30, 0.3)
    d = decide_acceptance(old, new, **KW, locality_margin=0.5, w_eff=10)
    out = d.to_dict()
    json.dumps(out)
    for key in (
        "accepted",
        "reason",
        "n",
        "n_eff",
        "delta_hat",
        "gamma",
        "epsilon",
        "delta",
        "fidelity",
        "min_fidelity",
        "locality_ok",
        "locality_margin",
        "locality_required",
        "eta",
        "more_turns_needed",
    ):
        assert key in out
    assert out["n"] == 30
    assert out["delta_hat"] == pytest.approx(float(np.mean(old - new)))
    assert out["fidelity"] == pytest.approx(float(np.mean(1 - new)))
    assert out["eta"] == pytest.approx(warm_start_margin(10, 0.1))
    assert isinstance(d, AcceptanceDecision)


@pytest.mark.parametrize(
    ("old", "new", "kw", "match"),
    [
        ([0.5], [0.5, 0.4], {}, "length"),
        ([], [], {}, "non-empty"),
        ([1.5], [0.5], {}, r"\[0, 1\]"),
        ([0.5], [float("nan")], {}, "NaN"),
        ([0.5], [0.4], {"delta": 0.0}, "delta"),
        ([0.5], [0.4], {"epsilon": -0.1}, "epsilon"),
        ([0.5], [0.4], {"min_fidelity": 2.0}, "min_fidelity"),
        ([0.5], [0.4], {"locality_margin": float("inf")}, "locality_margin"),
    ],
)
def test_decide_acceptance_validates(old: list, new: list, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decide_acceptance(old, new, **{**KW, **kw})


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=60),
    st.floats(0, 0.5),
)
def test_acceptance_implies_bound(pairs: list[tuple[float, float]], eps: float) -> None:
    old = [p[0] for p in pairs]
    new = [p[1] for p in pairs]
    d = decide_acceptance(old, new, epsilon=eps, delta=0.1, min_fidelity=0.0)
    assert 1.0 <= d.n_eff <= d.n
    assert d.accepted == (d.delta_hat >= eps + d.gamma)
    if d.accepted:
        assert d.more_turns_needed == 0


# ---------------------------------------------------------------------------- locality

D = 32


def test_locality_on_cluster_ok_orthogonal_not() -> None:
    rng = np.random.default_rng(0)
    e0 = basis(D, 0)
    model = LocalityModel(cluster(rng, e0, 6, 0.15), threshold=0.9)
    near = model.score(cluster(rng, e0, 1, 0.15)[0])
    assert near.ok and near.z < model.z_max
    far = model.score(basis(D, 1))
    assert not far.ok
    assert far.distance_to_centroid > 0.9 and far.severe and far.margin < 0
    assert isinstance(far, LocalityScore)


def test_locality_calibration_adapts_to_spread() -> None:
    rng = np.random.default_rng(1)
    e0 = basis(D, 0)
    tight = LocalityModel(cluster(rng, e0, 6, 0.1))
    wide = LocalityModel(cluster(rng, e0, 6, 1.0))
    assert wide.mu > tight.mu and wide.nn_bound > tight.nn_bound
    query = cluster(rng, e0, 1, 0.6)[0]  # moderately off the axis, well under the threshold
    s_tight, s_wide = tight.score(query), wide.score(query)
    assert s_tight.distance_to_centroid < 0.5
    assert not s_tight.ok
    assert s_wide.ok
    assert s_wide.z < s_tight.z


def test_locality_absolute_threshold_binds() -> None:
    rng = np.random.default_rng(2)
    warm = cluster(rng, basis(D, 0), 8, 2.0)  # very spread: calibrated bound is loose
    loose = LocalityModel(warm, threshold=2.0)
    strict = LocalityModel(warm, threshold=0.05)
    q = cluster(rng, basis(D, 0), 1, 0.5)[0]
    assert loose.score(q).ok
    s = strict.score(q)
    assert not s.ok and s.distance_to_centroid > 0.05


def test_locality_borderline_band() -> None:
    e0, e1 = basis(D, 0), basis(D, 1)
    warm = np.stack([e0 + 0.1 * e1, e0 - 0.1 * e1, e0 + 0.1 * basis(D, 2)])
    model = LocalityModel(warm, threshold=2.0, z_max=3.0, border_z=1.0)
    bound = model.nn_bound
    # find queries whose nn distance sits just inside / just outside the calibrated bound
    scores = []
    for t in np.linspace(0, 1.5, 400):
        scores.append(model.score(e0 + t * basis(D, 5)))
    near = [s for s in scores if abs(s.nn_distance - bound) < 0.5 * model.sigma_eff]
    assert near and all(s.borderline for s in near)
    assert any(s.ok for s in near) and any(not s.ok for s in near)
    beyond = [s for s in scores if s.nn_distance > bound + 2 * model.sigma_eff]
    assert beyond and all(s.severe for s in beyond)
    inside = [s for s in scores if s.nn_distance < bound - 2 * model.sigma_eff]
    assert inside and all(s.ok and not s.borderline for s in inside)


def test_locality_uses_nearest_neighbour_not_only_centroid() -> None:
    # two sub-topics; a query repeating one of them is far from the centroid, near a turn
    e0, e1 = basis(D, 0), basis(D, 1)
    rng = np.random.default_rng(3)
    warm = np.vstack([cluster(rng, e0, 3, 0.1), cluster(rng, e1, 3, 0.1)])
    model = LocalityModel(warm, threshold=0.9)
    s = model.score(e0)
    assert s.distance_to_centroid > 0.25
    assert s.nn_distance < 0.05
    assert s.ok


def test_locality_update_and_roundtrip() -> None:
    rng = np.random.default_rng(4)
    e0 = basis(D, 0)
    model = LocalityModel(cluster(rng, e0, 4, 0.3), threshold=0.8, z_max=2.5)
    q = cluster(rng, e0, 1, 0.3)[0]
    before = model.score(q)
    model.update(q)
    assert len(model) == 5
    after = model.score(q)
    assert after.nn_distance == pytest.approx(0.0, abs=1e-12)
    assert after.nn_distance < before.nn_distance
    data = model.to_dict()
    text = json.dumps(data)
    back = LocalityModel.from_dict(json.loads(text))
    assert len(back) == 5 and back.threshold == 0.8 and back.z_max == 2.5
    assert back.mu == pytest.approx(model.mu) and back.sigma == pytest.approx(model.sigma)
    np.testing.assert_allclose(back.centroid, model.centroid)
    probe = cluster(rng, e0, 1, 0.5)[0]
    assert back.score(probe).to_dict() == pytest.approx(model.score(probe).to_dict())


def test_locality_from_config_and_validation() -> None:
    from soma_engine.config import GateConfig

    rng = np.random.default_rng(5)
    warm = cluster(rng, basis(D, 0), 4, 0.2)
    m = LocalityModel.from_config(warm, GateConfig(locality_threshold=0.7))
    assert m.threshold == 0.7
    with pytest.raises(ValueError, match=">= 2"):
        LocalityModel(warm[:1])
    with pytest.raises(ValueError, match="zero"):
        LocalityModel(np.vstack([warm, np.zeros(D)]))
    with pytest.raises(ValueError, match="dim"):
        m.score(np.ones(D + 1))
    with pytest.raises(ValueError, match="NaN"):
        m.update(np.full(D, np.nan))
    with pytest.raises(ValueError, match="embeddings"):
        LocalityModel.from_dict({"threshold": 0.5})


# ---------------------------------------------------------------------------- drift


def test_drift_consecutive_breaches_roll_back() -> None:
    mon = DriftMonitor(drift_threshold=0.5, consecutive=3)
    assert [mon.observe_gap(g) for g in (0.6, 0.7, 0.8)] == [False, False, True]


def test_drift_non_breach_resets_count() -> None:
    mon = DriftMonitor(drift_threshold=0.5, consecutive=2)
    assert not mon.observe_gap(0.9)
    assert not mon.observe_gap(0.5)  # at the threshold: not a breach
    assert not mon.observe_gap(0.9)
    assert not mon.observe_gap(0.1)
    assert not mon.observe_gap(0.9)
    assert mon.observe_gap(0.95)
    mon.reset()
    assert mon.gap_streak == 0 and not mon.observe_gap(0.9)


def _score(ok: bool, borderline: bool) -> LocalityScore:
    return LocalityScore(0.5, 0.5, 0.0, ok, borderline)


def test_drift_locality_severe_immediate_borderline_within_two() -> None:
    mon = DriftMonitor(consecutive=5)
    assert mon.observe_locality(_score(False, False))  # severe shift: at once
    mon.reset()
    assert not mon.observe_locality(_score(False, True))
    assert mon.observe_locality(_score(False, True))  # second borderline failure
    mon.reset()
    assert not mon.observe_locality(_score(False, True))
    assert not mon.observe_locality(_score(True, True))  # ok resets
    assert not mon.observe_locality(_score(False, True))
    one = DriftMonitor(consecutive=1)
    assert one.observe_locality(_score(False, True))


def test_abrupt_topic_shift_rolls_back_within_two_turns() -> None:
    rng = np.random.default_rng(6)
    e0 = basis(D, 0)
    model = LocalityModel(cluster(rng, e0, 5, 0.3), threshold=0.9)
    mon = DriftMonitor(consecutive=3)
    for q in cluster(rng, e0, 5, 0.3):
        assert not mon.observe_locality(model.score(q))
    shift = [basis(D, 3) + 0.1 * rng.standard_normal(D) for _ in range(2)]
    fired = [mon.observe_locality(model.score(q)) for q in shift]
    assert any(fired)


def test_drift_state_roundtrip() -> None:
    mon = DriftMonitor(drift_threshold=0.4, consecutive=3, window=4)
    for g in (0.1, 0.2, 0.5, 0.6, 0.7):
        mon.observe_gap(g)
    mon.observe_locality(_score(False, True))
    state = json.loads(json.dumps(mon.state()))
    back = DriftMonitor.from_state(state)
    assert back.state() == mon.state()
    assert list(back.gaps) == [0.2, 0.5, 0.6, 0.7]  # window keeps the last 4
    assert back.gap_streak == 3
    assert back.observe_gap(0.9) and mon.observe_gap(0.9)
    assert back.observe_locality(_score(False, True))


def test_drift_validates() -> None:
    with pytest.raises(ValueError):
        DriftMonitor(drift_threshold=1.5)
    with pytest.raises(ValueError):
        DriftMonitor(consecutive=0)
    with pytest.raises(ValueError):
        DriftMonitor().observe_gap(float("nan"))
    with pytest.raises(ValueError):
        DriftMonitor.from_state({**DriftMonitor().state(), "locality": ["maybe"]})


def test_drift_from_config() -> None:
    from soma_engine.config import GateConfig

    mon = DriftMonitor.from_config(GateConfig(drift_threshold=0.3, consecutive=4))
    assert mon.drift_threshold == 0.3 and mon.consecutive == 4


# ---------------------------------------------------------------------------- audits


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.37, 1.0])
def test_should_audit_rate(rate: float) -> None:
    rng = random.Random(1234)
    n = 5000
    hits = sum(should_audit(rng, rate, False) for _ in range(n))
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(hits - n * rate) <= 4 * sd + 1e-9


def test_audit_draws_are_per_session_and_turn() -> None:
    """One seed: a turn's draw depends only on (seed, session, turn), so it is reproducible
    whatever other sessions drew; sessions do not share one stream; over many sessions the
    audited share is binomial."""
    draw = lambda seed, sid, t: audit_rng(seed, sid, t).random()  # noqa: E731
    assert draw(0, "a", 5) == draw(0, "a", 5)
    assert len({draw(0, sid, 5) for sid in "abcdef"}) == 6 and draw(0, "a", 5) != draw(1, "a", 5)
    # the stream of turns 5..40 of session "a" differs from session "b"'s
    assert [draw(0, "a", t) < 0.1 for t in range(5, 41)] != [draw(0, "b", t) < 0.1 for t in range(5, 41)]
    n, rate = 4000, 0.1
    hits = sum(should_audit(audit_rng(0, f"s{i % 200}", i // 200), rate) for i in range(n))
    assert abs(hits - n * rate) <= 4 * math.sqrt(n * rate * (1 - rate))


def test_should_audit_always_on_borderline() -> None:
    rng = random.Random(0)
    assert all(should_audit(rng, 0.0, True) for _ in range(100))
    with pytest.raises(ValueError):
        should_audit(rng, 1.5, False)


# ---------------------------------------------------------------------------- sequential looks


def test_look_delta_spends_at_most_delta() -> None:
    assert look_delta(1, 0.1) == pytest.approx(0.05)
    assert look_delta(3, 0.1) == pytest.approx(0.0125)
    assert sum(look_delta(k, 0.1) for k in range(1, 30)) < 0.1
    with pytest.raises(ValueError):
        look_delta(0, 0.1)
    with pytest.raises(ValueError):
        look_delta(1, 1.0)


def test_look_sizes_closed_form() -> None:
    # n_1 = ceil(2 log(1/(δ/2)) / (1 − ε)^2): 2 log 20 / 0.95² = 6.64 → 7 at the paper's ε, δ
    assert look_sizes(0.05, 0.1, 48) == [7, 14, 28, 48]
    assert look_sizes(0.05, 0.1, 48)[0] == turns_needed(0.05, 0.05, 1.0)
    assert look_sizes(0.0, 0.5, 12) == [3, 6, 12]  # 2 log 4 = 2.77 → 3
    assert look_sizes(0.05, 0.1, 5) == [5]
    with pytest.raises(ValueError):
        look_sizes(0.05, 0.1, 0)


def _batch(n: int, old: float, new: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    o = np.clip(old + 0.03 * rng.standard_normal(n), 0, 1)
    w = np.clip(new + 0.03 * rng.standard_normal(n), 0, 1)
    return o, w


SEQ = {"epsilon": 0.0, "delta": 0.5, "min_fidelity": 0.0, "max_batch": 12}


def test_sequential_collects_between_looks() -> None:
    o, w = _batch(1, 0.9, 0.05)
    d = decide_sequential(o, w, **SEQ)
    assert not d.accepted and not d.final and d.look is None
    assert d.next_look == 3 and d.more_turns_needed == 2
    assert d.delta == pytest.approx(look_delta(1, 0.5))
    assert "collecting" in d.reason
    assert d.projected_turns is not None and d.projected_turns >= 2


def test_sequential_accepts_only_at_a_look() -> None:
    o, w = _batch(6, 0.95, 0.05, seed=3)
    d = decide_sequential(o, w, **SEQ)
    assert d.look == 2 and d.delta == pytest.approx(0.125)
    assert d.accepted and d.final and d.more_turns_needed == 0, d.reason
    assert d.delta_hat >= d.epsilon + acceptance_margin(d.n_eff, 0.125)
    # one context fewer: between looks, never accepted however good
    d5 = decide_sequential(o[:5], w[:5], **SEQ)
    assert not d5.accepted and not d5.final and d5.more_turns_needed == 1


def test_sequential_stops_when_futile_or_at_the_cap() -> None:
    o, w = _batch(6, 0.05, 0.95, seed=1)  # much worse: Δ̂ + γ < ε at the look
    d = decide_sequential(o, w, **SEQ)
    assert d.final and not d.accepted and "upper bound below epsilon" in d.reason
    assert d.more_turns_needed is None
    o, w = _batch(12, 0.5, 0.45, seed=2)  # a small gain never certified: stop at max_batch
    d = decide_sequential(o, w, **SEQ)
    assert d.final and not d.accepted and d.look == 3


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12),
    st.floats(0, 0.3),
)
def test_sequential_acceptance_implies_the_bound_at_a_look(pairs: list[tuple[float, float]], eps: float) -> None:
    old = [p[0] for p in pairs]
    new = [p[1] for p in pairs]
    d = decide_sequential(old, new, epsilon=eps, delta=0.5, min_fidelity=0.0, max_batch=12)
    sizes = look_sizes(eps, 0.5, 12)
    assert 1.0 <= d.n_eff <= d.n
    if d.accepted:
        assert d.n in sizes and d.final and d.look == sizes.index(d.n) + 1
        assert d.delta_hat >= eps + acceptance_margin(d.n_eff, look_delta(d.look, 0.5)) - 1e-12
    if not d.final:
        assert d.next_look is not None and d.more_turns_needed == d.next_look - d.n > 0


def test_sequential_error_rate_under_the_null() -> None:
    """E[X] = ε exactly: the whole sequential procedure (looks at 3, 6, 12, 24) accepts in
    at most a δ share of runs (it is conservative: Hoeffding's range bound)."""
    rng = np.random.default_rng(7)
    eps, delta, runs, accepted = 0.1, 0.3, 200, 0
    for _ in range(runs):
        x = np.clip(eps + 0.5 * rng.standard_normal(24), -1, 1)
        x -= x.mean() - eps  # exact null mean on the full batch
        x = np.clip(x, -1, 1)
        old = np.clip(0.5 + x / 2, 0, 1)
        new = np.clip(old - x, 0, 1)
        for n in range(1, 25):
            d = decide_sequential(old[:n], new[:n], epsilon=eps, delta=delta, min_fidelity=0.0, max_batch=24)
            if d.final:
                accepted += d.accepted
                break
    assert accepted / runs <= delta


# ---------------------------------------------------------------------------- session locality


def test_content_and_novel_words() -> None:
    assert content_words("Should I accept the offers for my bikes?") == ["accept", "offer", "bike"]
    assert content_words("Why? OK, thanks!") == []
    history = ["I'm selling my road bike for 900 dollars.", "List it at 950 and mention the new tyres."]
    assert novel_words("Should I accept 780 for the bike?", history) == ["accept"]
    assert novel_words("What's a good recipe for banana bread?", history) == ["recipe", "banana", "bread"]
    assert novel_words("And why is that?", history) == []


def test_context_embedding_is_the_normalised_mean() -> None:
    q, p = basis(D, 0), basis(D, 1)
    np.testing.assert_allclose(context_embedding(q, None), q)
    c = context_embedding(2 * q, p)
    np.testing.assert_allclose(c, (q + p) / math.sqrt(2))
    np.testing.assert_allclose(context_embedding(q, -q), q)  # opposite: no mean direction
    with pytest.raises(ValueError):
        context_embedding(q, np.ones(D + 1))


def _session_locality(**kw: float) -> SessionLocality:
    rng = np.random.default_rng(11)
    return SessionLocality(cluster(rng, basis(D, 0), 8, 0.2), **kw)


def test_session_locality_statistic() -> None:
    model = _session_locality(threshold=1.0, severe=1.5, border=0.8, w_context=0.5, w_novel=0.5, w_far=0.3, far_cap=2)
    near = model.score(basis(D, 0), basis(D, 0), 0)
    assert (
        near.ok
        and not near.borderline
        and near.statistic == pytest.approx(near.nn_distance + 0.5 * near.context_distance)
    )
    far = model.score(basis(D, 3), basis(D, 3), 4)
    assert far.severe and not far.ok
    assert far.statistic == pytest.approx(far.nn_distance + 0.5 * far.context_distance + 0.5)
    assert far.margin == pytest.approx(1.0 - far.statistic)
    capped = model.score(basis(D, 3), basis(D, 3), 40)
    assert capped.statistic == pytest.approx(far.statistic)  # novelty is capped
    unrelated = model.score(basis(D, 3), basis(D, 3), 4, far=1)
    assert unrelated.far == 1 and unrelated.statistic == pytest.approx(far.statistic + 0.3 / 2)
    assert model.score(basis(D, 3), basis(D, 3), 9, far=9).statistic == pytest.approx(far.statistic + 0.3)
    mid = model.score(basis(D, 3), basis(D, 0), 0)  # far query, local context
    assert mid.nn_distance > 0.9 and mid.context_distance < 0.1
    assert mid.statistic < far.statistic
    with pytest.raises(ValueError):
        model.score(basis(D, 0), basis(D, 0), -1)
    with pytest.raises(ValueError, match="cannot exceed"):
        model.score(basis(D, 0), basis(D, 0), 1, far=2)
    with pytest.raises(ValueError):
        model.score(np.ones(D + 1), basis(D, 0), 0)


def test_far_words_against_a_naive_count() -> None:
    rng = np.random.default_rng(5)
    vocab = rng.normal(size=(12, D))
    words = np.vstack([vocab[3] + 0.05 * rng.normal(size=D), rng.normal(size=(4, D))])
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    naive = sum(max(float(w @ v) for v in unit(vocab)) < FAR_WORD_COS for w in unit(words))
    assert far_words(words, vocab) == naive and naive >= 1
    assert far_words(words[:1], vocab) == 0  # a near-copy of a vocabulary word
    assert far_words(np.zeros((0, D)), vocab) == 0
    assert far_words(words, np.zeros((0, D))) == len(words)  # no vocabulary: every novel word is far


def test_resume_statistic_drops_the_context_term() -> None:
    model = _session_locality(w_novel=0.5, novel_cap=4, w_far=0.3, far_cap=3)
    for query, context, novel, far in ((0, 3, 0, 0), (3, 0, 2, 1), (1, 1, 9, 5)):
        score = model.score(basis(D, query), basis(D, context), novel, far)
        naive = score.nn_distance + 0.5 * min(novel, 4) / 4 + 0.3 * min(far, 3) / 3
        assert model.resume_statistic(score) == pytest.approx(naive)
    # a query back on the topic after a detour: far context, yet a low resume statistic
    back = model.score(basis(D, 0), basis(D, 3), 0)
    assert back.context_distance > 0.9 and model.resume_statistic(back) < 0.1 < back.statistic
    with pytest.raises(ValueError, match="SessionLocality"):
        model.resume_statistic(LocalityScore(0.1, 0.1, 0.0, True, False))


def test_context_pmi_and_the_language_model_term() -> None:
    assert context_pmi(4.25, 2.5) == pytest.approx(1.75) and context_pmi(4.5, 5.5) == pytest.approx(-1.0)
    model = _session_locality(w_context=0.1, w_novel=0.6, w_far=0.3, w_lm=0.25, lm_cap=2.0)
    q, c = basis(D, 0) + 0.5 * basis(D, 2), basis(D, 0)
    bare = model.score(q, c, 3, far=2)
    assert bare.pmi is None
    naive = bare.nn_distance + 0.1 * bare.context_distance + 0.6 * 3 / 4 + 0.3 * 2 / 3
    assert bare.statistic == pytest.approx(naive)
    for pmi, credit in ((1.2, 0.3), (5.0, 0.5), (-1.0, 0.0), (0.0, 0.0)):
        scored = model.score(q, c, 3, far=2, pmi=pmi)
        assert scored.pmi == pmi and scored.statistic == pytest.approx(naive - credit)
        assert scored.margin == pytest.approx(model.threshold - scored.statistic)
    # the warm check and the resume statistic do not use it
    related = model.score(q, c, 3, far=2, pmi=2.0)
    assert model.resume_statistic(related) == model.resume_statistic(bare)
    assert model.warm_local(related) == model.warm_local(bare)
    with pytest.raises(ValueError, match="pmi"):
        model.score(q, c, 3, pmi=float("nan"))
    with pytest.raises(ValueError, match="turns"):
        SessionLocality(model.bank, turns=[("only a query",)])
    with pytest.raises(ValueError, match="non-negative|w_lm"):
        SessionLocality(model.bank, w_lm=-0.1)


def test_warm_check_ignores_the_word_terms() -> None:
    model = _session_locality(threshold=0.8, severe=0.8, border=0.7, w_context=0.1, warm_bound=0.85)
    # a long warm turn near the window: many novel and far words, still local
    long_turn = model.score(basis(D, 0), basis(D, 0), 12, far=5)
    assert not long_turn.ok and model.warm_local(long_turn)
    # a warm turn from elsewhere: no new words at all, yet not local
    elsewhere = model.score(basis(D, 3), basis(D, 3), 0)
    assert elsewhere.nn_distance + 0.1 * elsewhere.context_distance > 0.85 and not model.warm_local(elsewhere)


def test_session_locality_roundtrip_and_config() -> None:
    from soma_engine.config import GateConfig

    model = _session_locality(
        w_context=0.3, vocab=["bike", "price"], turns=[("Sell my bike?", "List it at 950.")], system="Coach."
    )
    data = json.loads(json.dumps(model.to_dict()))
    back = SessionLocality.from_dict(data)
    assert len(back) == len(model) and back.threshold == model.threshold
    assert back.turns == (("Sell my bike?", "List it at 950."),) and back.system == "Coach."
    assert SessionLocality.from_dict(data, GateConfig()).turns == back.turns
    assert back.vocab == ("bike", "price") and back.w_context == 0.3 and back.w_far == model.w_far
    np.testing.assert_allclose(back.bank, model.bank, atol=2e-3)  # float16 storage
    q = basis(D, 0) + 0.3 * basis(D, 1)
    assert back.score(q, q, 1).statistic == pytest.approx(model.score(q, q, 1).statistic, abs=5e-3)
    g = GateConfig(locality_threshold=1.2, locality_severe_margin=0.3, locality_audit_margin=0.1)
    tuned = SessionLocality.from_dict(data, g)
    assert (tuned.threshold, tuned.severe, tuned.border) == pytest.approx((1.2, 1.5, 1.1))
    # with a configuration, the weights are this version's (measured with its thresholds)
    assert tuned.w_context == SessionLocality(model.bank).w_context != 0.3 and tuned.vocab == back.vocab
    legacy = LocalityModel(model.bank[:4]).to_dict()  # sessions stored by the older engine
    assert len(SessionLocality.from_dict(legacy, g)) == 4
    with pytest.raises(ValueError, match="bank"):
        SessionLocality.from_dict({"threshold": 1.0})
    with pytest.raises(ValueError):
        SessionLocality.from_dict({**data, "dim": 7})
    with pytest.raises(ValueError):
        SessionLocality(model.bank, novel_cap=0)
    with pytest.raises(ValueError, match="vocab"):
        SessionLocality(model.bank, vocab="bike")


# ---------------------------------------------------------------------------- two-turn rule


def _stat(x: float, threshold: float = 1.5, severe: float = 1.7) -> LocalityScore:
    return LocalityScore(0.0, 0.0, 0.0, x <= threshold, 1.45 < x <= severe, threshold - x, statistic=x)


def test_drift_pair_rule() -> None:
    mon = DriftMonitor(pair_threshold=3.0)
    assert not mon.observe_locality(_stat(1.6))  # one high turn: audited, not rolled back
    assert mon.observe_locality(_stat(1.45))  # 1.6 + 1.45 > 3.0
    mon.reset()
    assert not mon.observe_locality(_stat(1.6))
    assert not mon.observe_locality(_stat(1.0))  # an on-topic turn in between resets the pair
    assert not mon.observe_locality(_stat(1.6))
    assert mon.observe_locality(_stat(1.8))  # severe: at once
    state = json.loads(json.dumps(mon.state()))
    back = DriftMonitor.from_state(state)
    assert back.state() == mon.state() and back.last_statistic == pytest.approx(1.8)
    # without a statistic (LocalityModel scores) the borderline streak applies as before
    assert not DriftMonitor(pair_threshold=3.0).observe_locality(_score(False, True))


def test_drift_from_config_pair_threshold() -> None:
    from soma_engine.config import GateConfig

    mon = DriftMonitor.from_config(GateConfig(locality_threshold=1.4))
    assert mon.pair_threshold == pytest.approx(2.8)


@settings(max_examples=300, deadline=None)
@given(
    threshold=st.floats(0.5, 2.0),
    severe_margin=st.floats(0.0, 0.5),
    audit_margin=st.floats(0.0, 0.3),
    xs=st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 0.5)), min_size=2, max_size=6),
)
@example(threshold=1.325, severe_margin=0.125, audit_margin=0.075, xs=[(1.22, 0.4), (1.44, 0.0)])
def test_skipping_the_pmi_below_needs_pmi_changes_no_decision(
    threshold: float, severe_margin: float, audit_margin: float, xs: list[tuple[float, float]]
) -> None:
    """The engine scores the PMI only when ``needs_pmi``: the rollback turn and every
    audit-forcing (borderline) flag must be those of always taking the credit."""
    model = SessionLocality(
        np.eye(3),
        threshold=threshold,
        severe=threshold + severe_margin,
        border=max(0.0, threshold - audit_margin),
    )

    def run(skip: bool) -> tuple[int | None, list[bool]]:
        mon, flags = DriftMonitor(pair_threshold=2.0 * model.threshold), []
        for t, (bare, credit) in enumerate(xs):
            x = bare if skip and not model.needs_pmi(bare) else bare - credit
            score = LocalityScore(0.0, 0.0, 0.0, x <= model.threshold, model.border < x <= model.severe, statistic=x)
            flags.append(score.borderline)
            if mon.observe_locality(score):
                return t, flags
        return None, flags

    assert run(skip=True) == run(skip=False)
    assert model.needs_pmi(model.border + 1e-9)


# --------------------------------------------------------------------------------------------
# The default rule: the adapted surrogate against the base on the same held-out turns
# --------------------------------------------------------------------------------------------

FID = {"epsilon": 0.05, "delta": 0.1, "min_fidelity": 0.6}


def test_fidelity_rule_refuses_an_adapter_no_better_than_the_base_even_above_the_floor() -> None:
    base = [0.2, 0.3]  # the base model alone clears the floor (fidelity 0.75)
    same = decide_fidelity(base, base, **FID)
    assert not same.accepted and "no improvement" in same.reason and same.mode == "fidelity"
    worse = decide_fidelity(base, [0.25, 0.35], **FID)
    assert not worse.accepted and worse.delta_hat < 0
    better = decide_fidelity(base, [0.1, 0.2], **FID)
    assert better.accepted and better.delta_hat == pytest.approx(0.1) and better.more_turns_needed == 0
    assert better.bound_met is False  # |B| = 2: Thm 4.2's margin is out of reach, kept for the record
    assert not decide_fidelity(base, [0.1, 0.2], **FID, min_improvement=0.15).accepted
    assert decide_fidelity(base, base, **FID, min_improvement=None).accepted  # off: the floor alone


def test_fidelity_rule_keeps_the_floor_and_locality() -> None:
    low = decide_fidelity([0.9, 0.9], [0.5, 0.5], **FID)  # better than the base, still below the floor
    assert not low.accepted and "min_fidelity" in low.reason and "no improvement" not in low.reason
    assert decide_fidelity([0.9, 0.9], [0.5, 0.5], **{**FID, "min_fidelity": 0.4}).accepted
    far = decide_fidelity([0.5], [0.1], **FID, locality_ok=False, retry_after=3)
    assert not far.accepted and "locality" in far.reason and far.more_turns_needed == 3
    with pytest.raises(ValueError, match="min_improvement"):
        decide_fidelity([0.5], [0.1], **FID, min_improvement=-0.1)
