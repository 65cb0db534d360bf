"""Finding a session without an explicit id: the fingerprint of the conversation's opening
(system prompt + first user message, ``types.fingerprint``), kept apart per conversation.

Two users who open the same way share that fingerprint, so a conversation continues a
fingerprinted session only when the stored transcript is a prefix of its messages; otherwise it
takes the next free slot (``<fingerprint>~1``, ``~2``...), and past ``FINGERPRINT_SLOTS`` a slot
keyed by its own content.
"""

from __future__ import annotations

from ..types import Message, SessionKey, fingerprint, transcript_digest
from .base import SessionState, SessionStore

FINGERPRINT_SLOTS = 8  # conversations with one opening kept apart before a content-keyed slot


class SlotTaken(Exception):
    """A fingerprinted slot was taken by another conversation between route() and the write."""


def continues(state: SessionState, msgs: list[Message]) -> bool:
    """Does ``msgs`` continue the fingerprinted session ``state``: is its stored transcript a
    prefix of them? A session stored before transcripts were kept continues (no way to tell)."""
    t = state.transcript
    if t is None:
        return True
    n = int(t["n"])
    return len(msgs) > n and transcript_digest(msgs[:n]) == t["digest"]


def fingerprint_slot(
    store: SessionStore, namespace: str, msgs: list[Message], agent: str
) -> tuple[SessionKey, SessionState | None]:
    """The fingerprinted session this conversation continues (its stored transcript is a
    prefix of ``msgs``), else the first free slot of the opening's fingerprint, with its state."""
    base = fingerprint(msgs)
    for slot in range(FINGERPRINT_SLOTS):
        key = SessionKey(namespace, base if slot == 0 else f"{base}~{slot}", agent or "")
        state = store.get(key)
        if state is None or continues(state, msgs):
            return key, state
    # Every slot holds another conversation: this one gets a slot of its own content.
    return SessionKey(namespace, f"{base}~{transcript_digest(msgs)[:16]}", agent or ""), None
