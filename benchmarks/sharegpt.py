"""The paper's protocol on real conversations: ShareGPT with its recorded ChatGPT answers.

Sessions: conversations of the ``test`` split (``--split dev`` while tuning: never tune on
``test``) with at least ``--min-turns`` user turns, played up to ``--max-turns`` turns. The
teacher is :class:`soma_engine.testing.ReplayTeacher`: each turn's recorded ChatGPT answer,
billed as the whole history (SmolLM2 chat template, SmolLM2 tokens) plus the answer.

Methods (the paper's Table 1). Every method answers turns 1..W by the teacher (the warm
window) and the app's history holds whatever was served, as in a real app.

- ``original``: the teacher serves every turn (its answers are the recorded ones).
- ``surrogate``: the base surrogate serves turns after W on the full history, oldest turns
  dropped to fit ``--context`` tokens.
- ``history-prefix``: the base surrogate serves turns after W on S~_t (the engine's compressed
  context).
- ``history-ft``, ``random-ft``, ``soma``: the engine itself (``engine.chat``) with that
  ``strategy``: adaptation after W, the acceptance gate, locality rollbacks and audits
  (``gate.audit_rate`` of local turns re-asked of the teacher, billed). For each turn they
  serve locally, the base surrogate's answer on the same S~_t is also scored (``paired``:
  History-Prefix on the same turns).

Figures per turn bucket 1-4, 5-8, 9-12, 13+ (the paper's Table 3), as the mean over sessions
with a 95% t-interval: similarity of each served answer to the recorded one, as the gate's own
measure (all-MiniLM-L6-v2 cosine, ``1 - Gap``) and ROUGE-L F1 (``rouge-score``), over every
served turn (a teacher turn is the recorded answer: 1) and over locally served turns only;
teacher tokens billed against teacher-only serving (per session, audits included; per bucket
without audits); local turns; adaptation seconds; peak RSS of the process during the method.
The paper scores similarity with LLM judges (its Figure 4 prompt); no judge model runs offline
here, so these are embedding and lexical similarities, not judge scores.

Regimes: ``settled`` (inline adaptation: the job finishes before the next turn) and
``real-time`` (background adaptation, ``--think-time`` seconds between turns).

    python benchmarks/sharegpt.py                  # 24 test sessions, writes results/sharegpt.json + .png
    python benchmarks/sharegpt.py --quick          # 6 sessions
    python benchmarks/sharegpt.py --split dev      # for tuning
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soma_engine import SomaConfig, SomaEngine
from soma_engine.acceptance.bounds import gap
from soma_engine.datasets.sharegpt import Conversation, load_conversations
from soma_engine.runtime.encoder import Encoder
from soma_engine.runtime.models import resolve_encoder
from soma_engine.runtime.surrogate import SurrogateRuntime
from soma_engine.testing import ReplayTeacher, teacher_only_tokens
from soma_engine.types import Message, normalize_messages

METHODS = ("original", "surrogate", "history-prefix", "history-ft", "random-ft", "soma")
ADAPTED = ("history-ft", "random-ft", "soma")
BUCKETS: tuple[tuple[str, int, int | None], ...] = (("1-4", 1, 4), ("5-8", 5, 8), ("9-12", 9, 12), ("13+", 13, None))
# Student-t 0.975 quantiles by degrees of freedom (normal beyond 30).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]
_T975 += [2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(values: Iterable[float]) -> dict[str, Any]:
    """Mean with a 95% t-interval (``lo``/``hi`` None for fewer than two values)."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    n = len(xs)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = sum(xs) / n
    if n < 2:
        return {"mean": round(mean, 4), "lo": None, "hi": None, "n": 1}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = (_T975[n - 2] if n - 2 < len(_T975) else 1.96) * sd / math.sqrt(n)
    return {"mean": round(mean, 4), "lo": round(mean - half, 4), "hi": round(mean + half, 4), "n": n}


def bucket_of(turn: int) -> str:
    for name, lo, hi in BUCKETS:
        if turn >= lo and (hi is None or turn <= hi):
            return name
    raise ValueError(f"turn {turn} is not 1-based")


