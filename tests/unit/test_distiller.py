"""Localized LoRA distillation (soma_engine.adaptation.distiller, Eq. 4): LoRA targets per architecture,
labels masking, the answer-positions-only NLL against full logits and a naive loop, weights,
validation split and early stopping, reproducibility, worker interleaving, and the adapter's
round trip through AdapterStore and ``PeftModel.from_pretrained``."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
import torch

from soma_engine.adaptation.distill_loss import answer_token_nll, sequence_nll, weighted_nll
from soma_engine.adaptation.distiller import (
    Example,
    answer_nll,
    collate,
    normalized_weights,
    split_validation,
    tokenize_example,
    train_adapter,
    training_budget,
)
from soma_engine.adaptation.lora_targets import detect_target_modules, lora_config_dict
from soma_engine.adapters import AdapterStore
from soma_engine.config import LoraConfig
from soma_engine.runtime.surrogate import SurrogateRuntime
from soma_engine.testing import CHAT_TEMPLATE, build_tiny_model, build_tokenizer
from soma_engine.types import Message

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and two OpenMP threads on a busy 2-core host
    can be 50x slower (spinning barriers): use one for this module, then restore."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _tiny_arch(arch: str):
    """A tiny randomly initialised model of ``arch`` and the tiny BPE tokenizer."""
    from transformers import (
        AutoModelForCausalLM,
        GemmaConfig,
        GPT2Config,
        LlamaConfig,
        Phi3Config,
        Qwen2Config,
        Qwen3Config,
    )

    tok = build_tokenizer()
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    common = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        **ids,
    )
    if arch == "gpt2":
        tok.chat_template = CHAT_TEMPLATE  # GPT-2 tokenizers have none
        config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=1024, **ids)
    elif arch == "gemma":
        config = GemmaConfig(head_dim=16, **common)
    elif arch == "qwen3":
        config = Qwen3Config(head_dim=16, **common)
    else:
        config = {"llama": LlamaConfig, "qwen2": Qwen2Config, "phi3": Phi3Config}[arch](**common)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config), tok


def _runtime(model, tok) -> SurrogateRuntime:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return SurrogateRuntime(None, model=model, tokenizer=tok, device="cpu")


@pytest.fixture
def tiny_rt():
    rt = _runtime(*build_tiny_model())
    yield rt
    rt.close()


def _examples(n: int = 3, weights: list[float] | None = None) -> list[Example]:
    queries = ["Plan a trip to Lisbon.", "Review this Python function.", "How do I solve x?", "Hello there!"]
    return [
        Example(
            [Message("system", "You are a pirate."), Message("user", queries[i % len(queries)])],
            f"Arr, {queries[i % len(queries)].split()[1]} matey! Hoist the sails!",
            (weights or [1.0] * n)[i],
        )
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------------------
# LoRA targets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "targets", "fan_in_fan_out"),
    [
        ("llama", LLAMA_TARGETS, False),
        ("qwen2", LLAMA_TARGETS, False),
        ("qwen3", LLAMA_TARGETS, False),
        ("gemma", LLAMA_TARGETS, False),
        ("phi3", ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], False),
        ("gpt2", ["c_attn", "c_proj", "c_fc"], True),
    ],
)
def test_targets_detected_and_trainable_per_architecture(arch, targets, fan_in_fan_out):
    model, tok = _tiny_arch(arch)
    assert detect_target_modules(model) == targets
    cfg = LoraConfig(steps=2, batch_size=2, lr=1e-2, dropout=0.0, eval_every=1)
    lora = lora_config_dict(cfg, model)
    assert lora["target_modules"] == sorted(targets) and lora["fan_in_fan_out"] is fan_in_fan_out
    rt = _runtime(model, tok)
    try:
        # The answer-positions-only NLL equals the full-logits one, with a LoRA in place.
        rows = [tokenize_example(rt, e, 256) for e in _examples(2)]
        ids, mask, labels = collate(rows, tok.pad_token_id)
        with torch.no_grad():
            fast = answer_token_nll(model, ids, mask, labels)
            full = sequence_nll(model(input_ids=ids, attention_mask=mask).logits, labels)
        torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
        res = train_adapter(rt, _examples(2), [], cfg, name="t")
        assert res.steps == 2 and math.isfinite(res.best_val_nll)
        trained = {k.split(".")[-3] for k in res.tensors if "lora_B" in k}
        assert trained == set(targets)
        assert any(v.abs().sum() > 0 for k, v in res.tensors.items() if "lora_B" in k)  # it learned something
        assert rt.loaded_adapters() == [] and "t" not in rt.model.peft_config  # removed after training
    finally:
        rt.close()


def test_target_override_and_undetectable_model():
    model, _ = build_tiny_model()
    assert lora_config_dict(LoraConfig(target_modules=["v_proj", "q_proj"]), model)["target_modules"] == [
        "q_proj",
        "v_proj",
    ]
    with pytest.raises(ValueError, match="lora.target_modules"):
        detect_target_modules(torch.nn.Sequential(torch.nn.Embedding(4, 4), torch.nn.Linear(4, 4)))


# ---------------------------------------------------------------------------------------------
# Data and Eq. 4
# ---------------------------------------------------------------------------------------------


def test_labels_are_masked_on_every_prompt_token(tiny_rt):
    rt = tiny_rt
    ex = _examples(1)[0]
    ids, labels = tokenize_example(rt, ex, 1024)
    prompt = rt.encode(rt.render(ex.messages))
    answer = rt.encode(ex.answer)
    assert ids == prompt + answer + [rt.tokenizer.eos_token_id]
    assert labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt) :] == answer + [rt.tokenizer.eos_token_id]
    # Cut to fit: the answer keeps at most half, the prompt loses its OLDEST tokens.
    long = Example([Message("user", "word " * 300)], "x " * 200)
    ids, labels = tokenize_example(rt, long, 64)
    n_answer = sum(y != -100 for y in labels)
    assert len(ids) == 64 and n_answer == 32
    assert all(y == -100 for y in labels[: 64 - n_answer]) and labels[64 - n_answer :] == ids[64 - n_answer :]
    full_prompt = rt.encode(rt.render(long.messages))
    assert ids[: 64 - n_answer] == full_prompt[-(64 - n_answer) :]


def test_weighted_nll_matches_naive_loop(tiny_rt):
    rt = tiny_rt
    model = rt.model
    with torch.no_grad():  # sharpen the random model so the NLLs differ per example
        model.model.norm.weight.mul_(5.0)
    exs = _examples(3, weights=[0.2, 1.0, 3.0])
    rows = [tokenize_example(rt, e, 1024) for e in exs]
    w = normalized_weights(exs)
    assert sum(w) / len(w) == pytest.approx(1.0)
    naive_nll = []
    with torch.no_grad():
        for ids, labels in rows:  # one sequence at a time, no padding, plain loops
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
            terms = [-float(logp[p - 1, labels[p]]) for p in range(1, len(ids)) if labels[p] != -100]
            naive_nll.append(sum(terms) / len(terms))
        naive = sum(wi * li for wi, li in zip(w, naive_nll, strict=True)) / len(exs)
        ids, mask, labels = collate(rows, rt.tokenizer.pad_token_id)
        per_seq = answer_token_nll(model, ids, mask, labels)
        got = weighted_nll(per_seq, torch.tensor(w))
    assert per_seq.tolist() == pytest.approx(naive_nll, rel=1e-5)
    assert float(got) == pytest.approx(naive, rel=1e-5)
    # train_adapter's first step optimises exactly this: a fresh LoRA (B = 0) is the base model.
    res = train_adapter(rt, exs, exs, LoraConfig(steps=1, batch_size=3, dropout=0.0), name="t")
    assert res.history[1]["train_loss"] == pytest.approx(naive, rel=1e-4)
    assert res.history[0]["val_nll"] == pytest.approx(sum(naive_nll) / 3, rel=1e-4)


def test_validation_split_rule_and_budget():
    three = _examples(3, weights=[0.5, 0.1, 0.9])
    fit, val, source = split_validation(three, [], seed=0)
    assert source == "held-out" and val == [three[1]] and fit == [three[0], three[2]]  # lowest ω held out
    fit, val, source = split_validation(three[:2], None, seed=0)
    assert source == "train" and fit == val == three[:2]  # fewer than 3: validate on the training set
    flagged = Example(three[0].messages, "held out", validation=True)
    fit, val, source = split_validation([*three, flagged], [], seed=0)
    assert source == "given" and val == [flagged] and fit == three
    assert [training_budget(n, 0.6) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 5]
    assert training_budget(5, 1.0) == 5 and training_budget(9, 0.01) == 2
    assert normalized_weights(_examples(2, weights=[-1.0, 2.0])) == [1.0, 1.0]


def test_early_stopping_on_diverging_validation(tiny_rt):
    train = [Example([Message("user", f"Say {w}.")], "zzz zzz zzz zzz zzz zzz") for w in ("one", "two")]
    val = [Example([Message("user", "Say three.")], "Hello, how are you today? I am fine, thank you.")]
    cfg = LoraConfig(steps=40, lr=2e-2, eval_every=1, early_stop_patience=2, dropout=0.0)
    res = train_adapter(tiny_rt, train, val, cfg, name="t")
    assert res.stopped_early and res.steps < cfg.steps
    assert res.val_source == "given" and res.n_train == 2 and res.n_val == 1
    vals = [h["val_nll"] for h in res.history if "val_nll" in h]
    assert res.best_val_nll == min(vals)
    assert [h["step"] for h in res.history if h.get("val_nll") == res.best_val_nll][0] == res.best_step
    if res.best_step == 0:  # the best adapter is the untrained one: B = 0 everywhere
        assert all(torch.count_nonzero(v) == 0 for k, v in res.tensors.items() if "lora_B" in k)


def test_training_is_seeded_and_reproducible(tiny_rt):
    exs = _examples(4, weights=[1.0, 2.0, 0.5, 1.5])
    cfg = LoraConfig(steps=6, batch_size=2, lr=5e-3, dropout=0.1, eval_every=2)  # dropout draws from the RNG
    a = train_adapter(tiny_rt, exs, [], cfg, name="run1")
    # Live turns that sample (global RNG) in between steps must not change the run.
    b = train_adapter(tiny_rt, exs, [], cfg, name="run2", progress=lambda s, t: torch.rand(1000))
    assert a.tensors.keys() == b.tensors.keys()
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert a.history == b.history
    c = train_adapter(tiny_rt, exs, [], cfg.model_copy(update={"seed": 1}), name="run3")
    assert not all(torch.equal(a.tensors[k], c.tensors[k]) for k in a.tensors)


def test_each_step_is_a_worker_task_and_live_turns_interleave(tiny_rt):
    rt = tiny_rt
    calls = []
    real_run = rt.run
    rt.run = lambda fn, *a: (calls.append(1), real_run(fn, *a))[1]  # type: ignore[method-assign]
    cfg = LoraConfig(steps=30, batch_size=2, eval_every=10)
    started, progress = threading.Event(), []
    out = {}

    def job():
        out["res"] = train_adapter(
            rt, _examples(3), [], cfg, name="t", progress=lambda s, t: (progress.append(s), started.set())
        )
        out["end"] = time.perf_counter()

    th = threading.Thread(target=job)
    th.start()
    assert started.wait(60)
    gen = rt.generate([Message("user", "Hello!")], max_new_tokens=4)  # a live turn, mid-training
    at_gen, t_gen = len(progress), time.perf_counter()
    th.join(60)
    assert gen.output_tokens >= 1
    assert at_gen < cfg.steps and t_gen < out["end"]  # served before training finished
    res = out["res"]
    assert res.steps == cfg.steps and len(calls) >= cfg.steps + 2  # setup, steps, validations, removal


# ---------------------------------------------------------------------------------------------
# Artifacts
# ---------------------------------------------------------------------------------------------


def test_adapter_round_trip_through_store_and_peft(tiny_rt, tmp_path):
    from peft import PeftModel

    rt = tiny_rt
    rt.adapters = AdapterStore(tmp_path)
    exs = _examples(3)
    res = train_adapter(rt, exs, [], LoraConfig(steps=5, lr=1e-2, dropout=0.0), name="t")
    ref = rt.adapters.save(res.tensors, res.lora_config, namespace="ns", session="s1", metrics={"steps": res.steps})
    folder = rt.adapters.path(ref)
    assert {"adapter_model.safetensors", "adapter_config.json", "soma.json"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "soma.json").read_text())["sha256"].startswith(ref.adapter_id)
    loaded, cfg = rt.adapters.load(ref)  # verified against the content hash
    assert all(torch.equal(loaded[k], res.tensors[k]) for k in res.tensors)

    base, tok = build_tiny_model()  # same seed: the same base weights
    peft_model = PeftModel.from_pretrained(base, str(folder))
    peft_model.eval()
    rows = [tokenize_example(rt, e, 1024) for e in exs]
    ids, mask, labels = collate(rows, tok.pad_token_id)
    with torch.no_grad():
        via_peft = sequence_nll(peft_model(input_ids=ids, attention_mask=mask).logits, labels)
    via_runtime = answer_nll(rt, exs, ref)
    base_nll = answer_nll(rt, exs)
    assert via_runtime == pytest.approx(via_peft.tolist(), rel=1e-5)
    assert via_runtime != pytest.approx(base_nll, rel=1e-4)  # the adapter changes the model


# ---------------------------------------------------------------------------------------------
# Long answers, no silent no-ops, the time budget
# ---------------------------------------------------------------------------------------------


def test_long_answers_are_cut_to_their_opening_tokens_without_eos(tiny_rt):
    rt = tiny_rt
    ex = Example([Message("user", "Tell me everything.")], " ".join(f"point{i}" for i in range(300)))
    answer = rt.encode(ex.answer)
    ids, labels = tokenize_example(rt, ex, 1024, max_answer=24)
    kept = [y for y in labels if y != -100]
    assert kept == answer[:24]  # the first tokens, in order; a cut answer does not end with EOS
    assert rt.tokenizer.eos_token_id not in kept
    short = Example([Message("user", "Hi.")], "Hello!")
    _, labels = tokenize_example(rt, short, 1024, max_answer=24)
    assert [y for y in labels if y != -100] == rt.encode("Hello!") + [rt.tokenizer.eos_token_id]
    _, labels = tokenize_example(rt, ex, 32, max_answer=24)  # max_len // 2 still bounds it
    assert sum(y != -100 for y in labels) == 16


def test_training_that_never_beats_step_zero_is_not_improved(tiny_rt):
    # The failure: no validation ever beats step 0 (here: steps far too small to move
    # the validation NLL by the 1e-4 that counts), so the kept checkpoint is the untrained one.
    train = [Example([Message("user", f"Say {w}.")], "zzz zzz zzz zzz zzz zzz") for w in ("one", "two")]
    val = [Example([Message("user", "Say three.")], "Hello, how are you today? I am fine, thank you.")]
    cfg = LoraConfig(steps=6, lr=1e-7, eval_every=1, early_stop_patience=6, dropout=0.0)
    res = train_adapter(tiny_rt, train, val, cfg, name="t")
    assert res.best_step == 0 and not res.improved
    assert res.best_val_nll == res.initial_val_nll
    assert all(torch.count_nonzero(v) == 0 for k, v in res.tensors.items() if "lora_B" in k)
    learnable = [Example([Message("user", "Say hi.")], "hi hi hi hi") for _ in range(3)]
    good = train_adapter(tiny_rt, learnable, learnable[:1], LoraConfig(steps=6, lr=2e-2, eval_every=1), name="g")
    assert good.improved and good.best_step > 0 and good.best_val_nll < good.initial_val_nll


def test_time_budget_plans_steps_from_measured_cost(tiny_rt):
    exs = _examples(3)
    cfg = LoraConfig(steps=200, lr=1e-3, eval_every=5, early_stop_patience=100)
    free = train_adapter(tiny_rt, exs, exs[:1], cfg.model_copy(update={"steps": 4}), name="f")
    step_s = free.timings["steps"] / free.steps
    budget = 12 * step_s + free.timings["validation"]
    res = train_adapter(tiny_rt, exs, exs[:1], cfg, name="b", time_budget_s=budget)
    assert 1 <= res.steps < cfg.steps and res.planned_steps == res.steps
    assert res.seconds < budget * 3 + 1.0  # the plan tracks measured costs (loaded machine: generous)
    one = train_adapter(tiny_rt, exs, exs[:1], cfg, name="z", time_budget_s=1e-6)
    assert one.steps == 1  # at least one step always runs


def test_plan_lora_and_plan_mining_arithmetic():
    from soma_engine.adaptation.budget import MINING_SHARE, effective_budget, lora_budget, plan_lora, plan_mining

    assert lora_budget(30.0, 5.0) == 25.0
    assert lora_budget(30.0, 29.0) == pytest.approx((1 - MINING_SHARE) * 30.0)  # mining overran: LoRA keeps its share

    assert plan_lora(1.0, 0.0, 10.0, 60, 10, done=1) == 11
    assert plan_lora(1.0, 2.0, 10.0, 60, 2, done=1) == 5  # 8 s left after the last validation, 2 s per step
    assert plan_lora(1.0, 0.0, 100.0, 60, 10, done=1) == 60  # never above the configured steps
    # One candidate's step took 1 s; the final scoring pass costs a third of a step per candidate.
    assert plan_mining(1.0, 27.0, 3, 30) == plan_mining(1.0, 27.0, 3, 30)
    roomy = plan_mining(1.0, 27.0, 3, 30)
    assert roomy.candidates == 3 and roomy.steps == 9  # 1 + floor((27 - 1) / 3)
    small = plan_mining(1.0, 8.0, 3, 30)  # 4 steps of 3 candidates do not fit: fewer candidates
    assert small.candidates == 2 and small.steps == 4
    assert plan_mining(1.0, 0.1, 3, 30).steps == 1 and plan_mining(1.0, 0.1, 3, 30).candidates == 1
    assert plan_mining(0.01, 1e6, 3, 30).steps == 30  # never above the configured steps
    assert effective_budget(None, "cuda") is None and effective_budget(0, "cpu") is None
    assert effective_budget(None, "cpu") > 0 and effective_budget(12.5, "cuda") == 12.5
    with pytest.raises(ValueError, match="adaptation_budget_s"):
        effective_budget(-1.0, "cpu")
