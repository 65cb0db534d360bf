"""Stand-in teachers: the replay teacher's turn lookup (audits included) in its three forms."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

from soma_engine.testing import ReplayTeacher, ScriptedTeacher, teacher_only_tokens
from soma_integrations.langchain import SomaChatModel
from soma_integrations.testing import StandInChatModel, StandInLLM

TURNS = [
    ("I want a short description of our data science team for the website.", "We turn your data into decisions."),
    ("And a title for the services section?", "Our Services: Data Science and AI"),
    ("Shorter please.", "Our Services"),
    ("Same for the contact section.", "Contact Us"),
    ("And the about section?", "About Us"),
    ("Now the careers page title.", "Join Us"),
    ("And the blog?", "Our Blog"),
    ("Thanks, one more for the footer.", "Made with care"),
]


def history(upto: int, answers: list[str] | None = None) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for i, (q, a) in enumerate(TURNS[:upto]):
        msgs.append({"role": "user", "content": q})
        if i < upto - 1:
            msgs.append({"role": "assistant", "content": (answers or [])[i] if answers else a})
    return msgs


def test_replay_answers_by_number_of_user_messages_whatever_was_answered_before() -> None:
    teacher = ReplayTeacher(TURNS)
    assert teacher(history(1))[0] == TURNS[0][1]
    # the surrogate answered turns 1-4 differently: turn 5 still gets its own recorded answer
    text, usage = teacher(history(5, answers=["x"] * 4))
    assert text == TURNS[4][1]
    assert usage.input_tokens == sum(len(m["content"].split()) for m in history(5, answers=["x"] * 4))
    assert usage.output_tokens == 2 and teacher.calls == 2


def test_replay_refuses_turns_it_has_no_answer_for_or_out_of_step() -> None:
    teacher = ReplayTeacher(TURNS[:2])
    with pytest.raises(ValueError, match="has 2 recorded turns"):
        teacher(history(3))
    wrong = [{"role": "user", "content": "Something else entirely"}]
    with pytest.raises(ValueError, match="was recorded for"):
        teacher(wrong)
    assert ReplayTeacher(TURNS, check_query=False)(wrong)[0] == TURNS[0][1]
    with pytest.raises(ValueError, match="at least one"):
        ReplayTeacher([])


def test_teacher_only_tokens_counts_the_recorded_history() -> None:
    teacher = ReplayTeacher(TURNS)
    per_turn = teacher_only_tokens(teacher, "", [q for q, _ in TURNS[:3]])
    by_hand = [teacher.usage(history(t), TURNS[t - 1][1]).total_tokens for t in (1, 2, 3)]
    assert per_turn == by_hand and teacher.calls == 0  # accounting is not a call
    scripted = ScriptedTeacher(TURNS)
    assert teacher_only_tokens(scripted, "", [q for q, _ in TURNS[:3]]) == by_hand


def test_langchain_and_llama_index_forms_report_usage() -> None:
    lc = StandInChatModel(teacher=ReplayTeacher(TURNS))
    msg = lc.invoke([("human", TURNS[0][0]), ("ai", "anything"), ("human", TURNS[1][0])])
    assert msg.content == TURNS[1][1]
    assert msg.usage_metadata["output_tokens"] == len(TURNS[1][1].split())
    usage = msg.usage_metadata
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    li = StandInLLM(teacher=ReplayTeacher(TURNS))
    reply = li.chat([ChatMessage(role="user", content=TURNS[0][0])])
    assert reply.message.content == TURNS[0][1]
    assert reply.raw["usage"]["completion_tokens"] == len(TURNS[0][1].split())


class Spy(ReplayTeacher):
    """Remembers the turn and the answer of every call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, str]] = []

    def answer(self, messages: Any) -> str:
        text = super().answer(messages)
        self.seen.append((self.turn_of(messages), text))
        return text


def test_audits_of_a_turn_get_that_turns_recorded_answer(
    visible_model_path, shared_encoder, permissive_config, tmp_path
) -> None:
    """Through the real engine and SomaChatModel: audits replay the audited turn's answer."""
    from soma_engine import SomaEngine
    from soma_engine.runtime.surrogate import SurrogateRuntime

    engine = SomaEngine(
        config=permissive_config(gate={"audit_rate": 1.0, "audit_seed": 0}),
        surrogate=SurrogateRuntime(str(visible_model_path)),
        encoder=shared_encoder,
        store=f"sqlite:///{tmp_path / 'replay.db'}",
    )
    spy = Spy(TURNS)
    model = SomaChatModel(teacher=StandInChatModel(teacher=spy), engine=engine)
    msgs: list[tuple[str, str]] = []
    served = []
    for q, _ in TURNS:
        msgs.append(("human", q))
        reply = model.invoke(msgs, session_id="replay")
        served.append(reply.response_metadata["soma"]["served_by"])
        msgs.append(("ai", str(reply.content)))
    engine.wait_idle()
    metrics = engine.session("replay").metrics
    engine.close()
    assert served[:4] == ["teacher"] * 4 and "surrogate" in served
    local_turns = {t + 1 for t, s in enumerate(served) if s == "surrogate"}
    audited = [(t, a) for t, a in spy.seen if t in local_turns]
    assert {t for t, _ in audited} == local_turns  # audit_rate 1: every local turn audited
    assert all(a == TURNS[t - 1][1] for t, a in spy.seen)
    assert metrics["audit_calls"] == len(local_turns)
