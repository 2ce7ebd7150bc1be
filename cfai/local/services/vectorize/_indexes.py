"""The indexes of the emulated Vectorize store: their rows in SQLite and, once used, each
index in memory (`_snapshot`), saved beside SQLite on a clean close and mapped from that file
on the next load while SQLite still vouches for it (`_sidecar`).

`IndexStore` opens the file, creates, lists and deletes indexes, keeps the loaded snapshots
and saves them on close; `state.VectorizeStore` adds the vector writes and reads on top.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cfai.local.services._sqlite import Checkpoints, SqliteStore
from cfai.local.services.frontdoor import ApiError
from cfai.local.services.vectorize import _errors as E
from cfai.local.services.vectorize import _sidecar
from cfai.local.services.vectorize._apply import iso
from cfai.local.services.vectorize._snapshot import Snapshot
from cfai.local.services.vectorize._storage import SCHEMA, drop_index, migrate

_log = logging.getLogger(__name__)


class IndexStore(SqliteStore):
    """The Vectorize indexes of one emulator in one SQLite file, and those in memory."""

    def __init__(
        self,
        path: Path,
        *,
        visibility_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.visibility_delay = visibility_delay
        self.clock = clock
        # 16 KiB pages for a new file: values are written as ~1 MiB blobs (fewer pages per
        # blob, and the WAL's default 1000-page checkpoint interval becomes ~16 MiB).
        super().__init__(path, SCHEMA + _sidecar.SCHEMA, page_size=16384)
        # The WAL is checkpointed by `Checkpoints` in a thread of its own, every 64 MiB of
        # writes, while this one goes on (SQLite's C code runs without the GIL); the commit
        # that crosses the mark would otherwise copy and fsync 64 MiB itself. Durability is
        # the commit's, not the checkpoint's (https://sqlite.org/wal.html#ckpt). The
        # automatic checkpoint stays as a backstop, at 512 MiB.
        self._db.execute("PRAGMA wal_autocheckpoint=32768")
        self._checkpoints = Checkpoints(path)
        with self._tx() as db:
            migrate(db)
        self._cache: dict[str, Snapshot] = {}
        self._closed = False
        # Where a clean close saves each loaded index for a fast restart (see `_sidecar`).
        self._files = _sidecar.directory(path) if _sidecar.supported() else None

    def preload(self) -> threading.Thread:
        """Load every index into memory in a background thread (the emulator does this at
        start, so a first query after a restart does not wait for all of it). Calls that
        need an index meanwhile wait on the store's lock, as they would for a lazy load."""

        def run() -> None:
            with self._lock:
                if self._closed:
                    return
                names = [i["name"] for i in self.list_indexes()]
            for name in names:
                with self._lock:
                    if self._closed:
                        return
                    try:
                        self._snapshot(name)
                    except ApiError:  # deleted meanwhile
                        continue

        thread = threading.Thread(target=run, name="vectorize-preload", daemon=True)
        thread.start()
        return thread

    # -- indexes -------------------------------------------------------------------------

    def create_index(
        self, name: str, dimensions: int, metric: str, description: str = ""
    ) -> dict[str, Any]:
        """Create an index; raises Cloudflare's error for a bad name/config or a duplicate."""
        if not (isinstance(dimensions, int) and not isinstance(dimensions, bool)) or not (
            E.MIN_DIMENSIONS <= dimensions <= E.MAX_DIMENSIONS
        ):
            raise E.invalid_config(
                f"Dimensions must be in range: [{E.MIN_DIMENSIONS}, {E.MAX_DIMENSIONS}]"
            )
        if metric not in E.METRICS:
            raise E.invalid_config(f"Metric must be one of: {', '.join(E.METRICS)}")
        E.check_name(name)
        now = iso(self.clock())
        with self._tx() as db:
            if db.execute("SELECT 1 FROM indexes WHERE name=?", (name,)).fetchone():
                raise E.duplicate_name(name)
            db.execute(
                "INSERT INTO indexes (name, description, dimensions, metric, created_on,"
                " modified_on) VALUES (?,?,?,?,?,?)",
                (name, description, dimensions, metric, now, now),
            )
        return self.get_index(name)

    def list_indexes(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT name FROM indexes ORDER BY created_on, name")
            return [self.get_index(name) for (name,) in rows.fetchall()]

    def get_index(self, name: str) -> dict[str, Any]:
        """``{name, description, config: {dimensions, metric}, created_on, modified_on}``."""
        row = self._index_row(name)
        return {
            "name": row[0],
            "description": row[1],
            "config": {"dimensions": row[2], "metric": row[3]},
            "created_on": row[4],
            "modified_on": row[5],
        }

    def delete_index(self, name: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM indexes WHERE name=?", (name,)).rowcount == 0:
                raise E.not_found(name)
            drop_index(db, name)
            if self._files is not None:
                _sidecar.forget(db, self._files, name)
        dropped = self._cache.pop(name, None)
        if dropped is not None:
            _sidecar.release(dropped)

    def _index_row(self, name: str) -> tuple[Any, ...]:
        with self._lock:
            row = self._db.execute("SELECT * FROM indexes WHERE name=?", (name,)).fetchone()
        if row is None:
            raise E.not_found(name)
        return tuple(row)

    # -- in memory -----------------------------------------------------------------------

    @contextmanager
    def _writing(self, name: str) -> Iterator[tuple[sqlite3.Connection, Snapshot]]:
        """A write transaction with the index's snapshot; a transaction that does not
        commit drops the snapshot (it reloads from SQLite when next needed)."""
        with self._lock:
            try:
                with self._tx() as db:
                    yield db, self._snapshot(name)
            except BaseException:
                dropped = self._cache.pop(name, None)
                if dropped is not None:
                    _sidecar.release(dropped)
                raise

    def _snapshot(self, name: str) -> Snapshot:
        """The index in memory: on first use, mapped from the file a clean close saved when
        SQLite still vouches for it, else loaded from SQLite."""
        with self._lock:
            snap = self._cache.get(name)
            if snap is None:
                dims = self._index_row(name)[2]
                snap = self._restore(name, dims) or Snapshot.load(self._db, name, dims)
                self._cache[name] = snap
            return snap

    def _restore(self, name: str, dims: int) -> Snapshot | None:
        """The saved snapshot of `name`, its stamp claimed (in the caller's transaction if
        there is one: a rollback leaves the file untouched, as the mapping is private)."""
        if self._files is None:
            return None
        try:
            if self._db.in_transaction:
                found = _sidecar.claim(self._db, name)
            else:
                with self._tx() as db:
                    found = _sidecar.claim(db, name)
        except sqlite3.OperationalError:  # another process holds the write lock: read SQLite
            return None
        return None if found is None else _sidecar.open_snapshot(self._files, name, found, dims)

    def _save(self) -> None:
        """Save every loaded index for the next start; one that fails keeps no stamp, and
        the next start loads it from SQLite."""
        if self._files is None:
            return
        for name, snap in self._cache.items():
            try:
                file, stamp = _sidecar.save(self._files, name, snap)
                with self._tx() as db:
                    if db.execute("SELECT 1 FROM indexes WHERE name=?", (name,)).fetchone():
                        _sidecar.record(db, name, file, stamp)
                _sidecar.prune(self._files, name, file)
            except (OSError, sqlite3.Error, TypeError, ValueError) as err:
                _log.warning("vectorize: index %s not saved for a fast restart: %s", name, err)
            finally:
                _sidecar.release(snap)

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        with self._tx() as db:
            for table in ("indexes", "vectors", "vector_blocks", "metadata_indexes", "mutations"):
                db.execute(f"DELETE FROM {table}")
            if self._files is not None:
                _sidecar.forget(db, self._files, None)
        for snap in self._cache.values():
            _sidecar.release(snap)
        self._cache.clear()

    def close(self) -> None:
        """Save the loaded indexes for a fast restart (`_sidecar`), then close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._save()
            self._checkpoints.close()
            self._db.close()
            self._cache.clear()
