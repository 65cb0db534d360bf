"""The drift benchmark's scripted sessions: split files, their checksums, and how sessions are drawn.

Each split is one file, ``data/drift/<split>.jsonl``, one record a line (``data/DATASHEET.md`` says
how each split was written and run):

* ``{"kind": "scenario", "domain", "name", "system", "warm", "followups", "slots"}``: four long
  opening turns (the warm window) and short follow-ups specific to the scenario;
* ``{"kind": "followups", "domain", "turns"}``: the split's generic follow-ups of one domain;
* ``{"kind": "offtopic", "turns"}``: one casual off-topic thread of three turns.

A turn is ``[user query, teacher answer]``; texts use ``string.Template`` slots (``$ask``) filled per
session with a seeded RNG. ``data/drift/SHA256SUMS`` records each file's sha256 and every load checks
it, so a blind split cannot change unnoticed (``sha256sum -c SHA256SUMS`` checks the same).

Scripts in this folder import this module as ``data``, as do the tests (pytest's ``pythonpath``).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from string import Template
from typing import Any

Turn = tuple[str, str]  # (user query, teacher answer)

DRIFT = Path(__file__).resolve().parent / "data" / "drift"
DOMAINS = ("negotiation", "medical", "math", "trip", "code", "roleplay")
# written blind by authors who saw neither the detector nor a result
BLIND = ("holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9")
SPLITS = ("dev", "test", "holdout", *BLIND)


class DataError(ValueError):
    """A split that is unknown, malformed, or not the file its checksum records."""


@dataclass(frozen=True)
class Scenario:
    domain: str
    name: str
    system: str
    warm: tuple[Turn, ...]  # the four long opening turns, in order
    followups: tuple[Turn, ...]  # short follow-ups specific to this scenario
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """One split's texts, in the order they were written (the session draws depend on it)."""

    name: str
    scenarios: tuple[Scenario, ...]
    followups: dict[str, tuple[Turn, ...]]  # generic follow-ups per domain
    offtopic: tuple[tuple[Turn, ...], ...]

    def of(self, domain: str) -> tuple[list[Scenario], list[Turn]]:
        """The scenarios and generic follow-ups of ``domain``."""
        return [s for s in self.scenarios if s.domain == domain], list(self.followups.get(domain, ()))


@dataclass
class Session:
    """One scripted session. ``turns[i]`` is turn i+1; ``shift_turn`` (1-based) is the first
    off-topic turn, ``None`` for an on-topic session."""

    sid: str
    domain: str
    scenario: str
    split: str
    system: str
    turns: list[Turn]
    shift_turn: int | None = None
    shift_to: str | None = None


def path(split: str, root: Path = DRIFT) -> Path:
    if split not in SPLITS:
        raise DataError(f"unknown drift split {split!r}: choose one of {', '.join(SPLITS)}")
    return root / f"{split}.jsonl"


def sha256(split: str, root: Path = DRIFT) -> str:
    """The sha256 of the split's file as it is on disk."""
    return hashlib.sha256(path(split, root).read_bytes()).hexdigest()


def recorded_sha256(root: Path = DRIFT) -> dict[str, str]:
    """``SHA256SUMS``: split name -> the sha256 its file must have."""
    file = root / "SHA256SUMS"
    if not file.is_file():
        raise DataError(f"{file} is missing: it records the sha256 of every split file (sha256sum format)")
    sums: dict[str, str] = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        sums[name.removesuffix(".jsonl")] = digest
    return sums


def load_split(split: str, root: Path = DRIFT) -> Split:
    """Read ``<root>/<split>.jsonl`` after checking its sha256 against ``SHA256SUMS``."""
    file = path(split, root)
    if not file.is_file():
        raise DataError(f"{file} is missing: the drift splits live in benchmarks/data/drift/")
    raw = file.read_bytes()
    expected = recorded_sha256(root).get(split)
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise DataError(
            f"{file} has sha256 {actual} but SHA256SUMS records {expected}: the split changed since its "
            "results were measured; restore it (git checkout), or if the change is deliberate record the new "
            "sha256 in SHA256SUMS and DATASHEET.md and rerun benchmarks/drift.py"
        )
    scenarios: list[Scenario] = []
    followups: dict[str, tuple[Turn, ...]] = {}
    offtopic: list[tuple[Turn, ...]] = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        try:
            rec = json.loads(line)
            kind = rec["kind"]
            if kind == "scenario":
                scenarios.append(_scenario(rec))
            elif kind == "followups":
                followups[rec["domain"]] = _turns(rec["turns"])
            elif kind == "offtopic":
                offtopic.append(_turns(rec["turns"]))
            else:
                raise ValueError(f"kind {kind!r} is not scenario, followups or offtopic")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{file}:{n}: {type(exc).__name__}: {exc}") from exc
    return Split(split, tuple(scenarios), followups, tuple(offtopic))


