"""Localized LoRA fine-tuning, Eq. 4 (Sec. 3.3, appendix C.2).

    L_FT(Θ_LoRA) = 1/|H| Σ_{(S_t, a_t^F) ∈ H} ω_t · NLL(a_t^F | G(S_t; Θ_LoRA)),   ω_t ∝ r_t      (Eq. 4)

What is computed, and the choices where the paper is silent:

- **Where LoRA sits.** On the attention and MLP projections (Sec. 3.3; C.2 says "attention
  projections", Sec. 3.3 "attention and MLP": we follow Sec. 3.3). The leaf names are detected
  per architecture (``lora_targets.detect_target_modules``): Llama / Mistral / Qwen2 / Qwen3 / Gemma
  (``q/k/v/o_proj``, ``gate/up/down_proj``), Phi-3 (fused ``qkv_proj``, ``gate_up_proj``),
  Phi-2, GPT-2 (``Conv1D`` ``c_attn``, ``c_proj``, ``c_fc``, hence ``fan_in_fan_out``) and
  GPT-NeoX / Falcon. ``lora.target_modules`` overrides the detection. Base weights are frozen.
- **NLL(a | G(S))** is the mean token NLL of the teacher's answer ``tok_G(a_t^F) ⊕ EOS`` given
  the prompt ``chat_template(S_t, add_generation_prompt=True)``: labels are -100 on every
  prompt token (:func:`tokenize_example`). The EOS teaches the adapter where the teacher's
  answers end. S_t is whatever the caller passes: the engine passes S~_t, the compressed
  context it will serve from (``jobs.plan_training``).
- **ω_t ∝ r_t**, normalised to mean 1 over the training examples, so Eq. 4's 1/|H| Σ ω_t NLL_t
  keeps the scale of a plain mean and History-FT (uniform ω) is the special case ω_t = 1.
  A minibatch estimates Eq. 4 by mean_{t ∈ batch} ω_t NLL_t (unbiased under uniform batches).
  ``H`` and the ``r_t`` come from ``jobs.plan_training`` (strategy ``soma``: the highest-r_t
  turns; miner.py explains r_t = exp(-min_P L_sem_exp)).
- **Early stopping on a validation split** (C.2: "triggered by validation divergence").
  The validation set is, in order of preference: the ``val`` examples given, plus every
  training example flagged ``validation=True`` (``plan_training`` flags the turns a strategy
  did not select, i.e. real held-out turns of the same session); otherwise, with ≥ 3
  training examples, ONE example is held out of training: the lowest-ω one (it weighs least
  in Eq. 4, so the objective loses least; ties broken by the seeded RNG). With fewer than 3
  examples no example can be spared (one would be left to fit), so the training examples
  themselves are validated, in eval mode: early stopping then detects a plateau of the
  training fit, not a generalisation gap — say so when reading ``val_source == "train"``.
  Validation runs every ``lora.eval_every`` steps (and at least 3 times per run), not every
  step; the best adapter state seen (step 0 included: a run that never improves returns the
  initial adapter) is the one returned; ``early_stop_patience`` validations without
  improvement stop the run.
- **Regularisation towards the base** (``lora.kl_weight``, off by default; not in the paper):
  each step adds ``kl_weight`` × the mean over the batch's sequences of the mean over their
  answer positions of KL(p_base || p_Θ), p_base from a ``no_grad`` forward with the adapter
  disabled (``distill_loss.base_answer_rows``). The validation NLL stays the plain NLL.
- **Optimiser.** AdamW (no weight decay on the LoRA factors), cosine decay over
  ``lora.steps``, gradient-norm clipping at ``lora.grad_clip``. Batches cycle through seeded
  shuffles of the training set; a set no larger than ``batch_size`` is the whole batch.
- **Seeded and reproducible.** LoRA's initialisation and dropout draw from a private torch
  RNG stream seeded with ``lora.seed`` (forked from, and never advancing, the global one
  that sampling in live turns uses), and batch order from ``random.Random(seed)``, so two
  runs with the same seed on the same device and thread count give identical tensors,
  however live turns interleave.
- **Cheap steps.** Every optimiser step is one task on the model worker (``rt.run``), so live
  turns are served between steps. A step runs the decoder for hidden states and applies the
  output embedding to the answer positions only (``answer_rows.py``, as mining does): the
  ``|V|``-wide logits of prompt positions are never formed, which on SmolLM2 (|V| = 49k) is most
  of the memory and a large part of the time of a full ``model(...).logits`` call. The answer
  rows' logits are formed ``distill_loss.ROW_CHUNK`` rows at a time and recomputed in the
  backward; the decoder layers
  are recomputed (gradient checkpointing) only when a batch's estimated activations exceed
  the budget given (``mining.activation_budget_mb``): it costs a second forward. Validation
  runs under ``no_grad`` in eval mode.
- **No silent no-ops.** :attr:`TrainResult.improved` is False when no validation beat step 0
  (the untrained adapter was kept); the caller records it as "no improvement".
- **Time budget.** ``time_budget_s`` re-plans the number of steps from their measured cost
  (``budget.py``).

The adapter is returned as PEFT tensors + a PEFT ``LoraConfig`` dict; ``AdapterStore.save``
writes them (safetensors + ``adapter_config.json`` + content hash, atomically), loadable by
``PeftModel.from_pretrained``.

Where the parts live, as in PEFT's tuners: ``lora_targets.py`` (the adapter's config: where LoRA
sits), ``distill_loss.py`` (Eq. 4's terms as pure functions), this module (examples, the
validation rule and the training loop on the runtime).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import LoraConfig
from ..runtime.surrogate import SurrogateRuntime
from ..types import Message
from .answer_rows import activation_budget, activation_bytes, layer_checkpointing
from .budget import plan_lora
from .context_fit import fit_prompt, kept_ends
from .distill_loss import answer_token_nll, answer_token_nll_kl, base_answer_rows, unwrap_peft, weighted_nll
from .lora_targets import lora_config_dict

log = logging.getLogger("soma.distiller")

Row = tuple[list[int], list[int]]  # (input ids, labels with -100 on the prompt)


@dataclass
class Example:
    """One (S_t, a_t^F) pair with its weight ω_t. ``validation=True``: held out of training
    and used for early stopping only (see the module docstring)."""

    messages: list[Message]
    answer: str
    weight: float = 1.0
    validation: bool = False


@dataclass
class TrainResult:
    tensors: dict[str, Any]  # PEFT state dict of the best adapter (CPU)
    lora_config: dict[str, Any]  # PEFT LoraConfig fields
    steps: int  # optimizer steps done
    best_val_nll: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    best_step: int = 0
    stopped_early: bool = False
    n_train: int = 0
    n_val: int = 0
    val_source: str = ""  # "given" (val / flagged examples), "held-out" (one of train), "train"
    timings: dict[str, float] = field(default_factory=dict)
    initial_val_nll: float = math.nan  # validation NLL of the adapter before training (step 0)
    planned_steps: int = 0  # the steps the (time-budgeted) plan allowed at the end
    checkpointing: bool = False  # decoder layers recomputed in the backward

    @property
    def improved(self) -> bool:
        """Whether training beat the untrained adapter on validation at all: False when the
        best checkpoint is step 0, whose LoRA B factors are all zero for a fresh adapter (the
        base model itself). Such a result is "no improvement" and must never be served as an
        adapted surrogate (jobs.run_adaptation)."""
        return self.best_step > 0 and self.best_val_nll < self.initial_val_nll


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def tokenize_example(rt: SurrogateRuntime, ex: Example, max_len: int, max_answer: int | None = None) -> Row:
    """Input ids and labels (-100 on every prompt token) for one example.

    Prompt: the chat template of ``ex.messages`` with the generation prompt; answer:
    ``tok_G(answer) ⊕ EOS``. Long answers are cut to their FIRST ``min(max_answer, max_len // 2)``
    tokens (``lora.max_answer_tokens``; recorded ChatGPT answers often run past 500 tokens, and
    the opening of an answer is what the next turn's served answer is scored on); a cut answer
    loses its EOS, so the adapter never learns to stop where the cut fell. The prompt is cut to
    fit ``max_len`` by ``context_fit.fit_prompt``: its oldest tokens go, its system message and
    newest message stay when they fit together.
    """
    prompt = rt.encode(rt.render(ex.messages))
    eos = rt.tokenizer.eos_token_id
    answer = rt.encode(ex.answer) + ([eos] if eos is not None else [])
    cap = max_len // 2 if max_answer is None else min(max_answer, max_len // 2)
    answer = answer[: max(1, cap)]
    room = max(0, max_len - len(answer))
    if len(prompt) > room:
        head, tail = kept_ends(prompt, ex.messages, lambda ms: rt.encode(rt.render(ms, generation_prompt=False)))
        prompt = fit_prompt(prompt, head, tail, room)
    if not prompt:  # the first answer token needs a position that predicts it
        prompt, answer = answer[:1], answer[1:]
    return prompt + answer, [-100] * len(prompt) + answer


def collate(rows: Sequence[Row], pad_id: int | None, device: Any = "cpu") -> tuple[Any, Any, Any]:
    """Right-padded ``input_ids``, ``attention_mask``, ``labels`` (positions stay 0..n-1)."""
    pad = 0 if pad_id is None else pad_id
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def normalized_weights(examples: Sequence[Example]) -> list[float]:
    """ω_t ∝ weight, scaled to mean 1 (Eq. 4). Negative, non-finite or all-zero weights
    fall back to uniform (logged)."""
    ws = [float(e.weight) for e in examples]
    if not ws:
        return []
    if any(not math.isfinite(w) or w < 0 for w in ws) or sum(ws) <= 0:
        log.warning("invalid example weights %s: using uniform weights", ws)
        return [1.0] * len(ws)
    mean = sum(ws) / len(ws)
    return [w / mean for w in ws]


def split_validation(
    train: Sequence[Example], val: Sequence[Example] | None, seed: int
) -> tuple[list[Example], list[Example], str]:
    """``(fit, validation, source)`` by the rule of the module docstring."""
    fit = [e for e in train if not e.validation]
    given = [*(val or []), *(e for e in train if e.validation)]
    if given:
        return fit, given, "given"
    if len(fit) >= 3:
        lowest = min(e.weight for e in fit)
        ties = [i for i, e in enumerate(fit) if math.isclose(e.weight, lowest, rel_tol=1e-9, abs_tol=1e-12)]
        i = random.Random(seed).choice(ties)
        return fit[:i] + fit[i + 1 :], [fit[i]], "held-out"
    return fit, list(fit), "train"


def training_budget(n: int, fraction: float) -> int:
    """|H| for the ``soma`` and ``random-ft`` strategies: ``ceil(fraction · n)``, at least
    ``min(n, 2)`` (one turn is not a training set), at most ``n``."""
    if n <= 0:
        return 0
    return max(min(n, 2), min(n, math.ceil(fraction * n - 1e-9)))


def _batch_schedule(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Indices of each step's batch: consecutive slices of seeded shuffles (epochs)."""
    if n <= batch_size:
        return [list(range(n)) for _ in range(steps)]
    rng = random.Random(seed)
    stream: list[int] = []
    out = []
    for _ in range(steps):
        while len(stream) < batch_size:
            epoch = list(range(n))
            rng.shuffle(epoch)
            stream += epoch
        out.append(stream[:batch_size])
        stream = stream[batch_size:]
    return out


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


class _PrivateRng:
    """A torch RNG stream of its own: LoRA init and dropout draw from it inside :meth:`active`,
    which forks (and restores) the global generator, so live turns sampling in between
    neither perturb nor are perturbed by a training run."""

    def __init__(self, seed: int, cuda: bool) -> None:
        self.seed = seed
        self.cuda = cuda
        self.cpu_state: Any = None
        self.cuda_state: Any = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        devices = [torch.cuda.current_device()] if self.cuda else []
        with torch.random.fork_rng(devices=devices):
            if self.cpu_state is None:
                torch.manual_seed(self.seed)
            else:
                torch.set_rng_state(self.cpu_state)
                if self.cuda:
                    torch.cuda.set_rng_state(self.cuda_state)
            try:
                yield
            finally:
                self.cpu_state = torch.get_rng_state()
                if self.cuda:
                    self.cuda_state = torch.cuda.get_rng_state()


@dataclass
class _TrainingData:
    """The examples of one run, tokenised and collated on the caller's thread (the worker only
    moves tensors and computes): a batch per planned step and the validation batches."""

    fit: list[Example]
    val: list[Example]
    val_source: str
    batches: list[tuple[tuple[Any, Any, Any], Any]]  # ((ids, mask, labels), ω_t) per step
    val_batches: list[tuple[Any, Any, Any]]


def _training_data(
    rt: SurrogateRuntime, train: list[Example], val: list[Example] | None, cfg: LoraConfig, seq_len: int
) -> _TrainingData:
    fit, val_ex, val_source = split_validation(train, val, cfg.seed)
    if not fit:
        raise ValueError("no training examples")
    weights = normalized_weights(fit)
    rows = [tokenize_example(rt, e, seq_len, cfg.max_answer_tokens) for e in fit]
    val_rows = [tokenize_example(rt, e, seq_len, cfg.max_answer_tokens) for e in val_ex]
    pad = rt.tokenizer.pad_token_id
    schedule = _batch_schedule(len(rows), cfg.batch_size, cfg.steps, cfg.seed)
    batches = [(collate([rows[i] for i in idx], pad), torch.tensor([weights[i] for i in idx])) for idx in schedule]
    size = 2 * cfg.batch_size
    val_batches = [collate(val_rows[i : i + size], pad) for i in range(0, len(val_rows), size)]
    return _TrainingData(fit, val_ex, val_source, batches, val_batches)


class _AdapterTraining:
    """One adapter's optimisation of Eq. 4 on the runtime: every method runs on the model worker
    through :meth:`timed` (``rt.run``), so live turns are served between them."""

    def __init__(
        self,
        rt: SurrogateRuntime,
        name: str,
        cfg: LoraConfig,
        data: _TrainingData,
        init_tensors: dict[str, Any] | None,
        activation_budget_mb: int | None,
    ) -> None:
        self.rt, self.name, self.cfg, self.data = rt, name, cfg, data
        self.init_tensors = init_tensors
        self.activation_budget_mb = activation_budget_mb
        self.planned_steps = cfg.steps  # re-planned under a time budget
        self.recompute = False
        self.timings = {"setup": 0.0, "steps": 0.0, "validation": 0.0}

    def timed(self, key: str, fn: Callable[[SurrogateRuntime], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return self.rt.run(fn)
        finally:
            self.timings[key] += time.perf_counter() - t0

    def setup(self, r: SurrogateRuntime) -> dict[str, Any]:
        """Install the adapter (LoRA A factors from the private RNG), its optimiser and
        schedule; the PEFT ``LoraConfig`` dict."""
        name, cfg = self.name, self.cfg
        lora_dict = lora_config_dict(cfg, r.base_model)
        self.rng = _PrivateRng(cfg.seed, r.device == "cuda")
        r.install_adapter(name, lora_dict, self.init_tensors)
        if self.init_tensors is None:
            # LoRA's A factors are drawn from the private stream, layer by layer in module
            # order, whatever else install_adapter initialised first (PEFT's placeholder).
            with self.rng.active():
                for module in r.model.modules():
                    if name in getattr(module, "lora_A", {}):
                        module.reset_lora_parameters(name, True)
        r.model.set_adapter(name)
        self.params = [p for n, p in r.model.named_parameters() if f".{name}." in n]
        if not self.params:
            raise RuntimeError(f"adapter {name} has no parameters: check lora.target_modules")
        # One fused kernel for the ~400 LoRA tensors on a GPU, where each launch costs more than its math.
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=0.0, fused=r.device == "cuda" or None)
        # Cosine decay over the planned steps (re-planned under a time budget), as CosineAnnealingLR.
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt,
            lambda i: 0.5 * (1.0 + math.cos(math.pi * min(i, self.planned_steps) / max(self.planned_steps, 1))),
        )
        tokens = max(int(ids.numel()) for (ids, _, _), _ in self.data.batches)
        budget = activation_budget(self.activation_budget_mb, r.base_model)
        self.recompute = activation_bytes(r.base_model, tokens) > budget
        return lora_dict

    def step(self, r: SurrogateRuntime, batch: tuple[tuple[Any, Any, Any], Any]) -> tuple[float, float]:
        """One optimiser step on Eq. 4's weighted NLL, plus ``kl_weight`` × the KL to the base
        model when that is on; ``(loss, gradient norm)``."""
        (ids, mask, labels), w = batch
        dev, model = r.device, r.model
        ids, mask, labels = ids.to(dev), mask.to(dev), labels.to(dev)
        model.set_adapter(self.name)
        kl_weight = self.cfg.kl_weight
        # The base's forward (no grad, adapter off) runs only when the KL term is on.
        base_rows = base_answer_rows(model, ids, mask, labels) if kl_weight > 0 else None
        for p in self.params:  # another adapter's install may have frozen them
            p.requires_grad_(True)
        model.train()
        try:
            with self.rng.active(), layer_checkpointing(unwrap_peft(model), self.recompute):  # dropout masks
                if base_rows is None:
                    seq = answer_token_nll(model, ids, mask, labels)
                    loss = weighted_nll(seq, w.to(dev, seq.dtype))
                else:
                    # KL(p_base || p_Θ), forward KL: the base is the target distribution, as the one-hot
                    # answer is for the NLL, so the adapter is charged for dropping what the base finds likely.
                    seq, kl = answer_token_nll_kl(model, ids, mask, labels, base_rows)
                    loss = weighted_nll(seq, w.to(dev, seq.dtype)) + kl_weight * kl.mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
            self.opt.step()
            self.sched.step()
        finally:
            model.eval()
        return float(loss.detach()), float(norm)

    def validate(self, r: SurrogateRuntime) -> float:
        """Mean answer NLL over the validation examples, in eval mode."""
        model = r.model
        model.set_adapter(self.name)
        model.eval()
        total = 0.0
        with torch.no_grad():
            for ids, mask, labels in self.data.val_batches:
                dev = r.device
                total += float(answer_token_nll(model, ids.to(dev), mask.to(dev), labels.to(dev)).sum())
        return total / len(self.data.val)

    def snapshot(self, r: SurrogateRuntime) -> dict[str, Any]:
        """The adapter's PEFT state dict, copied to the CPU."""
        from peft import get_peft_model_state_dict

        sd = get_peft_model_state_dict(r.model, adapter_name=self.name)
        return {k: v.detach().clone().cpu() for k, v in sd.items()}


@dataclass
class _Outcome:
    """What the optimisation loop found: the best validation NLL, its step and tensors."""

    best: float
    best_tensors: dict[str, Any]
    initial: float
    best_step: int = 0
    steps_done: int = 0
    stopped: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def _optimize(
    run: _AdapterTraining,
    started: float,
    time_budget_s: float | None,
    progress: Callable[[int, int], None] | None,
) -> _Outcome:
    """Steps with validation every ``eval_every`` steps, keeping the best adapter state (step 0
    included) and stopping after ``early_stop_patience`` validations without improvement."""
    cfg = run.cfg
    eval_every = max(1, min(cfg.eval_every, cfg.steps // 3))
    best = run.timed("validation", run.validate)
    val_s = run.timings["validation"]
    out = _Outcome(best=best, best_tensors=run.timed("validation", run.snapshot), initial=best)
    out.history.append({"step": 0, "val_nll": best})
    bad = 0
    for s, batch in enumerate(run.data.batches, start=1):
        if s > run.planned_steps:
            break
        loss, norm = run.timed("steps", lambda r, b=batch: run.step(r, b))
        out.steps_done = s
        if time_budget_s is not None:
            left = time_budget_s - (time.perf_counter() - started)
            run.planned_steps = plan_lora(run.timings["steps"] / s, val_s, left, cfg.steps, eval_every, done=s)
            eval_every = max(1, min(cfg.eval_every, run.planned_steps // 3))
        if progress:
            progress(s, run.planned_steps)
        if s % eval_every and s != run.planned_steps:
            out.history.append({"step": s, "train_loss": loss, "grad_norm": norm})
            continue
        val_nll = run.timed("validation", run.validate)
        out.history.append({"step": s, "train_loss": loss, "grad_norm": norm, "val_nll": val_nll})
        if val_nll < out.best - 1e-4:
            out.best, bad, out.best_step = val_nll, 0, s
            out.best_tensors = run.timed("validation", run.snapshot)
        else:
            bad += 1
            if bad >= cfg.early_stop_patience and s != run.planned_steps:
                out.stopped = True
                log.debug("early stop at step %d (best val NLL %.4f at step %d)", s, out.best, out.best_step)
                break
    return out


def train_adapter(
    rt: SurrogateRuntime,
    train: list[Example],
    val: list[Example] | None,
    cfg: LoraConfig,
    *,
    name: str,
    init_tensors: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    time_budget_s: float | None = None,
    max_seq_len: int | None = None,
    activation_budget_mb: int | None = None,
) -> TrainResult:
    """Train adapter ``name`` (fresh, or initialised from ``init_tensors``) on Eq. 4; return
    the best adapter's tensors. ``train`` may hold ``validation=True`` examples; ``val`` may
    be empty (module docstring: the validation rule). The adapter is removed from the
    runtime afterwards (the caller saves the tensors and loads them by reference).

    ``time_budget_s``: the steps are re-planned after every step from the measured cost of the
    steps and of a validation so the run fits (budget.plan_lora; at least one step); ``steps``
    in the result is what ran, ``planned_steps`` the last plan. ``max_seq_len`` overrides
    ``cfg.max_seq_len`` (the budget's CPU cap). Batches whose estimated decoder activations
    exceed ``activation_budget_mb`` (None: answer_rows.activation_budget) recompute the decoder layers."""
    started = time.perf_counter()
    data = _training_data(rt, train, val, cfg, max_seq_len or cfg.max_seq_len)
    run = _AdapterTraining(rt, name, cfg, data, init_tensors, activation_budget_mb)
    try:
        lora_dict = run.timed("setup", run.setup)
        out = _optimize(run, started, time_budget_s, progress)
    finally:
        rt.run(lambda r: r.remove_adapter(name))
    return TrainResult(
        tensors=out.best_tensors,
        lora_config=lora_dict,
        steps=out.steps_done,
        best_val_nll=out.best,
        history=out.history,
        seconds=time.perf_counter() - started,
        best_step=out.best_step,
        stopped_early=out.stopped,
        n_train=len(data.fit),
        n_val=len(data.val),
        val_source=data.val_source,
        timings=run.timings,
        initial_val_nll=out.initial,
        planned_steps=run.planned_steps,
        checkpointing=run.recompute,
    )


def answer_nll(
    rt: SurrogateRuntime,
    examples: list[Example],
    adapter: Any = None,
    batch_size: int = 8,
    max_answer: int | None = None,
) -> list[float]:
    """Per-example mean NLL of the teacher answers (their first ``max_answer`` tokens, if given)
    under the base model (``adapter=None``) or an adapter (an ``AdapterRef``): "closer to the
    teacher" in likelihood (tests, benchmarks)."""

    def run(r: SurrogateRuntime) -> list[float]:
        rows = [tokenize_example(r, e, r.context_length, max_answer) for e in examples]
        out: list[float] = []
        with r.use(adapter), torch.no_grad():
            model = r.model
            model.eval()
            for i in range(0, len(rows), batch_size):
                ids, mask, labels = collate(rows[i : i + batch_size], r.tokenizer.pad_token_id, r.device)
                out += answer_token_nll(model, ids, mask, labels).tolist()
        return out

    return rt.run(run)
