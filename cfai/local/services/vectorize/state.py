"""The emulated Vectorize store: SQLite as the system of record, exact search in numpy.

Writes (insert, upsert, deleteByIds) are *mutations*: each gets an id and a row in
``mutations`` at once, committed before the id is returned (WAL + ``synchronous=NORMAL``
survives kill -9 of the process). With ``visibility_delay`` > 0 a mutation stays pending,
its payload stored with it, until ``created_at + delay``; every read first applies the due
mutations in order, so queries, getByIds, list and info see a write only after the delay,
like Cloudflare's eventual consistency. ``processedUpToMutation`` is the last applied one.

Insert keeps an existing id (first wins, judged when the mutation applies); upsert replaces
the whole vector. Values that a vector is filterable on are computed when it is written,
from the metadata indexes that exist then (see `_filters`).

Example::

    store = VectorizeStore(Path(".cfai/local/vectorize.sqlite3"))
    store.create_index("docs", dimensions=384, metric="cosine")
    store.write("docs", [VectorIn("a", [0.1] * 384)], upsert=True)
    store.query("docs", parse_query({"vector": [0.1] * 384, "topK": 3}))
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cfai.local.services._sqlite import SqliteStore
from cfai.local.services.frontdoor import ApiError
from cfai.local.services.vectorize import _errors as E
from cfai.local.services.vectorize._apply import apply_mutations, iso
from cfai.local.services.vectorize._filters import indexed_values, key_problem
from cfai.local.services.vectorize._search import Snapshot, search
from cfai.local.services.vectorize._wire import QueryIn, VectorIn

__all__ = ["VectorizeStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS indexes (
  name TEXT PRIMARY KEY, description TEXT NOT NULL, dimensions INTEGER NOT NULL,
  metric TEXT NOT NULL, created_on TEXT NOT NULL, modified_on TEXT NOT NULL,
  processed_mutation TEXT, processed_at TEXT);
CREATE TABLE IF NOT EXISTS vectors (
  index_name TEXT NOT NULL, id TEXT NOT NULL, namespace TEXT, vals BLOB NOT NULL,
  metadata TEXT, indexed TEXT NOT NULL, PRIMARY KEY (index_name, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metadata_indexes (
  index_name TEXT NOT NULL, property_name TEXT NOT NULL, index_type TEXT NOT NULL,
  PRIMARY KEY (index_name, property_name));
CREATE TABLE IF NOT EXISTS mutations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, index_name TEXT NOT NULL,
  kind TEXT NOT NULL, created_at REAL NOT NULL, applied INTEGER NOT NULL DEFAULT 0,
  payload TEXT, vals BLOB);
CREATE INDEX IF NOT EXISTS mutations_pending ON mutations (index_name, applied, seq);
"""


