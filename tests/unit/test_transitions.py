"""The session phase machine (session/transitions.py): every edge from every phase, allowed or
forbidden, and the typed records against the stored dicts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from soma_engine.adapters import BASE_SURROGATE, AdapterRef, is_base, serving_ref
from soma_engine.session import SessionState, SQLiteStore
from soma_engine.session.transitions import (
    ALLOWED,
    ForbiddenTransition,
    JobRecord,
    JobStatus,
    Parked,
    discard_adapter,
    reject,
    resume,
    roll_back,
    start_job,
    start_serving,
)
from soma_engine.types import Phase, SessionKey

KEY = SessionKey("ns", "s1")
OLD = AdapterRef(adapter_id="a" * 16, namespace=KEY.namespace_digest, session=KEY.digest, version=1)
NEW = AdapterRef(adapter_id="b" * 16, namespace=KEY.namespace_digest, session=KEY.digest, version=2)
BANK = {"bank": [[1.0, 0.0]], "threshold": 0.5}
PARKED = Parked(OLD.to_dict(), BANK, turn=3)
QUEUED = JobRecord(JobStatus.QUEUED, "owner-1", detail={"id": "j1", "attempt": 0})


def state(phase: Phase) -> SessionState:
    st = SessionState.new(KEY, ttl=60)
    st.phase, st.turn_count, st.adapter, st.adapter_version = phase.value, 7, OLD.to_dict(), 1
    st.locality, st.donor, st.drift = {"bank": [[0.0, 1.0]]}, NEW.to_dict(), {"gaps": [0.1]}
    return st


def check_start_job(st: SessionState) -> None:
    assert st.job == {"status": "queued", "owner": "owner-1", "id": "j1", "attempt": 0}


def check_start_serving(st: SessionState) -> None:
    assert (st.adapter, st.adapter_version, st.locality) == (NEW.to_dict(), 2, BANK)
    assert st.drift == {} and st.donor is None and st.job == {"status": "done", "owner": "o"}


def check_roll_back(st: SessionState) -> None:
    assert st.parked == {"adapter": OLD.to_dict(), "locality": {"bank": [[0.0, 1.0]]}, "turn": 7}
    assert (st.adapt_from, st.next_adapt_at, st.counters["rollbacks"], st.drift) == (7, 11, 1, {})
    assert st.adapter == OLD.to_dict()  # the parent of the re-adaptation
    assert st.decisions[-1]["kind"] == "rollback" and st.decisions[-1]["rollback"] == "topic left"


def check_resume(st: SessionState) -> None:
    assert (st.adapter, st.locality, st.parked, st.drift, st.counters["resumes"]) == (
        OLD.to_dict(),
        BANK,
        None,
        {},
        1,
    )
    assert st.decisions[-1] | {"time": 0} == {
        "kind": "resume",
        "adapter_id": OLD.adapter_id,
        "parked_at": 3,
        "resume_statistic": 0.1235,
        "turn": 7,
        "time": 0,
    }


def check_reject(st: SessionState) -> None:
    assert st.next_adapt_at == 9 and st.job == {"status": "failed", "error": "boom"}


def check_discard_adapter(st: SessionState) -> None:
    assert st.adapter is None and st.parked is None and st.next_adapt_at == 8
    assert st.decisions[-1]["corrupt_adapter"] == "bad weights"


EDGES: dict[str, tuple[Callable[[SessionState], None], Phase, Callable[[SessionState], None]]] = {
    "start_job": (lambda st: start_job(st, QUEUED), Phase.ADAPTING, check_start_job),
    "start_serving": (
        lambda st: start_serving(st, NEW, BANK, JobRecord(JobStatus.DONE, "o")),
        Phase.SERVING,
        check_start_serving,
    ),
    "roll_back": (
        lambda st: roll_back(st, "topic left", park=True, readapt_after=4),
        Phase.ROLLED_BACK,
        check_roll_back,
    ),
    "resume": (lambda st: resume(st, PARKED, 0.12345), Phase.SERVING, check_resume),
    "reject": (
        lambda st: reject(st, retry_at=9, job=JobRecord(JobStatus.FAILED, error="boom")),
        Phase.REJECTED,
        check_reject,
    ),
    "discard_adapter": (lambda st: discard_adapter(st, "bad weights"), Phase.ROLLED_BACK, check_discard_adapter),
}

# The machine as the issue draws it: warm -> adapting -> serving -> rolled_back -> adapting ...;
# rejected when the gate refuses; resume from a parked adapter; a corrupt adapter from anywhere.
EXPECTED = {
    ("start_job", Phase.WARM),
    ("start_job", Phase.ADAPTING),
    ("start_job", Phase.ROLLED_BACK),
    ("start_job", Phase.REJECTED),
    ("start_serving", Phase.WARM),
    ("start_serving", Phase.ADAPTING),
    ("start_serving", Phase.REJECTED),
    ("roll_back", Phase.SERVING),
    ("resume", Phase.ROLLED_BACK),
    ("resume", Phase.REJECTED),
    ("reject", Phase.ADAPTING),
    ("reject", Phase.REJECTED),
    *(("discard_adapter", p) for p in Phase),
}


def test_the_table_covers_every_edge() -> None:
    assert set(EDGES) == set(ALLOWED)
    assert {(edge, p) for edge, phases in ALLOWED.items() for p in phases} == EXPECTED


@pytest.mark.parametrize(("edge", "start"), [(e, p) for e in sorted(EDGES) for p in Phase])
def test_edge_from_phase(edge: str, start: Phase) -> None:
    move, target, check = EDGES[edge]
    st = state(start)
    before = copy.deepcopy(st.to_dict())
    if (edge, start) in EXPECTED:
        move(st)
        assert st.phase == target.value
        check(st)
    else:
        with pytest.raises(ForbiddenTransition, match=f"{edge} is not allowed from phase {start.value}"):
            move(st)
        assert st.to_dict() == before  # a forbidden edge changes nothing


def test_roll_back_without_park_keeps_nothing_aside() -> None:
    st = state(Phase.SERVING)
    roll_back(st, "audit Gap", park=False, readapt_after=2)
    assert st.parked is None and st.next_adapt_at == 9


JOBS: list[dict[str, Any]] = [
    {"status": "queued", "id": "j", "owner": "o", "pid": 1, "host": "h", "since": 1.0, "attempt": 0},
    {"status": "running", "id": "j", "queue": "q", "worker": "w", "attempt": 1, "started": 2.0},
    {"status": "done", "owner": "o", "seconds": 1.5, "reason": "no improvement"},
    {"status": "failed", "error": "enqueue: OSError", "owner": "o"},
    {"status": "shadow", "owner": "o", "candidate": NEW.to_dict(), "through": 5, "gap_old": [0.2], "turns": [5]},
]


@pytest.mark.parametrize("job", JOBS, ids=[j["status"] for j in JOBS])
def test_job_records_keep_the_stored_dict(job: dict[str, Any]) -> None:
    record = JobRecord.from_dict(job)
    assert record.status is JobStatus(job["status"]) and record.to_dict() == job


def test_typed_records_survive_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soma.db")
    try:
        with store.session(KEY, 60) as st:
            st.adapter, st.locality, st.phase = OLD.to_dict(), BANK, Phase.SERVING.value
            roll_back(st, "topic left", park=True, readapt_after=4)
        stored = store.get(KEY)
        assert stored is not None and stored.phase == Phase.ROLLED_BACK.value
        parked = Parked.from_dict(stored.parked or {})
        assert parked == Parked(OLD.to_dict(), BANK, 0)
        with store.session(KEY, 60, create=False) as st:
            resume(st, parked, 0.1)
        after = store.get(KEY)
        assert after is not None and (after.phase, after.adapter, after.parked) == ("serving", OLD.to_dict(), None)
    finally:
        store.close()


def test_the_base_surrogate_serves_parks_and_resumes_as_the_base(tmp_path: Path) -> None:
    # gate.min_improvement=None and a job that learned nothing: the base serves, with no adapter
    # id, through a rollback (parked) and a resume, and the stored state keeps it that way.
    store = SQLiteStore(tmp_path / "soma.db")
    try:
        with store.session(KEY, 60) as st:
            st.phase, st.adapter_version = Phase.ADAPTING.value, 3
            start_serving(st, None, BANK)
        stored = store.get(KEY)
        assert stored is not None and stored.adapter == BASE_SURROGATE and stored.adapter_version == 3
        assert is_base(stored.adapter) and serving_ref(stored.adapter) is None
        with store.session(KEY, 60, create=False) as st:
            roll_back(st, "topic left", park=True, readapt_after=4)
        stored = store.get(KEY)
        assert stored is not None and stored.decisions[-1]["adapter_id"] is None
        parked = Parked.from_dict(stored.parked or {})
        assert parked.adapter == BASE_SURROGATE and serving_ref(stored.adapter) is None  # re-adapt from scratch
        with store.session(KEY, 60, create=False) as st:
            resume(st, parked, 0.1)
        after = store.get(KEY)
        assert after is not None and (after.phase, after.adapter) == ("serving", BASE_SURROGATE)
        assert serving_ref(OLD.to_dict()) == OLD and not is_base(OLD.to_dict()) and not is_base(None)
    finally:
        store.close()
