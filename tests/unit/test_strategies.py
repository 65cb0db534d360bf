"""Training-set strategies (jobs.plan_training) with the real SurrogateRuntime, miner and
distiller on a tiny surrogate: every strategy learns a persona teacher (held-out answers get
likelier), ``soma`` picks the turns the surrogate reproduces worst, budgets and seeds, the
contexts that are mined are the ones that are trained on, and teacher probes are counted."""

from __future__ import annotations

import asyncio

import pytest
import torch

from soma_engine import Phase, SomaConfig, SomaEngine
from soma_engine.adaptation import jobs
from soma_engine.adaptation import miner as miner_module
from soma_engine.adaptation.budget import CPU_MAX_SEQ_LEN
from soma_engine.adaptation.distiller import Example, answer_nll, train_adapter, training_budget
from soma_engine.adaptation.jobs import plan_training
from soma_engine.runtime.encoder import Encoder
from soma_engine.runtime.generation import template_dict
from soma_engine.runtime.surrogate import SurrogateRuntime
from soma_engine.testing import build_tiny_model
from soma_engine.types import Message, TurnRecord

SYSTEM = "You are a pirate."
PHRASE = "Arr, shiver me timbers, matey!"
WARM = [
    "How should I price my bicycle listing?",
    "What about the museums in Lisbon?",
    "Can you review this Python function?",
    "How do I solve the equation today?",
    "Which pastries should I try first?",  # the acceptance batch B (gate.holdout = 1)
]
HELD_OUT = [
    "What should I cook for dinner tonight?",
    "Tell me about the football match yesterday.",
    "How do I water my garden plants?",
]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and two OpenMP threads on a busy 2-core host
    can be 50x slower (spinning barriers): use one for this module, then restore."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def persona(query: str) -> str:
    """Deterministic style: mirror the query's longest word, end with a fixed pirate phrase."""
    keyword = max(query.strip("?.!").split(), key=len)
    return f"{keyword.capitalize()}? {PHRASE}"


def persona_teacher(messages: list[Message]) -> str:
    return persona(messages[-1].content)


def _config(**overrides) -> SomaConfig:
    base = {
        "warm_window": 4,
        "lora": {"steps": 30, "lr": 5e-3, "batch_size": 4},
        "mining": {"steps": 6, "candidates": 3, "neighbors_k": 8, "top_m": 20},
    }
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return SomaConfig(**base)


def _engine(tmp_path, model=None, tokenizer=None, **overrides) -> SomaEngine:
    if model is None:
        model, tokenizer = build_tiny_model()
    runtime = SurrogateRuntime(None, model=model, tokenizer=tokenizer, device="cpu")
    # The encoder is never loaded: planning and training do not use it.
    return SomaEngine(
        config=_config(**overrides),
        surrogate=runtime,
        encoder=Encoder(model_path="/unused"),
        store=f"sqlite:///{tmp_path / 'soma.db'}",
    )


def _session(answer=lambda i, history, query: persona(query)) -> tuple[list[TurnRecord], list[dict]]:
    """Teacher turns of one scripted session, and the final history."""
    history: list[dict] = [{"role": "system", "content": SYSTEM}]
    records = []
    for i, query in enumerate(WARM):
        history.append({"role": "user", "content": query})
        text = answer(i, history, query)
        records.append(
            TurnRecord(turn=i + 1, served_by="teacher", query=query, answer=text, messages=[dict(m) for m in history])
        )
        history.append({"role": "assistant", "content": text})
    return records, history


@pytest.mark.parametrize("strategy", ["soma", "history-ft", "random-ft"])
def test_each_strategy_learns_the_persona_on_held_out_turns(tmp_path, strategy):
    with _engine(tmp_path, strategy=strategy) as engine:
        records, history = _session()
        plan = plan_training(engine.services, records, None)
        assert plan.strategy == strategy and len(plan.holdout) == 1
        res = train_adapter(engine.surrogate, plan.train, [], engine.config.lora, name="learn")
        ref = engine.adapters.save(res.tensors, res.lora_config, namespace="ns", session="s")
        # Held-out queries the adapter never saw, on the context it would serve from (S~).
        held = [
            Example(engine.compressed([*map(Message.from_dict, history), Message("user", q)]), persona(q))
            for q in HELD_OUT
        ]
        before = answer_nll(engine.surrogate, held)
        after = answer_nll(engine.surrogate, held, ref)
        assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)
        assert sum(before) / 3 - sum(after) / 3 > 0.2, (before, after)


