"""Soak: many threads, sessions adapting and serving, with deletes, rollbacks and client
retries injected; counts turns lost or duplicated and sessions or adapters that survive a
delete, and the peak size of every bounded structure (issue #20, item 11).

Each of ``--threads`` threads is the client of ``--sessions`` sessions and plays
``--turns`` turns on each, round robin, on one engine (tiny random surrogate built
in-process, the bundled encoder, background adaptation, audits at 10%). A scripted teacher
answers. Injected at random (seeded): a client retry of the same turn with the same
``request_id`` (must give one turn), ``engine.rollback`` of the session, and a delete of the
session (the client then starts a new conversation on the same id; background jobs, audits
and shadow steps of the deleted session are still running when it does). At the end every
session is checked against the client's own log of recorded replies:

* lost: a reply the client got as recorded whose turn is not in the store (same number,
  same answer), or a reply not recorded at all;
* duplicated: two stored turns with the same request id, or a turn number twice;
* survivors: a session deleted last (half of them end with a delete) that still has a state,
  turns, adapter folders or registry rows after ``wait_idle``.

Peaks are sampled every 5 ms: the store's per-session lock map, the job runner's maps, the
audit backlog, the surrogate's loaded adapters, the registry's faiss index cache.

    python benchmarks/soak.py --out benchmarks/results/soak.json      # SQLite and Redis
    python benchmarks/soak.py --stores sqlite --turns 10                # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from soma_engine import SomaConfig, SomaEngine
from soma_engine.runtime.encoder import Encoder
from soma_engine.runtime.models import resolve_encoder
from soma_engine.runtime.surrogate import SurrogateRuntime
from soma_engine.testing import save_tiny_model

QUERY = "Can you lower the price of the red bicycle?"
ANSWER = "The red bicycle costs eight hundred dollars."


def config() -> SomaConfig:
    """Permissive gate (serving after 4 teacher turns), background adaptation with the default
    strategy (soma), 10% audits."""
    return SomaConfig(
        warm_window=4,
        adaptation="background",
        max_new_tokens=8,
        lora={"steps": 5, "lr": 5e-3},
        gate={
            "min_fidelity": 0.0,
            "min_improvement": None,
            "locality_threshold": 2.0,
            "audit_rate": 0.1,
            "drift_threshold": 1.0,
        },
    )


def history(n_turns: int, sid: str) -> list[dict[str, str]]:
    """The conversation at turn ``n_turns + 1``; each session its own order number, so that
    sessions train different adapters (identical ones would share a content-addressed folder)."""
    query = f"{QUERY} Order {sid}."
    msgs: list[dict[str, str]] = []
    for _ in range(n_turns):
        msgs += [{"role": "user", "content": query}, {"role": "assistant", "content": teacher([query])}]
    return [*msgs, {"role": "user", "content": query}]


def teacher(messages: Any) -> str:
    last = messages[-1]
    text = last if isinstance(last, str) else getattr(last, "content", None) or last["content"]
    return f"{ANSWER} ({text.rsplit('Order ', 1)[-1]})"


class Peaks:
    """Samples the size of each bounded structure until stopped; keeps the maximum."""

    def __init__(self, engine: SomaEngine) -> None:
        self.engine = engine
        self.peak: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sizes(self) -> dict[str, int]:
        e = self.engine
        registry = e.adapters._registry
        return {
            "store_locks": len(getattr(e.store, "_locks", {})),
            "jobs_active": len(e.jobs._active),
            "jobs_looks": len(e.jobs._looks),
            "audit_backlog": e.auditor.backlog,
            "surrogate_adapters_loaded": len(e.surrogate._loaded),
            "registry_faiss_indexes": len(registry._indexes) if registry is not None else 0,
        }

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for k, v in self.sizes().items():
                self.peak[k] = max(self.peak[k], v)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def client(
    engine: SomaEngine, sids: list[str], turns: int, rng: random.Random, log: dict[str, Any], inject: bool = True
) -> None:
    """One thread: ``turns`` turns on each of its sessions, round robin, with injections
    (none during the warm-up)."""
    for _ in range(turns):
        for sid in sids:
            s = log[sid]
            rid = uuid.uuid4().hex
            reply = engine.chat(sid, history(len(s["replies"]), sid), teacher, request_id=rid)
            if inject and rng.random() < 0.05:  # the client retries (a timeout on its side): same request id
                again = engine.chat(sid, history(len(s["replies"]), sid), teacher, request_id=rid)
                s["retries"] += 1
                s["retry_mismatch"] += again.soma["turn"] != reply.soma["turn"] or not again.soma.get("replayed")
            s["replies"].append((reply.soma["turn"], reply.text, rid, reply.soma.get("recorded", True)))
            s["served"][reply.served_by] += 1
            roll = rng.random() if inject else 1.0
            if roll < 0.03:
                s["rollbacks"] += engine.rollback(sid, "soak: injected rollback")
            elif roll < 0.06:
                engine.delete(sid)
                s["deletes"] += 1
                s["replies"] = []  # a new conversation on the same id
    for sid in sids:  # half the sessions end deleted: nothing of them may survive
        if inject and rng.random() < 0.5:
            engine.delete(sid)
            log[sid]["deletes"] += 1
            log[sid]["replies"] = []
            log[sid]["deleted_last"] = True


def check(engine: SomaEngine, log: dict[str, Any]) -> dict[str, Any]:
    lost = duplicated = unrecorded = survivors = 0
    for sid, s in log.items():
        k = engine.key(sid)
        stored = engine.store.turns(k)
        if s.get("deleted_last"):
            adapters = [r for r in engine.adapters.list(k.namespace_digest) if r.session == k.digest]
            rows = engine.registry.entries(k.namespace_digest, k.digest)
            survivors += bool(engine.store.get(k) is not None or stored or adapters or rows)
            continue
        by_turn = {t.turn: t for t in stored}
        unrecorded += sum(not rec for *_, rec in s["replies"])
        lost += sum(
            1
            for turn, text, rid, rec in s["replies"]
            if rec and (turn not in by_turn or by_turn[turn].answer != text or by_turn[turn].request_id != rid)
        )
        rids = Counter(t.request_id for t in stored if t.request_id)
        duplicated += sum(n - 1 for n in rids.values() if n > 1)
        duplicated += len(stored) - len(by_turn)
        duplicated += max(0, len(stored) - len(s["replies"]))
    return {"lost": lost + unrecorded, "unrecorded": unrecorded, "duplicated": duplicated, "survivors": survivors}


def run(name: str, spec: str, model: Path, encoder: Encoder, args: argparse.Namespace) -> dict[str, Any]:
    runtime = SurrogateRuntime(str(model))
    engine = SomaEngine(config=config(), surrogate=runtime, encoder=encoder, store=spec)
    log: dict[str, Any] = {
        f"soak-{t}-{i}": {
            "replies": [],
            "served": Counter(),
            "retries": 0,
            "retry_mismatch": 0,
            "rollbacks": 0,
            "deletes": 0,
        }
        for t in range(args.threads)
        for i in range(args.sessions)
    }
    started = time.perf_counter()
    warm = min(args.turns, engine.config.warm_window)
    with Peaks(engine) as peaks:
        # Warm-up: every session's first warm window, then its adaptation (one job thread on a
        # shared CPU would otherwise still be training when the soak ends), then the soak.
        for turns, inject in ((warm, False), (args.turns - warm, True)):
            threads = [
                threading.Thread(
                    target=client,
                    args=(
                        engine,
                        [f"soak-{t}-{i}" for i in range(args.sessions)],
                        turns,
                        random.Random(args.seed * 1000 + t),
                        log,
                        inject,
                    ),
                )
                for t in range(args.threads)
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            idle = engine.wait_idle(600)
    seconds = time.perf_counter() - started
    result = check(engine, log)
    totals: Counter[str] = Counter()
    for s in log.values():
        totals.update(s["served"])
        totals.update({k: s[k] for k in ("retries", "retry_mismatch", "rollbacks", "deletes")})
    out = {
        **result,
        "retry_mismatch": totals["retry_mismatch"],
        "idle": idle,
        "seconds": round(seconds, 1),
        "turns": totals["teacher"] + totals["surrogate"],
        "served_by": {"teacher": totals["teacher"], "surrogate": totals["surrogate"]},
        "injected": {k: totals[k] for k in ("retries", "rollbacks", "deletes")},
        "audits_dropped": engine.audits_dropped,
        "peak": dict(peaks.peak),
        "after": Peaks(engine).sizes(),
    }
    engine.close()
    print(f"{name}: {json.dumps(out)}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=4, help="sessions per thread")
    ap.add_argument("--turns", type=int, default=50, help="turns per session")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stores", default="sqlite,redis")
    ap.add_argument("--redis", default=None, help="redis:// URL (default: start a redis-server)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/soak.json"))
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ["SOMA_HOME"] = str(tmp / "home")
        model = save_tiny_model(tmp / "model", visible_only=True)
        encoder = Encoder(resolve=lambda: resolve_encoder(None))
        stores = args.stores.split(",")
        if "sqlite" in stores:
            results["sqlite"] = run("sqlite", f"sqlite:///{tmp / 'soma.db'}", model, encoder, args)
        if "redis" in stores:
            proc = None
            url = args.redis
            if url is None:
                from redis_fixtures import start_redis_server

                proc, url = start_redis_server(tmp / "redis")
            try:
                spec = f"{url}?prefix=soak{uuid.uuid4().hex[:8]}&adapters={tmp / 'redis-adapters'}"
                results["redis"] = run("redis", spec, model, encoder, args)
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)
    payload = {
        "benchmark": "soak",
        "command": " ".join(sys.argv),
        "params": vars(args) | {"out": str(args.out)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "note": "shared, loaded machine"},
        "results": results,
        "ok": all(r["lost"] == 0 and r["duplicated"] == 0 and r["survivors"] == 0 for r in results.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}: ok={payload['ok']}")


if __name__ == "__main__":
    main()
