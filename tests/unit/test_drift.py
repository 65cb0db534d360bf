"""Drift, audits, rollback and re-switch on a real engine (issue 5): the bundled MiniLM encoder
(loaded once for the run), the tiny random surrogate, SQLite.

Sessions are scripted with the long-tail shape of Sec. 2.2: four long, information-dense
opening turns served by the teacher (the warm window), then short dependent follow-ups
("Should I accept 780?"). The locality gate runs with its default thresholds (measured in
benchmarks/drift.py); the acceptance gate is permissive (min_fidelity 0) so that the
session switches after its 4th turn, except where a test says otherwise.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import data  # benchmarks/data.py (pytest's pythonpath holds benchmarks/)
import drift  # benchmarks/drift.py
import numpy as np
import pytest

from soma_engine import Phase, SessionKey, SomaEngine
from soma_engine.adaptation import jobs as jobs_module
from soma_engine.adapters import AdapterRef
from soma_engine.config import GateConfig
from soma_engine.drift import detector
from soma_engine.drift.locality import SessionLocality
from soma_engine.session import transitions
from soma_engine.types import normalize_messages

SYSTEM = "You are a calm, practical negotiation coach. Answer in two or three sentences."

WARM = [
    (
        "I'm selling my road bike: a 2019 carbon frame with a Shimano 105 groupset, new tyres and a fresh "
        "service last month. Similar bikes list for 850 to 1000 dollars. I'd like to get about 900. How should "
        "I write the listing and what price should I put on it?",
        "List it at about 950 dollars so you have room to come down. Lead with the groupset, the recent "
        "service and the new tyres, add clear daylight photos, and say you are open to reasonable offers.",
    ),
    (
        "A buyer messaged me. He says he has cash, can pick the bike up tomorrow, and offers 700 because he saw "
        "a similar model for that price last month. He sounds serious but pushy. How do I reply?",
        "Thank him, acknowledge the cash and the quick pickup, and explain why your bike is worth more: the "
        "service and the new tyres. Counter politely at 880 and invite him to see it in person.",
    ),
    (
        "He answered that 700 is his budget, but he might stretch a little if I include the pedals and the "
        "bottle cages. The pedals cost me 60 dollars. What counter-offer makes sense?",
        "Offer the pedals and cages as a package at 820; they cost you little now and make the deal feel "
        "generous. Keep the accessories as your trade, not an extra discount.",
    ),
    (
        "I countered at 860 with the pedals included. He said that is too much and asked whether I would meet "
        "him in the middle. What does meeting in the middle mean here, and should I accept?",
        "Meeting in the middle lands around 780 dollars. That is reasonable given his cash and quick pickup, "
        "but you can hold at 800 if other buyers are interested.",
    ),
]

ON_TOPIC = [
    "He says 780 is final.",
    "Should I accept 780?",
    "What if I ask for 800?",
    "He agreed to 800!",
    "Should I ask for cash or a transfer?",
    "He wants to test ride it first. Is that safe?",
    "Should I hold his ID during the ride?",
    "Is that too aggressive?",
    "OK, anything else before we meet?",
    "Should I give him a receipt?",
    "What should the receipt say?",
    "He asked if the saddle is included.",
    "Should I throw in the bottle cages anyway?",
    "He's late. Should I wait?",
    "He arrived and loves the bike.",
    "Thanks, how do I close the deal politely?",
]

SHIFTS = {
    "recipe": [
        "By the way, what's a good recipe for banana bread?",
        "How long should it bake?",
        "Can I use whole wheat flour?",
    ],
    "geography": [
        "Random question: what is the capital of Peru and how many people live there?",
        "What language do they speak there?",
        "Is it at high altitude?",
    ],
    "medical": [
        "I've had a headache behind my right eye for four days and it gets worse at the computer. Should I be worried?",
        "No fever, but my vision is a bit blurry in the evening. Can I take ibuprofen?",
        "I also drink five cups of coffee a day. Could that be it?",
    ],
}


def coach(messages: Any) -> str:
    """A scripted teacher: a coach who answers about the bike sale, or about anything else."""
    query = messages[-1].content.lower() if hasattr(messages[-1], "content") else messages[-1]["content"].lower()
    for q, a in WARM:
        if q.lower() == query:
            return a
    if any(w in query for w in ("bread", "bake", "flour")):
        return "Mash three ripe bananas, mix with butter, sugar, an egg and flour, and bake for about an hour."
    if any(w in query for w in ("peru", "language", "altitude")):
        return "Lima is the capital of Peru, with about eleven million people; Spanish is the main language."
    if any(w in query for w in ("headache", "vision", "coffee")):
        return "Screen strain, poor sleep and caffeine are common causes; see a doctor if it gets worse."
    return "Hold firm near 800 for the bike, stay friendly, and count the cash before you hand it over."


class Teacher:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: Any) -> str:
        self.calls += 1
        return coach(messages)


class Conversation:
    """The app's side: keeps the history and sends it with each new user turn."""

    def __init__(self, engine: SomaEngine, sid: str, teacher: Teacher | None = None) -> None:
        self.engine, self.sid = engine, sid
        self.teacher = teacher or Teacher()
        self.history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]

    def say(self, query: str) -> Any:
        self.history.append({"role": "user", "content": query})
        reply = self.engine.chat(self.sid, self.history, self.teacher)
        self.history.append({"role": "assistant", "content": reply.text})
        return reply

    def warm_up(self) -> str:
        for q, _ in WARM:
            assert self.say(q).served_by == "teacher"
        view = self.engine.session(self.sid)
        assert view.phase is Phase.SERVING, view.decisions
        return view.adapter_id


