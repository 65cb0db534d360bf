"""Where LoRA sits (Sec. 3.3, appendix C.2): the attention and MLP projections of each
architecture, and the PEFT ``LoraConfig`` fields of an adapter for Eq. 4's fine-tuning.

The leaf names are detected per architecture (:func:`detect_target_modules`); ``lora.target_modules``
overrides the detection.
"""

from __future__ import annotations

from typing import Any

from ..config import LoraConfig

__all__ = ["detect_target_modules", "lora_config_dict"]

# Candidate projection sets, in order of preference; the set with the most matching linear
# leaves wins (a fused Phi-3 model also has o_proj/down_proj, which alone would match Llama's).
_TARGET_SETS: tuple[tuple[str, ...], ...] = (
    # Llama, Mistral, Qwen2, Qwen3, Gemma 1-3, SmolLM
    ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    # Phi-3 (fused projections)
    ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    # Phi-1/2
    ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
    # GPT-2 (Conv1D: fan_in_fan_out)
    ("c_attn", "c_proj", "c_fc"),
    # GPT-NeoX, Falcon
    ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
)
# Layer types LoRA can wrap (PEFT's own lora.Linear is also called "Linear").
_LINEAR_TYPES = {"Linear", "Conv1D", "Linear8bitLt", "Linear4bit"}


def _layer_type(module: Any) -> str:
    return type(getattr(module, "base_layer", module)).__name__


def _linear_leaves(model: Any) -> dict[str, str]:
    """Leaf name -> layer type of every linear-like module, the output head excluded."""
    out: dict[str, str] = {}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if module is head or leaf in ("lm_head", "base_layer"):
            continue
        kind = type(module).__name__
        if kind in _LINEAR_TYPES:
            out.setdefault(leaf, _layer_type(module))
    return out


def detect_target_modules(model: Any) -> list[str]:
    """Leaf names of the attention and MLP projections this architecture has (Sec. 3.3)."""
    leaves = _linear_leaves(model)
    best: list[str] = []
    for names in _TARGET_SETS:
        found = [n for n in names if n in leaves]
        if len(found) > len(best):
            best = found
    if len(best) < 2:
        raise ValueError(
            f"cannot detect LoRA target modules for {type(model).__name__}; set lora.target_modules in the config"
        )
    return best


def lora_config_dict(cfg: LoraConfig, model: Any) -> dict[str, Any]:
    """PEFT ``LoraConfig`` fields for ``model`` (the unwrapped base model)."""
    targets = sorted(cfg.target_modules or detect_target_modules(model))
    leaves = _linear_leaves(model)
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": cfg.rank,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "target_modules": targets,
        "bias": "none",
        # GPT-2's Conv1D stores weights as (in, out): PEFT needs fan_in_fan_out for it.
        "fan_in_fan_out": any(leaves.get(t) == "Conv1D" for t in targets),
    }
