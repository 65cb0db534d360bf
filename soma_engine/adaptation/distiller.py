"""Localized LoRA fine-tuning, Eq. 4 (Sec. 3.3, appendix C.2).

    L_FT(Θ_LoRA) = 1/|H| Σ_{(S_t, a_t^F) ∈ H} ω_t · NLL(a_t^F | G(S_t; Θ_LoRA)),   ω_t ∝ r_t      (Eq. 4)

What is computed, and the choices where the paper is silent:

- **Where LoRA sits.** On the attention and MLP projections (Sec. 3.3; C.2 says "attention
  projections", Sec. 3.3 "attention and MLP": we follow Sec. 3.3). The leaf names are detected
  per architecture (:func:`detect_target_modules`): Llama / Mistral / Qwen2 / Qwen3 / Gemma
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
  output embedding to the answer positions only (as miner.py does): the ``|V|``-wide logits
  of prompt positions are never formed, which on SmolLM2 (|V| = 49k) is most of the memory
  and a large part of the time of a full ``model(...).logits`` call. The answer rows' logits
  are formed ``ROW_CHUNK`` rows at a time and recomputed in the backward; the decoder layers
  are recomputed (gradient checkpointing) only when a batch's estimated activations exceed
  the budget given (``mining.activation_budget_mb``): it costs a second forward. Validation
  runs under ``no_grad`` in eval mode.
- **No silent no-ops.** :attr:`TrainResult.improved` is False when no validation beat step 0
  (the untrained adapter was kept); the caller records it as "no improvement".
- **Time budget.** ``time_budget_s`` re-plans the number of steps from their measured cost
  (soma_engine/budget.py).

The adapter is returned as PEFT tensors + a PEFT ``LoraConfig`` dict; ``AdapterStore.save``
writes them (safetensors + ``adapter_config.json`` + content hash, atomically), loadable by
``PeftModel.from_pretrained``.
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

from ..config import LoraConfig
from ..runtime.surrogate import SurrogateRuntime
from ..types import Message

log = logging.getLogger("soma.distiller")

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

Row = tuple[list[int], list[int]]  # (input ids, labels with -100 on the prompt)
# Answer rows whose |V|-wide logits exist at once in a training step (SmolLM2: 256 x 49k floats = 50 MB).
ROW_CHUNK = 256


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
# LoRA targets
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def tokenize_example(rt: SurrogateRuntime, ex: Example, max_len: int, max_answer: int | None = None) -> Row:
    """Input ids and labels (-100 on every prompt token) for one example.

    Prompt: the chat template of ``ex.messages`` with the generation prompt; answer:
    ``tok_G(answer) ⊕ EOS``. Long answers are cut to their FIRST ``min(max_answer, max_len // 2)``
    tokens (``lora.max_answer_tokens``; recorded ChatGPT answers often run past 500 tokens, and
    the opening of an answer is what the next turn's served answer is scored on); a cut answer
    loses its EOS, so the adapter never learns to stop where the cut fell. The prompt loses its
    oldest tokens to fit ``max_len``.
    """
    prompt = rt.encode(rt.render(ex.messages))
    eos = rt.tokenizer.eos_token_id
    answer = rt.encode(ex.answer) + ([eos] if eos is not None else [])
    cap = max_len // 2 if max_answer is None else min(max_answer, max_len // 2)
    answer = answer[: max(1, cap)]
    keep = max(0, max_len - len(answer))
    prompt = prompt[len(prompt) - keep :] if len(prompt) > keep else prompt
    if not prompt:  # the first answer token needs a position that predicts it
        prompt, answer = answer[:1], answer[1:]
    return prompt + answer, [-100] * len(prompt) + answer


def _collate(rows: Sequence[Row], pad_id: int | None, device: Any = "cpu") -> tuple[Any, Any, Any]:
    """Right-padded ``input_ids``, ``attention_mask``, ``labels`` (positions stay 0..n-1)."""
    import torch

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
# NLL on the answer positions only
# ---------------------------------------------------------------------------------------------


def _unwrap(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper (LoRA layers injected), or ``model``."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return model
    return model.get_base_model() if isinstance(model, PeftModel) else model


def answer_logits(model: Any, input_ids: Any, attention_mask: Any, b_idx: Any, p_idx: Any) -> Any:
    """Logits ``[R, |V|]`` at positions ``(b_idx, p_idx)`` only: the decoder's hidden states,
    then the output embedding (and the model's post-head transforms) on those rows."""
    from .miner import decoder_of, finalize_logits

    base = _unwrap(model)
    decoder = decoder_of(base)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is not None and head is not None:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
        return finalize_logits(base, head(hidden[b_idx, p_idx]))
    # Unusual wrappers: full logits, then gather (correct, not economical).
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[b_idx, p_idx]


def answer_token_nll(
    model: Any, input_ids: Any, attention_mask: Any, labels: Any, *, row_chunk: int = ROW_CHUNK
) -> Any:
    """Mean NLL of the labelled tokens of each sequence, ``[B]`` (Eq. 4's NLL(a_t^F | G(S_t))),
    with the LM head applied on the labelled positions only, ``row_chunk`` rows at a time
    (recomputed in the backward: miner.chunked_rows)."""
    import torch
    import torch.nn.functional as F

    from .miner import chunked_rows, decoder_of, finalize_logits

    shift = labels[:, 1:]
    b_idx, p_idx = (shift != -100).nonzero(as_tuple=True)
    targets = shift[b_idx, p_idx]
    base = _unwrap(model)
    decoder = decoder_of(base)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is not None and head is not None:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = (out[0] if isinstance(out, tuple) else out.last_hidden_state)[b_idx, p_idx]

        def ce(rows: Any, sl: slice) -> tuple[Any]:
            return (F.cross_entropy(finalize_logits(base, head(rows)).float(), targets[sl], reduction="none"),)

        (tok,) = chunked_rows(ce, hidden, row_chunk)
    else:
        logits = answer_logits(model, input_ids, attention_mask, b_idx, p_idx)
        tok = F.cross_entropy(logits.float(), targets, reduction="none")
    n = labels.shape[0]
    total = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, b_idx, tok)
    count = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, b_idx, torch.ones_like(tok))
    return total / count.clamp(min=1)


def sequence_nll(logits: Any, labels: Any) -> Any:
    """Reference: mean NLL of the labelled tokens of each sequence from FULL logits ``[B, n, V]``."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    counts = (shift_labels != -100).sum(1).clamp(min=1)
    return tok.sum(1) / counts


def weighted_nll(seq_nll: Any, weights: Any) -> Any:
    """Eq. 4 over a batch: mean of ω_t · NLL_t."""
    return (seq_nll * weights).mean()


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
        import torch

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
    activation_budget_mb: int = 512,
) -> TrainResult:
    """Train adapter ``name`` (fresh, or initialised from ``init_tensors``) on Eq. 4; return
    the best adapter's tensors. ``train`` may hold ``validation=True`` examples; ``val`` may
    be empty (module docstring: the validation rule). The adapter is removed from the
    runtime afterwards (the caller saves the tensors and loads them by reference).

    ``time_budget_s``: the steps are re-planned after every step from the measured cost of the
    steps and of a validation so the run fits (budget.plan_lora; at least one step); ``steps``
    in the result is what ran, ``planned_steps`` the last plan. ``max_seq_len`` overrides
    ``cfg.max_seq_len`` (the budget's CPU cap). Batches whose estimated decoder activations
    exceed ``activation_budget_mb`` recompute the decoder layers in the backward."""
    import torch
    from peft import get_peft_model_state_dict

    from .budget import plan_lora
    from .miner import activation_bytes, layer_checkpointing

    started = time.perf_counter()
    fit, val_ex, val_source = split_validation(train, val, cfg.seed)
    if not fit:
        raise ValueError("no training examples")
    weights = normalized_weights(fit)
    seq_len = max_seq_len or cfg.max_seq_len
    rows = [tokenize_example(rt, e, seq_len, cfg.max_answer_tokens) for e in fit]
    val_rows = [tokenize_example(rt, e, seq_len, cfg.max_answer_tokens) for e in val_ex]
    pad = rt.tokenizer.pad_token_id
    schedule = _batch_schedule(len(rows), cfg.batch_size, cfg.steps, cfg.seed)
    # Collated on this thread; the worker only moves tensors and computes.
    batches = [(_collate([rows[i] for i in idx], pad), torch.tensor([weights[i] for i in idx])) for idx in schedule]
    val_batches = [
        _collate(val_rows[i : i + 2 * cfg.batch_size], pad) for i in range(0, len(val_rows), 2 * cfg.batch_size)
    ]
    state: dict[str, Any] = {}
    timings = {"setup": 0.0, "steps": 0.0, "validation": 0.0}

    def setup(r: SurrogateRuntime) -> dict[str, Any]:
        lora_dict = lora_config_dict(cfg, r.base_model)
        rng = _PrivateRng(cfg.seed, r.device == "cuda")
        r.install_adapter(name, lora_dict, init_tensors)
        if init_tensors is None:
            # LoRA's A factors are drawn from the private stream, layer by layer in module
            # order, whatever else install_adapter initialised first (PEFT's placeholder).
            with rng.active():
                for module in r.model.modules():
                    if name in getattr(module, "lora_A", {}):
                        module.reset_lora_parameters(name, True)
        r.model.set_adapter(name)
        params = [p for n, p in r.model.named_parameters() if f".{name}." in n]
        if not params:
            raise RuntimeError(f"adapter {name} has no parameters: check lora.target_modules")
        state.update(
            rng=rng,
            params=params,
            opt=torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0),
        )
        # Cosine decay over the planned steps (re-planned under a time budget), as CosineAnnealingLR.
        state["sched"] = torch.optim.lr_scheduler.LambdaLR(
            state["opt"], lambda i: 0.5 * (1.0 + math.cos(math.pi * min(i, plan["steps"]) / max(plan["steps"], 1)))
        )
        tokens = max(int(ids.numel()) for (ids, _, _), _ in batches)
        state["recompute"] = activation_bytes(r.base_model, tokens) > activation_budget_mb * 2**20
        return lora_dict

    def step(r: SurrogateRuntime, batch: tuple[tuple[Any, Any, Any], Any]) -> tuple[float, float]:
        (ids, mask, labels), w = batch
        dev = r.device
        model = r.model
        model.set_adapter(name)
        for p in state["params"]:  # another adapter's install may have frozen them
            p.requires_grad_(True)
        model.train()
        try:
            with state["rng"].active(), layer_checkpointing(_unwrap(model), state["recompute"]):  # dropout masks
                seq = answer_token_nll(model, ids.to(dev), mask.to(dev), labels.to(dev))
                loss = weighted_nll(seq, w.to(dev, seq.dtype))
            state["opt"].zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(state["params"], cfg.grad_clip)
            state["opt"].step()
            state["sched"].step()
        finally:
            model.eval()
        return float(loss.detach()), float(norm)

    def validate(r: SurrogateRuntime) -> float:
        model = r.model
        model.set_adapter(name)
        model.eval()
        total = 0.0
        with torch.no_grad():
            for ids, mask, labels in val_batches:
                dev = r.device
                total += float(answer_token_nll(model, ids.to(dev), mask.to(dev), labels.to(dev)).sum())
        return total / len(val_rows)

    def snapshot(r: SurrogateRuntime) -> dict[str, Any]:
        sd = get_peft_model_state_dict(r.model, adapter_name=name)
        return {k: v.detach().clone().cpu() for k, v in sd.items()}

    def timed(key: str, fn: Callable[[SurrogateRuntime], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return rt.run(fn)
        finally:
            timings[key] += time.perf_counter() - t0

    plan = {"steps": cfg.steps}
    eval_every = max(1, min(cfg.eval_every, cfg.steps // 3))
    history: list[dict[str, float]] = []
    steps_done, best_step, stopped = 0, 0, False
    try:
        lora_dict = timed("setup", setup)
        best = timed("validation", validate)
        val_s = timings["validation"]
        best_tensors = timed("validation", snapshot)
        initial = best
        history.append({"step": 0, "val_nll": best})
        bad = 0
        for s, batch in enumerate(batches, start=1):
            if s > plan["steps"]:
                break
            loss, norm = timed("steps", lambda r, b=batch: step(r, b))
            steps_done = s
            if time_budget_s is not None:
                left = time_budget_s - (time.perf_counter() - started)
                plan["steps"] = plan_lora(timings["steps"] / s, val_s, left, cfg.steps, eval_every, done=s)
                eval_every = max(1, min(cfg.eval_every, plan["steps"] // 3))
            if progress:
                progress(s, plan["steps"])
            if s % eval_every and s != plan["steps"]:
                history.append({"step": s, "train_loss": loss, "grad_norm": norm})
                continue
            val_nll = timed("validation", validate)
            history.append({"step": s, "train_loss": loss, "grad_norm": norm, "val_nll": val_nll})
            if val_nll < best - 1e-4:
                best, bad, best_step = val_nll, 0, s
                best_tensors = timed("validation", snapshot)
            else:
                bad += 1
                if bad >= cfg.early_stop_patience and s != plan["steps"]:
                    stopped = True
                    log.debug("early stop at step %d (best val NLL %.4f at step %d)", s, best, best_step)
                    break
    finally:
        rt.run(lambda r: r.remove_adapter(name))
    return TrainResult(
        tensors=best_tensors,
        lora_config=lora_dict,
        steps=steps_done,
        best_val_nll=best,
        history=history,
        seconds=time.perf_counter() - started,
        best_step=best_step,
        stopped_early=stopped,
        n_train=len(fit),
        n_val=len(val_ex),
        val_source=val_source,
        timings=timings,
        initial_val_nll=initial,
        planned_steps=plan["steps"],
        checkpointing=bool(state.get("recompute")),
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
    import torch

    def run(r: SurrogateRuntime) -> list[float]:
        rows = [tokenize_example(r, e, r.context_length, max_answer) for e in examples]
        out: list[float] = []
        with r.use(adapter), torch.no_grad():
            model = r.model
            model.eval()
            for i in range(0, len(rows), batch_size):
                ids, mask, labels = _collate(rows[i : i + batch_size], r.tokenizer.pad_token_id, r.device)
                out += answer_token_nll(model, ids, mask, labels).tolist()
        return out

    return rt.run(run)