def drift_config(permissive_config: Any, **gate: Any) -> Any:
    """Permissive acceptance (min_fidelity 0), default locality thresholds, no random audits,
    a drift threshold no Gap passes unless a test sets one."""
    defaults = GateConfig()
    base = {
        "min_fidelity": 0.0,
        "min_improvement": None,
        "locality_threshold": defaults.locality_threshold,
        "locality_severe_margin": defaults.locality_severe_margin,
        "audit_rate": 0.0,
        "drift_threshold": 1.0,
    }
    return permissive_config(gate={**base, **gate})


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'soma.db'}"


# ------------------------------------------------------------------------------- locality scenarios


def test_steady_session_of_20_turns_does_not_roll_back(new_engine: Any, permissive_config: Any, store: str) -> None:
    with new_engine(store, config=drift_config(permissive_config)) as engine:
        convo = Conversation(engine, "steady")
        adapter = convo.warm_up()
        for query in ON_TOPIC:
            reply = convo.say(query)
            assert reply.soma["phase"] == Phase.SERVING.value, (query, reply.soma)
            if reply.served_by == "surrogate":
                assert "locality" in reply.soma and reply.soma["adapter_id"] == adapter
        engine.wait_idle()
        view = engine.session("steady")
        assert len(view.turns) == 20
        assert view.phase is Phase.SERVING and view.adapter_id == adapter
        assert view.metrics["rollbacks"] == 0
        assert not [d for d in view.decisions if d.get("kind") == "rollback"]
        assert view.served_by.count("surrogate") >= 12  # a few tiny-model fallbacks are allowed
        assert convo.teacher.calls == 20 - view.served_by.count("surrogate")


@pytest.mark.parametrize("topic", sorted(SHIFTS))
def test_abrupt_topic_shift_rolls_back_within_two_turns(
    new_engine: Any, permissive_config: Any, store: str, topic: str
) -> None:
    with new_engine(store, config=drift_config(permissive_config)) as engine:
        convo = Conversation(engine, f"shift-{topic}")
        convo.warm_up()
        for query in ON_TOPIC[:5]:
            assert convo.say(query).soma["phase"] == Phase.SERVING.value
        shift_turn = len(engine.session(convo.sid).turns) + 1
        replies = [convo.say(q) for q in SHIFTS[topic][:2]]
        view = engine.session(convo.sid)
        assert view.metrics["rollbacks"] == 1, [r.soma for r in replies]
        rolled = next(i for i, r in enumerate(replies) if r.soma["phase"] == Phase.ROLLED_BACK.value)
        assert rolled <= 1  # at the shift turn or the next one
        reply = replies[rolled]
        assert reply.served_by == "teacher" and reply.soma["turn"] == shift_turn + rolled
        assert "rolled back" in reply.soma["reason"]
        rollback = next(d for d in view.decisions if d.get("kind") == "rollback")
        assert "locality" in rollback["rollback"] and rollback["turn"] == shift_turn + rolled - 1
        # Back on the teacher from then on.
        assert convo.say(SHIFTS[topic][2]).served_by == "teacher"
        assert engine.session(convo.sid).phase is Phase.ROLLED_BACK


# ------------------------------------------------------------------------------- audits


def _audited_session(engine: SomaEngine, sid: str, turns: int) -> Conversation:
    """A serving session asked the same on-topic question over and over (never borderline)."""
    convo = Conversation(engine, sid)
    convo.warm_up()
    for _ in range(turns):
        convo.say("Should I accept 780?")
    engine.wait_idle()
    return convo


def test_audit_rate_holds_within_binomial_range(new_engine: Any, permissive_config: Any, store: str) -> None:
    rate, seed, n = 0.3, 1234, 60
    config = drift_config(permissive_config, audit_rate=rate, audit_seed=seed)
    with new_engine(store, config=config) as engine:
        convo = _audited_session(engine, "audited", n)
        view = engine.session("audited")
        served = view.served_by.count("surrogate")
        audits = view.metrics["audit_calls"]
        # The seeded sampler draws once per surrogate turn of this session (no borderline turn here)...
        digest = SessionKey("default", "audited").digest
        turns = [t for t, by in enumerate(view.served_by, 1) if by == "surrogate"]
        draws = [random.Random(f"audit-{seed}-{digest}-{t}").random() for t in turns]
        assert audits == sum(d < rate for d in draws)
        assert sorted(d["audit_turn"] for d in view.decisions if d.get("kind") == "audit") == [
            t for t, d in zip(turns, draws, strict=True) if d < rate
        ]
        # ...and the count sits in the binomial range.
        sd = math.sqrt(served * rate * (1 - rate))
        assert abs(audits - served * rate) <= 4 * sd
        # Audits are teacher calls, counted as teacher tokens.
        assert convo.teacher.calls == view.metrics["teacher_calls"] + audits
        assert view.metrics["audit_input_tokens"] > 0
        m = view.metrics
        assert m["teacher_tokens"] == (
            m["teacher_input_tokens"] + m["teacher_output_tokens"] + m["audit_input_tokens"] + m["audit_output_tokens"]
        )
        audit_records = [d for d in view.decisions if d.get("kind") == "audit"]
        assert len(audit_records) == audits and all(0.0 <= d["gap"] <= 1.0 for d in audit_records)


