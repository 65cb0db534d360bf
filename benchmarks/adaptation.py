"""Adaptation cost and quality: mining (Eq. 1-3), LoRA (Eq. 4) and the gate, per W = 4 session.

Parts (``--parts``, default all that apply):

- ``step``     one LoRA optimizer step, before/after: full ``model(...).logits`` (the previous
               distiller) against the LM head on the answer positions only (the current one),
               interleaved repetitions, time and peak memory, tiny model and SmolLM2 on CPU.
- ``session``  wall time and peak memory of mining, LoRA and gate in a real W = 4 session
               driven through ``SomaEngine.chat`` (adaptation inline, strategy ``soma``):
               (a) a tiny model on CPU, (b) the bundled SmolLM2-135M on CPU, (c) a randomly
               initialised model with Qwen3-0.6B's shape on CUDA (skipped, with a note,
               where CUDA is absent). The paper's defaults (M = 3, 30 mining steps, 60 LoRA
               steps) unless ``--quick`` (fewer SmolLM2 steps; per-step figures are given so
               the full cost can be read off).
- ``vocab``    mining cost per step at fixed teacher positions while |V| grows (tiny models),
               split into decoder+head, the loss part (Eq. 1-3 terms) and the rest; the loss
               part alone, fwd+bwd, against a dense |V|-wide reference; and the loss part as
               k + m grows at fixed |V|.
- ``default``  the default configuration (strategy ``soma``, the default adaptation budget) on
               SmolLM2 at W = 4 over ShareGPT dev conversations with long recorded answers
               (``--sessions``; ``--budget`` overrides ``adaptation_budget_s``): adaptation time
               per phase, planned vs ran steps, peak RSS, the gate's decision.
- ``levers``   item 3 of issue 19: held-out NLL curve of the next turns (4-5) over the LoRA steps
               of History-FT on turns 1-3 of ShareGPT dev conversations, and the MiniLM cosine
               of the end-of-training adapter's greedy answers to the recorded ones, per lever
               (lr, a few steps at a low lr, answer prefix, rank/dropout, KL to the base);
               ``--lever-steps``, ``--lever-budget``, plot ``--levers-plot``.
- ``ablation`` held-out fidelity (cosine of the bundled MiniLM embeddings of the surrogate's
               answer and the teacher's) and answer NLL for soma / history-ft / random-ft /
               unadapted over scripted persona sessions, tiny model (``--full``: SmolLM2 too).

Peak memory: on CPU the peak resident set size above the phase's starting RSS, sampled every
5 ms (torch allocations bypass tracemalloc, so RSS is the honest measure); on CUDA
``torch.cuda.max_memory_allocated`` after a reset. Writes JSON, prints tables.

    SOMA_HOME=/tmp/somahome python benchmarks/adaptation.py --quick
"""

from __future__ import annotations

import os

# Two OpenMP threads that spin-wait on a busy 2-core host run tiny ops ~50x slower; a passive
# wait policy avoids that collapse. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gpu_bench import QWEN3_06B  # noqa: E402  (this folder: the script's own, or pytest's pythonpath)

from soma_engine import SomaConfig, SomaEngine
from soma_engine.adaptation import jobs, prompt_scoring  # noqa: E402
from soma_engine.adaptation import miner as miner_mod  # noqa: E402
from soma_engine.adaptation.distill_loss import answer_token_nll, sequence_nll, weighted_nll  # noqa: E402
from soma_engine.adaptation.distiller import Example, answer_nll, collate, tokenize_example, train_adapter  # noqa: E402
from soma_engine.adaptation.lora_targets import lora_config_dict  # noqa: E402
from soma_engine.adaptation.mining_loss import semantic_divergence_loss  # noqa: E402
from soma_engine.adaptation.neighbourhoods import NeighborIndex  # noqa: E402
from soma_engine.runtime.encoder import Encoder  # noqa: E402
from soma_engine.runtime.surrogate import SurrogateRuntime  # noqa: E402
from soma_engine.testing import build_tiny_model, build_tokenizer  # noqa: E402
from soma_engine.types import Message, TurnRecord  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Meter:
    """Wall time and peak memory of a block (CPU: RSS sampled every 5 ms; CUDA: allocator)."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.seconds = 0.0
        self.peak_mb = 0.0

    def __enter__(self) -> Meter:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = _rss()
            self._peak = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _rss())

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self._t0
        if self.cuda:
            self.peak_mb = (torch.cuda.max_memory_allocated() - self._base) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss())
            self.peak_mb = (self._peak - self._base) / 2**20


def _max_rss_mb() -> float:
    """Peak RSS of this process so far, MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _stats(xs: list[float]) -> dict[str, float]:
    return {"min": min(xs), "median": statistics.median(xs), "n": len(xs)}


# ---------------------------------------------------------------------------------------------
# Models and sessions
# ---------------------------------------------------------------------------------------------


def tiny_runtime(seed: int = 0) -> SurrogateRuntime:
    model, tok = build_tiny_model(seed=seed)
    for p in model.parameters():
        p.requires_grad_(False)
    return SurrogateRuntime(None, model=model, tokenizer=tok, device="cpu")


def smollm2_runtime() -> SurrogateRuntime:
    from soma_engine.runtime.models import bundled_surrogate_path

    rt = SurrogateRuntime(str(bundled_surrogate_path()), device="cpu")
    rt.run(lambda r: r.model)
    return rt


