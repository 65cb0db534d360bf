"""Session stores: the ``SessionStore`` protocol, ``SQLiteStore`` (embedded default) and
``RedisStore`` (shared by app replicas and ``soma worker`` processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..adapters import AdapterStore
from .base import COUNTERS, LockTimeout, SessionGone, SessionState, SessionStore, StoreError
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "COUNTERS",
    "LockTimeout",
    "RedisStore",
    "SQLiteStore",
    "SessionGone",
    "SessionState",
    "SessionStore",
    "StoreError",
    "open_store",
]

ADAPTERS_ENV = "SOMA_ADAPTERS_URL"


def __getattr__(name: str) -> Any:
    if name == "RedisStore":  # imported on use: redis-py is only needed for redis:// stores
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(name)


def open_store(spec: str | SessionStore | None, home: Path) -> tuple[SessionStore, AdapterStore]:
    """``None`` -> SQLite file under ``home``; ``"sqlite:///path"``; ``"redis://host:port/db"``
    (also ``rediss://``, ``unix://``); or a ready store.

    Adapters live beside the SQLite file (``soma-adapters/``), or under ``home`` for a
    store object that does not bring an ``adapters`` attribute of its own. A Redis store's
    adapters live under a shared base: the URL's ``adapters=`` parameter, else
    ``$SOMA_ADAPTERS_URL``, else ``home/adapters``; a path or any fsspec URL
    (``s3://bucket/soma-adapters``), see :mod:`soma_engine.adapters.remote`. Other Redis URL
    parameters: ``prefix=`` (key namespace, default ``soma``), ``lease=`` (lock lease, s).
    """
    if spec is None:
        adapters = AdapterStore(home / "adapters")
        return SQLiteStore(home / "soma.db", adapters=adapters), adapters
    if isinstance(spec, str):
        if spec.startswith("sqlite:///"):
            path = Path(spec[len("sqlite:///") :]).expanduser()
            adapters = AdapterStore(path.parent / "soma-adapters")
            return SQLiteStore(path, adapters=adapters), adapters
        if spec.startswith(("redis://", "rediss://", "unix://")):
            from ..adapters.remote import open_adapter_store
            from .redis import RedisStore, split_url

            _, params = split_url(spec)
            adapters = open_adapter_store(params.get("adapters") or os.environ.get(ADAPTERS_ENV), home)
            return RedisStore(spec, adapters=adapters), adapters
        raise ValueError(
            f"unknown store {spec!r}: use None, 'sqlite:///path/to/file.db', 'redis://host:port/db' or a SessionStore"
        )
    if isinstance(spec, SessionStore):
        adapters = getattr(spec, "adapters", None) or AdapterStore(home / "adapters")
        return spec, adapters
    raise TypeError(
        f"store must be None, a 'sqlite:///…' or 'redis://…' URL or a SessionStore, not {type(spec).__name__}"
    )