@dataclass
class Turn:
    turn: int
    served_by: str
    text: str
    cosine: float
    rouge_l: float
    teacher_tokens: int  # billed for this turn's own answer (audits are per session)
    teacher_only_tokens: int
    paired_cosine: float | None = None  # History-Prefix on the same S~_t, for adapted methods' local turns


@dataclass
class Session:
    conversation: str
    method: str
    turns: list[Turn] = field(default_factory=list)
    billed_tokens: int = 0  # audits included
    teacher_only_tokens: int = 0
    audits: int = 0
    rollbacks: int = 0
    adaptation_seconds: float = 0.0

    @property
    def saved(self) -> float:
        return 1 - self.billed_tokens / self.teacher_only_tokens if self.teacher_only_tokens else 0.0


class Scorer:
    """MiniLM cosine (the gate's ``1 - Gap``) and ROUGE-L F1 of an answer against the recorded one."""

    def __init__(self, encoder: Encoder) -> None:
        from rouge_score import rouge_scorer

        self.encoder = encoder
        self.rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def __call__(self, text: str, reference: str) -> tuple[float, float]:
        emb = self.encoder.encode([text, reference])
        return round(1 - float(gap(emb[0], emb[1])), 4), round(self.rouge.score(reference, text)["rougeL"].fmeasure, 4)


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 0.1 s)."""

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def fit_context(messages: list[Message], runtime: SurrogateRuntime, budget: int) -> list[Message]:
    """Drop the oldest exchanges (never the system prompt or the last query) until the rendered
    prompt is within ``budget`` tokens."""
    msgs = list(messages)
    while runtime.count_tokens(runtime.render(msgs)) > budget:
        first = next((i for i, m in enumerate(msgs) if m.role != "system"), None)
        if first is None or first >= len(msgs) - 1:
            break
        end = first + 1
        while end < len(msgs) - 1 and msgs[end].role != "user":
            end += 1
        del msgs[first:end]
    return msgs


def _counter(runtime: SurrogateRuntime) -> Callable[[list[dict[str, str]]], int]:
    return lambda msgs: runtime.count_tokens(runtime.render(normalize_messages(msgs)))


def _replay(conv: Conversation, runtime: SurrogateRuntime, turns: int) -> ReplayTeacher:
    return ReplayTeacher(conv.turns[:turns], count_prompt=_counter(runtime), count_answer=runtime.count_tokens)


def run_base(method: str, conv: Conversation, engine: SomaEngine, scorer: Scorer, args: argparse.Namespace) -> Session:
    """``original``, ``surrogate`` or ``history-prefix``: no adaptation, no gate."""
    rt = engine.surrogate
    turns = min(len(conv), args.max_turns)
    teacher = _replay(conv, rt, turns)
    alone = teacher_only_tokens(teacher, "", conv.queries[:turns])
    out = Session(conv.id, method, teacher_only_tokens=sum(alone))
    history: list[dict[str, str]] = []
    for t, (query, reference) in enumerate(conv.turns[:turns], start=1):
        history.append({"role": "user", "content": query})
        if method == "original" or t <= args.warm_window:
            text, usage = teacher(history)
            served, billed = "teacher", usage.total_tokens
        else:
            msgs = normalize_messages(history)
            context = engine.compressed(msgs) if method == "history-prefix" else fit_context(msgs, rt, args.context)
            text = rt.generate(context, None, max_new_tokens=args.max_new_tokens).text
            served, billed = "surrogate", 0
        cos, rl = scorer(text, reference)
        out.turns.append(Turn(t, served, text, cos, rl, billed, alone[t - 1]))
        out.billed_tokens += billed
        history.append({"role": "assistant", "content": text})
    return out


def run_adapted(
    conv: Conversation, engine: SomaEngine, scorer: Scorer, args: argparse.Namespace, regime: str
) -> Session:
    """An adapted method through ``engine.chat``: the engine decides who serves each turn."""
    rt = engine.surrogate
    turns = min(len(conv), args.max_turns)
    teacher = _replay(conv, rt, turns)
    alone = teacher_only_tokens(teacher, "", conv.queries[:turns])
    sid = f"{conv.id}-{engine.config.strategy}"
    out = Session(conv.id, engine.config.strategy, teacher_only_tokens=sum(alone))
    history: list[dict[str, str]] = []
    for t, (query, reference) in enumerate(conv.turns[:turns], start=1):
        history.append({"role": "user", "content": query})
        reply = engine.chat(sid, history, teacher=teacher)
        cos, rl = scorer(reply.text, reference)
        row = Turn(t, reply.served_by, reply.text, cos, rl, 0, alone[t - 1])
        if reply.served_by == "teacher":
            row.teacher_tokens = reply.usage.total_tokens
        elif args.paired:
            base = rt.generate(engine.compressed(normalize_messages(history)), None, max_new_tokens=args.max_new_tokens)
            row.paired_cosine = scorer(base.text, reference)[0]
        out.turns.append(row)
        history.append({"role": "assistant", "content": reply.text})
        if regime == "real-time":
            with contextlib.suppress(TimeoutError):
                engine.wait_idle(timeout=args.think_time)
    engine.wait_idle()
    m = engine.session(sid).metrics
    out.billed_tokens = int(m["teacher_tokens"])
    out.audits = int(m.get("audit_calls", 0))
    out.rollbacks = int(m.get("rollbacks", 0))
    out.adaptation_seconds = round(float(m.get("adaptation_seconds", 0.0)), 2)
    return out


def _over_paired(r: Turn) -> float | None:
    """How much closer to the recorded answer a local turn is than History-Prefix on the same S~_t."""
    return None if r.paired_cosine is None else r.cosine - r.paired_cosine


def sessions_of(run_: dict[str, Any]) -> list[Session]:
    """The sessions of a saved run, as measured (for re-summarising a result JSON)."""
    return [
        Session(**{k: v for k, v in s.items() if k not in ("turns", "saved")}, turns=[Turn(**t) for t in s["turns"]])
        for s in run_["sessions"]
    ]


def summarise(sessions: Sequence[Session]) -> dict[str, Any]:
    """Per bucket and overall figures, each a mean over sessions with its 95% interval."""

    def per_session(pick: Callable[[Turn], float | None], rows: Callable[[Session], list[Turn]]) -> list[float]:
        vals = []
        for s in sessions:
            xs = [v for v in (pick(r) for r in rows(s)) if v is not None]
            if xs:
                vals.append(sum(xs) / len(xs))
        return vals

    def figures(rows: Callable[[Session], list[Turn]]) -> dict[str, Any]:
        def local(s: Session) -> list[Turn]:
            return [r for r in rows(s) if r.served_by == "surrogate"]

        def bucket_saved(s: Session) -> float | None:
            alone = sum(r.teacher_only_tokens for r in rows(s))
            return 1 - sum(r.teacher_tokens for r in rows(s)) / alone if alone else None

        return {
            "cosine": mean_ci(per_session(lambda r: r.cosine, rows)),
            "rouge_l": mean_ci(per_session(lambda r: r.rouge_l, rows)),
            "local_cosine": mean_ci(per_session(lambda r: r.cosine, local)),
            "local_rouge_l": mean_ci(per_session(lambda r: r.rouge_l, local)),
            "paired_history_prefix_cosine": mean_ci(per_session(lambda r: r.paired_cosine, local)),
            "local_over_history_prefix": mean_ci(per_session(_over_paired, local)),
            "local_share": mean_ci(len(local(s)) / len(rows(s)) for s in sessions if rows(s)),
            "saved_without_audits": mean_ci(v for v in (bucket_saved(s) for s in sessions) if v is not None),
        }

    out: dict[str, Any] = {"sessions": len(sessions), "all": figures(lambda s: s.turns)}
    out["all"]["saved"] = mean_ci(s.saved for s in sessions)
    long = [s for s in sessions if len(s.turns) >= 13]
    out["all"]["saved_sessions_13plus"] = mean_ci(s.saved for s in long)
    out["all"]["audits"] = mean_ci(s.audits for s in sessions)
    out["all"]["rollbacks"] = mean_ci(s.rollbacks for s in sessions)
    out["all"]["adaptation_seconds"] = mean_ci(s.adaptation_seconds for s in sessions)
    for name, _, _ in BUCKETS:
        out[name] = figures(lambda s, name=name: [r for r in s.turns if bucket_of(r.turn) == name])
    return out


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Savings against local-turn similarity, one point per method and gate setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    same: dict[tuple[float, float], list[str]] = {}  # settings that gave the same figures share one label
    for p in points:
        if p["saved"] is not None and p["similarity"] is not None:
            same.setdefault((p["saved"] * 100, p["similarity"]), []).append(p["label"])
    for xy, labels in same.items():
        ax.scatter(*xy, s=40)
        ax.annotate("\n".join(labels), xy, textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.margins(x=0.1, y=0.2)  # room for the labels
    ax.set_xlabel("teacher tokens saved, % (audits included)")
    ax.set_ylabel("similarity of local turns to ChatGPT (MiniLM cosine)")
    ax.set_title("ShareGPT: savings against quality, per method and gate setting")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gate_settings(spec: str) -> dict[str, Any]:
    """A ``--gates`` value as gate overrides: ``default`` (none), ``permissive`` (no fidelity
    floor, no improvement over the base needed) or a number (``min_fidelity``)."""
    if spec == "default":
        return {}
    if spec == "permissive":
        return {"min_fidelity": 0.0, "min_improvement": None}
    try:
        return {"min_fidelity": float(spec)}
    except ValueError:
        raise SystemExit(f"--gates takes default, permissive or a min_fidelity number, not {spec!r}") from None


def _config(args: argparse.Namespace, strategy: str, gate_spec: str, regime: str) -> SomaConfig:
    cfg: dict[str, Any] = {
        "warm_window": args.warm_window,
        "strategy": strategy,
        "adaptation": "inline" if regime == "settled" else "background",
        "max_new_tokens": args.max_new_tokens,
        "device": args.device,
        "gate": {"audit_seed": 0},
    }
    if regime != "real-time":  # quality, not latency: a busy CPU must not turn local turns into teacher turns
        cfg["surrogate_deadline"] = args.surrogate_deadline
    cfg["gate"].update(gate_settings(gate_spec))
    for section, key, value in (
        ("lora", "steps", args.lora_steps),
        ("lora", "max_seq_len", args.max_seq_len),
        ("lora", "max_answer_tokens", args.max_answer_tokens),
        ("lora", "kl_weight", args.kl_weight),
        ("mining", "steps", args.mining_steps),
        ("mining", "candidates", args.candidates),
        ("mining", "hardness", args.hardness),
    ):
        if value is not None:
            cfg.setdefault(section, {})[key] = value
    return SomaConfig(**cfg)


def _gate_label(spec: str) -> str:
    return spec if spec in ("default", "permissive") else f"min_fidelity={float(spec):g}"


def run(args: argparse.Namespace, save: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every method on every session; ``save(result so far)`` after each method (a long run
    that is stopped keeps what it measured)."""
    import torch

    torch.set_num_threads(args.threads)
    sessions = load_conversations(args.split, min_turns=args.min_turns, limit=args.sessions, source=args.source)
    if len(sessions) < args.sessions:
        print(f"only {len(sessions)} {args.split} conversations have {args.min_turns}+ turns")
    encoder = Encoder(resolve=lambda: resolve_encoder(args.encoder))
    scorer = Scorer(encoder)
    tmp = Path(tempfile.mkdtemp(prefix="soma-sharegpt-"))
    started, load_before = time.perf_counter(), os.getloadavg()
    runs: dict[str, Any] = {}
    points: list[dict[str, Any]] = []
    plan: list[tuple[str, str, str, str]] = []
    for method in args.methods:
        if method in ADAPTED:
            gates = args.gates if method in args.gate_methods else ["default"]
            plan += [
                (method, regime, g, f"{method} [{regime}, {_gate_label(g)}]") for regime in args.regimes for g in gates
            ]
        else:
            plan.append((method, "-", "default", method))
    for method, regime, gate_value, label in plan:
        cfg = _config(args, method if method in ADAPTED else "history-ft", gate_value, regime)
        engine = SomaEngine(
            config=cfg,
            surrogate=args.surrogate,
            encoder=encoder,
            store=f"sqlite:///{tmp / (label.replace(' ', '_') + '.db')}",
            namespace="sharegpt",
        )
        t0 = time.perf_counter()
        with PeakRSS() as mem:
            done = [
                run_adapted(c, engine, scorer, args, regime)
                if method in ADAPTED
                else run_base(method, c, engine, scorer, args)
                for c in sessions
            ]
        engine.close()
        summary = summarise(done)
        summary["peak_rss_mb"] = round(mem.peak / 2**20)
        summary["wall_seconds"] = round(time.perf_counter() - t0, 1)
        runs[label] = {"summary": summary, "sessions": [asdict(s) | {"saved": round(s.saved, 4)} for s in done]}
        a = summary["all"]
        points.append({"label": label, "saved": a["saved"]["mean"], "similarity": a["local_cosine"]["mean"]})
        print(
            f"{label:<44} saved {a['saved']['mean']} local cos {a['local_cosine']['mean']} "
            f"13+ cos {summary['13+']['cosine']['mean']} ({summary['wall_seconds']} s)",
            flush=True,
        )
        if save:
            save(_result(args, sessions, started, load_before, points, runs))
    return _result(args, sessions, started, load_before, points, runs)


