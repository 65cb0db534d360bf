"""Background adaptation: choose training turns, train the session adapter, run the gate.

One job per session at a time. ``JobRunner`` runs jobs on a background thread (never on
the request path); each model step of a job is a low-priority task on the model worker,
so live turns are served in between. ``adaptation="inline"`` runs the job in the caller.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import gate
from .adapters import AdapterRef, CorruptAdapter
from .distiller import Example, train_adapter
from .types import Message, Phase, SessionKey, TurnRecord

if TYPE_CHECKING:
    from .engine import SomaEngine

log = logging.getLogger("soma.jobs")


@dataclass
class Plan:
    """Training set H with weights ω (Eq. 4) and the held-out acceptance batch B."""

    train: list[Example]
    holdout: list[TurnRecord]
    hardness: list[float] = field(default_factory=list)
    probe_calls: int = 0


def locality_text(messages: list[Message]) -> str:
    """What φ embeds for locality: the query with its previous turn (NOTES.md: context
    narrows on-topic distances)."""
    users = [m.content for m in messages if m.role == "user"]
    prev_answer = next((m.content for m in reversed(messages[:-1]) if m.role == "assistant"), "")
    parts = [*users[-2:-1], prev_answer[:200], users[-1] if users else messages[-1].content]
    return "\n".join(p for p in parts if p)


def plan_training(engine: SomaEngine, records: list[TurnRecord], teacher: Callable[..., Any] | None) -> Plan:
    """Split off the acceptance batch, then pick and weight training turns by strategy:
    ``history-ft`` all turns, uniform; ``random-ft`` the same budget as ``soma``, sampled
    uniformly; ``soma`` the highest-hardness turns, ω_t ∝ r_t (Sec. 3.3)."""
    cfg = engine.config
    n_hold = min(cfg.gate.holdout, max(len(records) - 1, 0))
    train_recs, holdout = (records[:-n_hold], records[-n_hold:]) if n_hold else (records, [])
    # Train on S~_t, the compressed context the adapter will serve from (cheaper than the
    # full S_t and matched to serving); the teacher's answer saw the full S_t.
    examples = [Example(engine.compressed(r.context()), r.answer) for r in train_recs]
    if cfg.strategy == "history-ft" or len(examples) <= 1:
        return Plan(examples, holdout)
    budget = max(1, (len(examples) + 1) // 2 + 1) if len(examples) > 2 else len(examples)
    if cfg.strategy == "random-ft":
        rng = random.Random(cfg.lora.seed)
        return Plan(rng.sample(examples, budget), holdout)
    from . import miner

    turns = [([m.to_dict() for m in e.messages], e.answer) for e in examples]
    result = engine.surrogate.run(lambda rt: miner.mine(rt.model, rt.tokenizer, turns, cfg.mining, device=rt.device))
    order = sorted(range(len(examples)), key=lambda i: -result.hardness[i])[:budget]
    chosen = [Example(examples[i].messages, examples[i].answer, max(result.hardness[i], 1e-6)) for i in order]
    calls = 0
    if cfg.mining.probe_teacher and teacher is not None and cfg.mining.probe_budget > 0:
        cases, calls = miner.probe_cases(result, turns, teacher, cfg.mining.probe_budget)
        r_mean = float(np.mean([c.weight for c in chosen]))
        chosen += [Example([Message.from_dict(m) for m in msgs], ans, r_mean) for msgs, ans in cases]
    return Plan(chosen, holdout, list(result.hardness), calls)


class JobRunner:
    def __init__(self, engine: SomaEngine) -> None:
        self.engine = engine
        self.owner = uuid.uuid4().hex
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soma-adapt")
        self._active: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def is_active(self, key: SessionKey) -> bool:
        with self._lock:
            fut = self._active.get(key.digest)
            return fut is not None and not fut.done()

    def submit(self, key: SessionKey, teacher: Callable[..., Any] | None = None) -> Future[None] | None:
        with self._lock:
            fut = self._active.get(key.digest)
            if fut is not None and not fut.done():
                return None
            fut = self._pool.submit(self.run_now, key, teacher)
            self._active[key.digest] = fut
            return fut

    def run_now(self, key: SessionKey, teacher: Callable[..., Any] | None = None) -> None:
        """Run the job here; a failure leaves the session on the teacher (``rejected``)."""
        try:
            run_adaptation(self.engine, key, teacher)
        except Exception as exc:
            log.exception("adaptation failed for session %s", key.digest[:12])
            with self.engine.store.session(key, self.engine.config.session_ttl) as st:
                st.phase = Phase.REJECTED.value
                st.job = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "owner": self.owner}
                st.next_adapt_at = st.turn_count + max(1, self.engine.config.warm_window // 2)

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [f for f in self._active.values() if not f.done()]
            if not pending:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            wait(pending, timeout=left)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_adaptation(engine: SomaEngine, key: SessionKey, teacher: Callable[..., Any] | None = None) -> None:
    """Mine/select (strategy), train the adapter (Eq. 4), gate it (Thm 4.2 / Cor. 4.3) on
    held-out warm turns, and switch the session to ``serving`` or ``rejected``."""
    cfg = engine.config
    started = time.perf_counter()
    state = engine.store.get(key)
    if state is None:
        return
    records = [r for r in engine.store.turns(key, since=state.adapt_from) if r.served_by == "teacher" and r.messages]
    parent = AdapterRef.from_dict(state.adapter) if state.adapter else None
    if len(records) < 2:
        with engine.store.session(key, cfg.session_ttl) as st:
            st.phase = Phase.REJECTED.value
            st.next_adapt_at = st.turn_count + 1
            st.job = {"status": "done", "reason": "fewer than 2 teacher turns"}
        return
    plan = plan_training(engine, records, teacher)
    init = None
    if parent is not None:
        try:
            init = engine.adapters.load(parent)[0]
        except CorruptAdapter:
            parent = None
    hook = engine.on_progress
    result = train_adapter(
        engine.surrogate,
        plan.train,
        [],
        cfg.lora,
        name=f"train{uuid.uuid4().hex[:8]}",
        init_tensors=init,
        progress=(lambda step, total: hook("lora", step, total)) if hook else None,
    )
    ref = engine.adapters.save(
        result.tensors,
        result.lora_config,
        namespace=key.namespace_digest,
        session=key.digest,
        version=state.adapter_version + 1,
        parent=parent.adapter_id if parent else None,
        metrics={"steps": result.steps, "val_nll": result.best_val_nll, "strategy": cfg.strategy},
    )
    decision, locality = _gate(engine, plan, ref, parent, records)
    seconds = time.perf_counter() - started
    with engine.store.session(key, cfg.session_ttl) as st:
        st.add("adaptations")
        st.add("adaptation_seconds", seconds)
        st.add("probe_calls", plan.probe_calls)
        record = {
            **decision.to_dict(),
            "adapter_id": ref.adapter_id,
            "turn": st.turn_count,
            "seconds": round(seconds, 3),
            "strategy": cfg.strategy,
            "train_turns": len(plan.train),
            "time": time.time(),
        }
        st.decisions = [*st.decisions[-19:], record]
        st.job = {"status": "done", "owner": engine.jobs.owner, "seconds": round(seconds, 3)}
        if decision.accepted:
            st.phase = Phase.SERVING.value
            st.adapter = ref.to_dict()
            st.adapter_version = ref.version
            st.locality = locality
            st.drift = {}
        else:
            st.phase = Phase.REJECTED.value
            more = decision.more_turns_needed or max(1, cfg.warm_window // 2)
            st.next_adapt_at = st.turn_count + more
    log.info(
        "session %s: adapter %s %s (fidelity %.3f, Δ̂ %.3f) in %.1fs",
        key.digest[:12],
        ref.adapter_id[:8],
        "accepted" if decision.accepted else f"rejected: {decision.reason}",
        decision.fidelity,
        decision.delta_hat,
        seconds,
    )


def _gate(
    engine: SomaEngine,
    plan: Plan,
    ref: AdapterRef,
    parent: AdapterRef | None,
    records: list[TurnRecord],
) -> tuple[gate.AcceptanceDecision, dict[str, Any]]:
    """Gap of the old and new surrogate on held-out contexts, served as they would be (S~)."""
    cfg = engine.config
    batch = plan.holdout or records[-1:]
    contexts = [engine.compressed(r.context()) for r in batch]
    new = [engine.surrogate.generate(c, ref, max_new_tokens=cfg.max_new_tokens).text for c in contexts]
    old = [engine.surrogate.generate(c, parent, max_new_tokens=cfg.max_new_tokens).text for c in contexts]
    teacher = [r.answer for r in batch]
    emb = engine.encoder.encode(new + old + teacher)
    n = len(batch)
    gap_new = np.atleast_1d(gate.gap(emb[:n], emb[2 * n :]))
    gap_old = np.atleast_1d(gate.gap(emb[n : 2 * n], emb[2 * n :]))
    warm_emb = engine.encoder.encode([locality_text(r.context()) for r in records])
    locality = gate.LocalityModel.from_config(warm_emb, cfg.gate)
    w_eff = gate.effective_sample_size(gap_new) if n > 1 else 1.0
    if cfg.gate.mode == "fidelity":
        fid = float(np.mean(1 - gap_new))
        ok = fid >= cfg.gate.min_fidelity
        decision = gate.AcceptanceDecision(
            accepted=ok,
            reason="fidelity gate passed" if ok else f"fidelity {fid:.3f} < min_fidelity {cfg.gate.min_fidelity}",
            n=n,
            n_eff=w_eff,
            delta_hat=float(np.mean(gap_old - gap_new)),
            gamma=0.0,
            epsilon=cfg.gate.epsilon,
            delta=cfg.gate.delta,
            fidelity=fid,
            min_fidelity=cfg.gate.min_fidelity,
            locality_ok=True,
            locality_margin=None,
            locality_required=None,
            eta=None,
            more_turns_needed=0,
        )
    else:
        decision = gate.decide_acceptance(
            gap_old,
            gap_new,
            epsilon=cfg.gate.epsilon,
            delta=cfg.gate.delta,
            min_fidelity=cfg.gate.min_fidelity,
        )
    return decision, locality.to_dict()
