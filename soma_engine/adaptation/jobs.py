"""Background adaptation: choose training turns, train the session adapter, run the gate.

One job per session at a time. ``JobRunner`` runs jobs on a background thread (never on
the request path); each model step of a job is a low-priority task on the model worker,
so live turns are served in between. ``adaptation="inline"`` runs the job in the caller.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..acceptance.bounds import gap
from ..acceptance.gate import AcceptanceDecision, decide_fidelity, decide_sequential
from ..adapters import AdapterRef, CorruptAdapter
from ..drift.locality import SessionLocality
from ..session import SessionGone
from ..types import Message, Phase, SessionKey, TurnRecord
from .budget import lora_budget
from .distiller import Example, train_adapter

if TYPE_CHECKING:
    from ..engine import SomaEngine

log = logging.getLogger("soma.jobs")


@dataclass
class Plan:
    """Training set H with weights ω (Eq. 4), validation turns, and the acceptance batch B.

    ``train`` is what ``train_adapter`` receives: the examples of H (``validation=False``,
    weight ω_t), probe cases when ``mining.probe_teacher`` is on, then the training turns the
    strategy did not select (``validation=True``: held out of training, used by the
    distiller's early stopping only). ``holdout`` is B, kept out of both for the gate.
    """

    train: list[Example]
    holdout: list[TurnRecord]
    hardness: list[float] = field(default_factory=list)  # r_t per training turn (soma only), turn order
    probe_calls: int = 0  # teacher calls made for V(P) probes (failed calls count)
    strategy: str = ""
    selected: list[int] = field(default_factory=list)  # indices (into the training turns) that form H
    timings: dict[str, float] = field(default_factory=dict)  # seconds: compress, mining, mining_*, probes
    budget_s: float | None = None  # seconds for mining + LoRA (budget.effective_budget); None: step counts
    max_seq_len: int | None = None  # the budget's sequence cap for training (None: lora.max_seq_len)
    budget: dict[str, Any] = field(default_factory=dict)  # planned vs ran per stage, for the decision log

    @property
    def fit(self) -> list[Example]:
        """The examples trained on (H and probe cases)."""
        return [e for e in self.train if not e.validation]

    @property
    def validation(self) -> list[Example]:
        """Training turns left out of H, for early stopping."""
        return [e for e in self.train if e.validation]


def plan_training(engine: SomaEngine, records: list[TurnRecord], teacher: Callable[..., Any] | None) -> Plan:
    """Split off the acceptance batch B, then choose and weight the training set H by
    ``config.strategy`` (the ablation of Sec. 3.3 / appendix C.3):

    - ``history-ft``: every training turn, uniform ω.
    - ``random-ft``: ``|H| = training_budget(n, lora.train_fraction)`` turns sampled uniformly
      (seeded by ``lora.seed``), uniform ω.
    - ``soma``: soft-prompt mining (Eq. 1-3, ``miner.mine``) on the surrogate G, one task on the
      model worker; H = the ``|H|`` turns of highest hardness r_t, ω_t = r_t (Eq. 4 normalises
      ω to mean 1). Mining runs on the base G (adapters disabled): the hardness of a turn is
      measured against the model the new adapter starts from when there is no parent, and
      against the base otherwise (the parent is not known here).

    The budget: ``|H| = max(min(n, 2), ceil(lora.train_fraction · n))`` of the n training
    turns (default fraction 0.6: at W = 4 with one turn held out for B, n = 3 and |H| = 2).
    Turns left out of H are returned flagged ``validation=True``: real held-out turns of the
    same session for the distiller's early stopping (history-ft has none; the distiller then
    holds one out itself when it has ≥ 3, see distiller.py).

    Contexts: training uses S~_t = ``engine.compressed(S_t)``, the compressed context the
    adapter will serve from, and mining scores exactly the same S~_t (same chat template and
    truncation as the distiller), so r_t ranks the examples that are trained on. The teacher's
    answers were produced from the full S_t.

    Teacher probes (``mining.probe_teacher``, soma only): for the ``probe_budget`` hardest turns,
    F is asked on V(P) ⊕ D_{t-1} ⊕ q_t with the FULL context (as the teacher saw the turn);
    the answers join H on the compressed context with the mean ω of H. ``Plan.probe_calls``
    counts the calls made, failed ones included. ``teacher`` takes ``list[Message]`` and
    returns what the engine's teachers return (text, ``(text, usage)``, an object with
    ``.content``, or an awaitable of one when no event loop runs in this thread).
    """
    from .budget import CPU_MAX_SEQ_LEN, MINING_SHARE, effective_budget
    from .distiller import training_budget

    cfg = engine.config
    strategy = cfg.strategy
    budget_s = effective_budget(cfg.adaptation_budget_s, engine.surrogate.device)
    seq_cap = None if budget_s is None or engine.surrogate.device == "cuda" else CPU_MAX_SEQ_LEN
    seq_len = min(cfg.lora.max_seq_len, seq_cap or cfg.lora.max_seq_len)
    sizing: dict[str, Any] = {
        "budget_s": budget_s,
        "max_seq_len": None if seq_len == cfg.lora.max_seq_len else seq_len,
        "budget": {"budget_s": budget_s, "max_seq_len": seq_len},
    }
    n_hold = min(cfg.gate.holdout, max(len(records) - 1, 0))
    train_recs, holdout = (records[:-n_hold], records[-n_hold:]) if n_hold else (records, [])
    t0 = time.perf_counter()
    examples = [Example(engine.compressed(r.context()), r.answer) for r in train_recs]
    timings = {"compress": time.perf_counter() - t0}
    n = len(examples)

    def split(chosen: list[int], weights: list[float], extra: list[Example] | None = None) -> list[Example]:
        fit = [Example(examples[i].messages, examples[i].answer, weights[i]) for i in chosen]
        rest = [Example(e.messages, e.answer, 1.0, validation=True) for i, e in enumerate(examples) if i not in chosen]
        return [*fit, *(extra or []), *rest]

    if strategy == "history-ft" or n <= 1:
        return Plan(examples, holdout, strategy=strategy, selected=list(range(n)), timings=timings, **sizing)
    budget = training_budget(n, cfg.lora.train_fraction)
    if strategy == "random-ft":
        chosen = sorted(random.Random(cfg.lora.seed).sample(range(n), budget))
        return Plan(split(chosen, [1.0] * n), holdout, strategy=strategy, selected=chosen, timings=timings, **sizing)
    if strategy != "soma":
        raise ValueError(f"unknown strategy {strategy!r}: use soma, history-ft or random-ft")

    from ..runtime.surrogate import _template_dict
    from . import miner

    turns = [([_template_dict(m) for m in e.messages], e.answer) for e in examples]
    on_progress = engine.on_progress
    progress = (lambda s, total: on_progress("mining", s, total)) if on_progress else None

    rt = engine.surrogate

    def on_base(fn: Callable[[], Any]) -> Any:
        def task(r: Any) -> Any:
            with r.use(None):  # the base G: a live turn in between may have switched adapters
                return fn()

        return rt.run(task)

    t0 = time.perf_counter()
    # Each mining step is its own task on the model worker, so live turns run in between.
    result = miner.mine(
        rt.run(lambda r: r.base_model),
        rt.tokenizer,
        turns,
        cfg.mining,
        device=rt.device,
        seed=cfg.lora.seed,
        progress=progress,
        max_seq_len=seq_len,
        max_answer_tokens=min(cfg.lora.max_answer_tokens, seq_len // 2),
        run_step=on_base,
        time_budget_s=None if budget_s is None else MINING_SHARE * budget_s,
    )
    timings["mining"] = time.perf_counter() - t0
    sizing["budget"]["mining"] = {
        "configured": {"steps": cfg.mining.steps, "candidates": cfg.mining.candidates},
        "planned": {"steps": int(result.timings["planned_steps"]), "candidates": int(result.timings["candidates"])},
        "ran": {"steps": int(result.timings["steps"]), "candidates": int(result.timings["candidates"])},
    }
    timings.update({f"mining_{k}": v for k, v in result.timings.items()})
    hardness = [float(h) for h in result.hardness]
    chosen = sorted(sorted(range(n), key=lambda i: (-hardness[i], i))[:budget])
    weights = [max(h, 1e-6) for h in hardness]

    calls = 0
    probes: list[Example] = []
    if cfg.mining.probe_teacher and teacher is not None and cfg.mining.probe_budget > 0:
        import asyncio
        import inspect

        from ..engine import _split_teacher_result

        def ask(messages: list[dict[str, Any]]) -> str:
            answer = teacher([Message.from_dict(m) for m in messages])
            if inspect.isawaitable(answer):
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    answer = asyncio.run(_await(answer))
                else:
                    if inspect.iscoroutine(answer):
                        answer.close()
                    raise RuntimeError("an async teacher cannot be probed from inside a running event loop")
            return _split_teacher_result(answer)[0]

        async def _await(aw: Any) -> Any:
            return await aw

        t0 = time.perf_counter()
        full = [([m.to_dict() for m in r.context()], r.answer) for r in train_recs]
        cases, calls = miner.probe_cases(result, full, ask, cfg.mining.probe_budget)
        r_mean = float(np.mean([weights[i] for i in chosen]))
        probes = [Example(engine.compressed([Message.from_dict(m) for m in msgs]), ans, r_mean) for msgs, ans in cases]
        timings["probes"] = time.perf_counter() - t0
    return Plan(
        split(chosen, weights, probes),
        holdout,
        hardness,
        calls,
        strategy=strategy,
        selected=chosen,
        timings=timings,
        **sizing,
    )


# Owners of the JobRunners open in this process, to tell a live job of another engine (two
# engines on one SQLite file) from one that died with a closed engine.
_LIVE_OWNERS: set[str] = set()
_HOST = socket.gethostname()
# A job of an engine on another host counts as alive this long after it started.
REMOTE_JOB_LEASE = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    def __init__(self, engine: SomaEngine) -> None:
        self.engine = engine
        self.owner = uuid.uuid4().hex
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soma-adapt")
        self._active: dict[str, Future[None]] = {}
        self._looks: dict[str, Future[None]] = {}  # adoption looks (sharing.adopt), one per session
        self._lock = threading.Lock()
        self.queue: Any = None  # adaptation="queue": a soma_engine.adaptation.queue.JobQueue (soma worker runs jobs)
        if engine.config.adaptation == "queue":
            from .queue import JobQueue

            self.queue = JobQueue.for_engine(engine)
            self.owner = "queue"
        _LIVE_OWNERS.add(self.owner)

    def new_job(self, key: SessionKey) -> dict[str, Any]:
        """The session's job record for a job about to start (called inside the session's
        locked write). On the queue the job is enqueued here, so the record holds its id."""
        if self.queue is not None:
            try:
                return self.queue.enqueue(key, self.engine.config, getattr(self.engine.surrogate, "_model_path", None))
            except Exception as exc:  # the turn is recorded anyway; the next turn enqueues again
                log.exception("could not enqueue adaptation for session %s", key.digest[:12])
                return {"status": "failed", "owner": self.owner, "error": f"enqueue: {type(exc).__name__}: {exc}"}
        return {
            "status": "queued",
            "id": uuid.uuid4().hex,
            "owner": self.owner,
            "pid": os.getpid(),
            "host": _HOST,
            "since": time.time(),
            "attempt": 0,
        }

    def is_active(self, key: SessionKey) -> bool:
        if self.queue is not None:
            state = self.engine.store.get(key)
            return state is not None and self.queue.is_active(state.job)
        with self._lock:
            fut = self._active.get(key.digest)
            return fut is not None and not fut.done()

    def job_alive(self, key: SessionKey, job: dict[str, Any]) -> bool:
        """Is the job of this session record still running somewhere: here, in another
        engine of this process or another process on this host (both sharing the SQLite
        file), or on another host within ``REMOTE_JOB_LEASE``? One job per session."""
        owner = job.get("owner")
        if owner == self.owner:
            return self.is_active(key)
        if job.get("host") != _HOST:
            return job.get("host") is not None and time.time() - float(job.get("since", 0)) < REMOTE_JOB_LEASE
        if job.get("pid") == os.getpid():
            return owner in _LIVE_OWNERS
        return isinstance(job.get("pid"), int) and _pid_alive(job["pid"])

    def _prune(self) -> None:
        """Drop finished futures (under ``_lock``): the maps stay as small as the jobs running."""
        for table in (self._active, self._looks):
            for digest in [d for d, f in table.items() if f.done()]:
                del table[digest]

    def submit(self, key: SessionKey, teacher: Callable[..., Any] | None = None) -> Future[None] | None:
        if self.queue is not None:
            return None  # enqueued by new_job, with the turn's write
        with self._lock:
            self._prune()
            fut = self._active.get(key.digest)
            if fut is not None and not fut.done():
                return None
            fut = self._pool.submit(self.run_now, key, teacher)
            self._active[key.digest] = fut
            return fut

    def submit_look(self, key: SessionKey) -> Future[None] | None:
        """An adoption look on the job thread (after any job queued before it); also with
        ``adaptation="queue"``: a look is a few generations, not a training run."""
        with self._lock:
            self._prune()
            fut = self._looks.get(key.digest)
            if fut is not None and not fut.done():
                return None
            fut = self._pool.submit(self.look_now, key)
            self._looks[key.digest] = fut
            return fut

    def look_now(self, key: SessionKey) -> None:
        """Run an adoption look here; a failure only costs the look (the session stays warm)."""
        from .sharing import adopt

        try:
            adopt(self.engine, key)
        except Exception:
            log.exception("adoption look failed for session %s", key.digest[:12])

    def run_now(self, key: SessionKey, teacher: Callable[..., Any] | None = None) -> None:
        """Run the job here; a failure leaves the session on the teacher (``rejected``)."""
        try:
            run_adaptation(self.engine, key, teacher)
        except Exception as exc:
            log.exception("adaptation failed for session %s", key.digest[:12])
            with (
                suppress(SessionGone),
                self.engine.store.session(key, self.engine.config.session_ttl, create=False) as st,
            ):
                if st.phase != Phase.ADAPTING.value:
                    return  # moved on (rolled back, another job finished) while this one failed
                st.phase = Phase.REJECTED.value
                st.job = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "owner": self.owner}
                st.next_adapt_at = st.turn_count + max(1, self.engine.config.warm_window // 2)

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._prune()
                pending = [f for f in [*self._active.values(), *self._looks.values()] if not f.done()]
            if not pending:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            wait(pending, timeout=left)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        _LIVE_OWNERS.discard(self.owner)


def teacher_turns(engine: SomaEngine, key: SessionKey, since: int) -> list[TurnRecord]:
    """The session's teacher-served turns after turn ``since``: the contexts adaptation trains
    and the gate measures on."""
    return [r for r in engine.store.turns(key, since=since) if r.served_by == "teacher" and r.messages]


def run_adaptation(engine: SomaEngine, key: SessionKey, teacher: Callable[..., Any] | None = None) -> None:
    """Mine/select (strategy), train the adapter (Eq. 4), gate it (Thm 4.2 / Cor. 4.3) on
    held-out warm turns, switch the session to ``serving`` or ``rejected``, and record the
    adapter in the registry (shareable if accepted)."""
    from .sharing import lineage_agents, record_adapter

    cfg = engine.config
    started = time.perf_counter()
    state = engine.store.get(key)
    if state is None:
        return
    started_job = dict(state.job or {})
    records = teacher_turns(engine, key, state.adapt_from)
    parent = AdapterRef.from_dict(state.adapter) if state.adapter else None
    # A shared adapter the session was refused (sharing.adopt): its weights are the warm
    # start, while the gate still compares against the base model the session serves by now.
    donor = AdapterRef.from_dict(state.donor) if state.donor and parent is None else None
    if len(records) < 2:
        with suppress(SessionGone), engine.store.session(key, cfg.session_ttl, create=False) as st:
            if not same_job(st, started_job):
                return
            st.phase = Phase.REJECTED.value
            st.next_adapt_at = st.turn_count + 1
            st.job = {"status": "done", "reason": "fewer than 2 teacher turns"}
        return
    plan = plan_training(engine, records, teacher)
    init = None
    if parent is not None or donor is not None:
        try:
            init = engine.adapters.load(parent or donor)[0]
        except CorruptAdapter:
            parent = donor = None
    start = parent or donor
    hook = engine.on_progress
    left = None if plan.budget_s is None else lora_budget(plan.budget_s, time.perf_counter() - started)
    result = train_adapter(
        engine.surrogate,
        plan.train,
        [],
        cfg.lora,
        name=f"train{uuid.uuid4().hex[:8]}",
        init_tensors=init,
        progress=(lambda step, total: hook("lora", step, total)) if hook else None,
        time_budget_s=left,
        max_seq_len=plan.max_seq_len,
        activation_budget_mb=cfg.mining.activation_budget_mb,
    )
    plan.budget["lora"] = {"configured": cfg.lora.steps, "planned": result.planned_steps, "ran": result.steps}
    if not result.improved and cfg.gate.min_improvement is not None:  # None: the permissive opt-out
        record_no_improvement(engine, key, started_job, plan, result, time.perf_counter() - started)
        return
    ref = engine.adapters.save(
        result.tensors,
        result.lora_config,
        namespace=key.namespace_digest,
        session=key.digest,
        version=state.adapter_version + 1,
        parent=start.adapter_id if start else None,
        metrics={"steps": result.steps, "val_nll": result.best_val_nll, "strategy": cfg.strategy}
        | ({"warm_start": donor.adapter_id} if donor else {}),
    )
    outcome = _gate(engine, plan, ref, parent, records)
    seconds = time.perf_counter() - started
    try:
        with engine.store.session(key, cfg.session_ttl, create=False) as st:
            if not same_job(st, started_job):
                raise _Superseded
            shadow = _record_adaptation(engine, st, plan, ref, outcome, parent, donor, start, seconds)
    except (SessionGone, _Superseded) as exc:
        # Deleted, or a newer job / rollback owns the session now: this result is not written.
        log.info("session %s: adaptation result dropped (%s)", key.digest[:12], type(exc).__name__)
        _discard(engine, key, ref)
        return
    record_adapter(engine, key, ref, records, accepted=outcome.decision.accepted, agents=lineage_agents(engine, start))
    prune_adapters(engine, key)
    if shadow:
        engine._start_shadow(key)
    decision = outcome.decision
    log.info(
        "session %s: adapter %s %s (fidelity %.3f, Δ̂ %.3f) in %.1fs",
        key.digest[:12],
        ref.adapter_id[:8],
        "accepted" if decision.accepted else f"rejected: {decision.reason}",
        decision.fidelity,
        decision.delta_hat,
        seconds,
    )


class _Superseded(Exception):
    """The session's job record is no longer the one this job started with."""


