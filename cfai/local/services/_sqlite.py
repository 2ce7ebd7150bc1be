"""SQLite as an emulated service's system of record: one connection per store, WAL, and
serialised write transactions. Committed writes survive a kill -9 of the emulator (WAL with
synchronous=NORMAL loses at most the last transactions on power loss, never on a crash).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SqliteStore"]


class SqliteStore:
    """Base of the services' stores: `self._db` (autocommit; rows as `sqlite3.Row` when
    asked), `self._lock`, and `_tx()` for an immediate write transaction."""

    def __init__(
        self, path: Path, schema: str, *, rows: bool = False, page_size: int | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if rows:
            self._db.row_factory = sqlite3.Row
        if (
            page_size is not None
        ):  # only a new file takes it (https://sqlite.org/pragma.html#pragma_page_size)
            self._db.execute(f"PRAGMA page_size={int(page_size)}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
