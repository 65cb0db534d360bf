"""Eq. 4's terms (Sec. 3.3) as functions a test can check against a naive loop:

    L_FT(Θ_LoRA) = 1/|H| Σ_t ω_t · NLL(a_t^F | G(S_t; Θ_LoRA)),   ω_t ∝ r_t      (Eq. 4)

:func:`answer_token_nll` is NLL(a | G(S)) with the LM head applied to the answer positions only
(``answer_rows.py``); :func:`sequence_nll` is the same from full logits, the reference;
:func:`weighted_nll` is Eq. 4 over a batch (``distiller.normalized_weights``: ω_t).

An optional regulariser towards the base model (``lora.kl_weight``, off by default; issue 19's
"regularisation towards the base"), not in the paper: ``kl_weight · KL(p_base || p_Θ)``
averaged over the answer positions. :func:`base_answer_rows` is the base's side (no grad,
adapter disabled), :func:`answer_token_nll_kl` both terms from one adapted forward, and
:func:`token_kl` the per-row KL.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .answer_rows import chunked_rows, decoder_of, finalize_logits

# Answer rows whose |V|-wide logits exist at once in a training step (SmolLM2: 256 x 49k floats = 50 MB).
ROW_CHUNK = 256

__all__ = [
    "ROW_CHUNK",
    "answer_logits",
    "answer_token_nll",
    "answer_token_nll_kl",
    "base_answer_rows",
    "sequence_nll",
    "token_kl",
    "unwrap_peft",
    "weighted_nll",
]


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
    return _answer_terms(model, input_ids, attention_mask, labels, None, row_chunk)[0]


def _answer_positions(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(b_idx, p_idx, targets)``: the positions whose next token is a labelled answer token."""
    shift = labels[:, 1:]
    b_idx, p_idx = (shift != -100).nonzero(as_tuple=True)
    return b_idx, p_idx, shift[b_idx, p_idx]


def _per_sequence_mean(tok: Tensor, b_idx: Tensor, n: int) -> Tensor:
    """Mean of the per-row values ``tok`` of each of the ``n`` sequences, ``[n]`` (0 when none)."""
    total = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, b_idx, tok)
    count = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, b_idx, torch.ones_like(tok))
    return total / count.clamp(min=1)


def _base_head(model: Any) -> Any:
    """The output embedding without a LoRA on it (``lora.target_modules`` may name the head)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return getattr(head, "base_layer", head)


def token_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p || q) of each row, ``[R]``, from logits ``[R, |V|]`` (computed in float32)."""
    logp = F.log_softmax(logits_p.float(), dim=-1)
    logq = F.log_softmax(logits_q.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def base_answer_rows(model: Any, input_ids: Tensor, attention_mask: Tensor, labels: Tensor) -> Tensor:
    """The base model's side of the KL term: its hidden states ``[R, d]`` at the answer rows of
    ``labels`` (d-wide, so all rows can be kept; the |V|-wide logits are formed a chunk at a
    time by :func:`answer_token_nll_kl`), under ``no_grad``, in eval mode, with the PEFT adapter
    disabled. Wrappers without a separable LM head give their logits ``[R, |V|]`` instead
    (correct, not economical)."""
    b_idx, p_idx, _ = _answer_positions(labels)
    base = unwrap_peft(model)
    decoder, head = decoder_of(base), _base_head(base)
    disabled = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
    was_training = model.training
    model.eval()  # p_base is the model as served: no dropout, no RNG draws
    try:
        with torch.no_grad(), disabled:
            if decoder is not None and head is not None:
                out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
                return (out[0] if isinstance(out, tuple) else out.last_hidden_state)[b_idx, p_idx]
            return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[b_idx, p_idx]
    finally:
        model.train(was_training)


def answer_token_nll_kl(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    labels: Tensor,
    base_rows: Tensor,
    *,
    row_chunk: int = ROW_CHUNK,
) -> tuple[Tensor, Tensor]:
    """``(nll, kl)``, each ``[B]``: :func:`answer_token_nll` and the mean over each sequence's
    answer positions of KL(p_base || p_Θ), from ONE forward of the adapted model; ``base_rows``
    from :func:`base_answer_rows` on the same batch. The base's logits are formed from its
    hidden rows ``row_chunk`` at a time, next to the adapted ones, so no |V|-wide tensor for
    all rows exists at once."""
    nll, kl = _answer_terms(model, input_ids, attention_mask, labels, base_rows, row_chunk)
    assert kl is not None
    return nll, kl


def _answer_terms(
    model: Any, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, base_rows: Tensor | None, row_chunk: int
) -> tuple[Tensor, Tensor | None]:
    """Per-sequence answer NLL and, given the base's answer rows, KL(p_base || p_Θ): one forward
    of the model, the LM head on the answer rows only, a chunk of rows at a time."""
    b_idx, p_idx, targets = _answer_positions(labels)
    base = unwrap_peft(model)
    decoder = decoder_of(base)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is not None and head is not None:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = (out[0] if isinstance(out, tuple) else out.last_hidden_state)[b_idx, p_idx]
        base_head = None if base_rows is None else _base_head(base)

        def terms(rows: Tensor, sl: slice) -> tuple[Tensor, ...]:
            logits = finalize_logits(base, head(rows)).float()
            nll = F.cross_entropy(logits, targets[sl], reduction="none")
            if base_rows is None or base_head is None:
                return (nll,)
            with torch.no_grad():
                ref = finalize_logits(base, base_head(base_rows[sl]))
            return nll, token_kl(ref, logits)

        tok, *rest = chunked_rows(terms, hidden, row_chunk)
        kl = rest[0] if rest else None
    else:
        logits = answer_logits(model, input_ids, attention_mask, b_idx, p_idx).float()
        tok = F.cross_entropy(logits, targets, reduction="none")
        kl = None if base_rows is None else token_kl(base_rows, logits)
    n = labels.shape[0]
    return _per_sequence_mean(tok, b_idx, n), None if kl is None else _per_sequence_mean(kl, b_idx, n)


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