def same_job(st: Any, job: dict[str, Any]) -> bool:
    """Is the session (inside its locked write) still adapting under the job record ``job``
    (same id and attempt)? A job's final write checks this, as ``shadow_step`` checks its
    candidate: a rollback, a newer job or a retried queue job must not be overwritten."""
    now = st.job or {}
    return (
        st.phase == Phase.ADAPTING.value and now.get("id") == job.get("id") and now.get("attempt") == job.get("attempt")
    )


def _in_use(state: Any) -> set[str]:
    """Adapter ids a session's state points to: serving, parked, shadow candidate, donor."""
    return {
        i
        for i in (
            (state.adapter or {}).get("adapter_id"),
            ((state.parked or {}).get("adapter") or {}).get("adapter_id"),
            ((state.job or {}).get("candidate") or {}).get("adapter_id"),
            (state.donor or {}).get("adapter_id"),
        )
        if i
    }


def prune_adapters(engine: SomaEngine, key: SessionKey) -> None:
    """Remove the session's superseded adapter folders (older versions, rejected candidates)
    after a job's write; a failure only leaves files behind."""
    state = engine.store.get(key)
    if state is None:
        return
    try:
        engine.adapters.prune_superseded(key.namespace_digest, key.digest, _in_use(state))
    except Exception:
        log.exception("could not remove superseded adapters of session %s", key.digest[:12])


