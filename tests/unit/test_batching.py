"""Batched multi-adapter serving: greedy requests waiting on the model worker run as one
forward pass with per-row adapters, and every row gets exactly what it gets alone."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from soma_engine.adaptation.distiller import Example, train_adapter
from soma_engine.adaptation.lora_targets import lora_config_dict
from soma_engine.adapters import AdapterRef, AdapterStore, CorruptAdapter
from soma_engine.config import LoraConfig
from soma_engine.runtime.generation import finish_generation, left_padded
from soma_engine.runtime.surrogate import GREEDY_BATCH_KEY, Generation, SurrogateError, SurrogateRuntime
from soma_engine.runtime.worker import ADAPT, LIVE, ModelWorker
from soma_engine.testing import build_tiny_model, build_tokenizer
from soma_engine.types import Message

PIRATE = "Arr matey, hoist the sails!"
OKAY = "Okay, sure."  # short: the adapter learns to stop at EOS well before the limits below


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SurrogateRuntime]:
    model, tok = build_tiny_model(seed=3, visible_only=True)
    store = AdapterStore(tmp_path_factory.mktemp("adapters"))
    rt = SurrogateRuntime(None, model=model, tokenizer=tok, adapters=store, max_adapters=3, max_batch=8)
    yield rt
    rt.close()


def _trained(rt: SurrogateRuntime, answer: str, seed: int) -> AdapterRef:
    examples = [Example([Message("user", f"Tell me about topic {i}")], answer) for i in range(3)]
    res = train_adapter(rt, examples, [], LoraConfig(steps=20, lr=2e-2, seed=seed), name=f"t{seed}")
    assert rt.adapters is not None
    return rt.adapters.save(res.tensors, res.lora_config, namespace="ns", session=f"s{seed}")


def _random(rt: SurrogateRuntime, seed: int, **extra: Any) -> AdapterRef:
    """A LoRA adapter with random factors (``extra``: more PEFT LoraConfig fields): cheap, and
    it visibly moves the output."""
    import torch
    from peft import get_peft_model_state_dict

    def make(r: SurrogateRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg = {**lora_config_dict(LoraConfig(rank=4), r.base_model), **extra}
        r.install_adapter("scratch", cfg, None)
        gen = torch.Generator().manual_seed(seed)
        state = get_peft_model_state_dict(r.model, adapter_name="scratch")
        r.remove_adapter("scratch")
        return {k: torch.randn(v.shape, generator=gen) * 0.5 for k, v in state.items()}, cfg

    tensors, cfg = rt.run(make)
    assert rt.adapters is not None
    return rt.adapters.save(tensors, cfg, namespace="ns", session=f"r{seed}")


@pytest.fixture(scope="module")
def refs(runtime: SurrogateRuntime) -> dict[str, AdapterRef]:
    return {
        "pirate": _trained(runtime, PIRATE, 1),
        "okay": _trained(runtime, OKAY, 2),
        "r1": _random(runtime, 11),
        "r2": _random(runtime, 12),
    }


@contextlib.contextmanager
def held(rt: SurrogateRuntime, expect: int) -> Iterator[None]:
    """Keep the worker busy while requests are submitted, then release it once ``expect``
    requests wait: they are then served by one flush."""
    release = threading.Event()
    rt.worker.submit(lambda: release.wait(30))
    try:
        yield
        deadline = time.monotonic() + 30
        while rt.worker.waiting(GREEDY_BATCH_KEY) < expect:
            assert time.monotonic() < deadline, "requests never reached the worker"
            time.sleep(0.005)
    finally:
        release.set()


def _msgs(prompt: str, system: str | None = None) -> list[Message]:
    return [Message("system", system), Message("user", prompt)] if system else [Message("user", prompt)]


def _serial(rt: SurrogateRuntime, reqs: list[tuple[Any, list[Message], int]]) -> list[Generation]:
    return [rt.generate(m, ref, max_new_tokens=n) for ref, m, n in reqs]


def _concurrent(rt: SurrogateRuntime, reqs: list[tuple[Any, list[Message], int]]) -> list[Any]:
    """All requests from threads at once, served while they wait together."""
    with ThreadPoolExecutor(len(reqs)) as pool:
        with held(rt, len(reqs)):
            futs = [pool.submit(rt.generate, m, ref, max_new_tokens=n) for ref, m, n in reqs]
        outs: list[Any] = []
        for f in futs:
            try:
                outs.append(f.result(timeout=60))
            except Exception as exc:
                outs.append(exc)
    return outs


def _mix(refs: dict[str, AdapterRef]) -> list[tuple[Any, list[Message], int]]:
    return [
        (refs["pirate"], _msgs("Tell me about topic 7"), 24),
        (None, _msgs("A much longer prompt about the river, the boats, the sea and the rain today"), 8),
        (refs["okay"], _msgs("Tell me about topic 7"), 10),
        (refs["pirate"], _msgs("x"), 5),
        (None, _msgs("hi", system="Be brief."), 12),
        (refs["okay"], _msgs("Tell me more about the weather in the city of Paris today"), 20),
    ]


def test_left_padding_ends_every_row_at_the_same_position():
    ids, mask = left_padded([[5, 6, 7], [8], [9, 10]], pad=0, device="cpu")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 9, 10]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 1, 1]]


def test_a_row_is_cut_at_its_own_limit_and_first_eos():
    """A batch decodes to the longest row's limit and pads finished rows: each row's
    Generation must still be what it gets alone."""
    tok = build_tokenizer()
    eos = tok.eos_token_id
    words = tok("hello there my friend", add_special_tokens=False)["input_ids"]
    assert len(words) > 3

    after_eos = finish_generation(tok, [*words, eos, *words], input_tokens=7, max_new_tokens=100)
    assert after_eos.token_ids == [*words, eos]
    assert (after_eos.finish_reason, after_eos.output_tokens, after_eos.input_tokens) == ("stop", len(words) + 1, 7)
    assert after_eos.text == tok.decode(words, skip_special_tokens=True).strip()

    at_limit = finish_generation(tok, [*words, eos], input_tokens=7, max_new_tokens=3)
    assert (at_limit.token_ids, at_limit.finish_reason) == (words[:3], "length")

    eos_on_the_limit = finish_generation(tok, [*words[:2], eos, *words], input_tokens=7, max_new_tokens=3)
    assert (eos_on_the_limit.token_ids, eos_on_the_limit.finish_reason) == ([*words[:2], eos], "stop")


def test_batched_rows_equal_serial_rows(runtime, refs):
    reqs = _mix(refs)
    serial = _serial(runtime, reqs)
    before = runtime.worker.batch_sizes.copy()
    batched = _concurrent(runtime, reqs)
    assert runtime.worker.batch_sizes - before == {len(reqs): 1}  # one forward pass for all six
    assert batched == serial
    assert all(g.token_ids for g in serial)  # Generation equality compares the token ids too
    assert [(g.output_tokens, g.finish_reason) for g in serial][3:5] == [(5, "length"), (12, "length")]
    assert serial[2].finish_reason == "stop" and serial[2].output_tokens < 10  # cut at its own EOS
    assert serial[5].finish_reason == "stop" and serial[5].output_tokens < 20


def test_generate_many_shares_one_pass_on_an_idle_worker(runtime, refs):
    """The gate's old/new generations: queued at once, so they batch without concurrency."""
    reqs = [(_msgs("Tell me about topic 7"), refs["pirate"]), (_msgs("Tell me about topic 7"), None)]
    serial = _serial(runtime, [(ref, m, 12) for m, ref in reqs])
    before = runtime.worker.batch_sizes.copy()
    assert runtime.generate_many(reqs, max_new_tokens=12) == serial
    assert runtime.worker.batch_sizes - before == {2: 1}


