"""One adaptation job: plan the training set (strategies.py), train the session adapter
(Eq. 4), gate it on held-out turns (Theorem 4.2 (Thm 4.2) / Corollary 4.3 (Cor. 4.3),
decisions.py), and grow the batch of a candidate in shadow evaluation. ``runner.JobRunner``
decides where a job runs."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..acceptance.bounds import gap
from ..acceptance.gate import AcceptanceDecision
from ..adapters import AdapterRef, CorruptAdapter, serving_ref
from ..drift.detector import session_locality
from ..drift.locality import SessionLocality
from ..session import SessionGone
from ..session.transitions import JobRecord, JobStatus, push_decision, reject, start_serving
from ..types import Phase, SessionKey, TurnRecord
from .budget import CPU_MAX_SEQ_LEN, effective_budget, lora_budget
from .decisions import (
    GateOutcome,
    decide,
    decision_summary,
    no_improvement_fields,
    push_job_decision,
    record_adaptation,
    record_base,
)
from .distiller import Example, TrainResult, train_adapter
from .strategies import StrategyInput, history_ft, strategy

if TYPE_CHECKING:
    from ..services import Services

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


def plan_training(services: Services, records: list[TurnRecord], teacher: Callable[..., Any] | None) -> Plan:
    """Split off the acceptance batch B, then choose and weight the training set H by
    ``config.strategy`` (``strategies.STRATEGIES``: history-ft, random-ft, soma with mining
    Eq. 1–3 and optional teacher probes).

    The budget: ``|H| = max(min(n, 2), ceil(lora.train_fraction · n))`` of the n training
    turns (default fraction 0.6: at W = 4 with one turn held out for B, n = 3 and |H| = 2).
    Turns left out of H are returned flagged ``validation=True``: real held-out turns of the
    same session for the distiller's early stopping (history-ft has none; the distiller then
    holds one out itself when it has ≥ 3, see distiller.py).

    Contexts: training uses S~_t = ``services.compressed(S_t)``, the compressed context the
    adapter will serve from; the teacher's answers were produced from the full S_t.
    ``teacher`` (probes only) takes ``list[Message]`` and returns what the engine's teachers
    return (text, ``(text, usage)``, an object with ``.content``, or an awaitable of one when
    no event loop runs in this thread).
    """
    cfg = services.config
    budget_s, seq_len = training_sizing(services)
    n_hold = min(cfg.gate.holdout, max(len(records) - 1, 0))
    train_recs, holdout = (records[:-n_hold], records[-n_hold:]) if n_hold else (records, [])
    t0 = time.perf_counter()
    examples = [Example(services.compressed(r.context()), r.answer) for r in train_recs]
    inp = StrategyInput(services, examples, train_recs, teacher, seq_len, budget_s)
    inp.timings["compress"] = time.perf_counter() - t0
    inp.budget.update({"budget_s": budget_s, "max_seq_len": seq_len})
    # One training turn: nothing to select.
    selection = history_ft(inp) if len(examples) <= 1 else strategy(cfg.strategy)(inp)
    chosen = selection.chosen
    fit = [Example(examples[i].messages, examples[i].answer, selection.weights[i]) for i in chosen]
    rest = [Example(e.messages, e.answer, 1.0, validation=True) for i, e in enumerate(examples) if i not in chosen]
    return Plan(
        [*fit, *selection.probes, *rest],
        holdout,
        selection.hardness,
        selection.probe_calls,
        strategy=cfg.strategy,
        selected=chosen,
        timings=inp.timings,
        budget_s=budget_s,
        max_seq_len=None if seq_len == cfg.lora.max_seq_len else seq_len,
        budget=inp.budget,
    )


def training_sizing(services: Services) -> tuple[float | None, int]:
    """Seconds for mining + LoRA (None: step counts decide) and the training sequence cap."""
    cfg = services.config
    budget_s = effective_budget(cfg.adaptation_budget_s, services.surrogate.device)
    seq_cap = None if budget_s is None or services.surrogate.device == "cuda" else CPU_MAX_SEQ_LEN
    return budget_s, min(cfg.lora.max_seq_len, seq_cap or cfg.lora.max_seq_len)


def teacher_turns(services: Services, key: SessionKey, since: int) -> list[TurnRecord]:
    """The session's teacher-served turns after turn ``since``: the contexts adaptation trains
    and the gate measures on."""
    return [r for r in services.store.turns(key, since=since) if r.served_by == "teacher" and r.messages]


def run_adaptation(services: Services, key: SessionKey, teacher: Callable[..., Any] | None = None) -> None:
    """Mine/select (strategy), train the adapter (Eq. 4), gate it (Thm 4.2 / Cor. 4.3) on
    held-out warm turns, switch the session to ``serving`` or ``rejected``, and record the
    adapter in the registry (shareable if accepted)."""
    cfg = services.config
    started = time.perf_counter()
    state = services.store.get(key)
    if state is None:
        return
    started_job = dict(state.job or {})
    records = teacher_turns(services, key, state.adapt_from)
    parent = serving_ref(state.adapter)
    # A shared adapter the session was refused (sharing.adopt): its weights are the warm
    # start, while the gate still compares against the base model the session serves by now.
    donor = AdapterRef.from_dict(state.donor) if state.donor and parent is None else None
    if len(records) < 2:
        with suppress(SessionGone), services.store.session(key, cfg.session_ttl, create=False) as st:
            if not same_job(st, started_job):
                return
            reject(st, retry_at=st.turn_count + 1, job=JobRecord(JobStatus.DONE, reason="fewer than 2 teacher turns"))
        return
    plan = plan_training(services, records, teacher)
    result, parent, donor = _train(services, plan, parent, donor, started)
    start = parent or donor
    if not result.improved and cfg.gate.min_improvement is not None:  # None: the permissive opt-out
        record_no_improvement(services, key, started_job, plan, result, time.perf_counter() - started)
        return
    if not result.improved and start is None:
        # The permissive floor alone decides, and the kept adapter is the untrained one, i.e. the
        # base surrogate: gate the base itself, and if it serves, report it as the base.
        _gate_base(services, key, started_job, plan, result, records, started)
        return
    ref = services.adapters.save(
        result.tensors,
        result.lora_config,
        namespace=key.namespace_digest,
        session=key.digest,
        version=state.adapter_version + 1,
        parent=start.adapter_id if start else None,
        metrics={"steps": result.steps, "val_nll": result.best_val_nll, "strategy": cfg.strategy}
        | ({"warm_start": donor.adapter_id} if donor else {}),
    )
    outcome = _gate(services, plan, ref, parent, records)
    _finish(services, key, started_job, plan, ref, outcome, records, parent, donor, time.perf_counter() - started)


def _train(
    services: Services, plan: Plan, parent: AdapterRef | None, donor: AdapterRef | None, started: float
) -> tuple[TrainResult, AdapterRef | None, AdapterRef | None]:
    """LoRA on the plan (Eq. 4), from the parent's or the donor's weights when they load (a
    corrupt one: from scratch, and no parent nor donor). Returns the result, parent, donor."""
    cfg = services.config
    init = None
    if parent is not None or donor is not None:
        try:
            init = services.adapters.load(parent or donor)[0]
        except CorruptAdapter:
            parent = donor = None
    hook = services.on_progress
    left = None if plan.budget_s is None else lora_budget(plan.budget_s, time.perf_counter() - started)
    result = train_adapter(
        services.surrogate,
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
    return result, parent, donor


def _finish(
    services: Services,
    key: SessionKey,
    started_job: dict[str, Any],
    plan: Plan,
    ref: AdapterRef,
    outcome: GateOutcome,
    records: list[TurnRecord],
    parent: AdapterRef | None,
    donor: AdapterRef | None,
    seconds: float,
) -> None:
    """The job's write (only while the session still runs this job), registry row, pruning,
    and shadow evaluation when the gate wants a larger batch."""
    from .sharing import lineage_agents, record_adapter

    start = parent or donor
    try:
        with services.store.session(key, services.config.session_ttl, create=False) as st:
            if not same_job(st, started_job):
                raise _Superseded
            shadow = record_adaptation(services, st, plan, ref, outcome, parent, donor, start, seconds)
    except (SessionGone, _Superseded) as exc:
        # Deleted, or a newer job / rollback owns the session now: this result is not written.
        log.info("session %s: adaptation result dropped (%s)", key.digest[:12], type(exc).__name__)
        _discard(services, key, ref)
        return
    record_adapter(
        services, key, ref, records, accepted=outcome.decision.accepted, agents=lineage_agents(services, start)
    )
    prune_adapters(services, key)
    if shadow:
        services.start_shadow(key)
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


def prune_adapters(services: Services, key: SessionKey) -> None:
    """Remove the session's superseded adapter folders (older versions, rejected candidates)
    after a job's write; a failure only leaves files behind."""
    state = services.store.get(key)
    if state is None:
        return
    try:
        services.adapters.prune_superseded(key.namespace_digest, key.digest, _in_use(state))
    except Exception:
        log.exception("could not remove superseded adapters of session %s", key.digest[:12])


