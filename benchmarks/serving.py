"""Batched multi-adapter serving: aggregate generated tokens/s for 1, 4 and 16 concurrent
sessions, each with its own LoRA adapter, batched (one forward pass, per-row adapters) against
serial serving (the same runtime with ``max_batch=1``) and against the base model without
adapters (batched, and serial for reference).

Each session is a thread that sends ``--turns`` greedy turns one after another, so the worker
sees the realistic arrival pattern (continuous batching at call granularity, no waiting for a
batch to fill). All modes run the same requests side by side in one process; greedy rows are
deterministic, so every mode generates the same tokens (checked: ``rows_equal_serial``).
Adapters are random rank-8 LoRA on the model's projections (their content does not change
the cost of a forward pass). Writes JSON.

    SOMA_HOME=/tmp/somahome python benchmarks/serving.py --threads 1 --out benchmarks/results/serving.json

On a CPU shared with other jobs, use ``--threads 1``: with more intra-op threads than free
cores, torch's thread pool stalls (measured on 2 busy cores: 16 tokens took 69 s with 2
threads, 2.6 s with 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from soma_engine.adaptation.lora_targets import lora_config_dict
from soma_engine.adapters import AdapterRef, AdapterStore
from soma_engine.config import LoraConfig
from soma_engine.runtime.surrogate import Generation, SurrogateRuntime
from soma_engine.types import Message

TOPICS = ["bikes", "tea", "chess", "rain", "trains", "bread", "maps", "owls", "jazz", "clay", "kites", "moss"]


def random_adapter(rt: SurrogateRuntime, store: AdapterStore, seed: int, rank: int) -> AdapterRef:
    import torch
    from peft import get_peft_model_state_dict

    def make(r: SurrogateRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg = lora_config_dict(LoraConfig(rank=rank), r.base_model)
        r.install_adapter("scratch", cfg, None)
        state = get_peft_model_state_dict(r.model, adapter_name="scratch")
        r.remove_adapter("scratch")
        gen = torch.Generator().manual_seed(seed)
        return {k: torch.randn(v.shape, generator=gen) * 0.02 for k, v in state.items()}, cfg

    tensors, cfg = rt.run(make)
    return store.save(tensors, cfg, namespace="bench", session=f"s{seed}")


def prompt(session: int, turn: int) -> list[Message]:
    topic = TOPICS[(session + turn) % len(TOPICS)]
    return [
        Message("system", "You are a concise assistant."),
        Message("user", f"Session {session}, question {turn}: give me one tip about {topic}."),
    ]


def serve(
    rt: SurrogateRuntime, refs: list[AdapterRef | None], turns: int, new_tokens: int
) -> tuple[float, dict[tuple[int, int], Generation], Counter[int]]:
    """Every session sends its turns one after another, all sessions at once; wall seconds."""
    out: dict[tuple[int, int], Generation] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(refs) + 1)

    def session(i: int) -> None:
        start.wait()
        try:
            for t in range(turns):
                out[(i, t)] = rt.generate(prompt(i, t), refs[i], max_new_tokens=new_tokens)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(refs))]
    for th in threads:
        th.start()
    before = rt.worker.batch_sizes.copy()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall, out, rt.worker.batch_sizes - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", default="smollm2", help="'smollm2' (bundled), 'tiny' (random, not meaningful), or a path"
    )
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--turns", type=int, default=2, help="turns per session")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: torch's default); 1 on a contended CPU"
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/serving.json"))
    ap.add_argument("--quick", action="store_true", help="1 and 4 sessions, 1 turn, 16 new tokens")
    args = ap.parse_args()
    if args.quick:
        args.sessions, args.turns, args.new_tokens = [s for s in args.sessions if s <= 4] or [1, 4], 1, 16

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    store = AdapterStore(tempfile.mkdtemp(prefix="soma-serving-"))
    n_max = max(args.sessions)
    common: dict[str, Any] = {"adapters": store, "device": args.device, "max_adapters": n_max, "max_batch": 1}
    if args.model == "tiny":
        from soma_engine.testing import build_tiny_model

        model, tok = build_tiny_model(seed=0)
        rt = SurrogateRuntime(None, model=model, tokenizer=tok, **common)
    else:
        from soma_engine.runtime.models import resolve_surrogate

        rt = SurrogateRuntime(resolve_surrogate(None if args.model == "smollm2" else args.model), **common)
    refs = [random_adapter(rt, store, seed, args.rank) for seed in range(n_max)]
    for ref in [*refs, None]:  # load every adapter (and warm up) outside the timed runs
        rt.generate(prompt(0, 0), ref, max_new_tokens=2)

    runs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for n in args.sessions:
        adapters, base = refs[:n], [None] * n
        figures: dict[str, Any] = {}
        reference: dict[tuple[int, int], Generation] = {}
        for mode, rows, max_batch in [
            ("serial", adapters, 1),
            ("batched", adapters, args.max_batch),
            ("base_serial", base, 1),
            ("base_batched", base, args.max_batch),
        ]:
            rt.max_batch = max_batch
            wall, out, sizes = serve(rt, rows, args.turns, args.new_tokens)
            tokens = sum(g.output_tokens for g in out.values())
            if mode == "serial":
                reference = out
            figures[mode] = {
                "wall_s": round(wall, 3),
                "generated_tokens": tokens,
                "tokens_per_s": round(tokens / wall, 2),
                "batch_sizes": dict(sorted(sizes.items())),
            }
            if mode == "batched":
                same = sum(out[k].token_ids == reference[k].token_ids for k in out)
                figures[mode]["rows_equal_serial"] = f"{same}/{len(out)}"
        speedup = figures["batched"]["tokens_per_s"] / figures["serial"]["tokens_per_s"]
        vs_base = figures["batched"]["tokens_per_s"] / figures["base_batched"]["tokens_per_s"]
        runs.append(
            {"sessions": n, **figures, "batched_over_serial": round(speedup, 3), "batched_over_base": round(vs_base, 3)}
        )
        summary[f"{n} sessions: batched tok/s"] = figures["batched"]["tokens_per_s"]
        summary[f"{n} sessions: serial tok/s"] = figures["serial"]["tokens_per_s"]
        summary[f"{n} sessions: base batched tok/s"] = figures["base_batched"]["tokens_per_s"]
        summary[f"{n} sessions: batched / serial"] = round(speedup, 3)
        summary[f"{n} sessions: batched adapters / batched base"] = round(vs_base, 3)
        print(json.dumps(runs[-1]), flush=True)
    rt.close()

    result = {
        "benchmark": "batched_multi_adapter_serving",
        "model": args.model,
        "device": rt.device,
        "turns_per_session": args.turns,
        "new_tokens": args.new_tokens,
        "max_batch": args.max_batch,
        "lora_rank": args.rank,
        "torch_threads": torch.get_num_threads(),
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "note": "all modes measured side by side in one process; compare ratios, not absolute figures",
        },
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
