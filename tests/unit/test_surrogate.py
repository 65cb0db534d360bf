"""SurrogateRuntime on a tiny model: chat template, streaming, per-call adapters, the LRU,
and the engine's async entry points."""

from __future__ import annotations

import asyncio

import pytest

from soma_engine import Phase
from soma_engine.adaptation.distiller import Example, train_adapter
from soma_engine.adapters import AdapterStore
from soma_engine.config import LoraConfig
from soma_engine.runtime.surrogate import Generation, SurrogateRuntime
from soma_engine.testing import build_tiny_model
from soma_engine.types import Message

PIRATE = "Arr matey, hoist the sails!"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    model, tok = build_tiny_model(seed=3)
    store = AdapterStore(tmp_path_factory.mktemp("adapters"))
    rt = SurrogateRuntime(None, model=model, tokenizer=tok, adapters=store, max_adapters=2)
    yield rt
    rt.close()


def _adapter(rt: SurrogateRuntime, answer: str, seed: int):
    examples = [Example([Message("user", f"Tell me about topic {i}")], answer) for i in range(3)]
    res = train_adapter(rt, examples, [], LoraConfig(steps=25, lr=1e-2, seed=seed), name=f"t{seed}")
    return rt.adapters.save(res.tensors, res.lora_config, namespace="ns", session=f"s{seed}")


def test_prompt_uses_the_models_chat_template(runtime):
    text = runtime.render([Message("system", "Be brief."), Message("user", "Hi")])
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_stream_yields_pieces_that_join_to_the_generation(runtime):
    ref = _adapter(runtime, PIRATE, seed=1)
    items = list(runtime.stream([Message("user", "Tell me about topic 7")], ref, max_new_tokens=12))
    final = items[-1]
    assert isinstance(final, Generation)
    pieces = [p for p in items[:-1] if isinstance(p, str)]
    assert len(pieces) >= 3  # token by token, not one block
    assert "".join(pieces).strip() == final.text
    assert final.text.startswith("Arr matey")
    same = runtime.generate([Message("user", "Tell me about topic 7")], ref, max_new_tokens=12)
    assert same.text == final.text


def test_per_call_adapter_and_base_model_differ(runtime):
    ref = _adapter(runtime, PIRATE, seed=1)
    msgs = [Message("user", "Tell me about topic 9")]
    adapted = runtime.generate(msgs, ref, max_new_tokens=8).text
    base = runtime.generate(msgs, None, max_new_tokens=8).text
    assert adapted.startswith("Arr") and not base.startswith("Arr")


def test_adapters_are_lru_bounded(runtime):
    refs = [_adapter(runtime, f"Answer number {i} is here.", seed=10 + i) for i in range(3)]
    for ref in refs:
        runtime.generate([Message("user", "Hi")], ref, max_new_tokens=2)
    loaded = runtime.loaded_adapters()
    assert len(loaded) == 2
    assert f"a{refs[0].adapter_id}" not in loaded and f"a{refs[2].adapter_id}" in loaded
    # An evicted adapter is reloaded (and verified) on demand.
    out = runtime.generate([Message("user", "Tell me about topic 1")], refs[0], max_new_tokens=6).text
    assert out.startswith("Answer")


def test_async_generate_and_stream(runtime):
    ref = _adapter(runtime, PIRATE, seed=1)
    msgs = [Message("user", "Tell me about topic 4")]

    async def go():
        gen = await runtime.agenerate(msgs, ref, max_new_tokens=10)
        items = [x async for x in runtime.astream(msgs, ref, max_new_tokens=10)]
        return gen, items

    gen, items = asyncio.run(go())
    assert isinstance(items[-1], Generation) and items[-1].text == gen.text
    assert "".join(p for p in items[:-1]).strip() == gen.text


def test_engine_async_chat_switches_to_the_surrogate(new_engine, permissive_config, tmp_path):
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=permissive_config(lora={"steps": 40, "lr": 1e-2}))

    async def teacher(messages):
        await asyncio.sleep(0)
        return PIRATE

    async def conversation():
        history = [{"role": "system", "content": "You are a pirate bike coach."}]
        replies = []
        for q in [
            "I sell my bike for 900.",
            "A buyer offers 700.",
            "Include the pedals?",
            "Meet at 800?",
            "Accept 780 for the bike?",
        ]:
            history.append({"role": "user", "content": q})
            reply = await engine.achat("async-session", history, teacher)
            history.append({"role": "assistant", "content": reply.text})
            replies.append(reply)
        route = engine.route("async-session", [*history, {"role": "user", "content": "And 790 for the bike?"}])
        pieces = [p async for p in engine.astream(route)]
        return replies, pieces

    replies, pieces = asyncio.run(conversation())
    assert [r.served_by for r in replies[:4]] == ["teacher"] * 4
    assert replies[4].served_by == "surrogate"
    assert engine.session("async-session").phase is Phase.SERVING
    final = pieces[-1]
    assert final.served_by == "surrogate" and final.soma["turn"] == 6
    assert "".join(p for p in pieces[:-1]).strip() == final.text


