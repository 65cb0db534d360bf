"""Adapter sharing (issue 8): how much earlier related sessions switch, at what fidelity, and
what agents on one engine cost in memory.

Parts (``--parts``, default both):

- ``reuse``   scripted families of similar sessions (a persona teacher per family; each
              session a different sample of the family's questions). Every family's sessions
              run one after the other on one engine, with ``share="none"`` and then with
              ``share="namespace"`` (a fresh store each time). Per session: the turn at which
              it first serves locally, whether it adopted a donor, and the held-out fidelity
              (mean 1 - Gap, i.e. the bundled MiniLM cosine, of the surrogate's answer with the
              session's adapter against the teacher's answer on questions the session never
              trained on, served from the compressed context). Also the cosine between every
              session's early centroid (its first ``share_min_turns`` queries) and each
              first-session warm-start centroid, same family vs. other families: the
              measurement behind the ``share_similarity`` default.
- ``memory``  RSS and parameter count of the process with 1 and then 5 ``SomaChatModel``
              agents on one engine, each with its own session adapted and served once; and,
              for contrast, a second base model loaded the way a second engine would.

Tiny random surrogate by default (``--model smollm2`` for the bundled SmolLM2-135M). Writes
JSON with a top-level ``summary``.

    SOMA_HOME=/tmp/somahome python benchmarks/sharing.py --quick
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # tiny ops on a busy 2-core host (see adaptation.py)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from soma_engine import SomaConfig, SomaEngine  # noqa: E402
from soma_engine.acceptance.bounds import gap  # noqa: E402
from soma_engine.adapters import serving_ref  # noqa: E402
from soma_engine.runtime.encoder import Encoder  # noqa: E402
from soma_engine.runtime.surrogate import SurrogateRuntime  # noqa: E402
from soma_engine.types import Message  # noqa: E402


def _keyword(q: str) -> str:
    return max(q.strip("?.!").replace(",", " ").split(), key=len)


# A family: system prompt, the persona's style, and a pool of related questions.
FAMILIES: dict[str, tuple[str, Any, list[str]]] = {
    "pirate-bike": (
        "You are a pirate who coaches people selling their bicycles.",
        lambda q: f"{_keyword(q).capitalize()}? Arr, shiver me timbers, matey!",
        [
            "How should I price my road bike listing?",
            "A buyer offers seven hundred dollars for my bike, what now?",
            "Should I include the pedals when I sell the bike?",
            "He proposes meeting in the middle on the bike price, accept?",
            "Should I clean the bike before the buyer comes?",
            "Is a test ride on my bike safe?",
            "Should I accept cash or a bank transfer for the bicycle?",
            "What if the buyer haggles again over the bicycle?",
            "Should I sell my old helmet with the bike?",
            "Which photos make a bicycle listing attractive?",
            "How do I describe the bike's carbon frame honestly?",
            "Should I list the bike on several websites?",
            "What do I write on the receipt for the bicycle?",
        ],
    ),
    "butler-lisbon": (
        "You are a formal butler planning a trip to Lisbon.",
        lambda q: f"Certainly, sir. Regarding the {_keyword(q).lower()}, I shall attend to it at once.",
        [
            "Please plan my trip to Lisbon next week.",
            "Which museums in Lisbon should I visit?",
            "Book a table for dinner near the river in Lisbon.",
            "Arrange a day trip to Sintra, please.",
            "What pastries should I try in Belem?",
            "Find me a tram route to the castle in Lisbon.",
            "Pack my suitcase for rainy Lisbon weather.",
            "Reserve a fado evening in the Alfama.",
            "Which Lisbon hotel has the best view?",
            "Arrange an airport transfer to my Lisbon hotel.",
            "Which Lisbon viewpoints are best at sunset?",
            "Plan a walking tour of Lisbon's old town.",
            "Where can I buy azulejo tiles in Lisbon?",
        ],
    ),
    "chef-dinner": (
        "You are a cheerful chef helping with tonight's dinner.",
        lambda q: f"Ooh, {_keyword(q).lower()}! Let us cook it up with a pinch of salt!",
        [
            "What should I cook for dinner tonight?",
            "How long do I roast the potatoes?",
            "Can I replace butter with olive oil?",
            "Which spices go with chicken?",
            "How do I make the sauce thicker?",
            "What dessert goes with this dinner?",
            "How do I keep the salad fresh?",
            "Which wine pairs with roast chicken?",
            "How do I know the chicken is cooked through?",
            "Can I prepare the vegetables in advance?",
            "How much garlic goes into the marinade?",
            "Should I rest the meat before carving?",
            "How do I crisp the chicken skin?",
        ],
    ),
}
TURNS = 6  # per session: warm_window 4 + 2 more
HELD_OUT = 3


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bundled_encoder() -> Encoder:
    from soma_engine.runtime.models import bundled_encoder_path

    enc = Encoder(str(bundled_encoder_path()))
    enc.encode(["warm up"])
    return enc


def runtime_path(model: str, home: Path) -> str:
    if model == "smollm2":
        from soma_engine.runtime.models import bundled_surrogate_path

        return str(bundled_surrogate_path())
    from soma_engine.testing import save_tiny_model

    path = home / "tiny"
    if not path.exists():
        save_tiny_model(path, visible_only=True)
    return str(path)


def config(model: str, share: str, quick: bool) -> SomaConfig:
    steps = {"tiny": 30, "smollm2": 10 if quick else 30}[model]
    return SomaConfig(
        warm_window=4,
        adaptation="inline",
        share=share,
        max_new_tokens=16 if model == "tiny" else 32,
        lora={"steps": steps, "lr": 5e-3 if model == "tiny" else 2e-3, "max_seq_len": 256},
        # The gate's floor is off: fidelity is what is measured, sharing must not change who
        # is allowed to switch; locality is permissive so that short sessions do not roll back.
        gate={
            "min_fidelity": 0.0,
            "min_improvement": None,
            "locality_threshold": 2.0,
            "audit_rate": 0.0,
            "drift_threshold": 1.0,
        },
    )


def sessions_of(family: str, n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """n sessions of a family: (conversation queries, held-out queries), disjoint samples."""
    pool = FAMILIES[family][2]
    rng = random.Random(f"{family}-{seed}")
    out = []
    for _ in range(n):
        qs = rng.sample(pool, TURNS + HELD_OUT)
        out.append((qs[:TURNS], qs[TURNS:]))
    return out


def held_out_fidelity(
    engine: SomaEngine, sid: str, history: list[dict[str, str]], held: list[str], style: Any
) -> float:
    """Mean 1 - Gap of the session's surrogate (its adapter, else the base) on held-out queries."""
    state = engine.store.get(engine.key(sid))
    ref = serving_ref(state.adapter) if state else None
    answers, refs = [], []
    for q in held:
        msgs = [Message.from_dict(m) for m in history] + [Message("user", q)]
        gen = engine.surrogate.generate(engine.compressed(msgs), ref, max_new_tokens=engine.config.max_new_tokens)
        answers.append(gen.text)
        refs.append(style(q))
    emb = engine.encoder.encode(answers + refs)
    n = len(held)
    return float(np.mean(1.0 - np.atleast_1d(gap(emb[:n], emb[n:]))))