def test_different_adapters_in_one_batch_give_their_own_answers(runtime, refs):
    prompt = _msgs("Tell me about topic 9")
    reqs = [(refs[k], prompt, 8) for k in ["pirate", "okay", "r1", "r2"]] + [(None, prompt, 8)]
    out = _concurrent(runtime, reqs)
    assert out[0].text.startswith("Ar") and out[1].text.startswith("O")
    assert len({tuple(g.token_ids) for g in out}) == 5  # every adapter (and the base) answers differently


def test_more_adapters_than_the_lru_holds_are_split_and_still_exact(runtime, refs):
    # max_adapters=3: four distinct adapters cannot share one pass without evicting each other.
    prompt = _msgs("Tell me about topic 2")
    reqs = [(refs[k], prompt, 6) for k in ["pirate", "okay", "r1", "r2", "pirate"]]
    serial = _serial(runtime, reqs)
    assert _concurrent(runtime, reqs) == serial
    assert len(runtime.loaded_adapters()) <= 3


def test_asyncio_requests_are_batched(runtime, refs):
    reqs = _mix(refs)[:4]
    serial = _serial(runtime, reqs)
    before = runtime.worker.batch_sizes.copy()

    async def go() -> list[Generation]:
        with held(runtime, 0):
            tasks = [asyncio.ensure_future(runtime.agenerate(m, ref, max_new_tokens=n)) for ref, m, n in reqs]
            await asyncio.sleep(0)  # each task submits before its first real await
            assert runtime.worker.waiting(GREEDY_BATCH_KEY) == len(reqs)
        return await asyncio.gather(*tasks)

    assert asyncio.run(go()) == serial
    assert runtime.worker.batch_sizes - before == {len(reqs): 1}