def test_borderline_turns_are_always_audited(new_engine: Any, permissive_config: Any, store: str) -> None:
    # every turn borderline (the audit band covers all statistics), no pair rollback, rate 0
    config = drift_config(permissive_config, locality_threshold=3.0, locality_audit_margin=3.0, audit_rate=0.0)
    with new_engine(store, config=config) as engine:
        _audited_session(engine, "borderline", 6)
        view = engine.session("borderline")
        assert view.metrics["surrogate_calls"] >= 1
        assert view.metrics["audit_calls"] == view.metrics["surrogate_calls"]
        assert all(d["borderline"] for d in view.decisions if d.get("kind") == "audit")


def test_consecutive_audit_breaches_roll_back(new_engine: Any, permissive_config: Any, store: str) -> None:
    # every Gap > 0 is a breach; two in a row roll back
    config = drift_config(permissive_config, audit_rate=1.0, drift_threshold=0.0, consecutive=2)
    with new_engine(store, config=config) as engine:
        convo = Conversation(engine, "breaches")
        convo.warm_up()
        served = 0
        for _ in range(8):
            reply = convo.say("Should I accept 780?")
            engine.wait_idle()
            served += reply.served_by == "surrogate"
            if engine.session("breaches").phase is Phase.ROLLED_BACK:
                break
        view = engine.session("breaches")
        assert view.phase is Phase.ROLLED_BACK and view.metrics["rollbacks"] == 1
        audits = [d for d in view.decisions if d.get("kind") == "audit"]
        assert len(audits) == 2 and audits[-1]["rollback"] and not audits[0]["rollback"]
        assert all(d["breach"] for d in audits)
        assert "audit Gap" in next(d for d in view.decisions if d.get("kind") == "rollback")["rollback"]
        assert engine.store.get(SessionKey("default", "breaches")).parked is None  # bad answers: not resumed
        assert convo.say("Should I accept 780?").served_by == "teacher"


# ------------------------------------------------------------------------------- rollback and re-switch


