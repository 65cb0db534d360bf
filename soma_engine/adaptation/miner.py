"""Soft-prompt mining on the surrogate G: Def. 3.1, Eq. 1–3 (Eq. 1-3) and the hardness r_t of Sec. 3.3.

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
   in the backward (``answer_rows.chunked_rows``); when the decoder's activations for the batch
   would exceed ``mining.activation_budget_mb`` the decoder layers are recomputed too
   (``answer_rows.layer_checkpointing``). Answers are cut to their first ``lora.max_answer_tokens``.
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

The literal Eq. 2 values are kept in :attr:`MiningResult.unlikelihood` for whoever wants them;
``mining.hardness="literal"`` scores r_t = max_P L_sem_exp as printed, to measure the other reading.

Where the parts live: ``neighbourhoods.py`` (Def. 3.1, s_τ of Eq. 1), ``mining_loss.py`` (Eq. 1–3
as pure functions), ``prompt_scoring.py`` (the batched forward of step 2), ``answer_rows.py``
(the row-wise LM head and activation recompute it shares with the distiller), this module (the
loop of step 3, the hardness of step 4, verbalisation and the teacher probes).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from soma_engine.config import MiningConfig

from .answer_rows import Frozen, activation_budget, activation_bytes, layer_checkpointing
from .budget import plan_mining
from .mining_loss import hardness_from_unlikelihood, mining_objective
from .neighbourhoods import get_neighbor_index, neighbourhood
from .prompt_scoring import PromptScores, Turn, TurnBatch, encode_turns, score_prompts

log = logging.getLogger("soma.miner")

Teacher = Callable[[list[dict[str, Any]]], str]

__all__ = ["MiningResult", "mine", "probe_cases", "verbalize"]


# --------------------------------------------------------------------------------------------
# Sec. 3.1: verbalisation
# --------------------------------------------------------------------------------------------


def _verbalize_ids(prompt: Tensor, embeddings: Tensor, exclude: Sequence[int] = ()) -> Tensor:
    unit = F.normalize(embeddings.detach().float(), dim=-1)
    sims = F.normalize(prompt.detach().float().to(unit.device), dim=-1) @ unit.T
    if exclude:
        sims[..., list(exclude)] = -math.inf
    return sims.argmax(dim=-1)


def _special_ids(tokenizer: Any, vocab: int) -> list[int]:
    return [i for i in getattr(tokenizer, "all_special_ids", []) if 0 <= i < vocab]


def verbalize(prompt: Tensor, embeddings: Tensor, tokenizer: Any) -> list[str]:
    """V(P) of Sec. 3.1: for each row of ``prompt [L, d]``, the token whose input embedding has
    the largest cosine similarity, as decoded text ``tok(v)``. Special tokens are excluded (their
    text would be a control sequence, not content, when sent to the teacher)."""
    ids = _verbalize_ids(prompt, embeddings, _special_ids(tokenizer, embeddings.shape[0])).tolist()
    return [tokenizer.decode([i]) for i in ids]


def _verbalized(prompts: Tensor, embeddings: Tensor, tokenizer: Any) -> list[list[str]]:
    """V(P_m) for every candidate of ``prompts [M, L, d]`` (as :func:`verbalize`, in one pass)."""
    ids = _verbalize_ids(prompts, embeddings, _special_ids(tokenizer, embeddings.shape[0])).cpu()
    return [[tokenizer.decode([i]) for i in row] for row in ids.tolist()]


# --------------------------------------------------------------------------------------------
# The mining loop
# --------------------------------------------------------------------------------------------


@dataclass
class MiningResult:
    """Output of :func:`mine`. Turn-indexed lists follow the order of the ``turns`` given."""

    # r_t: max_m exp(-L_sem_exp(P_m; t)) in (0, 1], or max_m L_sem_exp (config.hardness); 0.0 for empty answers
    hardness: list[float]
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


@dataclass
class _Problem:
    """What every scoring pass of one :func:`mine` call shares: the frozen model, the warm turns
    and their teacher tokens' fixed neighbourhoods (Def. 3.1, s_τ of Eq. 1)."""

    model: Any
    batch: TurnBatch
    nb_ids: Tensor
    s_tau: Tensor
    config: MiningConfig
    detach_weight: bool

    def scores(self, prompts: Tensor) -> PromptScores:
        return score_prompts(
            self.model,
            self.batch,
            prompts,
            config=self.config,
            nb_ids=self.nb_ids,
            s_tau=self.s_tau,
            detach_weight=self.detach_weight,
        )


