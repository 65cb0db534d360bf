"""One conversation turn through the engine, whatever the framework.

The LangChain and LlamaIndex integrations call their teacher natively (its streaming, tools,
callbacks) and build their own message types; everything in between is the same and lives
here: route the turn, try the surrogate (whole or streamed), fall back to the teacher when
the surrogate fails or its output does not validate, and record the teacher's answer. An
integration subclasses :class:`Turn` with its call's own state and passes callbacks that
turn the engine's text pieces and :class:`~soma_engine.types.Reply` into its framework's
chunks and responses. Imports no framework.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .engine import SomaEngine
from .runtime.surrogate import SurrogateError
from .shared import shared_engine
from .tools import StopFilter, ToolCallError, ToolChoice, function_tools, tool_choice
from .types import Reply, Route, Usage

__all__ = [
    "SurrogateStream",
    "Turn",
    "aserve_surrogate",
    "astream_turn",
    "fall_back",
    "model_engine",
    "open_turn",
    "record_teacher",
    "serve_surrogate",
    "stream_turn",
    "tool_request",
]

log = logging.getLogger("soma.turns")

TOOL_CALL = "<tool_call>"  # how a teacher's tool call is recorded (tools.render_tool_calls)

R = TypeVar("R")
T = TypeVar("T", bound="Turn")
Audit = Callable[[Any], Any]


@dataclass(kw_only=True)
class Turn:
    """One call's state on its way through the engine. Integrations add their call's fields
    and override :attr:`validates` / :meth:`check` when the surrogate's answer must be
    checked (tool calls, structured output) before anyone sees it."""

    engine: SomaEngine
    buffered: bool = False
    route: Route | None = None
    untracked: str = ""
    surrogate_tools: list[dict[str, Any]] = field(default_factory=list)
    choice: ToolChoice = field(default_factory=ToolChoice)
    partial: bool = False
    # The call's generation settings for the surrogate: max_new_tokens, temperature, stop
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def surrogate(self) -> bool:
        return self.route is not None and self.route.target == "surrogate"

    @property
    def validates(self) -> bool:
        return False

    def check(self, text: str) -> Any:
        """Validate the surrogate's answer; raising makes the teacher serve the turn."""
        return text


def model_engine(model: Any, built: SomaEngine | None) -> SomaEngine:
    """The engine a wrapper model serves with: its ``engine`` field, else the open engine it
    built before (``built``; the model shows it as its ``engine`` too) while open, else the
    shared engine for its ``surrogate``, ``encoder``, ``store``, ``namespace`` and ``config``
    fields (built on first use)."""
    if model.engine is not None and model.engine is not built:
        return model.engine
    if built is not None and not built.closed:
        return built
    return shared_engine(
        surrogate=model.surrogate,
        encoder=model.encoder,
        store=model.store,
        namespace=model.namespace,
        config=model.config,
    )


def tool_request(turn: Turn, tools: Iterable[dict[str, Any]], choice: Any) -> dict[str, Any]:
    """The routing request of a turn with tools (OpenAI-format schemas; a lazy iterable is
    fine, its conversion errors count as unusable tools). Sets ``turn.surrogate_tools`` and
    ``turn.choice``; tools the surrogate cannot use make the teacher serve the turn."""
    try:
        turn.surrogate_tools = function_tools(list(tools))
        turn.choice = tool_choice(choice)
    except (ToolCallError, TypeError, ValueError, AttributeError) as exc:
        return {"teacher_only": True, "reason": f"tools: {exc}"}
    return {"tools": turn.surrogate_tools} if turn.choice.mode != "none" else {}


FINGERPRINT_WARNING = (
    "%s: no session id found, so this conversation is tracked by the fingerprint of its opening (system prompt + "
    "first user message); pass session_id= (or a LangGraph thread_id / configurable.session_id, or a LlamaIndex "
    "Memory session_id) so that two users who open alike are never confused"
)


def open_turn(turn: T, session: str | None, messages: list[dict[str, Any]], request: dict[str, Any], agent: str) -> T:
    """Ask the engine who serves the turn. A conversation the engine cannot track (or a
    store failure) leaves ``turn.route`` None: the teacher serves, untracked."""
    try:
        turn.route = turn.engine.route(session, messages, request, agent=agent)
    except ValueError as exc:  # e.g. a conversation that ends with the assistant
        turn.untracked = f"not tracked: {exc}"
        log.info("SOMA does not track this call (%s); the teacher serves it", exc)
    except Exception as exc:
        turn.untracked = f"not tracked: {type(exc).__name__}: {exc}"
        log.warning("SOMA could not route this call (%s); the teacher serves it", exc, exc_info=True)
    if turn.route is not None and turn.surrogate and turn.validates:
        if turn.choice.mode == "auto" and messages and messages[-1].get("role") == "user" and _always_calls(turn):
            turn.choice = tool_choice("required")
        turn.buffered = True  # decide on the whole answer before the caller sees any of it
        turn.route.validate = turn.check
    return turn