def _result(
    args: argparse.Namespace,
    sessions: list[Conversation],
    started: float,
    load_before: tuple[float, float, float],
    points: list[dict[str, Any]],
    runs: dict[str, Any],
) -> dict[str, Any]:
    return {
        "protocol": (__doc__ or "").split("\n\n")[0],
        "similarity_note": "MiniLM cosine and ROUGE-L F1 against the recorded ChatGPT answer; the paper uses LLM "
        "judges (Figure 4), which cannot run offline here",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "conversations": [c.id for c in sessions],
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        },
        "seconds": round(time.perf_counter() - started, 1),
        "points": points,
        "runs": runs,
    }


def merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from several invocations on the same conversations (methods run in separate
    processes, or a stopped run finished later). Each invocation's args, machine and seconds are
    kept under ``invocations``; a label measured twice, or other conversations, is refused."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    runs: dict[str, Any] = {}
    for r in results:
        if r["conversations"] != first["conversations"]:
            raise ValueError("results measured on other conversations cannot be merged")
        for label, run_ in r["runs"].items():
            if label in runs:
                raise ValueError(f"{label!r} is in two of the results: keep one")
            summary = summarise(sessions_of(run_))  # the current figures, from the sessions as measured
            kept = {k: run_["summary"][k] for k in ("peak_rss_mb", "wall_seconds") if k in run_["summary"]}
            runs[label] = run_ | {"summary": summary | kept}
    invocations = [
        inv for r in results for inv in r.get("invocations") or [{k: r[k] for k in ("args", "machine", "seconds")}]
    ]
    return {
        "protocol": first["protocol"],
        "similarity_note": first["similarity_note"],
        "conversations": first["conversations"],
        "invocations": invocations,
        "points": [p for r in results for p in r["points"]],
        "runs": runs,
    }