def qwen3_shape_runtime() -> SurrogateRuntime:
    """Random weights, Qwen3-0.6B's shape, bf16 on CUDA; the tiny BPE tokenizer feeds it ids."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    tok = build_tokenizer()
    config = Qwen3Config(
        **QWEN3_06B,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to("cuda", torch.bfloat16)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return SurrogateRuntime(None, model=model, tokenizer=tok, device="cuda")


def bundled_encoder() -> Encoder:
    from soma_engine.runtime.models import bundled_encoder_path

    enc = Encoder(str(bundled_encoder_path()))
    enc.encode(["warm up"])
    return enc


# Scripted persona sessions: deterministic styles a LoRA can learn. Each: system prompt,
# style(query) -> answer, 5 warm queries (4 trained on, 1 for the gate), 3 held-out queries.
def _keyword(q: str) -> str:
    return max(q.strip("?.!").replace(",", " ").split(), key=len)


PERSONAS: dict[str, tuple[str, Callable[[str], str]]] = {
    "pirate": ("You are a pirate.", lambda q: f"{_keyword(q).capitalize()}? Arr, shiver me timbers, matey!"),
    "butler": (
        "You are a formal butler.",
        lambda q: f"Certainly, sir. Regarding the {_keyword(q).lower()}, I shall attend to it at once.",
    ),
    "chef": (
        "You are a cheerful chef.",
        lambda q: f"Ooh, {_keyword(q).lower()}! Let us cook it up with a pinch of salt!",
    ),
    "robot": ("You are a terse robot.", lambda q: f"QUERY {_keyword(q).upper()} ACKNOWLEDGED. PROCESSING COMPLETE."),
}
SESSIONS: list[tuple[str, list[str], list[str]]] = [
    (
        "pirate",
        [
            "How should I price my bicycle listing?",
            "A buyer offers seven hundred dollars, what now?",
            "Should I include the pedals with the bicycle?",
            "He proposes meeting in the middle, accept?",
            "Should I clean the bicycle before he comes?",
        ],
        ["Is a test ride on the bicycle safe?", "Should I accept cash or transfer?", "What if he haggles again?"],
    ),
    (
        "butler",
        [
            "Please plan my trip to Lisbon next week.",
            "Which museums in Lisbon should I visit?",
            "Book a table for dinner near the river.",
            "Arrange a day trip to Sintra, please.",
            "What pastries should I try in Belem?",
        ],
        ["Find me a tram route to the castle.", "Pack my suitcase for rainy weather.", "Reserve a fado evening."],
    ),
    (
        "chef",
        [
            "What should I cook for dinner tonight?",
            "How long do I roast the potatoes?",
            "Can I replace butter with olive oil?",
            "Which spices go with chicken?",
            "How do I make the sauce thicker?",
        ],
        ["What dessert goes with this dinner?", "How do I keep the salad fresh?", "Which wine pairs with chicken?"],
    ),
    (
        "robot",
        [
            "Review this Python function for errors.",
            "Why does the loop append squares?",
            "Should the function return a generator?",
            "Add type hints to the function signature.",
            "Write a docstring for the function.",
        ],
        ["Rename the variables for clarity.", "Is recursion better than the loop?", "Add a unit test, please."],
    ),
]


def session_records(persona: str, warm: list[str]) -> tuple[list[TurnRecord], list[dict[str, str]]]:
    system, style = PERSONAS[persona]
    history = [{"role": "system", "content": system}]
    records = []
    for i, q in enumerate(warm):
        history.append({"role": "user", "content": q})
        a = style(q)
        records.append(
            TurnRecord(turn=i + 1, served_by="teacher", query=q, answer=a, messages=[dict(m) for m in history])
        )
        history.append({"role": "assistant", "content": a})
    return records, history


def make_engine(rt: SurrogateRuntime, encoder: Encoder | None, cfg: SomaConfig, tmp: Path) -> SomaEngine:
    return SomaEngine(
        config=cfg,
        surrogate=rt,
        encoder=encoder or Encoder(model_path="/unused"),
        store=f"sqlite:///{tmp / f'soma-{time.monotonic_ns()}.db'}",
    )


def close_engine(engine: SomaEngine) -> None:
    """Close the engine's jobs and store but keep its runtime (shared by later parts)."""
    engine.jobs.close()
    engine.store.close()


def session_config(mining_steps: int, lora_steps: int, candidates: int = 3, **extra: Any) -> SomaConfig:
    return SomaConfig(
        warm_window=4,
        adaptation="inline",
        strategy=extra.pop("strategy", "soma"),
        max_new_tokens=extra.pop("max_new_tokens", 24),
        mining={"steps": mining_steps, "candidates": candidates},
        lora={"steps": lora_steps, **extra.pop("lora", {})},
        gate={"min_fidelity": 0.0, "audit_rate": 0.0},
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# Part: one LoRA step, before / after
# ---------------------------------------------------------------------------------------------


def _step_variants(rt: SurrogateRuntime, ctx_repeat: int) -> tuple[dict[str, Callable[..., float]], list[Any], Any]:
    """The four step variants on one 2-sequence batch, with a fresh LoRA installed."""
    ctx = " ".join(["The bicycle negotiation continues with the buyer offering more money."] * ctx_repeat)
    answer = "Arr matey! " + " ".join(["Hold firm on the price and ask for more doubloons."] * 8)
    exs = [
        Example([Message("system", "You are a pirate."), Message("user", f"{ctx} question {i}?")], answer)
        for i in range(2)
    ]
    rows = [tokenize_example(rt, e, 1024) for e in exs]

    def setup(r: SurrogateRuntime) -> Any:
        from soma_engine.config import LoraConfig

        r.install_adapter("bench_step", lora_config_dict(LoraConfig(), r.base_model), None)
        r.model.set_adapter("bench_step")
        params = [p for n, p in r.model.named_parameters() if ".bench_step." in n]
        for p in params:
            p.requires_grad_(True)
        return params

    params = rt.run(setup)
    ids, mask, labels = collate(rows, rt.tokenizer.pad_token_id)
    w = torch.ones(2)

    def full(r: SurrogateRuntime) -> float:
        r.model.train()
        loss = weighted_nll(sequence_nll(r.model(input_ids=ids, attention_mask=mask).logits, labels), w)
        loss.backward()
        r.model.eval()
        return float(loss.detach())

    def fast(r: SurrogateRuntime) -> float:
        r.model.train()
        loss = weighted_nll(answer_token_nll(r.model, ids, mask, labels), w)
        loss.backward()
        r.model.eval()
        return float(loss.detach())

    def val_full(r: SurrogateRuntime) -> float:
        with torch.no_grad():
            return float(sequence_nll(r.model(input_ids=ids, attention_mask=mask).logits, labels).mean())

    def val_fast(r: SurrogateRuntime) -> float:
        with torch.no_grad():
            return float(answer_token_nll(r.model, ids, mask, labels).mean())

    variants = {
        "step_full_logits": full,
        "step_answer_only": fast,
        "val_full_logits": val_full,
        "val_answer_only": val_fast,
    }
    return variants, params, rows


STEP_MODELS: dict[str, tuple[Callable[[], SurrogateRuntime], int]] = {
    "tiny-llama": (lambda: tiny_runtime(), 3),
    "SmolLM2-135M": (lambda: smollm2_runtime(), 22),
}


def _memprobe(label: str, variant: str) -> None:
    """Child process: the peak RSS of ONE run of ``variant`` in a fresh process (memory that an
    earlier variant freed would otherwise hide a later one's peak)."""
    make, ctx_repeat = STEP_MODELS[label]
    rt = make()
    variants, _, _ = _step_variants(rt, ctx_repeat)
    with Meter() as m:
        rt.run(variants[variant])
    print(json.dumps({"peak_rss_mb": m.peak_mb, "seconds": m.seconds}))


def part_step(rt: SurrogateRuntime, label: str, reps: int) -> dict[str, Any]:
    """Full-logits step (previous distiller) vs answer-positions-only step, interleaved; peak
    memory of each variant measured in a fresh child process."""
    import subprocess
    import sys

    variants, params, rows = _step_variants(rt, STEP_MODELS[label][1])
    for fn in variants.values():  # warm up
        rt.run(fn)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(reps):
        for k, fn in variants.items():
            for p in params:
                p.grad = None
            with Meter() as m:
                rt.run(fn)
            times[k].append(m.seconds)
    rt.run(lambda r: r.remove_adapter("bench_step"))
    out: dict[str, Any] = {
        "model": label,
        "batch": [len(r[0]) for r in rows],
        "answer_tokens": [sum(y != -100 for y in r[1]) for r in rows],
        "vocab": int(rt.base_model.get_output_embeddings().weight.shape[0]),
    }
    for k in variants:
        probe = subprocess.run(
            [sys.executable, __file__, "--memprobe", label, k], capture_output=True, text=True, check=True
        )
        peak = json.loads(probe.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        out[k] = {**_stats(times[k]), "peak_rss_mb": round(peak, 1)}
    out["speedup_step_min"] = out["step_full_logits"]["min"] / out["step_answer_only"]["min"]
    return out


# ---------------------------------------------------------------------------------------------
# Part: a W = 4 session, mining + LoRA + gate
# ---------------------------------------------------------------------------------------------


def part_session(label: str, rt: SurrogateRuntime, encoder: Encoder, cfg: SomaConfig, cuda: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="soma-bench-"))
    engine = make_engine(rt, encoder, cfg, tmp)
    phases: dict[str, Any] = {}
    saved = {name: getattr(jobs, name) for name in ("plan_training", "train_adapter", "_gate")}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*a: Any, **kw: Any) -> Any:
            with Meter(cuda) as m:
                out = fn(*a, **kw)
            phases[name] = {"seconds": m.seconds, "peak_mb": m.peak_mb, "result": out}
            return out

        return inner

    for name, fn in saved.items():
        setattr(jobs, name, wrap(name, fn))
    persona, warm, _ = SESSIONS[0]
    system, style = PERSONAS[persona]
    history: list[dict[str, str]] = [{"role": "system", "content": system}]
    try:
        with Meter(cuda) as total:
            for q in warm[:4]:
                history.append({"role": "user", "content": q})
                reply = engine.chat("bench", history, lambda msgs: style(msgs[-1].content))
                history.append({"role": "assistant", "content": reply.text})
    finally:
        for name, fn in saved.items():
            setattr(jobs, name, fn)
    view = engine.session("bench")
    job = engine.store.get(engine.key("bench")).job
    if "train_adapter" not in phases:
        raise RuntimeError(f"adaptation did not run: {job}")
    plan = phases["plan_training"]["result"]
    res = phases["train_adapter"]["result"]
    mining_s = plan.timings.get("mining", 0.0)
    opt_s = plan.timings.get("mining_optimization", 0.0)
    out = {
        "model": label,
        "device": "cuda" if cuda else "cpu",
        "config": {
            "W": cfg.warm_window,
            "M": cfg.mining.candidates,
            "mining_steps": cfg.mining.steps,
            "lora_steps": cfg.lora.steps,
            "k": cfg.mining.neighbors_k,
            "m": cfg.mining.top_m,
        },
        "mining_s": mining_s,
        "mining_per_step_s": opt_s / max(cfg.mining.steps, 1),
        "mining_timings": {k: v for k, v in plan.timings.items() if k.startswith("mining_")},
        "plan_s": phases["plan_training"]["seconds"],
        "plan_peak_mb": phases["plan_training"]["peak_mb"],
        "lora_s": phases["train_adapter"]["seconds"],
        "lora_steps_done": res.steps,
        "lora_per_step_s": res.timings["steps"] / max(res.steps, 1),
        "lora_validation_s": res.timings["validation"],
        "lora_peak_mb": phases["train_adapter"]["peak_mb"],
        "lora_val_source": res.val_source,
        "lora_best_step": res.best_step,
        "gate_s": phases["_gate"]["seconds"] if "_gate" in phases else None,
        "gate_peak_mb": phases["_gate"]["peak_mb"] if "_gate" in phases else None,
        "adaptation_s": sum(phases[k]["seconds"] for k in phases),
        "session_wall_s": total.seconds,
        "phase": view.phase.value,
        "selected": plan.selected,
        "hardness": [round(h, 4) for h in plan.hardness],
        "memory_unit": "CUDA max_memory_allocated above the phase's start, MiB"
        if cuda
        else "peak RSS above the phase's start, MiB (a lower bound: memory an earlier phase freed and the "
        "allocator kept is reused unseen)",
        "process_peak_rss_mb": _max_rss_mb(),
    }
    if cuda:
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    # Paper defaults (30 mining steps, 60 LoRA steps) read off the per-step figures.
    fixed = out["adaptation_s"] - opt_s - res.timings["steps"]
    out["extrapolated_paper_defaults_s"] = fixed + 30 * out["mining_per_step_s"] + 60 * out["lora_per_step_s"]
    close_engine(engine)
    return out