def _discard(engine: SomaEngine, key: SessionKey, ref: AdapterRef) -> None:
    """Remove an adapter whose result was not written, unless the session (if any) uses it
    (adapter ids are content hashes: an identical one may have been installed)."""
    state = engine.store.get(key)
    if state is None or ref.adapter_id not in _in_use(state):
        engine.adapters.delete(ref)


def _record_adaptation(
    engine: SomaEngine,
    st: Any,
    plan: Plan,
    ref: AdapterRef,
    outcome: GateOutcome,
    parent: AdapterRef | None,
    donor: AdapterRef | None,
    start: AdapterRef | None,
    seconds: float,
) -> bool:
    """The job's final write (inside the session's lock); True when shadow evaluation follows."""
    cfg = engine.config
    decision = outcome.decision
    st.add("adaptations")
    st.add("adaptation_seconds", seconds)
    st.add("probe_calls", plan.probe_calls)
    record = {
        **decision.to_dict(),
        "kind": "adaptation",
        "adapter_id": ref.adapter_id,
        "version": ref.version,
        "parent": start.adapter_id if start else None,
        "turn": st.turn_count,
        "seconds": round(seconds, 3),
        "strategy": cfg.strategy,
        "train_turns": len(plan.fit),
        "budget": plan.budget,
        "time": time.time(),
    }
    if donor is not None:
        record["warm_start"] = donor.adapter_id
    push_decision(st, record)
    st.job = {"status": "done", "owner": engine.jobs.owner, "seconds": round(seconds, 3)}
    shadow = _apply_decision(engine, st, decision, ref, outcome, parent)
    if decision.accepted:
        st.donor = None
    return shadow