def _always_calls(turn: Turn) -> bool:
    """Whether the teacher answered every user message of the session with a tool call.

    The adapter learns the session's answers, and its gate scores them, but neither teaches
    it when to reach for a tool: an adapted SmolLM2 answers an agent's arithmetic question
    with a made-up number in the teacher's style. So in a session whose teacher always
    called a tool first, the surrogate must call one too (tool choice "required" for its
    validation), or the teacher serves the turn."""
    try:
        asked = [
            r
            for r in turn.engine.store.turns(turn.route.key)  # type: ignore[union-attr]
            if r.served_by == "teacher" and r.messages and r.messages[-1].get("role") == "user"
        ]
    except Exception:  # the store is read again when the turn is recorded; a failure here costs nothing
        log.warning("SOMA could not read the session's turns", exc_info=True)
        return False
    return bool(asked) and all(TOOL_CALL in r.answer for r in asked)


def fall_back(turn: Turn, exc: BaseException, *, partial: bool = False) -> None:
    """The surrogate failed: the teacher serves this same turn, and its record says why."""
    reason = str(exc) if isinstance(exc, SurrogateError) else f"{type(exc).__name__}: {exc}"
    turn.partial = partial
    try:
        turn.engine.fallback(turn.route, reason)  # type: ignore[arg-type]
    except Exception:  # pragma: no cover - fallback only sets fields
        log.exception("engine.fallback failed")
        turn.route = None
        turn.untracked = f"fallback: {reason}"


def serve_surrogate(turn: Turn, audit: Audit, build: Callable[[Reply], R]) -> R | None:
    """The surrogate's answer built into the framework's response, or None when the teacher
    serves (the turn is not routed to the surrogate, or the surrogate failed)."""
    if not turn.surrogate:
        return None
    try:
        return build(turn.engine.generate(turn.route, audit=audit, options=turn.options))  # type: ignore[arg-type]
    except Exception as exc:  # the surrogate path never surfaces: the teacher serves
        fall_back(turn, exc)
        return None


async def aserve_surrogate(turn: Turn, audit: Audit, build: Callable[[Reply], R]) -> R | None:
    if not turn.surrogate:
        return None
    try:
        return build(await turn.engine.agenerate(turn.route, audit=audit, options=turn.options))  # type: ignore[arg-type]
    except Exception as exc:
        fall_back(turn, exc)
        return None


Piece = Callable[[str, str], R]  # (text so far, new piece) -> a chunk
Final = Callable[[Reply, str, StopFilter], R]  # (reply, text sent, stop filter) -> the last chunk


def stream_turn(out: SurrogateStream[R], audit: Audit, teacher: Callable[[], Iterator[R]]) -> Iterator[R]:
    """Stream the turn: the surrogate's chunks (held back when the turn is buffered) and its
    final chunk, or, when the surrogate fails, the teacher's stream for the same turn."""
    turn = out.turn
    if turn.surrogate:
        try:
            for item in turn.engine.stream(turn.route, audit=audit, options=turn.options):  # type: ignore[arg-type]
                if (chunk := out.feed(item)) is not None:
                    yield chunk
            yield out.finish()
            return
        except Exception as exc:  # the surrogate path never surfaces: the teacher serves
            fall_back(turn, exc, partial=bool(out.sent))
    yield from teacher()


async def astream_turn(
    out: SurrogateStream[R], audit: Audit, teacher: Callable[[], AsyncIterator[R]]
) -> AsyncIterator[R]:
    turn = out.turn
    if turn.surrogate:
        try:
            async for item in turn.engine.astream(turn.route, audit=audit, options=turn.options):  # type: ignore[arg-type]
                if (chunk := out.feed(item)) is not None:
                    yield chunk
            yield out.finish()
            return
        except Exception as exc:
            fall_back(turn, exc, partial=bool(out.sent))
    async for chunk in teacher():
        yield chunk


class SurrogateStream(Generic[R]):
    """A streamed surrogate turn in the framework's chunks: ``piece(text so far, new text)``
    for each piece that passes the stop filter (none while the turn is buffered), then
    ``final(reply, text sent, stop filter)``. Shared by the sync and async loops."""

    def __init__(self, turn: Turn, piece: Piece[R], final: Final[R], stop: list[str] | None = None) -> None:
        self.turn, self.piece, self.final = turn, piece, final
        self.filt = StopFilter(stop)
        self.sent = ""
        self.reply: Reply | None = None

    def feed(self, item: str | Reply) -> R | None:
        """A chunk for a text piece, or None (held back, cut by a stop sequence, the reply)."""
        if isinstance(item, Reply):
            self.reply = item
            return None
        new = "" if self.turn.buffered else self.filt.feed(item)
        if not new:
            return None
        self.sent += new
        return self.piece(self.sent, new)

    def finish(self) -> R:
        if self.reply is None:
            raise RuntimeError("the surrogate's stream ended without a reply")
        return self.final(self.reply, self.sent, self.filt)


def record_teacher(turn: Turn, text: str, usage: Usage | dict[str, Any] | None) -> dict[str, Any]:
    """Record the teacher's answer to the turn; returns the reply's ``soma`` metadata. Never
    raises: a store failure costs the record, not the user's answer."""
    if turn.route is None:
        return {"served_by": "teacher", "tracked": False, "reason": turn.untracked}
    try:
        soma = dict(turn.engine.record_teacher(turn.route, text, usage).soma)
    except Exception as exc:
        log.warning("SOMA could not record a teacher turn: %s", exc, exc_info=True)
        soma = {
            "served_by": "teacher",
            "session_id": turn.route.key.session_id,
            "namespace": turn.route.key.namespace,
            "error": f"{type(exc).__name__}: {exc}",
        }
    if turn.partial:
        soma["partial_surrogate_output"] = True
    return soma
