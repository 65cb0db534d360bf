"""What the framework integrations share, whatever the framework. Imports no framework.

The LangChain and LlamaIndex integrations call their teacher natively (its streaming, tools,
callbacks) and build their own message types; everything in between is the same and lives
here: the wrapper's engine fields (:class:`SomaWrapper`), the engine cache, and one turn
through the engine: route the turn, try the surrogate (whole or streamed), fall back to the
teacher when the surrogate fails or its output does not validate, and record the teacher's
answer. An integration subclasses :class:`Turn` with its call's own state and passes
callbacks that turn the engine's text pieces and :class:`~soma_engine.types.Reply` into its
framework's chunks and responses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from soma_engine.config import SomaConfig
from soma_engine.engine import SomaEngine
from soma_engine.runtime.surrogate import SurrogateError
from soma_engine.tools import StopFilter, ToolCallError, ToolChoice, function_tools, tool_choice
from soma_engine.types import Reply, Route, Usage

__all__ = [
    "SomaWrapper",
    "SurrogateStream",
    "Turn",
    "aserve_surrogate",
    "astream_turn",
    "describe",
    "fall_back",
    "framework_missing",
    "record_teacher",
    "safe",
    "serve_surrogate",
    "shared_engine",
    "stream_turn",
    "surrogate_name",
    "tool_request",
]

log = logging.getLogger("soma.integrations")

TOOL_CALL = "<tool_call>"  # how a teacher's tool call is recorded (tools.render_tool_calls)


def framework_missing(extra: str, exc: ModuleNotFoundError) -> ImportError:
    """The error of an integration imported without its framework: it names the extra."""
    return ImportError(
        f'{exc}. This SOMA integration needs its framework: pip install "soma-middleware[{extra}]"',
        name=exc.name,
    )


# ----------------------------------------------------------------------------- the engine cache

# An integration given no engine builds one from its arguments on first use; models built with
# the same arguments (LangChain's ``SomaChatModel`` and LlamaIndex's ``SomaLLM`` alike) share
# one engine: its store connection, its surrogate's weights and its background jobs.
_ENGINES: dict[tuple[Any, ...], SomaEngine] = {}
_ENGINES_LOCK = threading.Lock()


def shared_engine(
    *,
    surrogate: Any = None,
    encoder: Any = None,
    store: Any = None,
    namespace: str = "default",
    config: SomaConfig | None = None,
) -> SomaEngine:
    """The open engine built from these arguments, built now if there is none.

    Strings and paths compare by value, other objects (a ``SessionStore``, an ``Encoder``)
    by identity. A closed engine is replaced."""
    key = (
        ident(surrogate),
        ident(encoder),
        ident(store),
        namespace,
        config.model_dump_json() if config is not None else None,
    )
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None or engine.closed:
            engine = SomaEngine(config=config, surrogate=surrogate, encoder=encoder, store=store, namespace=namespace)
            _ENGINES[key] = engine
    return engine


def ident(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, Path)) else ("id", id(value))


def surrogate_name(engine: SomaEngine) -> str:
    """A short name of the engine's surrogate for response metadata (its folder's name)."""
    path = engine.surrogate.configured_path
    return Path(str(path)).name if path else "soma-surrogate"


def describe(value: Any) -> str | None:
    """A model argument as text for identifying params (a path, an id or a class name)."""
    if value is None or isinstance(value, str):
        return value
    path = getattr(value, "configured_path", None)
    return str(path) if path else type(value).__name__


def safe(fn: Callable[[], Any], default: Any) -> Any:
    """``fn()``, or ``default`` when it raises (reading optional attributes of a teacher)."""
    try:
        return fn()
    except Exception:
        return default


# ----------------------------------------------------------------------------- the wrapper's fields

FINGERPRINT_WARNING = (
    "%s: no session id found, so this conversation is tracked by the fingerprint of its opening (system prompt + "
    "first user message); pass session_id= (or a LangGraph thread_id / configurable.session_id, or a LlamaIndex "
    "Memory session_id) so that two users who open alike are never confused"
)

T = TypeVar("T", bound="Turn")


class SomaWrapper(BaseModel):
    """The fields of a framework model that wraps a teacher (``SomaChatModel``, ``SomaLLM``):
    the engine it serves with, or the arguments it builds one from, and the session it
    serves. Mixed into the framework's own pydantic model class."""

    engine: Any = Field(default=None, exclude=True, description="A shared SomaEngine; None: built lazily.")
    """A shared :class:`SomaEngine`; None builds one lazily from the arguments below."""
    surrogate: Any = Field(default=None, exclude=True)
    encoder: Any = Field(default=None, exclude=True)
    store: Any = Field(default=None, exclude=True)
    namespace: str = "default"
    config: SomaConfig | None = Field(default=None, exclude=True)
    session_id: str | None = None
    agent: str = ""
    buffer_stream: bool = False
    """Hold the surrogate's whole answer before streaming it (always on when the answer must
    validate: tools, structured output), so even a failure after the first token is invisible."""

    _engine: SomaEngine | None = PrivateAttr(default=None)
    _warned_fingerprint: bool = PrivateAttr(default=False)

    @field_validator("config", mode="before")
    @classmethod
    def _coerce_config(cls, value: Any) -> Any:
        return SomaConfig(**value) if isinstance(value, dict) else value

    @field_validator("engine")
    @classmethod
    def _check_engine(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, SomaEngine):
            raise TypeError(f"engine must be a SomaEngine, not {type(value).__name__}")
        return value

    def get_engine(self) -> SomaEngine:
        """The engine serving this model: its ``engine`` field, else the one it built on first
        use (shared by models with the same ``surrogate``, ``encoder``, ``store``,
        ``namespace`` and ``config``; ``model.engine`` is then that engine too)."""
        if self.engine is not None and self.engine is not self._engine:
            return self.engine
        engine = self._engine
        if engine is None or engine.closed:
            engine = shared_engine(
                surrogate=self.surrogate,
                encoder=self.encoder,
                store=self.store,
                namespace=self.namespace,
                config=self.config,
            )
        self._engine = self.engine = engine
        return engine

    def _open_turn(
        self, turn: T, session: str | None, messages: list[dict[str, Any]], request: dict[str, Any], agent: str
    ) -> T:
        """:func:`open_turn`, warning once per model when the session is only a fingerprint."""
        open_turn(turn, session, messages, request, agent)
        if turn.route is not None and turn.route.fingerprinted and not self._warned_fingerprint:
            self._warned_fingerprint = True
            log.warning(FINGERPRINT_WARNING, type(self).__name__)
        return turn


# ----------------------------------------------------------------------------- one turn


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


R = TypeVar("R")
Audit = Callable[[Any], Any]


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
