"""benchmarks/sharegpt.py: its statistics, and its --quick path end to end on the tiny model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import sharegpt as bench  # benchmarks/sharegpt.py (benchmarks/ is on pytest's pythonpath)

from soma_engine.datasets.sharegpt import split_of

ROOT = Path(__file__).resolve().parents[2]


def test_mean_ci_matches_the_t_interval_by_hand() -> None:
    xs = [0.2, 0.4, 0.6, 0.8]
    ci = bench.mean_ci(xs)
    sd = math.sqrt(sum((x - 0.5) ** 2 for x in xs) / 3)
    assert ci["mean"] == 0.5 and ci["n"] == 4
    assert ci["hi"] - 0.5 == pytest.approx(3.182 * sd / 2, abs=1e-4)
    assert bench.mean_ci([0.3]) == {"mean": 0.3, "lo": None, "hi": None, "n": 1}
    assert bench.mean_ci([])["n"] == 0


def test_buckets_follow_table_3() -> None:
    assert [bench.bucket_of(t) for t in (1, 4, 5, 8, 9, 12, 13, 40)] == [
        "1-4",
        "1-4",
        "5-8",
        "5-8",
        "9-12",
        "9-12",
        "13+",
        "13+",
    ]
    with pytest.raises(ValueError):
        bench.bucket_of(0)


def test_summary_counts_teacher_turns_as_recorded_and_local_turns_apart() -> None:
    s = bench.Session("c", "soma", billed_tokens=40, teacher_only_tokens=100)
    s.turns = [bench.Turn(t, "teacher", "", 1.0, 1.0, 10, 10) for t in (1, 2, 3, 4)]
    s.turns += [bench.Turn(t, "surrogate", "", 0.5, 0.2, 0, 20, paired_cosine=0.4) for t in (5, 6, 7)]
    out = bench.summarise([s])
    assert out["all"]["saved"]["mean"] == 0.6
    assert out["1-4"]["local_cosine"]["n"] == 0 and out["1-4"]["cosine"]["mean"] == 1.0
    assert out["5-8"]["local_cosine"]["mean"] == 0.5 and out["5-8"]["paired_history_prefix_cosine"]["mean"] == 0.4
    assert out["5-8"]["saved_without_audits"]["mean"] == 1.0
    assert out["all"]["local_share"]["mean"] == pytest.approx(3 / 7, abs=1e-4)


def _saved_result(label: str, local: list[tuple[float, float]], conversations: list[str]) -> dict:
    """A result JSON as ``run`` saves it: one session whose turns 5.. are local (cosine, paired)."""
    s = bench.Session(conversations[0], label, billed_tokens=40, teacher_only_tokens=100)
    s.turns = [bench.Turn(t, "teacher", "", 1.0, 1.0, 10, 10) for t in (1, 2, 3, 4)]
    s.turns += [bench.Turn(5 + i, "surrogate", "", c, 0.2, 0, 20, paired_cosine=p) for i, (c, p) in enumerate(local)]
    summary = bench.summarise([s]) | {"peak_rss_mb": 7, "wall_seconds": 1.5}
    stale = {k: v for k, v in summary.items() if k != "all"} | {"all": {"saved": summary["all"]["saved"]}}
    return {
        "protocol": "p",
        "similarity_note": "n",
        "args": {"methods": [label]},
        "machine": {"cpus": 2},
        "seconds": 3.0,
        "conversations": conversations,
        "points": [{"label": label, "saved": 0.6, "similarity": 0.5}],
        "runs": {label: {"summary": stale, "sessions": [asdict(s) | {"saved": s.saved}]}},
    }


def test_merge_joins_invocations_and_recomputes_each_summary_from_its_sessions() -> None:
    a = _saved_result("soma", [(0.6, 0.5), (0.4, 0.4)], ["c1"])
    b = _saved_result("history-ft", [(0.3, 0.5)], ["c1"])
    merged = bench.merge([a, b])
    assert set(merged["runs"]) == {"soma", "history-ft"} and len(merged["points"]) == 2
    assert [inv["args"]["methods"] for inv in merged["invocations"]] == [["soma"], ["history-ft"]]
    soma = merged["runs"]["soma"]["summary"]
    assert soma["all"]["local_cosine"]["mean"] == pytest.approx(0.5)  # stale summary had no such figure
    assert soma["all"]["local_over_history_prefix"]["mean"] == pytest.approx(0.05)  # (0.1 + 0.0) / 2
    assert merged["runs"]["history-ft"]["summary"]["5-8"]["local_over_history_prefix"]["mean"] == pytest.approx(-0.2)
    assert soma["peak_rss_mb"] == 7 and soma["wall_seconds"] == 1.5
    again = bench.merge([merged, _saved_result("random-ft", [(0.5, 0.5)], ["c1"])])
    assert len(again["invocations"]) == 3 and len(again["runs"]) == 3
    table = bench.markdown(merged)
    assert "| soma | 0.600 (n=1) | 0.500 (n=1) | 0.450 (n=1) | 0.050 (n=1) |" in table
    assert "| history-ft | 5-8 | 0.300 (n=1) | 0.500 (n=1) | -0.200 (n=1) |" in table


def test_merge_refuses_other_conversations_and_a_label_measured_twice() -> None:
    a = _saved_result("soma", [(0.6, 0.5)], ["c1"])
    with pytest.raises(ValueError, match="other conversations"):
        bench.merge([a, _saved_result("history-ft", [(0.6, 0.5)], ["c2"])])
    with pytest.raises(ValueError, match="two of the results"):
        bench.merge([a, _saved_result("soma", [(0.6, 0.5)], ["c1"])])


def _conversation(cid: str, n: int) -> dict:
    msgs = []
    for i in range(n):
        msgs.append({"from": "human", "value": f"Question {i} about the bike I sell, what should I do next?"})
        msgs.append({"from": "gpt", "value": f"Answer {i}: list it at 900 dollars and keep the pedals for the buyer."})
    return {"id": cid, "conversations": msgs}


@pytest.mark.slow
def test_quick_path_on_the_tiny_model(tmp_path: Path, visible_model_path: Path) -> None:
    source = tmp_path / "sg.json"
    convs = [_conversation(f"conv{i}_0", 6) for i in range(40)]
    source.write_text(json.dumps(convs))
    dev_id = next(c["id"] for c in convs if split_of(c["id"]) == "dev")
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "sharegpt.py"), "--quick", "--split", "dev", "--sessions", "2"]
    cmd += ["--min-turns", "6", "--max-turns", "6", "--surrogate", str(visible_model_path), "--source", str(source)]
    cmd += ["--max-new-tokens", "8", "--lora-steps", "2", "--mining-steps", "1", "--candidates", "1", "--threads", "1"]
    cmd += ["--gates", "default", "permissive", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["conversations"][0] == dev_id and len(data["conversations"]) == 2
    labels = set(data["runs"])
    assert {"original", "surrogate", "history-prefix"} <= labels
    assert {
        f"{m} [settled, {g}]" for m in ("history-ft", "random-ft", "soma") for g in ("default", "permissive")
    } <= labels
    original = data["runs"]["original"]["summary"]
    assert original["all"]["saved"]["mean"] == 0.0 and original["all"]["cosine"]["mean"] == 1.0
    base = data["runs"]["history-prefix"]["summary"]
    assert base["all"]["saved"]["mean"] > 0 and base["5-8"]["local_share"]["mean"] == 1.0
    permissive = data["runs"]["soma [settled, permissive]"]
    assert permissive["summary"]["all"]["local_share"]["mean"] > 0  # the permissive gate accepts any adapter
    assert all(s["teacher_only_tokens"] > s["billed_tokens"] for s in permissive["sessions"])
    assert permissive["summary"]["peak_rss_mb"] > 0
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.slow
def test_real_time_regime_adapts_in_the_background_while_the_teacher_serves(
    tmp_path: Path, visible_model_path: Path
) -> None:
    # No think time: the job started after the warm window is still running at the next turn,
    # so the teacher serves it (the settled regime would have served it locally); the job's
    # adaptation is counted all the same.
    source = tmp_path / "sg.json"
    source.write_text(json.dumps([_conversation(f"conv{i}_0", 8) for i in range(40)]))
    out = tmp_path / "rt.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "sharegpt.py"), "--split", "dev", "--sessions", "1"]
    cmd += ["--min-turns", "8", "--max-turns", "8", "--surrogate", str(visible_model_path), "--source", str(source)]
    cmd += ["--methods", "history-ft", "--regimes", "real-time", "--think-time", "0", "--gates", "permissive"]
    cmd += ["--max-new-tokens", "8", "--lora-steps", "4", "--threads", "1", "--no-paired", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    session = json.loads(out.read_text())["runs"]["history-ft [real-time, permissive]"]["sessions"][0]
    served = [t["served_by"] for t in session["turns"]]
    assert served[:5] == ["teacher"] * 5
    assert session["adaptation_seconds"] > 0
