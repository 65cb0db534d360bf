"""What ``soma demo`` plays: its conversations, its teachers, and the loop that runs a
conversation through the engine.

``soma demo`` replays :data:`DEMO_CONVERSATION`, a ShareGPT conversation (``dev`` split) with its
recorded ChatGPT answers: twenty turns of the long-tail shape of Sec. 2.2 (two long,
information-dense requests for website copy, then short dependent follow-ups such as "shorter"
and "same for MLops"). :data:`SCRIPT` is a scripted negotiation coach with one abrupt detour,
for ``--teacher scripted`` and the savings benchmark. :func:`make_teacher` builds the teacher
of each ``--teacher`` option as an engine teacher (``engine.chat(session_id, messages, teacher)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .datasets.sharegpt import get_conversation
from .engine import SomaEngine, Teacher
from .runtime.surrogate import SurrogateRuntime
from .testing.teachers import Counter, ReplayTeacher, ScriptedTeacher
from .types import Reply, Usage, normalize_messages

DEMO_CONVERSATION = "saRnwpk_0"

# The scripted coach's conversation (``soma demo --teacher scripted``), package data
# (soma_engine/data/demo_script.json): the system prompt and twenty (query, answer) turns: four
# long, information-dense openers, short dependent follow-ups, one abrupt detour (turns 12-13,
# banana bread), then back to the bike. The
# detour sits mid-session, as detours do, so the session shows a rollback and a re-switch.
_SCRIPTED = json.loads(resources.files("soma_engine").joinpath("data/demo_script.json").read_text(encoding="utf-8"))
SYSTEM: str = _SCRIPTED["system"]
SCRIPT: list[tuple[str, str]] = [(t["user"], t["assistant"]) for t in _SCRIPTED["turns"]]
CONVERSATION = [q for q, _ in SCRIPT]


# The API key each ``--teacher provider:model`` needs; without it the demo plays a local stand-in.
CREDENTIALS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google_genai": "GOOGLE_API_KEY",
    "mistralai": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
}


class LocalTeacher:
    """An engine teacher over a local HF causal LM (its own copy, base weights, no adapter),
    given the full history every turn: the demo's stand-in teacher."""

    def __init__(
        self,
        model_path: str,
        max_new_tokens: int = 48,
        # Sampled, and no 6-gram of the history repeated: given the full history, SmolLM2 otherwise
        # copies its previous answer turn after turn (and the surrogate learns the copy).
        temperature: float = 0.7,
        no_repeat_ngram_size: int = 6,
    ) -> None:
        self.model_path = model_path
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self._runtime: SurrogateRuntime | None = None

    @property
    def runtime(self) -> SurrogateRuntime:
        if self._runtime is None:
            self._runtime = SurrogateRuntime(
                self.model_path, generation_options={"no_repeat_ngram_size": self.no_repeat_ngram_size}
            )
        return self._runtime

    def __call__(self, messages: Sequence[Any]) -> tuple[str, Usage]:
        gen = self.runtime.generate(
            normalize_messages(messages), None, max_new_tokens=self.max_new_tokens, temperature=self.temperature
        )
        return gen.text, Usage(gen.input_tokens, gen.output_tokens)

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


TEACHER_FACTORIES = "soma.teachers"  # entry-point group: an integration that builds a teacher from a spec


def chat_model_teacher(spec: str) -> Teacher:
    """A provider's chat model as an engine teacher (``--teacher provider:model``), built by
    the integration registered under the ``soma.teachers`` entry point (LangChain's
    ``init_chat_model``, with the ``[langchain]`` extra): soma_engine imports no framework."""
    for ep in entry_points(group=TEACHER_FACTORIES):
        try:
            return ep.load()(spec)
        except ImportError:  # its framework is not installed
            continue
    raise ValueError(f'--teacher {spec} needs LangChain: pip install "soma-middleware[langchain]"')


@dataclass
class DemoTeacher:
    """What ``soma demo`` plays: the engine teacher, a line saying what it is, and the
    conversation (``references``: the recorded answers, when there are any)."""

    teacher: Teacher
    note: str
    queries: list[str]
    system: str = ""
    references: list[str] = field(default_factory=list)

    @property
    def stand_in(self) -> bool:
        return "stand-in" in self.note

    def close(self) -> None:
        close = getattr(self.teacher, "close", None)
        if close:
            close()


def make_teacher(
    spec: str | None, engine: SomaEngine, max_new_tokens: int, conversation: str = DEMO_CONVERSATION
) -> DemoTeacher:
    """The demo's teacher and conversation. ``spec``: None or ``sharegpt`` (a ShareGPT
    conversation replayed with its recorded ChatGPT answers), ``scripted``, ``local``, or
    ``provider:model`` for LangChain's ``init_chat_model`` (on the bundled coaching script)."""
    rt = engine.surrogate

    def count_prompt(msgs: list[dict[str, str]]) -> int:
        return rt.count_tokens(rt.render(normalize_messages(msgs)))

    if spec in (None, "sharegpt"):
        conv = get_conversation(conversation)
        replay = ReplayTeacher.from_conversation(conv, count_prompt=count_prompt, count_answer=rt.count_tokens)
        note = (
            f"teacher: recorded ChatGPT answers (ShareGPT conversation {conv.id}, {len(conv)} turns), "
            "an offline stand-in"
        )
        return DemoTeacher(replay, note, conv.queries, "", [a for _, a in conv.turns])
    if spec == "scripted":
        scripted = ScriptedTeacher(SCRIPT, count_prompt=count_prompt, count_answer=rt.count_tokens)
        note = "the teacher is a scripted stand-in: fixed coach answers, instant (not a real LLM API)"
        return DemoTeacher(scripted, note, CONVERSATION, SYSTEM, [a for _, a in SCRIPT])
    if spec != "local":
        env = CREDENTIALS.get(spec.split(":", 1)[0])
        if env is None or os.environ.get(env):
            return DemoTeacher(chat_model_teacher(spec), f"teacher: {spec}", CONVERSATION, SYSTEM)
        note = f"no {env} set, so the teacher is a local stand-in"
    else:
        note = "the teacher is a local stand-in"
    note += ": the bundled SmolLM2 base model given the full history (not a real LLM API)"
    return DemoTeacher(LocalTeacher(rt.model_path, max_new_tokens), note, CONVERSATION, SYSTEM)


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
    query: str = ""
    reference: str = ""  # the recorded answer of this turn, where there is one
    similarity: float | None = None  # of the served answer to ``reference`` (MiniLM cosine)
    history: list[dict[str, str]] = field(default_factory=list, repr=False)  # S_t as served (not written out)


