"""Eq. 4's terms (Sec. 3.3) as functions a test can check against a naive loop:

    L_FT(Θ_LoRA) = 1/|H| Σ_t ω_t · NLL(a_t^F | G(S_t; Θ_LoRA)),   ω_t ∝ r_t      (Eq. 4)

:func:`answer_token_nll` is NLL(a | G(S)) with the LM head applied to the answer positions only
(``answer_rows.py``); :func:`sequence_nll` is the same from full logits, the reference;
:func:`weighted_nll` is Eq. 4 over a batch (``distiller.normalized_weights``: ω_t).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .answer_rows import chunked_rows, decoder_of, finalize_logits

# Answer rows whose |V|-wide logits exist at once in a training step (SmolLM2: 256 x 49k floats = 50 MB).
ROW_CHUNK = 256

__all__ = ["ROW_CHUNK", "answer_logits", "answer_token_nll", "sequence_nll", "unwrap_peft", "weighted_nll"]


def unwrap_peft(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper (LoRA layers injected), or ``model``."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return model
    return model.get_base_model() if isinstance(model, PeftModel) else model


def answer_logits(model: Any, input_ids: Tensor, attention_mask: Tensor, b_idx: Tensor, p_idx: Tensor) -> Tensor:
    """Logits ``[R, |V|]`` at positions ``(b_idx, p_idx)`` only: the decoder's hidden states,
    then the output embedding (and the model's post-head transforms) on those rows."""
    base = unwrap_peft(model)
    decoder = decoder_of(base)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is not None and head is not None:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
        return finalize_logits(base, head(hidden[b_idx, p_idx]))
    # Unusual wrappers: full logits, then gather (correct, not economical).
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[b_idx, p_idx]


def answer_token_nll(
    model: Any, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, *, row_chunk: int = ROW_CHUNK
) -> Tensor:
    """Mean NLL of the labelled tokens of each sequence, ``[B]`` (Eq. 4's NLL(a_t^F | G(S_t))),
    with the LM head applied on the labelled positions only, ``row_chunk`` rows at a time
    (recomputed in the backward: answer_rows.chunked_rows)."""
    shift = labels[:, 1:]
    b_idx, p_idx = (shift != -100).nonzero(as_tuple=True)
    targets = shift[b_idx, p_idx]
    base = unwrap_peft(model)
    decoder = decoder_of(base)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is not None and head is not None:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = (out[0] if isinstance(out, tuple) else out.last_hidden_state)[b_idx, p_idx]

        def ce(rows: Tensor, sl: slice) -> tuple[Tensor]:
            return (F.cross_entropy(finalize_logits(base, head(rows)).float(), targets[sl], reduction="none"),)

        (tok,) = chunked_rows(ce, hidden, row_chunk)
    else:
        logits = answer_logits(model, input_ids, attention_mask, b_idx, p_idx)
        tok = F.cross_entropy(logits.float(), targets, reduction="none")
    n = labels.shape[0]
    total = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, b_idx, tok)
    count = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, b_idx, torch.ones_like(tok))
    return total / count.clamp(min=1)


def sequence_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Reference: mean NLL of the labelled tokens of each sequence from FULL logits ``[B, n, V]``."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    counts = (shift_labels != -100).sum(1).clamp(min=1)
    return tok.sum(1) / counts


def weighted_nll(seq_nll: Tensor, weights: Tensor) -> Tensor:
    """Eq. 4 over a batch: mean of ω_t · NLL_t."""
    return (seq_nll * weights).mean()
