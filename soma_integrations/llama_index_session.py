"""The session of a LlamaIndex LLM call, found by walking LlamaIndex's instrumentation spans.

LlamaIndex passes no session to an LLM call; its spans are the only link from the call back
to the chat engine or agent that made it, and to the memory (``Memory.session_id``) that
names the conversation. :func:`session_from_context` and :func:`internal_prompt` read them
for :class:`~soma_integrations.llama_index.SomaLLM`.
"""

from __future__ import annotations

from ._core import framework_missing

try:
    import llama_index.core  # noqa: F401  (checked first: every import below needs it)
except ModuleNotFoundError as exc:
    raise framework_missing("llama-index", exc) from exc

import logging
import threading
from collections import OrderedDict
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.chat_engine.types import BaseChatEngine
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import active_instrument_tags
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.llms.llm import LLM
from llama_index.core.tools.types import BaseTool

__all__ = [
    "LLAMA_INDEX_SUPPORTED",
    "install_session_spans",
    "internal_prompt",
    "session_from_context",
    "structured_call",
]

log = logging.getLogger("soma.llama_index")

DEFAULT_CHAT_STORE_KEY = "chat_history"  # ChatMemoryBuffer's default key: shared by every buffer, not an identity


class _SessionSpans(BaseSpanHandler[Any]):
    """Remembers, for recent instrumentation spans, the parent span and the session id of
    the memory the span works on: a chat engine's ``_memory`` (the engine is the span's
    instance), a ``memory`` argument, or an agent run's start event (``agent.run(...,
    memory=...)``). A tool's span is a boundary: LLM calls made inside a tool (a query engine
    used as an agent's tool) are not turns of the agent's conversation. A prompt that a chat
    engine sends through ``LLM.predict`` (and its stream/async twins) itself is marked too:
    ``CondenseQuestionChatEngine`` condenses the question that way, and that call is not a
    turn (the query engine's answer below the same chat engine is). Entries outlive their
    span (a chat engine's streamed answer is generated after its ``stream_chat`` span has
    returned, in a thread or task that inherited the span as current), in a bounded LRU."""

    # span id -> (parent span id, session id or a marker, the span is a chat engine's, a structured call's)
    _spans: OrderedDict[str, tuple[str | None, Any, bool, bool]] = PrivateAttr(default_factory=OrderedDict)
    _lk: Any = PrivateAttr(default_factory=threading.Lock)
    _limit: int = PrivateAttr(default=20000)

    @classmethod
    def class_name(cls) -> str:
        return "SomaSessionSpans"

    def span_enter(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        session = _TOOL if isinstance(instance, BaseTool) else _memory_session(instance, bound_args)
        with self._lk:
            parent = self._spans.get(parent_id) if parent_id else None
            if parent is not None and parent[2] and isinstance(instance, LLM) and _method(id_) in _PROMPT_METHODS:
                session = _ENGINE_PROMPT
            structured = isinstance(instance, LLM) and _method(id_) in _STRUCTURED_METHODS
            self._spans[id_] = (parent_id, session, isinstance(instance, BaseChatEngine), structured)
            while len(self._spans) > self._limit:
                self._spans.popitem(last=False)

    def span_exit(self, *args: Any, **kwargs: Any) -> None:
        return None

    def span_drop(self, *args: Any, **kwargs: Any) -> None:
        return None

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def session(self, span_id: str | None) -> str | None:
        found = self._walk(span_id)
        return found if isinstance(found, str) else None

    def engine_prompt(self, span_id: str | None) -> bool:
        return self._walk(span_id) is _ENGINE_PROMPT

    def structured(self, span_id: str | None) -> bool:
        """Whether the span is inside a structured-output call (``structured_predict`` and
        its twins, which ``as_structured_llm`` calls too)."""
        seen = 0
        with self._lk:
            while span_id and seen < 256:
                entry = self._spans.get(span_id)
                if entry is None:
                    return False
                if entry[3]:
                    return True
                span_id, seen = entry[0], seen + 1
        return False

    def _walk(self, span_id: str | None) -> Any:
        """The nearest session id or marker from the span up to the root."""
        seen = 0
        with self._lk:
            while span_id and seen < 256:
                entry = self._spans.get(span_id)
                if entry is None:
                    return None
                parent, session = entry[0], entry[1]
                if session:
                    return session
                span_id, seen = parent, seen + 1
        return None


# The span walk reads LlamaIndex internals: span ids of the form ``Class.method-<uuid4>`` and
# chat engines' private ``_memory``. tests/unit/test_llama_index.py pins them for this range.
LLAMA_INDEX_SUPPORTED = (">=0.12", "<0.15")


def _method(span_id: str) -> str:
    """The method name in a span id (``Class.method-<uuid4>``)."""
    return span_id[:-37].rsplit(".", 1)[-1]


_TOOL: Any = object()  # marks a tool's span: the walk up to a memory stops there
_ENGINE_PROMPT: Any = object()  # marks an LLM prompt call made by a chat engine itself
_PROMPT_METHODS = frozenset({"predict", "apredict", "stream", "astream"})
_STRUCTURED_METHODS = frozenset(
    {"structured_predict", "astructured_predict", "stream_structured_predict", "astream_structured_predict"}
)
_SPANS = _SessionSpans()
_SPANS_INSTALLED = False
_SPANS_LOCK = threading.Lock()


def install_session_spans() -> None:
    """Register the span handler with LlamaIndex's dispatcher (once, on first use)."""
    global _SPANS_INSTALLED
    if _SPANS_INSTALLED:
        return
    with _SPANS_LOCK:
        if not _SPANS_INSTALLED:
            if not _supported_llama_index():
                log.warning(
                    "llama-index-core %s is outside the range SOMA's session finder is tested on (%s): sessions "
                    "from chat engines' and agents' memories may not be found; pass session_id= to be sure",
                    _llama_index_version(),
                    ", ".join(LLAMA_INDEX_SUPPORTED),
                )
            get_dispatcher().add_span_handler(_SPANS)
            _SPANS_INSTALLED = True


def _llama_index_version() -> str:
    from importlib.metadata import version

    return version("llama-index-core")


def _supported_llama_index() -> bool:
    from packaging.specifiers import SpecifierSet

    return _llama_index_version() in SpecifierSet(",".join(LLAMA_INDEX_SUPPORTED))


def session_from_context() -> str | None:
    """The session of the current LlamaIndex call, when the context names one: the
    instrumentation tag ``session_id``, else the session id of the memory that the enclosing
    chat engine or agent run works on (``Memory.session_id``; a ``ChatMemoryBuffer``'s
    ``chat_store_key`` unless it is the default one, which every buffer shares), unless the
    call is made inside a tool the agent called. LlamaIndex
    passes no session to an LLM call; its instrumentation spans are the only link from the
    call back to the chat engine or agent that made it."""
    tags = active_instrument_tags.get() or {}
    value = tags.get("session_id")
    if value not in (None, ""):
        return str(value)
    install_session_spans()
    return _SPANS.session(active_span_id.get())


def internal_prompt() -> bool:
    """Whether the current LLM call is a chat engine's own prompt (``LLM.predict`` called by
    the chat engine, as ``CondenseQuestionChatEngine`` condenses the question), not a turn."""
    install_session_spans()
    return _SPANS.engine_prompt(active_span_id.get())


def _memory_session(instance: Any, bound_args: Any) -> str | None:
    try:
        memory = getattr(instance, "_memory", None) if instance is not None else None
        arguments = getattr(bound_args, "arguments", None) or {}
        if memory is None:
            memory = arguments.get("memory")
        if memory is None and arguments.get("start_event") is not None:
            memory = getattr(arguments["start_event"], "memory", None)
        if memory is None:
            return None
        session = getattr(memory, "session_id", None)
        if isinstance(session, str) and session:
            return session
        key = getattr(memory, "chat_store_key", None)
        if isinstance(key, str) and key and key != DEFAULT_CHAT_STORE_KEY:
            return key
    except Exception:  # instrumentation must never break the app
        return None
    return None


def structured_call() -> bool:
    """Whether the current LLM call is made inside a structured-output call
    (``structured_predict`` and its twins, which ``as_structured_llm`` calls too)."""
    install_session_spans()
    return _SPANS.structured(active_span_id.get())