def record_no_improvement(
    engine: SomaEngine, key: SessionKey, started_job: dict[str, Any], plan: Plan, result: Any, seconds: float
) -> None:
    """Record an adaptation whose best checkpoint is the untrained adapter (``result.improved``
    False: no validation beat step 0) as "no improvement": nothing is saved or gated, the
    session stays on the teacher (``rejected``) and retries after ``warm_window // 2`` turns."""
    cfg = engine.config
    with suppress(SessionGone), engine.store.session(key, cfg.session_ttl, create=False) as st:
        if not same_job(st, started_job):
            return
        st.add("adaptations")
        st.add("adaptation_seconds", seconds)
        st.add("probe_calls", plan.probe_calls)
        push_decision(
            st,
            {
                "kind": "adaptation",
                "accepted": False,
                "final": True,
                "mode": cfg.gate.mode,
                "no_improvement": True,
                "reason": f"no improvement: validation NLL never beat the untrained adapter "
                f"({result.initial_val_nll:.4f} at step 0, {result.steps} steps)",
                "adapter_id": None,
                "val_nll_initial": result.initial_val_nll,
                "val_nll_best": result.best_val_nll,
                "turn": st.turn_count,
                "seconds": round(seconds, 3),
                "strategy": cfg.strategy,
                "train_turns": len(plan.fit),
                "budget": plan.budget,
                "time": time.time(),
            },
        )
        st.job = {
            "status": "done",
            "owner": engine.jobs.owner,
            "seconds": round(seconds, 3),
            "reason": "no improvement",
        }
        st.phase = Phase.REJECTED.value
        st.next_adapt_at = st.turn_count + max(1, cfg.warm_window // 2)
    log.info("session %s: no improvement over the untrained adapter; stays on the teacher", key.digest[:12])


# --------------------------------------------------------------------------------------------
# The acceptance gate (Thm 4.2 / Cor. 4.3) and shadow evaluation
# --------------------------------------------------------------------------------------------

DECISIONS_KEPT = 50  # decision records kept per session (gate decisions, looks, audits, rollbacks)


def push_decision(st: Any, record: dict[str, Any]) -> None:
    """Append a decision record, keeping the last ``DECISIONS_KEPT``; the latest gate decision
    (a record with ``accepted``) is never the one dropped."""
    kept = [*st.decisions, record]
    if len(kept) > DECISIONS_KEPT:
        last_gate = max((i for i, d in enumerate(kept) if "accepted" in d), default=None)
        drop = next(i for i in range(len(kept)) if i != last_gate)
        kept.pop(drop)
        kept = kept[-DECISIONS_KEPT:]
    st.decisions = kept


def decision_summary(d: dict[str, Any] | AcceptanceDecision) -> dict[str, Any]:
    """The numbers of a gate decision shown in a reply's ``soma`` metadata."""
    data = d.to_dict() if isinstance(d, AcceptanceDecision) else d
    out = {k: data.get(k) for k in ("accepted", "mode", "final", "n", "delta_hat", "gamma", "fidelity")}
    out["n_eff"] = data.get("n_eff")
    out["more_turns_needed"] = data.get("more_turns_needed")
    for k in ("delta_hat", "gamma", "fidelity", "n_eff"):
        if isinstance(out[k], float):
            out[k] = round(out[k], 4)
    return out


@dataclass
class GateOutcome:
    decision: AcceptanceDecision
    locality: dict[str, Any]  # SessionLocality.to_dict() of the session's current turns
    gap_old: list[float]
    gap_new: list[float]
    turns: list[int]  # the held-out contexts' turn numbers, in order


def held_out_gaps(
    engine: SomaEngine, ref: AdapterRef, parent: AdapterRef | None, batch: list[TurnRecord]
) -> tuple[list[float], list[float]]:
    """Gap_old and Gap_new (Sec. 4.1) on contexts the candidate never trained on, served as
    they would be (S~_t); the reference is the teacher's recorded answer. Old = ``parent``
    (the surrogate before this adaptation; None: the base model)."""
    cfg = engine.config
    contexts = [engine.compressed(r.context()) for r in batch]
    gens = engine.surrogate.generate_many(
        [(c, ref) for c in contexts] + [(c, parent) for c in contexts], max_new_tokens=cfg.max_new_tokens
    )
    new, old = [g.text for g in gens[: len(contexts)]], [g.text for g in gens[len(contexts) :]]
    emb = engine.encoder.encode(new + old + [r.answer for r in batch])
    n = len(batch)
    gap_new = np.atleast_1d(gap(emb[:n], emb[2 * n :]))
    gap_old = np.atleast_1d(gap(emb[n : 2 * n], emb[2 * n :]))
    return [float(g) for g in gap_old], [float(g) for g in gap_new]


def _decide(engine: SomaEngine, gap_old: list[float], gap_new: list[float], locality_ok: bool) -> AcceptanceDecision:
    g = engine.config.gate
    if g.mode == "bound":
        return decide_sequential(
            gap_old,
            gap_new,
            epsilon=g.epsilon,
            delta=g.delta,
            min_fidelity=g.min_fidelity,
            max_batch=g.max_batch,
            locality_ok=locality_ok,
        )
    return decide_fidelity(
        gap_old,
        gap_new,
        epsilon=g.epsilon,
        delta=g.delta,
        min_fidelity=g.min_fidelity,
        min_improvement=g.min_improvement,
        locality_ok=locality_ok,
        retry_after=max(1, engine.config.warm_window // 2),
    )


def _gate(
    engine: SomaEngine,
    plan: Plan,
    ref: AdapterRef,
    parent: AdapterRef | None,
    records: list[TurnRecord],
) -> GateOutcome:
    """Gap of the old and new surrogate on the held-out warm turns (never trained on), the
    locality model and check of the session, and the decision (``gate.mode``)."""
    batch = plan.holdout or records[-1:]
    gap_old, gap_new = held_out_gaps(engine, ref, parent, batch)
    model, locality_ok, _ = engine.detector.session_locality(records)
    decision = _decide(engine, gap_old, gap_new, locality_ok)
    return GateOutcome(decision, model.to_dict(), gap_old, gap_new, [r.turn for r in batch])


def _apply_decision(
    engine: SomaEngine,
    st: Any,
    decision: AcceptanceDecision,
    ref: AdapterRef,
    outcome: GateOutcome,
    parent: AdapterRef | None,
) -> bool:
    """Move the session on after a gate decision (inside its locked write). Returns True when
    the candidate goes to shadow evaluation (bound mode, batch still too small)."""
    cfg = engine.config
    if decision.accepted:
        st.phase = Phase.SERVING.value
        st.adapter = ref.to_dict()
        st.adapter_version = ref.version
        st.locality = outcome.locality
        st.drift = {}
        return False
    st.phase = Phase.REJECTED.value
    if cfg.gate.mode == "bound" and not decision.final:
        through = max(outcome.turns) if outcome.turns else st.turn_count
        st.job = {
            "status": "shadow",
            "owner": engine.jobs.owner,
            "since": time.time(),
            "candidate": ref.to_dict(),
            "parent": parent.to_dict() if parent else None,
            "through": through,
            "gap_old": outcome.gap_old,
            "gap_new": outcome.gap_new,
            "turns": outcome.turns,
            "decision": decision_summary(decision),
        }
        # Retrain only if the batch reaches max_batch without a decision.
        st.next_adapt_at = st.turn_count + max(1, cfg.gate.max_batch - len(outcome.gap_old) + 1)
        return True
    st.next_adapt_at = st.turn_count + (decision.more_turns_needed or max(1, cfg.warm_window // 2))
    return False


def shadow_step(engine: SomaEngine, key: SessionKey) -> AcceptanceDecision | None:
    """Grow the acceptance batch of a candidate in shadow evaluation (``gate.mode="bound"``).

    Every teacher turn recorded since the candidate's last context is answered, in the
    background, by the candidate and by the old surrogate; their Gaps to the teacher's real
    answer join B (no teacher call: the teacher already served that turn). Then
    ``decide_sequential`` looks: accept (switch to serving, locality rebuilt from the
    session's current turns), stop (rejected; retrain after more turns) or keep collecting.
    """
    cfg = engine.config
    state = engine.store.get(key)
    job = (state.job or {}) if state else {}
    if state is None or job.get("status") != "shadow":
        return None
    cand = AdapterRef.from_dict(job["candidate"])
    parent = AdapterRef.from_dict(job["parent"]) if job.get("parent") else None
    through = int(job["through"])
    room = cfg.gate.max_batch - len(job["gap_old"])
    fresh = teacher_turns(engine, key, through)[:room]
    if not fresh:
        return None
    try:
        g_old, g_new = held_out_gaps(engine, cand, parent, fresh)
    except Exception as exc:  # a corrupt candidate or a surrogate failure: retrain instead
        log.exception("shadow evaluation failed for session %s", key.digest[:12])
        with suppress(SessionGone), engine.store.session(key, cfg.session_ttl, create=False) as st:
            if (st.job or {}).get("status") == "shadow":
                st.job = {
                    "status": "failed",
                    "error": f"shadow: {type(exc).__name__}: {exc}",
                    "owner": engine.jobs.owner,
                }
                st.next_adapt_at = st.turn_count + 1
        return None
    records = teacher_turns(engine, key, state.adapt_from)
    model, locality_ok, x_last = engine.detector.session_locality(records)

    gap_old, gap_new, turns = list(job["gap_old"]), list(job["gap_new"]), list(job["turns"])
    looks: list[AcceptanceDecision] = []
    decision: AcceptanceDecision | None = None
    for r, go, gn in zip(fresh, g_old, g_new, strict=True):
        gap_old.append(go)
        gap_new.append(gn)
        turns.append(r.turn)
        decision = _decide(engine, gap_old, gap_new, locality_ok)
        if decision.look is not None or decision.final:
            looks.append(decision)
        if decision.final:
            break
    assert decision is not None
    try:
        return _shadow_write(engine, key, cand, job, through, looks, decision, gap_old, gap_new, turns, model, x_last)
    except SessionGone:
        return None  # deleted while we computed


def _shadow_write(
    engine: SomaEngine,
    key: SessionKey,
    cand: AdapterRef,
    job: dict[str, Any],
    through: int,
    looks: list[AcceptanceDecision],
    decision: AcceptanceDecision,
    gap_old: list[float],
    gap_new: list[float],
    turns: list[int],
    model: SessionLocality,
    x_last: float | None,
) -> AcceptanceDecision | None:
    """A shadow step's write: only for the candidate and batch it started from."""
    cfg = engine.config
    with engine.store.session(key, cfg.session_ttl, create=False) as st:
        now = st.job or {}
        if now.get("status") != "shadow" or now.get("candidate", {}).get("adapter_id") != cand.adapter_id:
            return None  # superseded (rollback, new adaptation) while we computed
        if int(now.get("through", -1)) != through:
            return None  # another shadow step got there first
        for d in looks:
            push_decision(
                st,
                {
                    **d.to_dict(),
                    "kind": "shadow",
                    "adapter_id": cand.adapter_id,
                    "version": cand.version,
                    "turn": st.turn_count,
                    "locality_statistic": x_last,
                    "time": time.time(),
                },
            )
        st.add("shadow_contexts", len(turns) - len(job["turns"]))
        if decision.accepted:
            st.phase = Phase.SERVING.value
            st.adapter = cand.to_dict()
            st.adapter_version = cand.version
            st.locality = model.to_dict()
            st.drift = {}
            st.job = {"status": "done", "owner": engine.jobs.owner, "accepted_after": len(gap_old)}
            st.donor = None
        elif decision.final:
            st.phase = Phase.REJECTED.value
            st.job = {"status": "done", "owner": engine.jobs.owner, "reason": decision.reason}
            st.next_adapt_at = st.turn_count + max(1, cfg.warm_window // 2)
        else:
            st.job = {
                **now,
                "through": turns[-1],
                "gap_old": gap_old,
                "gap_new": gap_new,
                "turns": turns,
                "decision": decision_summary(decision),
            }
    if decision.accepted:  # the candidate was recorded as not shareable when its first look deferred
        engine.registry.mark(cand.namespace, cand.adapter_id, cand.session, accepted=True)
    return decision
