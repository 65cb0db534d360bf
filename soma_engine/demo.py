"""The bundled demo conversation and the loop that runs it through the engine.

The conversation has the long-tail shape of Sec. 2.2 (long, information-dense opening
turns, then short dependent follow-ups) and one abrupt topic shift near the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .types import Reply

SYSTEM = "You are a concise, friendly negotiation coach. Answer in two or three sentences."

CONVERSATION = [
    "I'm selling my road bike, a 2019 carbon frame with Shimano 105 groupset, new tyres and a "
    "fresh service. Similar bikes list for 850 to 1000 dollars. I'd like to get about 900. "
    "How should I write the listing and what price should I put on it?",
    "A buyer messaged me. He says he has cash, can pick it up tomorrow, and offers 700 because "
    "he saw a similar model for that price last month. He sounds serious but pushy. How do I reply?",
    "He answered that 700 is his budget, but he might stretch a little if I include the pedals "
    "and the bottle cages. The pedals cost me 60 dollars. What counter-offer makes sense?",
    "I countered at 860 with pedals included. He said that is too much and asked whether I "
    "would meet him in the middle. What does meeting in the middle mean here and should I accept?",
    "He says 780 is final.",
    "Should I accept 780?",
    "What if I ask for 800?",
    "He agreed to 800!",
    "Should I ask for cash or a transfer?",
    "He wants to test ride it first. Is that safe?",
    "Should I hold his ID during the ride?",
    "OK, anything else before we meet?",
    "Thanks, and what about the receipt?",
    "By the way, what's a good recipe for banana bread?",
    "How long should it bake?",
    "Back to the bike: should I also sell my old helmet to him?",
]


@dataclass
class TurnRow:
    turn: int
    served_by: str
    phase: str
    latency_ms: float
    teacher_tokens: int
    surrogate_tokens: int
    locality: float | None
    reason: str
    text: str


@dataclass
class DemoReport:
    turns: list[TurnRow] = field(default_factory=list)
    teacher_only_tokens: int = 0
    teacher_tokens: int = 0
    teacher_calls: int = 0
    surrogate_turns: int = 0
    rollbacks: int = 0
    adaptation_seconds: float = 0.0
    teacher_is_stand_in: bool = True

    @property
    def tokens_saved(self) -> float:
        return 1 - self.teacher_tokens / self.teacher_only_tokens if self.teacher_only_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens_saved"] = round(self.tokens_saved, 4)
        d["calls_saved"] = len(self.turns) - self.teacher_calls
        return d

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "report.json"
        path.write_text(json.dumps(self.to_dict(), indent=1))
        self.plot(out / "tokens.png")
        return path

    def plot(self, path: Path) -> Path:
        """Per-turn tokens, coloured by who served each turn."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        turns = [r.turn for r in self.turns]
        teacher = [r.teacher_tokens for r in self.turns]
        local = [r.surrogate_tokens for r in self.turns]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar(turns, teacher, color="#3b7dd8", label="teacher tokens (billed)")
        ax.bar(turns, local, color="#4caf50", label="surrogate tokens (local)")
        for r in self.turns:
            if "rolled back" in r.reason:
                ax.axvline(r.turn, color="#d84b3b", linestyle="--", linewidth=1)
        ax.set_xlabel("turn")
        ax.set_ylabel("tokens (input + output)")
        ax.set_title(f"SOMA demo: {self.tokens_saved:.0%} of teacher tokens saved")
        ax.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def run_demo(
    chat: Callable[[list[dict[str, str]]], Reply],
    engine: Any,
    *,
    session_id: str,
    on_turn: Callable[[TurnRow], None] | None = None,
    count_prompt: Callable[[list[dict[str, str]]], int] | None = None,
    settle: float = 0.0,
) -> DemoReport:
    """Play the bundled conversation through ``chat`` (one turn: history -> Reply).

    Teacher-only cost is what the teacher would have read and written had it served every
    turn with the full history (``count_prompt`` counts a history as the teacher reads it).
    ``settle`` seconds of user "think time" between turns let background adaptation
    progress as it would between a real user's messages.
    """
    count = count_prompt or (lambda msgs: sum(max(1, len(m["content"]) // 4) for m in msgs))
    history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    report = DemoReport()
    for query in CONVERSATION:
        history.append({"role": "user", "content": query})
        started = time.perf_counter()
        reply = chat(history)
        latency = (time.perf_counter() - started) * 1000
        # Teacher-only cost of this turn: the teacher's own count where it served, else the
        # full history as the teacher would have read it plus an answer of the same length.
        if reply.served_by == "teacher":
            report.teacher_only_tokens += reply.usage.total_tokens
        else:
            report.teacher_only_tokens += count(history) + reply.usage.output_tokens
        row = TurnRow(
            turn=reply.soma.get("turn", len(report.turns) + 1),
            served_by=reply.served_by,
            phase=reply.soma.get("phase", ""),
            latency_ms=round(latency, 1),
            teacher_tokens=reply.usage.total_tokens if reply.served_by == "teacher" else 0,
            surrogate_tokens=reply.usage.total_tokens if reply.served_by == "surrogate" else 0,
            locality=reply.soma.get("locality"),
            reason=reply.soma.get("reason", ""),
            text=reply.text,
        )
        report.turns.append(row)
        if on_turn:
            on_turn(row)
        history.append({"role": "assistant", "content": reply.text})
        if settle > 0:
            engine.wait_idle(timeout=settle)
    engine.wait_idle()
    m = engine.session(session_id).metrics
    report.teacher_tokens = int(
        m["teacher_input_tokens"] + m["teacher_output_tokens"] + m["audit_input_tokens"] + m["audit_output_tokens"]
    )
    report.teacher_calls = int(m["teacher_calls"] + m["audit_calls"])
    report.surrogate_turns = int(m["surrogate_calls"])
    report.rollbacks = int(m["rollbacks"])
    report.adaptation_seconds = round(float(m["adaptation_seconds"]), 2)
    return report
