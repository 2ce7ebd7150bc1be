"""SQLite as an emulated service's system of record: one connection per store, WAL, and
serialised write transactions. Committed writes survive a kill -9 of the emulator (WAL with
synchronous=NORMAL loses at most the last transactions on power loss, never on a crash).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cfai._files import private_dir, private_file

__all__ = ["Checkpoints", "SqliteStore"]

log = logging.getLogger("cfai.local.emulator")


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


class Checkpoints:
    """PASSIVE checkpoints of a store's WAL in a thread, on a connection of their own, once
    `CHECKPOINT_BYTES` have been written since the last one began (the store tells
    `wrote`, under its lock). A passive checkpoint never blocks the writer
    (https://sqlite.org/c3ref/wal_checkpoint_v2.html), and SQLite's C code runs without
    the GIL, so a bulk write goes on meanwhile."""

    CHECKPOINT_BYTES = 64 << 20

    def __init__(self, path: Path) -> None:
        self._path = path
        self._written = 0
        self._thread: threading.Thread | None = None

    def wrote(self, nbytes: int) -> None:
        self._written += nbytes
        if self._written < self.CHECKPOINT_BYTES or (self._thread and self._thread.is_alive()):
            return
        self._written = 0
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint")
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            # The next one, or SQLite's own at the backstop, copies what this one did not.
            log.warning("WAL checkpoint of %s failed", self._path, exc_info=True)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
