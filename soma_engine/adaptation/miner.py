"""Soft-prompt mining on the surrogate G: Def. 3.1, Eq. 1-3 and the hardness r_t of Sec. 3.3.

Pipeline (one call of :func:`mine`):

1. Every warm turn ``(D_{t-1} ⊕ q_t, a_t^F)`` becomes the token sequence
   ``chat_template(D_{t-1} ⊕ q_t, add_generation_prompt=True) ⊕ tok_G(a_t^F)`` (Sec. 3.2).
2. ``M`` soft prompts ``P_m ∈ R^{L×d}`` (rows ~ N(0, σ²I), Sec. 3.1) are prepended at the
   embedding layer. All candidates × all warm turns run as ONE right-padded batch through the
   frozen decoder; the LM head is applied only to the gathered teacher-answer positions, and
   a turn whose tokens are a prefix of a later turn's (a dialogue's earlier turns) is read from
   that later sequence instead of being run again. Per step, beyond the decoder pass and the
   LM head's softmax, the cost is O(rows × (k + m)): neighbourhoods come from a cached table.
   Memory: the |V|-wide logits exist for ``mining.row_chunk`` rows at a time and are recomputed
   in the backward (:func:`chunked_rows`); when the decoder's activations for the batch would
   exceed ``mining.activation_budget_mb`` the decoder layers are recomputed too
   (:class:`layer_checkpointing`). Answers are cut to their first ``lora.max_answer_tokens``.
3. AdamW + cosine decay + per-candidate gradient clipping minimise J(P) (Eq. 3).
4. The hardness ``r_t`` of each turn is read from the optimised candidates (Sec. 3.3).

Sign convention (the paper is inconsistent here; this is our reading)
--------------------------------------------------------------------
Eq. 2 is an *unlikelihood* penalty: ``-log(1 - Π[v])`` is large when G puts mass on the teacher
token or its semantic neighbours, i.e. L_sem_exp measures *agreement* of G with F. The paper
says "we minimize Eq. 3", and the entropy term ``-β H_tail`` is only anti-degenerate under
minimisation, so we **minimise J**: the prompts push G's mass off F's tokens and their
neighbourhoods — they "maximize semantic divergence" (abstract) and expose the directions in which
G's agreement with F is weakest. Read literally, ``r_t = max_P L_sem_exp`` would then rank as
hardest the turns G already reproduces (largest residual agreement), which contradicts Sec. 3.3
("turns selected because prompt mining exposes weak alignment directions") and would make
``ω_t ∝ r_t`` in Eq. 4 upweight what G already knows. We therefore score the hardness with the
bounded divergence ``exp(-L_sem_exp) ∈ (0, 1]``, a monotone decreasing map of Eq. 2 (for small
probabilities it is ≈ 1 − the s_τ-weighted mass G puts on F's neighbourhood)::

    r_t = max_{P ∈ P_cand} exp(-L_sem_exp(P; D_{t-1}, q_t)) = exp(-min_P L_sem_exp(P; D_{t-1}, q_t))

The literal Eq. 2 values are kept in :attr:`MiningResult.unlikelihood` for whoever wants them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from soma_engine.config import MiningConfig

log = logging.getLogger("soma.miner")

Turn = tuple[list[dict[str, Any]], str]
Teacher = Callable[[list[dict[str, Any]]], str]

# -log(1 - p) is clamped at p = 1 - 1e-6 (about 13.8 nats) to stay finite in float32.
_LOGP_MAX = math.log1p(-1e-6)
_LOG_HALF = -math.log(2.0)

__all__ = [
    "MiningResult",
    "NeighborIndex",
    "PromptScores",
    "TurnBatch",
    "clear_neighbor_cache",
    "encode_turns",
    "get_neighbor_index",
    "hardness_from_unlikelihood",
    "mine",
    "mining_objective",
    "probe_cases",
    "score_prompts",
    "semantic_divergence_loss",
    "tail_entropy",
    "verbalize",
]


# --------------------------------------------------------------------------------------------
# Def. 3.1: semantic neighbourhoods
# --------------------------------------------------------------------------------------------


class NeighborIndex:
    """N_k(u) of Def. 3.1: the k tokens of V \\ {u} whose input embeddings have the largest
    cosine similarity to e_u, from a faiss inner-product index over L2-normalised rows.

    The index is exact (``IndexFlatIP``) unless the vocabulary exceeds ``hnsw_above``, then it is
    ``IndexHNSWFlat`` with the inner-product metric. Rows of the ``[|V|, k]`` neighbour table are
    filled lazily, on first request, and kept (49k × 20 ids is under 8 MB); :meth:`table`
    fills the whole vocabulary. Thread-safe.
    """

    def __init__(
        self,
        embeddings: Tensor,
        k: int,
        *,
        hnsw_above: int = 200_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
    ) -> None:
        import faiss

        vocab, dim = embeddings.shape
        if vocab < 2:
            raise ValueError("a neighbourhood needs a vocabulary of at least 2 tokens")
        self.vocab_size = int(vocab)
        self.k = int(min(k, vocab - 1))
        self.uses_hnsw = vocab > hnsw_above
        unit = F.normalize(embeddings.detach().float().cpu(), dim=-1)
        self._unit = np.ascontiguousarray(unit.numpy(), dtype=np.float32)
        if self.uses_hnsw:
            index = faiss.IndexHNSWFlat(int(dim), hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = max(ef_search, 2 * (self.k + 1))
        else:
            index = faiss.IndexFlatIP(int(dim))
        index.add(self._unit)
        self._index = index
        self._table = torch.full((self.vocab_size, self.k), -1, dtype=torch.long)
        self._known = torch.zeros(self.vocab_size, dtype=torch.bool)
        self._lock = threading.Lock()

    def neighbors(self, token_ids: Tensor) -> Tensor:
        """``LongTensor[N]`` of token ids -> ``LongTensor[N, k]`` neighbour ids (most similar first)."""
        ids = torch.as_tensor(token_ids, dtype=torch.long)
        flat = ids.reshape(-1).cpu()
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.vocab_size):
            raise IndexError("token id outside the vocabulary of this NeighborIndex")
        with self._lock:
            missing = flat[~self._known[flat]].unique()
            if missing.numel():
                self._fill(missing)
            out = self._table[flat]
        return out.reshape(*ids.shape, self.k).to(ids.device)

    def table(self) -> Tensor:
        """The full ``[|V|, k]`` neighbour table (computed for every token on first call)."""
        return self.neighbors(torch.arange(self.vocab_size))

    def _fill(self, rows: Tensor) -> None:
        k = self.k
        query = self._unit[rows.numpy()]
        _, found = self._index.search(query, k + 1)
        found_t = torch.from_numpy(found).long()
        is_self = found_t == rows[:, None]
        # Drop u itself; rows where u was not returned (duplicates, ANN miss) drop their last hit.
        keep = ~is_self
        keep[~is_self.any(dim=1), -1] = False
        nbrs = found_t[keep].view(len(rows), k)
        bad = (nbrs < 0).any(dim=1)
        if bad.any():  # HNSW can return -1 when too few points are reached: exact fallback.
            nbrs[bad] = _dense_neighbors(torch.from_numpy(self._unit), rows[bad], k)
        self._table[rows] = nbrs
        self._known[rows] = True


def _dense_neighbors(unit: Tensor, token_ids: Tensor, k: int) -> Tensor:
    """Exact cosine top-k over the whole vocabulary, excluding the token itself (|V|-wide)."""
    sims = unit[token_ids] @ unit.T
    sims[torch.arange(len(token_ids)), token_ids] = -math.inf
    return sims.topk(k, dim=-1).indices


@dataclass
class _CacheEntry:
    ref: weakref.ref | None
    version: int
    index: NeighborIndex


_NEIGHBOR_CACHE: OrderedDict[Hashable, _CacheEntry] = OrderedDict()
_NEIGHBOR_CACHE_SIZE = 8
_NEIGHBOR_CACHE_LOCK = threading.Lock()


def get_neighbor_index(
    embeddings: Tensor,
    k: int,
    *,
    key: Hashable | None = None,
    hnsw_above: int = 200_000,
) -> NeighborIndex:
    """The cached :class:`NeighborIndex` of an embedding matrix, built once per surrogate.

    Keyed by ``(key, |V|, k, hnsw)``; ``key`` defaults to the identity of ``embeddings``. Without a
    caller key, the entry is also checked against a weak reference and the tensor's in-place
    version counter, so a recycled ``id`` or an edited matrix rebuilds instead of going stale.
    """
    vocab = int(embeddings.shape[0])
    k = int(min(k, vocab - 1))
    hnsw = vocab > hnsw_above
    full_key = ("caller", key, vocab, k, hnsw) if key is not None else ("tensor", id(embeddings), vocab, k, hnsw)
    with _NEIGHBOR_CACHE_LOCK:
        entry = _NEIGHBOR_CACHE.get(full_key)
        fresh = entry is not None and (
            key is not None
            or (entry.ref is not None and entry.ref() is embeddings and entry.version == embeddings._version)
        )
        if entry is not None and fresh:
            _NEIGHBOR_CACHE.move_to_end(full_key)
            return entry.index
        index = NeighborIndex(embeddings, k, hnsw_above=hnsw_above)
        _NEIGHBOR_CACHE[full_key] = _CacheEntry(
            ref=None if key is not None else weakref.ref(embeddings),
            version=int(embeddings._version),
            index=index,
        )
        while len(_NEIGHBOR_CACHE) > _NEIGHBOR_CACHE_SIZE:
            _NEIGHBOR_CACHE.popitem(last=False)
        return index


def clear_neighbor_cache() -> None:
    """Forget every cached :class:`NeighborIndex`."""
    with _NEIGHBOR_CACHE_LOCK:
        _NEIGHBOR_CACHE.clear()


# --------------------------------------------------------------------------------------------
# Eq. 1-3 as pure functions
# --------------------------------------------------------------------------------------------


def _neighbourhood(
    teacher_ids: Tensor, embeddings: Tensor, neighbors: Tensor | None, neighbors_k: int, tau: float
) -> tuple[Tensor, Tensor]:
    """Ids of {y} ∪ N_k(y) ``[N, k+1]`` (y first) and s_τ(v|y) over them (Eq. 1), float32.

    With ``neighbors`` given, only the ``N × (k+1)`` rows involved are read and normalised, so
    the cost does not grow with |V| (nor copy the matrix to float32)."""
    emb = embeddings.detach()
    if neighbors is None:
        unit = F.normalize(emb.float(), dim=-1)
        neighbors = _dense_neighbors(unit, teacher_ids, int(min(neighbors_k, unit.shape[0] - 1)))
    ids = torch.cat([teacher_ids[:, None], neighbors.to(teacher_ids.device)], dim=1)
    rows = F.normalize(emb[ids].float(), dim=-1)  # [N, k+1, d], y first
    cos = (rows * rows[:, :1]).sum(-1)
    return ids, torch.softmax(cos / tau, dim=-1)


class _LogProbsAt(torch.autograd.Function):
    """log softmax(x)[i, idx[i, j]] without materialising log softmax(x).

    Forward: one logsumexp pass over |V| and a gather. Backward: one |V|-wide pass
    (softmax times the summed upstream gradient) plus a sparse scatter, in place. Autograd's
    own graph for ``x.gather(idx) - logsumexp(x)`` makes two more |V|-wide tensors (the
    gather's zero-filled gradient and their sum), which made the mining loss cost more than
    the NLL it is added to."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, idx: Tensor) -> Tensor:
        lse = torch.logsumexp(x, dim=-1, keepdim=True)
        ctx.save_for_backward(x, lse, idx)
        return x.gather(1, idx) - lse

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, lse, idx = ctx.saved_tensors
        out = torch.sub(x, lse).exp_().mul_(-grad.sum(-1, keepdim=True))
        return out.scatter_add_(1, idx, grad), None


def log_probs_at(logits: Tensor, idx: Tensor) -> Tensor:
    """``log_softmax(logits, -1).gather(1, idx)``, differentiable, without the ``[N, |V|]``
    log-softmax tensor."""
    return _LogProbsAt.apply(logits, idx)


def _neg_log1m_exp(logp: Tensor) -> Tensor:
    """-log(1 - exp(logp)) computed stably, with p clamped at 1 - 1e-6."""
    logp = logp.clamp(max=_LOGP_MAX)
    return -torch.where(logp > _LOG_HALF, torch.log(-torch.expm1(logp)), torch.log1p(-torch.exp(logp)))


def _sem_terms(
    logits: Tensor,
    teacher_ids: Tensor,
    embeddings: Tensor,
    ids: Tensor,
    s_tau: Tensor,
    *,
    lambda_exp: float,
    top_m: int,
    detach_weight: bool,
) -> tuple[Tensor, Tensor]:
    """Per-position unlikelihood Σ_v s_τ(v|y)[-log(1-Π[v])] (Eq. 1) and weight w (Eq. 2).

    Touches the |V|-wide logits only through one logsumexp and one top-m; everything else is
    over the k+1 neighbourhood and the m top tokens.
    """
    logits = logits.float()
    m = int(min(top_m, logits.shape[-1]))
    with torch.no_grad():  # only the selection; the gradient flows through log_probs_at
        top_ids = logits.topk(m, dim=-1, sorted=False).indices
    # The neighbourhood and the top-m in one pass: one sparse scatter in the backward.
    picked = log_probs_at(logits, torch.cat([ids, top_ids], dim=1))
    logp_nb, top_logp = picked[:, : ids.shape[1]], picked[:, ids.shape[1] :]
    unlikelihood = (s_tau * _neg_log1m_exp(logp_nb)).sum(-1)
    top_p = top_logp.exp()
    emb = embeddings.detach()  # gathered before the float cast: no |V| x d copy per step
    e_bar = torch.einsum("nm,nmd->nd", top_p, emb[top_ids].float())  # not renormalised: cos is scale-free
    cos = F.cosine_similarity(e_bar, emb[teacher_ids].float(), dim=-1, eps=1e-8)
    w = 1.0 + lambda_exp * cos.clamp(0.0, 1.0)
    return unlikelihood, (w.detach() if detach_weight else w)


def semantic_divergence_loss(
    logits: Tensor,
    teacher_ids: Tensor,
    embeddings: Tensor,
    *,
    neighbors_k: int,
    tau: float,
    lambda_exp: float,
    top_m: int,
    neighbors: Tensor | None = None,
    reduction: Literal["mean", "none"] = "mean",
    detach_weight: bool = False,
) -> Tensor:
    """L_sem_exp of Eq. 2 (Eq. 1 when ``lambda_exp = 0``).

    ``logits[i]`` (``[N, |V|]``) is G's next-token distribution Π_i that predicts ``teacher_ids[i]``
    (``[N]``); ``embeddings`` is G's input-embedding matrix ``[|V|, d]`` (a constant here).

    - s_τ(v|y) (Eq. 1): softmax of cos(e_v, e_y)/τ over {y} ∪ N_k(y) (Def. 3.1); ``neighbors``
      ``[N, k]`` gives N_k(y) (e.g. from :class:`NeighborIndex`), else a dense cosine top-k
      excluding y itself is computed here.
    - unlikelihood -log(1 - Π[v]) (Eq. 1) from log-probabilities via a stable log1m-exp, with
      Π[v] clamped at 1 - 1e-6.
    - w = 1 + λ_exp · clip(cos(ē, e_y), 0, 1) (Eq. 2), ē = Σ_{v ∈ top-m(Π)} Π[v] e_v (Sec. 3.2's
      top-m truncation). ē is *not* renormalised over the top-m: cos is invariant to a positive
      rescaling, so renormalising would not change w. w is a function of P in the paper
      (w_{t,i}(P)) and is **not detached** by default, so the gradient also pushes ē away from
      e_y (the "semantic shadowing" the weight targets); ``detach_weight=True`` makes it a
      plain importance weight.

    ``reduction="mean"`` averages over positions (Eq. 2's 1/T_F); ``"none"`` returns the
    per-position terms ``[N]`` for per-turn means over a batch.
    """
    ids, s_tau = _neighbourhood(teacher_ids, embeddings, neighbors, neighbors_k, tau)
    unl, w = _sem_terms(
        logits,
        teacher_ids,
        embeddings,
        ids,
        s_tau,
        lambda_exp=lambda_exp,
        top_m=top_m,
        detach_weight=detach_weight,
    )
    per_position = w * unl
    return per_position.mean() if reduction == "mean" else per_position


def _entropy(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) along the last dim, float32."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def tail_entropy(logits: Tensor, k: int) -> Tensor:
    """H_tail of Eq. 3: mean entropy of the first ``min(k, T)`` rows of ``logits [..., T, |V|]``.

    The rows must be one turn's next-token logits in order **starting at the prompt-context
    boundary**: row 0 is the last position of ``P ⊕ S_t`` (it predicts the first answer token),
    row i the i-th teacher-forced answer position. Choice: tail(t, K) is the first K
    distributions of G's continuation of the prompted context, because (a) they are exactly the
    distributions the unlikelihood pushes and that collapse into "repetitive or bland
    continuations" (Sec. 3.2), (b) the paper reuses "the logits from the same forward pass" —
    these rows are computed for Eq. 2 anyway — and (c) the positions before the boundary are
    chat-template tokens whose entropy carries no signal. Returns a scalar, or ``[B]`` for
    ``[B, T, |V|]``.
    """
    if logits.shape[-2] == 0:
        raise ValueError("tail_entropy needs at least one position")
    return _entropy(logits[..., :k, :]).mean(-1)


def mining_objective(sem_exp: Tensor, h_tail: Tensor, prompt: Tensor, *, beta: float, lambda_p: float) -> Tensor:
    """J(P) of Eq. 3: mean over the turn batch of [L_sem_exp − β H_tail] + λ_P ‖P‖_F².

    ``sem_exp`` and ``h_tail`` are ``[T]`` per-turn values of one prompt ``[L, d]``, or
    ``[M, T]`` for M candidates with ``prompt [M, L, d]`` (then J is ``[M]``).
    """
    return (sem_exp - beta * h_tail).mean(-1) + lambda_p * prompt.float().pow(2).sum(dim=(-2, -1))


def hardness_from_unlikelihood(sem_exp: Tensor) -> Tensor:
    """r_t (Sec. 3.3, our sign convention): max over candidates (dim 0) of exp(-L_sem_exp)."""
    return torch.exp(-sem_exp).amax(dim=0)


# --------------------------------------------------------------------------------------------
# Batching warm turns
# --------------------------------------------------------------------------------------------


@dataclass
class TurnBatch:
    """Warm turns tokenised for one padded forward pass (every candidate reuses it).

    Turns whose full token sequence is a prefix of another turn's are read from that host's
    sequence (identical tokens give identical causal logits), so a dialogue's W turns usually
    cost one sequence. Rows: one per teacher token, over all kept turns.
    """

    input_ids: Tensor  # [S, n] right-padded host sequences (context ⊕ answer)
    lengths: Tensor  # [S]
    row_seq: Tensor  # [R] host sequence of the row
    row_pos: Tensor  # [R] position (without the prompt) whose logits predict the row's token
    row_target: Tensor  # [R] teacher token id
    row_turn: Tensor  # [R] index into ``turn_ids``
    row_offset: Tensor  # [R] index of the token inside its answer (0 = boundary)
    turn_ids: list[int]  # original indices of turns with at least one answer token
    num_turns: int  # number of turns given

    def to(self, device: torch.device) -> TurnBatch:
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return TurnBatch(**moved)


def encode_turns(
    tokenizer: Any,
    turns: Sequence[Turn],
    *,
    max_seq_len: int | None = 1024,
    max_answer_tokens: int | None = 256,
) -> TurnBatch:
    """Tokenise ``(context_messages, teacher_answer)`` turns (Sec. 3.2) into a :class:`TurnBatch`.

    Context: ``apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``,
    tokenised without extra special tokens (the template carries them). Answer: ``tok_G(a^F)``
    alone, without special tokens. Answers are cut to ``max_answer_tokens``; contexts lose their
    oldest tokens until context + answer fits ``max_seq_len``. Turns with an empty answer are
    skipped (they keep hardness 0).
    """
    seqs: list[list[int]] = []
    ctx_lens: list[int] = []
    ans_lens: list[int] = []
    turn_ids: list[int] = []
    for t, (messages, answer) in enumerate(turns):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ctx = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        ans = list(tokenizer(answer or "", add_special_tokens=False)["input_ids"])
        if max_answer_tokens is not None:
            ans = ans[:max_answer_tokens]
        if not ans:
            continue
        if max_seq_len is not None and len(ctx) + len(ans) > max_seq_len:
            ctx = ctx[max(0, len(ctx) + len(ans) - max_seq_len) :]
        if not ctx:  # the first answer token needs a position that predicts it
            ctx, ans = ans[:1], ans[1:]
            if not ans:
                continue
        seqs.append(ctx + ans)
        ctx_lens.append(len(ctx))
        ans_lens.append(len(ans))
        turn_ids.append(t)

    # Host each sequence in the longest sequence it is a prefix of (ties: lowest index).
    order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i]), i))
    hosts: list[int] = []
    host_of = [0] * len(seqs)
    for i in order:
        for h_slot, h in enumerate(hosts):
            if seqs[h][: len(seqs[i])] == seqs[i]:
                host_of[i] = h_slot
                break
        else:
            host_of[i] = len(hosts)
            hosts.append(i)

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n = max((len(seqs[h]) for h in hosts), default=0)
    input_ids = torch.full((len(hosts), n), pad, dtype=torch.long)
    for slot, h in enumerate(hosts):
        input_ids[slot, : len(seqs[h])] = torch.tensor(seqs[h])
    lengths = torch.tensor([len(seqs[h]) for h in hosts], dtype=torch.long)

    row_seq, row_pos, row_target, row_turn, row_offset = [], [], [], [], []
    for j, seq in enumerate(seqs):
        c, a = ctx_lens[j], ans_lens[j]
        row_seq += [host_of[j]] * a
        row_pos += range(c - 1, c - 1 + a)
        row_target += seq[c:]
        row_turn += [j] * a
        row_offset += range(a)
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return TurnBatch(
        input_ids=input_ids,
        lengths=lengths,
        row_seq=as_long(row_seq),
        row_pos=as_long(row_pos),
        row_target=as_long(row_target),
        row_turn=as_long(row_turn),
        row_offset=as_long(row_offset),
        turn_ids=turn_ids,
        num_turns=len(turns),
    )