def _initial_prompts(config: MiningConfig, dim: int, seed: int) -> Tensor:
    """The candidates' initial soft prompts ``[M, L, d]``, rows ~ N(0, σ²I) (Sec. 3.1), seeded."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(config.candidates, config.soft_len, dim, generator=gen) * config.init_std


def _model_device(model: Any, device: str | torch.device | None) -> torch.device:
    """``device``, or the model's; the model must already be there."""
    param = next(model.parameters())
    dev = torch.device(device) if device is not None else param.device
    if dev.type != param.device.type or (dev.index is not None and dev != param.device):
        raise ValueError(f"model is on {param.device}, not on {dev}: move it first")
    return dev


def _problem(
    model: Any, batch: TurnBatch, config: MiningConfig, dev: torch.device, key: Hashable | None, detach_weight: bool
) -> _Problem:
    """The batch on ``dev`` with its teacher tokens' neighbourhoods from the cached index."""
    emb = model.get_input_embeddings().weight
    index = get_neighbor_index(emb, config.neighbors_k, key=key, hnsw_above=config.hnsw_above)
    nbrs = index.neighbors(batch.row_target)
    batch = batch.to(dev)
    nb_ids, s_tau = neighbourhood(batch.row_target, emb, nbrs.to(dev), index.k, config.tau)
    return _Problem(model, batch, nb_ids, s_tau, config, detach_weight)


def _clip_per_candidate(grad: Tensor, max_norm: float) -> None:
    """Gradient clipping for each candidate's P_m separately (candidates stay independent)."""
    norms = grad.flatten(1).norm(dim=1)
    grad.mul_((max_norm / (norms + 1e-6)).clamp(max=1.0)[:, None, None])


