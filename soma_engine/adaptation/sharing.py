"""Adapter sharing inside a namespace (``config.share``): registry records and adoption.

Every adapter a job saves is recorded in the :class:`~soma_engine.adapters.AdapterRegistry`
with its session's warm-start centroid (the unit mean of φ over the warm queries it was
trained on); only accepted ones are shareable. With ``share`` on, a session in its first warm
window with ``share_min_turns`` teacher turns looks for a shareable adapter whose centroid is
within ``share_similarity`` of its own (same namespace always; same agent's lineage only for
``share="agent"``). The acceptance gate then runs on the session's OWN teacher turns, which
the donor never trained on (Gap of the donor vs. the base surrogate, ``decisions.decide``: the
same rules as an adaptation's gate). Accepted: the session serves with the donor's adapter
from the next turn (its own registry row, kind "adopted", parent = the donor adapter).
Refused: its own adaptation at the full warm window starts from the donor's weights. Each
look is an ``"adoption"`` decision in ``SessionState.decisions``. Looks run off the teacher
path (the job runner's thread; in the caller with ``adaptation="inline"``). Each look tries the
nearest donor not tried before, so a session gates at most ``warm_window - share_min_turns``
donors. In ``gate.mode="bound"`` the sequential test decides on these few turns and, with no
shadow evaluation for donors, practically always refuses (the warm start still applies).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..adapters import AdapterRef, CorruptAdapter, RegistryEntry
from ..drift.detector import session_locality
from ..session import SessionGone
from ..session.transitions import push_decision, start_serving
from ..types import Phase, SessionKey, TurnRecord
from .decisions import decide
from .jobs import held_out_gaps, teacher_turns

if TYPE_CHECKING:
    from ..services import Services
    from ..session import SessionState

log = logging.getLogger("soma.sharing")

DONORS_TRIED = 4  # nearest shareable adapters fetched per look (one is tried per look)


def warm_centroid(services: Services, records: list[TurnRecord]) -> np.ndarray | None:
    """Unit mean of φ over the turns' queries (None without a query)."""
    queries = [r.query for r in records if r.query and r.query.strip()]
    if not queries:
        return None
    v = services.encoder.encode(queries).astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else None


def lineage_agents(services: Services, ref: AdapterRef | None) -> list[str]:
    """Agent digests whose conversations shaped ``ref``'s weights (its registry row's)."""
    if ref is None:
        return []
    entry = services.registry.get(ref.namespace, ref.adapter_id, ref.session)
    return entry.agents if entry else []