def run_family(engine: SomaEngine, family: str, sessions: list[tuple[list[str], list[str]]]) -> list[dict[str, Any]]:
    system, style, _ = FAMILIES[family]
    rows = []
    for i, (queries, held) in enumerate(sessions):
        sid = f"{family}-{i}"
        history = [{"role": "system", "content": system}]
        served = []
        started = time.perf_counter()
        for q in queries:
            history.append({"role": "user", "content": q})
            reply = engine.chat(sid, history, lambda msgs: style(msgs[-1].content))
            history.append({"role": "assistant", "content": reply.text})
            served.append(reply.served_by)
        seconds = time.perf_counter() - started
        view = engine.session(sid)
        looks = [d for d in view.decisions if d.get("kind") == "adoption"]
        first = next((i + 1 for i, s in enumerate(served) if s == "surrogate"), None)
        rows.append(
            {
                "family": family,
                "session": i,
                "served_by": served,
                "first_local_turn": first,
                "adopted": any(d.get("adopted") for d in looks),
                "looks": [
                    {k: d.get(k) for k in ("turn", "similarity", "fidelity", "accepted", "adopted")} for d in looks
                ],
                "adaptations": int(view.metrics["adaptations"]),
                "held_out_fidelity": round(held_out_fidelity(engine, sid, history, held, style), 4),
                "seconds": round(seconds, 2),
            }
        )
        print(
            f"  {sid:18s} first local turn {first}  adopted {rows[-1]['adopted']}  "
            f"fidelity {rows[-1]['held_out_fidelity']:.3f}  ({seconds:.1f}s)",
            flush=True,
        )
    return rows


