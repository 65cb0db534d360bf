"""benchmarks/hardness.py: its statistics against hand computations, one conversation on a tiny model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import hardness as bench  # benchmarks/hardness.py (benchmarks/ is on pytest's pythonpath)
import pytest

from soma_engine.testing import build_tiny_model


def test_spearman_matches_the_rank_difference_formula() -> None:
    x, y = [0.3, 1.2, 0.7, 2.5, 1.9], [10.0, 30.0, 50.0, 40.0, 20.0]
    rank = {v: i + 1 for i, v in enumerate(sorted(x))}, {v: i + 1 for i, v in enumerate(sorted(y))}
    d2 = sum((rank[0][a] - rank[1][b]) ** 2 for a, b in zip(x, y, strict=True))
    assert bench.spearman(x, y) == pytest.approx(1 - 6 * d2 / (5 * (25 - 1)))
    assert bench.spearman(x, [-v for v in x]) == pytest.approx(-1.0)


def test_summary_counts_the_selected_turns() -> None:
    rows = [
        # r_t follows the base NLL (H = turns 0, 2), the literal rule the opposite (turns 1, 2)
        {
            "base_nll": [2.0, 1.0, 1.5],
            "answer_tokens": [10, 20, 30],
            "m": {"divergence": [0.9, 0.5, 0.7], "literal": [0.1, 0.5, 0.3], "seconds": 1.0},
        },
        # H = turns 1, 2 while the highest NLL are 0, 1
        {
            "base_nll": [2.0, 1.8, 1.0],
            "answer_tokens": [5, 6, 7],
            "m": {"divergence": [0.1, 0.8, 0.9], "literal": [0.9, 0.2, 0.1], "seconds": 3.0},
        },
    ]
    s = bench.summary(rows, "m")
    assert s["conversations"] == 2
    assert s["H_divergence_is_the_2_highest_base_nll"] == 1
    assert s["H_literal_is_the_2_lowest_base_nll"] == 1
    assert s["H_differs_between_rules"] == 2
    assert s["H_divergence_count_per_turn_position"] == [1, 1, 2]
    assert s["mining_seconds_mean"] == 2.0


def test_one_conversation_on_a_tiny_model_scores_both_rules_from_the_same_prompts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        bench, "MINING", {"budget": {"candidates": 1, "steps": 1}, "reference": {"candidates": 2, "steps": 1}}
    )
    model, tok = build_tiny_model(seed=0)
    conv = SimpleNamespace(
        id="c1",
        turns=[
            ("The bike costs nine hundred. Fair?", "A bit high; offer seven hundred."),
            ("They said eight hundred.", "Accept eight hundred if it is in good shape."),
            ("Solve 2x + 3 = 9.", "Subtract three, then halve: x = 3."),
            ("And 3x = 12?", "x = 4."),
        ],
    )
    row = bench.conversation_row(model, tok, conv)
    assert len(row["base_nll"]) == 3 and all(math.isfinite(v) and v > 0 for v in row["base_nll"])
    for name in bench.MINING:
        div, lit = row[name]["divergence"], row[name]["literal"]
        assert len(div) == len(lit) == 3 and all(0 < r <= 1 for r in div)
    one = row["budget"]  # one candidate: exp(-L) of the same prompt, so the rules are each other's map
    assert one["divergence"] == pytest.approx([math.exp(-v) for v in one["literal"]], rel=1e-5)
