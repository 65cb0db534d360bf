"""What a caller sees of a session: the ``soma`` metadata of a reply (its gate numbers, latest
Gap, adoption) and :class:`~soma_engine.types.SessionView` with its metrics and adapter lineage."""

from __future__ import annotations

import logging
from typing import Any

from .adaptation import sharing
from .adaptation.decisions import decision_summary
from .adapters import AdapterRegistry, is_base, serving_ref
from .session import SessionState
from .types import Phase, Route, SessionView, TurnRecord

log = logging.getLogger("soma.engine")


def gate_info(st: SessionState) -> dict[str, Any]:
    """The latest gate decision's numbers and the latest Gap known for the session."""
    info: dict[str, Any] = {}
    job = st.job or {}
    last = next((d for d in reversed(st.decisions) if "accepted" in d), None)
    if job.get("status") == "shadow" and job.get("decision"):
        info["decision"] = dict(job["decision"])
    elif last is not None:
        info["decision"] = decision_summary(last)
    gaps = (st.drift or {}).get("gaps") if st.phase == Phase.SERVING.value else None
    if gaps:
        info["gap"] = round(float(gaps[-1]), 4)  # the latest audit
    elif "decision" in info and isinstance(info["decision"].get("fidelity"), float):
        info["gap"] = round(1.0 - info["decision"]["fidelity"], 4)  # mean held-out Gap_new
    adoption = sharing.adoption_summary(st)
    if adoption:
        info["adoption"] = adoption
    return info


def reply_meta(
    route: Route,
    record: TurnRecord,
    phase: str,
    info: dict[str, Any] | None = None,
    *,
    recorded: bool = True,
) -> dict[str, Any]:
    """A reply's ``soma`` metadata: who served, the session, phase and turn, and where known the
    fallback reason, adapter id, locality, Gap, gate decision and adoption."""
    meta: dict[str, Any] = {
        "served_by": record.served_by,
        "session_id": route.key.session_id,
        "namespace": route.key.namespace,
        "phase": phase,
        "turn": record.turn,
        # How the session was found (``SomaEngine.key``): integrations surface a fingerprint.
        "session_source": "fingerprint" if route.fingerprinted else "id",
    }
    if not recorded:
        meta["recorded"] = False
    if route.key.agent:
        meta["agent"] = route.key.agent
    if route.reason:
        meta["reason"] = route.reason
    if record.fallback:
        meta["fallback"] = record.fallback
    if record.adapter_id or route.adapter_id:
        meta["adapter_id"] = record.adapter_id or route.adapter_id
    if record.served_by_detail:
        meta["served_by_detail"] = record.served_by_detail
    if route.locality is not None:
        meta["locality"] = round(route.locality, 4)
    for name in ("gap", "decision", "adoption"):
        if info and name in info:
            meta[name] = info[name]
    return meta


def session_view(
    state: SessionState, turns: list[TurnRecord], registry: AdapterRegistry, warm_window: int
) -> SessionView:
    """The session as :meth:`SomaEngine.session` shows it."""
    return SessionView(
        session_id=state.session_id,
        namespace=state.namespace,
        agent=state.agent,
        phase=Phase(state.phase),
        turns=turns,
        metrics=dict(state.counters)
        | {"turns": state.turn_count, "job": state.job, "lineage": lineage(state, registry)}
        | gate_metrics(state, warm_window)
        | ({"served_by_detail": "base"} if is_base(state.adapter) else {}),
        adapter_id=(state.adapter or {}).get("adapter_id"),
        decisions=list(state.decisions),
    )


def lineage(state: SessionState, registry: AdapterRegistry) -> list[dict[str, Any]]:
    """The serving adapter, then where its weights came from (parent, donor), newest first."""
    ref = serving_ref(state.adapter)
    if ref is None:
        return []
    try:
        chain = registry.lineage(ref.namespace, ref.adapter_id, ref.session)
    except Exception:
        log.exception("could not read the lineage of adapter %s", ref.adapter_id[:8])
        chain = []
    return chain or [{"adapter_id": ref.adapter_id, "session": ref.session, "kind": None, "parent": ref.parent}]


def gate_metrics(state: SessionState, warm_window: int) -> dict[str, Any]:
    """``gate``: the latest decision's numbers; ``more_turns_needed``: teacher turns still
    needed before the gate can decide (bound mode: before its next look; 0 when serving;
    None when unknown); ``teacher_tokens``: teacher input + output, audits included."""
    c = state.counters
    info = gate_info(state)
    decision = info.get("decision") or {}
    more: int | None = None  # adapting: the job decides
    if state.phase == Phase.SERVING.value:
        more = 0
    elif (state.job or {}).get("status") == "shadow":
        more = decision.get("more_turns_needed")  # contexts before the next look (bound mode)
    elif state.phase in (Phase.WARM.value, Phase.ROLLED_BACK.value, Phase.REJECTED.value):
        due = state.next_adapt_at or (state.adapt_from + warm_window)
        more = max(0, due - state.turn_count)
    return {
        "gate": decision or None,
        "gap": info.get("gap"),
        "more_turns_needed": more,
        "teacher_tokens": int(
            c.get("teacher_input_tokens", 0)
            + c.get("teacher_output_tokens", 0)
            + c.get("audit_input_tokens", 0)
            + c.get("audit_output_tokens", 0)
        ),
    }