def centroid_similarities(encoder: Encoder, plan: dict[str, list[tuple[list[str], list[str]]]], k: int) -> dict:
    """Cosine of each non-first session's first-k-queries centroid to every family's first
    session's warm-start centroid (its first 4 queries)."""

    def centroid(queries: list[str]) -> np.ndarray:  # as sharing.warm_centroid computes it
        v = encoder.encode(queries).astype(np.float64).mean(axis=0)
        return v / np.linalg.norm(v)

    donors = {f: centroid(s[0][0][:4]) for f, s in plan.items()}
    same, other = [], []
    for fam, sessions in plan.items():
        for queries, _ in sessions[1:]:
            c = centroid(queries[:k])
            for dfam, d in donors.items():
                (same if dfam == fam else other).append(float(c @ d))
    return {
        "same_family": {
            "min": round(min(same), 4),
            "mean": round(statistics.mean(same), 4),
            "max": round(max(same), 4),
        },
        "other_family": {
            "min": round(min(other), 4),
            "mean": round(statistics.mean(other), 4),
            "max": round(max(other), 4),
        },
    }


def part_reuse(args: argparse.Namespace, encoder: Encoder, home: Path) -> dict[str, Any]:
    families = list(FAMILIES)[: args.families]
    plan = {f: sessions_of(f, args.sessions, args.seed) for f in families}
    path = runtime_path(args.model, home)
    runtime = SurrogateRuntime(path, device=args.device)  # one base model for both policies
    out: dict[str, Any] = {"families": families, "sessions_per_family": args.sessions, "turns": TURNS}
    for share in ("none", "namespace"):
        print(f"share={share}", flush=True)
        with tempfile.TemporaryDirectory(dir=home) as tmp:
            engine = SomaEngine(
                config=config(args.model, share, args.quick),
                surrogate=runtime,
                encoder=encoder,
                store=f"sqlite:///{tmp}/soma.db",
                namespace="bench",
            )
            rows = []
            for fam in families:
                rows += run_family(engine, fam, plan[fam])
            engine.jobs.close()  # the runtime is reused by the next policy: do not close it
            engine.store.close()
        out[share] = rows
    out["centroid_similarity"] = centroid_similarities(
        encoder, plan, config(args.model, "namespace", True).share_min_turns
    )
    return out


