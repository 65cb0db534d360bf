"""Compressed context S~_t: system prompt kept, the last K turns verbatim, an extractive
summary of older turns within ``summary_tokens`` (here counted by whitespace), chosen by
relevance to what the conversation still talks about."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from soma_engine.compress import SUMMARY_HEADER, compress_context, extractive_summary, split_turns
from soma_engine.types import Message


def ws_tokens(text: str) -> int:
    return len(text.split())


SYSTEM = "You are a helpful bicycle shop assistant."

FILLER = [
    ("What is the weather like in Lisbon today?", "It is sunny and warm. Trams are running late."),
    ("Tell me a joke about pirates.", "Arr, the pirate captain hoisted the sails. Nobody laughed."),
    ("Which football team won yesterday?", "The home team won by two goals. The crowd cheered."),
    ("Any gardening tips for tomatoes?", "Water them in the morning. Give them plenty of sun."),
]


def conversation(turns: list[tuple[str, str]], current: str, system: str | None = SYSTEM) -> list[Message]:
    msgs = [Message("system", system)] if system is not None else []
    for q, a in turns:
        msgs += [Message("user", q), Message("assistant", a)]
    return [*msgs, Message("user", current)]


def summary_of(compressed: list[Message], system: str | None = SYSTEM) -> str:
    """The summary part of the compressed system message ('' when there is none)."""
    if not compressed or compressed[0].role != "system":
        return ""
    text = compressed[0].content
    if system:
        assert text.startswith(system)
        text = text[len(system) :].lstrip("\n")
    return text


def test_recent_turns_verbatim_and_system_preserved() -> None:
    turns = [*FILLER, ("Is the red bicycle in stock?", "Yes, two red bicycles are in stock.")]
    msgs = conversation(turns, "How much is the red bicycle?")
    out = compress_context(msgs, recent_turns=2, summary_tokens=60, count_tokens=ws_tokens)
    # system + last 2 complete turns (4 messages) + the current user message
    assert out[0].role == "system"
    assert out[0].content.startswith(SYSTEM)
    assert out[1:] == msgs[-5:]
    assert len(out) == 6


def test_summary_stays_within_budget() -> None:
    msgs = conversation(FILLER * 3, "Thanks, and the weather tomorrow?")
    for budget in (12, 20, 40, 80):
        out = compress_context(msgs, recent_turns=1, summary_tokens=budget, count_tokens=ws_tokens)
        summary = summary_of(out)
        assert summary.startswith(SUMMARY_HEADER)
        assert 0 < ws_tokens(summary) <= budget, (budget, summary)
    # a larger budget never selects less
    small = summary_of(compress_context(msgs, recent_turns=1, summary_tokens=12, count_tokens=ws_tokens))
    large = summary_of(compress_context(msgs, recent_turns=1, summary_tokens=80, count_tokens=ws_tokens))
    assert ws_tokens(large) > ws_tokens(small)


def test_summary_picks_the_relevant_older_sentences() -> None:
    older = [
        ("I want to buy a bicycle for commuting.", "A city bicycle with fenders suits commuting."),
        *FILLER,
    ]
    recent = [("What about the football scores?", "No new scores yet.")]
    msgs = conversation([*older, *recent], "Which bicycle fenders fit a city bicycle for commuting?")
    out = compress_context(msgs, recent_turns=1, summary_tokens=25, count_tokens=ws_tokens)
    summary = summary_of(out)
    assert "city bicycle with fenders" in summary
    assert "bicycle for commuting" in summary
    # Irrelevant filler did not win over the relevant sentences.
    assert "tomatoes" not in summary
    assert "joke" not in summary
    # Labelled by speaker, original order kept.
    lines = summary.splitlines()[1:]
    assert lines[0].startswith("User: I want to buy a bicycle")
    assert lines[1].startswith("Assistant: A city bicycle")


def test_summary_keeps_original_order() -> None:
    older = [
        ("Tell me about the bicycle brakes.", "Disc brakes stop the bicycle well."),
        ("And the bicycle gears?", "The bicycle has eleven gears."),
    ]
    msgs = conversation([*older, *FILLER[:1]], "Bicycle brakes and bicycle gears, compare them.")
    summary = summary_of(compress_context(msgs, recent_turns=1, summary_tokens=200, count_tokens=ws_tokens))
    positions = [summary.index(s) for s in ("bicycle brakes", "Disc brakes", "bicycle gears?", "eleven gears")]
    assert positions == sorted(positions)


def test_no_summary_when_budget_zero() -> None:
    msgs = conversation(FILLER, "Anything else about Lisbon?")
    out = compress_context(msgs, recent_turns=1, summary_tokens=0, count_tokens=ws_tokens)
    assert out[0] == Message("system", SYSTEM)
    assert SUMMARY_HEADER not in out[0].content
    assert out[1:] == msgs[-3:]
    # without a system prompt there is no system message at all
    bare = conversation(FILLER, "Anything else?", system=None)
    out = compress_context(bare, recent_turns=1, summary_tokens=0, count_tokens=ws_tokens)
    assert [m.role for m in out] == ["user", "assistant", "user"]
    assert out == bare[-3:]


def test_no_summary_without_older_turns() -> None:
    msgs = conversation(FILLER[:2], "And then?")
    out = compress_context(msgs, recent_turns=2, summary_tokens=100, count_tokens=ws_tokens)
    assert out == msgs  # everything fits verbatim: nothing to summarise


def test_recent_turns_larger_than_history_keeps_every_turn() -> None:
    msgs = conversation(FILLER[:2], "And then?")
    for budget in (0, 100):
        out = compress_context(msgs, recent_turns=5, summary_tokens=budget, count_tokens=ws_tokens)
        assert out == msgs


def test_recent_turns_zero_keeps_only_current_turn() -> None:
    msgs = conversation(FILLER, "Weather in Lisbon tomorrow?")
    out = compress_context(msgs, recent_turns=0, summary_tokens=30, count_tokens=ws_tokens)
    assert out[-1] == msgs[-1]
    assert [m.role for m in out] == ["system", "user"]
    assert "Lisbon" in summary_of(out)


def test_summary_without_system_prompt_becomes_system_message() -> None:
    msgs = conversation(FILLER, "Weather in Lisbon tomorrow?", system=None)
    out = compress_context(msgs, recent_turns=1, summary_tokens=30, count_tokens=ws_tokens)
    assert out[0].role == "system"
    assert out[0].content.startswith(SUMMARY_HEADER)
    assert out[1:] == msgs[-3:]


def test_tool_messages_stay_inside_their_turn() -> None:
    msgs = [
        Message("system", SYSTEM),
        Message("user", "Check stock."),
        Message("assistant", "", tool_calls=({"id": "c1", "name": "stock", "args": {}},)),
        Message("tool", '{"red": 2}', tool_call_id="c1"),
        Message("assistant", "Two red bicycles."),
        Message("user", "Reserve one."),
    ]
    system, turns = split_turns(msgs)
    assert system == msgs[:1]
    assert turns == [msgs[1:5], msgs[5:]]
    out = compress_context(msgs, recent_turns=1, summary_tokens=50, count_tokens=ws_tokens)
    assert out[1:] == msgs[1:]


def test_extractive_summary_budget_smaller_than_header() -> None:
    older = [[Message("user", "bicycle bicycle bicycle")]]
    assert extractive_summary(older, "bicycle", 3, ws_tokens) == ""
    assert extractive_summary(older, "bicycle", 0, ws_tokens) == ""
    assert extractive_summary([], "bicycle", 100, ws_tokens) == ""


words = st.sampled_from(
    [
        "bicycle",
        "price",
        "lisbon",
        "tram",
        "pirate",
        "sails",
        "football",
        "goal",
        "tomato",
        "sun",
        "water",
        "brake",
        "gear",
    ]
)
sentence = st.lists(words, min_size=1, max_size=8).map(lambda ws: " ".join(ws).capitalize() + ".")
text = st.lists(sentence, min_size=1, max_size=3).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    turns=st.lists(st.tuples(text, text), min_size=0, max_size=8),
    current=text,
    recent=st.integers(0, 4),
    budget=st.integers(0, 60),
    with_system=st.booleans(),
)
def test_compression_properties(
    turns: list[tuple[str, str]], current: str, recent: int, budget: int, with_system: bool
) -> None:
    system = SYSTEM if with_system else None
    msgs = conversation(turns, current, system=system)
    out = compress_context(msgs, recent_turns=recent, summary_tokens=budget, count_tokens=ws_tokens)
    kept = min(recent, len(turns))
    tail = msgs[len(msgs) - (2 * kept + 1) :]
    assert out[len(out) - len(tail) :] == tail  # last K turns + current, verbatim
    head = out[: len(out) - len(tail)]
    assert len(head) <= 1
    summary = summary_of(out, system)
    assert ws_tokens(summary) <= budget
    if budget == 0 or kept == len(turns):
        assert summary == ""
    if system:
        assert head and head[0].content.startswith(system)
    # Every summarised sentence comes from an older turn.
    older_text = " ".join(q + " " + a for q, a in turns[: len(turns) - kept])
    for line in summary.splitlines()[1:]:
        assert line.split(": ", 1)[1] in older_text