def test_generation_options_reach_every_generate_call(monkeypatch):
    model, tok = build_tiny_model(seed=3)
    seen: list[dict] = []
    real = model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    rt = SurrogateRuntime(None, model=model, tokenizer=tok, generation_options={"no_repeat_ngram_size": 2})
    msgs = [Message("user", "Tell me about topic 7")]
    try:
        text = rt.generate(msgs, None, max_new_tokens=12).text
        list(rt.stream(msgs, None, max_new_tokens=12))
        rt.generate_many([(msgs, None), (msgs, None)], max_new_tokens=12)
    finally:
        rt.close()
    assert len(seen) >= 3 and all(kw.get("no_repeat_ngram_size") == 2 for kw in seen)
    assert text.strip()


def test_config_decoding_options_reach_the_engine_surrogate(tiny_model_path, shared_encoder, tmp_path):
    from soma_engine import SomaEngine
    from soma_engine.config import SomaConfig

    cfg = SomaConfig(no_repeat_ngram_size=1, repetition_penalty=1.3)
    with SomaEngine(
        cfg, surrogate=str(tiny_model_path), encoder=shared_encoder, store=f"sqlite:///{tmp_path}/s.db"
    ) as eng:
        assert eng.surrogate.generation_options == {"no_repeat_ngram_size": 1, "repetition_penalty": 1.3}
        msgs = [Message("user", "Tell me about topic 7")]
        prompt = eng.surrogate.encode(eng.surrogate.render(msgs))
        new = eng.surrogate.generate(msgs, None, max_new_tokens=24).token_ids
        eng.surrogate.generation_options = {}
        free = eng.surrogate.generate(msgs, None, max_new_tokens=24).token_ids
    # n = 1: no generated token may occur earlier in the prompt or the answer; the random
    # model left alone repeats itself
    assert len(new) > 4 and len(set(new)) == len(new) and not set(new) & set(prompt)
    assert len(set(free)) < len(free)
    assert SomaConfig().generation_options() == {}


def test_query_nll_matches_a_token_by_token_computation():
    import torch

    model, tok = build_tiny_model(seed=5)
    rt = SurrogateRuntime(None, model=model, tokenizer=tok)
    msgs = [
        Message("system", "You are terse."),
        Message("user", "Tell me about topic 7"),
        Message("assistant", "Topic 7 is about bikes."),
        Message("user", "and topic 9 too"),
    ]
    try:
        nll = rt.query_nll(msgs)
        cached = [rt.query_nll(msgs, stable=3) for _ in range(2)]
        other = rt.query_nll([*msgs[:3], Message("user", "what about topic 3")], stable=3)
        uncached_other = rt.query_nll([*msgs[:3], Message("user", "what about topic 3")])
        with pytest.raises(ValueError, match="stable"):
            rt.query_nll(msgs, stable=4)
        with pytest.raises(ValueError, match="non-empty"):
            rt.query_nll([Message("user", "")])
    finally:
        rt.close()
    # naive: one forward pass per query token over everything before it
    prompt = rt.render(msgs)
    at = prompt.rfind("and topic 9 too")
    prefix, target = rt.encode(prompt[:at]), rt.encode("and topic 9 too")
    logps = []
    with torch.no_grad():
        for j, token in enumerate(target):
            logits = model(input_ids=torch.tensor([prefix + target[:j]])).logits[0, -1]
            logps.append(float(torch.log_softmax(logits, -1)[token]))
    assert nll == pytest.approx(-sum(logps) / len(logps), rel=1e-4)
    # the stable prefix's cache gives the same values, and survives for the next query
    assert cached == pytest.approx([nll, nll], rel=1e-4) and other == pytest.approx(uncached_other, rel=1e-4)
    assert len(rt._nll_prefixes) == 1