# --------------------------------------------------------------------------------------------
# Batched forward: all candidates × all turns
# --------------------------------------------------------------------------------------------


@dataclass
class PromptScores:
    """Per-candidate, per-turn values from one batched forward (turns as in ``turn_ids``)."""

    sem_exp: Tensor  # [M, T'] L_sem_exp (Eq. 2)
    h_tail: Tensor  # [M, T'] H_tail (Eq. 3)


def decoder_of(model: Any) -> Any | None:
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


def _segment_mean(values: Tensor, segment: Tensor, num: int) -> Tensor:
    """Mean of ``values`` per segment id in ``[0, num)`` (0 for an empty segment)."""
    total = torch.zeros(num, dtype=values.dtype, device=values.device).index_add_(0, segment, values)
    count = torch.zeros(num, dtype=values.dtype, device=values.device).index_add_(0, segment, torch.ones_like(values))
    return total / count.clamp(min=1)


def score_prompts(
    model: Any,
    batch: TurnBatch,
    prompts: Tensor,
    *,
    config: MiningConfig,
    nb_ids: Tensor,
    s_tau: Tensor,
    detach_weight: bool = False,
) -> PromptScores:
    """L_sem_exp and H_tail for every (candidate, turn) pair in one padded forward pass.

    ``prompts [M, L, d]`` are prepended at G's embedding layer; the batch is
    ``M × S`` right-padded sequences (pads sit after every real token, so positions 0..n-1 are
    the natural ones and the causal mask already hides pads; the padding mask is passed too).
    ``nb_ids``/``s_tau`` (``[R, k+1]``) are the fixed neighbourhoods of the batch's teacher
    tokens. The LM head runs on the ``M × R`` answer rows only, ``config.row_chunk`` rows at a
    time (:func:`chunked_rows`: Eq. 2 needs of each row only the neighbourhood gather, the top-m
    and the logsumexp normaliser, so no ``M × R × |V|`` tensor is ever kept for the backward);
    H_tail reuses the first ``config.tail_k`` rows of each turn (see :func:`tail_entropy`).
    """
    emb_layer = model.get_input_embeddings()
    emb = emb_layer.weight
    m_count, length, _ = prompts.shape
    s_count = batch.input_ids.shape[0]
    n_turns = len(batch.turn_ids)

    tok_emb = emb_layer(batch.input_ids)  # [S, n, d]
    p = prompts.to(tok_emb.dtype)
    seq = torch.cat(
        [
            p[:, None].expand(m_count, s_count, length, p.shape[-1]),
            tok_emb[None].expand(m_count, *tok_emb.shape),
        ],
        dim=2,
    ).reshape(m_count * s_count, length + tok_emb.shape[1], -1)
    n = batch.input_ids.shape[1]
    valid = torch.arange(n, device=batch.lengths.device)[None, :] < batch.lengths[:, None]
    mask = torch.cat([torch.ones(s_count, length, dtype=torch.bool, device=valid.device), valid], dim=1)
    mask = mask.repeat(m_count, 1).long()

    cand = torch.arange(m_count, device=batch.row_seq.device)[:, None]
    b_idx = (cand * s_count + batch.row_seq[None]).reshape(-1)
    p_idx = (length + batch.row_pos).repeat(m_count)
    hidden, head = row_hidden(model, seq, mask, b_idx, p_idx)  # [M*R, d] (or [M*R, V] logits)
    target = batch.row_target.repeat(m_count)
    nb_all, s_all = nb_ids.repeat(m_count, 1), s_tau.repeat(m_count, 1)
    tail = (batch.row_offset < config.tail_k).repeat(m_count)

    def terms(rows: Tensor, sl: slice) -> tuple[Tensor, Tensor]:
        logits = head(rows) if head is not None else rows
        unl, w = _sem_terms(
            logits,
            target[sl],
            emb,
            nb_all[sl],
            s_all[sl],
            lambda_exp=config.lambda_exp,
            top_m=config.top_m,
            detach_weight=detach_weight,
        )
        return w * unl, _entropy(logits[tail[sl]])

    weighted, ent = chunked_rows(terms, hidden, config.row_chunk)
    segment = (cand * n_turns + batch.row_turn[None]).reshape(-1)
    sem = _segment_mean(weighted, segment, m_count * n_turns).view(m_count, n_turns)
    h_tail = _segment_mean(ent, segment[tail], m_count * n_turns).view(m_count, n_turns)
    return PromptScores(sem_exp=sem, h_tail=h_tail)


