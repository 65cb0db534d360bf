"""How long contexts are cut for training and mining (``adaptation/context_fit.py``): the
oldest tokens go, the leading system message (a RAG app's retrieved documents) and the newest
message stay, and mining scores exactly the prompt the distiller trains on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma_engine.adaptation.context_fit import fit_prompt, kept_ends
from soma_engine.adaptation.distiller import Example, tokenize_example
from soma_engine.adaptation.prompt_scoring import encode_turns
from soma_engine.runtime.surrogate import SurrogateRuntime
from soma_engine.testing import build_tiny_model
from soma_engine.types import Message


def _naive_fit(prompt: list[int], head: int, tail: int, room: int) -> list[int]:
    room = max(0, room)
    if len(prompt) <= room:
        return list(prompt)
    keep_head = head > 0 and head + tail <= room
    newest = room - head if keep_head else room
    kept = []
    for i, tok in enumerate(prompt):
        if (keep_head and i < head) or i >= len(prompt) - newest:
            kept.append(tok)
    return kept


@given(st.integers(0, 60), st.integers(0, 70), st.integers(0, 70), st.integers(-3, 70))
def test_fit_prompt_against_a_naive_loop(n: int, head: int, tail: int, room: int) -> None:
    prompt = list(range(100, 100 + n))
    head, tail = min(head, n), min(tail, n - min(head, n))
    out = fit_prompt(prompt, head, tail, room)
    assert out == _naive_fit(prompt, head, tail, room)
    assert len(out) == min(n, max(0, room))
    if head and head + tail <= room < n:  # both ends whole
        assert out[:head] == prompt[:head] and out[len(out) - tail :] == prompt[n - tail :]


def test_the_system_message_stays_only_with_the_newest_message() -> None:
    prompt = list(range(20))
    assert fit_prompt(prompt, 4, 3, 10) == [0, 1, 2, 3, 14, 15, 16, 17, 18, 19]
    assert fit_prompt(prompt, 4, 7, 10) == list(range(10, 20))  # both do not fit: the newest tokens
    assert fit_prompt(prompt, 0, 3, 10) == list(range(10, 20))
    assert fit_prompt(prompt, 4, 3, 30) == prompt  # it fits: nothing is cut


@pytest.fixture(scope="module")
def rt():
    model, tok = build_tiny_model()
    model.eval()
    runtime = SurrogateRuntime(None, model=model, tokenizer=tok, device="cpu")
    yield runtime
    runtime.close()


NOTES = "Notes: intervals are 4 x 4 minutes hard. Pacing: start slower than feels right."


def _long_chat(system: str | None) -> list[Message]:
    msgs = [Message("system", system)] if system else []
    for i in range(12):
        msgs += [Message("user", f"Question {i} about the long ride?"), Message("assistant", f"Answer {i}: ride.")]
    return msgs + [Message("user", "Should I do intervals?")]


def test_training_keeps_the_retrieved_notes_and_the_newest_turns(rt: SurrogateRuntime) -> None:
    msgs = _long_chat(NOTES)
    ex = Example(msgs, "Yes: 4 x 4 minutes hard.")
    full = rt.encode(rt.render(msgs))
    system = rt.encode(rt.render(msgs[:1], generation_prompt=False))
    assert full[: len(system)] == system and len(full) > 200
    ids, labels = tokenize_example(rt, ex, 200)
    prompt = ids[: sum(y == -100 for y in labels)]
    assert len(ids) == 200
    assert prompt[: len(system)] == system  # the notes the answer is read from
    assert prompt[len(system) :] == full[len(full) - (len(prompt) - len(system)) :]  # then the newest tokens
    assert rt.tokenizer.decode(prompt).rstrip().endswith("Should I do intervals?<|im_end|>\n<|im_start|>assistant")


def test_without_a_system_message_or_with_a_huge_one_the_oldest_tokens_go(rt: SurrogateRuntime) -> None:
    for msgs in (_long_chat(None), _long_chat(NOTES * 8)):
        full = rt.encode(rt.render(msgs))
        ids, labels = tokenize_example(rt, Example(msgs, "Yes."), 200)
        prompt = ids[: sum(y == -100 for y in labels)]
        assert prompt == full[len(full) - len(prompt) :]


def test_kept_ends_are_zero_when_the_template_does_not_render_them_as_prefixes(rt: SurrogateRuntime) -> None:
    msgs = _long_chat(NOTES)
    full = rt.encode(rt.render(msgs))
    render = lambda ms: rt.encode(rt.render(ms, generation_prompt=False))  # noqa: E731
    head, tail = kept_ends(full, msgs, render)
    assert head == len(render(msgs[:1])) and tail == len(full) - len(render(msgs[:-1]))
    assert rt.tokenizer.decode(full[len(full) - tail :]).startswith("<|im_start|>user\nShould I do intervals?")
    assert kept_ends(full, msgs, lambda ms: [0, 0, 0]) == (0, 0)  # not a prefix
    assert kept_ends(full, msgs[1:], render) == (0, 0)  # no system message
    assert kept_ends(full, msgs[:1], render) == (0, 0)  # only a system message


def test_mining_scores_the_prompt_the_distiller_trains_on(rt: SurrogateRuntime) -> None:
    msgs = _long_chat(NOTES)
    answer = " ".join(f"step{i}" for i in range(50))  # cut to 8 tokens by both
    ids, labels = tokenize_example(rt, Example(msgs, answer), 200, max_answer=8)
    trained = ids[: sum(y == -100 for y in labels)]
    turns = [([{"role": m.role, "content": m.content} for m in msgs], answer)]
    batch = encode_turns(rt.tokenizer, turns, max_seq_len=200, max_answer_tokens=8)
    context_len = int(batch.row_pos[0]) + 1
    assert batch.input_ids[0, :context_len].tolist() == trained
    assert batch.row_target.tolist() == [y for y in labels if y != -100]
