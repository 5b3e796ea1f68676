"""A content-addressed response cache in its own SQLite file.

litellm's cache has known defects (a crash on the first hit, missed back-to-back
writes), so convsim keeps its own: the key is a hash of everything that determines the
answer (model, messages, tools, response format, sampling settings), never the API key.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

DEFAULT_CACHE_PATH = Path(".convsim") / "cache.db"
"""Where cached model responses live unless configured otherwise."""


class ResponseCache:
    """Model responses by request hash."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_CACHE_PATH) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)"
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> str | None:
        """The cached response JSON for ``key``, or None."""
        row = self.db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return str(row[0])

    def put(self, key: str, response: str) -> None:
        """Store a response."""
        self.db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, response))

    def close(self) -> None:
        """Close the database."""
        self.db.close()
