"""The mining loss of Eq. 1–3 (Eq. 1-3) as pure functions, each checkable against a naive loop.

- :func:`semantic_divergence_loss`: L_sem_exp of Eq. 2 (Eq. 1 when ``lambda_exp = 0``).
- :func:`tail_entropy`: H_tail of Eq. 3; :func:`mining_objective`: J(P) of Eq. 3.
- :func:`hardness_from_unlikelihood`: r_t of Sec. 3.3 (miner.py: the sign convention).

The |V|-wide logits are touched only through one logsumexp and one top-m per row
(:func:`log_probs_at`), so the loss costs less than the NLL of the same rows.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .neighbourhoods import neighbourhood

# -log(1 - p) is clamped at p = 1 - 1e-6 (about 13.8 nats) to stay finite in float32.
_LOGP_MAX = math.log1p(-1e-6)
_LOG_HALF = -math.log(2.0)

__all__ = [
    "entropy",
    "hardness_from_unlikelihood",
    "log_probs_at",
    "mining_objective",
    "semantic_divergence_loss",
    "semantic_terms",
    "tail_entropy",
]


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


def semantic_terms(
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
    ids, s_tau = neighbourhood(teacher_ids, embeddings, neighbors, neighbors_k, tau)
    unl, w = semantic_terms(
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


def entropy(logits: Tensor) -> Tensor:
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
    return entropy(logits[..., :k, :]).mean(-1)


def mining_objective(sem_exp: Tensor, h_tail: Tensor, prompt: Tensor, *, beta: float, lambda_p: float) -> Tensor:
    """J(P) of Eq. 3: mean over the turn batch of [L_sem_exp − β H_tail] + λ_P ‖P‖_F².

    ``sem_exp`` and ``h_tail`` are ``[T]`` per-turn values of one prompt ``[L, d]``, or
    ``[M, T]`` for M candidates with ``prompt [M, L, d]`` (then J is ``[M]``).
    """
    return (sem_exp - beta * h_tail).mean(-1) + lambda_p * prompt.float().pow(2).sum(dim=(-2, -1))


def hardness_from_unlikelihood(sem_exp: Tensor, rule: str = "divergence") -> tuple[Tensor, Tensor]:
    """``(r_t, the candidate that gives it)`` per turn (Sec. 3.3) from L_sem_exp ``[M, T]`` of
    the optimised candidates.

    ``"divergence"`` (default, our sign convention, miner.py): max over candidates of
    exp(-L_sem_exp). ``"literal"``: max over candidates of L_sem_exp, as Sec. 3.3 prints it
    (ranks highest the turns G still agrees with after mining)."""
    if rule == "divergence":
        return torch.exp(-sem_exp).max(dim=0)
    if rule == "literal":
        return sem_exp.max(dim=0)
    raise ValueError(f"unknown hardness rule {rule!r}: use 'divergence' or 'literal'")