# ---------------------------------------------------------------------------------------------
# Part: the default strategy under the default budget, on real conversations
# ---------------------------------------------------------------------------------------------


def sharegpt_sessions(n: int, min_answer_chars: int) -> tuple[list[Any], str]:
    """``n`` ShareGPT *dev* conversations with at least 5 turns whose 4 warm answers include one of
    ``min_answer_chars`` or more (recorded ChatGPT answers, often 500+ tokens); falls back to
    long synthetic answers when the dataset package is missing."""
    try:
        from soma_engine.datasets.sharegpt import load_conversations

        convs = [
            c
            for c in load_conversations("dev", min_turns=5, limit=400)
            if max(len(a) for _, a in c.turns[:4]) >= min_answer_chars
        ]
        return convs[:n], "sharegpt dev"
    except Exception as exc:  # noqa: BLE001 - the benchmark still measures on synthetic answers
        from types import SimpleNamespace

        print(f"ShareGPT unavailable ({exc}); long synthetic answers instead", flush=True)
        para = "The listing should lead with the frame size, the groupset and the service history. " * 30
        turns = tuple((f"Question {i} about selling my road bike?", f"Answer {i}. {para}") for i in range(5))
        return [SimpleNamespace(id=f"synthetic-{j}", turns=turns) for j in range(n)], "synthetic"