def _greedy(engine: SomaEngine, messages: list[Message], n: int = 12) -> str:
    """The surrogate's own greedy continuation (special tokens excluded): an answer it
    reproduces almost surely."""
    rt = engine.surrogate
    ids = torch.tensor([rt.encode(rt.render(messages))])
    special = rt.tokenizer.all_special_ids
    with torch.no_grad():
        for _ in range(n):
            logits = rt.model(input_ids=ids).logits[0, -1]
            logits[special] = -torch.inf
            ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    return rt.tokenizer.decode(ids[0, -n:])


def test_soma_selects_the_turns_the_surrogate_reproduces_worst(tmp_path):
    model, tokenizer = build_tiny_model(seed=1)
    with torch.no_grad():
        model.model.norm.weight.mul_(20.0)  # a confident surrogate: its greedy answers are likely
    with _engine(tmp_path, model, tokenizer, strategy="soma", lora={"train_fraction": 0.5}) as engine:
        own = {0, 2}  # turns whose "teacher" answer is the surrogate's own greedy output

        def answer(i, history, query):
            if i in own:
                return _greedy(engine, engine.compressed([Message.from_dict(m) for m in history]))
            return persona(query)

        records, _ = _session(answer)
        plan = plan_training(engine.services, records, None)
        assert len(plan.hardness) == 4 and plan.timings["mining"] > 0
        assert plan.selected == [1, 3]  # |H| = ceil(0.5 · 4) = 2: the persona turns
        assert max(plan.hardness[i] for i in own) < min(plan.hardness[i] for i in (1, 3))
        # "Reproduces worst" in likelihood terms too: H are the turns of highest base NLL.
        nll = answer_nll(engine.surrogate, [Example(e.messages, e.answer) for e in plan.train])
        order = [e.answer for e in plan.train]
        by_nll = sorted(range(4), key=lambda i: -nll[i])[:2]
        assert {order[i] for i in by_nll} == {records[i].answer for i in plan.selected}
        # ω ∝ r on H; the other training turns are kept for validation only.
        assert [e.weight for e in plan.fit] == pytest.approx([plan.hardness[i] for i in plan.selected])
        assert [e.answer for e in plan.validation] == [records[i].answer for i in sorted(own)]


def test_budgets_seeds_and_validation_flags(tmp_path):
    with _engine(tmp_path, strategy="history-ft") as engine:
        records, _ = _session()
        plan = plan_training(engine.services, records, None)
        assert len(plan.train) == 4 and plan.validation == [] and plan.hardness == []
        assert all(e.weight == 1.0 for e in plan.train)

        engine.config.strategy = "random-ft"
        budget = training_budget(4, engine.config.lora.train_fraction)
        first = plan_training(engine.services, records, None)
        assert len(first.fit) == budget == 3 and len(first.validation) == 1
        assert plan_training(engine.services, records, None).selected == first.selected  # seeded
        picks = set()
        for seed in range(8):
            engine.config.lora.seed = seed
            picks.add(tuple(plan_training(engine.services, records, None).selected))
        assert len(picks) > 1  # and uniformly sampled, not fixed

        engine.config.strategy = "soma"
        soma = plan_training(engine.services, records, None)
        assert len(soma.fit) == budget  # the same budget as random-ft
        one = plan_training(engine.services, records[:2], None)  # one training turn: nothing to select
        assert len(one.train) == 1 and one.validation == []


def test_mining_scores_exactly_the_training_contexts(tmp_path, monkeypatch):
    seen = {}
    real_mine = miner_module.mine

    def spy(model, tokenizer, turns, config, **kw):
        seen["turns"], seen["kw"] = turns, kw
        return real_mine(model, tokenizer, turns, config, **kw)

    monkeypatch.setattr(miner_module, "mine", spy)
    with _engine(tmp_path, strategy="soma", recent_turns=1, summary_tokens=8) as engine:
        records, _ = _session()
        plan = plan_training(engine.services, records, None)
        trained = {e.answer: [template_dict(m) for m in e.messages] for e in plan.train}
        assert len(seen["turns"]) == 4
        for messages, answer in seen["turns"]:
            assert messages == trained[answer]  # S~_t, not the full S_t
        full = records[3].messages
        assert len(seen["turns"][3][0]) < len(full)  # the context was really compressed
        # The CPU time budget caps the sequences (soma_engine/budget.py); mining and training share the cap.
        assert seen["kw"]["max_seq_len"] == min(engine.config.lora.max_seq_len, CPU_MAX_SEQ_LEN)
        assert plan.max_seq_len == CPU_MAX_SEQ_LEN and plan.budget["mining"]["ran"]["steps"] >= 1