# --------------------------------------------------------------------------------------------
# Sec. 3.1: verbalisation
# --------------------------------------------------------------------------------------------


def _verbalize_ids(prompt: Tensor, embeddings: Tensor, exclude: Sequence[int] = ()) -> Tensor:
    unit = F.normalize(embeddings.detach().float(), dim=-1)
    sims = F.normalize(prompt.detach().float().to(unit.device), dim=-1) @ unit.T
    if exclude:
        sims[..., list(exclude)] = -math.inf
    return sims.argmax(dim=-1)


def verbalize(prompt: Tensor, embeddings: Tensor, tokenizer: Any) -> list[str]:
    """V(P) of Sec. 3.1: for each row of ``prompt [L, d]``, the token whose input embedding has
    the largest cosine similarity, as decoded text ``tok(v)``. Special tokens are excluded (their
    text would be a control sequence, not content, when sent to the teacher)."""
    exclude = [i for i in getattr(tokenizer, "all_special_ids", []) if 0 <= i < embeddings.shape[0]]
    ids = _verbalize_ids(prompt, embeddings, exclude).tolist()
    return [tokenizer.decode([i]) for i in ids]


# --------------------------------------------------------------------------------------------
# The mining loop
# --------------------------------------------------------------------------------------------


@dataclass
class MiningResult:
    """Output of :func:`mine`. Turn-indexed lists follow the order of the ``turns`` given."""

    hardness: list[float]  # r_t = max_m exp(-L_sem_exp(P_m; t)) in (0, 1]; 0.0 for empty answers
    prompts: Tensor  # [M, L, d] optimised soft prompts (float32, CPU)
    losses: list[list[float]]  # J(P_m) per step (before the update), [steps][M]
    verbalized: list[list[str]]  # V(P_m): L token strings per candidate
    unlikelihood: Tensor  # [M, T] literal Eq. 2 values after optimisation (nan: empty answer)
    h_tail: Tensor  # [M, T] H_tail after optimisation (nan: empty answer)
    best_candidate: list[int]  # argmax_m of the hardness per turn (-1: empty answer)
    timings: dict[str, float] = field(default_factory=dict)  # seconds

    def verbalized_text(self, m: int) -> str:
        """V(P_m) as one string."""
        return "".join(self.verbalized[m])