def _cell(fig: dict[str, Any] | None, digits: int = 3) -> str:
    if not fig or fig["mean"] is None:
        return "–"
    if fig["n"] < 2 or fig["lo"] is None:
        return f"{fig['mean']:.{digits}f} (n={fig['n']})"
    return f"{fig['mean']:.{digits}f} [{fig['lo']:.{digits}f}, {fig['hi']:.{digits}f}] (n={fig['n']})"


def markdown(result: dict[str, Any]) -> str:
    """The summary and per-bucket tables (Table 1 and Table 3 of the paper's shape) as Markdown."""
    head = (
        "| method | saved (audits incl.) | local cosine | History-Prefix on the same turns | local − History-Prefix |"
    )
    lines = [head + " local ROUGE-L | local share | adaptation s | peak RSS MB |", "|" + " --- |" * 9]
    keys = ("saved", "local_cosine", "paired_history_prefix_cosine", "local_over_history_prefix", "local_rouge_l")
    for label, run_ in result["runs"].items():
        a = run_["summary"]["all"]
        cells = [a.get(k) for k in keys]
        cells += [a.get("local_share")]
        row = [label, *(_cell(c) for c in cells), _cell(a.get("adaptation_seconds"), 0)]
        lines.append("| " + " | ".join(row + [str(run_["summary"].get("peak_rss_mb", "–"))]) + " |")
    head = "| method | bucket | local cosine | History-Prefix on the same turns | local − History-Prefix |"
    lines += ["", head + " saved w/o audits |", "|" + " --- |" * 6]
    keys = ("local_cosine", "paired_history_prefix_cosine", "local_over_history_prefix", "saved_without_audits")
    for label, run_ in result["runs"].items():
        for name, _, _ in BUCKETS:
            b = run_["summary"][name]
            cells = [b.get(k) for k in keys]
            lines.append("| " + " | ".join([label, name, *(_cell(c) for c in cells)]) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--quick", action="store_true", help="6 sessions")
    ap.add_argument("--sessions", type=int, help="how many conversations (default 24; --quick 6)")
    ap.add_argument("--min-turns", type=int, default=10)
    ap.add_argument("--max-turns", type=int, default=16, help="turns played per conversation (CPU time)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--regimes", nargs="+", default=["settled"], choices=["settled", "real-time"])
    ap.add_argument("--think-time", type=float, default=10.0, help="seconds between turns, real-time regime")
    ap.add_argument(
        "--gates", nargs="+", default=["default"], help="gate settings: default, permissive, or a gate.min_fidelity"
    )
    ap.add_argument("--gate-methods", nargs="+", default=list(ADAPTED), help="methods run at every --gates value")
    ap.add_argument("--warm-window", type=int, default=4)
    ap.add_argument(
        "--surrogate-deadline",
        type=float,
        default=600.0,
        help="surrogate_deadline outside the real-time regime (seconds; the engine's default 30 s would let a "
        "loaded CPU's slow generations fall back to the teacher)",
    )
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--context", type=int, default=2048, help="token budget of the Surrogate baseline's full history")
    ap.add_argument("--lora-steps", type=int, help="override the default LoRA steps")
    ap.add_argument("--max-seq-len", type=int, help="override lora.max_seq_len (training sequences are cut to it)")
    ap.add_argument("--max-answer-tokens", type=int, help="override lora.max_answer_tokens (answer prefixes)")
    ap.add_argument("--kl-weight", type=float, help="override lora.kl_weight (KL to the base)")
    ap.add_argument("--mining-steps", type=int, help="override the default mining steps")
    ap.add_argument("--candidates", type=int, help="override the default mining candidates M")
    ap.add_argument("--hardness", choices=["divergence", "literal"], help="override mining.hardness (r_t's rule)")
    ap.add_argument("--no-paired", dest="paired", action="store_false", help="skip History-Prefix on the same turns")
    ap.add_argument("--surrogate", help="HF id or path (default: the bundled SmolLM2)")
    ap.add_argument("--encoder", help="sentence-transformers id or path (default: the bundled MiniLM)")
    ap.add_argument("--source", type=Path, help="another copy of the ShareGPT JSON (tests)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--out", type=Path, help="JSON path (default: benchmarks/results/sharegpt[-dev][-quick].json)")
    ap.add_argument(
        "--merge", nargs="+", type=Path, help="merge these result JSONs (same conversations) into --out; runs nothing"
    )
    ap.add_argument("--table", type=Path, help="print a result JSON's tables as Markdown; runs nothing")
    args = ap.parse_args(argv)
    args.sessions = args.sessions or (6 if args.quick else 24)
    for spec in args.gates:
        gate_settings(spec)  # a bad value fails before any model loads
    if args.out is None:
        name = "sharegpt" + ("-dev" if args.split == "dev" else "") + ("-quick" if args.quick else "")
        args.out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(result: dict[str, Any]) -> None:
        args.out.write_text(json.dumps(result, indent=1))
        plot(result["points"], args.out.with_suffix(".png"))

    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    if args.merge:
        save(merge([json.loads(p.read_text()) for p in args.merge]))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
        return

    result = run(args, save)
    save(result)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')} in {result['seconds']} s")


if __name__ == "__main__":
    main()
