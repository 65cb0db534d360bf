"""GPU check (issue 19, item 8), run by ``benchmarks/gpu.sh`` on a lent accelerator.

A Qwen3-0.6B-shaped model (28 layers, d = 1024, |V| = 151936) with random weights in bf16,
built from its config (no hub on the device machine); the tiny BPE tokenizer of
soma_engine.testing feeds it ids. Measures, and writes as JSON:

- ``adaptation``: wall time of one W = 4 adaptation at the paper's defaults (strategy ``soma``,
  30 mining steps over M = 3 candidates, 60 LoRA steps; ``adaptation_budget_s`` is None, which
  on CUDA means no budget), split into mining, LoRA and gate; a warm-up adaptation first
  (CUDA context, kernels). Target: at most 10 s.
- ``serving``: batched multi-adapter greedy serving, aggregate generated tokens/s at 1, 16 and
  64 concurrent sessions, each with its own random rank-8 LoRA adapter, all in one batch.
- the gate's encoder is all-MiniLM-L6-v2-shaped with random weights (``build_encoder``), on the
  CPU as in the engine.
- ``plain_generate``: the same decoding by ``model.generate`` alone, no adapters, at the same
  batch sizes: what the platform costs per token, so ``serving`` reads as a ratio.
- ``peak_gpu_mb``: ``torch.cuda.max_memory_allocated`` over the whole run.

``--dry-run``: the same code on a tiny Qwen3 config on the CPU, float32, few steps and
sessions (checks the script here, where no GPU is lent).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import random_adapter  # noqa: E402

from soma_engine import SomaConfig, SomaEngine  # noqa: E402
from soma_engine.adapters import AdapterStore  # noqa: E402
from soma_engine.runtime.encoder import Encoder  # noqa: E402
from soma_engine.runtime.surrogate import SurrogateRuntime  # noqa: E402
from soma_engine.testing import build_tokenizer  # noqa: E402
from soma_engine.types import Message  # noqa: E402

QWEN3_06B = dict(
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    vocab_size=151936,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=4096,
)


def build_model(shape: dict[str, int], device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, Qwen3Config

    tok = build_tokenizer()
    config = Qwen3Config(
        **shape,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(device, dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def build_encoder(tmp: Path) -> Encoder:
    """An all-MiniLM-L6-v2-shaped encoder (6 layers, d = 384) with random weights: the bundled
    MiniLM does not fit the device's transfer limit, and with a random surrogate the gate's
    decisions mean nothing anyway; this keeps the gate's encoding cost."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    tok = build_tokenizer()
    torch.manual_seed(1)
    bert = BertModel(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=384,
            num_hidden_layers=6,
            num_attention_heads=12,
            intermediate_size=1536,
            max_position_embeddings=512,
        )
    )
    path = tmp / "encoder"
    bert.save_pretrained(path)
    tok.save_pretrained(path)
    modules = [models.Transformer(str(path), max_seq_length=256), models.Pooling(384, "mean"), models.Normalize()]
    return Encoder(model=SentenceTransformer(modules=modules, device="cpu"))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def adaptation(
    rt: SurrogateRuntime, encoder: Encoder, cfg: SomaConfig, tmp: Path, device: str, name: str
) -> dict[str, Any]:
    """One W = 4 session with long answers; the 4th teacher turn runs the adaptation inline."""
    from soma_engine.adaptation import jobs

    engine = SomaEngine(config=cfg, surrogate=rt, encoder=encoder, store=f"sqlite:///{tmp / f'{name}.db'}")
    rt.adapters = engine.adapters  # the runtime outlives engines: it loads from this one's store
    phases: dict[str, float] = {}
    results: dict[str, Any] = {}
    saved = {n: getattr(jobs, n) for n in ("plan_training", "train_adapter", "_gate")}

    def wrap(n: str, fn: Any) -> Any:
        def inner(*a: Any, **kw: Any) -> Any:
            _sync(device)
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            _sync(device)
            phases[n] = time.perf_counter() - t0
            results[n] = out
            return out

        return inner

    body = "Keep the receipts, service the chain, photograph the frame in daylight and state the size. " * 12

    def teacher(msgs: list[Message]) -> str:
        return f"Turn {sum(m.role == 'user' for m in msgs)}: {body}"

    for n, fn in saved.items():
        setattr(jobs, n, wrap(n, fn))
    history: list[dict[str, str]] = [{"role": "system", "content": "You coach people selling bicycles."}]
    try:
        for i in range(4):
            history.append({"role": "user", "content": f"Question {i}: how do I sell my road bike well?"})
            history.append({"role": "assistant", "content": engine.chat(name, history, teacher).text})
    finally:
        for n, fn in saved.items():
            setattr(jobs, n, fn)
    decision = engine.session(name).decisions[-1]
    engine.jobs.close()
    engine.store.close()
    plan, lora = results.get("plan_training"), results.get("train_adapter")
    return {
        "seconds": sum(phases.values()),
        "mining_s": phases.get("plan_training"),
        "lora_s": phases.get("train_adapter"),
        "gate_s": phases.get("_gate"),
        "mining_timings": getattr(plan, "timings", None),  # incl. mining_checkpointing (1: layers recomputed)
        "lora_timings": getattr(lora, "timings", None),  # setup / steps / validation seconds
        "lora_checkpointing": getattr(lora, "checkpointing", None),
        "activation_budget_mb": cfg.mining.activation_budget_mb,
        "budget": decision.get("budget"),
        "accepted": decision.get("accepted"),
        "reason": decision.get("reason"),
    }