def _default_run(rt: SurrogateRuntime, encoder: Encoder, cfg: SomaConfig, conv: Any) -> dict[str, Any]:
    """One conversation: three teacher turns, then the 4th, which runs the adaptation inline."""
    engine = make_engine(rt, encoder, cfg, Path(tempfile.mkdtemp(prefix="soma-bench-")))
    rt.adapters = engine.adapters  # the runtime outlives engines: it loads from this one's store
    phases: dict[str, Any] = {}
    saved = {name: getattr(jobs, name) for name in ("plan_training", "train_adapter", "_gate")}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*a: Any, **kw: Any) -> Any:
            with Meter(False) as m:
                out = fn(*a, **kw)
            phases[name] = {"seconds": m.seconds, "peak_mb": m.peak_mb}
            if hasattr(out, "timings"):  # the plan's and the distiller's own split
                phases[name]["timings"] = {k: round(v, 3) for k, v in out.timings.items()}
            return out

        return inner

    for name, fn in saved.items():
        setattr(jobs, name, wrap(name, fn))
    answers = [a for _, a in conv.turns]

    def teacher(msgs: list[Any]) -> str:
        return answers[sum(1 for m in msgs if m.role == "user") - 1]

    history: list[dict[str, str]] = []
    try:
        for q, _ in conv.turns[:3]:
            history.append({"role": "user", "content": q})
            history.append({"role": "assistant", "content": engine.chat("bench", history, teacher).text})
        history.append({"role": "user", "content": conv.turns[3][0]})
        with Meter(False) as adapt:
            engine.chat("bench", history, teacher)
    finally:
        for name, fn in saved.items():
            setattr(jobs, name, fn)
    decision = engine.session("bench").decisions[-1]
    close_engine(engine)
    train = ("plan_training", "train_adapter")
    return {
        "conversation": conv.id,
        "answer_tokens": [len(rt.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers[:4]],
        "turn4_with_adaptation_s": adapt.seconds,
        "adaptation_s": sum(p["seconds"] for p in phases.values()),
        "mining_plus_lora_s": sum(phases[k]["seconds"] for k in train if k in phases),
        "phases": phases,
        "peak_rss_above_start_mb": adapt.peak_mb,
        "peak_rss_mb": adapt._peak / 2**20,
        "accepted": decision.get("accepted"),
        "no_improvement": bool(decision.get("no_improvement")),
        "reason": decision.get("reason"),
        "budget": decision.get("budget"),
    }


def part_default(rt: SurrogateRuntime, encoder: Encoder, n_sessions: int, budget_s: float | None) -> dict[str, Any]:
    """Adaptation time and peak RSS of the default configuration (strategy ``soma``, the
    default ``adaptation_budget_s``) at W = 4, one inline adaptation per conversation, the
    teacher replaying the recorded answers."""
    convs, source = sharegpt_sessions(n_sessions, 2000)
    cfg = SomaConfig(warm_window=4, adaptation="inline", adaptation_budget_s=budget_s)
    runs = []
    for conv in convs:
        runs.append(_default_run(rt, encoder, cfg, conv))
        print(json.dumps(runs[-1], default=str), flush=True)
    return {
        "source": source,
        "config": {"strategy": cfg.strategy, "W": cfg.warm_window, "adaptation_budget_s": cfg.adaptation_budget_s},
        "runs": runs,
        "max_adaptation_s": max(r["adaptation_s"] for r in runs),
        "process_peak_rss_mb": _max_rss_mb(),
        "note": "process_peak_rss_mb is the whole benchmark process (SmolLM2, MiniLM, engine, all sessions); "
        "the machine's 2 cores were shared with other engineers' jobs (load averages in machine)",
    }


# ---------------------------------------------------------------------------------------------
# Part: item 3's levers, held-out NLL of the next turn on ShareGPT dev conversations
# ---------------------------------------------------------------------------------------------

# In the order they run: a --lever-budget that runs out drops the last ones (recorded as skipped).
LEVERS: dict[str, dict[str, Any]] = {
    "lr 1e-3 (default lr)": {},
    "KL to base 0.5": {"kl_weight": 0.5},
    "KL to base 2.0": {"kl_weight": 2.0},
    "lr 2e-4": {"lr": 2e-4},
    "lr 5e-5, 12 steps": {"lr": 5e-5, "steps": 12},
    "answer prefix 64 tokens": {"max_answer_tokens": 64},
    "answer prefix 32 tokens": {"max_answer_tokens": 32},
    "rank 4, dropout 0.1": {"rank": 4, "dropout": 0.1},
    "rank 16, dropout 0.1": {"rank": 16, "dropout": 0.1},
}
LEVER_SEQ_LEN = 256  # training and curve sequences (prompt cut from the left): 128 answer tokens at most
LEVER_ANSWER = 128  # held-out answer tokens scored (the curve's, unless a lever cuts answers shorter)
LEVER_NEW_TOKENS = 64  # greedy tokens generated for the cosine to the recorded answer


def _held_nll(rt: SurrogateRuntime, rows: list[Any], name: str | None) -> float:
    """Mean answer NLL of ``rows`` under the adapter ``name`` being trained (None: the base),
    eval mode, no grad: the distiller's validation, on rows of our choosing."""
    import contextlib

    def fn(r: SurrogateRuntime) -> float:
        model = r.model
        ctx = r.use(None) if name is None else contextlib.nullcontext()
        if name is not None:
            model.set_adapter(name)
        model.eval()
        with ctx, torch.no_grad():
            ids, mask, labels = collate(rows, r.tokenizer.pad_token_id, r.device)
            return float(answer_token_nll(model, ids, mask, labels).mean())

    return rt.run(fn)


def _cosines(rt: SurrogateRuntime, encoder: Encoder, held: list[Example], ref: Any) -> tuple[list[float], list[str]]:
    """MiniLM cosine of the greedy answer (``LEVER_NEW_TOKENS``) of the surrogate (adapter
    ``ref``, None: the base) to the recorded answer, per held-out turn, on the full context."""
    gens = [g.text for g in rt.generate_many([(e.messages, ref) for e in held], max_new_tokens=LEVER_NEW_TOKENS)]
    emb = encoder.encode(gens + [e.answer for e in held])
    return [float(emb[i] @ emb[len(held) + i]) for i in range(len(held))], gens


def _lever_run(
    rt: SurrogateRuntime, encoder: Encoder, conv: Any, base: dict[str, Any], name: str, cfg: Any, tag: str
) -> dict[str, Any]:
    """One History-FT run on turns 1-3 with turns 4-5 as the distiller's validation set, so its
    ``val_nll`` history is the held-out curve; then the end-of-training adapter's held-out NLL
    (full context) and the cosine of its greedy answers."""
    from peft import get_peft_model_state_dict

    train, held, rows128 = base["train"], base["held"], base["rows128"]
    prefix = cfg.max_answer_tokens < LEVER_ANSWER  # the distiller's curve scores only the prefix
    curve128: list[tuple[int, float]] = [(0, base["nll128"])]
    final: dict[str, Any] = {}

    def progress(step: int, total: int) -> None:
        if prefix and (step % 2 == 0 or step == total):
            curve128.append((step, _held_nll(rt, rows128, tag)))
        if step == total:
            sd = rt.run(lambda r: get_peft_model_state_dict(r.model, adapter_name=tag))
            final.update({k: v.detach().clone().cpu() for k, v in sd.items()})

    t0 = time.perf_counter()
    res = train_adapter(rt, train, held, cfg, name=tag, max_seq_len=LEVER_SEQ_LEN, progress=progress)
    train_s = time.perf_counter() - t0
    assert res.val_source == "given" and res.n_train == 3 and res.n_val == 2 and final
    curve = [(h["step"], round(h["val_nll"], 5)) for h in res.history if "val_nll" in h]
    if not prefix:
        curve128 = curve
    ref = rt.adapters.save(final, res.lora_config, namespace="levers", session=f"{tag}-final")
    after = answer_nll(rt, held, ref, max_answer=LEVER_ANSWER)
    cos, gens = _cosines(rt, encoder, held, ref)
    c128 = [v for _, v in curve128]
    best_i = min(range(len(c128)), key=c128.__getitem__)
    return {
        "conversation": conv.id,
        "lever": name,
        "config": {k: getattr(cfg, k) for k in ("lr", "steps", "rank", "alpha", "dropout", "max_answer_tokens")}
        | {"kl_weight": cfg.kl_weight},
        "seconds": time.perf_counter() - t0,
        "train_seconds": train_s,
        "steps": res.steps,
        "held_out_nll_curve": curve,
        "held_out_nll_curve_128": [(st, round(v, 5)) for st, v in curve128],
        "delta_nll_final": c128[-1] - c128[0],
        "delta_nll_best": c128[best_i] - c128[0],
        "best_step_on_curve": curve128[best_i][0],
        "returned_best_step": res.best_step,
        "returned_improved": res.improved,
        "held_out_nll_base": base["nll_full"],
        "held_out_nll_adapted": after,
        "delta_mean": sum(after) / len(after) - sum(base["nll_full"]) / len(base["nll_full"]),
        "held_out_cosine_base": sum(base["cos"]) / len(base["cos"]),
        "held_out_cosine_adapted": sum(cos) / len(cos),
        "delta_cosine": (sum(cos) - sum(base["cos"])) / len(cos),
        "cosine_per_turn_base": base["cos"],
        "cosine_per_turn_adapted": cos,
        "sample_adapted": [g[:100] for g in gens],
    }


def _lever_reading(d_final: list[float], d_best: list[float], d_cos: list[float]) -> str:
    n = len(d_final)
    below = sum(d < 0 for d in d_final)
    return (
        f"held-out NLL at the end {statistics.mean(d_final):+.4f} vs base ({below}/{n} conversations below), "
        f"best on the curve {statistics.mean(d_best):+.4f}; MiniLM cosine {statistics.mean(d_cos):+.4f}: "
        + (
            "the held-out NLL falls, the greedy answers do not get closer"
            if below == n and statistics.mean(d_cos) <= 0
            else "the held-out NLL falls and the greedy answers get closer on average"
            if below == n
            else "no consistent transfer"
        )
    )


def _levers_plot(rows: list[dict[str, Any]], names: list[str], path: Path) -> None:
    """Held-out NLL minus the base's vs step, one line per lever, mean over conversations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = ["-", "--", "-.", ":"]
    for i, name in enumerate(names):
        curves = [dict(r["held_out_nll_curve_128"]) for r in rows if r["lever"] == name]
        if not curves:
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        ys = [statistics.mean(c[s] - c[0] for c in curves) for s in steps]
        ax.plot(steps, ys, styles[i % len(styles)], marker="o", ms=3, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("LoRA step (History-FT on turns 1-3)")
    ax.set_ylabel("held-out NLL - base (turns 4-5, first 128 answer tokens)")
    n = len({r["conversation"] for r in rows})
    ax.set_title(
        f"SmolLM2-135M, ShareGPT dev, mean over {n} conversations\n"
        f"(sequences cut to their last {LEVER_SEQ_LEN} tokens, as in training)",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def part_levers(
    rt: SurrogateRuntime,
    encoder: Encoder,
    n_conv: int,
    steps: int,
    budget_s: float | None = None,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Item 3 of issue 19. For each conversation: LoRA (History-FT) on turns 1-3, the held-out
    turns 4 and 5 (never trained on) as the distiller's validation set, so its validation
    history is the held-out NLL curve (step 0 = the base), every 2 steps; then, for the adapter
    at the END of training, the held-out NLL on the full context and the MiniLM cosine of its
    greedy answers to the recorded ones, against the base. Negative delta NLL / positive delta
    cosine: the adapter transfers. Levers run in ``LEVERS`` order, lever by lever over all
    conversations; with ``budget_s`` a lever whose estimated cost would overrun is skipped."""
    from soma_engine.adapters import AdapterStore
    from soma_engine.config import LoraConfig
    from soma_engine.datasets.sharegpt import load_conversations

    started = time.perf_counter()
    load_start = _load()
    convs = load_conversations("dev", min_turns=5, limit=n_conv)
    rt.adapters = AdapterStore(Path(tempfile.mkdtemp(prefix="soma-levers-")))

    def example(turns: Any, t: int) -> Example:
        msgs = [Message(r, c) for q, a in turns[:t] for r, c in (("user", q), ("assistant", a))]
        return Example([*msgs, Message("user", turns[t][0])], turns[t][1])

    bases: dict[str, dict[str, Any]] = {}
    for conv in convs:
        held = [example(conv.turns, t) for t in (3, 4)]
        rows128 = [tokenize_example(rt, e, LEVER_SEQ_LEN, LEVER_ANSWER) for e in held]
        cos, gens = _cosines(rt, encoder, held, None)
        bases[conv.id] = {
            "train": [example(conv.turns, t) for t in range(3)],
            "held": held,
            "rows128": rows128,
            "nll128": _held_nll(rt, rows128, None),
            "nll_full": answer_nll(rt, held, None, max_answer=LEVER_ANSWER),
            "cos": cos,
            "sample_base": [g[:100] for g in gens],
        }
    base_s = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    per_step: list[float] = []  # seconds per (lever, conversation) run and planned step
    for name, over in LEVERS.items():
        cfg = LoraConfig(**{"steps": steps, "eval_every": 2, **over})
        cfg = cfg.model_copy(update={"early_stop_patience": cfg.steps})  # whole curves: never stop early
        if budget_s is not None and per_step:
            estimate = statistics.mean(per_step) * cfg.steps * len(convs)
            if time.perf_counter() - started + estimate > budget_s:
                skipped.append(name)
                print(f"skipping lever {name!r}: ~{estimate:.0f} s would overrun the budget", flush=True)
                continue
        for conv in convs:
            row = _lever_run(rt, encoder, conv, bases[conv.id], name, cfg, f"lever{len(rows)}")
            per_step.append(row["seconds"] / cfg.steps)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "sample_adapted"}), flush=True)
    ran = [n for n in LEVERS if n not in skipped]
    summary = {}
    for name in ran:
        rs = [r for r in rows if r["lever"] == name]
        d_final = [r["delta_nll_final"] for r in rs]
        d_best = [r["delta_nll_best"] for r in rs]
        d_cos = [r["delta_cosine"] for r in rs]
        summary[name] = {
            "mean_delta_nll_final": statistics.mean(d_final),
            "mean_delta_nll_best": statistics.mean(d_best),
            "best_steps": [r["best_step_on_curve"] for r in rs],
            "mean_delta_nll_full_context": statistics.mean(r["delta_mean"] for r in rs),
            "mean_delta_cosine": statistics.mean(d_cos),
            "reading": _lever_reading(d_final, d_best, d_cos),
        }
    if plot is not None and rows:
        _levers_plot(rows, ran, plot)
    _print_table(
        "Levers: held-out turns 4-5 after History-FT on turns 1-3 (deltas vs the base)",
        ["conversation", "lever", "dNLL final", "dNLL best", "@step", "cos base", "cos adapted", "d cos", "s"],
        [
            [
                r["conversation"],
                r["lever"],
                r["delta_nll_final"],
                r["delta_nll_best"],
                r["best_step_on_curve"],
                r["held_out_cosine_base"],
                r["held_out_cosine_adapted"],
                r["delta_cosine"],
                r["seconds"],
            ]
            for r in rows
        ],
    )
    return {
        "rows": rows,
        "summary": summary,
        "mean_delta_by_lever": {n: s["mean_delta_nll_full_context"] for n, s in summary.items()},
        "base": {
            cid: {k: b[k] for k in ("nll128", "nll_full", "cos", "sample_base")} | {"curve_step0": b["nll128"]}
            for cid, b in bases.items()
        },
        "skipped_levers": skipped,
        "plot": str(plot) if plot is not None else None,
        "run": {
            "conversations": [c.id for c in convs],
            "lever_steps": steps,
            "torch_threads": torch.get_num_threads(),
            "seconds": time.perf_counter() - started,
            "base_seconds": base_s,
            "load_avg_start": load_start,
            "load_avg_end": _load(),
            "budget_s": budget_s,
        },
        "note": "History-FT on turns 1-3 (all three trained on, batch of 3), max_seq_len 256 (the prompt loses its "
        "oldest tokens), no early stopping; held-out = turns 4-5, the distiller's validation set, every 2 steps: "
        "held_out_nll_curve is its val_nll history (first min(128, max_answer_tokens) answer tokens, so the prefix "
        "levers' own curve scores the prefix only); held_out_nll_curve_128 scores the first 128 answer tokens for "
        "every lever (the same as held_out_nll_curve where no prefix is cut) and gives delta_nll_final / _best "
        "(best = an oracle pick on the held-out turns). held_out_nll_base / _adapted: the END-of-training adapter "
        "on the FULL context, first 128 answer tokens (the earlier runs' figure; those kept the distiller's best "
        "on one training turn held out instead). Cosine: MiniLM (all-MiniLM-L6-v2) cosine of the greedy 64-token "
        "answer on the full context to the whole recorded answer, mean of turns 4-5, end-of-training adapter. "
        "returned_best_step: the step train_adapter returned (best on the held-out turns). alpha stays 16, so "
        "rank 4 scales the LoRA update by 4 and rank 16 by 1.",
    }


