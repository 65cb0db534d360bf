"""The forward pass that soft-prompt mining (Eq. 1–3, Eq. 1-3) and LoRA distillation (Eq. 4)
share: the decoder's hidden states at the answer rows only, the LM head applied a chunk of rows
at a time, and the decoder layers recomputed in the backward when their activations would not
fit. The |V|-wide logits of prompt positions are never formed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "Frozen",
    "activation_bytes",
    "chunked_rows",
    "decoder_of",
    "finalize_logits",
    "layer_checkpointing",
    "row_hidden",
]


def decoder_of(model: Any) -> Any | None:
    """The decoder stack of a CausalLM (its hidden states feed the LM head), or None."""
    get = getattr(model, "get_decoder", None)
    if callable(get):
        try:
            dec = get()
        except (AttributeError, NotImplementedError):
            dec = None
        if dec is not None and dec is not model:
            return dec
    for name in ("model", "transformer"):
        dec = getattr(model, name, None)
        if isinstance(dec, torch.nn.Module):
            return dec
    return None


def finalize_logits(model: Any, logits: Tensor) -> Tensor:
    """Post-head transforms some CausalLM classes apply after ``lm_head`` (scale, soft-cap)."""
    cfg = getattr(model, "config", None)
    scale = getattr(cfg, "logit_scale", None)  # Cohere multiplies
    if isinstance(scale, (int, float)):
        logits = logits * scale
    scaling = getattr(cfg, "logits_scaling", None)  # Granite divides
    if isinstance(scaling, (int, float)) and scaling != 1:
        logits = logits / scaling
    cap = getattr(cfg, "final_logit_softcapping", None)  # Gemma 2/3
    if isinstance(cap, (int, float)) and cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def row_hidden(
    model: Any, inputs_embeds: Tensor, attention_mask: Tensor, b_idx: Tensor, p_idx: Tensor
) -> tuple[Tensor, Callable[[Tensor], Tensor] | None]:
    """The decoder's hidden states at positions ``(b_idx, p_idx)`` and the function that maps
    them to logits (LM head + post-head transforms), so a caller can form the |V|-wide logits
    a chunk of rows at a time. Unusual wrappers without a separable head give their full logits
    gathered at those rows, and ``None`` for the function (correct, not economical)."""
    decoder = decoder_of(model)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if decoder is not None and head is not None:
        out = decoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
        hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
        return hidden[b_idx, p_idx], lambda h: finalize_logits(model, head(h))
    out = model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
    return out.logits[b_idx, p_idx], None


def chunked_rows(fn: Callable[[Tensor, slice], tuple[Tensor, ...]], rows: Tensor, chunk: int) -> tuple[Tensor, ...]:
    """``fn(rows[sl], sl)`` over consecutive chunks of ``chunk`` rows, outputs concatenated.

    Under autograd each chunk is checkpointed: its forward keeps only the input rows, and the
    backward recomputes the chunk's |V|-wide logits, so at most ``chunk × |V|`` of them exist at
    once instead of M × rows × |V| (0.6 GB per tensor on SmolLM2 with long answers)."""
    from torch.utils.checkpoint import checkpoint

    parts: list[tuple[Tensor, ...]] = []
    grad = torch.is_grad_enabled() and rows.requires_grad
    for start in range(0, rows.shape[0], chunk):
        sl = slice(start, start + chunk)
        if grad:
            parts.append(checkpoint(fn, rows[sl], sl, use_reentrant=False))
        else:
            parts.append(fn(rows[sl], sl))
    if not parts:
        return tuple(rows.new_zeros(0) for _ in fn(rows[:0], slice(0, 0)))
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def activation_bytes(model: Any, tokens: int) -> int:
    """Rough size of the decoder activations autograd keeps for one backward over ``tokens``
    positions: per layer and token about 8 hidden-wide and 4 MLP-wide tensors (norms,
    projections, residuals, the gated MLP), in the parameters' dtype."""
    cfg = getattr(model, "config", None)
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    inter = int(getattr(cfg, "intermediate_size", 0) or 4 * hidden)
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    size = next(model.parameters()).element_size()
    return tokens * layers * (8 * hidden + 4 * inter) * size


CPU_ACTIVATION_MB = 512  # a CPU process keeps its whole adaptation under ~3 GB RSS with SmolLM2


def activation_budget(configured_mb: int | None, model: Any) -> int:
    """Bytes of decoder activations a backward may keep before its layers are recomputed:
    ``mining.activation_budget_mb`` when set; else 512 MB on a CPU, and on a CUDA device a
    quarter of its free memory (recomputing there costs a second forward and saves nothing)."""
    if configured_mb is not None:
        return configured_mb * 2**20
    device = next(model.parameters()).device
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return CPU_ACTIVATION_MB * 2**20


class layer_checkpointing:  # noqa: N801 - used like a function: ``with layer_checkpointing(model, on):``
    """Recompute each decoder layer in the backward instead of keeping its activations
    (transformers' gradient checkpointing), while the block runs; a no-op when ``enabled`` is
    False or the model does not support it. It also works in eval mode (mining): only the
    decoder layers themselves are flagged as training, which transformers' checkpointing
    checks; their dropout and other children keep their mode."""

    def __init__(self, model: Any, enabled: bool) -> None:
        self.model = model
        self.enabled = bool(enabled) and bool(getattr(model, "supports_gradient_checkpointing", False))
        self.flags: list[tuple[torch.nn.Module, bool]] = []
        self.was_on = False

    def __enter__(self) -> bool:
        if not self.enabled:
            return False
        from transformers.modeling_layers import GradientCheckpointingLayer

        m = self.model
        new_api = hasattr(m, "activation_checkpointing_enable")  # transformers >= 5.x renamed it
        self.was_on = bool(getattr(m, "is_activation_checkpointing" if new_api else "is_gradient_checkpointing", False))
        if not self.was_on:
            if new_api:
                m.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.flags = [(m, m.training) for m in self.model.modules() if isinstance(m, GradientCheckpointingLayer)]
        for m, _ in self.flags:
            m.training = True
        return True

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        for m, flag in self.flags:
            m.training = flag
        if not self.was_on:
            m = self.model
            if hasattr(m, "activation_checkpointing_disable"):
                m.activation_checkpointing_disable()
            else:
                m.gradient_checkpointing_disable()


class Frozen:
    """Context manager: all parameters requires_grad=False and eval mode; restores both."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        self.training = self.model.training
        for p, _ in self.flags:
            p.requires_grad_(False)
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for p, flag in self.flags:
            p.requires_grad_(flag)
        self.model.train(self.training)