@pytest.mark.parametrize("readapt_window", [None, 2])
def test_rollback_then_readapt_from_current_adapter(
    new_engine: Any, permissive_config: Any, store: str, monkeypatch: pytest.MonkeyPatch, readapt_window: int | None
) -> None:
    inits: list[Any] = []
    real_train = jobs_module.train_adapter

    def spy(*args: Any, **kwargs: Any) -> Any:
        inits.append(kwargs.get("init_tensors"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(jobs_module, "train_adapter", spy)
    config = drift_config(permissive_config).model_copy(update={"readapt_window": readapt_window})
    with new_engine(store, config=config) as engine:
        convo = Conversation(engine, "reswitch")
        first = convo.warm_up()
        state = engine.store.get(SessionKey("default", "reswitch"))
        old_bank = state.locality["bank"]
        for query in ON_TOPIC[:3]:
            convo.say(query)
        for query in SHIFTS["medical"][:2]:
            convo.say(query)
        # With readapt_window 2 the two teacher-served shift turns already re-adapted.
        expected = Phase.ROLLED_BACK if readapt_window is None else Phase.SERVING
        assert engine.session("reswitch").phase is expected
        rollback = next(d for d in engine.session("reswitch").decisions if d.get("kind") == "rollback")
        # The teacher serves the new topic (the rolled-back turn included); after warm_window
        # fresh teacher turns the session re-adapts.
        fresh = iter(
            [
                *SHIFTS["medical"][2:],
                "I sleep badly and skip lunch at work. Could that make the headaches worse?",
                "What warning signs would mean I should see a doctor quickly?",
                "Would an eye test help with the blurry vision at the computer?",
            ]
        )
        while engine.session("reswitch").phase is not Phase.SERVING:
            assert convo.say(next(fresh)).served_by == "teacher"
        assert len(engine.session("reswitch").turns) - rollback["turn"] == (readapt_window or engine.config.warm_window)
        view = engine.session("reswitch")
        assert view.phase is Phase.SERVING, view.decisions
        assert view.adapter_id != first
        ref = AdapterRef.from_dict(engine.store.get(SessionKey("default", "reswitch")).adapter)
        assert ref.version == 2 and ref.parent == first
        assert inits[0] is None and inits[-1] is not None  # re-adaptation starts from the parent's weights
        gates = [d for d in view.decisions if d.get("kind") == "adaptation"]
        assert len(gates) == 2 and gates[-1]["accepted"] and gates[-1]["parent"] == first
        assert gates[-1]["turn"] == rollback["turn"] + (readapt_window or engine.config.warm_window)
        # The locality bank was rebuilt from the fresh turns: the new topic is now local.
        state = engine.store.get(SessionKey("default", "reswitch"))
        assert state.locality["bank"] != old_bank
        reply = convo.say("Is it okay to keep drinking coffee in the morning?")
        assert reply.soma["phase"] == Phase.SERVING.value


RETURN = ["Back to the bike: he says 780 is final. Should I accept it?", "Should I ask for cash or a transfer?"]


@pytest.mark.parametrize("resume", [True, False])
def test_detour_parks_the_adapter_and_a_return_resumes_it(
    new_engine: Any, permissive_config: Any, store: str, resume: bool
) -> None:
    config = drift_config(permissive_config, resume_threshold=0.8 if resume else 0.0)
    with new_engine(store, config=config) as engine:
        convo = Conversation(engine, "detour")
        first = convo.warm_up()
        for query in [*ON_TOPIC[:3], *SHIFTS["recipe"]]:
            convo.say(query)
        view = engine.session("detour")
        assert view.phase is Phase.ROLLED_BACK and view.served_by[-1] == "teacher"
        parked = engine.store.get(SessionKey("default", "detour")).parked
        assert (parked is not None) is resume
        replies = [convo.say(q) for q in RETURN]
        view = engine.session("detour")
        resumes = [d for d in view.decisions if d.get("kind") == "resume"]
        if not resume:
            assert all(r.served_by == "teacher" for r in replies) and not resumes
            assert view.metrics["resumes"] == 0
            return
        # The first on-topic query brings the accepted adapter back: no re-adaptation, no new
        # teacher turns beyond the detour's.
        assert replies[0].soma["phase"] == Phase.SERVING.value, replies[0].soma
        assert "resumed" in replies[0].soma["reason"]
        assert replies[0].soma["adapter_id"] == first
        assert view.metrics["resumes"] == 1 and view.metrics["adaptations"] == 1
        assert len(resumes) == 1 and resumes[0]["adapter_id"] == first and resumes[0]["parked_at"] == parked["turn"]
        assert resumes[0]["resume_statistic"] < 0.8
        assert view.adapter_id == first and engine.store.get(SessionKey("default", "detour")).parked is None
        taught = [t.query for t in view.turns[4:] if t.served_by == "teacher" and not t.fallback]
        assert taught and set(taught) <= set(SHIFTS["recipe"])  # only detour turns went to the teacher
        # A second detour parks again.
        for query in SHIFTS["geography"][:2]:
            convo.say(query)
        assert engine.session("detour").metrics["rollbacks"] == 2


def test_a_detour_query_does_not_resume(new_engine: Any, permissive_config: Any, store: str) -> None:
    with new_engine(store, config=drift_config(permissive_config)) as engine:
        convo = Conversation(engine, "away")
        convo.warm_up()
        for query in [*ON_TOPIC[:3], *SHIFTS["recipe"][:2], *SHIFTS["geography"][:2]]:
            convo.say(query)
        view = engine.session("away")
        assert view.served_by[-3:] == ["teacher"] * 3 and view.metrics["resumes"] == 0
        assert engine.store.get(SessionKey("default", "away")).parked is not None


def test_gate_must_pass_again_before_switching_back(new_engine: Any, permissive_config: Any, store: str) -> None:
    with new_engine(store, config=drift_config(permissive_config)) as engine:
        convo = Conversation(engine, "strict-again")
        convo.warm_up()
        for query in [*ON_TOPIC[:3], *SHIFTS["recipe"][:2]]:
            convo.say(query)
        assert engine.session("strict-again").phase is Phase.ROLLED_BACK
        history = convo.history
    # The same session on a new engine whose gate cannot pass: it stays on the teacher.
    with new_engine(store, config=drift_config(permissive_config, min_fidelity=1.0)) as engine:
        convo = Conversation(engine, "strict-again")
        convo.history = history
        for query in ["Can I add walnuts?", "Should I use baking soda or powder?", "How ripe should they be?"]:
            assert convo.say(query).served_by == "teacher"
        reply = convo.say("Can I freeze the loaf?")
        assert reply.served_by == "teacher"
        view = engine.session("strict-again")
        assert view.phase is Phase.REJECTED
        last = [d for d in view.decisions if d.get("kind") == "adaptation"][-1]
        assert not last["accepted"] and "fidelity" in last["reason"]
        assert reply.soma["decision"]["accepted"] is False
        assert view.metrics["more_turns_needed"] >= 1
        assert convo.say("Thanks!").served_by == "teacher"


# ------------------------------------------------------------------------------- decisions


def test_decisions_survive_a_restart(new_engine: Any, permissive_config: Any, store: str) -> None:
    config = drift_config(permissive_config)
    with new_engine(store, config=config) as engine:
        convo = Conversation(engine, "durable")
        convo.warm_up()
        reply = convo.say("Should I accept 780?")
        before = engine.session("durable")
        history = convo.history
    gate_record = next(d for d in before.decisions if d.get("kind") == "adaptation")
    for key in ("accepted", "mode", "n", "n_eff", "delta_hat", "gamma", "epsilon", "delta", "fidelity"):
        assert key in gate_record
    assert gate_record["mode"] == "fidelity" and gate_record["bound_met"] is False  # |B| = 1 cannot meet Thm 4.2
    assert reply.soma["decision"]["accepted"] is True and "gap" in reply.soma
    with new_engine(store, config=config) as again:
        view = again.session("durable")
        assert view.decisions == before.decisions
        assert view.metrics["gate"] == before.metrics["gate"]
        convo = Conversation(again, "durable")
        convo.history = history
        reply = convo.say("What if I ask for 800?")
        assert reply.soma["phase"] == Phase.SERVING.value
        assert reply.soma["decision"]["n"] == gate_record["n"]


# ------------------------------------------------------------------------------- bound mode


def _scripted_gaps(monkeypatch: pytest.MonkeyPatch, old_level: float, new_level: float) -> list[int]:
    """Replace the Gap measurement by a scripted one (Gap_old ≈ old_level, Gap_new ≈
    new_level, with a little noise so that N_eff ≈ n); returns the batch sizes asked for."""
    asked: list[int] = []

    def gaps(engine: Any, ref: Any, parent: Any, batch: list[Any]) -> tuple[list[float], list[float]]:
        asked.append(len(batch))
        old = [old_level - 0.02 * (r.turn % 2) for r in batch]
        new = [min(1.0, max(0.0, new_level + 0.03 * (r.turn % 3 - 1))) for r in batch]
        return old, new

    monkeypatch.setattr(jobs_module, "held_out_gaps", gaps)
    return asked


def test_bound_mode_grows_the_batch_by_shadow_evaluation(
    new_engine: Any, permissive_config: Any, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ε = 0, δ = 0.5: looks at |B| = 3, 6, 12; with Δ̂ ≈ 0.86 the look at 6 passes (γ = 0.83)
    config = drift_config(permissive_config, mode="bound", epsilon=0.0, delta=0.5, max_batch=12)
    asked = _scripted_gaps(monkeypatch, old_level=0.92, new_level=0.05)
    with new_engine(store, config=config) as engine:
        convo = Conversation(engine, "bound")
        for q, _ in WARM:
            convo.say(q)
        view = engine.session("bound")
        assert view.phase is Phase.REJECTED  # |B| = 1: the candidate goes to shadow evaluation
        assert view.metrics["job"]["status"] == "shadow"
        assert view.metrics["more_turns_needed"] == 2  # the first look is at |B| = 3
        replies = [convo.say(q) for q in ON_TOPIC[:5]]
        assert all(r.served_by == "teacher" for r in replies)
        assert [r.soma["decision"]["n"] for r in replies[:4]] == [2, 3, 4, 5]
        assert [r.soma["decision"]["more_turns_needed"] for r in replies[:4]] == [1, 3, 2, 1]
        view = engine.session("bound")
        assert view.phase is Phase.SERVING, view.decisions
        assert asked == [1, 1, 1, 1, 1, 1]  # one held-out warm turn, then one context per teacher turn
        assert convo.teacher.calls == 9  # shadow evaluation asked the teacher nothing
        looks = [d for d in view.decisions if d.get("kind") == "shadow"]
        assert [d["n"] for d in looks] == [3, 6]
        assert not looks[0]["accepted"] and looks[1]["accepted"]
        assert looks[1]["delta"] == pytest.approx(0.5 / 4)  # δ_2 = δ / 2²
        assert looks[1]["delta_hat"] >= looks[1]["epsilon"] + looks[1]["gamma"]
        assert view.metrics["shadow_contexts"] == 5
        assert convo.say("Should I accept 780?").soma["phase"] == Phase.SERVING.value


def test_bound_mode_stops_a_candidate_that_cannot_pass(
    new_engine: Any, permissive_config: Any, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = drift_config(permissive_config, mode="bound", epsilon=0.0, delta=0.5, max_batch=12)
    _scripted_gaps(monkeypatch, old_level=0.06, new_level=0.95)  # the candidate is much worse
    with new_engine(store, config=config) as engine:
        convo = Conversation(engine, "futile")
        for q, _ in WARM:
            convo.say(q)
        for q in ON_TOPIC[:5]:
            convo.say(q)
        view = engine.session("futile")
        assert view.phase is Phase.REJECTED
        looks = [d for d in view.decisions if d.get("kind") == "shadow"]
        assert [d["n"] for d in looks] == [3, 6]  # not decidable at 3 (γ = 0.96), futile at 6
        look = looks[-1]
        assert look["final"] and not look["accepted"] and "upper bound below epsilon" in look["reason"]
        assert look["delta_hat"] + look["gamma"] < look["epsilon"]
        assert view.metrics["job"]["status"] == "done"
        assert view.metrics["more_turns_needed"] == engine.config.warm_window // 2


def test_decision_log_keeps_the_latest_gate_decision() -> None:
    class St:
        decisions: list[dict[str, Any]] = []

    st = St()
    transitions.push_decision(st, {"kind": "adaptation", "accepted": True, "n": 1})
    for i in range(2 * transitions.DECISIONS_KEPT):
        transitions.push_decision(st, {"kind": "audit", "gap": 0.1, "audit_turn": i})
    assert len(st.decisions) == transitions.DECISIONS_KEPT
    assert st.decisions[0] == {"kind": "adaptation", "accepted": True, "n": 1}
    assert st.decisions[-1]["audit_turn"] == 2 * transitions.DECISIONS_KEPT - 1


# ------------------------------------------------------------------------------- benchmark splits


def test_blind_splits_pool_by_counts_not_by_averaging_rates() -> None:
    a = {"detected": 41, "shift_sessions": 48, "false_rollbacks": 6, "sessions": 96}
    b = {"detected": 9, "shift_sessions": 10, "false_rollbacks": 0, "sessions": 20}
    p = drift.pooled({"a": a, "b": b, "c": a}, ("a", "b"))
    assert (p["detected"], p["shift_sessions"], p["false_rollbacks"], p["sessions"]) == (50, 58, 6, 116)
    assert p["detection_rate"] == round(50 / 58, 4) != round((41 / 48 + 9 / 10) / 2, 4)
    assert p["detection_ci95"] == drift.wilson(50, 58) and p["false_rollback_ci95"] == drift.wilson(6, 116)
    assert drift.pooled({"a": a}, ("a", "b")) is None
    assert set(drift.COUNTED) <= set(data.BLIND)


def test_holdout_split_has_new_texts_and_the_benchmark_shape() -> None:
    """The held-out split of benchmarks/drift.py shares no query with dev/test, has >= 8
    sessions per domain, half with an abrupt shift 3-8 follow-ups after the warm window."""
    seen = {q for sp in ("dev", "test") for s in data.make_sessions(sp, per_domain=8) for q, _ in s.turns}
    holdout = data.make_sessions("holdout", per_domain=4)
    assert not {q for s in holdout for q, _ in s.turns} & seen
    for domain in data.DOMAINS:
        mine = [s for s in holdout if s.domain == domain]
        shifts = [s for s in mine if s.shift_turn is not None]
        assert len(mine) >= 8 and len(shifts) == len(mine) // 2
        for s in shifts:
            assert 4 + 3 < s.shift_turn <= 4 + 8 + 1 and len(s.turns) == s.shift_turn + 2
        for s in mine:
            assert all(q and a and "$" not in q + a for q, a in s.turns)
    early = [s for s in data.make_sessions("holdout", per_domain=2, seed=1, shift_after=(0, 1)) if s.shift_turn]
    assert early and all(s.shift_turn <= 4 + 2 for s in early)
    with pytest.raises(ValueError, match="split"):
        data.make_sessions("train")


def test_blind_splits_are_complete_and_distinct() -> None:
    """Each split written blind fills every slot and has the benchmark's shape; no two
    splits share a scenario or an off-topic opening."""
    names: dict[str, set[str]] = {}
    openings: dict[str, set[str]] = {}
    for split in data.BLIND:
        texts = data.load_split(split)
        sessions = data.make_sessions(split, per_domain=4)
        assert len(sessions) == 48 and sum(s.shift_turn is not None for s in sessions) == 24
        slots = {k for sc in texts.scenarios for k in data.slot_values(random.Random(0), sc)}
        assert all(q and a for s in sessions for q, a in s.turns)
        left = {m for s in sessions for q, a in s.turns for m in re.findall(r"\$\{?([A-Za-z_]\w*)", q + a)}
        assert not left & slots, left & slots  # every slot filled (shell code keeps its own $HOME)
        names[split] = {s.scenario for s in sessions}
        openings[split] = {thread[0][0] for thread in texts.offtopic}
        assert len(names[split]) == 12 and len(openings[split]) == 8
    for a, b in itertools.combinations(data.BLIND, 2):
        assert not openings[a] & openings[b], (a, b)
        assert len(names[a] & names[b]) <= 2, (a, b)  # two earlier authors chose two themes alike


def test_split_files_round_trip_and_match_their_recorded_sha256() -> None:
    """Every split file is exactly what dump_split writes for what load_split reads, and its
    sha256 is the one SHA256SUMS records (and drift.py copies into its results)."""
    recorded = data.recorded_sha256()
    assert set(recorded) == set(data.SPLITS)
    for split in data.SPLITS:
        texts = data.load_split(split)
        assert data.dump_split(texts) == data.path(split).read_text(encoding="utf-8")
        assert data.sha256(split) == recorded[split]
        assert {s.domain for s in texts.scenarios} == set(data.DOMAINS) == set(texts.followups)
        assert all(len(s.warm) == 4 and len(t) == 3 for s in texts.scenarios for t in texts.offtopic)


def test_results_record_the_sha256_of_the_split_files_they_were_measured_on() -> None:
    sets = drift.build_sets(1, 1, seed=0, splits=("dev", "holdout9"))
    assert drift.split_checksums(sets) == {
        "dir": "benchmarks/data/drift",
        "sha256": {"dev": data.recorded_sha256()["dev"], "holdout9": data.recorded_sha256()["holdout9"]},
    }
    committed = json.loads((Path(drift.__file__).parent / "results" / "drift.json").read_text(encoding="utf-8"))
    measured = [sp for sp in committed["sessions"] if sp in data.SPLITS]
    assert measured and committed["data"]["sha256"] == {sp: data.sha256(sp) for sp in measured}


def _copy_splits(tmp_path: Path) -> Path:
    root = tmp_path / "drift"
    root.mkdir()
    for file in data.DRIFT.iterdir():
        (root / file.name).write_bytes(file.read_bytes())
    return root


def test_an_edited_split_fails_its_sha256_check(tmp_path: Path) -> None:
    root = _copy_splits(tmp_path)
    assert data.load_split("holdout8", root) == data.load_split("holdout8")
    file = root / "holdout8.jsonl"
    file.write_text(file.read_text(encoding="utf-8").replace("dinghy", "dingy", 1), encoding="utf-8")
    with pytest.raises(data.DataError, match=r"holdout8\.jsonl has sha256 [0-9a-f]{64} but SHA256SUMS records"):
        data.load_split("holdout8", root)


def test_unknown_or_malformed_splits_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="unknown drift split 'train': choose one of dev, test, holdout"):
        data.load_split("train")
    (tmp_path / "dev.jsonl").write_bytes(data.path("dev").read_bytes())
    with pytest.raises(data.DataError, match="SHA256SUMS is missing"):
        data.load_split("dev", tmp_path)
    root = _copy_splits(tmp_path)
    for text, error in (
        ('{"kind": "poem"}\n', "dev.jsonl:1: ValueError: kind 'poem' is not scenario, followups or offtopic"),
        ('{"kind": "offtopic", "turns": []}\n{"kind": "scenario"}\n', "dev.jsonl:2: KeyError: 'domain'"),
        ('{"kind": "offtopic", "turns": [["q"]]}\n', r"dev.jsonl:1: ValueError: a turn is \[user query"),
        ("[1, 2]\n", "dev.jsonl:1: TypeError"),
    ):
        before = data.recorded_sha256(root)["dev"]
        (root / "dev.jsonl").write_text(text, encoding="utf-8")
        sums = (root / "SHA256SUMS").read_text(encoding="utf-8")
        (root / "SHA256SUMS").write_text(sums.replace(before, data.sha256("dev", root)), encoding="utf-8")
        with pytest.raises(data.DataError, match=error):
            data.load_split("dev", root)


def test_word_embeddings_are_cached_and_match_encode(shared_encoder: Any) -> None:
    fresh = f"word{random.randrange(10**9)}"  # the shared encoder may have cached the others
    words = ["bike", "banana", "bike", "helmet"]
    first = shared_encoder.encode_words(words)
    np.testing.assert_allclose(first, shared_encoder.encode(words), atol=1e-5)
    calls: list[Any] = []
    real = shared_encoder.encode
    shared_encoder.encode = lambda texts: calls.append(texts) or real(texts)
    try:
        again = shared_encoder.encode_words(["helmet", "bike", fresh])
    finally:
        del shared_encoder.encode
    assert calls == [[fresh]]  # only the word not seen before is encoded
    np.testing.assert_allclose(again[:2], first[[3, 0]])
    assert shared_encoder.encode_words([]).shape == (0, first.shape[1])


def test_pmi_messages_condition_on_the_bank_turns_and_the_last_two_exchanges() -> None:
    from soma_engine.types import Message

    model = SessionLocality(np.eye(3), turns=WARM[:2], system=SYSTEM)
    history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    for q, a in [*WARM[:2], ("He says 780 is final.", "Hold at 800."), ("Cash?", "Yes."), ("Receipt?", "Sure.")]:
        history += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages = normalize_messages([*history, {"role": "user", "content": "Should I accept?"}])
    alone, in_context, stable = detector.pmi_messages(messages, model)
    assert alone == [Message("system", SYSTEM), Message("user", "Should I accept?")]
    expected = [Message("system", SYSTEM)]
    for q, a in [*WARM[:2], ("Cash?", "Yes."), ("Receipt?", "Sure.")]:  # the bank, then the last two others
        expected += [Message("user", q), Message("assistant", a)]
    assert in_context == [*expected, Message("user", "Should I accept?")] and stable == 5


def test_trusted_messages_drop_the_exchange_of_a_doubted_turn() -> None:
    from soma_engine.types import Message

    model = SessionLocality(np.eye(3), threshold=1.0)
    msgs = [
        Message("system", SYSTEM),
        Message("user", "Should I accept 780?"),
        Message("assistant", "Hold at 800."),
        Message("user", "How do I prune hydrangeas?"),
        Message("assistant", "In late winter."),
        Message("user", "Can I turn them pink?"),
    ]
    assert detector.trusted_messages(msgs, None, model) == msgs
    assert detector.trusted_messages(msgs, 1.0, model) == msgs  # at the threshold: ok, trusted
    assert detector.trusted_messages(msgs, 1.01, model) == [*msgs[:3], msgs[-1]]
    assert detector.trusted_messages(msgs[-1:], 2.0, model) == msgs[-1:]  # nothing before the query


def test_a_turn_after_a_doubted_one_is_scored_without_it(new_engine: Any, permissive_config: Any, store: str) -> None:
    """x_t of a follow-up inside a new subject, after a turn above the threshold: scored as if
    that turn had not been said (real encoder and surrogate), so it is no longer local to it."""
    with new_engine(store, config=drift_config(permissive_config)) as engine:
        convo = Conversation(engine, "doubt")
        convo.warm_up()
        state = engine.store.get(SessionKey("default", "doubt"))
        model = SessionLocality.from_dict(state.locality, engine.config.gate)
        shift, follow = SHIFTS["recipe"][0], SHIFTS["recipe"][1]
        detour = [{"role": "user", "content": shift}, {"role": "assistant", "content": coach([{"content": shift}])}]
        msgs = normalize_messages([*convo.history, *detour, {"role": "user", "content": follow}])
        trusting = engine.detector.score(msgs, model, previous=model.threshold)
        doubting = engine.detector.score(msgs, model, previous=model.threshold + 0.01)
        without = engine.detector.score(
            normalize_messages([*convo.history, {"role": "user", "content": follow}]), model
        )
        assert trusting is not None and doubting is not None and without is not None
        assert doubting.statistic == pytest.approx(without.statistic, abs=1e-6)
        assert doubting.novel > trusting.novel  # "bake" is new once the banana-bread exchange is set aside


def test_locality_scores_the_query_with_the_surrogates_pmi(new_engine: Any, permissive_config: Any, store: str) -> None:
    with new_engine(store, config=drift_config(permissive_config)) as engine:
        convo = Conversation(engine, "pmi")
        convo.warm_up()
        state = engine.store.get(SessionKey("default", "pmi"))
        assert [tuple(t) for t in state.locality["turns"]] == WARM and state.locality["system"] == SYSTEM
        model = SessionLocality.from_dict(state.locality, engine.config.gate)
        for query in ("Should I accept 780?", SHIFTS["recipe"][0], SHIFTS["geography"][0]):
            msgs = normalize_messages([*convo.history, {"role": "user", "content": query}])
            score = engine.detector.score(msgs, model)
            bare = model.score(*detector.locality_embeddings(engine.encoder, msgs, model))
            assert score is not None and score.statistic is not None and bare.statistic is not None
            if not model.needs_pmi(bare.statistic):  # clearly local: no forward pass, no credit
                assert score.pmi is None and score.statistic == pytest.approx(bare.statistic)
                continue
            # the statistic takes the PMI credit of the real surrogate's likelihoods
            alone, in_context, stable = detector.pmi_messages(msgs, model)
            nll = engine.surrogate.query_nll
            assert score.pmi == pytest.approx(nll(alone) - nll(in_context, stable=stable), abs=1e-4)
            credit = model.w_lm * min(max(score.pmi, 0.0), model.lm_cap)
            assert score.statistic == pytest.approx(bare.statistic - credit, abs=1e-6)
        assert model.needs_pmi(bare.statistic)  # the last query, a new subject, was scored


def test_the_detector_takes_its_thresholds_from_the_current_gate() -> None:
    """A session's stored monitor state meets the configuration of the moment (a changed
    GateConfig applies without re-adapting), and only parked sessions in a resumable phase, with
    resuming on, may resume."""

    def no_encoder() -> Any:
        raise AssertionError("the monitor and the phase rule encode nothing")

    gates = [GateConfig(drift_threshold=0.5, consecutive=2, locality_threshold=1.275)]
    det = detector.LocalityDetector(encoder=no_encoder, query_nll=None, gate=lambda: gates[0])
    stored = det.monitor(None)
    assert not stored.observe_gap(0.9)  # one breach of two
    gates[0] = GateConfig(drift_threshold=0.95, consecutive=3, locality_threshold=1.0)
    monitor = det.monitor(stored.state())
    assert (monitor.drift_threshold, monitor.consecutive, monitor.pair_threshold) == (0.95, 3, 2.0)
    assert monitor.gap_streak == 1 and list(monitor.gaps) == [0.9]
    parked = {"adapter": {"adapter_id": "a"}, "locality": {}}
    assert det.resumable(Phase.ROLLED_BACK, parked) and det.resumable(Phase.REJECTED, parked)
    assert not det.resumable(Phase.ADAPTING, parked) and not det.resumable(Phase.ROLLED_BACK, None)
    gates[0] = GateConfig(resume_threshold=0.0)
    assert not det.resumable(Phase.ROLLED_BACK, parked)
