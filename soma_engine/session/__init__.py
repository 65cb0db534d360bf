"""Session stores: the ``SessionStore`` protocol, ``SQLiteStore`` (embedded default)."""

from __future__ import annotations

from pathlib import Path

from ..adapters import AdapterStore
from .base import COUNTERS, LockTimeout, SessionState, SessionStore, StoreError
from .sqlite import SQLiteStore

__all__ = [
    "COUNTERS",
    "LockTimeout",
    "SQLiteStore",
    "SessionState",
    "SessionStore",
    "StoreError",
    "open_store",
]


def open_store(spec: str | SessionStore | None, home: Path) -> tuple[SessionStore, AdapterStore]:
    """``None`` -> SQLite file under ``home``; ``"sqlite:///path"``; or a ready store.

    Adapters live beside the SQLite file (``soma-adapters/``), or under ``home`` for a
    store object that does not bring an ``adapters`` attribute of its own.
    """
    if spec is None:
        adapters = AdapterStore(home / "adapters")
        return SQLiteStore(home / "soma.db", adapters=adapters), adapters
    if isinstance(spec, str):
        if spec.startswith("sqlite:///"):
            path = Path(spec[len("sqlite:///") :]).expanduser()
            adapters = AdapterStore(path.parent / "soma-adapters")
            return SQLiteStore(path, adapters=adapters), adapters
        if spec.startswith(("redis://", "rediss://")):
            raise ValueError("redis:// stores are not available in this version; use sqlite:///path")
        raise ValueError(f"unknown store {spec!r}: use None, 'sqlite:///path/to/file.db' or a SessionStore")
    if isinstance(spec, SessionStore):
        adapters = getattr(spec, "adapters", None) or AdapterStore(home / "adapters")
        return spec, adapters
    raise TypeError(f"store must be None, a 'sqlite:///…' URL or a SessionStore, not {type(spec).__name__}")