class VectorizeStore(SqliteStore):
    """All Vectorize indexes of one emulator, persisted in one SQLite file."""

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
        super().__init__(path, _SCHEMA)
        self._cache: dict[str, Snapshot] = {}

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
            for table in ("vectors", "metadata_indexes", "mutations"):
                db.execute(f"DELETE FROM {table} WHERE index_name=?", (name,))
        self._cache.pop(name, None)

    def info(self, name: str) -> dict[str, Any]:
        """What ``describe()`` / ``GET /info`` answer."""
        self._apply_due(name)
        row = self._index_row(name)
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM vectors WHERE index_name=?", (name,)
            ).fetchone()
        return {
            "dimensions": row[2],
            "vectorCount": count,
            "processedUpToDatetime": row[7],
            "processedUpToMutation": row[6],
        }

    def _index_row(self, name: str) -> tuple[Any, ...]:
        with self._lock:
            row = self._db.execute("SELECT * FROM indexes WHERE name=?", (name,)).fetchone()
        if row is None:
            raise E.not_found(name)
        return tuple(row)

    # -- metadata indexes ----------------------------------------------------------------

    def metadata_indexes(self, name: str) -> dict[str, str]:
        """propertyName -> indexType of an index."""
        self._index_row(name)
        with self._lock:
            rows = self._db.execute(
                "SELECT property_name, index_type FROM metadata_indexes WHERE index_name=?"
                " ORDER BY property_name",
                (name,),
            ).fetchall()
        return dict(rows)

    def create_metadata_index(self, name: str, property_name: str, index_type: str) -> str:
        if index_type not in E.METADATA_INDEX_TYPES:
            raise ApiError(
                400, 3009, f"invalid indexType {index_type!r}; expected string, number or boolean"
            )
        problem = key_problem(property_name, dotted=True) if isinstance(property_name, str) else ""
        if problem is not None:
            raise ApiError(400, 3009, f"invalid propertyName: {problem or 'not a string'}")
        existing = self.metadata_indexes(name)
        if property_name in existing:
            raise ApiError(
                409, 3006, f"A metadata index for property {property_name} already exists"
            )
        if len(existing) >= E.MAX_METADATA_INDEXES:
            raise ApiError(400, 3008, f"too many metadata indexes; max is {E.MAX_METADATA_INDEXES}")
        with self._tx() as db:
            db.execute(
                "INSERT INTO metadata_indexes VALUES (?,?,?)", (name, property_name, index_type)
            )
            return self._record(db, name, "metadata_index_create", None, None)

    def delete_metadata_index(self, name: str, property_name: str) -> str:
        with self._tx() as db:
            self._index_row(name)
            gone = db.execute(
                "DELETE FROM metadata_indexes WHERE index_name=? AND property_name=?",
                (name, property_name),
            ).rowcount
            if not gone:
                raise ApiError(404, 3007, f"no metadata index for property {property_name!r}")
            return self._record(db, name, "metadata_index_delete", None, None)

    # -- mutations -----------------------------------------------------------------------

    def write(self, name: str, vectors: Sequence[VectorIn], *, upsert: bool) -> str:
        """Insert (first wins) or upsert (replace) a batch; returns the mutation id."""
        dims = self._index_row(name)[2]
        for vec in vectors:
            if len(vec.values) != dims:
                raise ApiError(
                    400,
                    40012,
                    f'invalid vector for id="{vec.id}", expected {dims} dimensions, '
                    f"and got {len(vec.values)} dimensions",
                )
        mindex = self.metadata_indexes(name)
        # The values travel in the blob; the record keeps the rest (no per-vector copies).
        records = [
            {
                "id": v.id,
                "values": None,
                "namespace": v.namespace,
                "metadata": v.metadata,
                "indexed": indexed_values(v.metadata, mindex),
            }
            for v in vectors
        ]
        blob = np.asarray([v.values for v in vectors], dtype=np.float32).reshape(-1, dims)
        kind = "upsert" if upsert else "insert"
        with self._tx() as db:
            return self._record(db, name, kind, records, blob.tobytes())

    def delete_by_ids(self, name: str, ids: Sequence[str]) -> str:
        self._index_row(name)
        if len(ids) > E.MAX_DELETE_IDS:
            raise E.too_many_ids(E.MAX_DELETE_IDS, len(ids))
        with self._tx() as db:
            return self._record(db, name, "delete", [{"id": i} for i in ids], None)

    def _record(
        self,
        db: sqlite3.Connection,
        name: str,
        kind: str,
        records: list[dict[str, Any]] | None,
        vals: bytes | None,
    ) -> str:
        mid = str(uuid.uuid4())
        now = self.clock()
        payload = json.dumps(records) if records is not None else None
        db.execute(
            "INSERT INTO mutations (id, index_name, kind, created_at, payload, vals)"
            " VALUES (?,?,?,?,?,?)",
            (mid, name, kind, now, payload, vals),
        )
        if self.visibility_delay <= 0:
            self._apply_pending(db, name, now)
        return mid

    def _apply_due(self, name: str) -> None:
        with self._lock:
            pending = self._db.execute(
                "SELECT 1 FROM mutations WHERE index_name=? AND applied=0 AND created_at<=?",
                (name, self.clock() - self.visibility_delay),
            ).fetchone()
        if pending:
            with self._tx() as db:
                self._apply_pending(db, name, self.clock())

    def _apply_pending(self, db: sqlite3.Connection, name: str, now: float) -> None:
        rows = db.execute(
            "SELECT seq, id, kind, created_at, payload, vals FROM mutations"
            " WHERE index_name=? AND applied=0 AND created_at<=? ORDER BY seq",
            (name, now - self.visibility_delay),
        ).fetchall()
        if not rows:
            return
        apply_mutations(db, name, rows)
        self._cache.pop(name, None)

    # -- reads ---------------------------------------------------------------------------

    def get_by_ids(self, name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``[{id, values, metadata?, namespace?}]`` for the ids that exist, in request order."""
        self._index_row(name)
        if len(ids) > E.MAX_GET_IDS:
            raise E.too_many_ids(E.MAX_GET_IDS, len(ids))
        self._apply_due(name)
        wanted = list(dict.fromkeys(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, namespace, vals, metadata FROM vectors WHERE index_name=? AND id IN"
                f" ({','.join('?' * len(wanted))})",
                (name, *wanted),
            ).fetchall()
        found = {r[0]: r for r in rows}
        out = []
        for vid in wanted:
            if vid not in found:
                continue
            _, namespace, vals, metadata = found[vid]
            item: dict[str, Any] = {
                "id": vid,
                "values": np.frombuffer(vals, dtype=np.float32).tolist(),
            }
            if metadata is not None:
                item["metadata"] = json.loads(metadata)
            if namespace is not None:
                item["namespace"] = namespace
            out.append(item)
        return out

    def query(self, name: str, q: QueryIn) -> dict[str, Any]:
        """``{count, matches}``: exact nearest neighbours, best first for every metric."""
        row = self._index_row(name)
        dims, metric = row[2], row[3]
        self._apply_due(name)
        vector = q.vector
        if vector is None:
            got = self.get_by_ids(name, [q.vector_id or ""])
            if not got:
                raise ApiError(404, 40013, f'vector with id="{q.vector_id}" not found')
            vector = got[0]["values"]
        if len(vector) != dims:
            raise ApiError(
                400,
                40006,
                f"invalid query vector, expected {dims} dimensions, "
                f"and got {len(vector)} dimensions",
            )
        matches = search(self._snapshot(name, dims), metric, vector, q)
        return {"count": len(matches), "matches": matches}

    def list_vectors(self, name: str, count: int, cursor: str | None) -> dict[str, Any]:
        """A page of ids in id order; the cursor is the last id of the previous page."""
        self._index_row(name)
        self._apply_due(name)
        with self._lock:
            (total,) = self._db.execute(
                "SELECT count(*) FROM vectors WHERE index_name=?", (name,)
            ).fetchone()
            rows = self._db.execute(
                "SELECT id FROM vectors WHERE index_name=? AND id>? ORDER BY id LIMIT ?",
                (name, cursor or "", count + 1),
            ).fetchall()
        ids = [r[0] for r in rows[:count]]
        truncated = len(rows) > count
        return {
            "count": len(ids),
            "totalCount": total,
            "isTruncated": truncated,
            "nextCursor": ids[-1] if truncated else None,
            "cursorExpirationTimestamp": iso(self.clock() + 3600) if truncated else None,
            "vectors": [{"id": i} for i in ids],
        }

    def _snapshot(self, name: str, dims: int) -> Snapshot:
        with self._lock:
            snap = self._cache.get(name)
            if snap is None:
                rows = self._db.execute(
                    "SELECT id, namespace, vals, metadata, indexed FROM vectors"
                    " WHERE index_name=? ORDER BY id",
                    (name,),
                ).fetchall()
                snap = Snapshot.build(rows, dims)
                self._cache[name] = snap
            return snap

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        with self._tx() as db:
            for table in ("indexes", "vectors", "metadata_indexes", "mutations"):
                db.execute(f"DELETE FROM {table}")
        self._cache.clear()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._cache.clear()
