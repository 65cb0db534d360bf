"""Training-set strategies: which training turns form H, and their weights ω (Eq. 4).

``config.strategy`` names one of :data:`STRATEGIES` (the ablation of Sec. 3.3 / appendix C.3):

- ``history-ft``: every training turn, uniform ω.
- ``random-ft``: ``|H| = training_budget(n, lora.train_fraction)`` turns sampled uniformly
  (seeded by ``lora.seed``), uniform ω.
- ``soma``: soft-prompt mining (Eq. 1–3, ``miner.mine``) on the base surrogate G; H = the ``|H|``
  turns of highest hardness r_t, ω_t = r_t (Eq. 4 normalises ω to mean 1); with
  ``mining.probe_teacher``, teacher answers to V(P) probes join H.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..teacher import resolve_sync, split_teacher_result
from ..types import Message, TurnRecord
from .budget import MINING_SHARE
from .distiller import Example, training_budget

if TYPE_CHECKING:
    from ..services import Services


@dataclass
class StrategyInput:
    services: Services
    examples: list[Example]  # the training turns on S~_t, turn order
    records: list[TurnRecord]  # the same turns as recorded (full S_t: what the teacher saw)
    teacher: Callable[..., Any] | None
    max_seq_len: int  # the training sequence cap (mining scores the same truncation)
    budget_s: float | None  # seconds for mining + LoRA (budget.effective_budget)
    timings: dict[str, float] = field(default_factory=dict)  # a strategy adds its stages' seconds
    budget: dict[str, Any] = field(default_factory=dict)  # a strategy adds its planned vs ran record


@dataclass
class Selection:
    chosen: list[int]  # indices into the training turns that form H
    weights: list[float]  # ω per training turn
    hardness: list[float] = field(default_factory=list)  # r_t per training turn (soma only)
    probes: list[Example] = field(default_factory=list)  # teacher probe cases (soma only)
    probe_calls: int = 0  # teacher calls made for probes, failed ones included


Strategy = Callable[[StrategyInput], Selection]


def history_ft(inp: StrategyInput) -> Selection:
    n = len(inp.examples)
    return Selection(list(range(n)), [1.0] * n)


def random_ft(inp: StrategyInput) -> Selection:
    cfg, n = inp.services.config, len(inp.examples)
    chosen = sorted(random.Random(cfg.lora.seed).sample(range(n), training_budget(n, cfg.lora.train_fraction)))
    return Selection(chosen, [1.0] * n)


def soma(inp: StrategyInput) -> Selection:
    """Mining on the base G (adapters disabled): the hardness of a turn is measured against the
    model the new adapter starts from when there is no parent, and against the base otherwise.
    It scores exactly the S~_t the distiller trains on (same chat template and truncation)."""
    cfg, n = inp.services.config, len(inp.examples)
    result = _mine(inp)
    hardness = [float(h) for h in result.hardness]
    chosen = sorted(sorted(range(n), key=lambda i: (-hardness[i], i))[: training_budget(n, cfg.lora.train_fraction)])
    weights = [max(h, 1e-6) for h in hardness]
    selection = Selection(chosen, weights, hardness)
    if cfg.mining.probe_teacher and inp.teacher is not None and cfg.mining.probe_budget > 0:
        _probe(inp, result, selection)
    return selection


def _mine(inp: StrategyInput) -> Any:
    """``miner.mine`` with each step its own task on the model worker (live turns run in between)."""
    from ..runtime.generation import template_dict
    from . import miner

    services, cfg = inp.services, inp.services.config
    rt = services.surrogate
    turns = [([template_dict(m) for m in e.messages], e.answer) for e in inp.examples]
    on_progress = services.on_progress
    progress = (lambda s, total: on_progress("mining", s, total)) if on_progress else None

    def on_base(fn: Callable[[], Any]) -> Any:
        def task(r: Any) -> Any:
            with r.use(None):  # the base G: a live turn in between may have switched adapters
                return fn()

        return rt.run(task)

    t0 = time.perf_counter()
    result = miner.mine(
        rt.run(lambda r: r.base_model),
        rt.tokenizer,
        turns,
        cfg.mining,
        device=rt.device,
        seed=cfg.lora.seed,
        progress=progress,
        max_seq_len=inp.max_seq_len,
        max_answer_tokens=min(cfg.lora.max_answer_tokens, inp.max_seq_len // 2),
        run_step=on_base,
        time_budget_s=None if inp.budget_s is None else MINING_SHARE * inp.budget_s,
    )
    inp.timings["mining"] = time.perf_counter() - t0
    inp.budget["mining"] = {
        "configured": {"steps": cfg.mining.steps, "candidates": cfg.mining.candidates},
        "planned": {"steps": int(result.timings["planned_steps"]), "candidates": int(result.timings["candidates"])},
        "ran": {"steps": int(result.timings["steps"]), "candidates": int(result.timings["candidates"])},
    }
    inp.timings.update({f"mining_{k}": v for k, v in result.timings.items()})
    return result


def _probe(inp: StrategyInput, result: Any, selection: Selection) -> None:
    """For the ``probe_budget`` hardest turns, F answers V(P) ⊕ D_{t-1} ⊕ q_t on the FULL context
    (as the teacher saw the turn); the answers join H on S~_t with the mean ω of H."""
    from . import miner

    teacher = inp.teacher
    assert teacher is not None

    def ask(messages: list[dict[str, Any]]) -> str:
        return split_teacher_result(resolve_sync(teacher([Message.from_dict(m) for m in messages])))[0]

    t0 = time.perf_counter()
    full = [([m.to_dict() for m in r.context()], r.answer) for r in inp.records]
    cases, selection.probe_calls = miner.probe_cases(result, full, ask, inp.services.config.mining.probe_budget)
    r_mean = float(np.mean([selection.weights[i] for i in selection.chosen]))
    compressed = inp.services.compressed
    selection.probes = [Example(compressed([Message.from_dict(m) for m in msgs]), a, r_mean) for msgs, a in cases]
    inp.timings["probes"] = time.perf_counter() - t0


STRATEGIES: dict[str, Strategy] = {"history-ft": history_ft, "random-ft": random_ft, "soma": soma}


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}: use {', '.join(sorted(STRATEGIES))}") from None