class _CandidateOptimizer:
    """AdamW + cosine decay + per-candidate clipping over the candidates' soft prompts (Eq. 3).

    ``prompts`` starts with the first ``m_count`` rows of ``init``; :meth:`grow` lets the others
    join from their initial draw, with fresh optimiser moments, after a time-budgeted first step."""

    def __init__(self, init: Tensor, m_count: int, config: MiningConfig) -> None:
        self.init = init
        self.config = config
        self.steps = config.steps  # the planned steps (re-planned under a time budget)
        self.offset = 0  # steps done before the current optimiser was made
        self.prompts = init[:m_count].clone().requires_grad_(True)
        self._new_optimizer()

    def _new_optimizer(self) -> None:
        cfg = self.config
        self.opt = torch.optim.AdamW([self.prompts], lr=cfg.lr, weight_decay=cfg.weight_decay)
        # Cosine decay over the planned steps, as CosineAnnealingLR.
        done = self.offset
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda i: 0.5 * (1.0 + math.cos(math.pi * min(i + done, self.steps) / self.steps))
        )

    def step(self, problem: _Problem, recompute: bool) -> list[float]:
        """One optimisation step of J(P) (Eq. 3) for every candidate; J before the update."""
        cfg, model, prompts = self.config, problem.model, self.prompts
        with Frozen(model), layer_checkpointing(model, recompute):
            scores = problem.scores(prompts)
            j = mining_objective(scores.sem_exp, scores.h_tail, prompts, beta=cfg.beta, lambda_p=cfg.lambda_p)
            self.opt.zero_grad(set_to_none=True)
            j.sum().backward()  # candidates are independent: ∂(Σ_m J_m)/∂P_m = ∂J_m/∂P_m
        _clip_per_candidate(prompts.grad, cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return j.detach().cpu().tolist()

    def grow(self, m_count: int) -> None:
        """Let candidates ``len(prompts)..m_count-1`` join from their initial draw."""
        self.prompts = torch.cat([self.prompts.detach(), self.init[len(self.prompts) : m_count]]).requires_grad_(True)
        self._new_optimizer()


def _optimize(
    problem: _Problem,
    opt: _CandidateOptimizer,
    run: Callable[[Callable[[], Any]], Any],
    time_budget_s: float | None,
    progress: Callable[[int, int], None] | None,
    timings: dict[str, float],
) -> list[list[float]]:
    """The optimisation steps, each through ``run``; J per step. Under ``time_budget_s`` the
    first step's cost sizes the candidates and steps (budget.plan_mining)."""
    batch, cfg = problem.batch, opt.config
    per_candidate = int(batch.lengths.sum() + cfg.soft_len * batch.input_ids.shape[0])
    t0 = time.perf_counter()

    budget = activation_budget(cfg.activation_budget_mb, problem.model)

    def step() -> list[float]:
        recompute = activation_bytes(problem.model, len(opt.prompts) * per_candidate) > budget
        timings["checkpointing"] = max(timings["checkpointing"], float(recompute))
        return opt.step(problem, recompute)

    losses: list[list[float]] = []
    while len(losses) < opt.steps:
        losses.append(run(step))
        if len(losses) == 1 and time_budget_s is not None:
            spent = time.perf_counter() - t0
            sized = plan_mining(spent, time_budget_s - spent, cfg.candidates, cfg.steps)
            opt.steps, opt.offset = sized.steps, 1
            if sized.candidates > 1:
                opt.grow(sized.candidates)
        if progress is not None:
            progress(len(losses), opt.steps)
    return losses


def _final_scores(
    problem: _Problem, prompts: Tensor, run: Callable[[Callable[[], Any]], Any]
) -> tuple[Tensor, Tensor, list[float], list[int]]:
    """Turn-indexed ``(unlikelihood [M, T], h_tail [M, T], r_t, best candidate)`` of the
    optimised prompts (Sec. 3.3); turns without answer tokens keep nan, 0.0 and -1."""
    batch = problem.batch
    unl = torch.full((len(prompts), batch.num_turns), math.nan)
    ent = torch.full((len(prompts), batch.num_turns), math.nan)
    hardness = [0.0] * batch.num_turns
    best = [-1] * batch.num_turns
    if not batch.turn_ids:
        return unl, ent, hardness, best

    def evaluate() -> PromptScores:
        with Frozen(problem.model), torch.no_grad():
            return problem.scores(prompts)

    final = run(evaluate)
    sem = final.sem_exp.float().cpu()
    r, best_m = hardness_from_unlikelihood(sem, problem.config.hardness)
    for col, t in enumerate(batch.turn_ids):
        unl[:, t] = sem[:, col]
        ent[:, t] = final.h_tail[:, col].float().cpu()
        hardness[t] = float(r[col])
        best[t] = int(best_m[col])
    return unl, ent, hardness, best


def _run_inline(fn: Callable[[], Any]) -> Any:
    return fn()


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

    ``turns``: ``(context_messages, teacher_answer)`` pairs, context = D_{t-1} ⊕ q_t. Minimises J(P)
    (Eq. 3) with AdamW(lr, weight_decay), cosine decay over ``config.steps`` and per-candidate
    gradient-norm clipping; all M candidates and all turns share one padded batch per step. Then
    r_t from the optimised candidates by ``config.hardness`` (module docstring: sign convention).
    ``device`` defaults to the model's; the model must already be there. While mining, every
    parameter has ``requires_grad=False`` and the model is in eval mode (both restored on exit):
    do not train the same module concurrently. With an active LoRA adapter the mined surrogate is
    G + adapter. Contexts longer than ``max_seq_len`` lose their oldest tokens but keep their
    system and newest messages (``context_fit``); answers are cut to ``max_answer_tokens``.
    ``progress(step, total)`` is called after every step. ``neighbor_key`` keys the
    neighbour-index cache (default: the embedding tensor's identity).
    ``run_step(fn)`` runs each optimisation step and the final scoring pass (default: here). The
    engine passes one that submits ``fn`` to the model worker, so live turns are served between
    mining steps; each step freezes the model for itself, and the caller's wrapper must re-activate
    the adapter it mines (other tasks may switch it between steps).
    ``time_budget_s``: the first step optimises one candidate; from its cost the candidates that join
    and the steps are sized (budget.plan_mining); ``timings`` reports ``planned_steps``, ``steps``
    (ran) and ``candidates`` (``prompts`` and the result's ``[M, T]`` tables hold those).
    """
    t_start = time.perf_counter()
    dev = _model_device(model, device)
    emb = model.get_input_embeddings().weight
    batch = encode_turns(tokenizer, turns, max_seq_len=max_seq_len, max_answer_tokens=max_answer_tokens)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    problem = _problem(model, batch, config, dev, neighbor_key, detach_weight)
    timings["neighbors"] = time.perf_counter() - t0

    init = _initial_prompts(config, emb.shape[1], seed).to(dev)
    budgeted = time_budget_s is not None and config.steps > 1 and config.candidates > 1
    # Under a time budget the first step optimises one candidate: its cost sizes the rest.
    opt = _CandidateOptimizer(init, 1 if budgeted else config.candidates, config)
    run = run_step or _run_inline
    timings["checkpointing"] = 0.0
    t0 = time.perf_counter()
    losses: list[list[float]] = []
    if problem.batch.turn_ids and config.steps > 0:
        losses = _optimize(problem, opt, run, time_budget_s if budgeted else None, progress, timings)
    timings.update(
        optimization=time.perf_counter() - t0,
        planned_steps=float(opt.steps),
        steps=float(len(losses)),
        candidates=float(len(opt.prompts)),
    )

    t0 = time.perf_counter()
    unl, ent, hardness, best = _final_scores(problem, opt.prompts, run)
    timings["evaluation"] = time.perf_counter() - t0

    prompts = opt.prompts.detach()
    timings["total"] = time.perf_counter() - t_start
    return MiningResult(
        hardness=hardness,
        prompts=prompts.float().cpu(),
        losses=losses,
        verbalized=_verbalized(prompts, emb, tokenizer),
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
