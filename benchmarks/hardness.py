"""What the hardness r_t selects (issue #19 item 3: "find out why … what the hardness r_t selects").

For the first three turns of ShareGPT ``dev`` conversations (the training turns of a W = 4
session; the 4th is the gate's), on the bundled SmolLM2-135M:

- mining (Eq. 1-3, ``miner.mine``) at the CPU budget's size (1 candidate, 2 steps) and at the
  reference implementation's small budgets (M = 2, 6 steps), sequences cut as under the CPU
  budget (256 tokens, answers to their first 128);
- r_t under both rules of ``mining.hardness`` from the same prompts: ``divergence`` (the
  default, max_P exp(-L_sem_exp)) and ``literal`` (max_P L_sem_exp, Sec. 3.3 as printed);
- the base model's mean NLL per answer token on the same cut sequences, and the answer length.

It reports how often H (the |H| = 2 highest-r_t turns of 3, the default ``train_fraction``)
is the two turns of highest base NLL, how often the rules' H differ, and Spearman correlations.

    python benchmarks/hardness.py --sessions 12
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from adaptation import smollm2_runtime  # this folder: the script's own, or pytest's pythonpath

from soma_engine.adaptation.miner import mine
from soma_engine.adaptation.mining_loss import hardness_from_unlikelihood
from soma_engine.config import MiningConfig
from soma_engine.datasets.sharegpt import load_conversations

SEQ_LEN, ANSWER_TOKENS, TRAIN_TURNS, H_SIZE = 256, 128, 3, 2
MINING = {"budget": {"candidates": 1, "steps": 2}, "reference": {"candidates": 2, "steps": 6}}


def spearman(x: list[float], y: list[float]) -> float:
    """Rank correlation (no ties expected in continuous scores)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def top(values: list[float], k: int = H_SIZE) -> set[int]:
    return set(sorted(range(len(values)), key=lambda i: -values[i])[:k])


def base_nll(model: Any, tok: Any, context: list[dict[str, str]], answer: str) -> float:
    """Mean NLL per answer token, the answer cut to its first tokens and the prompt from the left."""
    prompt = tok(tok.apply_chat_template(context, add_generation_prompt=True, tokenize=False), add_special_tokens=False)
    ans = tok(answer, add_special_tokens=False)["input_ids"][:ANSWER_TOKENS]
    ids = prompt["input_ids"][-(SEQ_LEN - len(ans)) :]
    with torch.no_grad():
        logits = model(torch.tensor([ids + ans])).logits[0, len(ids) - 1 : -1].float()
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor(ans)))


def conversation_row(model: Any, tok: Any, conv: Any) -> dict[str, Any]:
    turns: list[tuple[list[dict[str, str]], str]] = []
    history: list[dict[str, str]] = []
    for question, answer in conv.turns[:TRAIN_TURNS]:
        history = [*history, {"role": "user", "content": question}]
        turns.append((history, answer))
        history = [*history, {"role": "assistant", "content": answer}]
    row: dict[str, Any] = {
        "conversation": conv.id,
        "base_nll": [base_nll(model, tok, c, a) for c, a in turns],
        "answer_tokens": [len(tok(a, add_special_tokens=False)["input_ids"]) for _, a in turns],
    }
    for name, size in MINING.items():
        started = time.perf_counter()
        result = mine(
            model, tok, turns, MiningConfig(**size), seed=0, max_seq_len=SEQ_LEN, max_answer_tokens=ANSWER_TOKENS
        )
        row[name] = {
            "divergence": result.hardness,
            "literal": hardness_from_unlikelihood(result.unlikelihood, "literal")[0].tolist(),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return row


def summary(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    div = [r[name]["divergence"] for r in rows]
    lit = [r[name]["literal"] for r in rows]
    nll = [r["base_nll"] for r in rows]
    in_h = [0] * TRAIN_TURNS
    for d in div:
        for i in top(d):
            in_h[i] += 1
    return {
        "conversations": len(rows),
        "H_divergence_is_the_2_highest_base_nll": sum(top(d) == top(n) for d, n in zip(div, nll, strict=True)),
        "H_literal_is_the_2_lowest_base_nll": sum(
            top(rule) == top([-x for x in n]) for rule, n in zip(lit, nll, strict=True)
        ),
        "H_differs_between_rules": sum(top(d) != top(rule) for d, rule in zip(div, lit, strict=True)),
        "H_divergence_count_per_turn_position": in_h,
        "spearman_r_t_base_nll_pooled": spearman(sum(div, []), sum(nll, [])),
        "spearman_r_t_answer_tokens_pooled": spearman(sum(div, []), sum((r["answer_tokens"] for r in rows), [])),
        "mining_seconds_mean": statistics.mean(r[name]["seconds"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=12, help="ShareGPT dev conversations (5+ turns, first in order)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/hardness.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = list(os.getloadavg())
    rt = smollm2_runtime()
    convs = load_conversations("dev", min_turns=5, limit=400)[: args.sessions]
    rows = []
    for conv in convs:
        rows.append(conversation_row(rt.model, rt.tokenizer, conv))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "protocol": __doc__,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_before": load_before,
            "load_after": list(os.getloadavg()),
        },
        "summary": {name: summary(rows, name) for name in MINING},
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
