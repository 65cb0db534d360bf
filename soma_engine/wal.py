"""Per-thread SQLite connections in WAL mode, shared by the session store and the adapter
registry: readers never block the writer, and each thread keeps its own connection."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


def wal_connection(local: threading.local, path: Path) -> sqlite3.Connection:
    """This thread's connection to ``path`` (opened on first use, kept in ``local``).
    Autocommit mode: callers open their own ``BEGIN IMMEDIATE`` transactions."""
    db = getattr(local, "db", None)
    if db is None:
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA secure_delete=ON")  # deleted conversations are zeroed, not left in free pages
        local.db = db
    return db
