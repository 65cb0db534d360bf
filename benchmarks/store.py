"""Session stores under load: SQLite vs Redis, 1, 8 and 32 concurrent sessions (threads).

Two measurements per store and concurrency level, on one SomaEngine per run (every turn on
the teacher path: the warm window is longer than the run, so no model is loaded):

* **teacher-path overhead**: each thread is one session's user, turn after turn; the teacher
  takes ``--teacher-ms`` (a sleep, as a remote LLM call releases the GIL) and times itself;
  the added latency of a turn is ``engine.chat`` wall time minus the teacher's own time:
  message validation, routing (store read), the locked write of the turn record. p50/p99.
* **turn throughput**: the same with an instant teacher, closed loop for ``--seconds``:
  turns/s that the engine + store sustain (the store's ceiling, not an app's).

Redis: ``--redis URL``, else a ``redis-server`` is started on a free port in a temporary
folder (and stopped). Writes JSON (``--out``), with a ``summary`` of headline figures.

    python benchmarks/store.py --out benchmarks/results/store.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from soma_engine import SomaConfig, SomaEngine


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get update && apt-get install -y redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            return proc, url
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def conversation(history: int, t: int) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": "You are a helpful assistant."}]
    for i in range(history // 2):
        msgs += [
            {"role": "user", "content": f"Question {i} about the topic?"},
            {"role": "assistant", "content": "An answer."},
        ]
    return [*msgs, {"role": "user", "content": f"Turn {t}: what next?"}]


def run_threads(
    engine: SomaEngine,
    sessions: int,
    *,
    teacher_s: float,
    turns: int | None,
    seconds: float | None,
    history: int,
    warmup: int,
) -> dict[str, Any]:
    """``sessions`` threads, one session each (a new session every 60 turns, below the warm
    window). Returns per-turn added ms (after ``warmup`` turns per thread) and turn count."""
    added: list[float] = []
    count = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(sessions + 1)
    stop_at = [0.0]
    errors: list[BaseException] = []
    run = uuid.uuid4().hex[:6]

    def user(i: int) -> None:
        local: list[float] = []
        n = 0
        spent = [0.0]

        def teacher(messages: list[Any]) -> str:
            s = time.perf_counter()
            if teacher_s:
                time.sleep(teacher_s)
            spent[0] = time.perf_counter() - s
            return "Sure, here is a short answer to your question."

        try:
            barrier.wait()
            while True:
                if turns is not None and n >= turns + warmup:
                    break
                if seconds is not None and time.perf_counter() >= stop_at[0]:
                    break
                msgs = conversation(history, n)
                sid = f"{run}-u{i}-{n // 60}"
                s = time.perf_counter()
                reply = engine.chat(sid, msgs, teacher)
                total = time.perf_counter() - s
                assert reply.served_by == "teacher"
                if n >= warmup:
                    local.append((total - spent[0]) * 1000)
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        with lock:
            added.extend(local)
            count[0] += n

    threads = [threading.Thread(target=user, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    if seconds is not None:
        stop_at[0] = started + seconds
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return {"added": added, "turns": count[0], "elapsed_s": elapsed}


def bench_store(name: str, spec: str, levels: list[int], args: argparse.Namespace) -> dict[str, Any]:
    cfg = SomaConfig(warm_window=64, session_ttl=3600)
    out: dict[str, Any] = {}
    for n in levels:
        engine = SomaEngine(config=cfg, store=spec, namespace=f"bench-{uuid.uuid4().hex[:6]}")
        try:
            ov = run_threads(
                engine,
                n,
                teacher_s=args.teacher_ms / 1000,
                turns=args.turns,
                seconds=None,
                history=args.history,
                warmup=3,
            )
            tp = run_threads(engine, n, teacher_s=0.0, turns=None, seconds=args.seconds, history=args.history, warmup=0)
        finally:
            engine.close()
        added = ov["added"]
        out[str(n)] = {
            "sessions": n,
            "overhead_turns": len(added),
            "added_ms_p50": round(percentile(added, 50), 3),
            "added_ms_p90": round(percentile(added, 90), 3),
            "added_ms_p99": round(percentile(added, 99), 3),
            "added_ms_mean": round(statistics.fmean(added), 3),
            "throughput_turns_per_s": round(tp["turns"] / tp["elapsed_s"], 1),
            "throughput_turns": tp["turns"],
        }
        print(f"{name:6s} sessions={n:3d} {json.dumps(out[str(n)])}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,8,32", help="concurrent sessions (threads), comma-separated")
    ap.add_argument("--turns", type=int, default=40, help="measured turns per session for the overhead")
    ap.add_argument("--teacher-ms", type=float, default=50.0, help="simulated teacher latency for the overhead")
    ap.add_argument("--seconds", type=float, default=4.0, help="duration of each throughput run")
    ap.add_argument("--history", type=int, default=12, help="messages of history per turn")
    ap.add_argument("--redis", default=None, help="redis:// URL (default: start a redis-server)")
    ap.add_argument("--stores", default="sqlite,redis")
    ap.add_argument("--quick", action="store_true", help="fewer turns, shorter runs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/store.json"))
    args = ap.parse_args()
    if args.quick:
        args.turns, args.seconds = min(args.turns, 12), min(args.seconds, 1.5)
    levels = [int(x) for x in args.levels.split(",")]
    stores = args.stores.split(",")

    tmp = Path(tempfile.mkdtemp(prefix="soma-store-bench-"))
    os.environ.setdefault("SOMA_HOME", str(tmp / "home"))
    proc = None
    results: dict[str, Any] = {}
    try:
        if "sqlite" in stores:
            results["sqlite"] = bench_store("sqlite", f"sqlite:///{tmp / 'soma.db'}", levels, args)
        if "redis" in stores:
            url = args.redis
            if url is None:
                proc, url = start_redis(tmp)
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            sep = "&" if "?" in url else "?"
            results["redis"] = bench_store("redis", f"{url}{sep}prefix={prefix}", levels, args)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    import redis as redis_py

    result: dict[str, Any] = {
        "benchmark": "store_concurrency",
        "levels": levels,
        "teacher_ms": args.teacher_ms,
        "turns_per_session": args.turns,
        "throughput_seconds": args.seconds,
        "history_messages": args.history,
        "results": results,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "redis_py": redis_py.__version__,
        },
        "notes": "threads in one process (one GIL); Redis on the same machine. Added ms = engine.chat wall "
        "time minus the teacher's own time, per turn.",
    }
    summary: dict[str, Any] = {}
    for store, by_level in results.items():
        for n, r in by_level.items():
            summary[f"teacher-path added ms p50 ({store}, {n} sessions)"] = r["added_ms_p50"]
        for n, r in by_level.items():
            summary[f"turns/s ({store}, {n} sessions)"] = r["throughput_turns_per_s"]
    if "redis" in results and "32" in results["redis"]:
        p50 = results["redis"]["32"]["added_ms_p50"]
        summary["target: redis 32 sessions p50 <= 5 ms"] = "met" if p50 <= 5.0 else "missed"
    result["summary"] = summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