# ---------------------------------------------------------------------------------------------
# Part: vocabulary scaling of the mining step
# ---------------------------------------------------------------------------------------------


def _vocab_model(vocab: int) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, LlamaConfig

    tok = build_tokenizer()
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config), tok


def dense_reference_loss(logits: Any, teacher: Any, emb: Any, k: int, tau: float, lam: float) -> Any:
    """Eq. 2 computed densely, as the paper's reference code does: a |V|-wide cosine similarity
    per teacher token for N_k (R x |V| x d) and the full expectation E Pi (R x |V| x d)."""
    import torch.nn.functional as F

    unit = F.normalize(emb.float(), dim=-1)
    sims = unit[teacher] @ unit.T
    sims[torch.arange(len(teacher)), teacher] = -math.inf
    ids = torch.cat([teacher[:, None], sims.topk(k, dim=-1).indices], dim=1)
    s_tau = torch.softmax((unit[ids] * unit[teacher][:, None]).sum(-1) / tau, dim=-1)
    logp = torch.log_softmax(logits.float(), dim=-1)
    unl = (s_tau * -torch.log1p(-logp.gather(1, ids).exp().clamp(max=1 - 1e-6))).sum(-1)
    e_bar = logp.exp() @ emb.float()
    w = 1 + lam * F.cosine_similarity(e_bar, emb[teacher].float(), dim=-1).clamp(0, 1)
    return (w * unl).mean()


