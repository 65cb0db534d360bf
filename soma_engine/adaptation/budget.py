"""Adaptation time budget (``SomaConfig.adaptation_budget_s``): size mining and LoRA from what
their first steps cost.

The paper's step counts (appendix C.2: 30 mining steps over M = 3 candidates, 60 LoRA steps)
take seconds on a GPU and many minutes on a small CPU (SmolLM2-135M on two cores: 5-10 ms per
token of forward + backward). Under a budget each stage runs its first step at the configured
size, measures it, and plans the rest:

- **Mining** gets ``MINING_SHARE`` of the budget (``soma`` only). Its first step optimises one
  candidate; from its cost the plan picks how many of the M candidates join and for how many
  steps: if fewer than ``MIN_MINING_STEPS`` steps of all M fit, candidates are dropped first (a
  step's cost is about proportional to the candidates in it), then steps are cut; at least one
  step always runs.
- **LoRA** gets what is left of the budget when it starts, but at least its own share
  (``1 - MINING_SHARE``): mining's mandatory first step can overrun its share on a loaded CPU,
  and must not leave the adapter a single step. Its steps are sized from the first
  step and the step-0 validation, counting the validations the plan implies; at least one
  step always runs.
- The gate's generations are not in the budget: they are the cost of deciding, not of adapting.

On a CPU the budget also caps sequence lengths (``CPU_MAX_SEQ_LEN``): the cost is linear in
tokens, and at 1024 tokens a single SmolLM2 step takes longer than the whole default budget.

Every stage reports ``planned`` and ``ran`` (steps, candidates) for the decision log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Default budget on a CPU, mining + LoRA: leaves room for the gate's two held-out generations
# (128 tokens each on a long compressed context) inside the 60 s a W = 4 SmolLM2-135M session
# may take on two cores (benchmarks/adaptation.py --parts default).
CPU_BUDGET_S = 30.0
MINING_SHARE = 0.4
MIN_MINING_STEPS = 4
# On a CPU under a budget, training and mining sequences (context + answer) are cut to this.
CPU_MAX_SEQ_LEN = 256


def effective_budget(budget_s: float | None, device: str) -> float | None:
    """Seconds for one adaptation, or None (no budget: the configured step counts run).

    ``None`` in the config means auto: none on CUDA (the paper's step counts), ``CPU_BUDGET_S``
    elsewhere; 0 turns the budget off everywhere."""
    if budget_s is None:
        return None if device == "cuda" else CPU_BUDGET_S
    if budget_s < 0 or not math.isfinite(budget_s):
        raise ValueError(f"adaptation_budget_s must be a finite number >= 0 (0: no budget), got {budget_s}")
    return float(budget_s) or None


@dataclass(frozen=True)
class MiningPlan:
    candidates: int
    steps: int


def plan_mining(per_candidate_s: float, left_s: float, candidates: int, steps: int) -> MiningPlan:
    """Candidates and total steps that fit ``left_s`` more seconds of mining, after a first step
    of ONE candidate that took ``per_candidate_s`` (a step's cost is about proportional to the
    candidates in it). The final scoring pass (a forward only, about a third of a step) is
    counted. Candidates are dropped before steps fall below ``MIN_MINING_STEPS``."""
    per = max(per_candidate_s, 1e-9)
    if steps <= 1:
        return MiningPlan(1, max(steps, 0))
    want = min(steps, MIN_MINING_STEPS) - 1
    keep = candidates
    while keep > 1 and keep * per * (want + 1 / 3) > left_s:
        keep -= 1
    more = math.floor((left_s - keep * per / 3) / (keep * per))
    return MiningPlan(keep, int(min(steps, 1 + max(more, 0))))


def plan_lora(step_s: float, validation_s: float, left_s: float, steps: int, eval_every: int, done: int = 1) -> int:
    """Total LoRA steps (``done`` already run) that fit ``left_s`` more seconds, given one step's
    and one validation's cost and a validation every ``eval_every`` steps plus one at the end."""
    if steps <= done:
        return steps
    per_step = max(step_s, 1e-9) + max(validation_s, 0.0) / max(eval_every, 1)
    more = math.floor(max(left_s - validation_s, 0.0) / per_step)
    return int(min(steps, done + more))


def lora_budget(budget_s: float, spent_s: float) -> float:
    """Seconds LoRA may take after ``spent_s`` of the adaptation went to planning and mining:
    what is left of ``budget_s``, at least LoRA's share of it."""
    return max(budget_s - spent_s, (1.0 - MINING_SHARE) * budget_s)
