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

from cfai._files import private_dir, private_file

__all__ = ["SqliteStore"]


class SqliteStore:
    """Base of the services' stores: `self._db` (autocommit; rows as `sqlite3.Row` when
    asked), `self._lock`, and `_tx()` for an immediate write transaction."""

    def __init__(
        self, path: Path, schema: str, *, rows: bool = False, page_size: int | None = None
    ) -> None:
        private_dir(path.parent)
        # Prompts, answers and documents: the owner's only. SQLite makes the -wal and -shm
        # files with the database's own mode (https://www.sqlite.org/tempfiles.html); older
        # ones are narrowed here too.
        private_file(path)
        for extra in ("-wal", "-shm"):
            companion = path.with_name(path.name + extra)
            if companion.exists():
                companion.chmod(0o600)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if rows:
            self._db.row_factory = sqlite3.Row
        if page_size is not None:
            # only a new file takes it (https://sqlite.org/pragma.html#pragma_page_size)
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