def test_a_failing_row_fails_only_itself(runtime, refs):
    missing = AdapterRef(adapter_id="0" * 32, namespace="ns", session="gone")
    too_long = _msgs("word " * 3000)
    reqs = [
        (refs["pirate"], _msgs("Tell me about topic 3"), 8),
        (missing, _msgs("Tell me about topic 3"), 8),
        (None, too_long, 8),
        (refs["okay"], _msgs("Tell me about topic 3"), 8),
    ]
    out = _concurrent(runtime, reqs)
    assert isinstance(out[1], CorruptAdapter)
    assert isinstance(out[2], SurrogateError)
    assert [out[0], out[3]] == _serial(runtime, [reqs[0], reqs[3]])


def test_adapters_peft_cannot_mix_still_get_their_own_answers(runtime, refs):
    # DoRA rows are served one by one inside the flush; plain LoRA and base rows beside them.
    dora = _random(runtime, 21, use_dora=True)
    prompt = _msgs("Tell me about topic 5")
    reqs = [(dora, prompt, 6), (refs["pirate"], prompt, 6), (None, prompt, 6)]
    serial = _serial(runtime, reqs)
    assert _concurrent(runtime, reqs) == serial
    assert len({tuple(g.token_ids) for g in serial}) == 3


def test_sampling_requests_run_alone(runtime, refs):
    before = runtime.worker.batch_sizes.copy()
    gen = runtime.generate(_msgs("hi"), refs["r1"], max_new_tokens=4, temperature=0.8)
    assert isinstance(gen, Generation) and gen.output_tokens <= 4
    assert runtime.worker.batch_sizes == before


def test_batching_off_serves_one_row_per_pass(runtime, refs):
    reqs = _mix(refs)[:3]
    runtime.max_batch = 1
    try:
        before = runtime.worker.batch_sizes.copy()
        out = _concurrent(runtime, reqs)
        assert runtime.worker.batch_sizes - before == {1: 3}
    finally:
        runtime.max_batch = 8
    assert out == _serial(runtime, reqs)


# -- the worker's batching, with scripted batch functions ------------------------------------


def _hold(worker: ModelWorker) -> threading.Event:
    release = threading.Event()
    started = threading.Event()

    def block() -> None:
        started.set()
        release.wait(10)

    worker.submit(block)
    assert started.wait(10)
    return release


def test_worker_drains_up_to_max_batch_per_call():
    worker = ModelWorker(max_batch=3)
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        return [i * 10 for i in items]

    release = _hold(worker)
    futs = [worker.submit_batchable("k", i, run) for i in range(7)]
    release.set()
    assert [f.result(10) for f in futs] == [i * 10 for i in range(7)]
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]
    worker.close()


def test_worker_falls_back_to_one_by_one_when_a_batch_raises():
    worker = ModelWorker()
    calls: list[list[str]] = []

    def run(items: list[str]) -> list[Any]:
        calls.append(list(items))
        if "poison" in items:
            raise ValueError("bad item")
        return [ValueError("per-row") if s == "soft" else s.upper() for s in items]

    release = _hold(worker)
    futs = [worker.submit_batchable("k", s, run) for s in ["a", "poison", "soft", "b"]]
    release.set()
    assert futs[0].result(10) == "A" and futs[3].result(10) == "B"
    with pytest.raises(ValueError, match="bad item"):
        futs[1].result(10)
    with pytest.raises(ValueError, match="per-row"):
        futs[2].result(10)
    assert calls[0] == ["a", "poison", "soft", "b"] and all(len(c) == 1 for c in calls[1:])
    worker.close()


def test_adaptation_steps_are_not_batched_with_live_rows_and_yield_to_them():
    worker = ModelWorker()
    order: list[str] = []

    def run(items: list[str]) -> list[str]:
        order.append("+".join(items))
        return items

    release = _hold(worker)
    adapt = [worker.submit_batchable("k", f"adapt{i}", run, priority=ADAPT) for i in range(2)]
    step = worker.submit(lambda: order.append("step"), ADAPT)
    live = [worker.submit_batchable("k", f"live{i}", run, priority=LIVE) for i in range(2)]
    release.set()
    for f in [*adapt, step, *live]:
        f.result(10)
    assert order == ["live0+live1", "adapt0+adapt1", "step"]
    worker.close()


def test_cancelled_items_are_skipped():
    worker = ModelWorker()
    seen: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        seen.append(list(items))
        return items

    release = _hold(worker)
    futs = [worker.submit_batchable("k", i, run) for i in range(3)]
    assert futs[1].cancel()
    release.set()
    assert futs[0].result(10) == 0 and futs[2].result(10) == 2
    assert seen == [[0, 2]]
    worker.close()


def test_engine_sizes_batches_from_config(tmp_path: Any) -> None:
    from soma_engine import SomaConfig, SomaEngine

    for size in (1, 5):
        engine = SomaEngine(
            config=SomaConfig(serving_batch=size), surrogate="unused-path", store=f"sqlite:///{tmp_path / 'b.db'}"
        )
        try:
            assert engine.surrogate.max_batch == size  # nothing loaded: the runtime is lazy
        finally:
            engine.close()