def _summary_reuse(r: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for share in ("none", "namespace"):
        later = [x for x in r[share] if x["session"] > 0]  # sessions that have a possible donor
        firsts = [x["first_local_turn"] or TURNS + 1 for x in later]
        s[f"mean first local turn, later sessions (share={share})"] = round(statistics.mean(firsts), 2)
        s[f"held-out fidelity, later sessions (share={share})"] = round(
            statistics.mean(x["held_out_fidelity"] for x in later), 4
        )
        s[f"held-out fidelity, all sessions (share={share})"] = round(
            statistics.mean(x["held_out_fidelity"] for x in r[share]), 4
        )
    s["later sessions that adopted (share=namespace)"] = (
        f"{sum(x['adopted'] for x in r['namespace'] if x['session'] > 0)}"
        f"/{sum(1 for x in r['namespace'] if x['session'] > 0)}"
    )
    s["turns earlier (mean, later sessions)"] = round(
        s["mean first local turn, later sessions (share=none)"]
        - s["mean first local turn, later sessions (share=namespace)"],
        2,
    )
    c = r["centroid_similarity"]
    s["early-centroid cosine same family (min)"] = c["same_family"]["min"]
    s["early-centroid cosine other family (max)"] = c["other_family"]["max"]
    return s


def part_memory(args: argparse.Namespace, encoder: Encoder, home: Path) -> dict[str, Any]:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from soma_integrations.langchain import SomaChatModel

    family = "chef-dinner"
    system, style, pool = FAMILIES[family]
    engine = SomaEngine(
        config=config(args.model, "none", True),
        surrogate=SurrogateRuntime(runtime_path(args.model, home), device=args.device),
        encoder=encoder,
        store=f"sqlite:///{home / 'memory.db'}",
        namespace="memory",
    )
    gc.collect()
    rss_empty = _rss_mb()

    def agent_turns(i: int) -> SomaChatModel:
        queries = (pool * 2)[i : i + 5]  # each agent its own conversation, so its own adapter
        answers = [style(q) for q in queries]
        model = SomaChatModel(teacher=FakeListChatModel(responses=answers), engine=engine, agent=f"agent-{i}")
        msgs: list[Any] = [("system", system)]
        for q in queries:  # 4 teacher turns (adapts inline), then one surrogate turn
            msgs.append(("user", q))
            msg = model.invoke(msgs, session_id="thread-1")
            msgs.append(("assistant", msg.content))
        return model

    points = []
    models = []
    for n in (1, 5):
        while len(models) < n:
            models.append(agent_turns(len(models)))
        gc.collect()
        rt = engine.surrogate
        base_params = sum(p.numel() for n_, p in rt.model.named_parameters() if "lora_" not in n_)
        lora_params = sum(p.numel() for n_, p in rt.model.named_parameters() if "lora_" in n_)
        points.append(
            {
                "agents": n,
                "rss_mb": round(_rss_mb(), 1),
                "rss_above_empty_engine_mb": round(_rss_mb() - rss_empty, 1),
                "base_models_in_memory": len({id(m.get_engine().surrogate.base_model) for m in models}),
                "parameters_total": int(sum(p.numel() for p in rt.model.parameters())),
                "lora_parameters_loaded": int(lora_params),
                "base_parameters": int(base_params),
                "adapters_loaded": len(rt.loaded_adapters()),
                "sessions": [engine.session("thread-1", agent=m.agent).phase.value for m in models],
            }
        )
        print(f"  {n} agent(s): RSS {points[-1]['rss_mb']} MiB, params {points[-1]['parameters_total']}", flush=True)
    # Contrast: what one more engine with its own runtime would add (a second base model; one
    # generation touches every weight, so memory-mapped pages count too).
    before = _rss_mb()
    second = SurrogateRuntime(runtime_path(args.model, home), device=args.device)
    second.generate([Message("user", "Hello there")], None, max_new_tokens=2)
    gc.collect()
    extra = _rss_mb() - before
    second.close()
    engine.close()
    return {"points": points, "second_engine_runtime_rss_mb": round(extra, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 families x 3 sessions")
    ap.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument("--parts", default="reuse,memory")
    ap.add_argument("--families", type=int, default=None)
    ap.add_argument("--sessions", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sharing.json"))
    args = ap.parse_args()
    args.families = args.families or (2 if args.quick else 3)
    args.sessions = args.sessions or (3 if args.quick else 4)
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        },
        "model": args.model,
        "mode": "quick" if args.quick else "default",
    }
    started = time.perf_counter()
    encoder = bundled_encoder()
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="soma-bench-sharing-") as tmp:
        home = Path(tmp)
        if "reuse" in parts:
            result["reuse"] = part_reuse(args, encoder, home)
            summary |= _summary_reuse(result["reuse"])
        if "memory" in parts:
            result["memory"] = part_memory(args, encoder, home)
            one, five = result["memory"]["points"]
            summary["RSS MiB, 1 agent"] = one["rss_mb"]
            summary["RSS MiB, 5 agents"] = five["rss_mb"]
            summary["base models in memory, 5 agents"] = five["base_models_in_memory"]
            summary["base parameters, 1 vs 5 agents"] = [one["base_parameters"], five["base_parameters"]]
            summary["RSS MiB a second engine's runtime would add"] = result["memory"]["second_engine_runtime_rss_mb"]
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["summary"] = summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