def test_teacher_probes_are_made_within_budget_and_counted(tmp_path):
    calls: list[list[Message]] = []

    def teacher(messages):
        calls.append(messages)
        return persona_teacher(messages), {"input_tokens": 3, "output_tokens": 2}

    with _engine(tmp_path, strategy="soma", mining={"probe_teacher": True, "probe_budget": 2}) as engine:
        records, _ = _session()
        plan = plan_training(engine.services, records, teacher)
        assert plan.probe_calls == len(calls) == 2
        assert all(isinstance(m, Message) for m in calls[0])
        hardest = sorted(range(4), key=lambda i: -plan.hardness[i])[:2]
        # F sees the full context D_{t-1} ⊕ q_t, with V(P) prepended to the query.
        assert sorted(len(c) for c in calls) == sorted(len(records[i].messages) for i in hardest)
        assert all(c[-1].content.endswith(records[i].query) for c, i in zip(calls, hardest, strict=True))
        h = len(plan.selected)
        probes = plan.fit[h:]
        assert len(probes) == 2
        assert all(p.weight == pytest.approx(sum(e.weight for e in plan.fit[:h]) / h) for p in probes)

        async def async_teacher(messages):
            await asyncio.sleep(0)
            return persona_teacher(messages)

        assert plan_training(engine.services, records, async_teacher).probe_calls == 2

        def broken(messages):
            raise RuntimeError("teacher down")

        plan = plan_training(engine.services, records, broken)
        assert plan.probe_calls == 2 and len(plan.fit) == len(plan.selected)  # counted, nothing added

        engine.config.mining.probe_teacher = False
        assert plan_training(engine.services, records, teacher).probe_calls == 0 and len(calls) == 2


# ---------------------------------------------------------------------------------------------
# No silent no-ops: an adaptation that learned nothing is never served as adapted
# ---------------------------------------------------------------------------------------------


def _noise_teacher(seed: int):
    """A teacher whose answers cannot be learned: fresh random letters every turn, unrelated to
    the query and to every other answer."""
    import random

    rng = random.Random(seed)

    def teacher(messages: list[Message]) -> str:
        return " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(5)) for _ in range(12))

    return teacher


def _served_engine(tmp_path, gate: dict | None = None, **lora) -> SomaEngine:
    model, tokenizer = build_tiny_model(visible_only=True)  # its greedy answers are usable turns
    runtime = SurrogateRuntime(None, model=model, tokenizer=tokenizer, device="cpu")
    cfg = _config(
        strategy="history-ft",
        adaptation="inline",
        max_new_tokens=8,
        lora={"steps": 4, "eval_every": 1, **lora},
        # the permissive floor of the failure
        gate={"min_fidelity": 0.0, "audit_rate": 0.0, "locality_threshold": 4.0, **(gate or {})},
    )
    return SomaEngine(config=cfg, surrogate=runtime, encoder=None, store=f"sqlite:///{tmp_path / 's.db'}")


def test_an_adaptation_that_never_beats_step_zero_is_recorded_as_no_improvement(tmp_path):
    teacher = _noise_teacher(0)
    with _served_engine(tmp_path, lr=1e-7) as engine:
        history: list[dict] = [{"role": "system", "content": SYSTEM}]
        for query in WARM:
            history.append({"role": "user", "content": query})
            reply = engine.chat("noise", history, teacher)
            assert reply.served_by == "teacher"
            history.append({"role": "assistant", "content": reply.text})
        view = engine.session("noise")
        last = view.decisions[-1]
        assert last["no_improvement"] is True and last["accepted"] is False and last["adapter_id"] is None
        assert "no improvement" in last["reason"] and last["budget"]["lora"]["ran"] >= 1
        assert view.phase is not Phase.SERVING and view.adapter_id is None
        history.append({"role": "user", "content": HELD_OUT[0]})
        assert engine.chat("noise", history, teacher).served_by == "teacher"


