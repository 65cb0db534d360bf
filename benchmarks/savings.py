"""Teacher tokens saved by SOMA against teacher-only serving, with the fidelity of the turns
served locally.

Sessions: the bundled demo conversation (20 turns, one detour) and scripted sessions of 16+
turns in other domains (the dev and test texts of ``benchmarks/data/drift/``: medical intake,
code review, trip planning, math tutoring, role-play), on-topic or with one abrupt topic shift
(a detour that comes back, or a switch to another domain that stays). Teacher:
:class:`soma_engine.demo.ScriptedTeacher`, a deterministic persona teacher (the scripted answer
to each query, instant) with honest usage: the whole history as SmolLM2's chat template renders
it, plus its answer, in SmolLM2 tokens.
Surrogate: the bundled SmolLM2-135M + MiniLM through ``engine.chat``.

Per session: teacher tokens billed (input + output, audits included), teacher-only tokens (every
turn served by the teacher with its own answers in the history: exact, the teacher is
deterministic), saved %, calls saved, first local turn, rollbacks, audits, and the fidelity of
the locally served turns, computed offline after the run: the teacher's answer to the same turn
with the same history, cos(φ(surrogate answer), φ(teacher answer)) with φ = MiniLM.

Two regimes. ``settled``: background adaptation and audits finish before the next user turn
(a user's think time, or a GPU). ``back-to-back``: the next turn comes as soon as the previous
reply is out; the teacher then answers after ``--teacher-latency`` seconds (an API round trip,
sleeping, no CPU), so adaptation competes only with the surrogate's own turns.

    python benchmarks/savings.py --out benchmarks/results/savings.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import data  # benchmarks/data.py: this script's folder is on sys.path when it runs
import numpy as np

from soma_engine import SomaConfig, SomaEngine
from soma_engine.demo import SCRIPT, SYSTEM, run_demo
from soma_engine.runtime.encoder import Encoder
from soma_engine.runtime.models import resolve_encoder
from soma_engine.testing import ScriptedTeacher, teacher_only_tokens
from soma_engine.types import Reply, normalize_messages

# A short LoRA budget at the serving length of the full demo; the strategy is the default (soma)
# unless --strategy says otherwise; gate, audit rate and locality stay the defaults. The figures
# in results/savings.json were taken with --strategy history-ft, before the CPU time budget
# (adaptation_budget_s) made the default strategy affordable here.
CONFIG: dict[str, Any] = {
    "max_new_tokens": 48,
    "lora": {"steps": 6, "batch_size": 1, "max_seq_len": 256},
    "gate": {"audit_seed": 0},
}


@dataclass
class Spec:
    name: str
    domain: str
    kind: str  # "on-topic" | "detour" | "switch"
    system: str
    script: list[tuple[str, str]]
    shift_turn: int | None = None


def _scenario(
    texts: data.Split, domain: str, index: int, rng: random.Random
) -> tuple[data.Scenario, list[tuple[str, str]], list]:
    scenarios, generic = texts.of(domain)
    sc = scenarios[index]
    values = data.slot_values(rng, sc)
    warm = [data.fill(t, values) for t in sc.warm]
    pool = [data.fill(t, values) for t in (*sc.followups, *generic)]
    rng.shuffle(pool)
    return sc, warm, list(dict(pool).items())  # one answer per distinct query


def build_sessions(quick: bool, seed: int = 0) -> list[Spec]:
    """The demo conversation and scripted 16+-turn sessions (``quick``: two of them)."""
    rng = random.Random(seed)
    texts = data.written_pool()
    specs = [Spec("demo", "negotiation", "detour", SYSTEM, list(SCRIPT), 12)]

    def on_topic(domain: str, index: int, n: int) -> Spec:
        sc, warm, pool = _scenario(texts, domain, index, rng)
        return Spec(f"{domain}/{sc.name}", domain, "on-topic", sc.system, warm + pool[: n - 4])

    def detour(domain: str, index: int, before: int, after: int, thread: int) -> Spec:
        sc, warm, pool = _scenario(texts, domain, index, rng)
        off = list(texts.offtopic[thread])
        script = warm + pool[:before] + off + pool[before : before + after]
        return Spec(f"{domain}/{sc.name}", domain, "detour", sc.system, script, 5 + before)

    def switch(domain: str, index: int, before: int, other: str, after: int) -> Spec:
        sc, warm, pool = _scenario(texts, domain, index, rng)
        _, o_warm, o_pool = _scenario(texts, other, index, rng)
        script = warm + pool[:before] + o_warm[:3] + o_pool[:after]
        return Spec(f"{domain}/{sc.name}->{other}", domain, "switch", sc.system, script, 5 + before)

    specs += [on_topic("medical", 1, 18), detour("math", 1, 6, 4, 1)]
    if not quick:
        specs += [
            on_topic("code", 1, 18),
            on_topic("trip", 1, 16),
            detour("roleplay", 1, 7, 5, 3),
            switch("trip", 3, 7, "code", 4),
        ]
    return specs


def cosine_fidelity(encoder: Encoder, pairs: list[tuple[str, str]]) -> list[float]:
    """cos(φ(surrogate answer), φ(teacher answer)) per pair (φ rows are unit-norm)."""
    if not pairs:
        return []
    emb = encoder.encode([a for a, _ in pairs] + [b for _, b in pairs])
    n = len(pairs)
    return [float(x) for x in np.sum(emb[:n] * emb[n:], axis=1)]


def run_session(engine: SomaEngine, spec: Spec, regime: str, latency: float) -> dict[str, Any]:
    rt = engine.surrogate

    def count(msgs: list[dict[str, str]]) -> int:
        return rt.count_tokens(rt.render(normalize_messages(msgs)))

    teacher = ScriptedTeacher(spec.script, count_prompt=count, count_answer=rt.count_tokens)
    served = teacher
    if regime == "back-to-back" and latency > 0:

        def served(messages: list[Any]) -> Any:
            time.sleep(latency)
            return teacher(messages)

    sid = f"{regime}-{spec.name}"

    def chat(history: list[dict[str, str]]) -> Reply:
        return engine.chat(sid, history, served)

    started = time.perf_counter()
    report = run_demo(
        chat,
        engine,
        session_id=sid,
        queries=[q for q, _ in spec.script],
        system=spec.system,
        count_prompt=count,
        settle=None if regime == "settled" else 0.0,
    )
    wall = time.perf_counter() - started
    baseline = teacher_only_tokens(teacher, spec.system, [q for q, _ in spec.script])
    report.teacher_only_tokens = sum(baseline)
    local = [r for r in report.turns if r.served_by == "surrogate"]
    # Offline, after the run: the teacher's answer to each locally served turn, same history.
    fid = cosine_fidelity(engine.encoder, [(r.text, teacher.answer(r.history)) for r in local])
    on_topic = [f for r, f in zip(local, fid, strict=True) if not _off_topic(spec, r.turn)]
    return {
        "session": spec.name,
        "domain": spec.domain,
        "kind": spec.kind,
        "turns": len(report.turns),
        "shift_turn": spec.shift_turn,
        "teacher_tokens": report.teacher_tokens,
        "teacher_only_tokens": report.teacher_only_tokens,
        "saved": round(report.tokens_saved, 4),
        "teacher_calls": report.teacher_calls,
        "calls_saved": len(report.turns) - report.teacher_calls,
        "local_turns": len(local),
        "first_local_turn": report.first_local_turn,
        "rollbacks": report.rollbacks,
        "audits": report.audit_calls,
        "audit_tokens": report.audit_tokens,
        "adaptation_seconds": report.adaptation_seconds,
        "fidelity_mean": round(statistics.fmean(fid), 4) if fid else None,
        "fidelity_min": round(min(fid), 4) if fid else None,
        "fidelity_on_topic_mean": round(statistics.fmean(on_topic), 4) if on_topic else None,
        "served_by": "".join("S" if r.served_by == "surrogate" else "T" for r in report.turns),
        "per_turn_teacher_only": baseline,
        "per_turn_fidelity": {r.turn: round(f, 4) for r, f in zip(local, fid, strict=True)},
        "gate": [
            {"turn": d.get("turn"), "accepted": d.get("accepted"), "fidelity": d.get("fidelity")}
            for d in engine.session(sid).decisions
            if d.get("kind") == "adaptation"
        ],
        "wall_seconds": round(wall, 1),
    }


def _off_topic(spec: Spec, turn: int) -> bool:
    """Turns of a detour's off-topic thread (3 turns), or everything after a switch."""
    if spec.shift_turn is None:
        return False
    if spec.kind == "switch":
        return turn >= spec.shift_turn
    width = 2 if spec.name == "demo" else 3
    return spec.shift_turn <= turn < spec.shift_turn + width


