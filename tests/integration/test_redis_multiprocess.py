"""Several processes on one Redis store (a real ``redis-server``, see tests/redis_fixtures.py):

* a session that starts in one engine process continues in another, in the right phase and
  with its adapter, which the second process (another SOMA_HOME: another machine, in effect)
  fetches from the shared adapter storage and verifies;
* concurrent turns of one session from two processes serialise: no turn lost, numbered 1..n;
* adaptation on the queue: a ``soma worker`` killed with SIGKILL mid-job leaves the session on
  the teacher; RQ re-queues the job and a second worker finishes it; the session then serves.

Engine processes are small scripts run with ``subprocess`` on a tiny random surrogate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from soma_engine.types import Phase, SessionKey

QUERY = "Can you lower the price of the red bicycle?"
ANSWER = "The red bicycle costs eight hundred dollars."

CONFIG: dict[str, Any] = {
    "warm_window": 4,
    "adaptation": "inline",
    "max_new_tokens": 12,
    "recent_turns": 1,
    "summary_tokens": 0,
    "lora": {"steps": 10, "lr": 5e-3},
    "gate": {
        "min_fidelity": 0.0,
        "min_improvement": None,
        "locality_threshold": 2.0,
        "audit_rate": 0.0,
        "drift_threshold": 1.0,
    },
}

# One engine process. argv[1]: JSON spec; prints one JSON line with what it saw.
ENGINE_SCRIPT = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from soma_engine import SomaConfig, SomaEngine

spec = json.loads(sys.argv[1])
QUERY, ANSWER = spec["query"], spec["answer"]

def history(n):
    msgs = []
    for _ in range(n):
        msgs += [{"role": "user", "content": QUERY}, {"role": "assistant", "content": ANSWER}]
    return msgs + [{"role": "user", "content": QUERY}]

def teacher(messages):
    return ANSWER

engine = SomaEngine(config=SomaConfig(**spec["config"]), surrogate=spec.get("surrogate"), store=spec["store"])
sid, out = spec["session"], {}
if spec["mode"] == "warm":
    for t in range(4):
        r = engine.chat(sid, history(t), teacher)
        assert r.served_by == "teacher", r.soma
    view = engine.session(sid)
    out = {"phase": view.phase.value, "adapter_id": view.adapter_id, "turns": len(view.turns)}
elif spec["mode"] == "continue":
    n = engine.session(sid).metrics["turns"]
    route = engine.route(sid, history(n))
    out["route"] = {"target": route.target, "adapter_id": route.adapter_id, "turn": route.turn,
                    "phase": route.phase.value}
    r = engine.chat(sid, history(n), teacher)
    out["reply"] = {"served_by": r.served_by, "turn": r.soma["turn"], "adapter_id": r.soma.get("adapter_id"),
                    "fallback": r.soma.get("fallback"), "text": r.text}
elif spec["mode"] == "concurrent":
    while time.time() < spec["start_at"]:
        time.sleep(0.005)
    turns = []
    for i in range(spec["n"]):
        r = engine.chat(sid, [{"role": "user", "content": f"{spec['tag']} {i}"}], teacher)
        turns.append(r.soma["turn"])
    out = {"turns": turns}
engine.close()
print("RESULT " + json.dumps(out), flush=True)
"""

# A worker that trains slowly (1 s per LoRA step), to be killed mid-job.
SLOW_WORKER_SCRIPT = r"""
import sys, time
import torch
torch.set_num_threads(1)
from soma_engine.adaptation.queue import run_worker
run_worker(sys.argv[1], surrogate=sys.argv[2], lease=int(sys.argv[3]), name="slow-worker",
           on_progress=lambda stage, step, total: time.sleep(1.0))
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOMA_")}
    env.update(
        SOMA_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_engine(tmp_path: Path, home: Path, spec: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    proc = start_engine(tmp_path, home, spec)
    out, _ = proc.communicate(timeout=timeout)
    return _result(proc, out)


def start_engine(tmp_path: Path, home: Path, spec: dict[str, Any]) -> subprocess.Popen[str]:
    script = _script(tmp_path, "engine_proc.py", ENGINE_SCRIPT)
    spec = {"query": QUERY, "answer": ANSWER, **spec}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _result(proc: subprocess.Popen[str], out: str) -> dict[str, Any]:
    assert proc.returncode == 0, out[-4000:]
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.fixture(scope="module")
def visible_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random surrogate whose greedy output is always visible text (so it can serve)."""
    from soma_engine.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-visible") / "model", visible_only=True)