class _Frozen:
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


def _run_inline(fn: Callable[[], Any]) -> Any:
    return fn()


def _clip_per_candidate(grad: Tensor, max_norm: float) -> None:
    """Gradient clipping for each candidate's P_m separately (candidates stay independent)."""
    norms = grad.flatten(1).norm(dim=1)
    grad.mul_((max_norm / (norms + 1e-6)).clamp(max=1.0)[:, None, None])


def mine(
    model: Any,
    tokenizer: Any,
    turns: Sequence[Turn],
    config: MiningConfig,
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    neighbor_key: Hashable | None = None,
    max_seq_len: int | None = 1024,
    max_answer_tokens: int | None = 256,
    detach_weight: bool = False,
    run_step: Callable[[Callable[[], Any]], Any] | None = None,
    time_budget_s: float | None = None,
) -> MiningResult:
    """Mine M soft prompts on the frozen surrogate and score each warm turn's hardness (Sec. 3.2-3.3).

    ``turns``: ``(context_messages, teacher_answer)`` pairs, context = D_{t-1} ⊕ q_t. Minimises
    J(P) (Eq. 3) with AdamW(lr, weight_decay), cosine decay over ``config.steps`` and
    per-candidate gradient-norm clipping; all M candidates and all turns share one padded
    batch per step. Then r_t = max_m exp(-L_sem_exp(P_m; t)) (module docstring: sign
    convention). ``device`` defaults to the model's; the model must already be there. While
    mining, every parameter has ``requires_grad=False`` and the model is in eval mode (both
    restored on exit): do not train the same module concurrently. With an active LoRA adapter
    the mined surrogate is G + adapter. Contexts longer than ``max_seq_len`` lose their oldest
    tokens; answers are cut to ``max_answer_tokens``.
    ``progress(step, total)`` is called after every step. ``neighbor_key`` keys the
    neighbour-index cache (default: the embedding tensor's identity).
    ``run_step(fn)`` runs each optimisation step and the final scoring pass (default: here).
    The engine passes one that submits ``fn`` to the model worker, so live turns are served
    between mining steps; each step freezes the model for itself, and the caller's wrapper
    must re-activate the adapter it mines (other tasks may switch it between steps).
    ``time_budget_s``: the first step optimises one candidate; from its cost the candidates that
    join and the steps are sized (budget.plan_mining); ``timings`` reports ``planned_steps``,
    ``steps`` (ran) and ``candidates`` (``prompts`` and the result's ``[M, T]`` tables hold those).
    """
    t_start = time.perf_counter()
    param = next(model.parameters())
    dev = torch.device(device) if device is not None else param.device
    if dev.type != param.device.type or (dev.index is not None and dev != param.device):
        raise ValueError(f"model is on {param.device}, not on {dev}: move it first")
    emb = model.get_input_embeddings().weight
    vocab, dim = emb.shape
    m_count, length = config.candidates, config.soft_len

    batch = encode_turns(tokenizer, turns, max_seq_len=max_seq_len, max_answer_tokens=max_answer_tokens)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    index = get_neighbor_index(emb, config.neighbors_k, key=neighbor_key, hnsw_above=config.hnsw_above)
    nbrs = index.neighbors(batch.row_target)
    batch = batch.to(dev)
    nb_ids, s_tau = _neighbourhood(batch.row_target, emb, nbrs.to(dev), index.k, config.tau)
    timings["neighbors"] = time.perf_counter() - t0

    gen = torch.Generator().manual_seed(seed)
    init = (torch.randn(m_count, length, dim, generator=gen) * config.init_std).to(dev)
    budgeted = time_budget_s is not None and config.steps > 1 and m_count > 1
    if budgeted:  # the first step optimises one candidate: its cost sizes the rest (budget.plan_mining)
        m_count = 1
    prompts = init[:m_count].clone().requires_grad_(True)
    losses: list[list[float]] = []
    n_kept = len(batch.turn_ids)

    run = run_step or _run_inline
    per_candidate = int(batch.lengths.sum() + length * batch.input_ids.shape[0])
    timings["checkpointing"] = 0.0
    t0 = time.perf_counter()
    planned = config.steps
    if n_kept and config.steps > 0:
        plan = {"steps": config.steps, "offset": 0}

        def new_optimizer() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
            opt = torch.optim.AdamW([prompts], lr=config.lr, weight_decay=config.weight_decay)
            # Cosine decay over the planned steps (re-planned under a time budget), as CosineAnnealingLR.
            done = plan["offset"]
            return opt, torch.optim.lr_scheduler.LambdaLR(
                opt, lambda i: 0.5 * (1.0 + math.cos(math.pi * min(i + done, plan["steps"]) / plan["steps"]))
            )

        opt, sched = new_optimizer()

        def step() -> list[float]:
            recompute = activation_bytes(model, m_count * per_candidate) > config.activation_budget_mb * 2**20
            timings["checkpointing"] = max(timings["checkpointing"], float(recompute))
            with _Frozen(model), layer_checkpointing(model, recompute):
                scores = score_prompts(
                    model, batch, prompts, config=config, nb_ids=nb_ids, s_tau=s_tau, detach_weight=detach_weight
                )
                j = mining_objective(scores.sem_exp, scores.h_tail, prompts, beta=config.beta, lambda_p=config.lambda_p)
                opt.zero_grad(set_to_none=True)
                j.sum().backward()  # candidates are independent: ∂(Σ_m J_m)/∂P_m = ∂J_m/∂P_m
            _clip_per_candidate(prompts.grad, config.grad_clip)
            opt.step()
            sched.step()
            return j.detach().cpu().tolist()

        s = 0
        while s < plan["steps"]:
            losses.append(run(step))
            s += 1
            if s == 1 and budgeted:
                from soma_engine.adaptation.budget import plan_mining

                assert time_budget_s is not None
                spent = time.perf_counter() - t0
                sized = plan_mining(spent, time_budget_s - spent, config.candidates, config.steps)
                plan["steps"], plan["offset"] = sized.steps, 1
                if sized.candidates > 1:  # the others join from their initial draw, with fresh moments
                    m_count = sized.candidates
                    prompts = torch.cat([prompts.detach(), init[1:m_count]]).requires_grad_(True)
                    opt, sched = new_optimizer()
            if progress is not None:
                progress(s, plan["steps"])
        planned = plan["steps"]
    timings["optimization"] = time.perf_counter() - t0
    timings["planned_steps"] = float(planned)
    timings["steps"] = float(len(losses))
    timings["candidates"] = float(m_count)

    t0 = time.perf_counter()
    unl = torch.full((m_count, batch.num_turns), math.nan)
    ent = torch.full((m_count, batch.num_turns), math.nan)
    hardness = [0.0] * batch.num_turns
    best = [-1] * batch.num_turns
    if n_kept:

        def evaluate() -> PromptScores:
            with _Frozen(model), torch.no_grad():
                return score_prompts(model, batch, prompts, config=config, nb_ids=nb_ids, s_tau=s_tau)

        final = run(evaluate)
        sem = final.sem_exp.float().cpu()
        r = hardness_from_unlikelihood(sem)
        best_m = sem.argmin(dim=0)  # the candidate with the largest exp(-L)
        for col, t in enumerate(batch.turn_ids):
            unl[:, t] = sem[:, col]
            ent[:, t] = final.h_tail[:, col].float().cpu()
            hardness[t] = float(r[col])
            best[t] = int(best_m[col])
    timings["evaluation"] = time.perf_counter() - t0

    out_prompts = prompts.detach().float().cpu()
    exclude = [i for i in getattr(tokenizer, "all_special_ids", []) if 0 <= i < vocab]
    ids = _verbalize_ids(prompts.detach(), emb, exclude).cpu()
    verbalized = [[tokenizer.decode([i]) for i in row] for row in ids.tolist()]
    timings["total"] = time.perf_counter() - t_start
    return MiningResult(
        hardness=hardness,
        prompts=out_prompts,
        losses=losses,
        verbalized=verbalized,
        unlikelihood=unl,
        h_tail=ent,
        best_candidate=best,
        timings=timings,
    )