def _discard(services: Services, key: SessionKey, ref: AdapterRef) -> None:
    """Remove an adapter whose result was not written, unless the session (if any) uses it
    (adapter ids are content hashes: an identical one may have been installed)."""
    state = services.store.get(key)
    if state is None or ref.adapter_id not in _in_use(state):
        services.adapters.delete(ref)


def record_no_improvement(
    services: Services, key: SessionKey, started_job: dict[str, Any], plan: Plan, result: Any, seconds: float
) -> None:
    """Record an adaptation whose best checkpoint is the untrained adapter (``result.improved``
    False: no validation beat step 0) as "no improvement": nothing is saved or gated, the
    session stays on the teacher (``rejected``) and retries after ``warm_window // 2`` turns."""
    cfg = services.config
    with suppress(SessionGone), services.store.session(key, cfg.session_ttl, create=False) as st:
        if not same_job(st, started_job):
            return
        record = {
            "kind": "adaptation",
            "accepted": False,
            "final": True,
            "mode": cfg.gate.mode,
            **no_improvement_fields(result),
            "reason": f"no improvement: validation NLL never beat the untrained adapter "
            f"({result.initial_val_nll:.4f} at step 0, {result.steps} steps)",
            "adapter_id": None,
        }
        push_job_decision(services, st, plan, seconds, record)
        done = JobRecord(JobStatus.DONE, services.owner, reason="no improvement", seconds=round(seconds, 3))
        reject(st, retry_at=st.turn_count + max(1, cfg.warm_window // 2), job=done)
    log.info("session %s: no improvement over the untrained adapter; stays on the teacher", key.digest[:12])


# --------------------------------------------------------------------------------------------
# The acceptance gate (Thm 4.2 / Cor. 4.3) and shadow evaluation
# --------------------------------------------------------------------------------------------


def held_out_gaps(
    services: Services, ref: AdapterRef, parent: AdapterRef | None, batch: list[TurnRecord]
) -> tuple[list[float], list[float]]:
    """Gap_old and Gap_new (Sec. 4.1) on contexts the candidate never trained on, served as
    they would be (S~_t); the reference is the teacher's recorded answer. Old = ``parent``
    (the surrogate before this adaptation; None: the base model)."""
    gap_new, gap_old = surrogate_gaps(services, [ref, parent], batch)
    return gap_old, gap_new


def surrogate_gaps(services: Services, adapters: list[AdapterRef | None], batch: list[TurnRecord]) -> list[list[float]]:
    """Gap (Sec. 4.1) of each surrogate (an adapter, or None: the base model) on each context of
    ``batch``, served as it would be (S~_t), against the teacher's recorded answer."""
    contexts = [services.compressed(r.context()) for r in batch]
    gens = services.surrogate.generate_many(
        [(c, a) for a in adapters for c in contexts], max_new_tokens=services.config.max_new_tokens
    )
    n = len(batch)
    emb = services.encoder.encode([g.text for g in gens] + [r.answer for r in batch])
    ref = emb[len(gens) :]
    return [[float(g) for g in np.atleast_1d(gap(emb[i * n : (i + 1) * n], ref))] for i in range(len(adapters))]


def _gate_base(
    services: Services,
    key: SessionKey,
    started_job: dict[str, Any],
    plan: Plan,
    result: TrainResult,
    records: list[TurnRecord],
    started: float,
) -> None:
    """Permissive gate (``gate.min_improvement=None``), training never beat the untrained adapter:
    the candidate is the base surrogate. Gate the base on the held-out turns (the floor decides:
    Gap_old = Gap_new); it serves only as the base, with no adapter id (decisions.record_base)."""
    outcome = _gate(services, plan, None, None, records)
    with suppress(SessionGone), services.store.session(key, services.config.session_ttl, create=False) as st:
        if same_job(st, started_job):
            record_base(services, st, plan, result, outcome, time.perf_counter() - started)


def _gate(
    services: Services,
    plan: Plan,
    ref: AdapterRef | None,
    parent: AdapterRef | None,
    records: list[TurnRecord],
) -> GateOutcome:
    """Gap of the old and new surrogate on the held-out warm turns (never trained on), the
    locality model and check of the session, and the decision (``gate.mode``). ``ref`` None:
    the candidate is the base model itself (Gap_old = Gap_new, generated once)."""
    batch = plan.holdout or records[-1:]
    if ref is None:
        (gap_new,) = surrogate_gaps(services, [None], batch)
        gap_old = gap_new
    else:
        gap_old, gap_new = held_out_gaps(services, ref, parent, batch)
    model, locality_ok, _ = session_locality(services.encoder, services.config.gate, records)
    decision = decide(services, gap_old, gap_new, locality_ok)
    return GateOutcome(decision, model.to_dict(), gap_old, gap_new, [r.turn for r in batch])


def shadow_step(services: Services, key: SessionKey) -> AcceptanceDecision | None:
    """Grow the acceptance batch of a candidate in shadow evaluation (``gate.mode="bound"``).

    Every teacher turn recorded since the candidate's last context is answered, in the
    background, by the candidate and by the old surrogate; their Gaps to the teacher's real
    answer join B (no teacher call: the teacher already served that turn). Then
    ``decide_sequential`` looks: accept (switch to serving, locality rebuilt from the
    session's current turns), stop (rejected; retrain after more turns) or keep collecting.
    """
    cfg = services.config
    state = services.store.get(key)
    job = (state.job or {}) if state else {}
    if state is None or job.get("status") != JobStatus.SHADOW:
        return None
    cand = AdapterRef.from_dict(job["candidate"])
    parent = AdapterRef.from_dict(job["parent"]) if job.get("parent") else None
    through = int(job["through"])
    room = cfg.gate.max_batch - len(job["gap_old"])
    fresh = teacher_turns(services, key, through)[:room]
    if not fresh:
        return None
    try:
        g_old, g_new = held_out_gaps(services, cand, parent, fresh)
    except Exception as exc:  # a corrupt candidate or a surrogate failure: retrain instead
        log.exception("shadow evaluation failed for session %s", key.digest[:12])
        with suppress(SessionGone), services.store.session(key, cfg.session_ttl, create=False) as st:
            if (st.job or {}).get("status") == JobStatus.SHADOW:
                st.job = {
                    "status": "failed",
                    "error": f"shadow: {type(exc).__name__}: {exc}",
                    "owner": services.owner,
                }
                st.next_adapt_at = st.turn_count + 1
        return None
    records = teacher_turns(services, key, state.adapt_from)
    model, locality_ok, x_last = session_locality(services.encoder, services.config.gate, records)

    gap_old, gap_new, turns = list(job["gap_old"]), list(job["gap_new"]), list(job["turns"])
    looks: list[AcceptanceDecision] = []
    decision: AcceptanceDecision | None = None
    for r, go, gn in zip(fresh, g_old, g_new, strict=True):
        gap_old.append(go)
        gap_new.append(gn)
        turns.append(r.turn)
        decision = decide(services, gap_old, gap_new, locality_ok)
        if decision.look is not None or decision.final:
            looks.append(decision)
        if decision.final:
            break
    assert decision is not None
    try:
        return _shadow_write(services, key, cand, job, through, looks, decision, gap_old, gap_new, turns, model, x_last)
    except SessionGone:
        return None  # deleted while we computed


def _shadow_write(
    services: Services,
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
    cfg = services.config
    with services.store.session(key, cfg.session_ttl, create=False) as st:
        now = st.job or {}
        if now.get("status") != JobStatus.SHADOW or now.get("candidate", {}).get("adapter_id") != cand.adapter_id:
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
            done = JobRecord(JobStatus.DONE, services.owner, detail={"accepted_after": len(gap_old)})
            start_serving(st, cand, model.to_dict(), job=done)
        elif decision.final:
            done = JobRecord(JobStatus.DONE, services.owner, reason=decision.reason)
            reject(st, retry_at=st.turn_count + max(1, cfg.warm_window // 2), job=done)
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
        services.registry.mark(cand.namespace, cand.adapter_id, cand.session, accepted=True)
    return decision
