"""What the framework integrations share, whatever the framework.

An integration given no engine builds one from its arguments on first use; models built
with the same arguments (LangChain's ``SomaChatModel`` and LlamaIndex's ``SomaLLM`` alike)
share one :class:`SomaEngine`, so they share its store connection, its surrogate's weights
and its background jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import SomaConfig
from .engine import SomaEngine

__all__ = ["describe", "ident", "safe", "shared_engine", "surrogate_name"]

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


def surrogate_name(engine: SomaEngine) -> str:
    """A short name of the engine's surrogate for response metadata (its folder's name)."""
    path = engine.surrogate.configured_path
    return Path(str(path)).name if path else "soma-surrogate"


def ident(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, Path)) else ("id", id(value))


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


def coerce_config(value: Any) -> Any:
    """A wrapper's ``config`` field: a dict becomes a :class:`SomaConfig`."""
    from .config import SomaConfig

    return SomaConfig(**value) if isinstance(value, dict) else value


def check_engine(value: Any) -> Any:
    """A wrapper's ``engine`` field: None or a :class:`SomaEngine`."""
    if value is not None and not isinstance(value, SomaEngine):
        raise TypeError(f"engine must be a SomaEngine, not {type(value).__name__}")
    return value