def record_adapter(
    services: Services,
    key: SessionKey,
    ref: AdapterRef,
    records: list[TurnRecord],
    *,
    accepted: bool,
    kind: str = "trained",
    donor: str | None = None,
    agents: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Registry row of a saved or adopted adapter. A registry failure never fails the job."""
    try:
        services.registry.record(
            ref,
            key,
            centroid=warm_centroid(services, records),
            accepted=accepted,
            kind=kind,
            donor=donor,
            agents=agents,
            metrics=metrics,
        )
    except Exception:
        log.exception("could not record adapter %s in the registry", ref.adapter_id[:8])


def due(services: Services, st: SessionState) -> bool:
    """May this session look for a shared adapter now? (inside its locked write)"""
    cfg = services.config
    if cfg.share == "none" or st.phase != Phase.WARM.value or st.adapter:
        return False
    window_end = st.next_adapt_at or (st.adapt_from + cfg.warm_window)
    return cfg.share_min_turns <= st.turn_count - st.adapt_from < window_end - st.adapt_from


def adopt(services: Services, key: SessionKey) -> dict[str, Any] | None:
    """One adoption look (see the module's docstring). Returns the decision recorded, or None
    when there was nothing to try."""
    cfg = services.config
    state = services.store.get(key)
    if state is None or not due(services, state):
        return None
    records = teacher_turns(services, key, state.adapt_from)
    centroid = warm_centroid(services, records) if len(records) >= cfg.share_min_turns else None
    if centroid is None:
        return None
    tried = {d.get("donor_adapter") for d in state.decisions if d.get("kind") == "adoption"}
    matches = services.registry.nearest(key, centroid, cfg.share, k=DONORS_TRIED, min_similarity=cfg.share_similarity)
    match = next((m for m in matches if m.entry.adapter_id not in tried), None)
    if match is None:
        return None
    entry = match.entry
    donor = donor_ref(key, entry)
    record: dict[str, Any] = {
        "kind": "adoption",
        "donor_adapter": entry.adapter_id,
        "similarity": round(match.similarity, 4),
        "own_turns": len(records),
    }
    record, locality = _gate_donor(services, key, entry, donor, records, record)
    try:
        adopted = _adoption_write(services, key, state.adapt_from, record, donor, locality)
    except SessionGone:
        return None  # deleted during the look: nothing is recorded, no registry row
    if adopted is not None:
        record_adapter(
            services,
            key,
            adopted,
            records,
            accepted=True,
            kind="adopted",
            donor=donor.session,
            agents=entry.agents,
            metrics={"fidelity": record.get("fidelity"), "similarity": record["similarity"]},
        )
    log.info(
        "session %s: %s shared adapter %s (similarity %.3f): %s",
        key.digest[:12],
        "adopted" if adopted is not None else "did not adopt",
        entry.adapter_id[:8],
        match.similarity,
        record.get("reason", ""),
    )
    return record


def donor_ref(key: SessionKey, entry: RegistryEntry) -> AdapterRef:
    """The donor's files, addressed through the caller's namespace (never the row's); the donor
    is the session that trained the weights (the matched row may be an adoption)."""
    return AdapterRef(
        adapter_id=entry.adapter_id,
        namespace=key.namespace_digest,
        session=entry.donor if entry.kind == "adopted" and entry.donor else entry.session,
        parent=entry.parent,
        created=entry.created,
        size_bytes=entry.size_bytes,
    )


def _gate_donor(
    services: Services,
    key: SessionKey,
    entry: RegistryEntry,
    donor: AdapterRef,
    records: list[TurnRecord],
    record: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The gate on the session's own turns (donor vs. the base surrogate): the look's record,
    and the session's locality model when the donor could be gated (None: it is unusable)."""
    try:
        gap_old, gap_new = held_out_gaps(services, donor, None, records)
    except CorruptAdapter as exc:
        services.registry.mark(key.namespace_digest, entry.adapter_id, entry.session, accepted=False)
        return record | {"accepted": False, "reason": f"donor adapter unusable: {exc}"}, None
    model, locality_ok, _ = session_locality(services.encoder, services.config.gate, records)
    decision = decide(services, gap_old, gap_new, locality_ok)
    return {**decision.to_dict(), **record}, model.to_dict()


def _adoption_write(
    services: Services,
    key: SessionKey,
    adapt_from: int,
    record: dict[str, Any],
    donor: AdapterRef,
    locality: dict[str, Any] | None,
) -> AdapterRef | None:
    """A look's write (never creates the session: :class:`SessionGone` if it was deleted);
    returns the adopted adapter, if any."""
    adopted: AdapterRef | None = None
    with services.store.session(key, services.config.session_ttl, create=False) as st:
        on_time = st.phase == Phase.WARM.value and not st.adapter and st.adapt_from == adapt_from
        if record["accepted"] and on_time and locality is not None:
            adopted = AdapterRef(
                adapter_id=donor.adapter_id,
                namespace=key.namespace_digest,
                session=key.digest,
                version=st.adapter_version + 1,
                parent=donor.adapter_id,
                size_bytes=donor.size_bytes,
                metrics={"adopted_from": donor.session, "similarity": record["similarity"]},
            )
            start_serving(st, adopted, locality)
            st.add("adoptions")
        else:
            if record["accepted"]:
                record["reason"] = f"{record.get('reason', '')}; too late: the session left its warm phase"
            if st.donor is None and locality is not None:
                st.donor = donor.to_dict()  # the session's own adaptation starts from these weights
        record |= {"adopted": adopted is not None, "turn": st.turn_count, "time": time.time()}
        push_decision(st, record)
    return adopted


def adoption_summary(st: SessionState) -> dict[str, Any] | None:
    """The latest adoption decision, as reply metadata shows it."""
    last = next((d for d in reversed(st.decisions) if d.get("kind") == "adoption"), None)
    if last is None:
        return None
    out = {k: last.get(k) for k in ("adopted", "donor_adapter", "similarity", "own_turns", "fidelity", "turn")}
    if isinstance(out["fidelity"], float):
        out["fidelity"] = round(out["fidelity"], 4)
    return out
