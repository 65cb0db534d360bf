"""The acceptance gate's decision (Theorem 4.2 (Thm 4.2) / Corollary 4.3 (Cor. 4.3)) and what it
does to a session: serve the candidate, reject it, or collect a larger batch in shadow evaluation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..acceptance.gate import AcceptanceDecision, decide_fidelity, decide_sequential
from ..adapters import AdapterRef
from ..session.transitions import JobRecord, JobStatus, push_decision, reject, start_serving

if TYPE_CHECKING:
    from ..services import Services
    from .jobs import Plan


def record_adaptation(
    services: Services,
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
    decision = outcome.decision
    record = {
        **decision.to_dict(),
        "kind": "adaptation",
        "adapter_id": ref.adapter_id,
        "version": ref.version,
        "parent": start.adapter_id if start else None,
    }
    if donor is not None:
        record["warm_start"] = donor.adapter_id
    push_job_decision(services, st, plan, seconds, record)
    st.job = JobRecord(JobStatus.DONE, services.owner, seconds=round(seconds, 3)).to_dict()
    return apply_decision(services, st, decision, ref, outcome, parent)


def push_job_decision(services: Services, st: Any, plan: Plan, seconds: float, record: dict[str, Any]) -> None:
    """Count a finished adaptation on the session and append its decision ``record`` with the
    fields every job's record carries (turn, seconds, strategy, training turns, budget)."""
    st.add("adaptations")
    st.add("adaptation_seconds", seconds)
    st.add("probe_calls", plan.probe_calls)
    push_decision(
        st,
        {
            **record,
            "turn": st.turn_count,
            "seconds": round(seconds, 3),
            "strategy": services.config.strategy,
            "train_turns": len(plan.fit),
            "budget": plan.budget,
            "time": time.time(),
        },
    )


def no_improvement_fields(result: Any) -> dict[str, Any]:
    """What a decision record keeps of a training run that never beat the untrained adapter."""
    return {"no_improvement": True, "val_nll_initial": result.initial_val_nll, "val_nll_best": result.best_val_nll}


def record_base(services: Services, st: Any, plan: Plan, result: Any, outcome: GateOutcome, seconds: float) -> None:
    """The write of a permissive job whose training never beat the untrained adapter (inside the
    session's lock): "no improvement" either way; the base surrogate serves if it clears the
    floor, recorded as the base (``base: True``, no adapter id), else the teacher keeps serving."""
    cfg = services.config
    decision = outcome.decision
    why = f"validation NLL never beat the untrained adapter ({result.initial_val_nll:.4f} at step 0)"
    record = {
        **decision.to_dict(),
        "kind": "adaptation",
        "adapter_id": None,
        "base": True,
        **no_improvement_fields(result),
        "reason": f"no improvement: {why}; the base surrogate "
        + ("serves (permissive gate: " if decision.accepted else "is refused too (")
        + f"{decision.reason})",
    }
    push_job_decision(services, st, plan, seconds, record)
    done = JobRecord(JobStatus.DONE, services.owner, reason="no improvement", seconds=round(seconds, 3))
    if decision.accepted:
        start_serving(st, None, outcome.locality, job=done)
    else:
        reject(st, retry_at=st.turn_count + max(1, cfg.warm_window // 2), job=done)


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


def decide(services: Services, gap_old: list[float], gap_new: list[float], locality_ok: bool) -> AcceptanceDecision:
    g = services.config.gate
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
        retry_after=max(1, services.config.warm_window // 2),
    )


def apply_decision(
    services: Services,
    st: Any,
    decision: AcceptanceDecision,
    ref: AdapterRef,
    outcome: GateOutcome,
    parent: AdapterRef | None,
) -> bool:
    """Move the session on after a gate decision (inside its locked write). Returns True when
    the candidate goes to shadow evaluation (bound mode, batch still too small)."""
    cfg = services.config
    if decision.accepted:
        start_serving(st, ref, outcome.locality)
        return False
    if cfg.gate.mode == "bound" and not decision.final:
        shadow = {
            "since": time.time(),
            "candidate": ref.to_dict(),
            "parent": parent.to_dict() if parent else None,
            "through": max(outcome.turns) if outcome.turns else st.turn_count,
            "gap_old": outcome.gap_old,
            "gap_new": outcome.gap_new,
            "turns": outcome.turns,
            "decision": decision_summary(decision),
        }
        # Retrain only if the batch reaches max_batch without a decision.
        retry_at = st.turn_count + max(1, cfg.gate.max_batch - len(outcome.gap_old) + 1)
        reject(st, retry_at=retry_at, job=JobRecord(JobStatus.SHADOW, services.owner, detail=shadow))
        return True
    reject(st, retry_at=st.turn_count + (decision.more_turns_needed or max(1, cfg.warm_window // 2)))
    return False