def test_the_gate_refuses_an_adapter_equal_to_the_base_under_a_permissive_floor(tmp_path):
    # The failure: the step-0 adapter (every lora_B zero, i.e. the base model) was
    # accepted with "improvement 0.0000" and served as if adapted.
    teacher = _noise_teacher(1)
    with _served_engine(tmp_path, lr=1e-7) as engine:
        records, _ = _session(lambda i, history, query: teacher([]))
        plan = plan_training(engine.services, records, None)
        res = train_adapter(engine.surrogate, plan.train, [], engine.config.lora, name="zero")
        assert all(torch.count_nonzero(v) == 0 for k, v in res.tensors.items() if "lora_B" in k)
        ref = engine.adapters.save(res.tensors, res.lora_config, namespace="ns", session="s")
        outcome = jobs._gate(engine.services, plan, ref, None, records)
        assert outcome.gap_new == pytest.approx(outcome.gap_old)  # the adapter IS the base model
        assert not outcome.decision.accepted and "no improvement" in outcome.decision.reason


# One topic, so the gate's locality check passes and only the fidelity floor decides.
TOMATOES = [
    "How often should I water my tomato plants?",
    "Which fertiliser suits my tomato plants?",
    "When should I prune my tomato plants?",
    "How do I keep pests off my tomato plants?",
    "Do my tomato plants need full sun?",
    "How tall do my tomato plants grow?",
    "Can my tomato plants grow in pots?",
]


def _warm(engine: SomaEngine, teacher, session: str = "noise") -> list[dict]:
    history: list[dict] = [{"role": "system", "content": "You are a gardener."}]
    for query in TOMATOES[:5]:
        history.append({"role": "user", "content": query})
        history.append({"role": "assistant", "content": engine.chat(session, history, teacher).text})
    return history


def test_a_permissive_gate_serves_the_base_surrogate_as_the_base_never_as_an_adapter(tmp_path):
    # gate.min_improvement=None (the floor alone decides) and a teacher that cannot be learned:
    # training keeps the untrained adapter, i.e. the base model. The base clears the floor of 0,
    # so it may serve, but as the base: no adapter saved or named, served_by_detail "base".
    teacher = _noise_teacher(2)
    with _served_engine(tmp_path, gate={"min_improvement": None}, lr=1e-7) as engine:
        history = _warm(engine, teacher)
        view = engine.session("noise")
        base = next(d for d in reversed(view.decisions) if d.get("kind") == "adaptation")
        assert base["base"] is True and base["no_improvement"] is True and base["accepted"] is True, base["reason"]
        assert base["adapter_id"] is None and "base surrogate serves" in base["reason"]
        assert view.phase is Phase.SERVING and view.adapter_id is None
        assert view.metrics["served_by_detail"] == "base" and view.metrics["lineage"] == []
        assert engine.adapters.list() == []  # the untrained adapter was never saved

        history.append({"role": "user", "content": TOMATOES[5]})
        reply = engine.chat("noise", history, teacher)
        assert reply.served_by == "surrogate" and reply.soma["served_by_detail"] == "base"
        assert "adapter_id" not in reply.soma
        unadapted = engine.surrogate.generate(
            engine.compressed(engine.route("x", history).messages), None, max_new_tokens=8
        )
        assert reply.text == unadapted.text  # token for token the unadapted model
        turn = engine.session("noise").turns[-1]
        assert (turn.served_by, turn.served_by_detail, turn.adapter_id) == ("surrogate", "base", None)

        history += [{"role": "assistant", "content": reply.text}, {"role": "user", "content": TOMATOES[6]}]
        route = engine.route("noise", history)
        assert route.target == "surrogate" and route.adapter_id is None
        *pieces, final = list(engine.stream(route))
        assert "".join(pieces) == final.text and final.soma["served_by_detail"] == "base"
        assert "adapter_id" not in final.soma


def test_a_base_surrogate_below_the_floor_is_refused_and_the_teacher_serves(tmp_path):
    teacher = _noise_teacher(3)
    with _served_engine(tmp_path, gate={"min_improvement": None, "min_fidelity": 1.0}, lr=1e-7) as engine:
        history = _warm(engine, teacher)
        view = engine.session("noise")
        base = next(d for d in reversed(view.decisions) if d.get("kind") == "adaptation")
        assert base["base"] is True and base["accepted"] is False and "refused too" in base["reason"]
        assert view.phase is not Phase.SERVING and view.adapter_id is None and "served_by_detail" not in view.metrics
        history.append({"role": "user", "content": TOMATOES[5]})
        reply = engine.chat("noise", history, teacher)
        assert reply.served_by == "teacher" and "served_by_detail" not in reply.soma
