"""Localized LoRA fine-tuning, Eq. 4.

    L_FT(Θ_LoRA) = 1/|H| Σ_{(S_t, a_t^F) ∈ H} ω_t · NLL(a_t^F | G(S_t; Θ_LoRA)),   ω_t ∝ r_t

Base weights stay frozen; LoRA sits on the attention and MLP projections (detected per
architecture, or ``lora.target_modules``). The loss covers the teacher-answer tokens only
(the prompt is the model's chat template of S_t). Weights ω are normalised to mean 1, so
History-FT (uniform ω) is the special case ω_t = 1. Each optimizer step is one task on the
model worker, so live turns interleave with training. Early stopping watches the NLL of a
validation split; the best adapter state is kept. Seeded, hence reproducible on one device.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import LoraConfig
from .surrogate import SurrogateRuntime
from .types import Message

log = logging.getLogger("soma.distiller")

# Llama, Mistral, Qwen2/3, Gemma, Phi-3 style projections; GPT-2 (Conv1D); GPT-NeoX/Falcon.
_TARGET_SETS = (
    ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    ("c_attn", "c_proj", "c_fc"),
    ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
)


@dataclass
class Example:
    """One (S_t, a_t^F) pair with its weight ω_t."""

    messages: list[Message]
    answer: str
    weight: float = 1.0


@dataclass
class TrainResult:
    tensors: dict[str, Any]
    lora_config: dict[str, Any]
    steps: int
    best_val_nll: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def detect_target_modules(model: Any) -> list[str]:
    """Leaf names of the attention and MLP projections this architecture has."""
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for names in _TARGET_SETS:
        found = [n for n in names if n in leaves]
        if len(found) >= 2:
            return found
    raise ValueError(
        f"cannot detect LoRA target modules for {type(model).__name__}; set lora.target_modules in the config"
    )


def lora_config_dict(cfg: LoraConfig, model: Any) -> dict[str, Any]:
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": cfg.rank,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "target_modules": sorted(cfg.target_modules or detect_target_modules(model)),
        "bias": "none",
        "fan_in_fan_out": any(type(m).__name__ == "Conv1D" for m in model.modules()),
    }


def tokenize_example(rt: SurrogateRuntime, ex: Example, max_len: int) -> tuple[list[int], list[int]]:
    """Input ids and labels (-100 on the prompt) for one example, cut from the left."""
    prompt = rt.encode(rt.render(ex.messages))
    answer = rt.encode(ex.answer) + [rt.tokenizer.eos_token_id]
    answer = answer[: max_len // 2]
    prompt = prompt[-(max_len - len(answer)) :]
    return prompt + answer, [-100] * len(prompt) + answer


def _collate(rows: list[tuple[list[int], list[int]]], pad_id: int, device: str) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):  # right padding: positions stay 0..n-1
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def sequence_nll(logits: Any, labels: Any) -> Any:
    """Mean NLL of the labelled tokens of each sequence: [B] (Eq. 4's NLL(a_t^F | ...))."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    counts = (shift_labels != -100).sum(1).clamp(min=1)
    return tok.sum(1) / counts


def weighted_nll(seq_nll: Any, weights: Any) -> Any:
    """Eq. 4 over a batch: mean of ω_t · NLL_t."""
    return (seq_nll * weights).mean()


def train_adapter(
    rt: SurrogateRuntime,
    train: list[Example],
    val: list[Example],
    cfg: LoraConfig,
    *,
    name: str,
    init_tensors: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train a fresh (or ``init_tensors``-initialised) adapter ``name``; returns its weights."""
    import torch
    from peft import get_peft_model_state_dict

    if not train:
        raise ValueError("no training examples")
    started = time.perf_counter()
    mean_w = sum(e.weight for e in train) / len(train) or 1.0
    rows = [(tokenize_example(rt, e, cfg.max_seq_len), e.weight / mean_w) for e in train]
    val_rows = [tokenize_example(rt, e, cfg.max_seq_len) for e in (val or train)]
    lora_dict = lora_config_dict(cfg, rt.base_model)
    state: dict[str, Any] = {}

    def setup(r: SurrogateRuntime) -> None:
        torch.manual_seed(cfg.seed)
        r.install_adapter(name, lora_dict, init_tensors)
        r.model.set_adapter(name)
        params = [p for n, p in r.model.named_parameters() if f".{name}." in n]
        for p in params:
            p.requires_grad_(True)
        state["params"] = params
        state["opt"] = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        state["sched"] = torch.optim.lr_scheduler.CosineAnnealingLR(state["opt"], T_max=max(cfg.steps, 1))

    def step(r: SurrogateRuntime, batch: list[tuple[tuple[list[int], list[int]], float]]) -> float:
        model = r.model
        model.set_adapter(name)
        for p in state["params"]:
            p.requires_grad_(True)
        model.train()
        ids, mask, labels = _collate([b[0] for b in batch], r.tokenizer.pad_token_id, r.device)
        weights = torch.tensor([b[1] for b in batch], device=r.device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = weighted_nll(sequence_nll(logits, labels), weights)
        state["opt"].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(state["params"], 1.0)
        state["opt"].step()
        state["sched"].step()
        model.eval()
        return loss.item()

    def validate(r: SurrogateRuntime) -> float:
        model = r.model
        model.set_adapter(name)
        model.eval()
        with torch.no_grad():
            ids, mask, labels = _collate(val_rows, r.tokenizer.pad_token_id, r.device)
            return float(sequence_nll(model(input_ids=ids, attention_mask=mask).logits, labels).mean())

    def snapshot(r: SurrogateRuntime) -> dict[str, Any]:
        sd = get_peft_model_state_dict(r.model, adapter_name=name)
        return {k: v.detach().clone().cpu() for k, v in sd.items()}

    rt.run(setup)
    rng = random.Random(cfg.seed)
    best = rt.run(validate)
    best_tensors = rt.run(snapshot)
    history: list[dict[str, float]] = [{"step": 0, "val_nll": best}]
    bad, steps_done = 0, 0
    eval_every = max(1, min(10, cfg.steps // 6 or 1))
    try:
        for s in range(1, cfg.steps + 1):
            batch = [rows[rng.randrange(len(rows))] for _ in range(min(cfg.batch_size, len(rows)))]
            loss = rt.run(lambda r, b=batch: step(r, b))
            steps_done = s
            if progress:
                progress(s, cfg.steps)
            if s % eval_every and s != cfg.steps:
                continue
            val_nll = rt.run(validate)
            history.append({"step": s, "train_loss": loss, "val_nll": val_nll})
            if val_nll < best - 1e-4:
                best, bad = val_nll, 0
                best_tensors = rt.run(snapshot)
            else:
                bad += 1
                if bad >= cfg.early_stop_patience:
                    log.debug("early stop at step %d (val NLL %.4f)", s, best)
                    break
    finally:
        rt.run(lambda r: r.remove_adapter(name))
    return TrainResult(best_tensors, lora_dict, steps_done, best, history, time.perf_counter() - started)


def answer_nll(rt: SurrogateRuntime, examples: list[Example], adapter: Any = None) -> list[float]:
    """Per-example NLL of the teacher answers under the base model or an adapter (tests,
    benchmarks: "closer to the teacher" in likelihood)."""
    import torch

    rows = [tokenize_example(rt, e, 2048) for e in examples]

    def run(r: SurrogateRuntime) -> list[float]:
        model = r.model
        with torch.no_grad(), r.use(adapter):
            model.eval()
            ids, mask, labels = _collate(rows, r.tokenizer.pad_token_id, r.device)
            return sequence_nll(model(input_ids=ids, attention_mask=mask).logits, labels).tolist()

    return rt.run(run)