# --------------------------------------------------------------------------------------------
# Teacher probes F(V(P) ⊕ D_{t-1} ⊕ q_t)
# --------------------------------------------------------------------------------------------


def probe_cases(result: MiningResult, turns: Sequence[Turn], teacher: Teacher, budget: int) -> tuple[list[Turn], int]:
    """Ask the teacher F on verbalised-prompt probes of the hardest turns (Sec. 3.1-3.3).

    For the ``budget`` hardest turns (by r_t), the text of V(P) of the candidate that made the
    turn hardest is prepended to the last user message of D_{t-1} ⊕ q_t and sent to
    ``teacher(messages) -> answer``. Returns ``(cases, calls)``: the ``(messages, answer)`` pairs
    with a non-empty answer, and the number of teacher calls made (failed calls count: they were
    made). Turns with no user message or non-text user content are not probed.
    Call only when ``config.probe_teacher`` is on.
    """
    order = sorted(
        (t for t in range(len(turns)) if result.best_candidate[t] >= 0),
        key=lambda t: -result.hardness[t],
    )
    cases: list[Turn] = []
    calls = 0
    for t in order:
        if calls >= budget:
            break
        messages = [dict(m) for m in turns[t][0]]
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)
        if last_user is None or not isinstance(messages[last_user].get("content"), str):
            continue
        probe = result.verbalized_text(result.best_candidate[t]).strip()
        messages[last_user]["content"] = f"{probe}\n\n{messages[last_user]['content']}"
        calls += 1
        try:
            answer = teacher(messages)
        except Exception:  # a probe is optional extra data; never fail the adaptation on it
            log.warning("teacher probe failed for turn %d", t, exc_info=True)
            continue
        if isinstance(answer, str) and answer.strip():
            cases.append((messages, answer))
    return cases, calls
