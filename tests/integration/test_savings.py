"""Teacher-token accounting of the demo loop and benchmarks/savings.py, on a tiny surrogate
with a scripted teacher whose token counts are whitespace words, checked against numbers
worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soma_engine.demo import run_demo
from soma_engine.testing import ScriptedTeacher, teacher_only_tokens, word_count

SYSTEM = "You coach."  # 2 words
# Each query 3 words, each answer 5 words: teacher-only turn t reads 2 + 8(t-1) + 3 words and
# writes 5, i.e. 10 + 8(t-1): 10, 18, 26, 34, 42, 50 -> 180 for six turns.
SCRIPT = [
    (f"question number {w}?", f"answer {w} in five words.") for w in ("one", "two", "three", "four", "five", "six")
]


@pytest.fixture(scope="module")
def visible_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny surrogate whose greedy answers are never empty, so turns 5-6 stay local."""
    from soma_engine.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("visible") / "model", visible_only=True)


def _run(visible_model: Path, shared_encoder: Any, permissive_config: Any, tmp: Path, audit_rate: float) -> Any:
    from soma_engine import SomaEngine
    from soma_engine.runtime.surrogate import SurrogateRuntime

    cfg = permissive_config(gate={"audit_rate": audit_rate, "audit_seed": 0})
    engine = SomaEngine(
        config=cfg, surrogate=SurrogateRuntime(str(visible_model)), encoder=shared_encoder, store=f"sqlite:///{tmp}"
    )
    teacher = ScriptedTeacher(SCRIPT)
    try:
        report = run_demo(
            lambda history: engine.chat("acct", history, teacher),
            engine,
            session_id="acct",
            queries=[q for q, _ in SCRIPT],
            system=SYSTEM,
            count_prompt=word_count,
        )
    finally:
        engine.close()
    return report, teacher


def test_teacher_only_tokens_by_hand():
    teacher = ScriptedTeacher(SCRIPT)
    assert teacher_only_tokens(teacher, SYSTEM, [q for q, _ in SCRIPT]) == [10, 18, 26, 34, 42, 50]
    assert teacher.calls == 0  # the baseline is accounting, not calls


def test_billed_tokens_without_audits(visible_model, shared_encoder, permissive_config, tmp_path):
    report, teacher = _run(visible_model, shared_encoder, permissive_config, tmp_path / "a.db", audit_rate=0.0)
    assert [r.served_by for r in report.turns] == ["teacher"] * 4 + ["surrogate"] * 2
    assert report.teacher_tokens == 10 + 18 + 26 + 34
    assert [r.teacher_tokens for r in report.turns[:4]] == [10, 18, 26, 34]
    assert report.teacher_calls == teacher.calls == 4 and report.audit_calls == 0
    assert report.first_local_turn == 5
    report.teacher_only_tokens = sum(teacher_only_tokens(teacher, SYSTEM, [q for q, _ in SCRIPT]))
    assert report.teacher_only_tokens == 180
    assert report.tokens_saved == pytest.approx(1 - 88 / 180)
    assert report.to_dict()["calls_saved"] == 2


def test_audits_are_billed(visible_model, shared_encoder, permissive_config, tmp_path):
    report, teacher = _run(visible_model, shared_encoder, permissive_config, tmp_path / "b.db", audit_rate=1.0)
    assert [r.served_by for r in report.turns] == ["teacher"] * 4 + ["surrogate"] * 2
    # Audit of turn 5: the history of turn 5 (teacher answers only) = 42 words with the answer.
    # Audit of turn 6: 2 + 4 x 8 + 3 + (the surrogate's turn-5 answer) + 3 words read, 5 written.
    local5 = len(report.turns[4].text.split())
    expected = 88 + 42 + (2 + 32 + 3 + local5 + 3 + 5)
    assert report.audit_calls == 2 and report.audit_tokens == expected - 88
    assert report.teacher_tokens == expected
    assert report.teacher_calls == teacher.calls == 6


def test_benchmark_sessions_are_long_scripted_and_varied():
    import savings  # benchmarks/savings.py (pytest's pythonpath holds benchmarks/)

    sessions = savings.build_sessions(quick=False)
    assert sessions[0].name == "demo" and len(sessions) >= 6
    assert all(len(s.script) >= 16 for s in sessions)
    assert len({s.domain for s in sessions}) >= 5
    assert {s.kind for s in sessions} == {"on-topic", "detour", "switch"}
    for s in sessions:
        teacher = ScriptedTeacher(s.script, fallback="")
        history = [{"role": "system", "content": s.system}]
        for q, a in s.script:  # every query has its scripted answer: the teacher never improvises
            history.append({"role": "user", "content": q})
            assert teacher.answer(history) == a
            history.append({"role": "assistant", "content": a})