def regime_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    saved = [r["saved"] for r in rows]
    billed, alone = sum(r["teacher_tokens"] for r in rows), sum(r["teacher_only_tokens"] for r in rows)
    fid = [f for r in rows for f in r["per_turn_fidelity"].values()]
    return {
        "sessions": len(rows),
        "saved_mean": round(statistics.fmean(saved), 4),
        "saved_min": round(min(saved), 4),
        "sessions_at_60pct": sum(s >= 0.6 for s in saved),
        "saved_pooled": round(1 - billed / alone, 4),
        "local_turn_fidelity_mean": round(statistics.fmean(fid), 4) if fid else None,
        "local_turns": len(fid),
        "rollbacks": sum(r["rollbacks"] for r in rows),
        "audits": sum(r["audits"] for r in rows),
    }


def summarize(results: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-regime figures and the headline ``summary`` that ``soma bench`` prints."""
    summaries = {regime: regime_summary(rows) for regime, rows in results.items()}
    summary: dict[str, Any] = {}
    for regime, s in summaries.items():
        summary[f"teacher tokens saved, mean of {s['sessions']} sessions ({regime})"] = f"{s['saved_mean']:.1%}"
        summary[f"teacher tokens saved, worst session ({regime})"] = f"{s['saved_min']:.1%}"
        for r in results[regime]:
            if r["session"] == "demo":
                summary[f"teacher tokens saved, demo conversation ({regime})"] = f"{r['saved']:.1%}"
        summary[f"fidelity of local turns, cos to teacher ({regime})"] = s["local_turn_fidelity_mean"]
    return summaries, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/savings.json"))
    ap.add_argument("--quick", action="store_true", help="the demo conversation and two scripted sessions")
    ap.add_argument("--regimes", nargs="+", default=["settled", "back-to-back"], choices=["settled", "back-to-back"])
    ap.add_argument("--teacher-latency", type=float, default=2.0, help="seconds per teacher call, back-to-back")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: robust on a busy 2-core CPU)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--only", nargs="+", help="run only these sessions (names, e.g. demo)")
    ap.add_argument("--lora-steps", type=int, help="override the LoRA steps of CONFIG")
    ap.add_argument("--lora-lr", type=float, help="override the LoRA learning rate of CONFIG")
    ap.add_argument("--strategy", default="soma", choices=["soma", "history-ft", "random-ft"])
    ap.add_argument("--no-repeat-ngram", type=int, help="surrogate no_repeat_ngram_size (default: the engine's, off)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    specs = [s for s in build_sessions(args.quick) if not args.only or s.name in args.only]
    config = json.loads(json.dumps(CONFIG))
    config["lora"].update({k: v for k, v in (("steps", args.lora_steps), ("lr", args.lora_lr)) if v is not None})
    config["strategy"] = args.strategy
    if args.no_repeat_ngram is not None:
        config["no_repeat_ngram_size"] = args.no_repeat_ngram
    encoder = Encoder(resolve=lambda: resolve_encoder(None))
    encoder.encode(["warm up"])
    tmp = Path(tempfile.mkdtemp(prefix="soma-savings-"))
    cfg = SomaConfig(**config, device=args.device)
    started = time.perf_counter()
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {}
    for regime in args.regimes:
        engine = SomaEngine(config=cfg, encoder=encoder, store=f"sqlite:///{tmp / f'{regime}.db'}", namespace="savings")
        rows = []
        for spec in specs:
            row = run_session(engine, spec, regime, args.teacher_latency)
            rows.append(row)
            print(
                f"{regime:>12} {spec.name:<40} saved {row['saved']:.1%} local {row['local_turns']:>2}/{row['turns']} "
                f"first {row['first_local_turn']} rollbacks {row['rollbacks']} audits {row['audits']} "
                f"fidelity {row['fidelity_mean']} {row['served_by']} ({row['wall_seconds']}s)",
                flush=True,
            )
        engine.close()
        results[regime] = rows
    summaries, summary = summarize(results)
    result: dict[str, Any] = {
        "benchmark": "teacher_token_savings",
        "config": config,
        "teacher_latency_s": args.teacher_latency,
        "threads": args.threads,
        "quick": args.quick,
        "sessions": [
            {"name": s.name, "kind": s.kind, "turns": len(s.script), "shift_turn": s.shift_turn} for s in specs
        ],
        "regimes": summaries,
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "device": cfg.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    result["summary"] = summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"regimes": summaries, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
