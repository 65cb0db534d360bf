"""Added latency of SomaEngine on teacher-path turns, against calling the teacher directly.

Both are measured side by side in one run on the same instant teacher, so the difference
is the engine's own cost: message validation, routing, the store read, and the locked
write of the turn record (SQLite, WAL). Writes JSON.

    python benchmarks/overhead.py --turns 2000 --out benchmarks/results/overhead.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from soma_engine import SomaConfig, SomaEngine


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--history", type=int, default=12, help="messages of history per turn")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/overhead.json"))
    ap.add_argument("--quick", action="store_true", help="300 turns")
    args = ap.parse_args()
    if args.quick:
        args.turns = min(args.turns, 300)

    def teacher(messages: list) -> str:
        return "Sure, here is a short answer to your question."

    tmp = Path(tempfile.mkdtemp(prefix="soma-overhead-"))
    # A warm window longer than the run keeps every turn on the teacher path.
    engine = SomaEngine(config=SomaConfig(warm_window=64, session_ttl=3600), store=f"sqlite:///{tmp / 'soma.db'}")
    base = [{"role": "system", "content": "You are a helpful assistant."}]
    for i in range(args.history // 2):
        base += [
            {"role": "user", "content": f"Question {i} about the topic?"},
            {"role": "assistant", "content": "An answer."},
        ]

    direct, via = [], []
    for t in range(args.turns):
        msgs = [*base, {"role": "user", "content": f"Turn {t}: what next?"}]
        sid = f"s{t % args.sessions}-{t // (args.sessions * 60)}"  # stay below the warm window
        s = time.perf_counter()
        teacher(msgs)
        direct.append((time.perf_counter() - s) * 1000)
        s = time.perf_counter()
        reply = engine.chat(sid, msgs, teacher)
        via.append((time.perf_counter() - s) * 1000)
        assert reply.served_by == "teacher"
    engine.close()
    warm = slice(min(50, args.turns // 10), None)  # drop connection set-up
    added = [v - d for v, d in zip(via[warm], direct[warm], strict=True)]
    result = {
        "benchmark": "teacher_path_overhead",
        "store": "sqlite",
        "turns": len(added),
        "sessions": args.sessions,
        "history_messages": args.history,
        "added_ms_p50": round(percentile(added, 50), 4),
        "added_ms_p99": round(percentile(added, 99), 4),
        "added_ms_mean": round(statistics.fmean(added), 4),
        "direct_ms_p50": round(percentile(direct[warm], 50), 5),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    result["summary"] = {
        "teacher-path added ms p50 (sqlite)": result["added_ms_p50"],
        "teacher-path added ms p99 (sqlite)": result["added_ms_p99"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