def written_pool() -> Split:
    """``dev`` and ``test`` together, as written: one pool per domain whose even positions are
    ``dev`` and odd positions ``test`` (``benchmarks/savings.py`` draws from the whole pool)."""
    dev, test = load_split("dev"), load_split("test")

    def merge(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(x for pair in zip_longest(a, b) for x in pair if x is not None)

    return Split(
        "dev+test",
        tuple(s for d in DOMAINS for s in merge(tuple(dev.of(d)[0]), tuple(test.of(d)[0]))),
        {d: merge(dev.followups[d], test.followups[d]) for d in DOMAINS},
        merge(dev.offtopic, test.offtopic),
    )


def _turns(rows: list[list[str]]) -> tuple[Turn, ...]:
    if not all(isinstance(r, list) and len(r) == 2 and all(isinstance(t, str) for t in r) for r in rows):
        raise ValueError("a turn is [user query, teacher answer], two strings")
    return tuple((q, a) for q, a in rows)


def _scenario(rec: dict[str, Any]) -> Scenario:
    return Scenario(
        domain=rec["domain"],
        name=rec["name"],
        system=rec["system"],
        warm=_turns(rec["warm"]),
        followups=_turns(rec["followups"]),
        slots={k: tuple(v) for k, v in rec["slots"].items()},
    )


def dump_split(split: Split) -> str:
    """The JSONL text of ``split`` (what :func:`load_split` reads back)."""
    lines: list[dict[str, Any]] = []
    for d in DOMAINS:
        scenarios, generic = split.of(d)
        lines += [
            {
                "kind": "scenario",
                "domain": s.domain,
                "name": s.name,
                "system": s.system,
                "warm": [list(t) for t in s.warm],
                "followups": [list(t) for t in s.followups],
                "slots": {k: list(v) for k, v in s.slots.items()},
            }
            for s in scenarios
        ]
        if d in split.followups:
            lines.append({"kind": "followups", "domain": d, "turns": [list(t) for t in generic]})
    lines += [{"kind": "offtopic", "turns": [list(t) for t in thread]} for thread in split.offtopic]
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in lines)


# ------------------------------------------------------------------------------------ generation


def slot_values(rng: random.Random, scenario: Scenario) -> dict[str, str]:
    """One session's slot values: prices derived from the scenario's asking prices, plus its own slots."""
    asks = scenario.slots.get("ask", ("700", "800", "900", "950", "1000", "1200"))
    ask = int(rng.choice(asks))
    step = 10 if ask >= 500 else 1

    def r(x: float) -> int:
        return round(x / step) * step

    offer = r(ask * rng.uniform(0.72, 0.8))
    counter = r(ask * rng.uniform(0.93, 0.97))
    mid = r((offer + counter) / 2)
    final = r((offer + mid) / 2)
    values = {
        "ask": str(ask),
        "list": str(r(ask * 1.08)),
        "low": str(r(ask * 0.9)),
        "high": str(r(ask * 1.12)),
        "offer": str(offer),
        "counter": str(counter),
        "mid": str(mid),
        "final": str(final),
        "buyer": rng.choice(("Mark", "Dan", "Luis", "Tom")),
        "wrong": rng.choice(("x = 4", "7/12", "11/36", "-2", "1/11")),
        "med": "ibuprofen",
    }
    for name, options in scenario.slots.items():
        if name != "ask":
            values[name] = rng.choice(options)
    return values


def fill(turn: Turn, values: dict[str, str]) -> Turn:
    return Template(turn[0]).safe_substitute(values), Template(turn[1]).safe_substitute(values)


def make_sessions(
    split: str,
    per_domain: int = 4,
    followups: tuple[int, int] = (12, 16),
    seed: int = 0,
    shift_after: tuple[int, int] = (3, 8),
) -> list[Session]:
    """``per_domain`` on-topic sessions and ``per_domain`` shift sessions per domain.

    On-topic: 4 warm turns + 12-16 follow-ups. Shift: 4 warm turns, ``shift_after`` (3-8)
    on-topic follow-ups, then 3 turns of another topic (half the time another domain's scenario of the same split,
    half the time a casual off-topic thread).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    data = load_split(split)
    rng = random.Random(f"{seed}-{split}")
    sessions: list[Session] = []
    for domain in DOMAINS:
        mine, pool_generic = data.of(domain)
        for variant in ("ontopic", "shift"):
            for k in range(per_domain):
                sc = mine[k % len(mine)]
                values = slot_values(rng, sc)
                warm = [fill(t, values) for t in sc.warm]
                pool = [*sc.followups, *pool_generic]
                n_follow = rng.randint(*followups) if variant == "ontopic" else rng.randint(*shift_after)
                picks = rng.sample(pool, min(n_follow, len(pool)))
                turns = warm + [fill(t, values) for t in picks]
                shift_turn = shift_to = None
                if variant == "shift":
                    shift_turn = len(turns) + 1
                    if rng.random() < 0.5:
                        other = rng.choice([d for d in DOMAINS if d != domain])
                        target = rng.choice(data.of(other)[0])
                        o_vals = slot_values(rng, target)
                        turns += [fill(t, o_vals) for t in target.warm[:3]]
                        shift_to = f"{other}/{target.name}"
                    else:
                        turns += list(rng.choice(data.offtopic))
                        shift_to = "offtopic"
                sessions.append(
                    Session(
                        sid=f"{split}-{domain}-{variant}-{k}",
                        domain=domain,
                        scenario=sc.name,
                        split=split,
                        system=sc.system,
                        turns=turns,
                        shift_turn=shift_turn,
                        shift_to=shift_to,
                    )
                )
    return sessions


def messages_at(session: Session, turn: int) -> list[dict[str, str]]:
    """What an app sends at 1-based ``turn``: system, the previous turns, and the new query."""
    msgs = [{"role": "system", "content": session.system}]
    for q, a in session.turns[: turn - 1]:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return [*msgs, {"role": "user", "content": session.turns[turn - 1][0]}]