def plain_generate(model: Any, sessions: list[int], new_tokens: int) -> dict[str, Any]:
    """The same greedy decoding with ``model.generate`` alone (no adapters, no SOMA), before the
    runtime wraps the model: the platform's own cost per token, measured beside ``serving``."""
    device = next(model.parameters()).device
    out: dict[str, Any] = {}
    for n in sessions:
        ids = torch.randint(5, 400, (n, 40), device=device)
        model.generate(ids[:1], max_new_tokens=4, min_new_tokens=4, do_sample=False)
        _sync(device.type)
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        _sync(device.type)
        dt = time.perf_counter() - t0
        out[str(n)] = {"seconds": dt, "tokens": n * new_tokens, "tokens_per_s": n * new_tokens / dt}
    return out


def serving(rt: SurrogateRuntime, store: AdapterStore, sessions: list[int], new_tokens: int) -> dict[str, Any]:
    """Aggregate greedy tokens/s with ``n`` sessions, each its own adapter, in one batch."""
    rt.adapters = store
    refs = [random_adapter(rt, store, seed, rank=8) for seed in range(max(sessions))]
    out: dict[str, Any] = {}
    for n in sessions:
        reqs = [([Message("user", f"Session {i}: tell me about topic {i}.")], refs[i]) for i in range(n)]
        rt.generate_many(reqs[:1], max_new_tokens=4)  # loads the adapters, warms the kernels
        _sync(rt.device)
        t0 = time.perf_counter()
        gens = rt.generate_many(reqs, max_new_tokens=new_tokens)
        _sync(rt.device)
        dt = time.perf_counter() - t0
        tokens = sum(g.output_tokens for g in gens)
        out[str(n)] = {"seconds": dt, "tokens": tokens, "tokens_per_s": tokens / dt}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny Qwen3 on the CPU: checks the script")
    ap.add_argument("--out", type=Path, default=Path("gpu.json"))
    ap.add_argument("--adaptation-only", action="store_true", help="skip plain generation and serving")
    ap.add_argument(
        "--compare-recompute",
        action="store_true",
        help="also one adaptation with mining.activation_budget_mb=512 (the CPU budget: layers recomputed)",
    )
    args = ap.parse_args()
    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    if not dry and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run to check the script on a CPU")
    started = time.perf_counter()
    model, tok = build_model(TINY if dry else QWEN3_06B, device, torch.float32 if dry else torch.bfloat16)
    tmp = Path(tempfile.mkdtemp(prefix="soma-gpu-"))
    sessions = [1, 4] if dry else [1, 16, 64]
    new_tokens = 8 if dry else 64
    plain = None if args.adaptation_only else plain_generate(model, sessions, new_tokens)
    store = AdapterStore(tmp / "adapters")
    rt = SurrogateRuntime(None, model=model, tokenizer=tok, device=device, max_adapters=max(sessions), max_batch=64)
    steps = {"mining": {"steps": 2, "candidates": 2}, "lora": {"steps": 3}} if dry else {}
    cfg = SomaConfig(warm_window=4, adaptation="inline", max_new_tokens=32, **steps)
    import peft
    import transformers

    result: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "model": "tiny Qwen3 (dry run, CPU)" if dry else "Qwen3-0.6B shape, random weights, bf16",
        "device": torch.cuda.get_device_name(0) if not dry else "cpu",
        "encoder": "all-MiniLM-L6-v2 shape, random weights, CPU",
        "config": {"W": 4, "M": cfg.mining.candidates, "mining_steps": cfg.mining.steps, "lora_steps": cfg.lora.steps},
    }
    if not dry:
        torch.cuda.reset_peak_memory_stats()
    encoder = build_encoder(tmp)
    warm = cfg.model_copy(update={"mining": cfg.mining.model_copy(update={"steps": 2})})
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part: a run cut by gpu.sh's time limit keeps what it measured
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20 if not dry else None
        result["seconds"] = time.perf_counter() - started
        args.out.write_text(json.dumps(result, indent=1, default=str))

    if plain is not None:
        result["plain_generate"] = plain
    adaptation(rt, encoder, warm, tmp, device, "warm")
    result["adaptation"] = adaptation(rt, encoder, cfg, tmp, device, "measured")
    result["adaptation_target_s"] = 10.0
    save()
    if not args.adaptation_only:
        result["serving"] = serving(rt, store, sessions, new_tokens)
        save()
    if args.compare_recompute:
        recompute = cfg.model_copy(update={"mining": cfg.mining.model_copy(update={"activation_budget_mb": 512})})
        result["adaptation_recompute_512mb"] = adaptation(rt, encoder, recompute, tmp, device, "recompute")
        save()
    rt.close()
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