def _time_min(fn: Callable[[], Any], reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def _loss_fwd_bwd(logits0: Any, teacher: Any, emb: Any, cfg: Any, *, k: int, m: int, dense: bool) -> Callable[[], None]:
    """One fwd+bwd of the Eq. 2 loss on a copy of ``logits0``: ours (cached N_k, top-m) or dense."""
    nbrs = None if dense else NeighborIndex(emb, k).neighbors(teacher)

    def run() -> None:
        x = logits0.clone().requires_grad_(True)
        if dense:
            loss = dense_reference_loss(x, teacher, emb, k, cfg.tau, cfg.lambda_exp)
        else:
            loss = semantic_divergence_loss(
                x, teacher, emb, neighbors_k=k, tau=cfg.tau, lambda_exp=cfg.lambda_exp, top_m=m, neighbors=nbrs
            )
        loss.backward()

    return run


def _mining_breakdown(vocab: int, turns: list[Any], cfg: Any, reps: int) -> dict[str, Any]:
    """One vocabulary size: per-step mining time split by the functions score_prompts calls."""
    model, tok = _vocab_model(vocab)
    clock = {"row_hidden": 0.0, "semantic_terms": 0.0, "entropy": 0.0}
    real = {name: getattr(prompt_scoring, name) for name in clock}

    def timed(name: str) -> Callable[..., Any]:
        fn = real[name]

        def inner(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock[name] += time.perf_counter() - t0

        return inner

    miner_mod.mine(model, tok, turns, cfg.model_copy(update={"steps": 1}))  # builds the cached neighbour index
    for name in clock:
        setattr(prompt_scoring, name, timed(name))
    try:
        res = miner_mod.mine(model, tok, turns, cfg)
    finally:
        for name, fn in real.items():
            setattr(prompt_scoring, name, fn)
    calls = cfg.steps + 1  # the optimisation steps + the final scoring pass
    batch = prompt_scoring.encode_turns(tok, turns)
    positions = int(batch.row_target.numel()) * cfg.candidates
    per_step = res.timings["optimization"] / cfg.steps
    emb = model.get_input_embeddings().weight.detach()
    logits0 = torch.randn(positions, vocab, generator=torch.Generator().manual_seed(0))
    teacher = batch.row_target.repeat(cfg.candidates)
    k, m = cfg.neighbors_k, cfg.top_m
    fwd = sum(clock.values()) / calls
    # At a realistic width (SmolLM2's d = 576) the dense reference's R x |V| x d work shows.
    emb_wide = torch.randn(vocab, 576, generator=torch.Generator().manual_seed(2))
    return {
        "vocab": vocab,
        "positions": positions,
        "step_s": per_step,
        "decoder_fwd_s": clock["row_hidden"] / calls,
        "loss_terms_fwd_s": (clock["semantic_terms"] + clock["entropy"]) / calls,
        "rest_s (backward, optimizer)": per_step - fwd,
        "loss_fwd_bwd_ours_s": _time_min(_loss_fwd_bwd(logits0, teacher, emb, cfg, k=k, m=m, dense=False), reps),
        "loss_fwd_bwd_dense_s": _time_min(_loss_fwd_bwd(logits0, teacher, emb, cfg, k=k, m=m, dense=True), reps),
        "scan_fwd_bwd_s": _time_min(_scans(logits0, m), reps),
        "nll_fwd_bwd_s": _time_min(_nll_fwd_bwd(logits0, teacher), reps),
        "loss_fwd_bwd_ours_d576_s": _time_min(
            _loss_fwd_bwd(logits0, teacher, emb_wide, cfg, k=k, m=m, dense=False), reps
        ),
        "loss_fwd_bwd_dense_d576_s": _time_min(
            _loss_fwd_bwd(logits0, teacher, emb_wide, cfg, k=k, m=m, dense=True), reps
        ),
    }


def _nll_fwd_bwd(logits0: Any, teacher: Any) -> Callable[[], None]:
    """The baseline every distillation step pays on the same logits: the teacher tokens' NLL
    (softmax normaliser over |V| + a gather), fwd+bwd."""

    def run() -> None:
        x = logits0.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(x, teacher).backward()

    return run


def _scans(logits0: Any, m: int) -> Callable[[], None]:
    """The |V|-wide part any exact Eq. 2 with a top-m truncation needs: the softmax normaliser
    and the top-m selection, fwd+bwd."""

    def run() -> None:
        x = logits0.clone().requires_grad_(True)
        (torch.logsumexp(x, dim=-1).sum() + x.topk(m, dim=-1).values.sum()).backward()

    return run


def part_vocab(vocabs: list[int], steps: int, reps: int) -> dict[str, Any]:
    persona, warm, _ = SESSIONS[0]
    records, _ = session_records(persona, warm[:4])
    turns = [(r.messages, r.answer) for r in records]
    cfg = SomaConfig().mining.model_copy(update={"steps": steps, "candidates": 3})
    rows_out = [_mining_breakdown(v, turns, cfg, reps) for v in vocabs]
    # k + m at fixed |V| and positions: the loss part, ours.
    vocab = vocabs[len(vocabs) // 2]
    model, _ = _vocab_model(vocab)
    emb = model.get_input_embeddings().weight.detach()
    positions = rows_out[0]["positions"]
    g = torch.Generator().manual_seed(1)
    logits0 = torch.randn(positions, vocab, generator=g)
    teacher = torch.randint(0, 400, (positions,), generator=g)
    km_rows = [
        {
            "k": k,
            "m": m,
            "k+m": k + m,
            "loss_fwd_bwd_s": _time_min(_loss_fwd_bwd(logits0, teacher, emb, cfg, k=k, m=m, dense=False), reps),
            "scan_fwd_bwd_s": _time_min(_scans(logits0, m), reps),
            "nll_fwd_bwd_s": _time_min(_nll_fwd_bwd(logits0, teacher), reps),
        }
        for k, m in ((20, 50), (50, 100), (100, 200), (200, 400), (400, 800))
    ]
    return {
        "config": {"M": cfg.candidates, "k": cfg.neighbors_k, "m": cfg.top_m, "hidden": 64, "steps": steps},
        "by_vocab": rows_out,
        "by_k_plus_m": {"vocab": vocab, "positions": positions, "rows": km_rows},
    }


# ---------------------------------------------------------------------------------------------
# Part: ablation of the training-set strategies
# ---------------------------------------------------------------------------------------------


def part_ablation(label: str, rt: SurrogateRuntime, encoder: Encoder, cfg: SomaConfig) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="soma-ablation-"))
    engine = make_engine(rt, encoder, cfg, tmp)
    per: dict[str, list[dict[str, Any]]] = {s: [] for s in ("unadapted", "soma", "history-ft", "random-ft")}
    for si, (persona, warm, held_qs) in enumerate(SESSIONS):
        _, style = PERSONAS[persona]
        records, history = session_records(persona, warm)
        held = [
            Example(engine.compressed([*map(Message.from_dict, history), Message("user", q)]), style(q))
            for q in held_qs
        ]
        targets = [e.answer for e in held]
        for strategy in per:
            t0 = time.perf_counter()
            ref = None
            if strategy != "unadapted":
                engine.config.strategy = strategy
                plan = jobs.plan_training(engine.services, records, None)
                res = train_adapter(rt, plan.train, [], engine.config.lora, name=f"abl{si}{strategy.replace('-', '')}")
                ref = engine.adapters.save(res.tensors, res.lora_config, namespace="bench", session=f"s{si}{strategy}")
            gens = [rt.generate(e.messages, ref, max_new_tokens=cfg.max_new_tokens).text for e in held]
            emb = encoder.encode(gens + targets)
            fid = [float(emb[i] @ emb[len(gens) + i]) for i in range(len(gens))]
            nll = answer_nll(rt, held, ref)
            per[strategy].append(
                {
                    "session": persona,
                    "fidelity": float(np.mean(fid)),
                    "nll": float(np.mean(nll)),
                    "seconds": time.perf_counter() - t0,
                    "sample": gens[0][:80],
                }
            )
    close_engine(engine)
    table = {
        s: {
            "fidelity_mean": float(np.mean([r["fidelity"] for r in rows])),
            "fidelity_sd": float(np.std([r["fidelity"] for r in rows])),
            "nll_mean": float(np.mean([r["nll"] for r in rows])),
            "seconds_mean": float(np.mean([r["seconds"] for r in rows])),
        }
        for s, rows in per.items()
    }
    return {"model": label, "sessions": len(SESSIONS), "held_out_per_session": 3, "table": table, "per_session": per}


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------


def _print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    def fmt(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.4g}" if abs(x) < 1000 else f"{x:.0f}"
        return str(x)

    cells = [[fmt(x) for x in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def report(results: dict[str, Any]) -> None:
    for s in results.get("step", []):
        _print_table(
            f"LoRA step, {s['model']} (batch {s['batch']} tokens, {s['answer_tokens']} answer tokens, "
            f"|V| {s['vocab']})",
            ["variant", "min s", "median s", "peak RSS MiB"],
            [
                [k, s[k]["min"], s[k]["median"], s[k]["peak_rss_mb"]]
                for k in ("step_full_logits", "step_answer_only", "val_full_logits", "val_answer_only")
            ],
        )
    sess = results.get("session", [])
    if sess:
        _print_table(
            "W = 4 session, strategy soma (seconds; memory: peak above start, MiB)",
            [
                "model",
                "dev",
                "M/mine/lora",
                "mining",
                "/step",
                "lora",
                "/step",
                "gate",
                "total",
                "paper-def.",
                "mem mine/lora/gate",
            ],
            [
                [
                    r["model"],
                    r["device"],
                    f"{r['config']['M']}/{r['config']['mining_steps']}/{r['config']['lora_steps']}",
                    r["mining_s"],
                    r["mining_per_step_s"],
                    r["lora_s"],
                    r["lora_per_step_s"],
                    r["gate_s"],
                    r["adaptation_s"],
                    r["extrapolated_paper_defaults_s"],
                    f"{r['plan_peak_mb']:.0f}/{r['lora_peak_mb']:.0f}/{(r['gate_peak_mb'] or 0):.0f}",
                ]
                for r in sess
            ],
        )
    for note in results.get("notes", []):
        print(f"note: {note}")
    v = results.get("vocab")
    if v:
        _print_table(
            f"Mining step vs |V| at fixed positions (tiny Llama, d = 64, M = {v['config']['M']}, "
            f"k = {v['config']['k']}, m = {v['config']['m']}); seconds",
            [
                "|V|",
                "positions",
                "step",
                "decoder+head fwd",
                "loss terms fwd",
                "backward+opt",
                "loss f+b ours",
                "NLL f+b",
                "ours - NLL",
                "(|V| scans)",
                "loss f+b dense",
                "ours d=576",
                "dense d=576",
            ],
            [
                [
                    r["vocab"],
                    r["positions"],
                    r["step_s"],
                    r["decoder_head_fwd_s"],
                    r["loss_terms_fwd_s"],
                    r["rest_s (backward, optimizer)"],
                    r["loss_fwd_bwd_ours_s"],
                    r["nll_fwd_bwd_s"],
                    r["loss_fwd_bwd_ours_s"] - r["nll_fwd_bwd_s"],
                    r["scan_fwd_bwd_s"],
                    r["loss_fwd_bwd_dense_s"],
                    r["loss_fwd_bwd_ours_d576_s"],
                    r["loss_fwd_bwd_dense_d576_s"],
                ]
                for r in v["by_vocab"]
            ],
        )
        km = v["by_k_plus_m"]
        _print_table(
            f"Loss part vs k + m (|V| {km['vocab']}, {km['positions']} positions); seconds",
            ["k", "m", "k+m", "loss f+b", "NLL f+b", "loss - NLL", "|V| scans", "loss - scans"],
            [
                [
                    r["k"],
                    r["m"],
                    r["k+m"],
                    r["loss_fwd_bwd_s"],
                    r["nll_fwd_bwd_s"],
                    r["loss_fwd_bwd_s"] - r["nll_fwd_bwd_s"],
                    r["scan_fwd_bwd_s"],
                    r["loss_fwd_bwd_s"] - r["scan_fwd_bwd_s"],
                ]
                for r in km["rows"]
            ],
        )
    for a in results.get("ablation", []):
        _print_table(
            f"Ablation, {a['model']}: held-out fidelity (MiniLM cosine to the teacher) and answer NLL, "
            f"{a['sessions']} sessions x {a['held_out_per_session']} held-out turns",
            ["strategy", "fidelity", "sd", "NLL", "s/session"],
            [
                [s, r["fidelity_mean"], r["fidelity_sd"], r["nll_mean"], r["seconds_mean"]]
                for s, r in a["table"].items()
            ],
        )


# ---------------------------------------------------------------------------------------------


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures ``soma bench`` shows."""
    out: dict[str, Any] = {}
    for sess in results.get("session", []):
        name = sess["model"].split(" ")[0]
        out[f"adaptation_s[{name}]"] = round(sess["adaptation_s"], 2)
        out[f"mining_s[{name}]"] = round(sess["mining_s"], 2)
        out[f"lora_s[{name}]"] = round(sess["lora_s"], 2)
    v = results.get("vocab")
    if v:
        rows = v["by_vocab"]
        lo, hi = rows[0], rows[-1]
        out["vocab_growth"] = f"{lo['vocab']} -> {hi['vocab']} ({hi['vocab'] / lo['vocab']:.0f}x)"
        out["mining_over_nll_s"] = [round(r["loss_fwd_bwd_ours_s"] - r["nll_fwd_bwd_s"], 4) for r in rows]
        out["nll_s"] = [round(r["nll_fwd_bwd_s"], 4) for r in rows]
        out["dense_over_ours"] = round(hi["loss_fwd_bwd_dense_d576_s"] / hi["loss_fwd_bwd_ours_d576_s"], 2)
    d = results.get("default")
    if d:
        out["default_soma_adaptation_s_max[SmolLM2]"] = round(d["max_adaptation_s"], 1)
        out["default_process_peak_rss_mb"] = round(d["process_peak_rss_mb"])
    for a in results.get("ablation", []):
        out[f"fidelity[{a['model']}]"] = {k: round(t["fidelity_mean"], 3) for k, t in a["table"].items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer SmolLM2 steps and repetitions")
    ap.add_argument("--full", action="store_true", help="SmolLM2 at paper defaults, SmolLM2 ablation")
    ap.add_argument("--parts", default="step,session,vocab,ablation")
    ap.add_argument("--sessions", type=int, default=3, help="conversations of the 'default' part")
    ap.add_argument("--budget", type=float, default=None, help="adaptation_budget_s of the 'default' part")
    ap.add_argument("--lever-steps", type=int, default=10, help="LoRA steps per run of the 'levers' part")
    ap.add_argument(
        "--lever-budget",
        type=float,
        default=None,
        help="seconds for the 'levers' part: levers that would overrun are skipped",
    )
    ap.add_argument(
        "--levers-plot", type=Path, default=Path("benchmarks/results/levers.png"), help="the 'levers' part's plot"
    )
    ap.add_argument("--threads", type=int, default=int(os.environ.get("SOMA_BENCH_THREADS", "0")) or None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/adaptation.json"))
    ap.add_argument("--memprobe", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memprobe:
        if args.threads:
            torch.set_num_threads(args.threads)
        _memprobe(*args.memprobe)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    cuda = torch.cuda.is_available()
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "cuda": torch.cuda.get_device_name(0) if cuda else None,
            "load_avg_start": _load(),
        },
        "mode": "full" if args.full else ("quick" if args.quick else "default"),
        "notes": [],
    }
    started = time.perf_counter()
    encoder = bundled_encoder() if parts & {"session", "ablation", "default", "levers"} else None
    smol = None

    def get_smol() -> SurrogateRuntime:
        nonlocal smol
        if smol is None:
            smol = smollm2_runtime()
        return smol

    if "default" in parts:
        results["default"] = part_default(get_smol(), encoder, args.sessions, args.budget)
        print("default done", flush=True)
    if "levers" in parts:
        results["levers"] = part_levers(
            get_smol(), encoder, args.sessions, args.lever_steps, args.lever_budget, args.levers_plot
        )
        print("levers done", flush=True)
    if "session" in parts:
        results["session"] = [part_session("tiny-llama", tiny_runtime(), encoder, session_config(30, 60), cuda=False)]
        print("session tiny done", flush=True)
        smol_steps = (4, 6) if args.quick else (30, 60) if args.full else (10, 20)
        cfg = session_config(*smol_steps, lora={"eval_every": max(2, smol_steps[1] // 3)})
        results["session"].append(part_session("SmolLM2-135M", get_smol(), encoder, cfg, cuda=False))
        print("session SmolLM2 done", flush=True)
        if cuda:
            rt = qwen3_shape_runtime()
            rt.run(lambda r: r.model)
            # One warm-up session (CUDA context, kernels), then the measured one.
            part_session("Qwen3-0.6B-shape (warm-up)", rt, encoder, session_config(2, 2), cuda=True)
            results["session"].append(part_session("Qwen3-0.6B-shape", rt, encoder, session_config(30, 60), cuda=True))
            rt.close()
        else:
            results["notes"].append(
                "no CUDA device here: the Qwen3-0.6B-shaped GPU session (paper defaults, target <= 10 s) "
                "was not measured"
            )
    if "step" in parts:
        results["step"] = [part_step(tiny_runtime(), "tiny-llama", reps=10)]
        print(json.dumps(results["step"][-1]["speedup_step_min"]), "x (tiny)", flush=True)
        results["step"].append(part_step(get_smol(), "SmolLM2-135M", reps=2 if args.quick else 5))
        print(json.dumps(results["step"][-1]["speedup_step_min"]), "x (SmolLM2)", flush=True)
    if "vocab" in parts:
        vocabs = [512, 4096, 32768, 131072]
        results["vocab"] = part_vocab(vocabs, steps=3 if args.quick else 5, reps=3 if args.quick else 5)
        print("vocab done", flush=True)
    if "ablation" in parts:
        cfg = session_config(10, 30, lora={"lr": 5e-3}, max_new_tokens=20)
        results["ablation"] = [part_ablation("tiny-llama", tiny_runtime(), encoder, cfg)]
        if args.full:
            # Fewer steps than the paper's defaults: 12 adaptations on 2 CPU cores.
            cfg = session_config(10, 30, lora={"lr": 1e-3}, max_new_tokens=32)
            results["ablation"].append(part_ablation("SmolLM2-135M", get_smol(), encoder, cfg))
        print("ablation done", flush=True)
    results["machine"]["load_avg_end"] = _load()
    results["seconds"] = time.perf_counter() - started
    if args.out.exists() and not parts >= {"step", "session", "vocab", "ablation", "default", "levers"}:
        # A partial run updates its parts and keeps the others' last figures.
        kept = json.loads(args.out.read_text())
        kept.update({k: v for k, v in results.items() if k in parts})
        kept.setdefault("runs", {}).update({p: {"machine": results["machine"], "mode": results["mode"]} for p in parts})
        results = kept
    results["summary"] = summarise(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    report(results)
    print(f"\nwrote {args.out} in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