def _store(redis_url: str, prefix: str, adapters: str) -> str:
    return f"{redis_url}?prefix={prefix}&adapters={adapters}"


# ------------------------------------------------------------------------------- replicas


def test_session_continues_on_another_process_with_its_adapter(
    redis_url: str, redis_prefix: str, visible_model: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "shared-adapters"  # behind an fsspec URL: replicas keep their own caches
    store = _store(redis_url, redis_prefix, f"file://{remote}")
    spec = {"store": store, "config": CONFIG, "surrogate": str(visible_model), "session": "travels"}
    first = run_engine(tmp_path, tmp_path / "home-a", {**spec, "mode": "warm"})
    assert first["phase"] == "serving" and first["turns"] == 4 and first["adapter_id"]
    adapter_id = first["adapter_id"]
    assert list(remote.glob(f"*/{adapter_id}/soma.json"))  # uploaded to the shared storage

    second = run_engine(tmp_path, tmp_path / "home-b", {**spec, "mode": "continue"})
    assert second["route"] == {"target": "surrogate", "adapter_id": adapter_id, "turn": 5, "phase": "serving"}
    assert second["reply"]["served_by"] == "surrogate", second
    assert second["reply"]["turn"] == 5 and second["reply"]["adapter_id"] == adapter_id
    # The second replica lacked the adapter: it fetched it into its own cache, verified.
    assert list((tmp_path / "home-b" / "adapter-cache").glob(f"*/*/{adapter_id}/soma.json"))

    from soma_engine.session.redis import RedisStore

    s = RedisStore(redis_url, prefix=redis_prefix)
    try:
        state = s.get(SessionKey("default", "travels"))
        assert state.phase == Phase.SERVING.value and state.turn_count == 5
        assert [t.served_by for t in s.turns(SessionKey("default", "travels"))] == ["teacher"] * 4 + ["surrogate"]
    finally:
        s.close()


def test_concurrent_turns_from_two_processes_serialise(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    n = 25
    config = {**CONFIG, "warm_window": 64}  # every turn on the teacher path: no model is loaded
    store = _store(redis_url, redis_prefix, str(tmp_path / "adapters"))
    start_at = time.time() + 8  # both processes are up by then and start together
    procs = [
        start_engine(
            tmp_path,
            tmp_path / f"home-{tag}",
            {
                "store": store,
                "config": config,
                "session": "contended",
                "mode": "concurrent",
                "n": n,
                "tag": tag,
                "start_at": start_at,
            },
        )  # fmt: skip
        for tag in ("a", "b")
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        results.append(_result(p, out))
    seen = results[0]["turns"] + results[1]["turns"]
    assert sorted(seen) == list(range(1, 2 * n + 1))  # every turn numbered once: none lost
    assert all(r["turns"] == sorted(r["turns"]) for r in results)

    from soma_engine.session.redis import RedisStore

    s = RedisStore(redis_url, prefix=redis_prefix)
    try:
        k = SessionKey("default", "contended")
        state = s.get(k)
        assert state.turn_count == 2 * n and state.counters["teacher_calls"] == 2 * n
        turns = s.turns(k)
        assert [t.turn for t in turns] == list(range(1, 2 * n + 1))
        assert sorted(t.query for t in turns) == sorted(f"{tag} {i}" for tag in "ab" for i in range(n))
    finally:
        s.close()


# ------------------------------------------------------------------------------- queue


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def history(n: int) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for _ in range(n):
        msgs += [{"role": "user", "content": QUERY}, {"role": "assistant", "content": ANSWER}]
    return [*msgs, {"role": "user", "content": QUERY}]


def test_queue_worker_killed_mid_job_then_second_worker_finishes(
    redis_url: str,
    redis_prefix: str,
    visible_model: Path,
    shared_encoder: Any,
    tmp_path: Path,
) -> None:
    from rq.job import Job

    from soma_engine import SomaConfig, SomaEngine
    from soma_engine.runtime.surrogate import SurrogateRuntime

    lease = 3
    store = _store(redis_url, redis_prefix, str(tmp_path / "shared-adapters"))
    engine = SomaEngine(
        config=SomaConfig(**{**CONFIG, "adaptation": "queue"}),
        surrogate=SurrogateRuntime(str(visible_model)),
        encoder=shared_encoder,
        store=store,
    )
    workers: list[subprocess.Popen[str]] = []
    try:
        sid, k = "queued", SessionKey("default", "queued")
        for t in range(4):
            assert engine.chat(sid, history(t), lambda m: ANSWER).served_by == "teacher"
        state = engine.store.get(k)
        assert state.phase == Phase.ADAPTING.value
        job = state.job
        assert job["status"] == "queued" and job["id"] and job["queue"] == f"{redis_prefix}-adapt"
        assert engine.session(sid).metrics["job"]["status"] == "queued"

        slow = _script(tmp_path, "slow_worker.py", SLOW_WORKER_SCRIPT)
        w1 = subprocess.Popen(
            [sys.executable, str(slow), store, str(visible_model), str(lease)],
            env=_env(tmp_path / "home-w1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        workers.append(w1)
        running = _wait(
            lambda: (engine.store.get(k).job or {}).get("status") == "running" and engine.store.get(k).job,
            180,
            "the first worker to start the job",
        )
        assert running["id"] == job["id"] and running["attempt"] == 1 and running["worker"] == "slow-worker"
        time.sleep(1.5)  # mid-training (1 s per step)
        os.kill(w1.pid, signal.SIGKILL)
        w1.wait(10)

        # The dead worker's job: the session stays on the teacher, nothing re-enqueued yet.
        reply = engine.chat(sid, history(4), lambda m: ANSWER)
        assert reply.served_by == "teacher" and reply.soma["phase"] == Phase.ADAPTING.value
        state = engine.store.get(k)
        assert state.phase == Phase.ADAPTING.value and state.job["id"] == job["id"]
        assert state.job["status"] == "running"

        time.sleep(lease + 1)  # the heartbeat lapses
        w2 = subprocess.Popen(
            [sys.executable, "-c", "from soma_engine.cli import main; main()", "worker", "--store", store,
             "--surrogate", str(visible_model), "--lease", str(lease), "--max-jobs", "1", "--name", "second-worker"],
            env=_env(tmp_path / "home-w2"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        workers.append(w2)
        out, _ = w2.communicate(timeout=300)
        assert w2.returncode == 0, out[-4000:]

        state = engine.store.get(k)
        assert state.phase == Phase.SERVING.value, (state.job, state.decisions, out[-3000:])
        assert state.job["status"] == "done" and state.adapter
        rq_job = Job.fetch(job["id"], connection=engine.store.redis)
        assert rq_job.get_status() == "finished"
        assert rq_job.retries_left == 1  # one retry used: the killed attempt
        assert rq_job.worker_name == "second-worker"
        # The app serves the next turn from the adapter the worker wrote.
        reply = engine.chat(sid, history(5), lambda m: ANSWER)
        assert reply.served_by == "surrogate", reply.soma
        assert reply.soma["adapter_id"] == state.adapter["adapter_id"]
        turns = engine.session(sid).turns
        assert [t.served_by for t in turns] == ["teacher"] * 5 + ["surrogate"]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(10)
        engine.close()


def test_queue_needs_a_redis_store(tmp_path: Path) -> None:
    from soma_engine import SomaConfig, SomaEngine
    from soma_engine.config import ConfigError

    with pytest.raises(ConfigError, match="Redis store"):
        SomaEngine(config=SomaConfig(adaptation="queue"), store=f"sqlite:///{tmp_path / 'x.db'}")


def test_queue_job_given_up_by_rq_is_enqueued_again(
    redis_url: str, redis_prefix: str, visible_model: Path, tmp_path: Path
) -> None:
    """When RQ gives up on a job (retries exhausted), the session's next teacher turn sees no
    live job and enqueues a fresh one; while a job is alive, turns enqueue nothing."""
    from rq.job import Job, JobStatus

    from soma_engine import SomaConfig, SomaEngine
    from soma_engine.runtime.surrogate import SurrogateRuntime

    store = _store(redis_url, redis_prefix, str(tmp_path / "adapters"))
    engine = SomaEngine(
        config=SomaConfig(**{**CONFIG, "adaptation": "queue"}),
        surrogate=SurrogateRuntime(str(visible_model)),
        store=store,
    )
    try:
        sid, k = "given-up", SessionKey("default", "given-up")
        for t in range(5):
            assert engine.chat(sid, history(t), lambda m: ANSWER).served_by == "teacher"
        first = engine.store.get(k).job
        assert engine.jobs.queue.status(first["id"]) == "queued"
        assert len(engine.jobs.queue.queue) == 1  # turn 5 enqueued nothing more
        Job.fetch(first["id"], connection=engine.store.redis).set_status(JobStatus.FAILED)
        assert engine.chat(sid, history(5), lambda m: ANSWER).served_by == "teacher"
        second = engine.store.get(k).job
        assert second["status"] == "queued" and second["id"] != first["id"]
        assert engine.store.get(k).phase == Phase.ADAPTING.value
    finally:
        engine.close()