@dataclass
class DemoReport:
    """One session's outcome. ``teacher_tokens`` and ``teacher_calls`` include audits (the
    engine's session counters); ``teacher_only_tokens`` is what serving every turn by the
    teacher would have cost."""

    turns: list[TurnRow] = field(default_factory=list)
    teacher_only_tokens: int = 0
    teacher_tokens: int = 0
    teacher_calls: int = 0
    audit_calls: int = 0
    audit_tokens: int = 0
    surrogate_turns: int = 0
    rollbacks: int = 0
    adaptation_seconds: float = 0.0
    teacher_is_stand_in: bool = True

    @property
    def local_similarity(self) -> float | None:
        """Mean similarity of the locally served answers to the recorded ones (None: none)."""
        sims = [r.similarity for r in self.turns if r.served_by == "surrogate" and r.similarity is not None]
        return sum(sims) / len(sims) if sims else None

    @property
    def tokens_saved(self) -> float:
        return 1 - self.teacher_tokens / self.teacher_only_tokens if self.teacher_only_tokens else 0.0

    @property
    def first_local_turn(self) -> int | None:
        return next((r.turn for r in self.turns if r.served_by == "surrogate"), None)

    def why_no_local_turn(self) -> str | None:
        """Why the surrogate served no turn, read from the turns' phases (None if it did)."""
        if self.surrogate_turns or not self.turns:
            return None
        if any(r.phase == "rejected" for r in self.turns):
            return (
                "the gate refused the adapter: its answers on the held-out warm turn were not close enough to the "
                "teacher's (see gate.min_fidelity); the small surrogate was not faithful enough on this conversation"
            )
        phase = self.turns[-1].phase
        if phase == "adapting":
            return (
                f"adaptation outlasted the conversation ({self.adaptation_seconds:.0f} s of work on this machine): "
                "try `soma demo --quick`, a CUDA GPU (used when present), or a longer --think-time"
            )
        return f"the session ended in phase {phase!r}: see the note column and report.json"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for row in d["turns"]:
            row.pop("history", None)
        d["tokens_saved"] = round(self.tokens_saved, 4)
        d["calls_saved"] = len(self.turns) - self.teacher_calls
        d["first_local_turn"] = self.first_local_turn
        d["local_similarity"] = None if self.local_similarity is None else round(self.local_similarity, 4)
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
    count_prompt: Counter | None = None,
    settle: float | None = 0.0,
    queries: list[str] | None = None,
    system: str = SYSTEM,
    before_turn: Callable[[int], None] | None = None,
    references: list[str] | None = None,
    similarity: Callable[[str, str], float] | None = None,
) -> DemoReport:
    """Play ``queries`` (default: the bundled conversation) through ``chat`` (one turn:
    history -> Reply).

    Teacher-only cost is what the teacher would have read and written had it served every
    turn with the full history (``count_prompt`` counts a history as the teacher reads it):
    its own count where it served, else the history plus an answer as long as the one given.
    ``settle`` seconds of user "think time" between turns let background adaptation
    progress as it would between a real user's messages (``None``: wait until it is done).
    ``references``: the recorded answer of each turn; ``similarity(served, recorded)`` scores
    each served answer against it (the rows' ``similarity``).
    """
    count = count_prompt or (lambda msgs: sum(max(1, len(m["content"]) // 4) for m in msgs))
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    report = DemoReport()
    for query in CONVERSATION if queries is None else queries:
        if before_turn:
            before_turn(len(report.turns) + 1)
        history.append({"role": "user", "content": query})
        started = time.perf_counter()
        reply = chat(history)
        latency = (time.perf_counter() - started) * 1000
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
            query=query,
            history=[dict(m) for m in history],
        )
        if references is not None and len(report.turns) < len(references):
            row.reference = references[len(report.turns)]
            if similarity is not None:
                row.similarity = round(similarity(reply.text, row.reference), 4)
        report.turns.append(row)
        if on_turn:
            on_turn(row)
        history.append({"role": "assistant", "content": reply.text})
        if settle is None or settle > 0:
            with contextlib.suppress(TimeoutError):  # engine.wait_idle raises it when an audit outlasts settle
                engine.wait_idle(timeout=settle)
    engine.wait_idle()
    m = engine.session(session_id).metrics
    report.teacher_tokens = int(m["teacher_tokens"])  # teacher + audit input and output
    report.audit_calls = int(m.get("audit_calls", 0))
    report.audit_tokens = int(m.get("audit_input_tokens", 0) + m.get("audit_output_tokens", 0))
    report.teacher_calls = int(m.get("teacher_calls", 0) + report.audit_calls)
    report.surrogate_turns = int(m.get("surrogate_calls", 0))
    report.rollbacks = int(m.get("rollbacks", 0))
    report.adaptation_seconds = round(float(m.get("adaptation_seconds", 0.0)), 2)
    return report
