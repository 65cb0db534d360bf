"""The KL-to-base regulariser of LoRA training (``lora.kl_weight``, issue 19 item 3): its math
against naive loops, its value before and after training, that it is a true no-op when off,
and that it does hold the adapter near the base model."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from soma_engine.adaptation import distiller
from soma_engine.adaptation.distill_loss import answer_token_nll, answer_token_nll_kl, base_answer_rows, token_kl
from soma_engine.adaptation.distiller import Example, answer_nll, collate, tokenize_example, train_adapter
from soma_engine.adapters import AdapterStore
from soma_engine.config import LoraConfig
from soma_engine.runtime.surrogate import SurrogateRuntime
from soma_engine.testing import build_tiny_model
from soma_engine.types import Message


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread (a busy 2-core host); restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def tiny_rt():
    model, tok = build_tiny_model()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    rt = SurrogateRuntime(None, model=model, tokenizer=tok, device="cpu")
    yield rt
    rt.close()


def _examples(n: int = 3) -> list[Example]:
    queries = ["Plan a trip to Lisbon.", "Review this Python function.", "How do I solve x?", "Hello there!"]
    return [
        Example(
            [Message("system", "You are a pirate."), Message("user", queries[i % len(queries)])],
            f"Arr, {queries[i % len(queries)].split()[1]} matey! Hoist the sails!",
        )
        for i in range(n)
    ]


def _batch(rt: SurrogateRuntime, exs: list[Example]) -> tuple[Any, Any, Any]:
    return collate([tokenize_example(rt, e, 256) for e in exs], rt.tokenizer.pad_token_id)


def _kl_now(rt: SurrogateRuntime, name: str, exs: list[Example], row_chunk: int = 256) -> torch.Tensor:
    """Per-sequence mean KL(p_base || p_adapter) with adapter ``name`` installed and active."""
    ids, mask, labels = _batch(rt, exs)

    def fn(r: SurrogateRuntime) -> torch.Tensor:
        model = r.model
        model.set_adapter(name)
        model.eval()
        base_rows = base_answer_rows(model, ids, mask, labels)
        with torch.no_grad():
            _, kl = answer_token_nll_kl(model, ids, mask, labels, base_rows, row_chunk=row_chunk)
        return kl

    return rt.run(fn)


def _final_tensors(rt: SurrogateRuntime, exs: list[Example], cfg: LoraConfig, name: str) -> tuple[dict, dict]:
    """The adapter's tensors after its LAST step (train_adapter returns the best-on-validation
    ones), and its PEFT config."""
    from peft import get_peft_model_state_dict

    final: dict[str, Any] = {}

    def grab(step: int, total: int) -> None:
        if step == total:
            sd = rt.run(lambda r: get_peft_model_state_dict(r.model, adapter_name=name))
            final.update({k: v.detach().clone() for k, v in sd.items()})

    res = train_adapter(rt, exs, exs, cfg, name=name, progress=grab)
    assert res.steps == cfg.steps and final
    return final, res.lora_config


def test_token_kl_matches_naive_loop():
    torch.manual_seed(0)
    p, q = torch.randn(5, 11) * 3, torch.randn(5, 11) * 3
    naive = []
    for i in range(p.shape[0]):
        zp = sum(math.exp(x) for x in p[i].double().tolist())
        zq = sum(math.exp(x) for x in q[i].double().tolist())
        naive.append(
            sum(
                math.exp(a) / zp * (a - math.log(zp) - (b - math.log(zq)))
                for a, b in zip(p[i].double().tolist(), q[i].double().tolist(), strict=True)
            )
        )
    assert token_kl(p, q).tolist() == pytest.approx(naive, rel=1e-5, abs=1e-6)
    assert torch.all(token_kl(p, p).abs() < 1e-6)
    assert torch.all(token_kl(p, q) > 0) and not torch.allclose(token_kl(p, q), token_kl(q, p))  # KL(p||q), not q||p


def test_answer_kl_matches_full_logits_loop_and_is_zero_for_fresh_adapter(tiny_rt):
    rt = tiny_rt
    exs = _examples(3)
    lora = distiller.lora_config_dict(LoraConfig(dropout=0.0), rt.base_model)
    rt.run(lambda r: r.install_adapter("fresh", lora, None))  # PEFT's init: B = 0, the base model
    kl0 = _kl_now(rt, "fresh", exs)
    assert kl0.shape == (3,) and torch.all(kl0.abs() < 1e-6)
    # Perturb the B factors: the KL equals a naive loop over each sequence's answer positions
    # with full logits of the base (adapter disabled) and of the adapted model, chunked or not.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for n, p in rt.model.named_parameters():
            if ".fresh." in n and "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    ids, mask, labels = _batch(rt, exs)
    model = rt.model
    model.set_adapter("fresh")
    naive = []
    with torch.no_grad():
        adapted = model(input_ids=ids, attention_mask=mask).logits.double()
        with model.disable_adapter():
            base = model(input_ids=ids, attention_mask=mask).logits.double()
    for b in range(ids.shape[0]):
        terms = []
        for pos in range(1, ids.shape[1]):
            if labels[b, pos] == -100:
                continue
            lp, lq = torch.log_softmax(base[b, pos - 1], -1), torch.log_softmax(adapted[b, pos - 1], -1)
            terms.append(float((lp.exp() * (lp - lq)).sum()))
        naive.append(sum(terms) / len(terms))
    for chunk in (256, 3):
        got = _kl_now(rt, "fresh", exs, row_chunk=chunk)
        assert got.tolist() == pytest.approx(naive, rel=1e-4)
    assert min(naive) > 1e-4
    # The NLL half of the pair is answer_token_nll's.
    with torch.no_grad():
        nll, _ = answer_token_nll_kl(model, ids, mask, labels, base_answer_rows(model, ids, mask, labels), row_chunk=3)
        ref = answer_token_nll(model, ids, mask, labels)
    torch.testing.assert_close(nll, ref, rtol=1e-5, atol=1e-6)


def test_kl_is_positive_after_training(tiny_rt):
    rt = tiny_rt
    exs = _examples(3)
    cfg = LoraConfig(steps=4, batch_size=3, lr=2e-2, dropout=0.0, eval_every=2, kl_weight=0.5)
    tensors, lora = _final_tensors(rt, exs, cfg, "trained")
    rt.run(lambda r: r.install_adapter("trained", lora, tensors))
    assert torch.all(_kl_now(rt, "trained", exs) > 1e-5)


def test_kl_weight_zero_is_bit_for_bit_unchanged_and_adds_no_forward(tiny_rt, monkeypatch):
    exs = _examples(4)
    cfg = dict(steps=6, batch_size=2, lr=5e-3, dropout=0.1, eval_every=2)  # dropout draws from the RNG
    plain = train_adapter(tiny_rt, exs, [], LoraConfig(**cfg), name="plain")
    calls = []
    monkeypatch.setattr(distiller, "base_answer_rows", lambda *a, **k: calls.append(1))
    off = train_adapter(tiny_rt, exs, [], LoraConfig(**cfg, kl_weight=0.0), name="off")
    assert calls == []  # no base forward when the term is off
    assert plain.tensors.keys() == off.tensors.keys()
    assert all(torch.equal(plain.tensors[k], off.tensors[k]) for k in plain.tensors)
    assert plain.history == off.history
    monkeypatch.undo()
    on = train_adapter(tiny_rt, exs, [], LoraConfig(**cfg, kl_weight=1.0), name="on")
    assert on.history[1]["train_loss"] != plain.history[1]["train_loss"] or any(
        not torch.equal(plain.tensors[k], on.tensors[k]) for k in plain.tensors
    )


def test_large_kl_weight_keeps_the_adapter_near_the_base(tiny_rt, tmp_path):
    """After the same steps, a large ``kl_weight`` leaves the answer NLL of text the adapter
    never trained on closer to the base's, and the KL itself smaller. (On the trained answers
    themselves the random tiny model's near-uniform base makes the KL act like an entropy
    bonus that can even speed up the fit, so closeness is measured where it matters: elsewhere.)"""
    rt = tiny_rt
    rt.adapters = AdapterStore(tmp_path)
    exs = _examples(3)
    other = [
        Example([Message("user", q)], a)
        for q, a in [
            ("What is the weather like?", "It is sunny and warm today, with a light breeze."),
            ("Write a haiku.", "Silent pond, a frog jumps in, the water sounds."),
            ("Sum two numbers.", "def add(a, b):\n    return a + b"),
        ]
    ]
    base = answer_nll(rt, other, None)
    moved: dict[float, float] = {}
    kls: dict[float, float] = {}
    for w in (0.0, 20.0):
        name = f"kl{int(w)}"
        cfg = LoraConfig(steps=8, batch_size=3, lr=5e-3, dropout=0.0, eval_every=2, kl_weight=w)
        tensors, lora = _final_tensors(rt, exs, cfg, name)
        ref = rt.adapters.save(tensors, lora, namespace="t", session=name)
        after = answer_nll(rt, other, ref)
        moved[w] = sum(abs(a - b) for a, b in zip(after, base, strict=True)) / len(base)
        rt.run(lambda r, n=name, t=tensors, c=lora: r.install_adapter(n, c, t))
        kls[w] = float(_kl_now(rt, name, other).mean())
    assert moved[0.0] > 0.03  # plain training does move the NLL of other answers
    assert moved[20.0] < 0.5 * moved[0.0]
    assert kls[20.0] < 0.5 * kls[0.0]
